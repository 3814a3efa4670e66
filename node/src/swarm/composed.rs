//! The composed behaviour. Its own module because `#[derive(NetworkBehaviour)]` generates an
//! event enum whose variants cannot carry doc comments.
#![allow(missing_docs)]

use libp2p::{
    allow_block_list, connection_limits, gossipsub, identify, kad, ping, request_response,
    swarm::NetworkBehaviour,
};

use super::{HireCodec, OutcomeSyncCodec, RelayCodec, SearchCodec, SyncCodec};

/// Everything a Souk node speaks.
#[derive(NetworkBehaviour)]
pub struct Behaviour {
    /// Refuses banned peers.
    pub blocked: allow_block_list::Behaviour<allow_block_list::BlockedPeers>,
    /// Caps connections.
    pub limits: connection_limits::Behaviour,
    /// Exchanges addresses and supported protocols.
    pub identify: identify::Behaviour,
    /// Liveness.
    pub ping: ping::Behaviour,
    /// Peer routing and capability provider records.
    pub kad: kad::Behaviour<kad::store::MemoryStore>,
    /// Manifest gossip.
    pub gossipsub: gossipsub::Behaviour,
    /// Manifest sync (late joiners catch up).
    pub sync: request_response::Behaviour<SyncCodec>,
    /// Search (light nodes ask full nodes).
    pub search: request_response::Behaviour<SearchCodec>,
    /// Outcome-record and equivocation-proof sync (late joiners, light nodes' lookups).
    pub outcome_sync: request_response::Behaviour<OutcomeSyncCodec>,
    /// Hiring: negotiation, receipts, answers, cancellation, settlement.
    pub hire: request_response::Behaviour<HireCodec>,
    /// Relayed credentials: a provider's egress proxy asks the client to make a call.
    pub relay: request_response::Behaviour<RelayCodec>,
}
