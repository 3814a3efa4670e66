//! The process's file-descriptor budget: raising `RLIMIT_NOFILE`'s soft limit to the hard one
//! at node start, reading it back (and the descriptors in use) for `GET /v1/info`, and deriving
//! the local API's connection cap from it so the swarm, the store and hired agents always keep
//! descriptors of their own. Never lowers a limit and never fails the node over it.

use serde::{Deserialize, Serialize};

/// Descriptors kept for everything but the local API, on top of the swarm's connections: the
/// store, the runtime, logs, and hired agents (their pipes, sandbox and egress connections).
pub const RESERVED_DESCRIPTORS: u64 = 256;

/// The local API's connection cap never goes above this, however high the limit: a loopback
/// control API needs a handful of connections; the cap only bounds what a hostile local
/// process can hold.
pub const MAX_API_CONNECTIONS: usize = 256;

/// The cap never goes below this (a node started under a tiny limit still answers its CLI).
pub const MIN_API_CONNECTIONS: usize = 8;

/// The soft limit before and after [`raise`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Raised {
    /// The soft limit the process started with (`None`: unlimited).
    pub before: Option<u64>,
    /// The soft limit now (`None`: unlimited).
    pub now: Option<u64>,
    /// The hard limit (`None`: unlimited).
    pub hard: Option<u64>,
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit. A failure (or an unlimited hard limit
/// the kernel refuses) keeps the current soft limit, with a warning.
pub fn raise() -> Raised {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let start = getrlimit(Resource::Nofile);
    let raised = match (start.current, start.maximum) {
        (Some(soft), Some(hard)) if soft < hard => setrlimit(
            Resource::Nofile,
            Rlimit {
                current: Some(hard),
                maximum: Some(hard),
            },
        )
        .map_err(|e| {
            tracing::warn!("cannot raise the open-files limit from {soft} to {hard}: {e}");
        })
        .is_ok(),
        _ => false,
    };
    let now = if raised {
        getrlimit(Resource::Nofile).current
    } else {
        start.current
    };
    Raised {
        before: start.current,
        now,
        hard: start.maximum,
    }
}

/// The current soft `RLIMIT_NOFILE` (`None`: unlimited).
pub fn soft_limit() -> Option<u64> {
    rustix::process::getrlimit(rustix::process::Resource::Nofile).current
}

/// Descriptors this process has open, from `/proc/self/fd` (`None` where that is not
/// available, e.g. when no descriptor is left to read it with).
pub fn in_use() -> Option<u64> {
    let dir = std::fs::read_dir("/proc/self/fd").ok()?;
    // One of the entries is the directory handle itself.
    Some((dir.count() as u64).saturating_sub(1))
}

/// How many connections the local API may hold with `soft_limit` descriptors when the swarm
/// may hold `swarm_connections`: what is left after the swarm and [`RESERVED_DESCRIPTORS`],
/// within [`MIN_API_CONNECTIONS`]..=[`MAX_API_CONNECTIONS`].
pub fn api_connection_cap(soft_limit: Option<u64>, swarm_connections: u32) -> usize {
    let Some(limit) = soft_limit else {
        return MAX_API_CONNECTIONS;
    };
    let left = limit.saturating_sub(RESERVED_DESCRIPTORS + u64::from(swarm_connections));
    usize::try_from(left)
        .unwrap_or(usize::MAX)
        .clamp(MIN_API_CONNECTIONS, MAX_API_CONNECTIONS)
}

/// File descriptors as `GET /v1/info` reports them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Descriptors {
    /// The soft `RLIMIT_NOFILE` (`None`: unlimited).
    pub limit: Option<u64>,
    /// Descriptors open now (`None`: unknown).
    pub in_use: Option<u64>,
    /// Connections the local API holds now.
    pub api_connections: usize,
    /// The most connections the local API holds; beyond it the longest-idle one is closed.
    pub api_max_connections: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_api_gets_what_the_swarm_and_reserve_leave() {
        assert_eq!(api_connection_cap(Some(1024), 128), 256);
        assert_eq!(
            api_connection_cap(Some(1024 * 1024), 128),
            MAX_API_CONNECTIONS
        );
        assert_eq!(api_connection_cap(Some(512), 128), 128);
        assert_eq!(api_connection_cap(Some(256), 128), MIN_API_CONNECTIONS);
        assert_eq!(api_connection_cap(None, 128), MAX_API_CONNECTIONS);
    }

    #[test]
    fn raising_never_lowers_and_reaches_the_hard_limit() {
        let before = soft_limit();
        let r = raise();
        assert_eq!(r.before, before);
        assert_eq!(r.now, soft_limit());
        if let (Some(b), Some(n)) = (r.before, r.now) {
            assert!(n >= b, "{r:?}");
        }
        if let Some(hard) = r.hard {
            assert_eq!(r.now, Some(hard), "{r:?}");
        }
        assert!(in_use().is_some_and(|n| n >= 3));
    }
}
