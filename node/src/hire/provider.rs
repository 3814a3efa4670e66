//! The provider's job task: runs the agent for one hire and turns every step into a signed
//! receipt entry, appended durably (entry, private payload and hire record in one store
//! transaction) before anyone is told about it. Where a receipt is appended.
//!
//! A job resumes after a crash or restart: entries already in the chain stay, the agent is
//! restarted from its last checkpoint, and a question already asked is not asked twice.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use souk_protocol::hire::HireState;
use souk_protocol::identity::Keypair;
use souk_protocol::manifest::Manifest;
use souk_protocol::receipt::{Canceler, EntryKind, FailureCode, ReceiptEntry, SignedEntry, commit};
use souk_protocol::signed::Signed;
use souk_protocol::{Hash, Timestamp};
use souk_runtime::{AgentEvent, AgentProcess, Outcome, RunConfig, Step};
use souk_store::Store;
use tokio::sync::mpsc;

use super::record::{BLOB_ANSWER, BLOB_CHECKPOINT, BLOB_OUTPUT, HireRecord};
use crate::agent_file::RunSpec;
use crate::now_ms;

/// What the client (through the manager) can tell a running job.
#[derive(Debug)]
pub enum JobControl {
    /// The answer to the agent's question (JSON bytes).
    Answer(Vec<u8>),
    /// Stop: who asked, and why.
    Cancel {
        /// The client (through a hire call) or the provider (through its own API).
        by: Canceler,
        /// Why.
        reason: String,
    },
}

/// What a job tells the manager.
#[derive(Debug, Clone)]
pub enum JobUpdate {
    /// An entry was appended durably.
    Appended {
        /// The hire.
        hire_id: Hash,
        /// The record after the append.
        record: Box<HireRecord>,
    },
    /// The job task ended (terminal entry appended, or the node is stopping).
    Ended {
        /// The hire.
        hire_id: Hash,
    },
}

/// Everything a job needs.
pub struct Job {
    /// The hire.
    pub hire_id: Hash,
    /// The provider's key.
    pub key: Arc<Keypair>,
    /// The store.
    pub store: Arc<Store>,
    /// The hire's record (as stored).
    pub record: HireRecord,
    /// The manifest hired.
    pub manifest: Signed<Manifest>,
    /// How to run the agent (`None`: it is no longer published, so the job can only fail).
    pub run: Option<RunSpec>,
    /// Per-hire working directory.
    pub workdir: PathBuf,
    /// The job input (JSON).
    pub input: Value,
    /// Updates to the manager.
    pub updates: mpsc::Sender<JobUpdate>,
    /// Control from the manager.
    pub control: mpsc::Receiver<JobControl>,
}

/// The chain as the job extends it.
struct Chain {
    next_seq: u64,
    prev: Hash,
    last_time: Timestamp,
    state: HireState,
}

enum Flow {
    Continue,
    Stop,
    /// An answer kept while the agent replayed is due now that it asked again.
    Answer(Value),
}

impl Job {
    fn load_chain(&self) -> Result<Chain, String> {
        let count = self
            .store
            .receipt_count(&self.hire_id)
            .map_err(|e| e.to_string())?;
        if count == 0 {
            return Ok(Chain {
                next_seq: 0,
                prev: Hash::ZERO,
                last_time: 0,
                state: HireState::Accepted,
            });
        }
        let last = self
            .store
            .receipts(&self.hire_id, count - 1, 1)
            .map_err(|e| e.to_string())?
            .pop()
            .ok_or("the receipt chain is shorter than its count")?;
        let entry = SignedEntry::decode_bytes(&last.1).map_err(|e| e.to_string())?;
        Ok(Chain {
            next_seq: count,
            prev: entry.id(),
            last_time: entry.body().time,
            state: self.record.state(),
        })
    }

