//! Starting an agent in two phases: [`AgentProcess::launch`] creates the sandbox (the
//! agent's process is not running yet) and returns a [`Launched`] whose
//! [`SandboxRecord`] the node stores durably; [`Launched::start`] then lets the agent run
//! and sends it the `start` message.
//!
//! Owns spawning only; the protocol is `process.rs`, the sandbox's contents `sandbox/`.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::config::RunConfig;
use crate::lines::{LineReader, forward_stderr};
use crate::message::start_line;
use crate::process::{
    AgentProcess, DEFAULT_PATH, RunLimits, Running, RuntimeError, is_hire_id, write_lines,
};
use crate::sandbox::guard::Confinement;
use crate::sandbox::helper::{GO_BYTE, READY_LINE, encode_standby};
use crate::sandbox::launch::{Agent, prepare, program_path};
use crate::sandbox::{ProcessRef, SandboxError, SandboxRecord, Standby};

/// How long a sandbox may take to come up (bubblewrap's mounts, the helper's start).
const LAUNCH_TIMEOUT: Duration = Duration::from_secs(30);
/// Bytes of bubblewrap's or the helper's error output kept for a setup error.
const SETUP_STDERR_BYTES: u64 = 4096;

/// A sandbox whose agent has not started yet (see [`AgentProcess::launch`]).
///
/// Dropping it kills the sandbox and removes its cgroup.
pub struct Launched {
    /// First field, so dropped first (see [`AgentProcess`]).
    confinement: Option<Confinement>,
    child: Child,
    stdin: ChildStdin,
    stdout: LineReader<ChildStdout>,
    stderr_task: JoinHandle<VecDeque<String>>,
    hire_id: String,
    record: SandboxRecord,
    /// The helper waits for the go byte.
    gated: bool,
    limits: RunLimits,
    /// Started from a standby whose record its pool's recorder stored.
    recorded_ahead: bool,
}

impl std::fmt::Debug for Launched {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Launched")
            .field("hire_id", &self.hire_id)
            .field("record", &self.record)
            .finish_non_exhaustive()
    }
}

impl Launched {
    /// Whether it was started from a standby sandbox whose [`SandboxRecord`] (same process,
    /// same cgroups) the pool's recorder stored before the launch.
    pub fn recorded_ahead(&self) -> bool {
        self.recorded_ahead
    }

    /// What the node stores durably before [`Launched::start`], so a restarted node can
    /// [`kill_leftover`](crate::sandbox::kill_leftover) the sandbox.
    pub fn record(&self) -> &SandboxRecord {
        &self.record
    }

    /// The spawned process's id.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// A warm start: lets the agent's program start now, before it has a hire, so that it
    /// boots (an interpreter, its imports) and waits for its `start` line. A warm process
    /// serves one hire at most: [`Launched::start_for`] gives it one.
    ///
    /// # Errors
    ///
    /// When the sandbox's helper cannot be told (it exited).
    pub async fn ignite(&mut self) -> Result<(), RuntimeError> {
        use tokio::io::AsyncWriteExt;
        if self.gated {
            let go = async {
                self.stdin.write_all(&[GO_BYTE]).await?;
                self.stdin.flush().await
            };
            go.await.map_err(|e| SandboxError::Setup {
                detail: format!("cannot start the agent: {e}"),
            })?;
            self.gated = false;
        }
        Ok(())
    }

    /// Whether the process still runs (a warm process may have died while it waited).
    pub fn is_alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Starts a warm process ([`Launched::ignite`]) for hire `hire_id`, with that hire's
    /// wall-time limit (counted from now), and sends it the `start` message.
    pub fn start_for(
        mut self,
        hire_id: &str,
        wall_time: Duration,
        input: &Value,
        checkpoint: Option<&Value>,
    ) -> AgentProcess {
        hire_id.clone_into(&mut self.hire_id);
        self.limits.wall_time = wall_time;
        self.start(input, checkpoint)
    }

    /// Lets the agent run (the helper starts it) and sends it the `start` message.
    /// Must be called within a tokio runtime.
    ///
    /// Without a sandbox spec the process already runs (it was spawned by
    /// [`AgentProcess::launch`]); this only sends `start`.
    pub fn start(self, input: &Value, checkpoint: Option<&Value>) -> AgentProcess {
        let (tx, rx) = mpsc::unbounded_channel();
        // Cannot fail: the receiver is alive until the task below ends.
        if self.gated {
            let _ = tx.send(vec![GO_BYTE]);
        }
        let _ = tx.send(start_line(&self.hire_id, input, checkpoint));
        let writer_task = tokio::spawn(write_lines(self.stdin, rx, self.hire_id.clone()));
        AgentProcess::running(Running {
            confinement: self.confinement,
            child: self.child,
            hire_id: self.hire_id,
            stdout: self.stdout,
            writer: tx,
            writer_task,
            stderr_task: self.stderr_task,
            limits: self.limits,
        })
    }
}

/// The start time of `pid`, or 0 (a record with 0 never matches a live process, so
/// [`kill_leftover`](crate::sandbox::kill_leftover) leaves it alone).
fn process_ref(pid: u32) -> ProcessRef {
    ProcessRef::of(pid).unwrap_or(ProcessRef { pid, start_time: 0 })
}

