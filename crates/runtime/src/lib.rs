//! # souk-runtime
//!
//! Runs a Souk agent for one hire: a child process (any language) that speaks the agent
//! protocol, newline-delimited JSON on its stdin and stdout (`spec/agent-protocol.md`).
//!
//! ```no_run
//! use souk_runtime::{AgentProcess, RunConfig, Step, payload_bytes};
//! # async fn run() -> Result<(), souk_runtime::RuntimeError> {
//! let cfg = RunConfig {
//!     command: vec!["python3".into(), "/srv/agents/csv-analyst/agent.py".into()],
//!     workdir: "/var/lib/souk/hires/ab12".into(),
//!     ..RunConfig::default()
//! };
//! let hire_id = "ab".repeat(32);
//! let input = serde_json::json!({"csv": "a,b\n1,2\n"});
//! let mut agent = AgentProcess::spawn(&cfg, &hire_id, &input, None).await?;
//! loop {
//!     match agent.next().await {
//!         // Append a receipt entry of `event.entry_kind()`, committing to
//!         // `payload_bytes(&event)` when `event.has_payload()`.
//!         Step::Event(event) => println!("{} ({} bytes)", event.type_name(), payload_bytes(&event).len()),
//!         Step::Ended(outcome) => { println!("{outcome:?}"); break }
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! The runtime enforces the protocol and the limits of a [`RunConfig`] (line size, output
//! size, message count, silence, wall time) and never panics on what the agent writes: any
//! misbehaviour ends the run with a [`Outcome::Failed`] whose [`FailureCode`] the node puts
//! in the `failed` receipt entry. It does not sandbox the process (no namespaces, no
//! resource limits beyond these); the environment is cleared, the working directory is the
//! hire's own, and the process is killed when the [`AgentProcess`] is dropped.
//!
//! Module map: [`config`] ([`RunConfig`]), [`message`] (events, canonical JSON, receipt
//! payloads and hashes), [`process`] ([`AgentProcess`], [`Step`], [`Outcome`]), `lines`
//! (bounded line reading, stderr forwarding).
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
pub use lines::{STDERR_LINE_BYTES, STDERR_TOTAL_BYTES};
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
