//! The hire manager: one task that owns every hire of this node, both sides.
//!
//! Provider side, it answers hire calls from clients (requests, acceptances, receipt
//! long-polls, answers, cancellations, settlements), stores each contract before acting on
//! it, and starts (or resumes) a [`Job`] per hire. Client side, it negotiates
//! ([`negotiate`]), stores the contract, then starts a [`Follower`]. It serves the local
//! API through [`HireOps`]. The swarm loop only moves bytes: calls reach the network through
//! [`Caller`].

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use libp2p::PeerId;
use libp2p::request_response::ResponseChannel;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use souk_protocol::bundle::Bundle;
use souk_protocol::hire::{HireState, Verdict};
use souk_protocol::hiring::{CallError, HireCall, HireReply, MAX_FETCH_ENTRIES, MAX_FETCH_WAIT_MS};
use souk_protocol::identity::Keypair;
use souk_protocol::manifest::Manifest;
use souk_protocol::negotiation::{
    Accept, Contract, Counter, Decline, HireRequest, Offer, Price, Proposal,
};
use souk_protocol::receipt::{
    Attestation, Canceler, Disclosure, EntryKind, MAX_DISCLOSURE_LEN, MAX_ENTRY_TEXT, SignedEntry,
    commit,
};
use souk_protocol::signed::Signed;
use souk_protocol::verify::{ChainContext, ChainVerifier, check_attestation};
use souk_protocol::{Hash, NodeId};
use souk_store::Store;
use tokio::sync::{mpsc, oneshot, watch};

use super::client::{FollowUpdate, Follower};
use super::policy::{self, PROPOSAL_TTL_MS};
use super::provider::{Job, JobControl, JobUpdate};
use super::record::*;
use crate::agent_file::RunSpec;
use crate::now_ms;
pub use crate::service::Caller;

type Reply<T> = oneshot::Sender<T>;

/// One of this node's own manifests that clients may hire, with how to run it.
#[derive(Debug, Clone)]
pub struct Offerable {
    /// The signed manifest.
    pub manifest: Signed<Manifest>,
    /// How to run the agent.
    pub run: RunSpec,
}

/// Own manifests by id, kept until they expire (a client may hire a manifest that a
/// heartbeat has since replaced). Written by the swarm loop, read by the manager.
pub type Offers = Arc<Mutex<HashMap<Hash, Offerable>>>;

/// A hire a client wants to make.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NewHire {
    /// The manifest to hire (hex id).
    pub manifest_id: String,
    /// The job input.
    pub input: Value,
    /// Highest acceptable price (micro-units); default: the advertised price.
    pub max_price: Option<u64>,
    /// How long the work may take, ms; default: the agent's maximum duration.
    pub deadline_ms: Option<u64>,
}

/// One receipt entry as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepView {
    /// Position in the chain.
    pub seq: u64,
    /// Entry id (hex).
    pub id: String,
    /// When (ms).
    pub time: u64,
    /// Kind name (`decision`, `tool-call`, ...).
    pub kind: String,
    /// A one-line description for people.
    pub summary: String,
    /// The private payload, decoded as JSON when this node holds it.
    pub payload: Option<Value>,
}

/// A page of receipts for the API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReceiptsView {
    /// The hire's record now.
    pub hire: HireRecord,
    /// Entries from the requested seq.
    pub steps: Vec<StepView>,
}

enum ApiOp {
    Create(NewHire, Reply<Result<HireRecord, String>>),
    List(Reply<Vec<HireRecord>>),
    Get(Hash, Reply<Option<HireRecord>>),
    Receipts(Hash, u64, u64, Reply<Result<ReceiptsView, String>>),
    Answer(Hash, Value, Reply<Result<(), String>>),
    Cancel(Hash, String, Reply<Result<(), String>>),
    Settle(Hash, Verdict, String, Reply<Result<HireRecord, String>>),
    Bundle(Hash, bool, Reply<Result<Vec<u8>, String>>),
    Output(Hash, Reply<Result<Option<Value>, String>>),
}

/// Messages to the manager.
pub enum HireMsg {
    /// A hire call from a peer.
    Inbound {
        /// The caller (authenticated by the connection).
        peer: PeerId,
        /// The call.
        call: HireCall,
        /// Where the reply goes.
        channel: ResponseChannel<HireReply>,
    },
    /// A local API request.
    Api(ApiOpBox),
    /// A job's progress.
    Job(JobUpdate),
    /// A follower's progress.
    Follow(FollowUpdate),
    /// A negotiation finished with a stored contract.
    Contracted(Box<(HireRecord, Contract, Signed<Manifest>)>),
    /// Stop every job and follower.
    Shutdown(Reply<()>),
}

/// An API request (opaque outside this module).
pub struct ApiOpBox(ApiOp);

/// The API's handle on the manager.
#[derive(Clone, Debug)]
pub struct HireOps {
    tx: mpsc::Sender<HireMsg>,
}

const STOPPED: &str = "the node is shutting down";

