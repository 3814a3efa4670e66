//! The node's clock: the time every signed timestamp, deadline and expiry is read from, and
//! the conversion of spans of that time into the real timers that wait for them.
//!
//! Normally the node's time is the system clock. A testnet may run its nodes on a faster
//! clock (`souk node run --testnet-clock RATE@EPOCH`, hidden, for `souk-testnet run`): from
//! the shared `EPOCH` (Unix ms) on, the node's time advances `RATE` times faster than the
//! system clock. Every node given the same pair reads the same time, a restarted node picks
//! the clock up where it is, and a 3-day deadline passes in 13 s at rate 20 000. The code
//! path is the same as in real time: at rate 1 [`now_ms`] is the system clock and [`real`]
//! the identity.
//!
//! What follows the node's clock (protocol time): timestamps in receipts, manifests,
//! contracts and outcome records; hire deadlines (the agent's wall-clock limit is
//! `real(deadline - now)`); manifest expiry and the re-announce and sweep period derived
//! from it; credential expiry in the egress proxy; reputation windows. What does not:
//! transport and liveness waits (request timeouts, retry backoff towards an unreachable
//! peer, long-polls, an agent's silence limit), which are about the network and processes,
//! not about what the parties agreed; and the local event stream's `at_ms`, a measurement
//! stamped with the host's clock ([`system_ms`]).
//!
//! The clock is process-wide, set once before a node starts ([`install`]); a process that
//! never installs one (the CLI, tests, in-process testnets) runs on the system clock.

use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The fastest clock a node accepts (1 day in 0.86 s).
pub const MAX_RATE: u32 = 100_000;

/// A clock running `rate` times faster than the system clock from `epoch_ms` on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clock {
    /// Unix ms at which the node's time equals the system time.
    pub epoch_ms: u64,
    /// How many ms of node time pass per ms of system time (1 = real time).
    pub rate: u32,
}

/// Why a clock was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClockError {
    /// Not `RATE@EPOCH_MS`.
    #[error("{0:?} is not RATE@EPOCH_MS (e.g. 20000@1765000000000)")]
    Syntax(String),
    /// A rate of 0 or above [`MAX_RATE`].
    #[error("the clock rate must be 1 to {MAX_RATE}, not {0}")]
    Rate(u64),
    /// The epoch lies in the future of the system clock.
    #[error("the clock epoch {0} is in the future")]
    Epoch(u64),
    /// This process already runs on a clock.
    #[error("the node's clock is already set")]
    AlreadySet,
}

impl Clock {
    /// The system clock.
    pub const REAL: Clock = Clock {
        epoch_ms: 0,
        rate: 1,
    };

    /// Reads `RATE@EPOCH_MS`, as the testnet passes it.
    pub fn parse(s: &str) -> Result<Clock, ClockError> {
        let syntax = || ClockError::Syntax(s.to_owned());
        let (rate, epoch) = s.split_once('@').ok_or_else(syntax)?;
        let rate: u64 = rate.trim().parse().map_err(|_| syntax())?;
        let epoch_ms: u64 = epoch.trim().parse().map_err(|_| syntax())?;
        if rate == 0 || rate > u64::from(MAX_RATE) {
            return Err(ClockError::Rate(rate));
        }
        if epoch_ms > system_ms() {
            return Err(ClockError::Epoch(epoch_ms));
        }
        Ok(Clock {
            epoch_ms,
            // In range: checked above.
            rate: rate as u32,
        })
    }

    /// The node's time when the system clock reads `system_ms`.
    pub fn at(&self, system_ms: u64) -> u64 {
        if self.rate == 1 {
            return system_ms;
        }
        let since = system_ms.saturating_sub(self.epoch_ms);
        self.epoch_ms
            .saturating_add(since.saturating_mul(u64::from(self.rate)))
    }

    /// How long `span` of node time lasts on the system clock, rounded up to the next
    /// microsecond (a timer set with it never fires before the node's time has advanced by
    /// `span`).
    pub fn real(&self, span: Duration) -> Duration {
        if self.rate == 1 {
            return span;
        }
        let micros = span.as_micros().div_ceil(u128::from(self.rate));
        Duration::from_micros(u64::try_from(micros).unwrap_or(u64::MAX))
    }
}

static CLOCK: OnceLock<Clock> = OnceLock::new();

/// Runs this process on `clock` from now on. Call it once, before the node starts.
pub fn install(clock: Clock) -> Result<(), ClockError> {
    CLOCK.set(clock).map_err(|_| ClockError::AlreadySet)
}

/// The clock this process runs on.
pub fn current() -> Clock {
    CLOCK.get().copied().unwrap_or(Clock::REAL)
}

/// The node's time: milliseconds since the Unix epoch on its clock.
pub fn now_ms() -> u64 {
    current().at(system_ms())
}

/// How long `span` of the node's time lasts in real time (the identity at rate 1).
pub fn real(span: Duration) -> Duration {
    current().real(span)
}

/// Milliseconds since the Unix epoch on the system clock, whatever the node's clock.
pub fn system_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn real_time_is_the_identity() {
        let c = Clock::REAL;
        assert_eq!(c.at(1_765_000_000_123), 1_765_000_000_123);
        assert_eq!(
            c.real(Duration::from_millis(1500)),
            Duration::from_millis(1500)
        );
    }

    #[test]
    fn a_fast_clock_runs_from_its_epoch() {
        let c = Clock {
            epoch_ms: 1_000_000,
            rate: 20_000,
        };
        assert_eq!(c.at(1_000_000), 1_000_000);
        // One real second is 20 000 s of node time.
        assert_eq!(c.at(1_001_000), 1_000_000 + 20_000_000);
        // Before the epoch the clock stands still (never runs backwards).
        assert_eq!(c.at(999_000), 1_000_000);
        // Three days last 12.96 s.
        let three_days = Duration::from_secs(3 * 24 * 3600);
        assert_eq!(c.real(three_days), Duration::from_millis(12_960));
        // Rounded up: a timer never fires early.
        assert_eq!(c.real(Duration::from_millis(1)), Duration::from_micros(1));
        assert_eq!(
            c.real(Duration::from_micros(20_001)),
            Duration::from_micros(2)
        );
    }

    #[test]
    fn two_nodes_with_the_same_clock_agree() {
        let c = Clock::parse("5000@1000").unwrap();
        let d = Clock::parse(" 5000 @ 1000 ").unwrap();
        assert_eq!(c, d);
        assert_eq!(c.at(123_456), d.at(123_456));
    }

    #[test]
    fn bad_clocks_say_why() {
        assert!(matches!(Clock::parse("20000"), Err(ClockError::Syntax(_))));
        assert!(matches!(Clock::parse("x@1"), Err(ClockError::Syntax(_))));
        assert_eq!(Clock::parse("0@1"), Err(ClockError::Rate(0)));
        assert_eq!(Clock::parse("100001@1"), Err(ClockError::Rate(100_001)));
        let future = system_ms() + 3_600_000;
        assert_eq!(
            Clock::parse(&format!("10@{future}")),
            Err(ClockError::Epoch(future))
        );
    }
}
