//! The provider's job task: runs the agent for one hire and turns every step into a signed
//! receipt entry, appended through [`super::chain`] (where a receipt is appended) before
//! anyone is told about it.
//!
//! A job resumes after a crash or restart: entries already in the chain stay, the agent is
//! restarted from its last checkpoint, and a question already asked is not asked twice.
//!
//! Each run of the agent (from its start for the hire to its end, or to the node stopping)
//! is counted in `souk_agent_runs_total{outcome}` and timed in `souk_agent_run_seconds`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value;
use souk_protocol::Hash;
use souk_protocol::hire::HireState;
use souk_protocol::manifest::Manifest;
use souk_protocol::receipt::{Canceler, EntryKind, FailureCode, Usage};
use souk_protocol::signed::Signed;
use souk_runtime::{AgentEvent, AgentProcess, Outcome, RuntimeError, Step};
use tokio::sync::mpsc;

use super::chain::Chain;
use super::ctx::{Ctx, blocking};
use super::egress::{HireProxy, network_call};
use super::error::HireError;
use super::export::{blob, contract_and_manifest};
use super::launch;
use super::msg::{JobControl, JobUpdate, Msg};
use super::offers::offer;
use super::record::{BLOB_ANSWER, BLOB_CHECKPOINT, BLOB_INPUT, BLOB_OUTPUT, HireRecord};
use super::warm::WarmSlot;
use crate::agent_file::RunSpec;
use crate::metrics::RunOutcome;
use crate::now_ms;

/// Everything a job needs.
pub(crate) struct Job {
    ctx: Ctx,
    hire_id: Hash,
    record: HireRecord,
    manifest: Signed<Manifest>,
    /// How to run the agent (`None`: it is no longer published, so the job can only fail).
    run: Option<RunSpec>,
    workdir: PathBuf,
    input: Value,
    control: mpsc::Receiver<JobControl>,
    /// The agent's egress proxy while it runs.
    proxy: Option<HireProxy>,
    /// Whether the package is runnable, checked while the contract was stored
    /// ([`Fresh`]); `None`: check it before running.
    runnable: Option<Result<(), String>>,
    /// A fresh hire: its chain is empty (its contract was just stored, nothing else).
    fresh: bool,
    /// A sandbox made ahead that the acceptance took, its program already started
    /// ([`Fresh::ahead`]); whatever the job does not use is discarded when it ends.
    ahead: Option<WarmSlot>,
}

/// What a provider has in hand for a hire whose contract it just stored: the job starts from
/// it without reading the store, and the package check ran beside the contract's commit.
pub(crate) struct Fresh {
    pub(crate) manifest: Signed<Manifest>,
    pub(crate) run: RunSpec,
    pub(crate) input: Value,
    pub(crate) runnable: Result<(), String>,
    /// A sandbox made ahead of the hire (a warm process, or a prepared sandbox whose program
    /// was started with the offer or when the contract was checked, so that its interpreter
    /// boots while the contract is stored): the job gives it the hire.
    pub(crate) ahead: Option<WarmSlot>,
}

enum Flow {
    Continue,
    Stop,
    /// An answer kept while the agent replayed is due now that it asked again.
    Answer(Value),
}

impl Job {
    /// Loads what the job of hire `record` needs from the store and the offers.
    pub(crate) async fn load(
        ctx: Ctx,
        record: HireRecord,
        control: mpsc::Receiver<JobControl>,
    ) -> Result<Job, HireError> {
        let id = record.hire_id;
        let store = ctx.store.clone();
        let offers = ctx.offers.clone();
        let (manifest, run, input) = blocking(move || {
            let (_, manifest) = contract_and_manifest(&store, &id)?;
            // The manifest may have left the offers (expired, replaced); the agent record
            // still says how to run it. Without either, the job starts only to record why
            // it cannot run.
            let run = match offer(&offers, &manifest.id()) {
                Some(o) => Some(o.run),
                None => store
                    .get_agent(&manifest.body().name)?
                    .and_then(|raw| {
                        serde_json::from_slice::<crate::publisher::AgentRecord>(&raw).ok()
                    })
                    .map(|r| r.spec.run),
            };
            let input: Value = serde_json::from_slice(&blob(&store, &id, BLOB_INPUT)?)
                .map_err(|e| HireError::corrupt(id, BLOB_INPUT, e))?;
            Ok((manifest, run, input))
        })
        .await?;
        Ok(Job {
            workdir: ctx.workdir.join(id.to_hex()),
            ctx,
            hire_id: id,
            record,
            manifest,
            run,
            input,
            control,
            proxy: None,
            runnable: None,
            fresh: false,
            ahead: None,
        })
    }