impl HireOps {
    async fn ask<T>(&self, make: impl FnOnce(Reply<T>) -> ApiOp) -> Result<T, String> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(HireMsg::Api(ApiOpBox(make(tx))))
            .await
            .map_err(|_| STOPPED.to_string())?;
        rx.await.map_err(|_| STOPPED.to_string())
    }

    /// Negotiates and, if the terms are acceptable, forms a contract and starts following.
    pub async fn create(&self, new: NewHire) -> Result<HireRecord, String> {
        self.ask(|r| ApiOp::Create(new, r)).await?
    }
    /// Every hire.
    pub async fn list(&self) -> Result<Vec<HireRecord>, String> {
        self.ask(ApiOp::List).await
    }
    /// One hire.
    pub async fn get(&self, id: Hash) -> Result<Option<HireRecord>, String> {
        self.ask(|r| ApiOp::Get(id, r)).await
    }
    /// Receipts from `from`, waiting up to `wait_ms` for new ones.
    pub async fn receipts(
        &self,
        id: Hash,
        from: u64,
        wait_ms: u64,
    ) -> Result<ReceiptsView, String> {
        self.ask(|r| ApiOp::Receipts(id, from, wait_ms, r)).await?
    }
    /// Answers the agent's question.
    pub async fn answer(&self, id: Hash, answer: Value) -> Result<(), String> {
        self.ask(|r| ApiOp::Answer(id, answer, r)).await?
    }
    /// Cancels the hire.
    pub async fn cancel(&self, id: Hash, reason: String) -> Result<(), String> {
        self.ask(|r| ApiOp::Cancel(id, reason, r)).await?
    }
    /// Settles a finished hire: countersigns its head with a verdict.
    pub async fn settle(
        &self,
        id: Hash,
        verdict: Verdict,
        reason: String,
    ) -> Result<HireRecord, String> {
        self.ask(|r| ApiOp::Settle(id, verdict, reason, r)).await?
    }
    /// The receipt bundle (`souk verify` format); `disclose` opens every held payload.
    pub async fn bundle(&self, id: Hash, disclose: bool) -> Result<Vec<u8>, String> {
        self.ask(|r| ApiOp::Bundle(id, disclose, r)).await?
    }
    /// The job output, once completed.
    pub async fn output(&self, id: Hash) -> Result<Option<Value>, String> {
        self.ask(|r| ApiOp::Output(id, r)).await?
    }

    /// Pauses every job and follower (they resume on the next start) and stops the manager.
    pub async fn shutdown(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(HireMsg::Shutdown(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }
}

struct Parked {
    channel: ResponseChannel<HireReply>,
    from: u64,
    deadline: tokio::time::Instant,
}

struct ApiParked {
    from: u64,
    deadline: tokio::time::Instant,
    reply: Reply<Result<ReceiptsView, String>>,
}

/// The manager's state.
pub struct HireManager {
    store: Arc<Store>,
    key: Arc<Keypair>,
    workdir: PathBuf,
    caller: Caller,
    offers: Offers,
    tx: mpsc::Sender<HireMsg>,
    hires: HashMap<Hash, HireRecord>,
    jobs: HashMap<Hash, mpsc::Sender<JobControl>>,
    following: HashSet<Hash>,
    stop_followers: watch::Sender<bool>,
    parked: HashMap<Hash, Vec<Parked>>,
    api_parked: HashMap<Hash, Vec<ApiParked>>,
    last_settle_try: HashMap<Hash, tokio::time::Instant>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

fn peer_of(id: &NodeId) -> Option<PeerId> {
    PeerId::from_bytes(&id.peer_id_bytes()).ok()
}

fn err(code: CallError, message: impl Into<String>) -> HireReply {
    HireReply::Error {
        code,
        message: message.into(),
    }
}

/// Removes and returns the parked requests (of hire `only`, or of every hire) that satisfy
/// `due`, keeping the others parked.
fn take_parked<T>(
    map: &mut HashMap<Hash, Vec<T>>,
    only: Option<&Hash>,
    due: impl Fn(&T) -> bool,
) -> Vec<(Hash, T)> {
    let ids: Vec<Hash> = match only {
        Some(id) => vec![*id],
        None => map.keys().copied().collect(),
    };
    let mut out = Vec::new();
    for id in ids {
        let Some(list) = map.remove(&id) else {
            continue;
        };
        let (ready, keep): (Vec<T>, Vec<T>) = list.into_iter().partition(|p| due(p));
        out.extend(ready.into_iter().map(|p| (id, p)));
        if !keep.is_empty() {
            map.insert(id, keep);
        }
    }
    out
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| e.to_string())?
}

impl HireManager {
    /// A manager over `store`, running hires' agents under `workdir`.
    pub fn new(
        store: Arc<Store>,
        key: Arc<Keypair>,
        workdir: PathBuf,
        caller: Caller,
        offers: Offers,
    ) -> (Self, mpsc::Receiver<HireMsg>, HireOps) {
        let (tx, rx) = mpsc::channel(256);
        let (stop_followers, _) = watch::channel(false);
        let m = Self {
            store,
            key,
            workdir,
            caller,
            offers,
            tx: tx.clone(),
            hires: HashMap::new(),
            jobs: HashMap::new(),
            following: HashSet::new(),
            stop_followers,
            parked: HashMap::new(),
            api_parked: HashMap::new(),
            last_settle_try: HashMap::new(),
            tasks: Vec::new(),
        };
        (m, rx, HireOps { tx })
    }

    /// The sender the swarm loop uses to deliver inbound calls.
    pub fn sender(&self) -> mpsc::Sender<HireMsg> {
        self.tx.clone()
    }

    /// Loads every hire, resumes unfinished jobs and followers, then serves until shutdown.
    pub async fn run(mut self, mut rx: mpsc::Receiver<HireMsg>) {
        let store = self.store.clone();
        match blocking(move || store.list_hires().map_err(|e| e.to_string())).await {
            Ok(list) => {
                for (id, raw) in list {
                    match HireRecord::from_bytes(&raw) {
                        Ok(r) => {
                            self.hires.insert(id, r);
                        }
                        Err(e) => tracing::error!(hire = %id.short(), "{e}"),
                    }
                }
            }
            Err(e) => tracing::error!("cannot load hires: {e}"),
        }
        let ids: Vec<Hash> = self.hires.keys().copied().collect();
        for id in ids {
            self.resume(id).await;
        }
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                msg = rx.recv() => match msg {
                    Some(HireMsg::Shutdown(reply)) => {
                        self.stop().await;
                        let _ = reply.send(());
                        return;
                    }
                    Some(msg) => self.on_msg(msg).await,
                    None => {
                        self.stop().await;
                        return;
                    }
                },
                _ = tick.tick() => self.housekeeping().await,
            }
        }
    }

    async fn stop(&mut self) {
        let _ = self.stop_followers.send(true);
        // Dropping the control senders tells every job to stop where it is (it resumes later).
        self.jobs.clear();
        // Wait for them, so nothing holds the store when shutdown returns.
        for t in self.tasks.drain(..) {
            let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
        }
    }

    async fn resume(&mut self, id: Hash) {
        let Some(r) = self.hires.get(&id).cloned() else {
            return;
        };
        let terminal = r.state().is_terminal();
        match r.role {
            Role::Provider if !terminal => {
                if let Err(e) = self.start_job(id).await {
                    tracing::error!(hire = %id.short(), "cannot resume the job: {e}");
                }
            }
            Role::Client if r.error.is_none() && (!terminal || self.needs_output(&r)) => {
                if let Err(e) = self.start_follower(id).await {
                    tracing::error!(hire = %id.short(), "cannot resume following: {e}");
                }
            }
            _ => {}
        }
    }

    fn needs_output(&self, r: &HireRecord) -> bool {
        r.state() == HireState::Completed
            && self
                .store
                .get_hire_blob(&r.id(), BLOB_OUTPUT)
                .ok()
                .flatten()
                .is_none()
    }

    fn blob(&self, id: &Hash, name: &str) -> Result<Vec<u8>, String> {
        self.store
            .get_hire_blob(id, name)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("hire {} has no {name}", id.short()))
    }

    fn contract_and_manifest(&self, id: &Hash) -> Result<(Contract, Signed<Manifest>), String> {
        let contract =
            Contract::decode_bytes(&self.blob(id, BLOB_CONTRACT)?).map_err(|e| e.to_string())?;
        let manifest = Signed::<Manifest>::decode_bytes(&self.blob(id, BLOB_MANIFEST)?)
            .map_err(|e| e.to_string())?;
        Ok((contract, manifest))
    }

    async fn start_job(&mut self, id: Hash) -> Result<(), String> {
        let record = self.hires.get(&id).cloned().ok_or("unknown hire")?;
        let (_, manifest) = self.contract_and_manifest(&id)?;
        let run = {
            let offers = self.offers.lock().map_err(|_| "offers lock poisoned")?;
            offers.get(&manifest.id()).map(|o| o.run.clone())
        };
        // The manifest may have left the offers (expired, replaced); the agent record still
        // says how to run it. Without either, the job starts only to record why it cannot run.
        let run = run.or_else(|| {
            let raw = self.store.get_agent(&manifest.body().name).ok().flatten()?;
            serde_json::from_slice::<crate::publisher::AgentRecord>(&raw)
                .ok()
                .map(|r| r.spec.run)
        });
        let input: Value = serde_json::from_slice(&self.blob(&id, BLOB_INPUT)?)
            .map_err(|e| format!("input is not JSON: {e}"))?;
        let (ctl_tx, ctl_rx) = mpsc::channel(16);
        let (up_tx, up_rx) = mpsc::channel(64);
        let job = Job {
            hire_id: id,
            key: self.key.clone(),
            store: self.store.clone(),
            record,
            manifest,
            run,
            workdir: self.workdir.join(id.to_hex()),
            input,
            updates: up_tx,
            control: ctl_rx,
        };
        self.spawn_worker(up_rx, HireMsg::Job, job.run());
        self.jobs.insert(id, ctl_tx);
        Ok(())
    }

    /// Runs a job or follower task, relaying its updates into the manager's queue, and keeps
    /// its handle so shutdown can wait for it.
    fn spawn_worker<U: Send + 'static>(
        &mut self,
        mut updates: mpsc::Receiver<U>,
        wrap: fn(U) -> HireMsg,
        work: impl std::future::Future<Output = ()> + Send + 'static,
    ) {
        let tx = self.tx.clone();
        tokio::spawn(async move {
            while let Some(u) = updates.recv().await {
                if tx.send(wrap(u)).await.is_err() {
                    break;
                }
            }
        });
        self.tasks.retain(|t| !t.is_finished());
        self.tasks.push(tokio::spawn(work));
    }

    async fn start_follower(&mut self, id: Hash) -> Result<(), String> {
        if self.following.contains(&id) {
            return Ok(());
        }
        let record = self.hires.get(&id).cloned().ok_or("unknown hire")?;
        let (contract, manifest) = self.contract_and_manifest(&id)?;
        let provider = peer_of(&contract.provider()).ok_or("bad provider id")?;
        let (up_tx, up_rx) = mpsc::channel(64);
        let follower = Follower {
            hire_id: id,
            store: self.store.clone(),
            record,
            contract,
            manifest,
            provider,
            caller: self.caller.clone(),
            updates: up_tx,
            stop: self.stop_followers.subscribe(),
        };
        self.spawn_worker(up_rx, HireMsg::Follow, follower.run());
        self.following.insert(id);
        Ok(())
    }

    async fn on_msg(&mut self, msg: HireMsg) {
        match msg {
            HireMsg::Inbound {
                peer,
                call,
                channel,
            } => {
                if let Some(reply) = self.on_call(peer, call, channel).await {
                    let (channel, reply) = reply;
                    self.caller.respond(channel, reply).await;
                }
            }
            HireMsg::Api(ApiOpBox(op)) => self.on_api(op).await,
            HireMsg::Job(JobUpdate::Appended { hire_id, record }) => {
                self.hires.insert(hire_id, *record);
                self.wake(hire_id).await;
            }
            HireMsg::Job(JobUpdate::Ended { hire_id }) => {
                self.jobs.remove(&hire_id);
                self.wake(hire_id).await;
            }
            HireMsg::Follow(FollowUpdate::Progress(record)) => {
                let id = record.id();
                let mut record = *record;
                // The follower owns the chain's fields; settlement is ours.
                if let Some(mine) = self.hires.get(&id)
                    && mine.verdict.is_some()
                {
                    record.verdict = mine.verdict.clone();
                    record.settle_pending = record.settle_pending && mine.settle_pending;
                }
                self.hires.insert(id, record);
                self.wake(id).await;
            }
            HireMsg::Follow(FollowUpdate::Stopped(id)) => {
                self.following.remove(&id);
                self.wake(id).await;
            }
            HireMsg::Contracted(boxed) => {
                let (record, _, _) = *boxed;
                let id = record.id();
                self.hires.insert(id, record);
                if let Err(e) = self.start_follower(id).await {
                    tracing::error!(hire = %id.short(), "cannot follow: {e}");
                }
            }
            HireMsg::Shutdown(reply) => {
                let _ = reply.send(());
            }
        }
    }

    // ---- provider side --------------------------------------------------------------------

    fn running_of(&self, agent: &str) -> u32 {
        self.hires
            .values()
            .filter(|r| r.role == Role::Provider && r.agent == agent && !r.state().is_terminal())
            .count() as u32
    }

    fn authorize(&self, peer: &PeerId, id: &Hash) -> Result<HireRecord, HireReply> {
        let r = self.hires.get(id).ok_or_else(|| {
            err(
                CallError::UnknownHire,
                format!("no hire {} here", id.short()),
            )
        })?;
        let client = r.client.parse::<NodeId>().ok().and_then(|c| peer_of(&c));
        if client.as_ref() != Some(peer) {
            return Err(err(
                CallError::NotYourHire,
                "only the hire's client may do this",
            ));
        }
        Ok(r.clone())
    }

    /// Handles a call; `None` when the reply is deferred (a parked long-poll).
    async fn on_call(
        &mut self,
        peer: PeerId,
        call: HireCall,
        channel: ResponseChannel<HireReply>,
    ) -> Option<(ResponseChannel<HireReply>, HireReply)> {
        let reply = match call {
            HireCall::Request { request } => self.on_request(&request),
            HireCall::Accept {
                contract,
                input,
                salt,
            } => self.on_accept(&contract, input, salt).await,
            HireCall::Fetch {
                hire_id,
                from_seq,
                wait_ms,
            } => match self.authorize(&peer, &hire_id) {
                Err(e) => e,
                Ok(r) => {
                    let count = r.entries;
                    if from_seq < count || r.state().is_terminal() || wait_ms == 0 {
                        let durable = self.sync(&hire_id).await;
                        self.receipts_reply(&hire_id, from_seq, durable)
                    } else {
                        let wait = Duration::from_millis(wait_ms.min(MAX_FETCH_WAIT_MS));
                        self.parked.entry(hire_id).or_default().push(Parked {
                            channel,
                            from: from_seq,
                            deadline: tokio::time::Instant::now() + wait,
                        });
                        return None;
                    }
                }
            },
            HireCall::Answer { hire_id, answer } => match self.authorize(&peer, &hire_id) {
                Err(e) => e,
                Ok(r) if r.state() != HireState::InputRequired => {
                    err(CallError::WrongState, "the agent asked no question")
                }
                Ok(_) => {
                    let parsed = serde_json::from_slice::<Value>(&answer);
                    if parsed.is_err() {
                        err(CallError::BadCall, "an answer must be JSON")
                    } else if parsed.as_ref().is_ok_and(|v| {
                        souk_runtime::answer_payload_bytes(v).len() > MAX_DISCLOSURE_LEN
                    }) {
                        err(CallError::BadCall, "the answer is too large to be recorded")
                    } else {
                        match self.jobs.get(&hire_id) {
                            Some(job) => {
                                let _ = job.send(JobControl::Answer(answer)).await;
                                HireReply::Ok
                            }
                            None => {
                                err(CallError::Internal, "the job is not running; retry shortly")
                            }
                        }
                    }
                }
            },
            HireCall::Cancel { hire_id, reason } => match self.authorize(&peer, &hire_id) {
                Err(e) => e,
                Ok(r) if r.state().is_terminal() => HireReply::Ok,
                Ok(_) => match self.jobs.get(&hire_id) {
                    Some(job) => {
                        let _ = job
                            .send(JobControl::Cancel {
                                by: Canceler::Client,
                                reason,
                            })
                            .await;
                        HireReply::Ok
                    }
                    None => err(CallError::Internal, "the job is not running; retry shortly"),
                },
            },
            HireCall::Settle { attestation } => self.on_settle(&peer, &attestation).await,
        };
        Some((channel, reply))
    }

    fn on_request(&self, raw: &[u8]) -> HireReply {
        let request = match Signed::<HireRequest>::open(raw) {
            Ok(r) => r,
            Err(e) => return err(CallError::BadCall, format!("invalid hire request: {e}")),
        };
        let now = now_ms();
        let req = request.body();
        let offer = {
            let Ok(offers) = self.offers.lock() else {
                return err(CallError::Internal, "offers lock poisoned");
            };
            offers.get(&req.manifest_id).cloned()
        };
        let sign_decline = |reason, message: String| {
            HireReply::Decline(
                Signed::sign(
                    Decline {
                        request_id: request.id(),
                        provider: self.key.id(),
                        reason,
                        message,
                        created_at: now,
                    },
                    &self.key,
                )
                .to_bytes(),
            )
        };
        let Some(offer) = offer.filter(|o| o.manifest.body().expires_at > now) else {
            return sign_decline(
                souk_protocol::negotiation::DeclineReason::UnknownManifest,
                format!(
                    "manifest {} is not offered by this node (search again)",
                    req.manifest_id.short()
                ),
            );
        };
        let m = offer.manifest.body();
        match policy::answer(m, req, now, self.running_of(&m.name)) {
            policy::Answer::Offer(terms) => HireReply::Offer(
                Signed::sign(
                    Offer {
                        request_id: request.id(),
                        provider: self.key.id(),
                        terms,
                        valid_until: now + PROPOSAL_TTL_MS,
                        created_at: now,
                    },
                    &self.key,
                )
                .to_bytes(),
            ),
            policy::Answer::Counter(terms, reason) => HireReply::Counter(
                Signed::sign(
                    Counter {
                        request_id: request.id(),
                        provider: self.key.id(),
                        terms,
                        valid_until: now + PROPOSAL_TTL_MS,
                        reason,
                        created_at: now,
                    },
                    &self.key,
                )
                .to_bytes(),
            ),
            policy::Answer::Decline(reason, message) => sign_decline(reason, message),
        }
    }

    async fn on_accept(&mut self, raw: &[u8], input: Vec<u8>, salt: [u8; 32]) -> HireReply {
        let contract = match Contract::decode_bytes(raw) {
            Ok(c) => c,
            Err(e) => return err(CallError::BadCall, format!("malformed contract: {e}")),
        };
        let id = contract.hire_id();
        if self.hires.contains_key(&id) {
            return HireReply::Accepted { hire_id: id };
        }
        if contract.provider() != self.key.id() {
            return err(
                CallError::InvalidContract,
                "the proposal in this contract is not ours",
            );
        }
        let req = contract.request.body();
        let offer = {
            let Ok(offers) = self.offers.lock() else {
                return err(CallError::Internal, "offers lock poisoned");
            };
            offers.get(&req.manifest_id).cloned()
        };
        let Some(offer) = offer else {
            return err(CallError::Unavailable, "the manifest is no longer offered");
        };
        if let Err(v) = contract.verify(&offer.manifest) {
            return err(CallError::InvalidContract, v.to_string());
        }
        let now = now_ms();
        if now > contract.proposal.valid_until() {
            return err(CallError::Unavailable, "the proposal lapsed; request again");
        }
        if input.len() as u64 != req.input_size || commit(&salt, &input) != req.input_commitment {
            return err(
                CallError::BadCall,
                "the input does not match the request's commitment",
            );
        }
        if serde_json::from_slice::<Value>(&input).is_err() {
            return err(CallError::BadCall, "the job input must be JSON");
        }
        let m = offer.manifest.body();
        if self.running_of(&m.name) >= m.limits.max_concurrency {
            return err(
                CallError::Unavailable,
                "the agent is at capacity; request again later",
            );
        }
        let record = HireRecord::new(Role::Provider, &contract, &offer.manifest, now);
        let store = self.store.clone();
        let rec = record.to_bytes();
        let manifest_bytes = offer.manifest.to_bytes();
        let contract_bytes = contract.to_bytes();
        let stored = blocking(move || {
            store
                .put_hire_with_blobs(
                    &id,
                    &rec,
                    &[
                        (BLOB_MANIFEST, &manifest_bytes),
                        (BLOB_CONTRACT, &contract_bytes),
                        (BLOB_INPUT, &input),
                        (BLOB_SALT, &salt),
                    ],
                )
                .map_err(|e| e.to_string())
        })
        .await;
        if let Err(e) = stored {
            return err(
                CallError::Internal,
                format!("cannot store the contract: {e}"),
            );
        }
        self.hires.insert(id, record);
        tracing::info!(hire = %id.short(), agent = %m.name, "contract stored; starting the agent");
        if let Err(e) = self.start_job(id).await {
            tracing::error!(hire = %id.short(), "cannot start the job: {e}");
        }
        HireReply::Accepted { hire_id: id }
    }

    async fn on_settle(&mut self, peer: &PeerId, raw: &[u8]) -> HireReply {
        let att = match Signed::<Attestation>::decode_bytes(raw) {
            Ok(a) => a,
            Err(e) => return err(CallError::BadCall, e.to_string()),
        };
        let id = att.body().hire_id;
        let mut record = match self.authorize(peer, &id) {
            Ok(r) => r,
            Err(e) => return e,
        };
        if record.verdict.is_some() {
            // Settled once; a redelivery of the same attestation is fine, a second verdict is not.
            let same = self
                .store
                .get_hire_blob(&id, BLOB_ATTESTATION)
                .ok()
                .flatten()
                .as_deref()
                == Some(raw);
            return if same {
                HireReply::Ok
            } else {
                err(CallError::WrongState, "this hire is already settled")
            };
        }
        let chain = match self.chain(&id) {
            Ok(c) => c,
            Err(e) => return err(CallError::Internal, e),
        };
        let verdict = match check_attestation(raw, &chain) {
            Ok(v) => v,
            Err(v) => return err(CallError::BadCall, format!("attestation rejected: {v}")),
        };
        record.verdict = Some(verdict.as_str().into());
        record.updated_at = now_ms();
        let store = self.store.clone();
        let rec = record.to_bytes();
        let raw = raw.to_vec();
        match blocking(move || {
            store
                .put_hire_with_blobs(&id, &rec, &[(BLOB_ATTESTATION, &raw)])
                .map_err(|e| e.to_string())
        })
        .await
        {
            Ok(()) => {
                tracing::info!(hire = %id.short(), "settled by the client: {verdict}");
                self.hires.insert(id, record);
                HireReply::Ok
            }
            Err(e) => err(CallError::Internal, e),
        }
    }

    /// The stored chain, verified.
    fn chain(&self, id: &Hash) -> Result<ChainVerifier, String> {
        let (contract, manifest) = self.contract_and_manifest(id)?;
        let mut v = ChainVerifier::new(ChainContext::new(&contract, manifest.body()));
        for (_, raw) in self
            .store
            .receipts(id, 0, usize::MAX)
            .map_err(|e| e.to_string())?
        {
            let e = SignedEntry::decode_bytes(&raw).map_err(|e| e.to_string())?;
            v.push(e).map_err(|e| e.to_string())?;
        }
        Ok(v)
    }

    /// Makes the hire's group-committed receipts durable before they are streamed, and
    /// returns how many are durable: entries committed after the sync are not served yet, so
    /// nothing a client sees can be lost by a provider crash.
    async fn sync(&mut self, id: &Hash) -> u64 {
        let store = self.store.clone();
        let hire = *id;
        let synced = blocking(move || {
            let n = store.receipt_count(&hire).map_err(|e| e.to_string())?;
            store.flush().map_err(|e| e.to_string())?;
            Ok(n)
        })
        .await;
        match synced {
            Ok(n) => n,
            Err(e) => {
                tracing::error!(hire = %id.short(), "cannot sync receipts: {e}");
                0
            }
        }
    }

    fn receipts_reply(&self, id: &Hash, from: u64, durable: u64) -> HireReply {
        let limit = (durable.saturating_sub(from) as usize).min(MAX_FETCH_ENTRIES);
        let entries = match self.store.receipts(id, from, limit) {
            Ok(e) => e,
            Err(e) => return err(CallError::Internal, e.to_string()),
        };
        let mut payloads: HashMap<u64, Vec<u8>> = self
            .store
            .receipt_payloads(id, from, MAX_FETCH_ENTRIES)
            .unwrap_or_default()
            .into_iter()
            .filter(|(_, b)| b.len() >= 32)
            .collect();
        // Keep the reply well under the wire limit whatever the payloads weigh: entries and
        // disclosures within 8 MiB (at least one entry always goes), plus the output.
        const BUDGET: usize = 8 * 1024 * 1024;
        let mut used = 0usize;
        let mut out_entries = Vec::new();
        let mut disclosures = Vec::new();
        let mut completed = false;
        for (seq, raw) in entries {
            let payload = payloads.remove(&seq);
            let cost = raw.len() + payload.as_ref().map_or(0, |p| p.len() + 16);
            if !out_entries.is_empty() && used + cost > BUDGET {
                break;
            }
            used += cost;
            completed |= SignedEntry::decode_bytes(&raw)
                .is_ok_and(|e| matches!(e.body().kind, EntryKind::Completed { .. }));
            out_entries.push(raw);
            if let Some(b) = payload {
                let mut salt = [0u8; 32];
                salt.copy_from_slice(&b[..32]);
                disclosures.push(Disclosure {
                    seq,
                    salt,
                    payload: b[32..].to_vec(),
                });
            }
        }
        let output = if completed {
            self.store.get_hire_blob(id, BLOB_OUTPUT).ok().flatten()
        } else {
            None
        };
        HireReply::Receipts {
            entries: out_entries,
            disclosures,
            output,
        }
    }

    async fn wake(&mut self, id: Hash) {
        let count = self.hires.get(&id).map_or(0, |r| r.entries);
        let terminal = self.hires.get(&id).is_some_and(|r| r.state().is_terminal());
        let ready = |from: u64| from < count || terminal;
        for (id, p) in take_parked(&mut self.parked, Some(&id), |p| ready(p.from)) {
            self.answer_fetch(id, p).await;
        }
        for (id, p) in take_parked(&mut self.api_parked, Some(&id), |p| ready(p.from)) {
            let _ = p.reply.send(self.receipts_view(&id, p.from));
        }
    }

    /// Replies to a parked fetch with whatever is durable now.
    async fn answer_fetch(&mut self, id: Hash, p: Parked) {
        let durable = self.sync(&id).await;
        let reply = self.receipts_reply(&id, p.from, durable);
        self.caller.respond(p.channel, reply).await;
    }

    async fn housekeeping(&mut self) {
        let now = tokio::time::Instant::now();
        // Long-polls whose wait is over get what there is (possibly nothing).
        for (id, p) in take_parked(&mut self.parked, None, |p| p.deadline <= now) {
            self.answer_fetch(id, p).await;
        }
        for (id, p) in take_parked(&mut self.api_parked, None, |p| p.deadline <= now) {
            let _ = p.reply.send(self.receipts_view(&id, p.from));
        }
        // Attestations that have not reached the provider yet.
        let pending: Vec<Hash> = self
            .hires
            .values()
            .filter(|r| r.role == Role::Client && r.settle_pending)
            .map(|r| r.id())
            .collect();
        for id in pending {
            let retry = self
                .last_settle_try
                .get(&id)
                .is_none_or(|t| t.elapsed() > Duration::from_secs(5));
            if retry {
                self.last_settle_try.insert(id, now);
                self.send_settlement(id);
            }
        }
    }

    fn send_settlement(&self, id: Hash) {
        let Ok(att) = self.blob(&id, BLOB_ATTESTATION) else {
            return;
        };
        let Some(provider) = self
            .hires
            .get(&id)
            .and_then(|r| r.provider.parse::<NodeId>().ok())
            .and_then(|p| peer_of(&p))
        else {
            return;
        };
        let caller = self.caller.clone();
        let store = self.store.clone();
        let tx = self.tx.clone();
        tokio::spawn(async move {
            match caller
                .call(provider, HireCall::Settle { attestation: att })
                .await
            {
                Ok(HireReply::Ok) => {
                    let updated = tokio::task::spawn_blocking(move || -> Option<HireRecord> {
                        let mut r = HireRecord::from_bytes(&store.get_hire(&id).ok()??).ok()?;
                        r.settle_pending = false;
                        store.put_hire(&id, &r.to_bytes()).ok()?;
                        Some(r)
                    })
                    .await
                    .ok()
                    .flatten();
                    if let Some(r) = updated {
                        let _ = tx
                            .send(HireMsg::Follow(FollowUpdate::Progress(Box::new(r))))
                            .await;
                    }
                }
                Ok(other) => {
                    tracing::warn!(hire = %id.short(), "the provider refused the attestation: {other:?}")
                }
                Err(e) => tracing::debug!(hire = %id.short(), "attestation not delivered yet: {e}"),
            }
        });
    }

    // ---- API ------------------------------------------------------------------------------

    fn receipts_view(&self, id: &Hash, from: u64) -> Result<ReceiptsView, String> {
        let hire = self
            .hires
            .get(id)
            .cloned()
            .ok_or_else(|| format!("no hire {}", id.short()))?;
        let entries = self
            .store
            .receipts(id, from, 1024)
            .map_err(|e| e.to_string())?;
        let payloads: HashMap<u64, Vec<u8>> = self
            .store
            .receipt_payloads(id, from, 1024)
            .map_err(|e| e.to_string())?
            .into_iter()
            .collect();
        let mut steps = Vec::with_capacity(entries.len());
        for (seq, raw) in entries {
            let e = SignedEntry::decode_bytes(&raw).map_err(|e| e.to_string())?;
            let payload = payloads
                .get(&seq)
                .filter(|b| b.len() >= 32)
                .and_then(|b| serde_json::from_slice::<Value>(&b[32..]).ok());
            steps.push(StepView {
                seq,
                id: e.id().to_hex(),
                time: e.body().time,
                kind: e.body().kind.name().into(),
                summary: summarize(&e.body().kind, payload.as_ref()),
                payload,
            });
        }
        Ok(ReceiptsView { hire, steps })
    }

    async fn on_api(&mut self, op: ApiOp) {
        match op {
            ApiOp::Create(new, reply) => {
                let ctx = Negotiation {
                    caller: self.caller.clone(),
                    store: self.store.clone(),
                    key: self.key.clone(),
                    manager: self.tx.clone(),
                };
                tokio::spawn(async move {
                    let _ = reply.send(negotiate(ctx, new).await);
                });
            }
            ApiOp::List(reply) => {
                let mut v: Vec<HireRecord> = self.hires.values().cloned().collect();
                v.sort_by_key(|r| std::cmp::Reverse(r.created_at));
                let _ = reply.send(v);
            }
            ApiOp::Get(id, reply) => {
                let _ = reply.send(self.hires.get(&id).cloned());
            }
            ApiOp::Receipts(id, from, wait_ms, reply) => {
                let Some(r) = self.hires.get(&id) else {
                    let _ = reply.send(Err(format!("no hire {}", id.short())));
                    return;
                };
                if from < r.entries || r.state().is_terminal() || wait_ms == 0 {
                    let _ = reply.send(self.receipts_view(&id, from));
                } else {
                    self.api_parked.entry(id).or_default().push(ApiParked {
                        from,
                        deadline: tokio::time::Instant::now()
                            + Duration::from_millis(wait_ms.min(60_000)),
                        reply,
                    });
                }
            }
            ApiOp::Answer(id, answer, reply) => {
                if souk_runtime::answer_payload_bytes(&answer).len() > MAX_DISCLOSURE_LEN {
                    let _ = reply.send(Err(format!(
                        "the answer is larger than {MAX_DISCLOSURE_LEN} bytes"
                    )));
                    return;
                }
                let _ = reply.send(
                    self.client_call(
                        id,
                        |id| HireCall::Answer {
                            hire_id: id,
                            answer: serde_json::to_vec(&answer).unwrap_or_default(),
                        },
                        HireState::InputRequired,
                    )
                    .await,
                );
            }
            ApiOp::Cancel(id, reason, reply) => {
                let side = match self.hires.get(&id).map(|r| r.role) {
                    Some(Role::Provider) => "provider",
                    _ => "client",
                };
                let reason = if reason.trim().is_empty() {
                    format!("canceled by the {side}")
                } else {
                    souk_runtime::truncate_entry_text(&reason)
                };
                let r = match self.hires.get(&id) {
                    Some(r) if r.role == Role::Provider => {
                        // The provider stops its own job.
                        match self.jobs.get(&id) {
                            Some(job) => {
                                let _ = job
                                    .send(JobControl::Cancel {
                                        by: Canceler::Provider,
                                        reason,
                                    })
                                    .await;
                                Ok(())
                            }
                            None => Err("the hire is not running".to_string()),
                        }
                    }
                    Some(_) => {
                        self.client_call(
                            id,
                            |id| HireCall::Cancel {
                                hire_id: id,
                                reason,
                            },
                            HireState::Working,
                        )
                        .await
                    }
                    None => Err(format!("no hire {}", id.short())),
                };
                let _ = reply.send(r);
            }
            ApiOp::Settle(id, verdict, reason, reply) => {
                let _ = reply.send(self.settle(id, verdict, reason).await);
            }
            ApiOp::Bundle(id, disclose, reply) => {
                let _ = reply.send(self.bundle(&id, disclose));
            }
            ApiOp::Output(id, reply) => {
                let r = self
                    .store
                    .get_hire_blob(&id, BLOB_OUTPUT)
                    .map_err(|e| e.to_string())
                    .map(|o| o.and_then(|b| serde_json::from_slice(&b).ok()));
                let _ = reply.send(r);
            }
        }
    }

    /// Sends a call to the provider of a client-side hire, checking the state first.
    async fn client_call(
        &self,
        id: Hash,
        make: impl FnOnce(Hash) -> HireCall,
        needs: HireState,
    ) -> Result<(), String> {
        let r = self
            .hires
            .get(&id)
            .ok_or_else(|| format!("no hire {}", id.short()))?;
        if r.role != Role::Client {
            return Err("this node is the provider of that hire".into());
        }
        let state = r.state();
        let ok = match needs {
            HireState::InputRequired => state == HireState::InputRequired,
            _ => !state.is_terminal(),
        };
        if !ok {
            return Err(format!("the hire is {state}"));
        }
        let provider = r
            .provider
            .parse::<NodeId>()
            .ok()
            .and_then(|p| peer_of(&p))
            .ok_or("bad provider id")?;
        let caller = self.caller.clone();
        match caller.call(provider, make(id)).await {
            Ok(HireReply::Ok) => Ok(()),
            Ok(HireReply::Error { message, .. }) => Err(format!("the provider refused: {message}")),
            Ok(other) => Err(format!("unexpected reply: {other:?}")),
            Err(e) => Err(format!("cannot reach the provider: {e}")),
        }
    }

    async fn settle(
        &mut self,
        id: Hash,
        verdict: Verdict,
        reason: String,
    ) -> Result<HireRecord, String> {
        let mut record = self
            .hires
            .get(&id)
            .cloned()
            .ok_or_else(|| format!("no hire {}", id.short()))?;
        if record.role != Role::Client {
            return Err("only the client settles a hire".into());
        }
        if let Some(v) = &record.verdict {
            return Err(format!("already settled ({v})"));
        }
        if reason.len() > MAX_ENTRY_TEXT {
            return Err(format!("the reason is longer than {MAX_ENTRY_TEXT} bytes"));
        }
        let chain = self.chain(&id)?;
        let head = chain
            .head()
            .ok_or("the chain is empty: nothing to settle")?;
        if !chain.state().is_terminal() {
            return Err(format!(
                "the hire is still {}; settle it once it has ended",
                chain.state()
            ));
        }
        let att = Signed::sign(
            Attestation {
                hire_id: id,
                head_seq: head.body().seq,
                head_id: head.id(),
                verdict,
                reason,
                created_at: now_ms(),
            },
            &self.key,
        );
        record.verdict = Some(verdict.as_str().into());
        record.settle_pending = true;
        record.updated_at = now_ms();
        let store = self.store.clone();
        let rec = record.to_bytes();
        let bytes = att.to_bytes();
        blocking(move || {
            store
                .put_hire_with_blobs(&id, &rec, &[(BLOB_ATTESTATION, &bytes)])
                .map_err(|e| e.to_string())
        })
        .await?;
        self.hires.insert(id, record.clone());
        self.last_settle_try.insert(id, tokio::time::Instant::now());
        self.send_settlement(id);
        Ok(record)
    }

    fn bundle(&self, id: &Hash, disclose: bool) -> Result<Vec<u8>, String> {
        if !self.hires.contains_key(id) {
            return Err(format!("no hire {}", id.short()));
        }
        let manifest = self.blob(id, BLOB_MANIFEST)?;
        let contract = self.blob(id, BLOB_CONTRACT)?;
        let entries: Vec<Vec<u8>> = self
            .store
            .receipts(id, 0, usize::MAX)
            .map_err(|e| e.to_string())?
            .into_iter()
            .map(|(_, b)| b)
            .collect();
        let attestation = self
            .store
            .get_hire_blob(id, BLOB_ATTESTATION)
            .map_err(|e| e.to_string())?;
        let disclosures = if disclose {
            self.store
                .receipt_payloads(id, 0, usize::MAX)
                .map_err(|e| e.to_string())?
                .into_iter()
                .filter(|(_, b)| b.len() >= 32)
                .map(|(seq, b)| {
                    let mut salt = [0u8; 32];
                    salt.copy_from_slice(&b[..32]);
                    Disclosure {
                        seq,
                        salt,
                        payload: b[32..].to_vec(),
                    }
                })
                .collect()
        } else {
            Vec::new()
        };
        Ok(Bundle {
            manifest,
            contract,
            entries,
            attestation,
            disclosures,
        }
        .to_bytes())
    }
}

