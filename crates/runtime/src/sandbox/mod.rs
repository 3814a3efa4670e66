//! Confinement of agent processes: every agent runs in a bubblewrap sandbox (new user, pid,
//! ipc, uts, cgroup and network namespaces; a read-only view of the system; its package
//! read-only; its working directory read-write; a private `/tmp`), inside its own cgroup
//! when the node can create one, under rlimits, behind an in-sandbox forwarder that is its
//! only network route (to the egress proxy's unix socket).
//!
//! The pieces, one file each:
//!
//! - [`probe`](probe()) (`probe.rs`): at node start, checks that a sandbox can be created and
//!   says exactly what is missing; gives the [`SandboxSpec`] hires use.
//! - `bwrap.rs`: bubblewrap's arguments (what the sandbox contains).
//! - [`resolve`]: finds the real program (PATH, symlinks, version-manager shims, `#!`) and
//!   what must be bound for it to run.
//! - [`ResourceLimits`] (`limits.rs`) and [`CgroupParent`] (`cgroup.rs`): limits.
//! - [`helper`]: the small program between the node and the agent (joins the cgroup, runs as
//!   the sandbox's init, relays connections (`forward.rs`), sets rlimits).
//! - `launch.rs`: the command line of one hire; `guard.rs`: kills and cleans up a running
//!   sandbox; [`SandboxRecord`] and [`kill_leftover`] (`record.rs`): crash recovery.
//! - [`StandbyPool`] (`standby.rs`): helpers started ahead of hires, already in their
//!   cgroup, so that a cold start does not wait for the cgroup join.
//! - `procfs.rs`: `/proc` and pidfds.
//!
//! What an agent can rely on inside is normative in `spec/agent-protocol.md` ("Starting the
//! agent").

mod bwrap;
mod cgroup;
mod forward;
pub(crate) mod guard;
pub mod helper;
pub(crate) mod launch;
mod limits;
mod probe;
mod procfs;
mod record;
pub mod resolve;
mod standby;

use std::ffi::OsString;
use std::io;
use std::path::PathBuf;

pub use bwrap::{BwrapVersion, PROXY_SOCKET_PATH, SANDBOX_HOSTNAME, SANDBOX_UID};
pub use cgroup::{CgroupParent, SANDBOX_TASKS};
pub use limits::ResourceLimits;
pub(crate) use limits::{limit_note, signal_name};
pub use probe::{ProbeConfig, SandboxMode, SandboxSupport, SandboxUnavailable, probe};
pub use procfs::ProcessRef;
pub use record::{SandboxRecord, kill_leftover};
pub use resolve::ResolveError;
pub(crate) use standby::Standby;
pub use standby::{StandbyPool, StandbyRecorder};

/// `PATH` inside the sandbox, after the `bin` directories of bound interpreter prefixes.
pub const SANDBOX_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// Bubblewrap, as found by [`probe`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Bubblewrap {
    /// The `bwrap` executable.
    pub path: PathBuf,
    /// Its version (newer options are used only when it has them).
    pub version: BwrapVersion,
}

/// The egress proxy as a sandboxed agent reaches it: the helper listens on
/// `127.0.0.1:port` inside the sandbox and relays each connection to `socket` (a unix
/// socket on the host, bound at [`PROXY_SOCKET_PATH`] inside).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProxyForward {
    /// The proxy's unix socket on the host.
    pub socket: PathBuf,
    /// The loopback port inside the sandbox.
    pub port: u16,
}

impl ProxyForward {
    /// `http://127.0.0.1:PORT`, for the agent's `HTTP_PROXY`/`HTTPS_PROXY`/`ALL_PROXY`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// How hires are confined (from [`SandboxSupport::spec`], plus the hire's proxy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxSpec {
    /// The helper ([`helper::main`]): program and leading arguments, e.g.
    /// `["/usr/local/bin/souk", "sandbox-helper"]`.
    pub helper: Vec<OsString>,
    /// Bubblewrap; `None` runs the agent without namespaces (`sandbox = "off"`, or the
    /// `auto` fallback): rlimits, cgroup and a new session only.
    pub bwrap: Option<Bubblewrap>,
    /// Where per-hire cgroups go; `None`: rlimits only.
    pub cgroups: Option<CgroupParent>,
    /// The hire's egress proxy (sandboxed runs only; without namespaces the agent reaches
    /// the network directly and the node must point it at a proxy by URL).
    pub proxy: Option<ProxyForward>,
    /// More host paths bound read-only at the same path (operator configuration, e.g. a
    /// library directory an interpreter needs).
    pub extra_ro_paths: Vec<PathBuf>,
}