    /// The job of a contract just stored, from what its acceptance had in hand.
    pub(crate) fn fresh(
        ctx: Ctx,
        record: HireRecord,
        control: mpsc::Receiver<JobControl>,
        fresh: Fresh,
    ) -> Job {
        Job {
            workdir: ctx.workdir.join(record.hire_id.to_hex()),
            ctx,
            hire_id: record.hire_id,
            record,
            manifest: fresh.manifest,
            run: Some(fresh.run),
            input: fresh.input,
            control,
            proxy: None,
            runnable: Some(fresh.runnable),
            fresh: true,
            ahead: fresh.ahead,
        }
    }

    /// Discards a sandbox made ahead that this hire took and will not use.
    fn drop_unused(&self, slot: Option<WarmSlot>) {
        if let Some(slot) = slot {
            self.ctx.warm.discard(slot);
            self.ctx.warm.release(&self.hire_id);
        }
    }

    /// Appends the next entry; before a terminal one, the proxy is closed and every call it
    /// saw is recorded (nothing can follow a terminal entry).
    async fn append(
        &mut self,
        chain: &mut Chain,
        kind: EntryKind,
        payload: Option<Vec<u8>>,
    ) -> Result<(), HireError> {
        if !kind.is_terminal() {
            return self.append_entry(chain, kind, payload).await;
        }
        self.close_network(chain).await?;
        let ended = log_line(&kind);
        self.append_entry(chain, kind, payload).await?;
        let (hire, agent) = (self.hire_id.short(), &self.record.agent);
        let took = now_ms().saturating_sub(self.record.created_at) as f64 / 1000.0;
        let entries = self.record.entries;
        match ended {
            (false, what) => {
                tracing::info!(%hire, %agent, "hire {what} ({entries} receipts, {took:.1} s)")
            }
            (true, what) => {
                tracing::warn!(%hire, %agent, "hire {what} ({entries} receipts, {took:.1} s)")
            }
        }
        Ok(())
    }

    /// Appends the next entry (see [`Chain::append`]) and tells the actor.
    async fn append_entry(
        &mut self,
        chain: &mut Chain,
        kind: EntryKind,
        payload: Option<Vec<u8>>,
    ) -> Result<(), HireError> {
        let record = chain.append(&self.ctx, &self.record, kind, payload).await?;
        self.record = record.clone();
        self.report(JobUpdate::Appended {
            hire_id: self.hire_id,
            record: Box::new(record),
        })
        .await;
        Ok(())
    }

    async fn report(&self, update: JobUpdate) {
        // The actor is gone only when the node stops; then nobody needs the update.
        let _ = self.ctx.inbox.send(Msg::Job(update)).await;
    }

    async fn put_blob(&self, name: &'static str, bytes: Vec<u8>) -> Result<(), HireError> {
        let store = self.ctx.store.clone();
        let id = self.hire_id;
        blocking(move || Ok(store.put_hire_blob(&id, name, &bytes)?)).await
    }

    /// Stores the output without a disk sync: the terminal entry appended right after it is
    /// synced, which makes the output durable too (commits become durable in order).
    async fn put_output(&self, bytes: Vec<u8>) -> Result<(), HireError> {
        let store = self.ctx.store.clone();
        let id = self.hire_id;
        blocking(move || Ok(store.put_hire_blob_deferred(&id, BLOB_OUTPUT, &bytes)?)).await
    }

