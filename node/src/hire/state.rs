//! [`Hires`]: the hire actor's state — every hire this node holds (both sides), the control
//! channel of each running job, the followers, the calls waiting for new receipts, and the
//! tracked tasks doing the actor's I/O. Only the actor touches it; its methods never await.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use libp2p::PeerId;
use souk_protocol::Hash;
use souk_protocol::hiring::{CallError, HireReply};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::capacity::Reservations;
use super::ctx::{Ctx, blocking, peer_of};
use super::error::HireError;
use super::export;
use super::follow::Follower;
use super::job::{Fresh, Job};
use super::msg::{JobControl, JobUpdate, Msg, Reply};
use super::record::{HireRecord, Role};
use super::transport::Responder;
use super::view::ReceiptsView;
use crate::service::NodeEvent;

/// Queue of a job's control channel.
const JOB_CONTROL: usize = 16;
/// How often an undelivered attestation is sent again.
pub(super) const SETTLE_RETRY: Duration = Duration::from_secs(5);

/// Who waits for new receipts of a hire.
pub(super) enum Waiter {
    /// The hire's client, through a `fetch` long-poll.
    Peer(Responder),
    /// The local API (`souk hire watch`).
    Api(Reply<Result<ReceiptsView, HireError>>),
}

/// A long-poll waiting for entries at or after `from`.
pub(super) struct Parked {
    pub(super) waiter: Waiter,
    pub(super) from: u64,
    pub(super) deadline: Instant,
}

/// The actor's state.
pub(super) struct Hires {
    pub(super) ctx: Ctx,
    records: HashMap<Hash, HireRecord>,
    jobs: HashMap<Hash, mpsc::Sender<JobControl>>,
    following: HashSet<Hash>,
    /// Provider: contracts being checked and stored, with their agent and who waits.
    pub(super) accepting: HashMap<Hash, (String, Vec<Responder>)>,
    /// Provider: slots held by offers not yet accepted.
    pub(super) reservations: Reservations,
    parked: HashMap<Hash, Vec<Parked>>,
    /// Settlements being stored (either side): one at a time per hire.
    pub(super) settling: HashSet<Hash>,
    /// Client: attestations being delivered, and when the last attempt started.
    delivering: HashMap<Hash, (bool, Instant)>,
    tasks: JoinSet<()>,
    stop: watch::Sender<bool>,
    /// Client: the upstream of relayed calls, built on first use.
    relay_upstream: Option<Arc<souk_egress::Upstream>>,
    /// Provider: hires whose working directory was removed (or is being removed).
    swept: HashSet<Hash>,
}

impl Hires {
    pub(super) fn new(ctx: Ctx, records: HashMap<Hash, HireRecord>) -> Self {
        let (stop, _) = watch::channel(false);
        Hires {
            ctx,
            records,
            jobs: HashMap::new(),
            following: HashSet::new(),
            accepting: HashMap::new(),
            reservations: Reservations::default(),
            parked: HashMap::new(),
            settling: HashSet::new(),
            delivering: HashMap::new(),
            tasks: JoinSet::new(),
            stop,
            relay_upstream: None,
            swept: HashSet::new(),
        }
    }

    /// The upstream of this node's relayed calls (client side), built once.
    pub(super) fn relay_upstream(&mut self) -> Result<Arc<souk_egress::Upstream>, String> {
        if let Some(u) = &self.relay_upstream {
            return Ok(u.clone());
        }
        let u = souk_egress::Upstream::new(self.ctx.settings.egress.upstream())
            .map(Arc::new)
            .map_err(|e| e.to_string())?;
        self.relay_upstream = Some(u.clone());
        Ok(u)
    }

    // ---- records ------------------------------------------------------------------------

    pub(super) fn get(&self, id: &Hash) -> Option<&HireRecord> {
        self.records.get(id)
    }

    pub(super) fn all(&self) -> impl Iterator<Item = &HireRecord> {
        self.records.values()
    }

    pub(super) fn ids(&self) -> Vec<Hash> {
        self.records.keys().copied().collect()
    }

