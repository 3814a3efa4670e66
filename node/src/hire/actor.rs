//! The hire actor: one task that owns every hire of this node, both sides, and only moves
//! messages and state. Inbound calls go to [`super::serve`], API operations to
//! [`super::api`]; every network call, store read or write and chain verification they need
//! runs in a tracked task ([`Hires::spawn`]) whose result comes back as a message. A slow or
//! dead provider therefore delays only its own hire.
//!
//! At start it loads every hire record and resumes unfinished jobs (provider) and followers
//! (client). At shutdown it stops them where they are (they resume on the next start) and
//! waits for its tasks.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use libp2p::PeerId;
use souk_protocol::credential::RelayRequest;
use souk_protocol::hiring::HireCall;
use souk_protocol::identity::Keypair;
use souk_runtime::sandbox::StandbyPool;

use super::warm::WarmPool;
use souk_store::Store;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::ctx::{Ctx, Offers, blocking};
use super::handle::HireOps;
use super::msg::{Done, FollowUpdate, JobUpdate, Msg};
use super::record::{ClosedReason, HireRecord, Role};
use super::settings::HireSettings;
use super::state::Hires;
use super::transport::{HireNetwork, RelayResponder, Responder};
use super::{api, relay, serve};
use crate::metrics::Metrics;

/// Depth of the actor's inbox: a burst of inbound calls beyond it is answered `busy`.
pub const INBOX: usize = 1024;
/// Period of housekeeping (expired long-polls, undelivered attestations).
const TICK: Duration = Duration::from_millis(200);
/// Longest period of the working-directory sweep (shorter when the retention is short).
const SWEEP: Duration = Duration::from_secs(30);
/// How long shutdown waits for the actor's tasks before aborting them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// The hire actor, ready to run.
pub struct HireActor {
    ctx: Ctx,
    rx: mpsc::Receiver<Msg>,
}

/// The sender the swarm loop uses to deliver inbound calls (see [`crate::service`]).
#[derive(Clone)]
pub struct InboundSender(mpsc::Sender<Msg>);

impl InboundSender {
    /// Hands an inbound call to the actor without waiting. False when its inbox is full (the
    /// caller answers `busy`) or the actor has stopped.
    pub fn deliver(&self, peer: PeerId, call: HireCall, reply: Responder) -> bool {
        self.0.try_send(Msg::Inbound { peer, call, reply }).is_ok()
    }

    /// Hands an inbound relay request to the actor without waiting; false as for
    /// [`InboundSender::deliver`].
    pub fn deliver_relay(
        &self,
        peer: PeerId,
        request: RelayRequest,
        reply: RelayResponder,
    ) -> bool {
        let request = Box::new(request);
        self.0
            .try_send(Msg::Relay {
                peer,
                request,
                reply,
            })
            .is_ok()
    }
}

/// What the hire actor works with.
pub struct HireDeps {
    /// The node's store.
    pub store: Arc<Store>,
    /// The node's key.
    pub key: Arc<Keypair>,
    /// Where hires' working directories go (`<dir>/<hire id>`).
    pub work_dir: PathBuf,
    /// Outbound calls and manifest lookups.
    pub net: Arc<dyn HireNetwork>,
    /// The node's own manifests.
    pub offers: Offers,
    /// The X25519 sealing secret (opens credentials sealed to this node).
    pub sealing: Arc<zeroize::Zeroizing<[u8; 32]>>,
    /// How agents run and reach the network.
    pub settings: Arc<HireSettings>,
    /// The node's counters.
    pub metrics: Arc<Metrics>,
    /// The node's event channel (hire transitions, receipts).
    pub events: crate::service::EventSender,
}

