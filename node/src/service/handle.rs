//! [`NodeHandle`]: the typed front door of a running node (used by the API server and by
//! tests), the commands it sends to the node's loop, and [`NodeError`].

use std::sync::{Arc, Mutex};

use libp2p::{Multiaddr, PeerId};
use serde::{Deserialize, Serialize};
use souk_protocol::credential::{RelayReply, RelayRequest};
use souk_protocol::discovery::SearchRequest;
use souk_protocol::equivocation::Equivocation;
use souk_protocol::hiring::{HireCall, HireReply};
use souk_protocol::manifest::Manifest;
use souk_protocol::outcome::Outcome;
use souk_protocol::signed::Signed;
use souk_protocol::{Hash, NodeId};
use souk_reputation::{Figures, Policy};
use souk_store::{OutboxKind, Store, StoreError};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::events::{EventSender, Stamped};
use super::search::SearchHit;
use crate::agent_file::AgentSpec;
use crate::hire::{HireOps, TransportError};
use crate::metrics::{Metrics, MetricsSnapshot};
use crate::publisher::{AgentRecord, PublishError, seq_state_key};

pub(super) type Reply<T> = oneshot::Sender<T>;

/// Why a node operation failed.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The node is shutting down.
    #[error("the node is shutting down")]
    Stopped,
    /// The agent spec is invalid, or names no published agent.
    #[error(transparent)]
    Publish(#[from] PublishError),
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// A light node knows no full node to search through yet.
    #[error(
        "no full node known yet: connect to the network first (souk node run --bootstrap ADDR)"
    )]
    NoFullPeer,
    /// The address cannot be dialed.
    #[error("cannot dial {addr}: {reason}")]
    Dial {
        /// The address.
        addr: Multiaddr,
        /// Why.
        reason: String,
    },
    /// A record or proof given to publish is invalid.
    #[error("invalid record or proof: {0}")]
    Invalid(String),
    /// A valid record (or proof) given to publish lost to the one held for its hire (or
    /// provider): a dispute beats an acceptance; between equals the lower id is kept.
    #[error(
        "another valid record is held for this hire (or a proof with a lower id for this provider)"
    )]
    Superseded,
    /// Fetching records from a full peer failed.
    #[error("cannot fetch outcome records: {0}")]
    Fetch(String),
    /// Gossip publication failed (fault injection only).
    #[error("cannot publish on the manifest topic: {0}")]
    Gossip(String),
    /// The node has no testnet gate (it was not started with `--testnet-gate`).
    #[error("this node has no testnet gate (only `souk node run --testnet-gate` has one)")]
    NoGate,
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
    /// How hired agents are confined (`bubblewrap 0.8.0, cgroup v1 (pids, memory)`), or
    /// `none`.
    pub sandbox: String,
    /// Counters.
    pub metrics: MetricsSnapshot,
    /// The Prometheus endpoint (`http://ADDR/metrics`), when it is on.
    #[serde(default)]
    pub metrics_url: Option<String>,
    /// File descriptors: the limit, how many are open, the local API's connections (filled in
    /// by the API server; `None` from [`NodeHandle::info`]).
    #[serde(default)]
    pub descriptors: Option<crate::fd_limit::Descriptors>,
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

/// Requests to the node's loop.
pub(super) enum Command {
    Info(Reply<NodeInfo>),
    /// The current id of a changed agent's former manifest id.
    Successor(Hash, Reply<Option<Hash>>),
    /// A record a hire hands over: admit, keep and gossip it.
    PublishRecord(crate::hire::PublicRecord, Reply<Result<(), NodeError>>),
    Publish(Box<AgentSpec>, u64, Reply<Result<Published, NodeError>>),
    Retire(String, Reply<Result<String, NodeError>>),
    Agents(Reply<Vec<AgentRecord>>),
    Search(SearchRequest, Reply<Result<Vec<SearchHit>, NodeError>>),
    Manifest(Hash, Reply<Option<Vec<u8>>>),
    ManifestsByPrefix(String, Reply<Vec<Vec<u8>>>),
    LookupManifest(Hash, Reply<Option<Signed<Manifest>>>),
    Dial(Multiaddr, Reply<Result<(), NodeError>>),
    GossipRaw(Vec<u8>, Reply<Result<(), NodeError>>),
    HireCall {
        peer: PeerId,
        call: Box<HireCall>,
        reply: Reply<Result<HireReply, TransportError>>,
    },
    RelayCall {
        peer: PeerId,
        request: Box<RelayRequest>,
        reply: Reply<Result<RelayReply, TransportError>>,
    },
    PublishItem(OutboxKind, Vec<u8>, Reply<Result<(), NodeError>>),
    Reputation {
        provider: NodeId,
        name: Option<String>,
        policy: Policy,
        reply: Reply<(Figures, Vec<Outcome>)>,
    },
    IsFlagged(NodeId, Reply<bool>),
    Flagged(Reply<Vec<(NodeId, Equivocation)>>),
    FetchOutcomes(NodeId, Reply<Result<Vec<Outcome>, NodeError>>),
    /// The testnet gate's partition: exactly these peers blocked.
    GateBlock(Vec<PeerId>, Reply<()>),
    Shutdown(Reply<()>),
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Command")
    }
}