impl SandboxSpec {
    /// True if agents run in namespaces.
    pub fn is_isolated(&self) -> bool {
        self.bwrap.is_some()
    }
}

/// Why a sandboxed agent could not be started, or a leftover not killed. Messages may name
/// host paths: for anything public use [`SandboxError::public_message`].
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// Something the sandbox needs is missing (the helper, bubblewrap).
    #[error("the sandbox is not available: {what}")]
    NotAvailable {
        /// What is missing.
        what: String,
    },
    /// The agent's program could not be resolved.
    #[error("cannot resolve the agent program {program:?}: {source}")]
    Resolve {
        /// `command[0]`.
        program: String,
        /// Why.
        source: ResolveError,
    },
    /// A cgroup could not be created, written or removed.
    #[error("cgroup {}: {source}", path.display())]
    Cgroup {
        /// The cgroup file or directory.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The sandbox process could not be spawned.
    #[error("cannot start the sandbox ({}): {source}", program.display())]
    Spawn {
        /// The program spawned (the helper).
        program: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The sandbox did not come up: what bubblewrap or the helper said.
    #[error("the sandbox did not start: {detail}")]
    Setup {
        /// Their error output (bounded).
        detail: String,
    },
    /// Limits were set without a [`SandboxSpec`] (they are applied by the helper).
    #[error("resource limits need a sandbox spec (the helper applies them)")]
    LimitsNeedSandbox,
    /// Reading `/proc` failed.
    #[error("reading /proc: {0}")]
    Proc(io::Error),
    /// A [`SandboxRecord`] names something the runtime never creates.
    #[error("malformed sandbox record: {detail}")]
    BadRecord {
        /// What is wrong.
        detail: String,
    },
    /// Processes of a sandbox were still alive after being killed.
    #[error("processes of the sandbox are still alive: {what}")]
    StillAlive {
        /// Which.
        what: String,
    },
}

impl SandboxError {
    /// A message without host paths or host details, for receipts and other public places.
    pub fn public_message(&self) -> String {
        match self {
            SandboxError::NotAvailable { .. } => "the provider's sandbox is not available".into(),
            SandboxError::Resolve { source, .. } => match source {
                ResolveError::NotFound { .. } => "the agent program was not found".into(),
                ResolveError::NotExecutable { .. } => "the agent program is not executable".into(),
                ResolveError::Shim { .. } => {
                    "the agent's interpreter could not be resolved (version-manager shim)".into()
                }
                ResolveError::Shebang { .. } => "the agent script's #! line is not usable".into(),
                ResolveError::TooDeep { .. } => {
                    "the agent program has too many levels of links or interpreters".into()
                }
                ResolveError::Io { source, .. } => {
                    format!(
                        "the agent program could not be read ({})",
                        public_io(source)
                    )
                }
            },
            SandboxError::Cgroup { source, .. } => {
                format!(
                    "the sandbox's cgroup could not be set up ({})",
                    public_io(source)
                )
            }
            SandboxError::Spawn { source, .. } => {
                format!("the sandbox could not be started ({})", public_io(source))
            }
            SandboxError::Setup { .. } => "the sandbox could not be set up".into(),
            SandboxError::LimitsNeedSandbox => "the provider's sandbox is misconfigured".into(),
            SandboxError::Proc(_)
            | SandboxError::StillAlive { .. }
            | SandboxError::BadRecord { .. } => {
                "the provider could not stop a previous run of the agent".into()
            }
        }
    }
}

/// The boot id, or empty if unreadable (then no recorded pid ever matches).
pub(crate) fn current_boot_id() -> String {
    procfs::boot_id().unwrap_or_default()
}

/// An I/O error's text without paths: the OS error (`Too many open files (os error 24)`),
/// else only its kind.
pub(crate) fn public_io(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(_) => e.to_string(),
        None => e.kind().to_string(),
    }
}
