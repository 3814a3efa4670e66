//! Per-hire resource limits ([`ResourceLimits`]): which of them become rlimits (and how they
//! travel to the helper's `init` stage as arguments), and the human-readable note saying
//! which limit stopped an agent.
//!
//! Owns the rlimit side only; cgroup limits are written by `cgroup.rs`. Never raises a limit
//! above what the node itself has.

use std::ffi::{OsStr, OsString};

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
use serde::{Deserialize, Serialize};

/// Resource limits of one hire. `None` leaves the node's own limit in place.
///
/// The node fills them from the manifest's limits, clamped by node-wide ceilings
/// ([`ResourceLimits::clamp`]). How each is enforced:
///
/// | limit | with a cgroup | without |
/// |-------|---------------|---------|
/// | `memory_bytes` | memory cgroup (`memory.max` / `memory.limit_in_bytes`, swap included); the kernel's OOM killer stops the hire | `RLIMIT_AS` (address space, per process) |
/// | `max_processes` | pids cgroup (processes and threads of the whole hire, plus the sandbox's own 3 tasks) | `RLIMIT_NPROC` inside the sandbox's user namespace; **not enforced when the node runs as root**, and not set at all without the sandbox (it would count every process of the node's user) |
/// | `max_open_files` | `RLIMIT_NOFILE` (per process) | same |
/// | `max_file_bytes` | `RLIMIT_FSIZE` (largest file a process may write) | same |
/// | `cpu_secs` | `RLIMIT_CPU` (per process: `SIGXCPU` at the limit, `SIGKILL` one second later) | same |
///
/// Core dumps are always disabled (`RLIMIT_CORE` 0).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ResourceLimits {
    /// Memory of the whole hire, in bytes.
    pub memory_bytes: Option<u64>,
    /// Processes and threads of the whole hire.
    pub max_processes: Option<u64>,
    /// Open file descriptors per process.
    pub max_open_files: Option<u64>,
    /// Largest file a process may write, in bytes.
    pub max_file_bytes: Option<u64>,
    /// CPU time per process, in seconds.
    pub cpu_secs: Option<u64>,
}

impl ResourceLimits {
    /// No limit set.
    pub const NONE: ResourceLimits = ResourceLimits {
        memory_bytes: None,
        max_processes: None,
        max_open_files: None,
        max_file_bytes: None,
        cpu_secs: None,
    };

    /// True when no limit is set.
    pub fn is_unlimited(&self) -> bool {
        *self == ResourceLimits::NONE
    }

    /// Each limit the smaller of `self` and `ceiling` (a ceiling applies also where `self`
    /// sets nothing).
    pub fn clamp(&self, ceiling: &ResourceLimits) -> ResourceLimits {
        let min = |a: Option<u64>, b: Option<u64>| match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        ResourceLimits {
            memory_bytes: min(self.memory_bytes, ceiling.memory_bytes),
            max_processes: min(self.max_processes, ceiling.max_processes),
            max_open_files: min(self.max_open_files, ceiling.max_open_files),
            max_file_bytes: min(self.max_file_bytes, ceiling.max_file_bytes),
            cpu_secs: min(self.cpu_secs, ceiling.cpu_secs),
        }
    }
}

/// One rlimit the helper's `init` stage sets on the agent, as `NAME=VALUE` on its command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RlimitArg {
    pub(crate) resource: RlimitName,
    pub(crate) value: u64,
}

/// The rlimits the sandbox uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RlimitName {
    As,
    Nproc,
    Nofile,
    Fsize,
    Cpu,
    Core,
}

impl RlimitName {
    const ALL: [(RlimitName, &'static str); 6] = [
        (RlimitName::As, "as"),
        (RlimitName::Nproc, "nproc"),
        (RlimitName::Nofile, "nofile"),
        (RlimitName::Fsize, "fsize"),
        (RlimitName::Cpu, "cpu"),
        (RlimitName::Core, "core"),
    ];

    fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(r, _)| *r == self)
            .map_or("?", |(_, n)| n)
    }

    fn resource(self) -> Resource {
        match self {
            RlimitName::As => Resource::As,
            RlimitName::Nproc => Resource::Nproc,
            RlimitName::Nofile => Resource::Nofile,
            RlimitName::Fsize => Resource::Fsize,
            RlimitName::Cpu => Resource::Cpu,
            RlimitName::Core => Resource::Core,
        }
    }
}

