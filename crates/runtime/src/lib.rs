//! # souk-runtime
//!
//! Runs a Souk agent for one hire, confined: a child process (any language) that speaks
//! the agent protocol, newline-delimited JSON on its stdin and stdout
//! (`spec/agent-protocol.md`), inside a bubblewrap sandbox with per-hire resource limits.
//!
//! ```no_run
//! use souk_runtime::sandbox::{ProbeConfig, ProxyForward, SandboxMode, kill_leftover, probe};
//! use souk_runtime::{AgentProcess, ResourceLimits, RunConfig, Step, payload_bytes};
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! // At node start: can agents be sandboxed here? (Fails with what is missing.)
//! let support = probe(&ProbeConfig {
//!     mode: SandboxMode::Required,
//!     helper: vec!["/usr/local/bin/souk".into(), "sandbox-helper".into()],
//!     bwrap: None,
//!     cgroup_parent: None,
//!     extra_ro_paths: Vec::new(),
//! })
//! .await?;
//! // After a crash, before resuming a hire: kill what is left of its last run.
//! # let stored_record: Option<souk_runtime::SandboxRecord> = None;
//! if let Some(rec) = stored_record {
//!     kill_leftover(&rec)?;
//! }
//! // One hire.
//! let mut spec = support.spec.clone();
//! spec.proxy = Some(ProxyForward { socket: "/run/souk/proxy-ab12.sock".into(), port: 3128 });
//! let cfg = RunConfig {
//!     command: vec!["python3".into(), "/srv/agents/csv-analyst/agent.py".into()],
//!     workdir: "/var/lib/souk/work/ab12".into(),
//!     package_dir: Some("/srv/agents/csv-analyst".into()),
//!     env: vec![("HTTP_PROXY".into(), "http://127.0.0.1:3128".into())],
//!     sandbox: Some(spec),
//!     limits: ResourceLimits { memory_bytes: Some(512 << 20), max_processes: Some(64), ..ResourceLimits::NONE },
//!     ..RunConfig::default()
//! };
//! let hire_id = "ab".repeat(32);
//! let launched = AgentProcess::launch(&cfg, &hire_id).await?; // sandbox up, agent not started
//! let record = launched.record().clone(); // store it durably now
//! let input = serde_json::json!({"csv": "a,b\n1,2\n"});
//! let mut agent = launched.start(&input, None);
//! loop {
//!     match agent.next().await {
//!         // Append a receipt entry of `event.entry_kind()`, committing to
//!         // `payload_bytes(&event)` when `event.has_payload()`.
//!         Step::Event(event) => println!("{} ({} bytes)", event.type_name(), payload_bytes(&event).len()),
//!         // The outcome is final: record it, then let the agent exit (or kill it).
//!         Step::Ended(outcome) => { println!("{outcome:?}"); break }
//!     }
//! }
//! agent.close().await; // every process of the run is gone now
//! # Ok(()) }
//! ```
//!
//! The runtime enforces the protocol and the limits of a [`RunConfig`] (line size, output
//! size, message count, silence, wall time) and never panics on what the agent writes: any
//! misbehaviour ends the run with a [`Outcome::Failed`] whose [`FailureCode`] the node puts
//! in the `failed` receipt entry. With a [`SandboxSpec`] (what a node always passes) the
//! agent runs in new user, pid, ipc, uts, cgroup and network namespaces with a read-only
//! view of the system, its package read-only, its working directory read-write, a private
//! `/tmp`, and no network but the egress proxy; under [`ResourceLimits`] (a per-hire cgroup
//! when the node can create one, rlimits otherwise). The run ends at the agent's final
//! message (what it writes later is ignored); when it is closed, canceled or the
//! [`AgentProcess`] is dropped, every process of the hire is killed and waited for. Start
//! errors have a path-free [`RuntimeError::public_message`] for receipts.
//!
//! Module map: [`config`] ([`RunConfig`]), [`message`] (events, canonical JSON, receipt
//! payloads and hashes), [`process`] ([`AgentProcess`], [`Step`], [`Outcome`]), `spawn`
//! ([`AgentProcess::launch`], [`Launched`]), [`sandbox`] (probe, bubblewrap arguments,
//! program resolution, limits, cgroups, the in-sandbox [`sandbox::helper`], crash records
//! and [`sandbox::kill_leftover`]), `lines` (bounded line reading, stderr forwarding).
//!
//! [`FailureCode`]: souk_protocol::receipt::FailureCode

pub mod config;
mod lines;
pub mod message;
pub mod process;
pub mod sandbox;
mod spawn;

use std::path::Path;

pub use config::RunConfig;
pub use lines::{STDERR_LINE_BYTES, STDERR_TAIL_LINE_BYTES, STDERR_TAIL_LINES, STDERR_TOTAL_BYTES};
pub use message::{
    AgentEvent, answer_payload_bytes, canonical_json, json_hash, payload_bytes, truncate_entry_text,
};
pub use process::{AgentProcess, DEFAULT_PATH, Outcome, RuntimeError, Step};
pub use sandbox::{ResourceLimits, SandboxError, SandboxRecord, SandboxSpec};
pub use spawn::Launched;

/// Resolves an agent file's `run.command` against its package directory (the `run.workdir`
/// of `agent.toml`), for running it in a per-hire working directory:
///
/// - `command[0]`: a relative path containing `/` (e.g. `../../target/release/agent`)
///   becomes `package_dir/command[0]`; a bare name (`python3`) is left for the `PATH`
///   lookup; an absolute path is kept.
/// - every later argument that is a relative path, does not start with `-`, and names an
///   existing file or directory in `package_dir` (e.g. `agent.py`) becomes
///   `package_dir/arg`; other arguments are kept as they are.
///
/// Non-UTF-8 bytes of `package_dir` are replaced (`U+FFFD`).
pub fn resolve_command(command: &[String], package_dir: &Path) -> Vec<String> {
    let join = |s: &str| package_dir.join(s).to_string_lossy().into_owned();
    command
        .iter()
        .enumerate()
        .map(|(i, part)| {
            let path = Path::new(part);
            let relative = path.is_relative() && !part.is_empty();
            if i == 0 {
                if relative && part.contains('/') {
                    join(part)
                } else {
                    part.clone()
                }
            } else if relative && !part.starts_with('-') && package_dir.join(path).exists() {
                join(part)
            } else {
                part.clone()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_command_rules() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        std::fs::write(dir.path().join("agent.py"), "").unwrap_or_else(|e| panic!("{e}"));
        let base = dir.path().to_string_lossy().into_owned();
        let cmd: Vec<String> = ["python3", "agent.py", "--fast", "missing.txt", "/abs"]
            .map(String::from)
            .to_vec();
        assert_eq!(
            resolve_command(&cmd, dir.path()),
            [
                "python3".to_owned(),
                format!("{base}/agent.py"),
                "--fast".into(),
                "missing.txt".into(),
                "/abs".into()
            ]
        );
        let cmd = vec!["../../target/release/x".to_owned()];
        assert_eq!(
            resolve_command(&cmd, dir.path()),
            [format!("{base}/../../target/release/x")]
        );
    }
}
