//! [`Ctx`]: what every hire task shares (store, key, network, own offers, the actor's inbox),
//! and [`blocking`], the one way hire code touches the store: on tokio's blocking pool, never
//! on an async worker.

use std::path::PathBuf;
use std::sync::Arc;

use libp2p::PeerId;
use souk_protocol::NodeId;
use souk_protocol::identity::Keypair;
use souk_store::Store;
use tokio::sync::mpsc;

use super::error::HireError;
use super::msg::Msg;
pub(crate) use super::offers::Offers;
use super::transport::HireNetwork;

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
    /// The node's event channel.
    pub events: crate::service::EventSender,
    /// The actor's inbox, for tasks reporting back.
    pub inbox: mpsc::Sender<Msg>,
    /// Agent processes started before their hire (warm starts).
    pub warm: Arc<super::warm::WarmPool>,
    /// Standby sandboxes for cold starts (`None`: no sandbox with cgroups here).
    pub standby: Option<Arc<souk_runtime::sandbox::StandbyPool>>,
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