/// A handle on a running node.
#[derive(Clone)]
pub struct NodeHandle {
    pub(super) tx: mpsc::Sender<Command>,
    /// The node's counters.
    pub metrics: Arc<Metrics>,
    /// The node id.
    pub node_id: NodeId,
    /// Whether this is a light node (no catalog, no outcome records of its own).
    pub light: bool,
    /// The libp2p peer id.
    pub peer_id: PeerId,
    /// Hires: create, follow, answer, cancel, settle, export.
    pub hires: HireOps,
    pub(super) events: EventSender,
    /// Weak: a handle kept after shutdown must not keep the database open.
    pub(super) store: std::sync::Weak<Store>,
    pub(super) hire_task: Arc<Mutex<Option<JoinHandle<()>>>>,
    /// The testnet's connection gate, when the node was started with one.
    pub gate: Option<Arc<crate::swarm::gate::Gate>>,
}

impl std::fmt::Debug for NodeHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeHandle")
            .field("node_id", &self.node_id)
            .finish_non_exhaustive()
    }
}

impl NodeHandle {
    async fn ask<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T, NodeError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(make(tx))
            .await
            .map_err(|_| NodeError::Stopped)?;
        rx.await.map_err(|_| NodeError::Stopped)
    }

    /// Node id, addresses, peers, counts.
    pub async fn info(&self) -> Result<NodeInfo, NodeError> {
        self.ask(Command::Info).await
    }

    /// Signs and announces an agent (durably recorded before this returns).
    pub async fn publish(&self, spec: AgentSpec) -> Result<Published, NodeError> {
        // The highest seq this data directory ever signed for the name (retired ones too).
        let store = self.store.upgrade().ok_or(NodeError::Stopped)?;
        let key = seq_state_key(&spec.name);
        let floor = tokio::task::spawn_blocking(move || store.get_state(&key))
            .await
            .map_err(|_| NodeError::Stopped)??
            .and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
            .map_or(0, u64::from_be_bytes);
        self.ask(|r| Command::Publish(Box::new(spec), floor, r))
            .await?
    }

    /// Retires an agent; returns the retiring manifest id.
    pub async fn retire(&self, name: &str) -> Result<String, NodeError> {
        self.ask(|r| Command::Retire(name.to_owned(), r)).await?
    }

    /// This node's agents.
    pub async fn agents(&self) -> Result<Vec<AgentRecord>, NodeError> {
        self.ask(Command::Agents).await
    }

    /// Searches (locally on a full node, through full peers on a light node).
    pub async fn search(&self, req: SearchRequest) -> Result<Vec<SearchHit>, NodeError> {
        self.ask(|r| Command::Search(req, r)).await?
    }

    /// A manifest envelope held by this node.
    pub async fn manifest(&self, id: Hash) -> Result<Option<Vec<u8>>, NodeError> {
        self.ask(|r| Command::Manifest(id, r)).await
    }

    /// The envelopes of the manifests held by this node (its catalog, and on a light node
    /// those its searches returned) whose hex id starts with `prefix` (lowercase hex): at
    /// most 2, enough to tell a unique prefix from an ambiguous one.
    pub async fn manifests_by_prefix(&self, prefix: String) -> Result<Vec<Vec<u8>>, NodeError> {
        self.ask(|r| Command::ManifestsByPrefix(prefix, r)).await
    }

    /// Dials a peer.
    pub async fn dial(&self, addr: Multiaddr) -> Result<(), NodeError> {
        self.ask(|r| Command::Dial(addr, r)).await?
    }

    /// Fault injection: publishes raw bytes on the manifest topic without any validation,
    /// as a buggy or malicious peer would. Used by tests and testnet scenarios.
    pub async fn gossip_raw(&self, bytes: Vec<u8>) -> Result<(), NodeError> {
        self.ask(|r| Command::GossipRaw(bytes, r)).await?
    }

    /// Publishes an outcome record (canonical bytes): verified and admitted here first, made
    /// durable, then gossiped on `souk/outcomes/1`. When no peer takes it yet it stays in the
    /// outbox (persisted) and is retried on the next connection or housekeeping tick, also
    /// after a restart. Returns once it is durable.
    pub async fn publish_outcome(&self, bytes: Vec<u8>) -> Result<(), NodeError> {
        self.ask(|r| Command::PublishItem(OutboxKind::Outcome, bytes, r))
            .await?
    }

    /// Publishes an equivocation proof (canonical bytes) on `souk/equivocations/1`, like
    /// [`NodeHandle::publish_outcome`]; admitting it flags the provider here first.
    pub async fn publish_equivocation(&self, bytes: Vec<u8>) -> Result<(), NodeError> {
        self.ask(|r| Command::PublishItem(OutboxKind::Proof, bytes, r))
            .await?
    }

    /// Reputation figures of a provider (all agents) or of one agent (`name`), computed from
    /// the verified records this node holds under `policy`, with the latest records (at
    /// most 10, latest first).
    pub async fn reputation(
        &self,
        provider: NodeId,
        name: Option<String>,
        policy: Policy,
    ) -> Result<(Figures, Vec<Outcome>), NodeError> {
        self.ask(|reply| Command::Reputation {
            provider,
            name,
            policy,
            reply,
        })
        .await
    }

    /// Whether this node holds a verified equivocation proof against `provider`.
    pub async fn is_flagged(&self, provider: NodeId) -> Result<bool, NodeError> {
        self.ask(|r| Command::IsFlagged(provider, r)).await
    }

    /// Every flagged provider, with what its proof shows.
    pub async fn flagged(&self) -> Result<Vec<(NodeId, Equivocation)>, NodeError> {
        self.ask(Command::Flagged).await
    }

    /// A provider's outcome records. A light node asks one connected full peer
    /// (`/souk/outcome-sync/1`, kind 2), verifies every record itself, keeps the valid ones
    /// (store and ledger) and returns every record it holds for the provider; a full node
    /// answers from what it holds.
    pub async fn fetch_outcomes(&self, provider: NodeId) -> Result<Vec<Outcome>, NodeError> {
        self.ask(|r| Command::FetchOutcomes(provider, r)).await?
    }

    /// Testnet gate: block exactly `block` (a partition; the peers blocked by the previous
    /// call and not listed are unblocked unless banned) and delay links as `links` says.
    /// Fails with [`NodeError::NoGate`] on a node started without the gate.
    pub async fn set_gate(
        &self,
        block: Vec<PeerId>,
        links: std::collections::HashMap<u16, crate::swarm::gate::Link>,
    ) -> Result<(), NodeError> {
        let gate = self.gate.as_ref().ok_or(NodeError::NoGate)?;
        gate.set_links(links);
        self.ask(|r| Command::GateBlock(block, r)).await
    }

    /// Events from now on (a lagging receiver loses the oldest ones).
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Stamped> {
        self.events.subscribe()
    }

    /// Resolves once the node has stopped (its loop ended): long-lived API responses such
    /// as the event stream end then, so a shutdown does not wait for their readers.
    pub async fn stopped(&self) {
        self.tx.closed().await;
    }

    /// Stops the node: hires are paused where they are (they resume on the next start),
    /// the store is flushed and closed when this returns.
    pub async fn shutdown(&self) {
        self.hires.shutdown().await;
        let task = match self.hire_task.lock() {
            Ok(mut t) => t.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        if let Some(t) = task {
            let _ = t.await;
        }
        let _ = self.ask(Command::Shutdown).await;
    }
}