/// A one-line description of an entry for `souk hire watch`.
pub fn summarize(kind: &EntryKind, payload: Option<&Value>) -> String {
    let text = |key: &str| {
        payload
            .and_then(|p| p.get(key))
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    };
    match kind {
        EntryKind::Started { runtime_digest } => {
            format!("agent started (runtime {})", runtime_digest.short())
        }
        EntryKind::Decision => text("text").unwrap_or_else(|| "decision".into()),
        EntryKind::ToolCall { tool } => match payload.and_then(|p| p.get("args")) {
            Some(args) => format!("{tool} {args}"),
            None => tool.clone(),
        },
        EntryKind::NetworkCall(c) => {
            format!("{} https://{}{} -> {}", c.method, c.host, c.path, c.status)
        }
        EntryKind::InputRequested => match payload.and_then(|p| p.get("question")) {
            Some(q) => format!("question: {q}"),
            None => "the agent asks a question".into(),
        },
        EntryKind::InputProvided => "answer delivered".into(),
        EntryKind::Checkpoint { state_hash } => format!("checkpoint {}", state_hash.short()),
        EntryKind::Completed { output_hash } => {
            format!("completed (output {})", output_hash.short())
        }
        EntryKind::Failed { code, message } => format!("failed ({}): {message}", code.as_str()),
        EntryKind::Canceled { reason, .. } => format!("canceled: {reason}"),
        EntryKind::Expired { .. } => "deadline passed".into(),
    }
}

