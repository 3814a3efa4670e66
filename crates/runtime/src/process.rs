//! One running agent: [`AgentProcess`] feeds it `start`/`answer`/`cancel` and turns its
//! stdout into [`Step`]s while enforcing the protocol rules and the limits of a
//! [`RunConfig`]; at its end, every process of the run is gone. Starting it (and the
//! sandbox) is `spawn.rs`.

use std::collections::VecDeque;
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

use serde_json::{Value, json};
use souk_protocol::receipt::{EntryKind, FailureCode, Usage};
use tokio::io::AsyncWriteExt;
use tokio::process::{Child, ChildStdin, ChildStdout};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep_until};

use crate::config::RunConfig;
use crate::lines::{LineError, LineReader};
use crate::message::{
    AgentEvent, AgentMessage, canonical_json, json_hash, node_line, parse_agent_line,
    truncate_entry_text,
};
use crate::sandbox::guard::Confinement;
use crate::sandbox::{SandboxError, public_io};

/// `PATH` given to the agent when the node itself has none.
pub const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// How a run ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The agent sent `result` (and its output fit the limit).
    Completed {
        /// The output.
        output: Value,
    },
    /// The run failed: the agent sent `error`, crashed, broke the protocol, or its output was
    /// too large. `message` is at most 512 bytes (it goes into the `failed` receipt entry).
    Failed {
        /// Why, as recorded in the receipt.
        code: FailureCode,
        /// Details (never a copy of the agent's private payloads, except the agent's own
        /// `error` message).
        message: String,
    },
    /// [`AgentProcess::cancel`] stopped it.
    Canceled,
    /// The wall-time limit passed; the agent was killed.
    TimedOut,
}

impl Outcome {
    /// The receipt entry kind for a completed or failed run (`completed` with the output's
    /// [`json_hash`], or `failed`). `None` for [`Outcome::Canceled`] and
    /// [`Outcome::TimedOut`], whose entry depends on who canceled and on the contract
    /// deadline (see `spec/agent-protocol.md`). Its usage is left empty: the chain's
    /// appender fills it in ([`EntryKind::set_usage`]).
    pub fn entry_kind(&self) -> Option<EntryKind> {
        match self {
            Outcome::Completed { output } => Some(EntryKind::Completed {
                output_hash: json_hash(output),
                usage: Usage::default(),
            }),
            Outcome::Failed { code, message } => Some(EntryKind::Failed {
                code: *code,
                message: truncate_entry_text(message),
                usage: Usage::default(),
            }),
            Outcome::Canceled | Outcome::TimedOut => None,
        }
    }

    fn failed(code: FailureCode, message: impl AsRef<str>) -> Outcome {
        Outcome::Failed {
            code,
            message: truncate_entry_text(message.as_ref()),
        }
    }
}

/// What [`AgentProcess::next`] saw.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// A step of the hire; record it and call `next` again.
    Event(AgentEvent),
    /// The run is over and its outcome is final. After a final message (`result` or
    /// `error`) the agent may still be exiting: [`AgentProcess::close`] gives it the rest of
    /// its grace period and then kills what is left. After any other end (a violation, a
    /// crash, the wall time) the process is already gone (reaped, or killed and reaped).
    Ended(Outcome),
}

/// Errors of [`AgentProcess::spawn`], [`AgentProcess::launch`] and [`AgentProcess::answer`].
/// A spawn error means the agent never ran: the node records `failed` with `agent-crashed`,
/// with [`RuntimeError::public_message`] as the message (never the `Display` text, which
/// may name host paths).
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// `command` is empty.
    #[error("the agent command is empty")]
    EmptyCommand,
    /// The hire id is not 64 lowercase hex digits.
    #[error("hire id {0:?} is not 64 lowercase hex digits")]
    BadHireId(String),
    /// The working directory could not be created.
    #[error("cannot create the working directory {path}: {source}")]
    Workdir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The program could not be started (not found, not executable, bad environment...).
    #[error("cannot start {program:?}: {source}")]
    Spawn {
        /// `command[0]`.
        program: String,
        /// Why.
        source: io::Error,
    },
    /// `answer` was called but the agent has no question waiting.
    #[error("the agent has not asked a question")]
    NoQuestion,
    /// `answer` was called after the run ended (or after its final message).
    #[error("the agent run has ended")]
    Ended,
    /// The agent's stdin is closed.
    #[error("the agent's stdin is closed")]
    StdinClosed,
    /// The sandbox could not be set up (see [`SandboxError`]).
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
}