    /// Replaces the record, tells observers what changed (state, receipts, verdict) and
    /// answers the long-polls it satisfies.
    pub(super) fn update(&mut self, record: HireRecord) {
        let id = record.hire_id;
        let old = self.records.insert(id, record);
        if let Some(new) = self.records.get(&id) {
            observe(&self.ctx, old.as_ref(), new);
        }
        self.wake(id);
    }

    /// The record of `id` if `peer` is its client (provider side).
    pub(super) fn authorize(&self, peer: &PeerId, id: &Hash) -> Result<&HireRecord, HireReply> {
        let r = self.records.get(id).ok_or_else(|| HireReply::Error {
            code: CallError::UnknownHire,
            message: format!("no hire {} here", id.short()),
        })?;
        if peer_of(&r.client) != *peer {
            return Err(HireReply::Error {
                code: CallError::NotYourHire,
                message: "only the hire's client may do this".into(),
            });
        }
        Ok(r)
    }

    /// Hires of `agent` this provider runs or is about to run (contracts being stored).
    pub(super) fn running_of(&self, agent: &str) -> u32 {
        let running = self
            .records
            .values()
            .filter(|r| r.role == Role::Provider && r.agent == agent && !r.state.is_terminal())
            .count();
        let starting = self.accepting.values().filter(|(a, _)| a == agent).count();
        (running + starting) as u32
    }

    /// Slots of `agent` taken at `now`: hires running or being stored, and offers not yet
    /// accepted.
    pub(super) fn slots_in_use(&mut self, agent: &str, now: souk_protocol::Timestamp) -> u32 {
        self.running_of(agent) + self.reservations.held_for(agent, now)
    }

    // ---- tasks ----------------------------------------------------------------------------

    /// Runs `work` as a tracked task: shutdown waits for it (or aborts it).
    pub(super) fn spawn(&mut self, work: impl Future<Output = ()> + Send + 'static) {
        self.tasks.spawn(work);
    }

    /// Waits for the next task to end (pending forever when there is none).
    pub(super) async fn next_task_end(&mut self) {
        match self.tasks.join_next().await {
            Some(Err(e)) if e.is_panic() => tracing::error!("a hire task panicked: {e}"),
            Some(_) => {}
            None => std::future::pending().await,
        }
    }

    /// Tells jobs and followers to stop where they are (they resume on the next start), then
    /// waits up to `grace` for every task and aborts what is left.
    pub(super) async fn shut_down(&mut self, rx: &mut mpsc::Receiver<Msg>, grace: Duration) {
        let _ = self.stop.send(true);
        // Dropping the control senders tells every job to stop where it is.
        self.jobs.clear();
        let deadline = Instant::now() + grace;
        while !self.tasks.is_empty() {
            tokio::select! {
                _ = self.tasks.join_next() => {}
                // Tasks may be reporting to the inbox: keep it moving so none blocks.
                Some(msg) = rx.recv() => drop(msg),
                _ = tokio::time::sleep_until(deadline) => {
                    tracing::warn!("{} hire tasks still running at shutdown; aborting them", self.tasks.len());
                    self.tasks.shutdown().await;
                }
            }
        }
    }

    // ---- jobs and followers -----------------------------------------------------------------

    /// Starts (or resumes) the provider's job of hire `id`.
    pub(super) fn start_job(&mut self, id: Hash) {
        self.start_job_with(id, None);
    }

    /// Starts hire `id`'s job (once); from `fresh` when its contract was just stored.
    pub(super) fn start_job_with(&mut self, id: Hash, fresh: Option<Fresh>) {
        let Some(record) = self.records.get(&id).cloned() else {
            return;
        };
        if self.jobs.contains_key(&id) {
            return;
        }
        let (ctl_tx, ctl_rx) = mpsc::channel(JOB_CONTROL);
        self.jobs.insert(id, ctl_tx);
        let ctx = self.ctx.clone();
        self.spawn(async move {
            let job = match fresh {
                Some(f) => Ok(Job::fresh(ctx.clone(), record, ctl_rx, f)),
                None => Job::load(ctx.clone(), record, ctl_rx).await,
            };
            match job {
                Ok(job) => job.run().await,
                Err(e) => tracing::error!(hire = %id.short(), "cannot start the job: {e}"),
            }
            let _ = ctx
                .inbox
                .send(Msg::Job(JobUpdate::Ended { hire_id: id }))
                .await;
        });
    }