/// What a negotiation needs.
struct Negotiation {
    caller: Caller,
    store: Arc<Store>,
    key: Arc<Keypair>,
    manager: mpsc::Sender<HireMsg>,
}

/// The client side of negotiation: request -> offer/counter/decline -> accept, with the
/// contract stored durably before the acceptance is sent.
async fn negotiate(ctx: Negotiation, new: NewHire) -> Result<HireRecord, String> {
    let manifest_id = Hash::from_hex(&new.manifest_id).ok_or("a manifest id is 64 hex digits")?;
    let manifest = ctx
        .caller
        .lookup_manifest(manifest_id)
        .await?
        .ok_or_else(|| {
            format!(
                "manifest {} is unknown here: find it with `souk search` first",
                manifest_id.short()
            )
        })?;
    let m = manifest.body();
    let provider = peer_of(&m.provider).ok_or("bad provider id")?;
    let input = serde_json::to_vec(&new.input).map_err(|e| e.to_string())?;
    let salt = crate::data_dir::random_32().map_err(|e| e.to_string())?;
    let nonce = crate::data_dir::random_32().map_err(|e| e.to_string())?;
    let now = now_ms();
    let window = new.deadline_ms.unwrap_or(m.limits.max_duration_ms);
    // Default ceiling: what the manifest's own pricing charges for the requested window.
    let max_price = new.max_price.unwrap_or_else(|| policy::quote(m, window));
    let deadline = now.saturating_add(window);
    let mut n16 = [0u8; 16];
    n16.copy_from_slice(&nonce[..16]);
    let request = Signed::sign(
        HireRequest {
            manifest_id,
            client: ctx.key.id(),
            input_commitment: commit(&salt, &input),
            input_size: input.len() as u64,
            budget: Price {
                currency: m.pricing.currency.clone(),
                amount: max_price.min(m.pricing.per_hire),
            },
            deadline,
            nonce: n16,
            created_at: now,
        },
        &ctx.key,
    );
    let reply = ctx
        .caller
        .call(
            provider,
            HireCall::Request {
                request: request.to_bytes(),
            },
        )
        .await
        .map_err(|e| format!("cannot reach the provider {}: {e}", m.provider))?;
    let proposal = match reply {
        HireReply::Offer(b) => {
            let s = Signed::<Offer>::decode_bytes(&b).map_err(|e| e.to_string())?;
            s.verify(&m.provider).map_err(|e| e.to_string())?;
            Proposal::Offer(s)
        }
        HireReply::Counter(b) => {
            let s = Signed::<Counter>::decode_bytes(&b).map_err(|e| e.to_string())?;
            s.verify(&m.provider).map_err(|e| e.to_string())?;
            Proposal::Counter(s)
        }
        HireReply::Decline(b) => {
            let s = Signed::<Decline>::decode_bytes(&b).map_err(|e| e.to_string())?;
            s.verify(&m.provider).map_err(|e| e.to_string())?;
            return Err(format!(
                "declined ({}): {}",
                s.body().reason.as_str(),
                s.body().message
            ));
        }
        HireReply::Error { message, .. } => return Err(format!("the provider refused: {message}")),
        other => return Err(format!("unexpected reply: {other:?}")),
    };
    if proposal.request_id() != request.id() {
        return Err("the provider answered another request".into());
    }
    policy::acceptable(proposal.terms(), &m.pricing.currency, max_price, deadline)
        .map_err(|e| format!("not accepted by your policy: {e}"))?;
    let accept = Signed::sign(
        Accept {
            request_id: request.id(),
            proposal_id: proposal.id(),
            client: ctx.key.id(),
            created_at: now_ms(),
        },
        &ctx.key,
    );
    let contract = Contract {
        request,
        proposal,
        accept,
    };
    contract
        .verify(&manifest)
        .map_err(|v| format!("the provider's proposal is invalid: {v}"))?;
    let id = contract.hire_id();
    let mut record = HireRecord::new(Role::Client, &contract, &manifest, now_ms());
    // Stored before anything is sent: a crash now leaves a contract we can act on later.
    {
        let store = ctx.store.clone();
        let rec = record.to_bytes();
        let mb = manifest.to_bytes();
        let cb = contract.to_bytes();
        let input = input.clone();
        let salt = *salt;
        blocking(move || {
            store
                .put_hire_with_blobs(
                    &id,
                    &rec,
                    &[
                        (BLOB_MANIFEST, &mb),
                        (BLOB_CONTRACT, &cb),
                        (BLOB_INPUT, &input),
                        (BLOB_SALT, &salt),
                    ],
                )
                .map_err(|e| e.to_string())
        })
        .await?;
    }
    let call = HireCall::Accept {
        contract: contract.to_bytes(),
        input,
        salt: *salt,
    };
    let mut refused = None;
    for attempt in 0..3u32 {
        match ctx.caller.call(provider, call.clone()).await {
            Ok(HireReply::Accepted { hire_id }) if hire_id == id => {
                let _ = ctx
                    .manager
                    .send(HireMsg::Contracted(Box::new((
                        record.clone(),
                        contract,
                        manifest,
                    ))))
                    .await;
                return Ok(record);
            }
            Ok(HireReply::Error { message, .. }) => {
                refused = Some(format!("the provider refused the contract: {message}"));
                break;
            }
            Ok(other) => {
                refused = Some(format!("unexpected reply: {other:?}"));
                break;
            }
            Err(e) => {
                tracing::debug!("accept not delivered (attempt {}): {e}", attempt + 1);
                tokio::time::sleep(Duration::from_millis(250 << attempt)).await;
            }
        }
    }
    match refused {
        // The provider may well have stored it: follow the hire; the follower re-sends the
        // acceptance if the provider turns out not to know it.
        None => {
            let _ = ctx
                .manager
                .send(HireMsg::Contracted(Box::new((
                    record.clone(),
                    contract,
                    manifest,
                ))))
                .await;
            Ok(record)
        }
        Some(why) => {
            // The provider refused: record why, so the hire does not look alive.
            record.set_state(HireState::Failed, now_ms());
            record.error = Some(why.clone());
            let store = ctx.store.clone();
            let rec = record.to_bytes();
            let _ = blocking(move || store.put_hire(&id, &rec).map_err(|e| e.to_string())).await;
            let _ = ctx
                .manager
                .send(HireMsg::Follow(FollowUpdate::Progress(Box::new(record))))
                .await;
            Err(why)
        }
    }
}