impl RuntimeError {
    /// A message without host paths or host details, for the `failed` receipt entry and
    /// anything else a client sees.
    pub fn public_message(&self) -> String {
        match self {
            RuntimeError::Workdir { source, .. } => format!(
                "the working directory could not be created ({})",
                public_io(source)
            ),
            RuntimeError::Spawn { source, .. } => format!(
                "the agent program could not be started ({})",
                public_io(source)
            ),
            RuntimeError::BadHireId(_) => "internal error: malformed hire id".into(),
            RuntimeError::Sandbox(e) => e.public_message(),
            RuntimeError::EmptyCommand
            | RuntimeError::NoQuestion
            | RuntimeError::Ended
            | RuntimeError::StdinClosed => self.to_string(),
        }
    }
}

/// A running agent process.
///
/// Dropping it kills every process of the run (the sandbox, its cgroup, or the process).
/// Call [`AgentProcess::next`] until it returns [`Step::Ended`]; between steps,
/// [`AgentProcess::answer`] answers an outstanding question and [`AgentProcess::cancel`]
/// stops the run. `next` returns `Ended` as soon as the agent's final message is read, so
/// that the node can record the outcome without waiting for the agent to exit; then
/// [`AgentProcess::close`] waits (at most the rest of the grace period) for the agent to
/// exit and kills what is left. When `close` or `cancel` has returned, every process of the
/// run is gone and the hire's cgroup is emptied.
pub struct AgentProcess {
    /// First field, so dropped first: kills the sandbox's inner processes before `child`'s
    /// `kill_on_drop` kills the one spawned.
    confinement: Option<Confinement>,
    child: Child,
    hire_id: String,
    stdout: LineReader<ChildStdout>,
    stdout_done: bool,
    writer: Option<mpsc::UnboundedSender<Vec<u8>>>,
    writer_task: JoinHandle<()>,
    stderr_task: JoinHandle<VecDeque<String>>,
    /// The last stderr lines, once read to the end.
    stderr_tail: Option<Vec<String>>,
    max_line_bytes: usize,
    max_output_bytes: usize,
    max_events: usize,
    silence_timeout: Duration,
    kill_grace: Duration,
    wall_time: Duration,
    wall_deadline: Instant,
    last_activity: Instant,
    events: usize,
    awaiting_answer: bool,
    /// Once the final message was read: until when the agent may take to exit.
    exit_by: Option<Instant>,
    /// [`AgentProcess::close`] has run: every process of the run is gone.
    closed: bool,
    /// The exit status once seen, and until when stdout is still drained.
    exit: Option<(ExitStatus, Instant)>,
    ended: Option<Outcome>,
}

impl std::fmt::Debug for AgentProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentProcess")
            .field("hire_id", &self.hire_id)
            .field("pid", &self.child.id())
            .field("events", &self.events)
            .field("awaiting_answer", &self.awaiting_answer)
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        self.writer_task.abort();
        self.stderr_task.abort();
    }
}

/// True for 64 lowercase hex digits.
pub(crate) fn is_hire_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A readable duration: whole seconds as `"2s"`, otherwise milliseconds (`"250ms"`).
fn fmt_duration(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

pub(crate) async fn write_lines(
    mut stdin: ChildStdin,
    mut rx: mpsc::UnboundedReceiver<Vec<u8>>,
    hire: String,
) {
    while let Some(line) = rx.recv().await {
        let written = async {
            stdin.write_all(&line).await?;
            stdin.flush().await
        };
        if let Err(e) = written.await {
            tracing::debug!(target: "souk_runtime::agent", hire = %hire, "writing to agent stdin: {e}");
            return;
        }
    }
    // All senders dropped: returning drops stdin, so the agent reads end of file.
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(d) => sleep_until(d).await,
        None => std::future::pending().await,
    }
}

enum Wake {
    Line(Result<Option<Vec<u8>>, LineError>),
    Exited(io::Result<ExitStatus>),
    Wall,
    Silence,
    Drain,
}

impl AgentProcess {
    /// Starts the agent and sends it the `start` message: [`AgentProcess::launch`] then
    /// [`Launched::start`](crate::Launched::start). A node that must record the sandbox
    /// before the agent runs (crash recovery) calls the two itself.
    pub async fn spawn(
        cfg: &RunConfig,
        hire_id: &str,
        input: &Value,
        checkpoint: Option<&Value>,
    ) -> Result<AgentProcess, RuntimeError> {
        Ok(Self::launch(cfg, hire_id).await?.start(input, checkpoint))
    }

