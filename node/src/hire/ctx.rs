//! [`Ctx`]: what every hire task shares (store, key, network, own offers, the actor's inbox),
//! and [`blocking`], the one way hire code touches the store: on tokio's blocking pool, never
//! on an async worker.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use libp2p::PeerId;
use souk_protocol::identity::Keypair;
use souk_protocol::manifest::Manifest;
use souk_protocol::signed::Signed;
use souk_protocol::{Hash, NodeId};
use souk_store::Store;
use tokio::sync::mpsc;

use super::error::HireError;
use super::msg::Msg;
use super::transport::HireNetwork;
use crate::agent_file::RunSpec;

/// One of this node's own manifests that clients may hire, with how to run it.
#[derive(Debug, Clone)]
pub struct Offerable {
    /// The signed manifest.
    pub manifest: Signed<Manifest>,
    /// How to run the agent.
    pub run: RunSpec,
}

/// Own manifests by id, kept until they expire (a client may hire a manifest that a
/// heartbeat has since replaced). Written by the swarm loop, read by hire tasks; every lock
/// is held for a map operation only.
pub type Offers = Arc<Mutex<HashMap<Hash, Offerable>>>;

/// The offer of manifest `id`, if this node offers it.
pub(crate) fn offer(offers: &Offers, id: &Hash) -> Option<Offerable> {
    match offers.lock() {
        Ok(map) => map.get(id).cloned(),
        // A panic while holding the lock left the map as it was: keep using it.
        Err(poisoned) => poisoned.into_inner().get(id).cloned(),
    }
}

/// What hire tasks share. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Ctx {
    /// The store (used only through [`blocking`]).
    pub store: Arc<Store>,
    /// This node's key.
    pub key: Arc<Keypair>,
    /// Outbound calls and manifest lookups.
    pub net: Arc<dyn HireNetwork>,
    /// This node's own manifests.
    pub offers: Offers,
    /// Where hires' working directories go (`<dir>/<hire id>`).
    pub workdir: PathBuf,
    /// This node's X25519 sealing secret (opens credentials sealed to it).
    pub sealing: Arc<zeroize::Zeroizing<[u8; 32]>>,
    /// How agents run and reach the network.
    pub settings: Arc<super::settings::HireSettings>,
    /// The node's counters.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// The actor's inbox, for tasks reporting back.
    pub inbox: mpsc::Sender<Msg>,
}

/// Runs `f` (store work) on the blocking pool.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, HireError> + Send + 'static,
) -> Result<T, HireError> {
    tokio::task::spawn_blocking(f).await?
}

/// The libp2p peer id of a node.
pub(crate) fn peer_of(id: &NodeId) -> PeerId {
    // A NodeId is a validated Ed25519 key, whose PeerId bytes always parse.
    PeerId::from_bytes(&id.peer_id_bytes())
        .unwrap_or_else(|e| unreachable!("node id {id} has no peer id: {e}"))
}
