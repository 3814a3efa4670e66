//! How hires reach the network, as a trait: [`HireNetwork`] sends a call to a peer and waits
//! for its reply, and looks up verified manifests the node knows. The swarm loop implements
//! it ([`crate::service::Caller`]); unit tests implement it with a fake, so the provider and
//! client logic runs without libp2p, TCP or Python.
//!
//! Inbound calls arrive with a [`Responder`]: a one-shot channel the swarm loop turns into the
//! libp2p response. Dropping it unanswered makes the swarm loop answer `internal`.

use std::future::Future;
use std::pin::Pin;

use libp2p::PeerId;
use souk_protocol::credential::{RelayReply, RelayRequest};
use souk_protocol::hiring::{HireCall, HireReply};
use souk_protocol::manifest::Manifest;
use souk_protocol::signed::Signed;
use souk_protocol::{Hash, NodeId};
use tokio::sync::oneshot;

/// A boxed future, as trait methods return them.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// Where the reply to one inbound call goes.
pub type Responder = oneshot::Sender<HireReply>;

/// Where the reply to one inbound relay request goes.
pub type RelayResponder = oneshot::Sender<RelayReply>;

/// Why an outbound call got no reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// The node is shutting down.
    #[error("the node is shutting down")]
    Stopped,
    /// No reply: dial failure, timeout, closed connection, refused protocol, malformed reply.
    #[error("{0}")]
    NoReply(String),
}

/// A signed record that hires hand to the node to keep and spread to every node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicRecord {
    /// A settled hire's outcome record (spec/outcomes.md).
    Outcome(Vec<u8>),
    /// An equivocation proof against a provider (spec/receipts.md).
    Equivocation(Vec<u8>),
}

/// The network as hires see it.
pub trait HireNetwork: Send + Sync + 'static {
    /// Sends `call` to `peer` and waits for its reply (bounded by the protocol's timeout).
    fn call(&self, peer: PeerId, call: HireCall) -> BoxFuture<Result<HireReply, TransportError>>;

    /// A verified manifest known to this node (catalog, recent search results, own offers).
    fn lookup_manifest(
        &self,
        id: Hash,
    ) -> BoxFuture<Result<Option<Signed<Manifest>>, TransportError>>;

    /// Asks the client `peer` to perform a relayed call (`/souk/relay/1`).
    fn relay(
        &self,
        peer: PeerId,
        request: RelayRequest,
    ) -> BoxFuture<Result<RelayReply, TransportError>>;

    /// Hands `record` to the node, which admits it as it would one from the network, keeps
    /// it, and gossips it until a peer has it (also after a restart). Publishing the same
    /// record again is harmless. An error means the node refused it or is stopping.
    fn publish(&self, record: PublicRecord) -> BoxFuture<Result<(), TransportError>>;

    /// The current manifest id of the agent whose manifest `id` was replaced by a changed
    /// version, if the node knows it.
    fn successor(&self, id: Hash) -> BoxFuture<Result<Option<Hash>, TransportError>>;

    /// Whether the node holds a verified equivocation proof against `provider`.
    fn is_flagged(&self, provider: NodeId) -> BoxFuture<Result<bool, TransportError>>;

    /// Whether `provider` is flagged once the network was asked. A light node holds no proofs
    /// of its own: it first fetches the provider's records and the proof against it from a
    /// full peer (`spec/discovery.md`). Best effort: without an answer it goes by what it
    /// holds (logged), as a full node that has not seen the proof yet would. A full node
    /// answers from what it holds.
    fn check_provider(&self, provider: NodeId) -> BoxFuture<Result<bool, TransportError>>;
}