    /// Runs (or resumes) the job to its end. The actor learns that it ended from
    /// [`JobUpdate::Ended`], sent by whoever spawned the job.
    pub(crate) async fn run(mut self) {
        if let Err(e) = self.drive().await {
            tracing::error!(hire = %self.hire_id.short(), "job stopped: {e}");
        }
        // Taken for this hire and not used (it ended before its agent ran).
        let unused = self.ahead.take();
        self.drop_unused(unused);
    }

    async fn drive(&mut self) -> Result<(), HireError> {
        let mut chain = if self.fresh {
            Chain::empty()
        } else {
            Chain::load(&self.ctx, self.hire_id, self.record.state).await?
        };
        if chain.state.is_terminal() {
            return Ok(());
        }
        let deadline = self.record.deadline;
        let resumed = chain.started();
        if now_ms() >= deadline {
            return self
                .append(
                    &mut chain,
                    EntryKind::Expired {
                        deadline,
                        usage: Usage::default(),
                    },
                    None,
                )
                .await;
        }
        let broken = if resumed {
            FailureCode::ResumeFailed
        } else {
            FailureCode::Internal
        };
        let Some(run) = self.run.clone() else {
            return self
                .fail(
                    &mut chain,
                    broken,
                    "the agent is no longer published on this node".into(),
                )
                .await;
        };
        let runnable = match self.runnable.take() {
            Some(checked) => checked,
            None => launch::check_runnable(&self.ctx, &run, self.manifest.body()).await,
        };
        if let Err(e) = runnable {
            tracing::warn!(hire = %self.hire_id.short(), "refusing to run the agent: {e}");
            let public = if e.contains("republish") {
                "the agent package changed since its manifest was signed; republish it"
            } else {
                "the agent's package is not runnable on this node"
            };
            return self.fail(&mut chain, broken, public.into()).await;
        }
        // A fresh hire may take a warm process (booted before the hire, never used before) or
        // a prepared sandbox (made before the hire, its program not started yet).
        let mut warm = if resumed {
            None
        } else {
            self.ahead
                .take()
                .or_else(|| self.ctx.warm.take(&self.manifest.id(), self.hire_id))
        };
        // A cold start records `started` now, before the sandbox is made; a warm one right
        // before its process gets the hire, with the durable sandbox record (below).
        if !resumed && warm.is_none() {
            self.append_started(&mut chain).await?;
        }
        // A fresh hire has neither a checkpoint nor a sandbox left by a crash: both are stored
        // after its `started` entry, and commits become durable in order.
        let checkpoint: Option<Value> = if resumed {
            let store = self.ctx.store.clone();
            let id = self.hire_id;
            blocking(move || Ok(store.get_hire_blob(&id, BLOB_CHECKPOINT)?))
                .await?
                .and_then(|b| serde_json::from_slice(&b).ok())
        } else {
            None
        };
        // A sandbox left by a crash of this node must be gone before the agent runs again:
        // a hire never runs twice at once.
        if resumed && let Err(e) = launch::stop_leftover(&self.ctx, self.hire_id).await {
            tracing::error!(hire = %self.hire_id.short(), "cannot stop a previous run of the agent: {e}");
            return self
                .fail(
                    &mut chain,
                    broken,
                    "a previous run of the agent could not be stopped".into(),
                )
                .await;
        }
        if let Some(w) = warm.take() {
            match tokio::fs::rename(&w.workdir, &self.workdir).await {
                Ok(()) => warm = Some(w),
                Err(e) => {
                    tracing::warn!(hire = %self.hire_id.short(), "cannot take a warm process ({e}); starting cold");
                    self.ctx.warm.discard(w);
                    self.ctx.warm.release(&self.hire_id);
                    self.append_started(&mut chain).await?;
                }
            }
        }
        if let Err(e) = launch::prepare_dirs(&self.ctx.workdir, &self.workdir).await {
            tracing::error!(hire = %self.hire_id.short(), "cannot create the working directory {}: {e}", self.workdir.display());
            self.drop_unused(warm);
            return self
                .fail(
                    &mut chain,
                    FailureCode::Internal,
                    "cannot create the working directory".into(),
                )
                .await;
        }
        let isolated = self
            .ctx
            .settings
            .sandbox
            .as_ref()
            .is_some_and(|s| s.is_isolated());
        // A fresh hire has used no credential budget: its chain holds no network call yet.
        let used = if resumed {
            launch::budget_used(&self.ctx, self.hire_id).await?
        } else {
            Default::default()
        };
        let sockets = launch::sockets_dir(&self.ctx.workdir);
        self.proxy = match HireProxy::start(
            &self.ctx,
            self.hire_id,
            &self.record.client,
            self.manifest.body(),
            &used,
            isolated,
            &sockets,
            warm.as_mut().and_then(|w| w.proxy.take()),
        )
        .await
        {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(hire = %self.hire_id.short(), "cannot start the egress proxy: {e}");
                self.drop_unused(warm);
                return self
                    .fail(
                        &mut chain,
                        FailureCode::Internal,
                        "the agent's network proxy could not start".into(),
                    )
                    .await;
            }
        };
        // The deadline and the limit are the node's time; the agent's timer is real time.
        let wall = crate::clock::real(Duration::from_millis(
            deadline
                .saturating_sub(now_ms())
                .min(self.manifest.body().limits.max_duration_ms),
        ));
        let hex = self.hire_id.to_hex();
        if let Some(w) = warm {
            let how = if w.booted {
                "warm start"
            } else {
                "prepared sandbox"
            };
            tracing::debug!(hire = %self.hire_id.short(), "{how}");
            // `started`, then the sandbox record moved from the node's record of the warm
            // process to the hire, neither synced on its own: until a later commit is, the
            // node's record (durable since the boot) names the process, so a restarted node
            // stops it before anything resumes. No disk sync before the agent gets its hire.
            self.append_started(&mut chain).await?;
            launch::keep_sandbox_record(&self.ctx, self.hire_id, Some(w.launched.record()), true)
                .await?;
            let started = Instant::now();
            let mut agent = w.launched.start_for(&hex, wall, &self.input, None);
            let ended = self.supervise(&mut chain, &mut agent).await;
            agent.close().await;
            self.ctx
                .metrics
                .agent_run(run_outcome(&chain), started.elapsed());
            launch::keep_sandbox_record(&self.ctx, self.hire_id, None, false).await?;
            return ended;
        }
        let mut env = vec![("SOUK_HIRE_ID".to_owned(), hex.clone())];
        env.extend(launch::agent_env(&run));
        if let Some(p) = &self.proxy {
            env.extend(p.env.iter().cloned());
        }
        let forward = self.proxy.as_ref().and_then(|p| p.forward.clone());
        let cfg = launch::run_config(
            &self.ctx,
            self.manifest.body(),
            &run,
            self.workdir.clone(),
            env,
            forward,
            wall,
        );
        let start_failed = |e: RuntimeError| {
            tracing::warn!(hire = %self.hire_id.short(), "the agent could not start: {e}");
            e.public_message()
        };
        let started = Instant::now();
        let launched = match AgentProcess::launch(&cfg, &hex).await {
            Ok(l) => l,
            Err(e) => {
                self.ctx
                    .metrics
                    .agent_run(RunOutcome::StartFailed, started.elapsed());
                let code = if resumed {
                    FailureCode::ResumeFailed
                } else {
                    FailureCode::AgentCrashed
                };
                let why = start_failed(e);
                return self
                    .fail(
                        &mut chain,
                        code,
                        format!("the agent could not start: {why}"),
                    )
                    .await;
            }
        };
        // Recorded before the agent runs: a restarted node finds and stops it. A sandbox made
        // from a standby was recorded when the standby started (the same process and
        // cgroups), so its record moves to the hire without a sync of its own.
        launch::keep_sandbox_record(
            &self.ctx,
            self.hire_id,
            Some(launched.record()),
            launched.recorded_ahead(),
        )
        .await?;
        let mut agent = launched.start(&self.input, checkpoint.as_ref());
        let ended = self.supervise(&mut chain, &mut agent).await;
        // Every process of the hire is gone once this returns (after the terminal entry, the
        // agent had its grace to exit).
        agent.close().await;
        self.ctx
            .metrics
            .agent_run(run_outcome(&chain), started.elapsed());
        // The agent and every process of the hire are gone: nothing to find after a crash.
        launch::keep_sandbox_record(&self.ctx, self.hire_id, None, false).await?;
        ended
    }

    /// Appends the `started` entry of a fresh hire.
    async fn append_started(&mut self, chain: &mut Chain) -> Result<(), HireError> {
        let started = EntryKind::Started {
            runtime_digest: self.manifest.body().runtime_digest,
        };
        self.append(chain, started, None).await
    }

    /// Runs the agent's steps, the client's answers and cancels, and the proxy's
    /// observations into the chain until the hire ends or the node stops.
    async fn supervise(
        &mut self,
        chain: &mut Chain,
        agent: &mut AgentProcess,
    ) -> Result<(), HireError> {
        loop {
            tokio::select! {
                step = agent.next() => {
                    let ended = match &step {
                        Step::Ended(Outcome::Failed { code, message }) => {
                            Some(Some((*code, message.clone())))
                        }
                        Step::Ended(_) => Some(None),
                        Step::Event(_) => None,
                    };
                    let flow = self.on_step(chain, step).await;
                    if let Some(failed) = ended {
                        // The outcome is recorded (the agent's final message decided it); only
                        // now does the agent get its grace to exit, or get killed.
                        agent.close().await;
                        if let Some((code, message)) = failed {
                            self.log_failure(agent, code, &message).await;
                        }
                    }
                    match flow? {
                        Flow::Stop => return Ok(()),
                        Flow::Answer(value) => self.deliver_answer(chain, agent, value).await?,
                        Flow::Continue => {}
                    }
                }
                Some(observed) = next_observation(&mut self.proxy) => {
                    let call = network_call(&self.ctx.metrics, observed);
                    self.append_entry(chain, call, None).await?;
                }
                ctl = self.control.recv() => match ctl {
                    Some(JobControl::Answer { answer, done }) => {
                        if chain.state != HireState::InputRequired {
                            let _ = done.send(Err(HireError::WrongState {
                                id: self.hire_id,
                                state: chain.state,
                                needs: "the agent asked no question",
                            }));
                            continue;
                        }
                        let value: Value = serde_json::from_slice(&answer).unwrap_or(Value::Null);
                        let kept = if agent.awaiting_answer() {
                            self.deliver_answer(chain, agent, value).await
                        } else {
                            // Resumed and still replaying: keep the answer (durably) until
                            // the agent asks again.
                            self.put_blob(BLOB_ANSWER, answer).await
                        };
                        match kept {
                            Ok(()) => {
                                let _ = done.send(Ok(()));
                            }
                            Err(e) => {
                                let _ = done.send(Err(HireError::Stopped));
                                return Err(e);
                            }
                        }
                    }
                    Some(JobControl::Cancel { by, reason }) => {
                        let _ = agent.cancel(&reason).await;
                        let reason = souk_runtime::truncate_entry_text(&reason);
                        return self.append(chain, EntryKind::Canceled { by, reason, usage: Usage::default() }, None).await;
                    }
                    // The node is stopping: record what the proxy saw, leave the chain as it
                    // is; the job resumes later.
                    None => return self.close_network(chain).await,
                },
            }
        }
    }

    /// Logs why the agent failed, with its own last words on stderr (for the provider; never
    /// in a receipt). Called once the agent's processes are gone.
    async fn log_failure(&self, agent: &mut AgentProcess, code: FailureCode, message: &str) {
        let tail = agent.stderr_tail().await;
        let shown = if tail.is_empty() {
            " (it wrote nothing on stderr)".to_owned()
        } else {
            format!("; its last stderr lines:\n  | {}", tail.join("\n  | "))
        };
        tracing::warn!(
            hire = %self.hire_id.short(),
            agent = %self.record.agent,
            "the agent failed ({}): {message}{shown}",
            code.as_str()
        );
    }

    /// Stops the proxy and records every call it saw that is not in the chain yet.
    async fn close_network(&mut self, chain: &mut Chain) -> Result<(), HireError> {
        if let Some(proxy) = self.proxy.take() {
            for observed in proxy.close().await {
                let call = network_call(&self.ctx.metrics, observed);
                self.append_entry(chain, call, None).await?;
            }
        }
        Ok(())
    }

    /// Records `input-provided` (synced) and hands the answer to the agent.
    async fn deliver_answer(
        &mut self,
        chain: &mut Chain,
        agent: &mut AgentProcess,
        value: Value,
    ) -> Result<(), HireError> {
        self.record.question = None;
        let payload = souk_runtime::answer_payload_bytes(&value);
        self.append(chain, EntryKind::InputProvided, Some(payload))
            .await?;
        // The input-provided entry is synced (see `append`): only now drop the kept answer.
        self.put_blob(BLOB_ANSWER, Vec::new()).await?;
        if let Err(e) = agent.answer(&value).await {
            tracing::warn!(hire = %self.hire_id.short(), "cannot pass the answer to the agent: {e}");
        }
        Ok(())
    }

    /// The answer kept for a resumed agent, if any. Read only: the kept answer is cleared
    /// once its input-provided entry is durable.
    async fn pending_answer(&self) -> Result<Option<Value>, HireError> {
        let store = self.ctx.store.clone();
        let id = self.hire_id;
        let raw = blocking(move || Ok(store.get_hire_blob(&id, BLOB_ANSWER)?)).await?;
        Ok(raw
            .filter(|r| !r.is_empty())
            .and_then(|r| serde_json::from_slice(&r).ok()))
    }

    async fn fail(
        &mut self,
        chain: &mut Chain,
        code: FailureCode,
        message: String,
    ) -> Result<(), HireError> {
        let message = souk_runtime::truncate_entry_text(&message);
        self.append(
            chain,
            EntryKind::Failed {
                code,
                message,
                usage: Usage::default(),
            },
            None,
        )
        .await
    }

    async fn on_step(&mut self, chain: &mut Chain, step: Step) -> Result<Flow, HireError> {
        match step {
            Step::Event(ev) => {
                // Resumed while a question was open: the agent replays work from its last
                // checkpoint (already recorded) until it asks again; only the question counts.
                if chain.state == HireState::InputRequired
                    && !matches!(ev, AgentEvent::Question { .. })
                {
                    tracing::debug!(hire = %self.hire_id.short(), "skipping a replayed step while the question is open");
                    return Ok(Flow::Continue);
                }
                let payload = souk_runtime::payload_bytes(&ev);
                if payload.len() > souk_protocol::receipt::MAX_DISCLOSURE_LEN {
                    // Canonical re-encoding can grow a line; a payload must fit a disclosure.
                    self.fail(
                        chain,
                        FailureCode::ProtocolViolation,
                        format!(
                            "a {} step is larger than 1 MiB once recorded",
                            ev.type_name()
                        ),
                    )
                    .await?;
                    return Ok(Flow::Stop);
                }
                match ev {
                    AgentEvent::Decision { .. } | AgentEvent::Note { .. } => {
                        self.append(chain, EntryKind::Decision, Some(payload))
                            .await?;
                    }
                    AgentEvent::ToolCall { tool, .. } => {
                        let tool = souk_runtime::truncate_entry_text(&tool);
                        self.append(chain, EntryKind::ToolCall { tool }, Some(payload))
                            .await?;
                    }
                    AgentEvent::Checkpoint { state } => {
                        let bytes = souk_runtime::canonical_json(&state);
                        let state_hash = Hash::digest(&bytes);
                        self.put_blob(BLOB_CHECKPOINT, bytes).await?;
                        self.append(chain, EntryKind::Checkpoint { state_hash }, None)
                            .await?;
                    }
                    AgentEvent::Question { question } => {
                        // After a resume the agent may ask again what it already asked.
                        if chain.state != HireState::InputRequired {
                            self.record.question = Some(question);
                            self.append(chain, EntryKind::InputRequested, Some(payload))
                                .await?;
                        }
                        // An answer that arrived while a resumed agent replayed is due now.
                        if let Some(answer) = self.pending_answer().await? {
                            return Ok(Flow::Answer(answer));
                        }
                    }
                }
                Ok(Flow::Continue)
            }
            Step::Ended(outcome) => {
                match outcome {
                    Outcome::Completed { output } => {
                        let bytes = souk_runtime::canonical_json(&output);
                        let output_hash = Hash::digest(&bytes);
                        // Stored before the entry that names it, without a sync of its own:
                        // the terminal entry appended next (synced at once) makes it durable.
                        self.put_output(bytes).await?;
                        if chain.state == HireState::InputRequired {
                            // The agent finished without waiting for its answer.
                            self.fail(
                                chain,
                                FailureCode::ProtocolViolation,
                                "result while a question was open".into(),
                            )
                            .await?;
                        } else {
                            self.append(
                                chain,
                                EntryKind::Completed {
                                    output_hash,
                                    usage: Usage::default(),
                                },
                                None,
                            )
                            .await?;
                        }
                    }
                    Outcome::Failed { code, message } => self.fail(chain, code, message).await?,
                    Outcome::TimedOut => {
                        let deadline = self.record.deadline;
                        if now_ms() + 1_000 >= deadline {
                            self.append(
                                chain,
                                EntryKind::Expired {
                                    deadline,
                                    usage: Usage::default(),
                                },
                                None,
                            )
                            .await?;
                        } else {
                            self.fail(
                                chain,
                                FailureCode::ProtocolViolation,
                                "the agent exceeded its maximum duration".into(),
                            )
                            .await?;
                        }
                    }
                    Outcome::Canceled => {
                        let kind = EntryKind::Canceled {
                            by: Canceler::Provider,
                            reason: "stopped by the provider".into(),
                            usage: Usage::default(),
                        };
                        self.append(chain, kind, None).await?;
                    }
                }
                Ok(Flow::Stop)
            }
        }
    }
}

