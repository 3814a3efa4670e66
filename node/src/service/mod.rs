//! The running node: one task that owns the libp2p swarm, the catalog and the publisher, and
//! reacts to swarm events, commands, and timers; beside it the [`HireActor`] task owns every
//! hire.
//!
//! Nothing in the loop waits on the network or the disk: writes go to the storage worker
//! ([`crate::storage`]) through an ordered queue, replies of other tasks come back as pending
//! futures the loop polls. Inbound manifests pass through [`crate::discovery::Catalog::admit`]
//! before gossipsub may forward them; invalid ones are rejected, counted and charged to the
//! sender ([`crate::peer_score`]).
//!
//! Files: [`handle`] ([`NodeHandle`], the typed front door used by the API and tests),
//! [`events`], `publish` (own agents, gossip, store queue), `sync` (gossip and sync intake),
//! [`search`], `peers` (penalties, pruning, dialing), [`calls`] (hire calls in and out).

pub mod calls;
pub mod events;
pub mod handle;
mod peers;
mod publish;
pub mod search;
mod sync;

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use libp2p::request_response::{OutboundRequestId, ResponseChannel};
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, PeerId, gossipsub, identify};
use souk_protocol::Hash;
use souk_protocol::credential::RelayReply;
use souk_protocol::discovery::MANIFEST_TOPIC;
use souk_protocol::hiring::HireReply;
use souk_protocol::identity::Keypair;
use souk_protocol::manifest::Manifest;
use souk_protocol::signed::Signed;
use souk_store::{ManifestWrite, Store};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

pub use calls::Caller;
pub use events::{NodeEvent, Via};
pub use handle::{NodeError, NodeHandle, NodeInfo, Published};
pub use search::SearchHit;

use self::handle::{Command, Reply};
use self::search::PendingSearch;
use crate::connections::PeerManager;
use crate::discovery::{Catalog, verify_envelope};
use crate::hire::transport::BoxFuture;
use crate::hire::{HireActor, InboundSender, Offers, TransportError};
use crate::metrics::Metrics;
use crate::now_ms;
use crate::peer_score::PeerScores;
use crate::publisher::{AgentRecord, Publisher};
use crate::storage::{self, StoreOp};
use crate::swarm::{self, Behaviour, BehaviourEvent, SwarmSettings};

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
    /// The X25519 sealing secret: its public key is published in manifests; it opens the
    /// credentials clients seal to this node.
    pub sealing_secret: Arc<zeroize::Zeroizing<[u8; 32]>>,
    /// Where hires' working directories go (`<dir>/<hire id>`; outside any directory that
    /// holds keys).
    pub work_dir: PathBuf,
    /// How hired agents run: sandbox, limits, egress.
    pub hires: crate::hire::HireSettings,
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
            sealing_secret: Arc::new(zeroize::Zeroizing::new([0; 32])),
            work_dir: std::env::temp_dir().join("souk-hires"),
            hires: crate::hire::HireSettings::default(),
        }
    }
}