    /// A process started by `spawn.rs`, its start line queued on `writer`.
    pub(crate) fn running(parts: Running) -> AgentProcess {
        let started = Instant::now();
        let cfg = parts.limits;
        AgentProcess {
            confinement: parts.confinement,
            child: parts.child,
            hire_id: parts.hire_id,
            stdout: parts.stdout,
            stdout_done: false,
            writer: Some(parts.writer),
            writer_task: parts.writer_task,
            stderr_task: parts.stderr_task,
            stderr_tail: None,
            max_line_bytes: cfg.max_line_bytes,
            max_output_bytes: cfg.max_output_bytes,
            max_events: cfg.max_events,
            silence_timeout: cfg.silence_timeout,
            kill_grace: cfg.kill_grace,
            wall_time: cfg.wall_time,
            wall_deadline: started + cfg.wall_time,
            last_activity: started,
            events: 0,
            awaiting_answer: false,
            exit_by: None,
            closed: false,
            exit: None,
            ended: None,
        }
    }

    /// The last lines the agent wrote on stderr (at most
    /// [`STDERR_TAIL_LINES`](crate::STDERR_TAIL_LINES), each cut and with control characters
    /// replaced), for the provider's log when a run fails. Meant for after
    /// [`AgentProcess::close`]: it waits up to 1 s for stderr to reach its end (every
    /// process of the run is gone by then, so it does at once). Never put it in a receipt:
    /// it is the agent's free text.
    pub async fn stderr_tail(&mut self) -> Vec<String> {
        if self.stderr_tail.is_none() {
            let lines =
                match tokio::time::timeout(Duration::from_secs(1), &mut self.stderr_task).await {
                    Ok(Ok(lines)) => lines.into(),
                    Ok(Err(_)) | Err(_) => Vec::new(),
                };
            self.stderr_tail = Some(lines);
        }
        self.stderr_tail.clone().unwrap_or_default()
    }

    /// The process id, while the process has not been reaped.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// True while the agent has asked a question that has not been answered.
    pub fn awaiting_answer(&self) -> bool {
        self.awaiting_answer
    }

    /// The next step. Never panics on agent output; after [`Step::Ended`] it returns the same
    /// `Ended` again. Nothing the agent writes after its final message is read as a step:
    /// the outcome depends only on what it wrote up to that message.
    ///
    /// Cancel safe while it waits for the agent (no line is lost if the future is dropped),
    /// so a node can `select!` on it and a cancel request, then call
    /// [`AgentProcess::cancel`]. Dropping it while a run is ending (killing the agent after a
    /// violation) may leave the process killed with the outcome undecided; the next call
    /// then reports what it finds (usually `agent-crashed`).
    pub async fn next(&mut self) -> Step {
        if let Some(outcome) = &self.ended {
            return Step::Ended(outcome.clone());
        }
        let step = self.next_inner().await;
        if let Step::Ended(outcome) = &step {
            tracing::debug!(target: "souk_runtime::agent", hire = %self.hire_id, "ended: {outcome:?}");
            self.ended = Some(outcome.clone());
            self.writer = None;
            if self.exit_by.is_none() {
                // Ended without a final message: the process is gone already.
                self.release().await;
                self.closed = true;
            }
        }
        step
    }

