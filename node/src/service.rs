//! The running node: one task that owns the libp2p swarm, the catalog and the publisher, and
//! reacts to swarm events, commands, and timers; beside it the [`HireManager`] task owns
//! every hire.
//!
//! Nothing in the loop blocks on disk: writes go to the storage worker ([`crate::storage`]).
//! Inbound manifests pass through [`Catalog::admit`] before gossipsub may forward them;
//! invalid ones are rejected, counted and charged to the sender ([`crate::peer_score`]).
//! Hire calls are handed to the manager and answered through [`Caller`]. [`NodeHandle`] is
//! the typed front door used by the API server and by tests.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use libp2p::request_response::{OutboundRequestId, ResponseChannel};
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, PeerId, gossipsub, identify, request_response};
use serde::{Deserialize, Serialize};
use souk_index::{Index, Query};
use souk_protocol::discovery::{
    MANIFEST_TOPIC, MAX_SEARCH_RESULTS, MAX_SYNC_PAGE, SEARCH_PROTOCOL, SYNC_PROTOCOL,
    SearchRequest, SearchResponse, SyncRequest, SyncResponse,
};
use souk_protocol::hiring::{CallError, HireCall, HireReply};
use souk_protocol::identity::Keypair;
use souk_protocol::manifest::Manifest;
use souk_protocol::signed::Signed;
use souk_protocol::{Hash, NodeId};
use souk_store::{ManifestWrite, Store};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::agent_file::AgentSpec;
use crate::connections::PeerManager;
use crate::discovery::{Admission, Catalog, Rejection, verify_envelope};
use crate::hire::manager::{HireMsg, Offerable, Offers};
use crate::hire::{HireManager, HireOps};
use crate::metrics::{Metrics, MetricsSnapshot};
use crate::now_ms;
use crate::peer_score::{PeerScores, Verdict};
use crate::publisher::{AgentRecord, Publisher, seq_state_key};
use crate::storage::{self, StoreOp};
use crate::swarm::{self, Behaviour, BehaviourEvent, KAD_PROTOCOL, SwarmSettings};

/// Most sync pages followed from one peer in one session (256 manifests each).
const MAX_SYNC_PAGES: u32 = 4_096;
/// Most manifests a light node remembers from search results (for `souk hire`).
const MAX_SEEN: usize = 4_096;
/// Sync sessions started per [`SYNC_WINDOW`] at most: a node catches up from a few peers when
/// it starts or reconnects, not from every peer it meets (gossip carries everything newer).
const SYNC_SESSIONS: usize = 3;
/// See [`SYNC_SESSIONS`].
const SYNC_WINDOW: Duration = Duration::from_secs(600);
/// Manifest writes queued before a batch goes to the storage worker early.
const STORE_BATCH: usize = 256;
/// How often the peer manager prunes surplus peers and dials when short of peers, and queued
/// manifest writes go to the store as one batch (made durable right after).
const PEER_CHECK: Duration = Duration::from_secs(5);

/// How a node is started.
#[derive(Debug, Clone)]
pub struct NodeOptions {
    /// Light node?
    pub light: bool,
    /// Addresses to listen on.
    pub listen: Vec<Multiaddr>,
    /// Peers to dial at start.
    pub bootstrap: Vec<Multiaddr>,
    /// Swarm tuning.
    pub swarm: SwarmSettings,
    /// Validity of published manifests, ms.
    pub manifest_ttl_ms: u64,
    /// Period of expiry sweeps and housekeeping.
    pub tick: Duration,
    /// The X25519 public key published in manifests.
    pub sealing_public: [u8; 32],
    /// Where hires' working directories go (`<dir>/<hire id>`).
    pub work_dir: PathBuf,
}

impl Default for NodeOptions {
    fn default() -> Self {
        Self {
            light: false,
            listen: Vec::new(),
            bootstrap: Vec::new(),
            swarm: SwarmSettings::default(),
            manifest_ttl_ms: 3_600_000,
            tick: Duration::from_secs(30),
            sealing_public: [0; 32],
            work_dir: std::env::temp_dir().join("souk-hires"),
        }
    }
}

/// What `souk node info` shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// The node id (`souk…`).
    pub node_id: String,
    /// The libp2p peer id.
    pub peer_id: String,
    /// `full` or `light`.
    pub mode: String,
    /// Where it listens.
    pub listen_addrs: Vec<String>,
    /// Connected peers.
    pub peers: Vec<String>,
    /// Manifests in the catalog (0 on light nodes).
    pub manifests: usize,
    /// Agents this node publishes.
    pub agents: usize,
    /// Counters.
    pub metrics: MetricsSnapshot,
}

/// A search result as the API returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchHit {
    /// Manifest id (hex).
    pub id: String,
    /// Provider node id.
    pub provider: String,
    /// Agent name.
    pub name: String,
    /// Manifest seq.
    pub seq: u64,
    /// Capability tags.
    pub capabilities: Vec<String>,
    /// Description.
    pub description: String,
    /// Currency.
    pub currency: String,
    /// Price per hire (micro-units).
    pub per_hire: u64,
    /// Price per hour (micro-units).
    pub per_hour: u64,
    /// Expiry (ms).
    pub expires_at: u64,
}

impl SearchHit {
    /// From a verified manifest.
    pub fn from_manifest(m: &Signed<Manifest>) -> Self {
        let b = m.body();
        Self {
            id: m.id().to_hex(),
            provider: b.provider.to_string(),
            name: b.name.clone(),
            seq: b.seq,
            capabilities: b.capabilities.clone(),
            description: b.description.clone(),
            currency: b.pricing.currency.clone(),
            per_hire: b.pricing.per_hire,
            per_hour: b.pricing.per_hour,
            expires_at: b.expires_at,
        }
    }
}

/// The result of publishing an agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Published {
    /// Agent name.
    pub name: String,
    /// Manifest id (hex).
    pub manifest_id: String,
    /// Its seq.
    pub seq: u64,
    /// When it expires (ms).
    pub expires_at: u64,
}

/// How a manifest reached this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Via {
    /// Published by this node.
    Local,
    /// Received by gossip.
    Gossip,
    /// Received through sync.
    Sync,
}