impl HireActor {
    /// An actor over `deps`; returns it with the handle the API uses and the sender for
    /// inbound calls.
    pub fn new(deps: HireDeps) -> (Self, HireOps, InboundSender) {
        let (tx, rx) = mpsc::channel(INBOX);
        let ctx = Ctx {
            store: deps.store.clone(),
            key: deps.key,
            net: deps.net,
            offers: deps.offers,
            workdir: deps.work_dir,
            sealing: deps.sealing,
            warm: Arc::new(WarmPool::new(deps.store.clone(), deps.metrics.clone())),
            metrics: deps.metrics,
            events: deps.events,
            inbox: tx.clone(),
            standby: deps.settings.sandbox.as_ref().and_then(|s| {
                StandbyPool::new(
                    &s.spec,
                    deps.settings.standby_sandboxes,
                    Some(super::ahead::recorder(deps.store.clone())),
                )
            }),
            settings: deps.settings,
        };
        (
            HireActor { ctx, rx },
            HireOps::new(tx.clone()),
            InboundSender(tx),
        )
    }

    /// Loads every hire, resumes unfinished jobs and followers, then serves until shutdown.
    pub async fn run(mut self) {
        let records = load(&self.ctx.store).await;
        for r in records.values() {
            self.ctx.metrics.hires_loaded(r.role.as_str(), r.state);
        }
        // What a crash left of sandboxes started ahead of any hire goes before a hire
        // resumes.
        let left = super::ahead::stop_all(self.ctx.store.clone()).await;
        if left.records > 0 {
            tracing::info!(
                "cleared {} sandbox(es) an earlier run started ahead of hires ({} still running)",
                left.records,
                left.alive
            );
        }
        let mut hires = Hires::new(self.ctx.clone(), records);
        for id in hires.ids() {
            resume(&mut hires, id);
        }
        // Warm processes and standby sandboxes live while the actor does (dropped, they
        // die); a shutdown waits until they are gone.
        let warm_stop = tokio_util::sync::CancellationToken::new();
        let _warm_guard = warm_stop.clone().drop_guard();
        let mut warm = tokio::spawn(super::warm::maintain(self.ctx.clone(), warm_stop.clone()));
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let every =
            (self.ctx.settings.workdir_retention / 2).clamp(Duration::from_millis(100), SWEEP);
        let mut sweep = tokio::time::interval(every);
        sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                msg = self.rx.recv() => match msg {
                    Some(Msg::Shutdown(done)) => {
                        hires.shut_down(&mut self.rx, SHUTDOWN_GRACE).await;
                        warm_stop.cancel();
                        let _ = (&mut warm).await;
                        let _ = done.send(());
                        return;
                    }
                    Some(msg) => on_msg(&mut hires, msg),
                    None => {
                        hires.shut_down(&mut self.rx, SHUTDOWN_GRACE).await;
                        warm_stop.cancel();
                        let _ = (&mut warm).await;
                        return;
                    }
                },
                _ = hires.next_task_end() => {}
                _ = tick.tick() => {
                    let now = Instant::now();
                    hires.expire_parked(now);
                    hires.deliver_pending(now);
                }
                _ = sweep.tick() => hires.sweep_workdirs(crate::now_ms()),
            }
        }
    }
}

/// Every stored hire record (an unreadable one is logged and skipped).
async fn load(store: &Arc<Store>) -> HashMap<souk_protocol::Hash, HireRecord> {
    let store = store.clone();
    let listed = blocking(move || Ok(store.list_hires()?)).await;
    let mut records = HashMap::new();
    match listed {
        Ok(list) => {
            for (id, raw) in list {
                match HireRecord::from_bytes(&raw) {
                    Ok(r) if r.hire_id == id => {
                        records.insert(id, r);
                    }
                    Ok(r) => {
                        tracing::error!(hire = %id.short(), "stored record names hire {}; skipping it", r.hire_id.short())
                    }
                    Err(e) => tracing::error!(hire = %id.short(), "{e}; skipping it"),
                }
            }
        }
        Err(e) => tracing::error!("cannot load hires: {e}"),
    }
    records
}