    async fn next_inner(&mut self) -> Step {
        loop {
            if self.stdout_done {
                return Step::Ended(self.after_eof().await);
            }
            let now = Instant::now();
            let wall = Some(self.wall_deadline);
            let silence =
                (!self.awaiting_answer).then(|| self.last_activity + self.silence_timeout);
            let drain = self.exit.map(|e| e.1);
            // Deadlines are checked here too: the line branch below is polled first and an
            // agent that never stops writing must not starve them.
            let wake = if wall.is_some_and(|d| now >= d) {
                Wake::Wall
            } else if silence.is_some_and(|d| now >= d) {
                Wake::Silence
            } else if drain.is_some_and(|d| now >= d) {
                Wake::Drain
            } else {
                tokio::select! {
                    biased;
                    line = self.stdout.next_line() => Wake::Line(line),
                    status = self.child.wait(), if self.exit.is_none() => Wake::Exited(status),
                    () = sleep_until_opt(wall) => Wake::Wall,
                    () = sleep_until_opt(silence) => Wake::Silence,
                    () = sleep_until_opt(drain) => Wake::Drain,
                }
            };
            match wake {
                Wake::Line(Ok(Some(line))) => {
                    if let Some(step) = self.handle_line(line).await {
                        return step;
                    }
                }
                Wake::Line(Ok(None)) => self.stdout_done = true,
                Wake::Line(Err(LineError::TooLong)) => {
                    let limit = self.max_line_bytes;
                    return Step::Ended(
                        self.violation(format!("line longer than {limit} bytes"))
                            .await,
                    );
                }
                Wake::Line(Err(LineError::Io(e))) => {
                    self.kill().await;
                    return Step::Ended(Outcome::failed(
                        FailureCode::Internal,
                        format!("reading the agent's stdout: {e}"),
                    ));
                }
                Wake::Exited(Ok(status)) => {
                    self.exit = Some((status, Instant::now() + self.kill_grace));
                }
                Wake::Exited(Err(e)) => {
                    self.kill().await;
                    return Step::Ended(Outcome::failed(
                        FailureCode::Internal,
                        format!("waiting for the agent: {e}"),
                    ));
                }
                Wake::Wall => {
                    self.kill().await;
                    tracing::debug!(
                        target: "souk_runtime::agent",
                        hire = %self.hire_id,
                        "wall time of {} exceeded",
                        fmt_duration(self.wall_time)
                    );
                    return Step::Ended(Outcome::TimedOut);
                }
                Wake::Silence => {
                    let msg = format!(
                        "silent for more than {}",
                        fmt_duration(self.silence_timeout)
                    );
                    return Step::Ended(self.violation(msg).await);
                }
                // The agent exited but something still holds its stdout open: stop waiting.
                Wake::Drain => self.stdout_done = true,
            }
        }
    }

    /// Handles one line: `Some` when it produced a step to return.
    async fn handle_line(&mut self, line: Vec<u8>) -> Option<Step> {
        let line = line.as_slice();
        if line.iter().all(u8::is_ascii_whitespace) {
            return None; // blank lines are ignored (and do not count as activity)
        }
        self.last_activity = Instant::now();
        self.events += 1;
        if self.events > self.max_events {
            let max = self.max_events;
            return Some(Step::Ended(
                self.violation(format!("sent more than {max} messages"))
                    .await,
            ));
        }
        let msg = match parse_agent_line(line) {
            Ok(m) => m,
            Err(why) => return Some(Step::Ended(self.violation(why).await)),
        };
        if self.awaiting_answer && !matches!(msg, AgentMessage::Error(_)) {
            let why = format!("sent {} while waiting for an answer", msg.type_name());
            return Some(Step::Ended(self.violation(why).await));
        }
        match msg {
            AgentMessage::Event(event) => {
                if matches!(event, AgentEvent::Question { .. }) {
                    self.awaiting_answer = true;
                }
                Some(Step::Event(event))
            }
            AgentMessage::Result(output) => {
                let size = canonical_json(&output).len();
                let outcome = if size > self.max_output_bytes {
                    Outcome::failed(
                        FailureCode::OutputTooLarge,
                        format!(
                            "output is {size} bytes; the limit is {}",
                            self.max_output_bytes
                        ),
                    )
                } else {
                    Outcome::Completed { output }
                };
                Some(self.finish(outcome))
            }
            AgentMessage::Error(message) => {
                Some(self.finish(Outcome::failed(FailureCode::AgentError, message)))
            }
        }
    }

    /// The final message: the outcome is decided now (nothing the agent writes later
    /// changes it), and the agent has `kill_grace` to exit ([`AgentProcess::close`]).
    fn finish(&mut self, outcome: Outcome) -> Step {
        tracing::debug!(target: "souk_runtime::agent", hire = %self.hire_id, "final message");
        self.awaiting_answer = false;
        self.writer = None; // closes stdin once queued lines are written
        self.exit_by = Some(Instant::now() + self.kill_grace);
        Step::Ended(outcome)
    }