/// Something that happened on the node, for observers (tests, benchmarks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeEvent {
    /// A manifest entered the catalog.
    ManifestAdmitted {
        /// Its id.
        id: Hash,
        /// How it arrived.
        via: Via,
    },
}

type Reply<T> = oneshot::Sender<T>;

/// Requests to the node's task.
enum Command {
    Info(Reply<NodeInfo>),
    Publish(Box<AgentSpec>, u64, Reply<Result<Published, String>>),
    Committed {
        manifest: Box<Signed<Manifest>>,
        record: Box<AgentRecord>,
        reply: Option<Reply<Result<Published, String>>>,
        durable: Result<(), String>,
    },
    Retire(String, Reply<Result<String, String>>),
    Agents(Reply<Vec<AgentRecord>>),
    Search(SearchRequest, Reply<Result<Vec<SearchHit>, String>>),
    Manifest(Hash, Reply<Option<Vec<u8>>>),
    LookupManifest(Hash, Reply<Option<Signed<Manifest>>>),
    Dial(Multiaddr, Reply<Result<(), String>>),
    GossipRaw(Vec<u8>, Reply<Result<(), String>>),
    HireCall {
        peer: PeerId,
        call: Box<HireCall>,
        reply: Reply<Result<HireReply, String>>,
    },
    HireRespond {
        channel: ResponseChannel<HireReply>,
        reply: Box<HireReply>,
    },
    Shutdown(Reply<()>),
}

const STOPPED: &str = "the node is shutting down";

/// Sends hire calls to peers and replies to inbound calls, through the swarm loop.
#[derive(Clone, Debug)]
pub struct Caller {
    tx: mpsc::Sender<Command>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Command")
    }
}

impl Caller {
    /// Sends `call` to `peer` and waits for its reply.
    pub async fn call(&self, peer: PeerId, call: HireCall) -> Result<HireReply, String> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Command::HireCall {
                peer,
                call: Box::new(call),
                reply: tx,
            })
            .await
            .map_err(|_| STOPPED.to_string())?;
        rx.await.map_err(|_| STOPPED.to_string())?
    }

    /// Answers an inbound call.
    pub async fn respond(&self, channel: ResponseChannel<HireReply>, reply: HireReply) {
        let _ = self
            .tx
            .send(Command::HireRespond {
                channel,
                reply: Box::new(reply),
            })
            .await;
    }

    /// A verified manifest known to this node (catalog, or recent search results).
    pub async fn lookup_manifest(&self, id: Hash) -> Result<Option<Signed<Manifest>>, String> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Command::LookupManifest(id, tx))
            .await
            .map_err(|_| STOPPED.to_string())?;
        rx.await.map_err(|_| STOPPED.to_string())
    }
}

/// A handle on a running node.
#[derive(Clone)]
pub struct NodeHandle {
    tx: mpsc::Sender<Command>,
    /// The node's counters.
    pub metrics: Arc<Metrics>,
    /// The node id.
    pub node_id: NodeId,
    /// The libp2p peer id.
    pub peer_id: PeerId,
    /// Hires: create, follow, answer, cancel, settle, export.
    pub hires: HireOps,
    events: tokio::sync::broadcast::Sender<NodeEvent>,
    /// Weak: a handle kept after shutdown must not keep the database open.
    store: std::sync::Weak<Store>,
    manager_task: Arc<Mutex<Option<JoinHandle<()>>>>,
}

impl std::fmt::Debug for NodeHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeHandle")
            .field("node_id", &self.node_id)
            .finish_non_exhaustive()
    }
}

/// Starting a node failed.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The swarm could not be built.
    #[error("cannot build the libp2p swarm: {0}")]
    Swarm(String),
    /// A listen address could not be bound.
    #[error("cannot listen on {addr}: {reason}")]
    Listen {
        /// The address.
        addr: String,
        /// Why.
        reason: String,
    },
    /// The store could not be read.
    #[error("cannot read the store: {0}")]
    Store(String),
}

impl NodeHandle {
    async fn ask<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T, String> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(make(tx))
            .await
            .map_err(|_| STOPPED.to_string())?;
        rx.await.map_err(|_| STOPPED.to_string())
    }

    /// Node id, addresses, peers, counts.
    pub async fn info(&self) -> Result<NodeInfo, String> {
        self.ask(Command::Info).await
    }

    /// Signs and announces an agent (durably recorded before this returns).
    pub async fn publish(&self, spec: AgentSpec) -> Result<Published, String> {
        // The highest seq this data directory ever signed for the name (retired ones too).
        let store = self.store.upgrade().ok_or(STOPPED)?;
        let key = seq_state_key(&spec.name);
        let floor = tokio::task::spawn_blocking(move || store.get_state(&key))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?
            .and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
            .map_or(0, u64::from_be_bytes);
        self.ask(|r| Command::Publish(Box::new(spec), floor, r))
            .await?
    }

    /// Retires an agent; returns the retiring manifest id.
    pub async fn retire(&self, name: &str) -> Result<String, String> {
        self.ask(|r| Command::Retire(name.to_owned(), r)).await?
    }

    /// This node's agents.
    pub async fn agents(&self) -> Result<Vec<AgentRecord>, String> {
        self.ask(Command::Agents).await
    }

    /// Searches (locally on a full node, through full peers on a light node).
    pub async fn search(&self, req: SearchRequest) -> Result<Vec<SearchHit>, String> {
        self.ask(|r| Command::Search(req, r)).await?
    }

    /// A manifest envelope held by this node.
    pub async fn manifest(&self, id: Hash) -> Result<Option<Vec<u8>>, String> {
        self.ask(|r| Command::Manifest(id, r)).await
    }

    /// Dials a peer.
    pub async fn dial(&self, addr: Multiaddr) -> Result<(), String> {
        self.ask(|r| Command::Dial(addr, r)).await?
    }

    /// Fault injection: publishes raw bytes on the manifest topic without any validation,
    /// as a buggy or malicious peer would. Used by tests and testnet scenarios.
    pub async fn gossip_raw(&self, bytes: Vec<u8>) -> Result<(), String> {
        self.ask(|r| Command::GossipRaw(bytes, r)).await?
    }

    /// Events from now on (a lagging receiver loses the oldest ones).
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<NodeEvent> {
        self.events.subscribe()
    }

    /// Stops the node: hires are paused where they are (they resume on the next start),
    /// the store is flushed and closed when this returns.
    pub async fn shutdown(&self) {
        let _ = self.hires_shutdown().await;
        let _ = self.ask(Command::Shutdown).await;
    }

    async fn hires_shutdown(&self) -> Result<(), String> {
        self.hires.shutdown().await;
        let task = self.manager_task.lock().map_err(|_| "poisoned")?.take();
        if let Some(t) = task {
            let _ = t.await;
        }
        Ok(())
    }
}

