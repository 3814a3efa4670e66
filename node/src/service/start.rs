//! Starting a node: [`NodeOptions`], [`start`] (the swarm, the storage worker, the catalog
//! and agents loaded from the store, the hire actor, the node's loop), and [`StartError`].

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::stream::FuturesUnordered;
use libp2p::{Multiaddr, gossipsub};
use souk_protocol::discovery::MANIFEST_TOPIC;
use souk_protocol::identity::Keypair;
use souk_protocol::outcome_sync::{EQUIVOCATION_TOPIC, OUTCOME_TOPIC};
use souk_store::{OutboxKind, Store};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::Node;
use super::calls::Caller;
use super::handle::NodeHandle;
use crate::connections::PeerManager;
use crate::discovery::{Catalog, verify_envelope};
use crate::hire::{HireActor, HireDeps, OfferBook, Offers};
use crate::metrics::Metrics;
use crate::now_ms;
use crate::peer_score::PeerScores;
use crate::publisher::{AgentRecord, Publisher};
use crate::storage;
use crate::swarm::{self, SwarmSettings};

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

/// Why binding `ip:port` failed, worded with what to do about it.
fn listen_failure(ip: std::net::IpAddr, port: u16, e: &std::io::Error) -> String {
    use std::io::ErrorKind;
    match e.kind() {
        ErrorKind::AddrInUse => format!("port {port} is in use (is another node running on it?)"),
        ErrorKind::AddrNotAvailable => format!(
            "{ip} is not an address of this machine: listen on one of its own addresses, or on {} for all of them",
            if ip.is_ipv4() { "0.0.0.0" } else { "::" }
        ),
        ErrorKind::PermissionDenied => {
            format!("{e} (ports below 1024 need privileges: choose a higher port)")
        }
        _ => e.to_string(),
    }
}

/// libp2p's TCP transport sets SO_REUSEPORT, so a second node on a taken port would start
/// "successfully" and steal half the first one's connections. Refuse that up front, and say
/// why an address cannot be listened on.
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
    if let (Some(ip), Some(port)) = (ip, port) {
        // Port 0 cannot be taken, but the address can still be foreign.
        std::net::TcpListener::bind((ip, port)).map_err(|e| StartError::Listen {
            addr: addr.to_string(),
            reason: listen_failure(ip, port, &e),
        })?;
    }
    Ok(())
}

/// What a node reads from its store at start: manifest envelopes and agent records.
type Loaded = (Vec<Vec<u8>>, Vec<(String, Vec<u8>)>);

/// Every row of the outcome or proof table, in key order.
fn load_all(
    store: &Store,
    kind: OutboxKind,
) -> Result<Vec<(souk_protocol::Hash, Vec<u8>)>, souk_store::StoreError> {
    let mut all = Vec::new();
    loop {
        let after = all
            .last()
            .map(|(k, _): &(souk_protocol::Hash, Vec<u8>)| k.0);
        let page = store.reputation_page(kind, after.as_ref(), 1024)?;
        if page.is_empty() {
            return Ok(all);
        }
        all.extend(page);
    }
}

/// The records and proofs in the store, re-verified (those that fail are not loaded), and
/// the items of the outbox (published here, not yet gossiped).
fn load_outcomes(
    store: &Store,
    now: u64,
) -> Result<(crate::outcomes::Outcomes, Vec<super::outcomes::Outgoing>), souk_store::StoreError> {
    use crate::outcomes::{Outcomes, verify_proof, verify_record};
    let mut held = Outcomes::new();
    let mut outbox = Vec::new();
    let marked = store.outbox()?;
    for kind in [OutboxKind::Outcome, OutboxKind::Proof] {
        for (key, bytes) in load_all(store, kind)? {
            let ok = match kind {
                OutboxKind::Outcome => verify_record(&bytes, now)
                    .map(|o| {
                        held.insert_verified(bytes.clone(), o);
                    })
                    .map_err(|e| e.to_string()),
                OutboxKind::Proof => verify_proof(&bytes)
                    .map(|e| {
                        held.insert_verified_proof(bytes.clone(), e);
                    })
                    .map_err(|e| e.to_string()),
            };
            match ok {
                Ok(()) if marked.contains(&(kind, key)) => outbox.push(super::outcomes::Outgoing {
                    kind,
                    key: key.0,
                    bytes,
                }),
                Ok(()) => {}
                Err(e) => tracing::warn!("dropping stored {kind:?} {}: {e}", key.short()),
            }
        }
    }
    Ok((held, outbox))
}

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
    let (outcomes, outbox) = {
        let store = store.clone();
        tokio::task::spawn_blocking(move || load_outcomes(&store, now))
            .await
            .map_err(|e| StartError::Runtime(e.to_string()))??
    };
    let key = Arc::new(key);
    let node_id = key.id();
    let events = super::EventSender::new();
    let offers: Offers = Arc::new(Mutex::new(OfferBook::new()));
    let caller = Caller::new(tx.clone(), opts.light);
    let (actor, hires, hire_inbound) = HireActor::new(HireDeps {
        store: store.clone(),
        key: key.clone(),
        work_dir: opts.work_dir.clone(),
        net: Arc::new(caller),
        offers: offers.clone(),
        sealing: opts.sealing_secret.clone(),
        settings: Arc::new(opts.hires.clone()),
        metrics: metrics.clone(),
        events: events.clone(),
    });
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
    let mut node = Node {
        hire_ops: hires.clone(),
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
        outcomes,
        unranked: std::collections::BTreeSet::new(),
        outcome_topic: gossipsub::IdentTopic::new(OUTCOME_TOPIC),
        proof_topic: gossipsub::IdentTopic::new(EQUIVOCATION_TOPIC),
        outbox,
        rep_batch: Vec::new(),
        outcome_requests: HashMap::new(),
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
        unrouted: HashMap::new(),
        route_queries: HashMap::new(),
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
        gate_blocked: std::collections::HashSet::new(),
        sandbox: opts
            .hires
            .sandbox
            .as_ref()
            .map_or_else(|| "none".to_owned(), |s| s.summary()),
    };
    // Ranking uses the figures of the records just loaded; flagged providers are hidden.
    node.rank_all();
    let task = tokio::spawn(node.run(rx, opts.tick));
    Ok((
        NodeHandle {
            tx,
            metrics,
            node_id,
            light: opts.light,
            peer_id,
            hires,
            events,
            gate: settings.gate.clone(),
            store: Arc::downgrade(&store),
            hire_task: Arc::new(Mutex::new(Some(hire_task))),
        },
        task,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(addr: &str) -> String {
        let addr: Multiaddr = addr.parse().unwrap_or_else(|e| panic!("{e}"));
        match ensure_port_free(&addr) {
            Err(StartError::Listen { reason, .. }) => reason,
            other => panic!("expected a listen error, got {other:?}"),
        }
    }

    #[test]
    fn listen_failures_say_what_is_wrong() {
        // TEST-NET-3: never an address of this machine.
        let foreign = reason("/ip4/203.0.113.7/tcp/0");
        assert!(
            foreign.contains("not an address of this machine"),
            "{foreign}"
        );
        assert!(!foreign.contains("another node"), "{foreign}");
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
        let port = taken.local_addr().map(|a| a.port()).unwrap_or_default();
        let in_use = reason(&format!("/ip4/127.0.0.1/tcp/{port}"));
        assert!(in_use.contains("another node"), "{in_use}");
        assert!(
            ensure_port_free(
                &"/ip4/127.0.0.1/tcp/0"
                    .parse()
                    .unwrap_or_else(|e| panic!("{e}"))
            )
            .is_ok()
        );
    }
}