    /// Stdout is closed (or given up on) without a final message: decide the outcome.
    async fn after_eof(&mut self) -> Outcome {
        let grace = self.kill_grace;
        let status = match self.exit {
            Some((status, _)) => Some(status),
            None => {
                let limit = (Instant::now() + grace).min(self.wall_deadline);
                match tokio::time::timeout_at(limit, self.child.wait()).await {
                    Ok(Ok(status)) => {
                        self.exit = Some((status, Instant::now()));
                        Some(status)
                    }
                    Ok(Err(_)) | Err(_) => None,
                }
            }
        };
        match status {
            None => {
                self.kill().await;
                if Instant::now() >= self.wall_deadline {
                    Outcome::TimedOut
                } else {
                    Outcome::failed(
                        FailureCode::ProtocolViolation,
                        "closed its stdout without a final message",
                    )
                }
            }
            Some(s) if s.success() => Outcome::failed(
                FailureCode::ProtocolViolation,
                "exited with status 0 without a final message",
            ),
            Some(s) => Outcome::failed(FailureCode::AgentCrashed, self.crash_message(s)),
        }
    }

    /// Why the agent ended without a result: its exit status or signal, and the limit that
    /// stopped it when one is known (a cgroup counted it, or its signal says so).
    fn crash_message(&self, status: ExitStatus) -> String {
        let Some(c) = &self.confinement else {
            return format!("agent exited before a result ({status})");
        };
        // The helper reports an agent killed by signal `s` as exit status `128 + s`.
        let signal = match (status.code(), status.signal()) {
            (Some(code), _) if (129..=128 + 64).contains(&code) => Some(code - 128),
            (_, Some(sig)) => Some(sig),
            _ => None,
        };
        let what = match (signal, status.code()) {
            (Some(sig), _) => format!("killed by {}", crate::sandbox::signal_name(sig)),
            (None, Some(code)) => format!("exit status: {code}"),
            (None, None) => status.to_string(),
        };
        match crate::sandbox::limit_note(c.limits(), c.hits(), signal) {
            Some(note) => format!("agent exited before a result ({what}; {note})"),
            None => format!("agent exited before a result ({what})"),
        }
    }

    /// Ends the run's processes: after a final message, waits until the agent exits, at
    /// most until its grace period (`kill_grace`, counted from the final message) is over,
    /// reading and discarding its stdout meanwhile (anything it writes there is ignored and
    /// logged), then kills what is left; after any other end, or before the run ended (the
    /// node is stopping), kills at once. Then the sandbox's cgroup is emptied. When it
    /// returns, every process of the run is gone. Calling it again does nothing.
    pub async fn close(&mut self) {
        if self.closed {
            return;
        }
        self.closed = true;
        self.writer = None;
        if let Some(until) = self.exit_by {
            let exited = match self.exit {
                Some((status, _)) => Some(status),
                None => self.wait_exit(until).await,
            };
            match exited {
                Some(s) if s.success() => {}
                Some(s) => tracing::warn!(
                    target: "souk_runtime::agent",
                    hire = %self.hire_id,
                    "agent exited with {s} after its final message"
                ),
                None => {
                    tracing::warn!(
                        target: "souk_runtime::agent",
                        hire = %self.hire_id,
                        "agent did not exit within {} of its final message; killed",
                        fmt_duration(self.kill_grace)
                    );
                    self.kill().await;
                }
            }
        } else {
            self.kill().await;
        }
        self.release().await;
    }

    /// Waits until `until` for the process to exit, draining its stdout; `None` if it did not.
    async fn wait_exit(&mut self, until: Instant) -> Option<ExitStatus> {
        let child = &mut self.child;
        let stdout = &mut self.stdout;
        let mut stdout_done = self.stdout_done;
        let mut wrote = false;
        let exited = tokio::time::timeout_at(until, async {
            loop {
                tokio::select! {
                    status = child.wait() => return status,
                    read = stdout.discard(), if !stdout_done => match read {
                        Ok(Some(nonblank)) => wrote |= nonblank,
                        Ok(None) | Err(_) => stdout_done = true,
                    },
                }
            }
        })
        .await;
        self.stdout_done = stdout_done;
        if wrote {
            tracing::warn!(
                target: "souk_runtime::agent",
                hire = %self.hire_id,
                "the agent wrote on stdout after its final message (ignored)"
            );
        }
        match exited {
            Ok(Ok(status)) => {
                self.exit = Some((status, Instant::now()));
                Some(status)
            }
            Ok(Err(_)) | Err(_) => None,
        }
    }

    /// After the run: the sandbox's cgroup is emptied and removed.
    async fn release(&mut self) {
        if let Some(c) = &mut self.confinement {
            c.release().await;
        }
    }