struct PendingSearch {
    req: SearchRequest,
    waiting: HashSet<OutboundRequestId>,
    results: Vec<Signed<Manifest>>,
    reply: Reply<Result<Vec<SearchHit>, String>>,
    deadline: tokio::time::Instant,
}

struct Node {
    key: Arc<Keypair>,
    light: bool,
    swarm: libp2p::Swarm<Behaviour>,
    store_tx: mpsc::Sender<StoreOp>,
    store_thread: Option<std::thread::JoinHandle<()>>,
    self_tx: mpsc::Sender<Command>,
    manager_tx: mpsc::Sender<HireMsg>,
    metrics: Arc<Metrics>,
    catalog: Catalog,
    publisher: Publisher,
    offers: Offers,
    seen: HashMap<Hash, Signed<Manifest>>,
    scores: PeerScores,
    topic: gossipsub::IdentTopic,
    listen_addrs: Vec<Multiaddr>,
    full_peers: HashMap<PeerId, Vec<Multiaddr>>,
    synced: HashMap<PeerId, u32>,
    store_batch: Vec<ManifestWrite>,
    sync_starts: std::collections::VecDeque<Instant>,
    pending_publish: Vec<Vec<u8>>,
    searches: HashMap<u64, PendingSearch>,
    search_of: HashMap<OutboundRequestId, u64>,
    next_search: u64,
    calls: HashMap<OutboundRequestId, Reply<Result<HireReply, String>>>,
    kad_bootstrapped: bool,
    peers: PeerManager,
    bootstrap: Vec<Multiaddr>,
    request_timeout: Duration,
    events: tokio::sync::broadcast::Sender<NodeEvent>,
}

/// A node's phase in `[0, 1)` for its periodic work, from its peer id (spread evenly over
/// nodes, stable across restarts).
fn phase_of(peer: &PeerId) -> f64 {
    let digest = blake3::hash(&peer.to_bytes());
    let mut head = [0u8; 8];
    head.copy_from_slice(&digest.as_bytes()[..8]);
    (u64::from_le_bytes(head) >> 11) as f64 / (1u64 << 53) as f64
}

/// libp2p's TCP transport sets SO_REUSEPORT, so a second node on a taken port would start
/// "successfully" and steal half the first one's connections. Refuse that up front.
fn ensure_port_free(addr: &Multiaddr) -> Result<(), StartError> {
    use libp2p::multiaddr::Protocol;
    let mut ip = None;
    let mut port = None;
    for p in addr.iter() {
        match p {
            Protocol::Ip4(a) => ip = Some(std::net::IpAddr::V4(a)),
            Protocol::Ip6(a) => ip = Some(std::net::IpAddr::V6(a)),
            Protocol::Tcp(p) => port = Some(p),
            _ => {}
        }
    }
    if let (Some(ip), Some(port)) = (ip, port)
        && port != 0
    {
        std::net::TcpListener::bind((ip, port)).map_err(|e| StartError::Listen {
            addr: addr.to_string(),
            reason: format!("{e} (is another node running on this port?)"),
        })?;
    }
    Ok(())
}

/// What a node reads from its store at start: manifest envelopes and agent records.
type Loaded = (Vec<Vec<u8>>, Vec<(String, Vec<u8>)>);