impl RlimitArg {
    /// `NAME=VALUE`.
    pub(crate) fn to_arg(self) -> OsString {
        format!("{}={}", self.resource.name(), self.value).into()
    }

    /// Parses `NAME=VALUE`.
    pub(crate) fn parse(arg: &OsStr) -> Option<RlimitArg> {
        let (name, value) = arg.to_str()?.split_once('=')?;
        let resource = RlimitName::ALL.iter().find(|(_, n)| *n == name)?.0;
        Some(RlimitArg {
            resource,
            value: value.parse().ok()?,
        })
    }

    /// Sets the limit on the calling process (inherited by what it executes). Never raises
    /// a hard limit: the result is at most the current hard limit. `cpu` gets a hard limit
    /// one second above the soft one, so `SIGXCPU` comes first and `SIGKILL` after.
    pub(crate) fn apply(self) -> std::io::Result<()> {
        let resource = self.resource.resource();
        let hard_now = getrlimit(resource).maximum;
        let cap = |v: u64| hard_now.map_or(v, |h| v.min(h));
        let soft = cap(self.value);
        let hard = match self.resource {
            RlimitName::Cpu => cap(self.value.saturating_add(1)),
            _ => soft,
        };
        setrlimit(
            resource,
            Rlimit {
                current: Some(soft),
                maximum: Some(hard),
            },
        )
        .map_err(std::io::Error::from)
    }
}

/// The rlimits for a hire: `cgroup_memory`/`cgroup_pids` say which limits a cgroup already
/// enforces, `user_namespace` whether the agent runs in its own user namespace (where
/// `RLIMIT_NPROC` counts only the sandbox's processes).
pub(crate) fn rlimits(
    limits: &ResourceLimits,
    cgroup_memory: bool,
    cgroup_pids: bool,
    user_namespace: bool,
) -> Vec<RlimitArg> {
    let mut out = vec![RlimitArg {
        resource: RlimitName::Core,
        value: 0,
    }];
    let mut push = |resource, value: Option<u64>| {
        if let Some(value) = value {
            out.push(RlimitArg { resource, value });
        }
    };
    if !cgroup_memory {
        push(RlimitName::As, limits.memory_bytes);
    }
    if !cgroup_pids && user_namespace {
        push(RlimitName::Nproc, limits.max_processes);
    }
    push(RlimitName::Nofile, limits.max_open_files);
    push(RlimitName::Fsize, limits.max_file_bytes);
    push(RlimitName::Cpu, limits.cpu_secs);
    out
}

/// What a cgroup counted during a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct LimitHits {
    /// Processes the OOM killer killed in the hire's memory cgroup.
    pub(crate) oom_kills: u64,
    /// Forks refused because the pids limit was reached.
    pub(crate) pids_max: u64,
}

/// Human-readable bytes: `64 MiB`, `1.5 GiB`, `1000 bytes`.
pub(crate) fn fmt_bytes(n: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    for (size, unit) in UNITS {
        if n >= size {
            return if n.is_multiple_of(size) {
                format!("{} {unit}", n / size)
            } else {
                format!("{:.1} {unit}", n as f64 / size as f64)
            };
        }
    }
    format!("{n} bytes")
}

/// The note appended to a crash message: which limit stopped the agent, if any is known.
/// `signal` is the signal that ended the agent, if one did.
pub(crate) fn limit_note(
    limits: &ResourceLimits,
    hits: LimitHits,
    signal: Option<i32>,
) -> Option<String> {
    let mut notes = Vec::new();
    if hits.oom_kills > 0 {
        notes.push(match limits.memory_bytes {
            Some(limit) => format!("memory limit of {} reached", fmt_bytes(limit)),
            None => "memory limit reached".to_owned(),
        });
    }
    if hits.pids_max > 0 {
        let limit = limits.max_processes.unwrap_or_default();
        notes.push(format!("process limit of {limit} reached"));
    }
    match signal {
        Some(s) if s == rustix::process::Signal::XCPU.as_raw() => notes.push(format!(
            "CPU time limit of {} s reached",
            limits.cpu_secs.unwrap_or_default()
        )),
        Some(s) if s == rustix::process::Signal::XFSZ.as_raw() => notes.push(format!(
            "file size limit of {} reached",
            fmt_bytes(limits.max_file_bytes.unwrap_or_default())
        )),
        _ => {}
    }
    (!notes.is_empty()).then(|| notes.join("; "))
}

