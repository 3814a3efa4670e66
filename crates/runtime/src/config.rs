//! [`RunConfig`]: how to start an agent and the limits its run is held to.

use std::path::PathBuf;
use std::time::Duration;

/// How to start one agent process and the limits the runtime enforces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunConfig {
    /// Program and arguments. A relative program path containing `/` is relative to
    /// `workdir`; a bare name is looked up on `PATH` (see [`crate::resolve_command`]).
    pub command: Vec<String>,
    /// The agent's working directory and `HOME` (a per-hire directory); created if missing.
    pub workdir: PathBuf,
    /// Extra environment variables (e.g. `HTTP_PROXY`), set after the fixed ones.
    pub env: Vec<(String, String)>,
    /// Longest run, from spawn to the final message; then the agent is killed
    /// ([`crate::Outcome::TimedOut`]).
    pub wall_time: Duration,
    /// Longest time without a message from the agent (suspended while it waits for an
    /// answer); then it is killed (`protocol-violation`).
    pub silence_timeout: Duration,
    /// Longest line the agent may write, in bytes, without its `\n`.
    pub max_line_bytes: usize,
    /// Largest `result` output, in bytes of canonical JSON (`output-too-large`).
    pub max_output_bytes: usize,
    /// Most messages the agent may send in one run (final message included).
    pub max_events: usize,
    /// How long the agent has to exit after `cancel` or after its final message before it
    /// is killed.
    pub kill_grace: Duration,
}

/// 1 MiB: the protocol's line limit and the default output limit.
pub const MIB: usize = 1024 * 1024;

impl Default for RunConfig {
    /// Wall time 10 min, silence 2 min, lines and output 1 MiB, 100 000 events, grace 2 s;
    /// `command` empty and `workdir` `"."` (callers set both).
    fn default() -> Self {
        RunConfig {
            command: Vec::new(),
            workdir: PathBuf::from("."),
            env: Vec::new(),
            wall_time: Duration::from_secs(600),
            silence_timeout: Duration::from_secs(120),
            max_line_bytes: MIB,
            max_output_bytes: MIB,
            max_events: 100_000,
            kill_grace: Duration::from_secs(2),
        }
    }
}