/// Starts a node on the current tokio runtime. `store` is opened by the caller.
pub async fn start(
    key: Keypair,
    store: Arc<Store>,
    opts: NodeOptions,
) -> Result<(NodeHandle, JoinHandle<()>), StartError> {
    let seed = key.seed();
    let mut seed_copy = *seed;
    let p2p_key = libp2p::identity::Keypair::ed25519_from_bytes(&mut seed_copy)
        .map_err(|e| StartError::Swarm(e.to_string()))?;
    let peer_id = p2p_key.public().to_peer_id();
    let mut settings = opts.swarm.clone();
    settings.light = opts.light;
    let mut swarm = swarm::build(p2p_key, &settings).map_err(StartError::Swarm)?;
    for addr in &opts.listen {
        ensure_port_free(addr)?;
        swarm
            .listen_on(addr.clone())
            .map_err(|e| StartError::Listen {
                addr: addr.to_string(),
                reason: e.to_string(),
            })?;
    }
    for addr in &opts.bootstrap {
        if let Err(e) = swarm.dial(addr.clone()) {
            tracing::warn!("cannot dial bootstrap peer {addr}: {e}");
        }
    }

    let metrics = Arc::new(Metrics::default());
    let (store_tx, store_thread) = storage::spawn(store.clone(), metrics.clone())
        .map_err(|e| StartError::Store(format!("cannot start the storage thread: {e}")))?;
    let (tx, rx) = mpsc::channel(256);

    let now = now_ms();
    let mut catalog = Catalog::new();
    let mut records = Vec::new();
    {
        let store = store.clone();
        let loaded = tokio::task::spawn_blocking(move || -> Result<Loaded, String> {
            Ok((
                store.all_manifests().map_err(|e| e.to_string())?,
                store.list_agents().map_err(|e| e.to_string())?,
            ))
        })
        .await
        .map_err(|e| StartError::Store(e.to_string()))?
        .map_err(StartError::Store)?;
        if !opts.light {
            for bytes in loaded.0 {
                // Stored manifests were verified on the way in; freshness is re-checked.
                match verify_envelope(&bytes, now) {
                    Ok(m) => {
                        catalog.insert_verified(m);
                    }
                    Err(e) => tracing::debug!("dropping stored manifest: {e}"),
                }
            }
        }
        for (name, raw) in loaded.1 {
            match serde_json::from_slice::<AgentRecord>(&raw) {
                Ok(r) => records.push(r),
                Err(e) => {
                    tracing::error!(
                        "stored record of agent {name:?} is unreadable, skipping it: {e}"
                    )
                }
            }
        }
    }
    let key = Arc::new(key);
    let node_id = key.id();
    let (events, _) = tokio::sync::broadcast::channel(1024);
    let offers: Offers = Arc::new(Mutex::new(HashMap::new()));
    let caller = Caller { tx: tx.clone() };
    let (manager, manager_rx, hires) = HireManager::new(
        store.clone(),
        key.clone(),
        opts.work_dir.clone(),
        caller,
        offers.clone(),
    );
    let manager_tx = manager.sender();
    let manager_task = tokio::spawn(manager.run(manager_rx));
    let publisher = Publisher::new(records, opts.manifest_ttl_ms, opts.sealing_public);
    let node = Node {
        key,
        light: opts.light,
        swarm,
        store_tx,
        store_thread: Some(store_thread),
        self_tx: tx.clone(),
        manager_tx,
        metrics: metrics.clone(),
        catalog,
        publisher,
        offers,
        seen: HashMap::new(),
        scores: PeerScores::default(),
        topic: gossipsub::IdentTopic::new(MANIFEST_TOPIC),
        listen_addrs: Vec::new(),
        full_peers: HashMap::new(),
        synced: HashMap::new(),
        store_batch: Vec::new(),
        sync_starts: std::collections::VecDeque::new(),
        pending_publish: Vec::new(),
        searches: HashMap::new(),
        search_of: HashMap::new(),
        next_search: 0,
        calls: HashMap::new(),
        kad_bootstrapped: false,
        peers: PeerManager::new(
            settings.target_peers,
            // Full nodes dial up to the target when under half of it: a node that others
            // pruned must not sit at a handful of peers (its publications would take an
            // extra hop). Light nodes only need a couple of full peers.
            if opts.light {
                2
            } else {
                settings.mesh_n.max(settings.target_peers / 2)
            },
            settings.prune_grace,
        ),
        bootstrap: opts.bootstrap.clone(),
        request_timeout: settings.request_timeout,
        events: events.clone(),
    };
    let task = tokio::spawn(node.run(rx, opts.tick));
    Ok((
        NodeHandle {
            tx,
            metrics,
            node_id,
            peer_id,
            hires,
            events,
            store: Arc::downgrade(&store),
            manager_task: Arc::new(Mutex::new(Some(manager_task))),
        },
        task,
    ))
}

