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
//! `outcomes` (outcome records and equivocation proofs: gossip, sync, fetch, publication),
//! [`search`], `peers` (penalties, pruning, dialing), [`calls`] (hire calls in and out),
//! `start` ([`start`], [`NodeOptions`]: building the node).

pub mod calls;
pub mod events;
pub mod handle;
mod outcomes;
mod peers;
mod publish;
mod ranked;
mod ranking;
mod route;
pub mod search;
mod start;
mod sync;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use libp2p::request_response::{OutboundRequestId, ResponseChannel};
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, PeerId, gossipsub, identify};
use souk_protocol::Hash;
use souk_protocol::credential::RelayReply;
use souk_protocol::hiring::HireReply;
use souk_protocol::identity::Keypair;
use souk_protocol::manifest::Manifest;
use souk_protocol::signed::Signed;
use souk_store::{ManifestWrite, OutboxKind, ReputationWrite};
use tokio::sync::{mpsc, oneshot};

use crate::swarm::phase_of;
pub use calls::Caller;
pub use events::{EventSender, NodeEvent, Stamped, Via};
pub use handle::{NodeError, NodeHandle, NodeInfo, Published};
pub use search::{HitReputation, SearchHit};
pub use start::{NodeOptions, StartError, start};

use self::handle::{Command, Reply};
use self::search::PendingSearch;
use crate::connections::PeerManager;
use crate::discovery::Catalog;
use crate::hire::transport::BoxFuture;
use crate::hire::{InboundSender, Offers, TransportError};
use crate::metrics::Metrics;
use crate::now_ms;
use crate::peer_score::PeerScores;
use crate::publisher::{AgentRecord, Publisher};
use crate::storage::StoreOp;
use crate::swarm::{Behaviour, BehaviourEvent};

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
/// The shortest real sweep period on a fast clock (a sweep touches the catalog and the
/// store; the configured period is at least 1 s, so this never shortens real time).
const MIN_TICK: Duration = Duration::from_millis(100);

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
    /// A record or proof this node publishes reached the store (or not): gossip it now.
    Outgoing {
        item: outcomes::Outgoing,
        reply: Reply<Result<(), NodeError>>,
        durable: Result<(), NodeError>,
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
    /// The hire actor's API handle (to end hires whose provider is flagged).
    hire_ops: crate::hire::HireOps,
    pending: FuturesUnordered<BoxFuture<Pending>>,
    metrics: Arc<Metrics>,
    catalog: Catalog,
    /// Outcome records, equivocation proofs and the reputation ledger.
    outcomes: crate::outcomes::Outcomes,
    /// Agents (provider, name) with new records since they were last ranked.
    unranked: std::collections::BTreeSet<(souk_protocol::NodeId, String)>,
    outcome_topic: gossipsub::IdentTopic,
    proof_topic: gossipsub::IdentTopic,
    /// Own records and proofs not yet handed to a peer.
    outbox: Vec<outcomes::Outgoing>,
    /// Record and proof writes queued for the next store batch.
    rep_batch: Vec<ReputationWrite>,
    outcome_requests: HashMap<OutboundRequestId, outcomes::OutcomeRequest>,
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
    /// Calls waiting for a Kademlia lookup of their peer's addresses ([`route`]).
    unrouted: HashMap<PeerId, Vec<route::Parked>>,
    route_queries: HashMap<libp2p::kad::QueryId, PeerId>,
    kad_bootstrapped: bool,
    peers: PeerManager,
    bootstrap: Vec<Multiaddr>,
    request_timeout: Duration,
    events: EventSender,
    /// Peers the testnet gate blocks (a partition), apart from bans.
    gate_blocked: std::collections::HashSet<PeerId>,
    /// How hired agents are confined, for `node info`.
    sandbox: String,
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
        // The sweep period is the node's time (a fraction of the manifests' lifetime, so
        // heartbeats are never late): on a testnet's fast clock it is shorter in real time,
        // though never under MIN_TICK.
        let tick = crate::clock::real(tick).max(MIN_TICK.min(tick));
        let mut ticker = tokio::time::interval_at(start + tick.mul_f64(phase), tick);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut search_timer = tokio::time::interval(Duration::from_millis(250));
        // Agents whose records changed are re-ranked together, a few times a second: a sync
        // page of many records for one agent costs one recomputation, not one per record.
        let mut rank_timer = tokio::time::interval(Duration::from_millis(200));
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
                    self.write_rep_batch();
                    self.store_op(StoreOp::Checkpoint);
                }
                _ = search_timer.tick(), if !self.searches.is_empty() => self.expire_searches(),
                _ = rank_timer.tick(), if !self.unranked.is_empty() => self.rerank_changed(),
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
        let rep = std::mem::take(&mut self.rep_batch);
        let mut ops: Vec<StoreOp> = self.store_backlog.drain(..).collect();
        if !batch.is_empty() {
            ops.push(StoreOp::WriteManifests(batch));
        }
        if !rep.is_empty() {
            ops.push(StoreOp::WriteReputation(rep));
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
        crate::hire::offers::with_book(&self.offers, |book| book.retain_live(now));
        for peer in self.scores.expire_bans(now) {
            self.swarm.behaviour_mut().blocked.unblock_peer(peer);
        }
        for name in self.publisher.due(now) {
            self.reannounce(&name);
        }
        self.flush_pending_publish();
        self.flush_outbox();
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
            Command::ManifestsByPrefix(prefix, reply) => {
                let mut found = self.catalog.ids_with_prefix(&prefix, 2);
                for id in self.seen.keys() {
                    if found.len() < 2 && !found.contains(id) && id.to_hex().starts_with(&prefix) {
                        found.push(*id);
                    }
                }
                let envelopes = found
                    .iter()
                    .filter_map(|id| self.catalog.get(id).or_else(|| self.seen.get(id)))
                    .map(Signed::to_bytes)
                    .collect();
                let _ = reply.send(envelopes);
            }
            Command::PublishRecord(record, reply) => {
                let (kind, bytes) = match record {
                    crate::hire::PublicRecord::Outcome(b) => (souk_store::OutboxKind::Outcome, b),
                    crate::hire::PublicRecord::Equivocation(b) => {
                        (souk_store::OutboxKind::Proof, b)
                    }
                };
                self.publish_item(kind, bytes, reply);
            }
            Command::Successor(id, reply) => {
                let _ = reply.send(self.catalog.successor(&id));
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
            Command::GateBlock(block, reply) => {
                self.gate_block(block);
                let _ = reply.send(());
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
                self.call(peer, route::Parked::Hire(call, reply));
            }
            Command::RelayCall {
                peer,
                request,
                reply,
            } => self.call(peer, route::Parked::Relay(request, reply)),
            Command::PublishItem(kind, bytes, reply) => self.publish_item(kind, bytes, reply),
            Command::Reputation {
                provider,
                name,
                policy,
                reply,
            } => {
                let r = self
                    .outcomes
                    .reputation(&provider, name.as_deref(), now_ms(), &policy);
                let _ = reply.send(r);
            }
            Command::IsFlagged(provider, reply) => {
                let _ = reply.send(self.outcomes.is_flagged(&provider));
            }
            Command::Flagged(reply) => {
                let _ = reply.send(self.outcomes.flagged());
            }
            Command::FetchOutcomes(provider, reply) => self.fetch_outcomes(provider, reply),
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
            Pending::Outgoing {
                item,
                reply,
                durable,
            } => self.on_outgoing_stored(item, reply, durable),
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
            metrics_url: self
                .metrics
                .endpoint()
                .map(|a| format!("http://{a}/metrics")),
            descriptors: None,
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
                peer_id,
                endpoint,
                num_established,
                ..
            } => {
                tracing::debug!(%peer_id, "connected ({})", endpoint.get_remote_address());
                if num_established.get() == 1 {
                    self.metrics.peer_connected();
                    self.events.send(NodeEvent::PeerConnected {
                        peer: peer_id.to_base58(),
                        address: endpoint.get_remote_address().to_string(),
                    });
                }
                self.peers.connected(peer_id, Instant::now());
                self.flush_outbox();
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                ..
            } => {
                tracing::debug!(%peer_id, "disconnected");
                self.metrics.peer_disconnected();
                self.events.send(NodeEvent::PeerDisconnected {
                    peer: peer_id.to_base58(),
                });
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
            }) => {
                if message.topic == self.outcome_topic.hash() {
                    self.on_item_gossip(
                        OutboxKind::Outcome,
                        propagation_source,
                        message_id,
                        &message.data,
                    )
                } else if message.topic == self.proof_topic.hash() {
                    self.on_item_gossip(
                        OutboxKind::Proof,
                        propagation_source,
                        message_id,
                        &message.data,
                    )
                } else {
                    self.on_gossip(propagation_source, message_id, &message.data)
                }
            }
            BehaviourEvent::Gossipsub(gossipsub::Event::Subscribed { .. }) => {
                self.flush_pending_publish();
                self.flush_outbox();
            }
            BehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. }) => {
                self.on_identify(peer_id, info)
            }
            BehaviourEvent::Sync(ev) => {
                self.touch(&ev);
                self.on_sync(ev)
            }
            BehaviourEvent::OutcomeSync(ev) => {
                self.touch(&ev);
                self.on_outcome_sync(ev)
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
            BehaviourEvent::Kad(ev) => self.on_kad(ev),
            _ => {}
        }
    }
}