/// Up to [`SETUP_STDERR_BYTES`] of what the sandbox wrote on stderr before it failed.
async fn setup_stderr(stderr: ChildStderr) -> String {
    let mut buf = Vec::new();
    let mut limited = stderr.take(SETUP_STDERR_BYTES);
    let _ = tokio::time::timeout(Duration::from_secs(2), limited.read_to_end(&mut buf)).await;
    let text = String::from_utf8_lossy(&buf).trim().to_owned();
    if text.is_empty() {
        "it exited without a message".into()
    } else {
        text
    }
}

impl AgentProcess {
    /// Starts the sandbox for `cfg` but not the agent: resolves the program, creates the
    /// working directory (mode 0700 where it creates it) and the hire's cgroup, spawns the
    /// helper (and bubblewrap), and waits until the sandbox is up. The agent starts with
    /// [`Launched::start`]; in between, store [`Launched::record`].
    ///
    /// The environment is cleared and set to `PATH` (inside a sandbox: the `bin` directories
    /// of bound interpreters, then [`crate::sandbox::SANDBOX_PATH`]; otherwise the node's,
    /// or [`DEFAULT_PATH`]), `HOME` = the absolute working directory, `LANG=C.UTF-8`,
    /// `SOUK_HIRE_ID` (not for a warm start, [`RunConfig::warm`]), then `cfg.env` in order.
    ///
    /// Call it from a task on a long-lived runtime thread, not from `spawn_blocking`: the
    /// sandbox dies with the thread that spawned it (`PR_SET_PDEATHSIG`).
    ///
    /// Without [`RunConfig::sandbox`] the program is spawned directly (no limits, no
    /// confinement, already running when this returns): for tests and tools only.
    pub async fn launch(cfg: &RunConfig, hire_id: &str) -> Result<Launched, RuntimeError> {
        let Some(program) = cfg.command.first() else {
            return Err(RuntimeError::EmptyCommand);
        };
        if !is_hire_id(hire_id) {
            return Err(RuntimeError::BadHireId(hire_id.chars().take(80).collect()));
        }
        let workdir_error = |source| RuntimeError::Workdir {
            path: cfg.workdir.clone(),
            source,
        };
        let mut dirs = tokio::fs::DirBuilder::new();
        dirs.recursive(true).mode(0o700);
        dirs.create(&cfg.workdir).await.map_err(workdir_error)?;
        let workdir = std::path::absolute(&cfg.workdir).map_err(workdir_error)?;
        let package_dir = match &cfg.package_dir {
            Some(p) => Some(
                std::path::absolute(p).map_err(|source| RuntimeError::Workdir {
                    path: p.clone(),
                    source,
                })?,
            ),
            None => None,
        };
        let node_path: OsString = std::env::var_os("PATH").unwrap_or_else(|| DEFAULT_PATH.into());
        let limits = RunLimits::of(cfg);

        let Some(spec) = &cfg.sandbox else {
            if !cfg.limits.is_unlimited() {
                return Err(SandboxError::LimitsNeedSandbox.into());
            }
            let mut cmd = Command::new(program_path(program, &workdir));
            cmd.args(&cfg.command[1..])
                .current_dir(&workdir)
                .env_clear()
                .env("PATH", &node_path)
                .env("HOME", &workdir)
                .env("LANG", "C.UTF-8");
            if !cfg.warm {
                cmd.env("SOUK_HIRE_ID", hire_id);
            }
            cmd.envs(cfg.env.iter().map(|(k, v)| (k, v)));
            let (child, stdin, stdout, stderr) =
                spawn_piped(&mut cmd).map_err(|source| RuntimeError::Spawn {
                    program: program.clone(),
                    source,
                })?;
            let pid = child.id().unwrap_or_default();
            let outer = process_ref(pid);
            tracing::debug!(target: "souk_runtime::agent", hire = %hire_id, pid, "started {:?} in {} (no sandbox)", cfg.command, workdir.display());
            return Ok(Launched {
                confinement: None,
                child,
                stdin,
                stdout: LineReader::new(stdout, cfg.max_line_bytes),
                stderr_task: tokio::spawn(forward_stderr(stderr, hire_id.to_owned())),
                hire_id: hire_id.to_owned(),
                record: SandboxRecord {
                    pid,
                    start_time: outer.start_time,
                    init: None,
                    boot_id: crate::sandbox::current_boot_id(),
                    cgroups: Vec::new(),
                },
                gated: false,
                limits,
                recorded_ahead: false,
            });
        };

        // A standby sandbox, if one is ready: already in its cgroup.
        let standby = cfg
            .standby
            .as_ref()
            .filter(|p| p.serves(spec))
            .and_then(|p| p.take());
        let in_standby = standby.is_some();
        let recorded_ahead = standby.as_ref().is_some_and(|s| s.recorded);
        let (standby, standby_cgroup) = match standby {
            Some(Standby {
                child,
                stdin,
                stdout,
                stderr,
                cgroup,
                ..
            }) => (Some((child, stdin, stdout, stderr)), Some(cgroup)),
            None => (None, None),
        };
        // Resolving may run a version manager (tens of ms): off the async threads.
        let prepared = {
            let spec = spec.clone();
            let command = cfg.command.clone();
            let extra_env = cfg.env.clone();
            let res_limits = cfg.limits;
            let warm = cfg.warm;
            let (workdir, package_dir, hire) =
                (workdir.clone(), package_dir.clone(), hire_id.to_owned());
            tokio::task::spawn_blocking(move || {
                let prepared = prepare(
                    &spec,
                    &Agent {
                        command: &command,
                        workdir: &workdir,
                        package_dir: package_dir.as_deref(),
                        hire_id: &hire,
                        warm,
                        extra_env: &extra_env,
                        limits: &res_limits,
                        node_path,
                    },
                    in_standby,
                );
                // The standby's cgroup gets the agent's limits; on any failure it goes,
                // with the standby in it.
                match (prepared, standby_cgroup) {
                    (Ok(mut p), Some(cg)) => match cg.set_limits(&res_limits) {
                        Ok(()) => {
                            p.cgroup = Some(cg);
                            Ok(p)
                        }
                        Err(e) => {
                            let _ = cg.remove(Duration::from_secs(1));
                            Err(SandboxError::Cgroup {
                                path: e.path,
                                source: e.source,
                            })
                        }
                    },
                    (Err(e), Some(cg)) => {
                        let _ = cg.remove(Duration::from_secs(1));
                        Err(e)
                    }
                    (prepared, None) => prepared,
                }
            })
            .await
            .map_err(|e| SandboxError::Setup {
                detail: format!("preparing the sandbox: {e}"),
            })??
        };
        let helper: PathBuf = prepared.program.clone();
        let spawned = match standby {
            Some((child, mut stdin, stdout, stderr)) => {
                let command = encode_standby(workdir.as_os_str(), &prepared.env, &prepared.args);
                match stdin.write_all(&command).await {
                    Ok(()) => Ok((child, stdin, stdout, stderr)),
                    Err(e) => Err(e),
                }
            }
            None => {
                let mut cmd = Command::new(&prepared.program);
                cmd.args(&prepared.lead)
                    .args(&prepared.args)
                    .current_dir(&workdir)
                    .env_clear()
                    .envs(prepared.env.iter().map(|(k, v)| (k, v)));
                spawn_piped(&mut cmd)
            }
        };
        let (mut child, stdin, stdout, stderr) = match spawned {
            Ok(x) => x,
            Err(source) => {
                if let Some(cg) = prepared.cgroup {
                    let _ = cg.remove(Duration::from_secs(1));
                }
                return Err(SandboxError::Spawn {
                    program: helper,
                    source,
                }
                .into());
            }
        };
        let pid = child.id().unwrap_or_default();
        let mut confinement =
            Confinement::new(spec.is_isolated(), pid, prepared.cgroup, cfg.limits);
        let mut stdout = LineReader::new(stdout, cfg.max_line_bytes);
        let up = match tokio::time::timeout(LAUNCH_TIMEOUT, stdout.next_line()).await {
            Ok(Ok(Some(line))) if line == READY_LINE.as_bytes() => confinement.sandbox_up(),
            Ok(Ok(Some(_))) => Err(SandboxError::Setup {
                detail: "unexpected output before the ready line".into(),
            }),
            // It exited: what it said on stderr is the reason.
            Ok(Ok(None) | Err(_)) => Err(SandboxError::Setup {
                detail: String::new(),
            }),
            Err(_) => Err(SandboxError::Setup {
                detail: format!("not up after {} s", LAUNCH_TIMEOUT.as_secs()),
            }),
        };
        if let Err(mut e) = up {
            confinement.kill_now();
            let _ = child.kill().await;
            if let SandboxError::Setup { detail } = &mut e
                && detail.is_empty()
            {
                *detail = setup_stderr(stderr).await;
            }
            confinement.release().await;
            return Err(e.into());
        }
        tracing::debug!(
            target: "souk_runtime::agent",
            hire = %hire_id,
            pid,
            isolated = spec.is_isolated(),
            "sandbox up for {:?} in {}",
            cfg.command,
            workdir.display()
        );
        Ok(Launched {
            record: confinement.record(),
            confinement: Some(confinement),
            child,
            stdin,
            stdout,
            stderr_task: tokio::spawn(forward_stderr(stderr, hire_id.to_owned())),
            hire_id: hire_id.to_owned(),
            gated: true,
            limits,
            recorded_ahead,
        })
    }
}

/// Spawns `cmd` with piped stdio, killed on drop.
fn spawn_piped(
    cmd: &mut Command,
) -> std::io::Result<(Child, ChildStdin, ChildStdout, ChildStderr)> {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn()?;
    match (child.stdin.take(), child.stdout.take(), child.stderr.take()) {
        (Some(i), Some(o), Some(e)) => Ok((child, i, o, e)),
        _ => Err(std::io::Error::other("missing stdio pipe")),
    }
}