impl Node {
    async fn run(mut self, mut rx: mpsc::Receiver<Command>, tick: Duration) {
        // Re-announce every agent at start: their last manifests may have expired meanwhile.
        let names: Vec<String> = self
            .publisher
            .agents()
            .map(|r| r.spec.name.clone())
            .collect();
        for name in names {
            self.reannounce(&name);
        }
        // Periodic work starts at a per-node offset within its period, so nodes started
        // together (a testnet, a data centre after a power cut) do not all sync their stores
        // and sweep at the same instant.
        let phase = phase_of(self.swarm.local_peer_id());
        let start = tokio::time::Instant::now();
        let mut ticker = tokio::time::interval_at(start + tick.mul_f64(phase), tick);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut search_timer = tokio::time::interval(Duration::from_millis(250));
        let mut peer_timer =
            tokio::time::interval_at(start + PEER_CHECK.mul_f64(phase), PEER_CHECK);
        peer_timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
                cmd = rx.recv() => match cmd {
                    Some(Command::Shutdown(reply)) => {
                        self.stop().await;
                        let _ = reply.send(());
                        return;
                    }
                    Some(cmd) => self.on_command(cmd),
                    None => {
                        self.stop().await;
                        return;
                    }
                },
                _ = ticker.tick() => self.housekeeping(),
                _ = peer_timer.tick() => {
                    self.maintain_peers();
                    self.write_store_batch();
                    self.store_op(StoreOp::Checkpoint);
                }
                _ = search_timer.tick(), if !self.searches.is_empty() => self.expire_searches(),
            }
        }
    }

    /// Flushes the store and waits for the storage worker to end, so the database file is
    /// closed (and can be reopened) when shutdown returns.
    async fn stop(&mut self) {
        let batch = std::mem::take(&mut self.store_batch);
        if !batch.is_empty() {
            let _ = self.store_tx.send(StoreOp::WriteManifests(batch)).await;
        }
        let (tx, rx) = oneshot::channel();
        if self.store_tx.send(StoreOp::Flush(tx)).await.is_ok() {
            match rx.await {
                Ok(Ok(())) => tracing::info!("store flushed"),
                Ok(Err(e)) => tracing::error!("store flush failed: {e}"),
                Err(_) => tracing::error!("storage worker stopped before the flush"),
            }
        }
        // Close the queue: the worker ends once it has drained it and dropped its store.
        let (closed, _) = mpsc::channel(1);
        drop(std::mem::replace(&mut self.store_tx, closed));
        if let Some(thread) = self.store_thread.take() {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }

    /// Keeps an admitted manifest: queues it for the next store batch and tells observers.
    /// (It is in the catalog already: searchable and served by sync from now on.)
    fn keep(&mut self, manifest: Box<Signed<Manifest>>, replaced: Option<Hash>, via: Via) {
        if let Some(old) = replaced {
            self.store_batch.push(ManifestWrite::Remove(old));
        }
        let _ = self.events.send(NodeEvent::ManifestAdmitted {
            id: manifest.id(),
            via,
        });
        self.store_batch.push(ManifestWrite::Put(manifest));
        if self.store_batch.len() >= STORE_BATCH {
            self.write_store_batch();
        }
    }

    /// Hands the queued manifest writes to the storage worker as one batch.
    fn write_store_batch(&mut self) {
        if !self.store_batch.is_empty() {
            let batch = std::mem::take(&mut self.store_batch);
            self.store_op(StoreOp::WriteManifests(batch));
        }
    }

    fn store_op(&self, op: StoreOp) {
        match self.store_tx.try_send(op) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(op)) => match op {
                // Manifests can be fetched again; never stall the loop for them.
                StoreOp::WriteManifests(_) | StoreOp::RemoveExpired(_) | StoreOp::Checkpoint => {
                    self.metrics.store_dropped.inc();
                }
                other => {
                    let tx = self.store_tx.clone();
                    tokio::spawn(async move {
                        let _ = tx.send(other).await;
                    });
                }
            },
            Err(mpsc::error::TrySendError::Closed(_)) => self.metrics.store_errors.inc(),
        }
    }

    fn penalize(&mut self, peer: PeerId, why: &str) {
        tracing::debug!(%peer, "invalid input: {why}");
        if self.scores.penalize(peer, now_ms()) == Verdict::Banned {
            tracing::warn!(%peer, "banning peer after repeated invalid input ({why})");
            self.metrics.peers_banned.inc();
            self.swarm.behaviour_mut().blocked.block_peer(peer);
        }
    }

    fn housekeeping(&mut self) {
        let now = now_ms();
        for _ in self.catalog.sweep(now) {
            self.metrics.expired.inc();
        }
        // The store may hold expired manifests the catalog never loaded: sweep it too.
        self.store_op(StoreOp::RemoveExpired(now));
        if let Ok(mut offers) = self.offers.lock() {
            offers.retain(|_, o| o.manifest.body().expires_at > now);
        }
        for peer in self.scores.expire_bans(now) {
            self.swarm.behaviour_mut().blocked.unblock_peer(peer);
        }
        for name in self.publisher.due(now) {
            self.reannounce(&name);
        }
        self.flush_pending_publish();
    }

    fn reannounce(&mut self, name: &str) {
        match self.publisher.reannounce(name, &self.key, now_ms()) {
            Ok((manifest, record)) => self.persist_and_announce(manifest, record, None),
            Err(e) => tracing::error!("cannot re-announce {name}: {e}"),
        }
    }

    fn persist_seq(&self, name: &str) {
        let seq = self.publisher.highest_seq(name);
        self.store_op(StoreOp::PutState {
            key: seq_state_key(name),
            value: seq.to_be_bytes().to_vec(),
        });
    }

    /// Persists the agent record, then (in `Committed`) indexes and gossips the manifest.
    fn persist_and_announce(
        &mut self,
        manifest: Signed<Manifest>,
        record: AgentRecord,
        reply: Option<Reply<Result<Published, String>>>,
    ) {
        let raw = match serde_json::to_vec(&record) {
            Ok(r) => r,
            Err(e) => {
                if let Some(reply) = reply {
                    let _ = reply.send(Err(e.to_string()));
                }
                return;
            }
        };
        self.persist_seq(&record.spec.name);
        let (done_tx, done_rx) = oneshot::channel();
        self.store_op(StoreOp::PutAgent {
            name: record.spec.name.clone(),
            record: raw,
            done: done_tx,
        });
        let tx = self.self_tx.clone();
        tokio::spawn(async move {
            let durable = done_rx
                .await
                .unwrap_or_else(|_| Err("storage worker stopped".into()));
            let _ = tx
                .send(Command::Committed {
                    manifest: Box::new(manifest),
                    record: Box::new(record),
                    reply,
                    durable,
                })
                .await;
        });
    }

    fn announce(&mut self, manifest: Signed<Manifest>, run: Option<crate::agent_file::RunSpec>) {
        let bytes = manifest.to_bytes();
        if let (Some(run), Ok(mut offers)) = (run, self.offers.lock()) {
            offers.insert(
                manifest.id(),
                Offerable {
                    manifest: manifest.clone(),
                    run,
                },
            );
        }
        if self.light {
            self.remember(&manifest);
        } else if let Admission::Accepted { manifest, replaced } =
            self.catalog.insert_verified(manifest)
        {
            self.keep(manifest, replaced, Via::Local);
        }
        self.metrics.published.inc();
        self.gossip(bytes);
    }

    fn remember(&mut self, m: &Signed<Manifest>) {
        if self.seen.len() >= MAX_SEEN {
            self.seen.clear();
        }
        self.seen.insert(m.id(), m.clone());
    }

    fn gossip(&mut self, bytes: Vec<u8>) {
        let topic = self.topic.clone();
        match self
            .swarm
            .behaviour_mut()
            .gossipsub
            .publish(topic, bytes.clone())
        {
            Ok(_) | Err(gossipsub::PublishError::Duplicate) => {}
            Err(e) => {
                tracing::debug!("gossip deferred: {e}");
                self.pending_publish.push(bytes);
            }
        }
    }

    fn flush_pending_publish(&mut self) {
        let pending = std::mem::take(&mut self.pending_publish);
        for bytes in pending {
            self.gossip(bytes);
        }
    }

    fn on_command(&mut self, cmd: Command) {
        match cmd {
            Command::Info(reply) => {
                let _ = reply.send(self.info());
            }
            Command::Publish(spec, floor, reply) => {
                match self.publisher.publish(*spec, &self.key, now_ms(), floor) {
                    Ok((manifest, record)) => {
                        self.persist_and_announce(manifest, record, Some(reply))
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e.to_string()));
                    }
                }
            }
            Command::Committed {
                manifest,
                record,
                reply,
                durable,
            } => self.on_committed(*manifest, *record, reply, durable),
            Command::Retire(name, reply) => {
                let result = self
                    .publisher
                    .retire(&name, &self.key, now_ms())
                    .map_err(|e| e.to_string());
                match result {
                    Ok(manifest) => {
                        let id = manifest.id().to_hex();
                        self.persist_seq(&name);
                        let (done, _) = oneshot::channel();
                        self.store_op(StoreOp::RemoveAgent { name, done });
                        self.announce(manifest, None);
                        let _ = reply.send(Ok(id));
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e));
                    }
                }
            }
            Command::Agents(reply) => {
                let _ = reply.send(self.publisher.agents().cloned().collect());
            }
            Command::Search(req, reply) => self.search(req, reply),
            Command::Manifest(id, reply) => {
                let m = self.catalog.get(&id).or_else(|| self.seen.get(&id));
                let _ = reply.send(m.map(|m| m.to_bytes()));
            }
            Command::LookupManifest(id, reply) => {
                let m = self
                    .catalog
                    .get(&id)
                    .or_else(|| self.seen.get(&id))
                    .cloned();
                let m = m.or_else(|| {
                    self.offers
                        .lock()
                        .ok()
                        .and_then(|o| o.get(&id).map(|o| o.manifest.clone()))
                });
                let _ = reply.send(m);
            }
            Command::Dial(addr, reply) => {
                let _ = reply.send(self.swarm.dial(addr).map_err(|e| e.to_string()));
            }
            Command::GossipRaw(bytes, reply) => {
                let topic = self.topic.clone();
                let r = self
                    .swarm
                    .behaviour_mut()
                    .gossipsub
                    .publish(topic, bytes)
                    .map(|_| ())
                    .map_err(|e| e.to_string());
                let _ = reply.send(r);
            }
            Command::HireCall { peer, call, reply } => {
                let id = self.swarm.behaviour_mut().hire.send_request(&peer, *call);
                self.calls.insert(id, reply);
            }
            Command::HireRespond { channel, reply } => {
                if self
                    .swarm
                    .behaviour_mut()
                    .hire
                    .send_response(channel, *reply)
                    .is_err()
                {
                    tracing::debug!("a hire caller went away before its reply");
                }
            }
            Command::Shutdown(reply) => {
                let _ = reply.send(());
            }
        }
    }

    fn on_committed(
        &mut self,
        manifest: Signed<Manifest>,
        record: AgentRecord,
        reply: Option<Reply<Result<Published, String>>>,
        durable: Result<(), String>,
    ) {
        if let Err(e) = durable {
            tracing::error!("agent record not stored: {e}");
            if let Some(reply) = reply {
                let _ = reply.send(Err(format!("could not store the agent record: {e}")));
            }
            return;
        }
        let published = Published {
            name: record.spec.name.clone(),
            manifest_id: record.manifest_id.clone(),
            seq: record.seq,
            expires_at: record.expires_at,
        };
        let run = record.spec.run.clone();
        let name = record.spec.name.clone();
        if self.publisher.commit(record) {
            self.announce(manifest, Some(run));
        } else {
            // Retired while this announcement was being stored: undo the store write.
            let (done, _) = oneshot::channel();
            self.store_op(StoreOp::RemoveAgent { name, done });
        }
        if let Some(reply) = reply {
            let _ = reply.send(Ok(published));
        }
    }

    fn info(&self) -> NodeInfo {
        NodeInfo {
            node_id: self.key.id().to_string(),
            peer_id: self.swarm.local_peer_id().to_string(),
            mode: if self.light { "light" } else { "full" }.into(),
            listen_addrs: self.listen_addrs.iter().map(|a| a.to_string()).collect(),
            peers: self
                .swarm
                .connected_peers()
                .map(|p| p.to_string())
                .collect(),
            manifests: self.catalog.len(),
            agents: self.publisher.agents().count(),
            metrics: self.metrics.snapshot(),
        }
    }

    fn search(&mut self, mut req: SearchRequest, reply: Reply<Result<Vec<SearchHit>, String>>) {
        req.limit = req.limit.clamp(1, MAX_SEARCH_RESULTS);
        if !self.light {
            let hits = self
                .catalog
                .search(&req, now_ms())
                .iter()
                .map(SearchHit::from_manifest)
                .collect();
            let _ = reply.send(Ok(hits));
            return;
        }
        // Light node: ask up to three connected full nodes, verify and rank their answers.
        let connected: HashSet<PeerId> = self.swarm.connected_peers().copied().collect();
        let mut peers: Vec<PeerId> = self
            .full_peers
            .keys()
            .filter(|p| connected.contains(p))
            .copied()
            .collect();
        if peers.is_empty() {
            peers = self.full_peers.keys().copied().collect();
        }
        peers.sort();
        peers.truncate(3);
        if peers.is_empty() {
            let _ = reply.send(Err(
                "no full node known yet: connect to the network first (souk node run --bootstrap ADDR)".into(),
            ));
            return;
        }
        let id = self.next_search;
        self.next_search += 1;
        let mut waiting = HashSet::new();
        for p in peers {
            let rid = self
                .swarm
                .behaviour_mut()
                .search
                .send_request(&p, req.clone());
            waiting.insert(rid);
            self.search_of.insert(rid, id);
        }
        self.searches.insert(
            id,
            PendingSearch {
                req,
                waiting,
                results: Vec::new(),
                reply,
                deadline: tokio::time::Instant::now() + self.request_timeout,
            },
        );
    }

    fn finish_search(&mut self, id: u64) {
        let Some(p) = self.searches.remove(&id) else {
            return;
        };
        for rid in &p.waiting {
            self.search_of.remove(rid);
        }
        // Rank the merged, verified answers with the same index a full node uses.
        let mut index = Index::new();
        for m in &p.results {
            index.insert(m);
            self.remember(m);
        }
        let query = Query {
            text: (!p.req.text.trim().is_empty()).then(|| p.req.text.clone()),
            capabilities: p.req.capabilities.clone(),
            max_price: p.req.max_price,
            currency: p.req.currency.clone(),
            provider: None,
            limit: p.req.limit as usize,
        };
        let hits = index
            .search(&query, now_ms())
            .iter()
            .map(|h| SearchHit::from_manifest(&h.manifest))
            .collect();
        let _ = p.reply.send(Ok(hits));
    }

    fn expire_searches(&mut self) {
        let now = tokio::time::Instant::now();
        let late: Vec<u64> = self
            .searches
            .iter()
            .filter(|(_, s)| s.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in late {
            self.finish_search(id);
        }
    }

    fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::NewListenAddr { address, .. } => {
                tracing::info!("listening on {address}/p2p/{}", self.swarm.local_peer_id());
                self.listen_addrs.push(address);
            }
            SwarmEvent::ConnectionEstablished {
                peer_id, endpoint, ..
            } => {
                tracing::debug!(%peer_id, "connected ({})", endpoint.get_remote_address());
                self.peers.connected(peer_id, Instant::now());
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                ..
            } => {
                tracing::debug!(%peer_id, "disconnected");
                self.peers.disconnected(&peer_id);
                // Sync again after a reconnection: the peer may have learned more meanwhile.
                self.synced.remove(&peer_id);
            }
            SwarmEvent::Behaviour(ev) => self.on_behaviour_event(ev),
            _ => {}
        }
    }

    fn on_behaviour_event(&mut self, ev: BehaviourEvent) {
        match ev {
            BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            }) => self.on_gossip(propagation_source, message_id, &message.data),
            BehaviourEvent::Gossipsub(gossipsub::Event::Subscribed { .. }) => {
                self.flush_pending_publish()
            }
            BehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. }) => {
                self.on_identify(peer_id, info)
            }
            BehaviourEvent::Sync(ev) => {
                self.touch(&ev);
                self.on_sync(ev)
            }
            BehaviourEvent::Search(ev) => {
                self.touch(&ev);
                self.on_search(ev)
            }
            BehaviourEvent::Hire(ev) => {
                self.touch(&ev);
                self.on_hire(ev)
            }
            _ => {}
        }
    }

    fn on_gossip(&mut self, source: PeerId, id: gossipsub::MessageId, data: &[u8]) {
        self.metrics.gossip_received.inc();
        let acceptance = match self.catalog.admit(data, now_ms()) {
            Admission::Accepted { manifest, replaced } => {
                self.metrics.gossip_accepted.inc();
                self.keep(manifest, replaced, Via::Gossip);
                gossipsub::MessageAcceptance::Accept
            }
            Admission::Duplicate => {
                self.metrics.gossip_ignored.inc();
                gossipsub::MessageAcceptance::Ignore
            }
            Admission::Rejected(why) => {
                self.metrics.gossip_rejected.inc();
                self.penalize(source, &why.to_string());
                gossipsub::MessageAcceptance::Reject
            }
        };
        self.swarm
            .behaviour_mut()
            .gossipsub
            .report_message_validation_result(&id, &source, acceptance);
    }

    /// Whether a new sync session fits the budget ([`SYNC_SESSIONS`] per [`SYNC_WINDOW`]);
    /// counts it if so.
    fn may_start_sync(&mut self) -> bool {
        let now = Instant::now();
        while self
            .sync_starts
            .front()
            .is_some_and(|t| now.duration_since(*t) >= SYNC_WINDOW)
        {
            self.sync_starts.pop_front();
        }
        if self.sync_starts.len() >= SYNC_SESSIONS {
            return false;
        }
        self.sync_starts.push_back(now);
        true
    }

    /// Records application traffic with a peer, which protects it from pruning for a while.
    fn touch<Req, Resp>(&mut self, ev: &request_response::Event<Req, Resp>) {
        match ev {
            request_response::Event::Message { peer, .. }
            | request_response::Event::ResponseSent { peer, .. } => {
                self.peers.touch(peer, Instant::now())
            }
            _ => {}
        }
    }

    /// Disconnects surplus peers and dials more when short (see [`crate::connections`]).
    fn maintain_peers(&mut self) {
        let now = Instant::now();
        let topic = self.topic.hash();
        let mesh: HashSet<PeerId> = self
            .swarm
            .behaviour()
            .gossipsub
            .mesh_peers(&topic)
            .copied()
            .collect();
        for peer in self.peers.surplus(now, |p| mesh.contains(p)) {
            tracing::debug!(%peer, "pruning a surplus peer");
            self.metrics.peers_pruned.inc();
            let _ = self.swarm.disconnect_peer_id(peer);
        }
        let mut wanted = self.peers.wanted();
        if wanted == 0 {
            return;
        }
        use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
        // Peers from the routing table first, then the configured bootstrap addresses.
        let mut candidates: Vec<(PeerId, Vec<Multiaddr>)> = Vec::new();
        for bucket in self.swarm.behaviour_mut().kad.kbuckets() {
            for entry in bucket.iter() {
                let peer = *entry.node.key.preimage();
                candidates.push((peer, entry.node.value.iter().cloned().collect()));
            }
        }
        for (peer, addrs) in candidates {
            if wanted == 0 {
                return;
            }
            if self.swarm.is_connected(&peer) || addrs.is_empty() {
                continue;
            }
            let opts = DialOpts::peer_id(peer)
                .addresses(addrs)
                .condition(PeerCondition::DisconnectedAndNotDialing)
                .build();
            if self.swarm.dial(opts).is_ok() {
                wanted -= 1;
            }
        }
        for addr in self.bootstrap.clone() {
            if wanted == 0 {
                return;
            }
            let known = addr.iter().find_map(|p| match p {
                libp2p::multiaddr::Protocol::P2p(id) => Some(id),
                _ => None,
            });
            let dialed = match known {
                Some(id) if self.swarm.is_connected(&id) => continue,
                Some(id) => self.swarm.dial(
                    DialOpts::peer_id(id)
                        .addresses(vec![addr])
                        .condition(PeerCondition::DisconnectedAndNotDialing)
                        .build(),
                ),
                None => self.swarm.dial(addr),
            };
            if dialed.is_ok() {
                wanted -= 1;
            }
        }
    }

    fn on_identify(&mut self, peer: PeerId, info: identify::Info) {
        let speaks = |p: &str| info.protocols.iter().any(|x| x.as_ref() == p);
        if !(speaks(SEARCH_PROTOCOL) && speaks(SYNC_PROTOCOL)) {
            self.peers.mark_light(&peer);
        }
        if speaks(KAD_PROTOCOL.as_ref()) {
            for addr in &info.listen_addrs {
                self.swarm
                    .behaviour_mut()
                    .kad
                    .add_address(&peer, addr.clone());
            }
            if !self.kad_bootstrapped {
                self.kad_bootstrapped = self.swarm.behaviour_mut().kad.bootstrap().is_ok();
            }
        }
        for addr in &info.listen_addrs {
            self.swarm.add_peer_address(peer, addr.clone());
        }
        if speaks(SEARCH_PROTOCOL) && speaks(SYNC_PROTOCOL) {
            self.full_peers.insert(peer, info.listen_addrs.clone());
            if !self.light && !self.synced.contains_key(&peer) && self.may_start_sync() {
                self.synced.insert(peer, 1);
                self.swarm.behaviour_mut().sync.send_request(
                    &peer,
                    SyncRequest {
                        after: None,
                        limit: MAX_SYNC_PAGE,
                    },
                );
            }
        }
    }

    fn on_sync(&mut self, ev: request_response::Event<SyncRequest, SyncResponse>) {
        match ev {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => {
                    self.metrics.sync_served.inc();
                    let page = self.catalog.sync_page(&request);
                    let _ = self.swarm.behaviour_mut().sync.send_response(channel, page);
                }
                request_response::Message::Response { response, .. } => {
                    let now = now_ms();
                    let mut bad = 0;
                    let mut last = None;
                    for bytes in &response.manifests {
                        self.metrics.sync_received.inc();
                        match self.catalog.admit(bytes, now) {
                            Admission::Accepted { manifest, replaced } => {
                                last = Some(manifest.id());
                                self.keep(manifest, replaced, Via::Sync);
                            }
                            Admission::Duplicate => {}
                            // Stale or expired in transit is normal for sync; invalid is not.
                            Admission::Rejected(
                                Rejection::StaleSeq | Rejection::Expired | Rejection::NotYetValid,
                            ) => {}
                            Admission::Rejected(why) => {
                                bad += 1;
                                self.metrics.sync_rejected.inc();
                                tracing::debug!(%peer, "invalid manifest in sync: {why}");
                            }
                        }
                    }
                    if bad > 0 {
                        self.penalize(peer, "invalid manifests in a sync page");
                    }
                    let pages = self.synced.get(&peer).copied().unwrap_or(1);
                    if let Some(next) = response.next {
                        // The cursor must move forward, and a session is bounded.
                        let forward =
                            last.is_none_or(|l| next >= l) && !response.manifests.is_empty();
                        if forward && pages < MAX_SYNC_PAGES {
                            self.synced.insert(peer, pages + 1);
                            self.swarm.behaviour_mut().sync.send_request(
                                &peer,
                                SyncRequest {
                                    after: Some(next),
                                    limit: MAX_SYNC_PAGE,
                                },
                            );
                        } else if !forward {
                            self.penalize(peer, "a sync cursor that does not advance");
                        }
                    }
                }
            },
            request_response::Event::OutboundFailure { peer, error, .. } => {
                tracing::debug!(%peer, "sync request failed: {error}");
                // Try again on the next identify from this peer; the failed session does not
                // count against the budget.
                self.synced.remove(&peer);
                self.sync_starts.pop_back();
            }
            _ => {}
        }
    }

    fn on_search(&mut self, ev: request_response::Event<SearchRequest, SearchResponse>) {
        match ev {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => {
                    self.metrics.search_served.inc();
                    let manifests = self
                        .catalog
                        .search(&request, now_ms())
                        .iter()
                        .map(|m| m.to_bytes())
                        .collect();
                    let _ = self
                        .swarm
                        .behaviour_mut()
                        .search
                        .send_response(channel, SearchResponse { manifests });
                }
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    let Some(sid) = self.search_of.remove(&request_id) else {
                        return;
                    };
                    let now = now_ms();
                    let mut bad = 0;
                    if let Some(p) = self.searches.get_mut(&sid) {
                        p.waiting.remove(&request_id);
                        for bytes in &response.manifests {
                            match verify_envelope(bytes, now) {
                                Ok(m) => {
                                    if !p.results.iter().any(|r| r.id() == m.id()) {
                                        p.results.push(m);
                                    }
                                }
                                // Expired in transit or clock skew: drop it, no blame.
                                Err(Rejection::Expired | Rejection::NotYetValid) => {}
                                Err(_) => bad += 1,
                            }
                        }
                    }
                    if bad > 0 {
                        for _ in 0..bad {
                            self.metrics.sync_rejected.inc();
                        }
                        self.penalize(peer, "invalid manifest in a search response");
                    }
                    if self
                        .searches
                        .get(&sid)
                        .is_some_and(|p| p.waiting.is_empty())
                    {
                        self.finish_search(sid);
                    }
                }
            },
            request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                tracing::debug!(%peer, "search request failed: {error}");
                let sid = self.search_of.remove(&request_id);
                if let Some((sid, p)) =
                    sid.and_then(|sid| self.searches.get_mut(&sid).map(|p| (sid, p)))
                {
                    p.waiting.remove(&request_id);
                    if p.waiting.is_empty() {
                        self.finish_search(sid);
                    }
                }
            }
            _ => {}
        }
    }

    fn on_hire(&mut self, ev: request_response::Event<HireCall, HireReply>) {
        match ev {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => {
                    let msg = HireMsg::Inbound {
                        peer,
                        call: request,
                        channel,
                    };
                    if let Err(e) = self.manager_tx.try_send(msg) {
                        let channel = match e {
                            mpsc::error::TrySendError::Full(HireMsg::Inbound {
                                channel, ..
                            })
                            | mpsc::error::TrySendError::Closed(HireMsg::Inbound {
                                channel, ..
                            }) => channel,
                            _ => return,
                        };
                        let busy = HireReply::Error {
                            code: CallError::Internal,
                            message: "the provider is busy; retry shortly".into(),
                        };
                        let _ = self.swarm.behaviour_mut().hire.send_response(channel, busy);
                    }
                }
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    if let Some(reply) = self.calls.remove(&request_id) {
                        let _ = reply.send(Ok(response));
                    }
                }
            },
            request_response::Event::OutboundFailure {
                request_id, error, ..
            } => {
                if let Some(reply) = self.calls.remove(&request_id) {
                    let _ = reply.send(Err(error.to_string()));
                }
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                tracing::debug!(%peer, "inbound hire call failed: {error}");
            }
            _ => {}
        }
    }
}