/// A signal's name (`SIGKILL`), or its number.
pub(crate) fn signal_name(sig: i32) -> String {
    const NAMES: [(i32, &str); 16] = [
        (1, "SIGHUP"),
        (2, "SIGINT"),
        (3, "SIGQUIT"),
        (4, "SIGILL"),
        (5, "SIGTRAP"),
        (6, "SIGABRT"),
        (7, "SIGBUS"),
        (8, "SIGFPE"),
        (9, "SIGKILL"),
        (11, "SIGSEGV"),
        (13, "SIGPIPE"),
        (14, "SIGALRM"),
        (15, "SIGTERM"),
        (24, "SIGXCPU"),
        (25, "SIGXFSZ"),
        (31, "SIGSYS"),
    ];
    NAMES
        .iter()
        .find(|(n, _)| *n == sig)
        .map_or_else(|| format!("signal {sig}"), |(_, name)| (*name).to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clamp_takes_the_smaller_and_applies_ceilings() {
        let asked = ResourceLimits {
            memory_bytes: Some(1 << 30),
            max_processes: None,
            max_open_files: Some(64),
            ..ResourceLimits::NONE
        };
        let ceiling = ResourceLimits {
            memory_bytes: Some(256 << 20),
            max_processes: Some(32),
            max_open_files: Some(1024),
            ..ResourceLimits::NONE
        };
        assert_eq!(
            asked.clamp(&ceiling),
            ResourceLimits {
                memory_bytes: Some(256 << 20),
                max_processes: Some(32),
                max_open_files: Some(64),
                max_file_bytes: None,
                cpu_secs: None,
            }
        );
        assert!(ResourceLimits::NONE.is_unlimited());
    }

    #[test]
    fn rlimit_args_round_trip_and_fallbacks() {
        let limits = ResourceLimits {
            memory_bytes: Some(1 << 26),
            max_processes: Some(16),
            max_open_files: Some(64),
            max_file_bytes: Some(1 << 20),
            cpu_secs: Some(5),
        };
        let names = |v: Vec<RlimitArg>| -> Vec<String> {
            v.into_iter()
                .map(|a| a.to_arg().to_string_lossy().into_owned())
                .collect()
        };
        assert_eq!(
            names(rlimits(&limits, false, false, true)),
            [
                "core=0",
                "as=67108864",
                "nproc=16",
                "nofile=64",
                "fsize=1048576",
                "cpu=5"
            ]
        );
        // A cgroup takes memory and processes; without a user namespace nproc is not set.
        assert_eq!(
            names(rlimits(&limits, true, false, false)),
            ["core=0", "nofile=64", "fsize=1048576", "cpu=5"]
        );
        for a in rlimits(&limits, false, false, true) {
            assert_eq!(RlimitArg::parse(&a.to_arg()), Some(a));
        }
        assert!(RlimitArg::parse(OsStr::new("stack=1")).is_none());
        assert!(RlimitArg::parse(OsStr::new("nofile=x")).is_none());
    }

    #[test]
    fn notes_name_the_limit() {
        let limits = ResourceLimits {
            memory_bytes: Some(64 << 20),
            max_processes: Some(16),
            cpu_secs: Some(2),
            ..ResourceLimits::NONE
        };
        let oom = LimitHits {
            oom_kills: 1,
            pids_max: 0,
        };
        assert_eq!(
            limit_note(&limits, oom, Some(9)).as_deref(),
            Some("memory limit of 64 MiB reached")
        );
        let pids = LimitHits {
            oom_kills: 0,
            pids_max: 3,
        };
        assert_eq!(
            limit_note(&limits, pids, None).as_deref(),
            Some("process limit of 16 reached")
        );
        assert_eq!(
            limit_note(&limits, LimitHits::default(), Some(24)).as_deref(),
            Some("CPU time limit of 2 s reached")
        );
        assert_eq!(limit_note(&limits, LimitHits::default(), Some(9)), None);
        assert_eq!(fmt_bytes(1536 << 20), "1.5 GiB");
        assert_eq!(signal_name(9), "SIGKILL");
        assert_eq!(signal_name(60), "signal 60");
    }
}
