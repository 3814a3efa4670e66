//! [`ApiLimits`]: every bound the local API puts on a connection and a request (connections,
//! header, idle and body time, body size). The values are documented in docs/api.md
//! ("Limits"); tests shorten them. Holds numbers only, never enforces anything itself.

use std::time::Duration;

/// The bounds of the local API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiLimits {
    /// Most open connections. When a connection arrives at the cap, the connection idle for
    /// the longest time is closed to make room; when none is idle, the new one is closed.
    /// While shed connections close, up to an eighth more (at least one) may be open.
    pub max_connections: usize,
    /// Time a connection has to send a complete request head, counted from when it connects
    /// and, on a kept-alive connection, from the previous answer: also the idle timeout.
    pub header_timeout: Duration,
    /// Time a request body may take before the rate below applies.
    pub body_timeout: Duration,
    /// Slowest body accepted after `body_timeout`, bytes per second on average.
    pub body_min_rate: u64,
    /// Largest request body.
    pub max_body: usize,
    /// Most bytes of a refused body read (and thrown away) so that the client, still sending,
    /// gets the answer instead of a reset; a longer body gets the answer and the connection
    /// is closed.
    pub drain_limit: u64,
    /// How long a new connection at the cap waits for a shed connection to close.
    pub shed_wait: Duration,
    /// How long open connections may finish their requests when the API stops.
    pub shutdown_grace: Duration,
}

/// The body limit: the protocol's job input limit (16 MiB) plus 64 KiB for the rest of the
/// body (16 842 752 bytes).
pub const MAX_BODY: usize = souk_protocol::hiring::MAX_INPUT_LEN + 64 * 1024;

impl Default for ApiLimits {
    fn default() -> Self {
        ApiLimits {
            max_connections: crate::fd_limit::MAX_API_CONNECTIONS,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            body_min_rate: 256 * 1024,
            max_body: MAX_BODY,
            drain_limit: 64 * 1024 * 1024,
            shed_wait: Duration::from_secs(1),
            shutdown_grace: Duration::from_secs(5),
        }
    }
}

impl ApiLimits {
    /// The deadline for a body of which `received` bytes arrived, from the time it started:
    /// `body_timeout` plus the time `received` bytes take at `body_min_rate`.
    pub(crate) fn body_allowance(&self, received: u64) -> Duration {
        let rate = self.body_min_rate.max(1);
        self.body_timeout
            .saturating_add(Duration::from_millis(received.saturating_mul(1000) / rate))
    }
}
