//! [`RunConfig`]: how to start an agent, how it is confined, and the limits its run is
//! held to.

use std::path::PathBuf;
use std::time::Duration;

use crate::sandbox::{ResourceLimits, SandboxSpec};

/// How to start one agent process and the limits the runtime enforces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunConfig {
    /// Program and arguments. A relative program path containing `/` is relative to
    /// `workdir`; a bare name is looked up on the node's `PATH` (see
    /// [`crate::resolve_command`], and [`crate::sandbox::resolve`] for how a sandboxed
    /// program is found).
    pub command: Vec<String>,
    /// The agent's working directory and `HOME` (a per-hire directory); created if missing
    /// (mode 0700). Read-write inside the sandbox, at the same path.
    pub workdir: PathBuf,
    /// The agent package, read-only inside the sandbox at the same path (the node also
    /// passes it as `SOUK_PACKAGE_DIR` in `env`); `None`: no package is bound.
    pub package_dir: Option<PathBuf>,
    /// How the agent is confined. `None` spawns it directly, unconfined (tests and tools
    /// only; a node always passes a spec, from [`crate::sandbox::probe`]).
    pub sandbox: Option<SandboxSpec>,
    /// Resource limits (need `sandbox`: the helper applies them).
    pub limits: ResourceLimits,
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
    /// Started before its hire (a warm start, see [`crate::Launched::ignite`]): the process
    /// gets no `SOUK_HIRE_ID` (its `start` message names the hire).
    pub warm: bool,
    /// Standby sandboxes to start from, when one is ready and `sandbox` matches its pool.
    pub standby: Option<std::sync::Arc<crate::sandbox::StandbyPool>>,
}

/// 1 MiB: the protocol's line limit and the default output limit.
pub const MIB: usize = 1024 * 1024;

impl Default for RunConfig {
    /// Wall time 10 min, silence 2 min, lines and output 1 MiB, 100 000 events, grace 2 s;
    /// `command` empty and `workdir` `"."` (callers set both); no package, no sandbox, no
    /// resource limits.
    fn default() -> Self {
        RunConfig {
            command: Vec::new(),
            workdir: PathBuf::from("."),
            package_dir: None,
            sandbox: None,
            limits: ResourceLimits::NONE,
            env: Vec::new(),
            wall_time: Duration::from_secs(600),
            silence_timeout: Duration::from_secs(120),
            max_line_bytes: MIB,
            max_output_bytes: MIB,
            max_events: 100_000,
            kill_grace: Duration::from_secs(2),
            warm: false,
            standby: None,
        }
    }
}