/// Restarts what a hire needs after a start: its job (provider, not ended) or its follower
/// (client, not ended or completed without the output yet, and not stopped by the provider's
/// misbehaviour).
fn resume(hires: &mut Hires, id: souk_protocol::Hash) {
    let Some(r) = hires.get(&id) else {
        return;
    };
    let terminal = r.state.is_terminal();
    if r.closed
        .as_ref()
        .is_some_and(|c| c.reason == ClosedReason::ProviderEquivocated)
    {
        // Ended by the provider's equivocation: publish the proof again (the node may have
        // stopped before it took it; a second copy is ignored).
        let ctx = hires.ctx.clone();
        hires.spawn(async move {
            if let Err(e) = super::outcome::publish_proof(&ctx, id).await {
                tracing::warn!(hire = %id.short(), "equivocation proof not published: {e}");
            }
        });
        return;
    }
    match r.role {
        Role::Provider if !terminal => hires.start_job(id),
        Role::Client
            if r.error.is_none()
                && (!terminal || r.state == souk_protocol::hire::HireState::Completed) =>
        {
            hires.start_follower(id)
        }
        _ => {}
    }
}

fn on_msg(hires: &mut Hires, msg: Msg) {
    match msg {
        Msg::Inbound { peer, call, reply } => serve::on_call(hires, peer, call, reply),
        Msg::Relay {
            peer,
            request,
            reply,
        } => relay::on_relay(hires, peer, *request, reply),
        Msg::Api(op) => api::on_api(hires, op),
        Msg::Job(JobUpdate::Appended { record, .. }) => hires.update(*record),
        Msg::Job(JobUpdate::Ended { hire_id }) => hires.job_ended(&hire_id),
        Msg::Follow(FollowUpdate::Progress(record)) => {
            let mut record = *record;
            // The follower owns the chain's fields; settlement is the actor's.
            if let Some(mine) = hires.get(&record.hire_id) {
                record.verdict = mine.verdict;
                record.settle_pending = mine.settle_pending;
                // A hire ended here stays ended whatever a follower reports.
                record.closed = record.closed.take().or_else(|| mine.closed.clone());
            }
            hires.update(record);
        }
        Msg::Follow(FollowUpdate::Stopped(id)) => hires.follower_stopped(&id),
        Msg::Done(done) => on_done(hires, done),
        Msg::Shutdown(done) => {
            let _ = done.send(());
        }
    }
}

fn on_done(hires: &mut Hires, done: Done) {
    match done {
        Done::AcceptStored { id, result } => serve::accept_stored(hires, id, result),
        Done::SettledByClient {
            id,
            verdict,
            record,
        } => {
            hires.settling.remove(&id);
            tracing::info!(hire = %id.short(), "settled by the client: {verdict}");
            hires.update(*record);
            // The provider publishes the outcome too: it spreads even if the client went
            // offline before its own copy reached a peer.
            let ctx = hires.ctx.clone();
            hires.spawn(async move {
                if let Err(e) = super::outcome::publish(&ctx, id).await {
                    tracing::warn!(hire = %id.short(), "outcome record not published: {e}");
                }
            });
        }
        Done::SettleFinished(id) => {
            hires.settling.remove(&id);
        }
        Done::Unreserve(request) => {
            hires.reservations.release(&request);
        }
        Done::Contracted(record) => {
            let id = record.hire_id;
            hires.update(*record);
            hires.start_follower(id);
        }
        Done::Settled { id, result, reply } => {
            hires.settling.remove(&id);
            match result {
                Ok(mut record) => {
                    if let Some(mine) = hires.get(&id) {
                        record.entries = mine.entries.max(record.entries);
                        record.question = mine.question.clone();
                        record.error = mine.error.clone();
                    }
                    hires.update(record.clone());
                    hires.deliver(record.clone(), Instant::now());
                    let _ = reply.send(Ok(record));
                }
                Err(e) => {
                    let _ = reply.send(Err(e));
                }
            }
        }
        Done::Delivered { id, record } => hires.delivered(id, record.map(|r| *r)),
    }
}