    /// The control channel of hire `id`'s running job.
    pub(super) fn job(&self, id: &Hash) -> Option<mpsc::Sender<JobControl>> {
        self.jobs.get(id).cloned()
    }

    pub(super) fn job_ended(&mut self, id: &Hash) {
        self.jobs.remove(id);
        self.wake(*id);
    }

    /// Starts following the client hire `id` (once).
    pub(super) fn start_follower(&mut self, id: Hash) {
        let Some(record) = self.records.get(&id).cloned() else {
            return;
        };
        if !self.following.insert(id) {
            return;
        }
        let follower = Follower::new(self.ctx.clone(), record, self.stop.subscribe());
        self.spawn(follower.run());
    }

    pub(super) fn follower_stopped(&mut self, id: &Hash) {
        self.following.remove(id);
        self.wake(*id);
    }

    // ---- long-polls ---------------------------------------------------------------------

    /// Whether a long-poll from `from` can be answered now.
    fn ready(&self, id: &Hash, from: u64) -> bool {
        self.records
            .get(id)
            .is_none_or(|r| from < r.entries || r.state.is_terminal())
    }

    /// Answers `waiter` now if there is something from `from` (or `wait` is zero), else
    /// parks it until there is or `wait` passes.
    pub(super) fn poll_receipts(&mut self, id: Hash, from: u64, wait: Duration, waiter: Waiter) {
        if wait.is_zero() || self.ready(&id, from) {
            self.serve(id, from, waiter);
        } else {
            self.parked.entry(id).or_default().push(Parked {
                waiter,
                from,
                deadline: Instant::now() + wait,
            });
        }
    }

    /// Answers the long-polls of hire `id` that have something now.
    fn wake(&mut self, id: Hash) {
        let Some(list) = self.parked.remove(&id) else {
            return;
        };
        let (ready, keep): (Vec<Parked>, Vec<Parked>) =
            list.into_iter().partition(|p| self.ready(&id, p.from));
        if !keep.is_empty() {
            self.parked.insert(id, keep);
        }
        for p in ready {
            self.serve(id, p.from, p.waiter);
        }
    }

    /// Answers long-polls whose wait is over with whatever there is (possibly nothing).
    pub(super) fn expire_parked(&mut self, now: Instant) {
        let ids: Vec<Hash> = self.parked.keys().copied().collect();
        for id in ids {
            let Some(list) = self.parked.remove(&id) else {
                continue;
            };
            let (due, keep): (Vec<Parked>, Vec<Parked>) =
                list.into_iter().partition(|p| p.deadline <= now);
            if !keep.is_empty() {
                self.parked.insert(id, keep);
            }
            for p in due {
                self.serve(id, p.from, p.waiter);
            }
        }
    }

    /// Reads the receipts in a task and answers the waiter from it.
    fn serve(&mut self, id: Hash, from: u64, waiter: Waiter) {
        let store = self.ctx.store.clone();
        match waiter {
            Waiter::Peer(reply) => {
                // A chain that ended, with this page up to its end: the hire has sent its
                // client everything, so a warm process it held back may boot now.
                let end = self
                    .records
                    .get(&id)
                    .filter(|r| r.state.is_terminal())
                    .map(|r| r.entries);
                let warm = self.ctx.warm.clone();
                self.spawn(async move {
                    let page = export::receipts_page(store, id, from).await;
                    let served_end = match (&page, end) {
                        (HireReply::Receipts { entries, .. }, Some(end)) => {
                            from + entries.len() as u64 >= end
                        }
                        _ => false,
                    };
                    let _ = reply.send(page);
                    if served_end {
                        warm.release(&id);
                    }
                });
            }
            Waiter::Api(reply) => {
                let Some(record) = self.records.get(&id).cloned() else {
                    let _ = reply.send(Err(HireError::NotFound(id)));
                    return;
                };
                self.spawn(async move {
                    let view = blocking(move || export::view(&store, record, from)).await;
                    let _ = reply.send(view);
                });
            }
        }
    }

    // ---- working directories (provider) -------------------------------------------------

    /// The working directory of provider hire `id` (it may not exist).
    pub(super) fn workdir(&self, id: &Hash) -> std::path::PathBuf {
        self.ctx.workdir.join(id.to_hex())
    }