/// The next observation of the proxy, if the hire has one (pending forever otherwise).
async fn next_observation(proxy: &mut Option<HireProxy>) -> Option<souk_egress::Observation> {
    match proxy {
        Some(p) => p.observations.recv().await,
        None => std::future::pending().await,
    }
}

/// How a run of the agent ended: the hire's terminal state if the chain reached one, else the
/// run was interrupted (the node is stopping, or the store failed: the hire resumes later).
fn run_outcome(chain: &Chain) -> RunOutcome {
    if chain.state.is_terminal() {
        RunOutcome::Ended(chain.state)
    } else {
        RunOutcome::Interrupted
    }
}

/// How a terminal entry reads in the provider's log: (whether it is a failure, the words).
fn log_line(kind: &EntryKind) -> (bool, String) {
    match kind {
        EntryKind::Completed { .. } => (false, "completed".into()),
        EntryKind::Failed { code, message, .. } => {
            (true, format!("failed ({}): {message}", code.as_str()))
        }
        EntryKind::Canceled { by, reason, .. } => {
            let by = match by {
                Canceler::Client => "the client",
                Canceler::Provider => "the provider",
            };
            (false, format!("canceled by {by}: {reason}"))
        }
        EntryKind::Expired { .. } => (true, "expired: its deadline passed".into()),
        other => (false, format!("ended ({})", other.code())),
    }
}