    /// Signs and durably appends the next entry; `payload` goes under a fresh salted
    /// commitment. Fails only if the store fails (the job then stops and resumes later).
    async fn append(
        &mut self,
        chain: &mut Chain,
        kind: EntryKind,
        payload: Option<Vec<u8>>,
    ) -> Result<(), String> {
        let next_state = match kind.event() {
            Some(ev) => chain
                .state
                .apply(ev)
                .map_err(|e| format!("internal: {e} (entry {})", kind.name()))?,
            None => chain.state,
        };
        let opened = match payload {
            Some(p) => {
                let salt = crate::data_dir::random_32().map_err(|e| e.to_string())?;
                Some((*salt, p))
            }
            None => None,
        };
        let now = now_ms().max(chain.last_time);
        let entry = Signed::sign(
            ReceiptEntry {
                hire_id: self.hire_id,
                seq: chain.next_seq,
                prev: chain.prev,
                time: now,
                kind: kind.clone(),
                commitment: opened.as_ref().map(|(s, p)| commit(s, p)),
            },
            &self.key,
        );
        let mut record = self.record.clone();
        record.set_state(next_state, now);
        record.entries = chain.next_seq + 1;
        if let EntryKind::Failed { message, .. } = &kind {
            record.error = Some(message.clone());
        }
        let bytes = entry.to_bytes();
        let stored_payload = opened.map(|(s, p)| {
            let mut v = s.to_vec();
            v.extend_from_slice(&p);
            v
        });
        let store = self.store.clone();
        let hire_id = self.hire_id;
        let seq = chain.next_seq;
        let rec_bytes = record.to_bytes();
        // Steps are group-committed: appended without a disk sync, and made durable (one sync
        // for all of them) by the manager before any of them is streamed to the client. A
        // terminal entry is synced at once.
        // Terminal entries and answers are synced at once (an answer's client was told "ok").
        let terminal = kind.is_terminal() || matches!(kind, EntryKind::InputProvided);
        tokio::task::spawn_blocking(move || {
            let stored = if terminal {
                store.append_receipt(
                    &hire_id,
                    seq,
                    &bytes,
                    stored_payload.as_deref(),
                    Some(&rec_bytes),
                )
            } else {
                store.append_receipt_deferred(
                    &hire_id,
                    seq,
                    &bytes,
                    stored_payload.as_deref(),
                    Some(&rec_bytes),
                )
            };
            stored.map(|_| ()).map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| e.to_string())??;
        chain.next_seq += 1;
        chain.prev = entry.id();
        chain.last_time = now;
        chain.state = next_state;
        self.record = record.clone();
        let _ = self
            .updates
            .send(JobUpdate::Appended {
                hire_id,
                record: Box::new(record),
            })
            .await;
        Ok(())
    }

    async fn put_blob(&self, name: &'static str, bytes: Vec<u8>) -> Result<(), String> {
        let store = self.store.clone();
        let id = self.hire_id;
        tokio::task::spawn_blocking(move || {
            store
                .put_hire_blob(&id, name, &bytes)
                .map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| e.to_string())?
    }

    /// Runs (or resumes) the job to its end.
    pub async fn run(mut self) {
        let id = self.hire_id;
        if let Err(e) = self.drive().await {
            tracing::error!(hire = %id.short(), "job stopped: {e}");
        }
        let _ = self.updates.send(JobUpdate::Ended { hire_id: id }).await;
    }

    async fn drive(&mut self) -> Result<(), String> {
        let mut chain = self.load_chain()?;
        if chain.state.is_terminal() {
            return Ok(());
        }
        let deadline = self.record.deadline;
        let resumed = chain.next_seq > 0;
        if now_ms() >= deadline {
            return self
                .append(&mut chain, EntryKind::Expired { deadline }, None)
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
        let package = run.workdir.clone();
        let digest = match crate::agent_file::package_digest(&package) {
            Ok(d) => d,
            Err(e) => {
                return self
                    .fail(
                        &mut chain,
                        broken,
                        format!("cannot read the agent package: {e}"),
                    )
                    .await;
            }
        };
        if digest != self.manifest.body().runtime_digest {
            return self
                .fail(
                    &mut chain,
                    broken,
                    "the agent package changed since its manifest was signed; republish it".into(),
                )
                .await;
        }
        if !resumed {
            let started = EntryKind::Started {
                runtime_digest: self.manifest.body().runtime_digest,
            };
            self.append(&mut chain, started, None).await?;
        }
        let checkpoint: Option<Value> = self
            .store
            .get_hire_blob(&self.hire_id, BLOB_CHECKPOINT)
            .ok()
            .flatten()
            .and_then(|b| serde_json::from_slice(&b).ok());
        let wall = Duration::from_millis(
            deadline
                .saturating_sub(now_ms())
                .min(self.manifest.body().limits.max_duration_ms),
        );
        if let Err(e) = std::fs::create_dir_all(&self.workdir) {
            return self
                .fail(
                    &mut chain,
                    FailureCode::Internal,
                    format!("cannot create the working directory: {e}"),
                )
                .await;
        }
        let cfg = RunConfig {
            command: souk_runtime::resolve_command(&run.command, &package),
            workdir: self.workdir.clone(),
            env: vec![
                ("SOUK_HIRE_ID".into(), self.hire_id.to_hex()),
                (
                    "SOUK_PACKAGE_DIR".into(),
                    package.to_string_lossy().into_owned(),
                ),
            ],
            wall_time: wall,
            // A committed payload must fit a disclosure (1 MiB) with room for its framing.
            max_line_bytes: 512 * 1024,
            ..RunConfig::default()
        };
        let mut agent = match AgentProcess::spawn(
            &cfg,
            &self.hire_id.to_hex(),
            &self.input,
            checkpoint.as_ref(),
        )
        .await
        {
            Ok(a) => a,
            Err(e) => {
                let code = if resumed {
                    FailureCode::ResumeFailed
                } else {
                    FailureCode::AgentCrashed
                };
                return self
                    .fail(&mut chain, code, format!("the agent could not start: {e}"))
                    .await;
            }
        };
        loop {
            tokio::select! {
                step = agent.next() => {
                    match self.on_step(&mut chain, step).await? {
                        Flow::Stop => return Ok(()),
                        Flow::Answer(value) => self.deliver_answer(&mut chain, &mut agent, value).await?,
                        Flow::Continue => {}
                    }
                }
                ctl = self.control.recv() => match ctl {
                    Some(JobControl::Answer(answer)) => {
                        if chain.state != HireState::InputRequired {
                            continue;
                        }
                        let value: Value = serde_json::from_slice(&answer).unwrap_or(Value::Null);
                        if agent.awaiting_answer() {
                            self.deliver_answer(&mut chain, &mut agent, value).await?;
                        } else {
                            // Resumed and still replaying: keep the answer (durably) until the
                            // agent asks again.
                            self.put_blob(BLOB_ANSWER, answer).await?;
                        }
                    }
                    Some(JobControl::Cancel { by, reason }) => {
                        let _ = agent.cancel(&reason).await;
                        let reason = souk_runtime::truncate_entry_text(&reason);
                        return self.append(&mut chain, EntryKind::Canceled { by, reason }, None).await;
                    }
                    // The node is stopping: leave the chain as it is; the job resumes later.
                    None => return Ok(()),
                },
            }
        }
    }

    /// Records `input-provided` and hands the answer to the agent.
    async fn deliver_answer(
        &mut self,
        chain: &mut Chain,
        agent: &mut AgentProcess,
        value: Value,
    ) -> Result<(), String> {
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

    /// The answer kept for a resumed agent, if any (cleared in the store).
    fn take_pending_answer(&self) -> Option<Value> {
        // Read only: the kept answer is cleared once its input-provided entry is durable.
        let raw = self
            .store
            .get_hire_blob(&self.hire_id, BLOB_ANSWER)
            .ok()
            .flatten()?;
        if raw.is_empty() {
            return None;
        }
        serde_json::from_slice(&raw).ok()
    }

    async fn fail(
        &mut self,
        chain: &mut Chain,
        code: FailureCode,
        message: String,
    ) -> Result<(), String> {
        let message = souk_runtime::truncate_entry_text(&message);
        self.append(chain, EntryKind::Failed { code, message }, None)
            .await
    }

    async fn on_step(&mut self, chain: &mut Chain, step: Step) -> Result<Flow, String> {
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
                        if let Some(answer) = self.take_pending_answer() {
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
                        self.put_blob(BLOB_OUTPUT, bytes).await?;
                        if chain.state == HireState::InputRequired {
                            // The agent finished without waiting for its answer.
                            self.fail(
                                chain,
                                FailureCode::ProtocolViolation,
                                "result while a question was open".into(),
                            )
                            .await?;
                        } else {
                            self.append(chain, EntryKind::Completed { output_hash }, None)
                                .await?;
                        }
                    }
                    Outcome::Failed { code, message } => self.fail(chain, code, message).await?,
                    Outcome::TimedOut => {
                        let deadline = self.record.deadline;
                        if now_ms() + 1_000 >= deadline {
                            self.append(chain, EntryKind::Expired { deadline }, None)
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
                        };
                        self.append(chain, kind, None).await?;
                    }
                }
                Ok(Flow::Stop)
            }
        }
    }
}