/// Starting a node failed.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The swarm could not be built.
    #[error("cannot build the libp2p swarm: {0}")]
    Swarm(#[from] swarm::SwarmError),
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
    Store(#[from] souk_store::StoreError),
    /// A thread or task the node needs could not be started.
    #[error("cannot start the node: {0}")]
    Runtime(String),
}

/// Work of other tasks the loop waits for without blocking: polled with the swarm.
enum Pending {
    /// The hire actor's reply to an inbound call (`None`: it dropped the call).
    HireReply {
        channel: ResponseChannel<HireReply>,
        reply: Option<HireReply>,
    },
    /// The hire actor's answer to an inbound relay request.
    RelayReply {
        channel: ResponseChannel<RelayReply>,
        reply: Option<RelayReply>,
    },
    /// An agent record reached the store (or not): announce it now.
    Committed {
        manifest: Box<Signed<Manifest>>,
        record: Box<AgentRecord>,
        reply: Option<Reply<Result<Published, NodeError>>>,
        durable: Result<(), NodeError>,
    },
}

struct Node {
    key: Arc<Keypair>,
    light: bool,
    swarm: libp2p::Swarm<Behaviour>,
    store_tx: mpsc::Sender<StoreOp>,
    /// Operations waiting for room in the storage worker's queue, in order.
    store_backlog: VecDeque<StoreOp>,
    store_thread: Option<std::thread::JoinHandle<()>>,
    hire_inbound: InboundSender,
    pending: FuturesUnordered<BoxFuture<Pending>>,
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
    sync_starts: VecDeque<Instant>,
    pending_publish: Vec<Vec<u8>>,
    searches: HashMap<u64, PendingSearch>,
    search_of: HashMap<OutboundRequestId, u64>,
    next_search: u64,
    calls: HashMap<OutboundRequestId, Reply<Result<HireReply, TransportError>>>,
    relay_calls: HashMap<OutboundRequestId, Reply<Result<RelayReply, TransportError>>>,
    kad_bootstrapped: bool,
    peers: PeerManager,
    bootstrap: Vec<Multiaddr>,
    request_timeout: Duration,
    events: tokio::sync::broadcast::Sender<NodeEvent>,
    /// How hired agents are confined, for `node info`.
    sandbox: String,
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
        .map_err(|e| StartError::Runtime(format!("node key: {e}")))?;
    let peer_id = p2p_key.public().to_peer_id();
    let mut settings = opts.swarm.clone();
    settings.light = opts.light;
    let mut swarm = swarm::build(p2p_key, &settings)?;
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
        .map_err(|e| StartError::Runtime(format!("the storage thread: {e}")))?;
    let (tx, rx) = mpsc::channel(256);

    let now = now_ms();
    let mut catalog = Catalog::new();
    let mut records = Vec::new();
    {
        let store = store.clone();
        let loaded = tokio::task::spawn_blocking(move || -> Result<Loaded, StartError> {
            Ok((store.all_manifests()?, store.list_agents()?))
        })
        .await
        .map_err(|e| StartError::Runtime(e.to_string()))??;
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
    let (actor, hires, hire_inbound) = HireActor::new(
        store.clone(),
        key.clone(),
        opts.work_dir.clone(),
        Arc::new(caller),
        offers.clone(),
        opts.sealing_secret.clone(),
        Arc::new(opts.hires.clone()),
    );
    let hire_task = tokio::spawn(actor.run());
    let sealing_public = souk_protocol::credential::sealing_public_key(&opts.sealing_secret);
    let confinement = crate::publisher::Confinement {
        ceilings: opts.hires.ceilings,
        isolation: if opts.hires.sandbox.as_ref().is_some_and(|s| s.is_isolated()) {
            souk_protocol::manifest::Isolation::Sandbox
        } else {
            souk_protocol::manifest::Isolation::None
        },
    };
    let publisher = Publisher::new(records, opts.manifest_ttl_ms, sealing_public, confinement);
    let node = Node {
        key,
        light: opts.light,
        swarm,
        store_tx,
        store_thread: Some(store_thread),
        hire_inbound,
        pending: FuturesUnordered::new(),
        store_backlog: VecDeque::new(),
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
        sync_starts: VecDeque::new(),
        pending_publish: Vec::new(),
        searches: HashMap::new(),
        search_of: HashMap::new(),
        next_search: 0,
        calls: HashMap::new(),
        relay_calls: HashMap::new(),
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
        sandbox: opts
            .hires
            .sandbox
            .as_ref()
            .map_or_else(|| "none".to_owned(), |s| s.summary()),
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
            hire_task: Arc::new(Mutex::new(Some(hire_task))),
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
                Some(done) = self.pending.next(), if !self.pending.is_empty() => self.on_pending(done),
                permit = self.store_tx.clone().reserve_owned(), if !self.store_backlog.is_empty() => {
                    if let (Ok(permit), Some(op)) = (permit, self.store_backlog.pop_front()) {
                        permit.send(op);
                    }
                }
            }
        }
    }

    /// Flushes the store and waits for the storage worker to end, so the database file is
    /// closed (and can be reopened) when shutdown returns.
    async fn stop(&mut self) {
        let batch = std::mem::take(&mut self.store_batch);
        let mut ops: Vec<StoreOp> = self.store_backlog.drain(..).collect();
        if !batch.is_empty() {
            ops.push(StoreOp::WriteManifests(batch));
        }
        for op in ops {
            let _ = self.store_tx.send(op).await;
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

    fn housekeeping(&mut self) {
        let now = now_ms();
        for _ in self.catalog.sweep(now) {
            self.metrics.expired.inc();
        }
        // The store may hold expired manifests the catalog never loaded: sweep it too.
        self.store_op(StoreOp::RemoveExpired(now));
        match self.offers.lock() {
            Ok(mut offers) => offers.retain(|_, o| o.manifest.body().expires_at > now),
            Err(poisoned) => poisoned
                .into_inner()
                .retain(|_, o| o.manifest.body().expires_at > now),
        }
        for peer in self.scores.expire_bans(now) {
            self.swarm.behaviour_mut().blocked.unblock_peer(peer);
        }
        for name in self.publisher.due(now) {
            self.reannounce(&name);
        }
        self.flush_pending_publish();
    }

    fn on_command(&mut self, cmd: Command) {
        match cmd {
            Command::Info(reply) => {
                let _ = reply.send(self.info());
            }
            Command::Publish(spec, floor, reply) => self.publish(*spec, floor, reply),
            Command::Retire(name, reply) => self.retire(name, reply),
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
                let m = m.or_else(|| crate::hire::offer(&self.offers, &id).map(|o| o.manifest));
                let _ = reply.send(m);
            }
            Command::Dial(addr, reply) => {
                let r = self.swarm.dial(addr.clone()).map_err(|e| NodeError::Dial {
                    addr,
                    reason: e.to_string(),
                });
                let _ = reply.send(r);
            }
            Command::GossipRaw(bytes, reply) => {
                let topic = self.topic.clone();
                let r = self
                    .swarm
                    .behaviour_mut()
                    .gossipsub
                    .publish(topic, bytes)
                    .map(|_| ())
                    .map_err(|e| NodeError::Gossip(e.to_string()));
                let _ = reply.send(r);
            }
            Command::HireCall { peer, call, reply } => {
                let id = self.swarm.behaviour_mut().hire.send_request(&peer, *call);
                self.calls.insert(id, reply);
            }
            Command::RelayCall {
                peer,
                request,
                reply,
            } => {
                let id = self
                    .swarm
                    .behaviour_mut()
                    .relay
                    .send_request(&peer, *request);
                self.relay_calls.insert(id, reply);
            }
            Command::Shutdown(reply) => {
                let _ = reply.send(());
            }
        }
    }

    fn on_pending(&mut self, done: Pending) {
        match done {
            Pending::HireReply { channel, reply } => self.respond(channel, reply),
            Pending::RelayReply { channel, reply } => self.respond_relay(channel, reply),
            Pending::Committed {
                manifest,
                record,
                reply,
                durable,
            } => self.on_committed(*manifest, *record, reply, durable),
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
            sandbox: self.sandbox.clone(),
            metrics: self.metrics.snapshot(),
        }
    }

    fn remember(&mut self, m: &Signed<Manifest>) {
        if self.seen.len() >= MAX_SEEN {
            self.seen.clear();
        }
        self.seen.insert(m.id(), m.clone());
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
            BehaviourEvent::Relay(ev) => {
                self.touch(&ev);
                self.on_relay(ev)
            }
            _ => {}
        }
    }
}