    /// Kills the agent and returns a protocol-violation outcome.
    async fn violation(&mut self, why: impl Into<String>) -> Outcome {
        let why = why.into();
        tracing::debug!(target: "souk_runtime::agent", hire = %self.hire_id, "protocol violation: {why}");
        self.kill().await;
        Outcome::failed(FailureCode::ProtocolViolation, why)
    }

    /// Kills the process and everything of its sandbox (if still running) and reaps it.
    async fn kill(&mut self) {
        self.writer = None;
        if self.exit.is_none() {
            if let Some(c) = &self.confinement {
                c.kill_now();
            }
            if let Err(e) = self.child.kill().await {
                tracing::debug!(target: "souk_runtime::agent", hire = %self.hire_id, "kill: {e}");
            }
        }
    }

    /// Sends the answer to the agent's outstanding question.
    ///
    /// Errors if no question is waiting ([`RuntimeError::NoQuestion`]) or the run has ended.
    /// The silence timer, suspended while the question was open, restarts now.
    pub async fn answer(&mut self, answer: &Value) -> Result<(), RuntimeError> {
        if self.ended.is_some() {
            return Err(RuntimeError::Ended);
        }
        if !self.awaiting_answer {
            return Err(RuntimeError::NoQuestion);
        }
        let tx = self.writer.as_ref().ok_or(RuntimeError::StdinClosed)?;
        tx.send(node_line(&json!({"type": "answer", "answer": answer})))
            .map_err(|_| RuntimeError::StdinClosed)?;
        self.awaiting_answer = false;
        self.last_activity = Instant::now();
        Ok(())
    }

    /// Stops the run: sends `cancel` (then closes stdin), gives the agent `kill_grace` to
    /// exit while draining (and ignoring) its stdout, then kills it. Returns
    /// [`Outcome::Canceled`], or the outcome already reached if the run had ended (then it
    /// [closes](AgentProcess::close) the run). Afterwards [`AgentProcess::next`] returns
    /// `Ended(Canceled)`, and every process of the run is gone.
    pub async fn cancel(&mut self, reason: &str) -> Outcome {
        if let Some(outcome) = self.ended.clone() {
            self.close().await;
            return outcome;
        }
        if let Some(tx) = self.writer.take() {
            let _ = tx.send(node_line(&json!({"type": "cancel", "reason": reason})));
        }
        let deadline = Instant::now() + self.kill_grace;
        let child = &mut self.child;
        let stdout = &mut self.stdout;
        let mut stdout_done = self.stdout_done;
        let exited = tokio::time::timeout_at(deadline, async {
            loop {
                tokio::select! {
                    status = child.wait() => return status,
                    line = stdout.next_line(), if !stdout_done => {
                        if !matches!(line, Ok(Some(_))) {
                            stdout_done = true;
                        }
                    }
                }
            }
        })
        .await;
        self.stdout_done = stdout_done;
        if let Ok(Ok(status)) = exited {
            self.exit = Some((status, Instant::now()));
        } else {
            self.kill().await;
        }
        self.release().await;
        self.closed = true;
        self.ended = Some(Outcome::Canceled);
        Outcome::Canceled
    }
}

/// The limits of a [`RunConfig`] an [`AgentProcess`] keeps.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RunLimits {
    pub(crate) max_line_bytes: usize,
    pub(crate) max_output_bytes: usize,
    pub(crate) max_events: usize,
    pub(crate) silence_timeout: Duration,
    pub(crate) kill_grace: Duration,
    pub(crate) wall_time: Duration,
}

impl RunLimits {
    pub(crate) fn of(cfg: &RunConfig) -> RunLimits {
        RunLimits {
            max_line_bytes: cfg.max_line_bytes,
            max_output_bytes: cfg.max_output_bytes,
            max_events: cfg.max_events,
            silence_timeout: cfg.silence_timeout,
            kill_grace: cfg.kill_grace,
            wall_time: cfg.wall_time,
        }
    }
}

/// What `spawn.rs` hands over when the agent starts.
pub(crate) struct Running {
    pub(crate) confinement: Option<Confinement>,
    pub(crate) child: Child,
    pub(crate) hire_id: String,
    pub(crate) stdout: LineReader<ChildStdout>,
    pub(crate) writer: mpsc::UnboundedSender<Vec<u8>>,
    pub(crate) writer_task: JoinHandle<()>,
    pub(crate) stderr_task: JoinHandle<VecDeque<String>>,
    pub(crate) limits: RunLimits,
}