    /// Removes the working directories of provider hires that ended (and were settled, or
    /// not) more than the retention ago.
    pub(super) fn sweep_workdirs(&mut self, now_ms: u64) {
        let retention = self.ctx.settings.workdir_retention.as_millis() as u64;
        let due: Vec<Hash> = self
            .records
            .values()
            .filter(|r| r.role == Role::Provider && r.state.is_terminal())
            .filter(|r| r.updated_at.saturating_add(retention) <= now_ms)
            .map(|r| r.hire_id)
            .filter(|id| !self.swept.contains(id))
            .collect();
        for id in due {
            self.swept.insert(id);
            let dir = self.workdir(&id);
            self.spawn(async move {
                let removed = tokio::task::spawn_blocking(move || match std::fs::remove_dir_all(&dir) {
                    Ok(()) => Ok(true),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
                    Err(e) => Err(e),
                })
                .await;
                match removed {
                    Ok(Ok(true)) => tracing::info!(hire = %id.short(), "working directory removed"),
                    Ok(Ok(false)) => {}
                    Ok(Err(e)) => tracing::warn!(hire = %id.short(), "cannot remove the working directory: {e}"),
                    Err(_) => {}
                }
            });
        }
    }

    // ---- attestation delivery (client) -----------------------------------------------

    /// Starts delivering the attestations that have not reached their provider, at most one
    /// attempt per hire at a time and one per [`SETTLE_RETRY`].
    pub(super) fn deliver_pending(&mut self, now: Instant) {
        let due: Vec<HireRecord> = self
            .records
            .values()
            .filter(|r| r.role == Role::Client && r.settle_pending)
            .filter(|r| {
                self.delivering
                    .get(&r.hire_id)
                    .is_none_or(|(busy, at)| !busy && now.duration_since(*at) >= SETTLE_RETRY)
            })
            .cloned()
            .collect();
        for r in due {
            self.deliver(r, now);
        }
    }

    /// Starts one delivery attempt of `record`'s attestation.
    pub(super) fn deliver(&mut self, record: HireRecord, now: Instant) {
        let id = record.hire_id;
        self.delivering.insert(id, (true, now));
        let ctx = self.ctx.clone();
        self.spawn(async move {
            let record = super::settle::deliver(ctx.clone(), record)
                .await
                .map(Box::new);
            let _ = ctx
                .inbox
                .send(Msg::Done(super::msg::Done::Delivered { id, record }))
                .await;
        });
    }

    /// A delivery attempt ended.
    pub(super) fn delivered(&mut self, id: Hash, record: Option<HireRecord>) {
        if let Some((busy, _)) = self.delivering.get_mut(&id) {
            *busy = false;
        }
        if let Some(mut r) = record {
            self.delivering.remove(&id);
            // The follower may have moved the chain's fields meanwhile: keep them.
            if let Some(mine) = self.records.get(&id) {
                r.state = mine.state;
                r.entries = mine.entries;
                r.question = mine.question.clone();
                r.error = mine.error.clone();
            }
            self.update(r);
        }
    }
}

/// Sends the events (and moves the gauges) for the change from `old` to `new`.
fn observe(ctx: &Ctx, old: Option<&HireRecord>, new: &HireRecord) {
    let id = new.hire_id;
    let role = new.role;
    if old.is_none_or(|o| o.state != new.state) {
        ctx.metrics
            .hire_transition(role.as_str(), old.map(|o| o.state), new.state);
        ctx.events.send(NodeEvent::HireTransition {
            hire_id: id,
            role,
            agent: new.agent.clone(),
            from: old.map(|o| o.state),
            to: new.state,
            entries: new.entries,
        });
    }
    if new.entries > old.map_or(0, |o| o.entries) {
        ctx.events.send(match role {
            Role::Provider => NodeEvent::ReceiptAppended {
                hire_id: id,
                entries: new.entries,
            },
            Role::Client => NodeEvent::ReceiptVerified {
                hire_id: id,
                entries: new.entries,
            },
        });
    }
    if let Some(verdict) = new.verdict
        && old.is_none_or(|o| o.verdict != new.verdict)
    {
        ctx.events.send(NodeEvent::HireSettled {
            hire_id: id,
            role,
            verdict,
        });
    }
}
