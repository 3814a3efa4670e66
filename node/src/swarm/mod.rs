//! The libp2p side of a node: the composed [`Behaviour`] and how the swarm is built.
//!
//! TCP + noise + yamux (and QUIC with the `quic` feature); identify and ping; Kademlia (server mode on full nodes even on
//! loopback, client mode on light nodes); gossipsub in anonymous mode with content-addressed
//! message ids and application-level validation (each manifest is verified once per message,
//! not once per copy); request-response for manifest sync, outcome sync and search; the outcome and
//! equivocation topics beside the manifest topic; connection limits and
//! a block list for banned peers. No Souk logic lives here: [`crate::service`] drives it.

pub mod codec;
mod composed;
pub mod gate;

pub use composed::{Behaviour, BehaviourEvent};

use std::time::Duration;

use libp2p::{
    PeerId, StreamProtocol, allow_block_list, connection_limits, gossipsub, identify, kad, noise,
    ping, request_response, tcp, yamux,
};
use souk_protocol::credential::relay::{MAX_RELAY_REPLY_LEN, MAX_RELAY_REQUEST_LEN};
use souk_protocol::credential::{RELAY_PROTOCOL, RelayReply, RelayRequest};
use souk_protocol::discovery::{
    MANIFEST_TOPIC, MAX_ENVELOPE_LEN, MAX_REQUEST_LEN, MAX_RESPONSE_LEN, SEARCH_PROTOCOL,
    SYNC_PROTOCOL, SearchRequest, SearchResponse, SyncRequest, SyncResponse,
};
use souk_protocol::hiring::{HIRE_PROTOCOL, HireCall, HireReply, MAX_CALL_LEN, MAX_REPLY_LEN};
use souk_protocol::outcome_sync::{
    EQUIVOCATION_TOPIC, OUTCOME_SYNC_PROTOCOL, OUTCOME_TOPIC, OutcomeSyncRequest,
    OutcomeSyncResponse,
};

use self::codec::CborCodec;

/// The Kademlia protocol name of the Souk DHT.
pub const KAD_PROTOCOL: StreamProtocol = StreamProtocol::new("/souk/kad/1.0.0");
/// The identify protocol version string.
pub const IDENTIFY_VERSION: &str = "/souk/1.0.0";

/// Sync codec.
pub type SyncCodec = CborCodec<SyncRequest, SyncResponse>;
/// Search codec.
pub type SearchCodec = CborCodec<SearchRequest, SearchResponse>;
/// Outcome-sync codec (`/souk/outcome-sync/1`).
pub type OutcomeSyncCodec = CborCodec<OutcomeSyncRequest, OutcomeSyncResponse>;
/// Hire codec.
pub type HireCodec = CborCodec<HireCall, HireReply>;
/// Relay codec (`/souk/relay/1`, spec/credentials.md).
pub type RelayCodec = CborCodec<RelayRequest, RelayReply>;
/// Request timeout of the relay protocol: the client makes an HTTPS call for each request.
pub const RELAY_TIMEOUT: Duration = Duration::from_secs(60);
/// Request timeout of the hire protocol: longer than the longest receipt long-poll.
pub const HIRE_TIMEOUT: Duration = Duration::from_secs(40);
/// Hire-protocol streams (inbound and outbound together) one connection carries at once.
/// Every followed hire holds one (its long-poll), and a burst of requests adds one each;
/// a stream beyond the limit is dropped by libp2p without an answer, so this is sized well
/// above [`HIRE_CALLS_PER_PEER`], which bounds what an honest node sends, and below yamux's
/// 512 streams per connection.
pub const HIRE_STREAMS_PER_CONNECTION: usize = 384;
/// Hire calls this node has in flight to one peer; more wait for a free one (see
/// `service::calls::Caller`).
pub const HIRE_CALLS_PER_PEER: usize = 256;

/// Gossip messages at least this large make receivers send IDONTWANT to their mesh.
const IDONTWANT_THRESHOLD: usize = 16 * 1024;

/// Swarm-level settings.
#[derive(Debug, Clone)]
pub struct SwarmSettings {
    /// Light node: Kademlia client mode, no gossip subscription, no sync or search serving.
    pub light: bool,
    /// Most established connections (a hard cap: connections above it are refused).
    pub max_connections: u32,
    /// Full peers to keep; surplus peers outside the gossip mesh are disconnected once idle
    /// (see [`crate::connections`]).
    pub target_peers: usize,
    /// How long a surplus peer must have been connected and idle before it is pruned.
    pub prune_grace: Duration,
    /// Close connections idle this long.
    pub idle_timeout: Duration,
    /// Gossipsub mesh degree (`mesh_n`); low/high are derived.
    pub mesh_n: usize,
    /// Gossipsub heartbeat.
    pub heartbeat: Duration,
    /// Interval of libp2p pings on each connection (round-trip measurement only: a failed
    /// ping is not acted on; dead connections end by the idle timeout and yamux).
    pub ping_interval: Duration,
    /// Request-response timeout.
    pub request_timeout: Duration,
    /// The testnet's connection gate ([`gate`]); `None` (plain TCP) unless the node was
    /// started with `--testnet-gate`.
    pub gate: Option<std::sync::Arc<gate::Gate>>,
}

impl Default for SwarmSettings {
    fn default() -> Self {
        Self {
            light: false,
            max_connections: 128,
            target_peers: 12,
            prune_grace: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(60),
            mesh_n: 4,
            heartbeat: Duration::from_secs(1),
            ping_interval: Duration::from_secs(30),
            request_timeout: Duration::from_secs(10),
            gate: None,
        }
    }
}

/// Gossipsub message id: the first 20 bytes of BLAKE3 of the data (content-addressed, so
/// the same manifest bytes are one message however many peers forward it).
fn message_id(msg: &gossipsub::Message) -> gossipsub::MessageId {
    gossipsub::MessageId::from(&blake3::hash(&msg.data).as_bytes()[..20])
}

/// Why the swarm could not be built (a bad setting, or the transport could not be set up).
#[derive(Debug, thiserror::Error)]
pub enum SwarmError {
    /// A gossipsub setting was refused.
    #[error("gossipsub: {0}")]
    Gossipsub(String),
    /// The transport could not be built.
    #[error("transport: {0}")]
    Transport(String),
}

/// A node's phase in `[0, 1)` for its periodic work, from its peer id (spread evenly over
/// nodes, stable across restarts).
pub fn phase_of(peer: &PeerId) -> f64 {
    let digest = blake3::hash(&peer.to_bytes());
    let mut head = [0u8; 8];
    head.copy_from_slice(&digest.as_bytes()[..8]);
    (u64::from_le_bytes(head) >> 11) as f64 / (1u64 << 53) as f64
}

/// How much longer than the configured heartbeat a node's gossipsub heartbeat may be.
pub const HEARTBEAT_STRETCH: f64 = 0.1;

/// A node's gossipsub heartbeat period: `heartbeat` stretched by up to [`HEARTBEAT_STRETCH`]
/// by its peer id. Gossipsub starts each heartbeat's wait when the last one ran, so a pause
/// every node shares (a loaded machine of a testnet, a data centre) would leave their
/// heartbeats running in lockstep, all nodes' mesh and gossip work at the same instant;
/// with periods that differ they drift apart again within seconds.
pub fn heartbeat_of(peer: &PeerId, heartbeat: Duration) -> Duration {
    heartbeat.mul_f64(1.0 + HEARTBEAT_STRETCH * phase_of(peer))
}

/// Builds the composed behaviour for `key`.
pub fn behaviour(
    key: &libp2p::identity::Keypair,
    s: &SwarmSettings,
) -> Result<Behaviour, SwarmError> {
    let peer_id = key.public().to_peer_id();
    let mesh_n = s.mesh_n.max(2);
    let gossip_config = gossipsub::ConfigBuilder::default()
        .validation_mode(gossipsub::ValidationMode::Anonymous)
        .validate_messages()
        .message_id_fn(message_id)
        // spec/discovery.md "RPC limits": every frame up to MAX_ENVELOPE_LEN + 1 KiB must be
        // accepted. gossipsub 0.50 compares this limit with all it has buffered from the
        // stream, which can include up to 8 KiB of the next RPC (its codec's read chunk), so
        // the setting is 8 KiB larger. What this node sends stays under the spec's limit:
        // admission caps every item it publishes or forwards far below.
        .max_transmit_size(MAX_ENVELOPE_LEN + 1024 + 8 * 1024)
        .mesh_n(mesh_n)
        .mesh_n_low((mesh_n * 2 / 3).max(1))
        .mesh_n_high(mesh_n * 2)
        .mesh_outbound_min((mesh_n / 3).max(1).min((mesh_n * 2 / 3).max(1)))
        .gossip_lazy(mesh_n)
        // IHAVE to exactly `gossip_lazy` peers per heartbeat, not a quarter of all non-mesh
        // peers: a node keeps about 32 peers, and each IHAVE wakes a connection at both ends
        // for what sync and the mesh already deliver (the propagation bench's quiet-rate cost).
        .gossip_factor(0.0)
        .heartbeat_interval(heartbeat_of(&peer_id, s.heartbeat))
        .flood_publish(true)
        // IDONTWANT saves bandwidth on large messages; a manifest is a few KiB, for which the
        // extra control message per mesh peer costs more than the duplicate it prevents.
        .idontwant_message_size_threshold(IDONTWANT_THRESHOLD)
        .build()
        .map_err(|e| SwarmError::Gossipsub(format!("config: {e}")))?;
    let mut gossipsub =
        gossipsub::Behaviour::new(gossipsub::MessageAuthenticity::Anonymous, gossip_config)
            .map_err(|e| SwarmError::Gossipsub(e.to_string()))?;
    if !s.light {
        for topic in [MANIFEST_TOPIC, OUTCOME_TOPIC, EQUIVOCATION_TOPIC] {
            gossipsub
                .subscribe(&gossipsub::IdentTopic::new(topic))
                .map_err(|e| SwarmError::Gossipsub(format!("subscribe: {e}")))?;
        }
    }

    let mut kad_config = kad::Config::new(KAD_PROTOCOL);
    kad_config.set_query_timeout(Duration::from_secs(30));
    let mut kad =
        kad::Behaviour::with_config(peer_id, kad::store::MemoryStore::new(peer_id), kad_config);
    kad.set_mode(Some(if s.light {
        kad::Mode::Client
    } else {
        kad::Mode::Server
    }));

    let support = if s.light {
        request_response::ProtocolSupport::Outbound
    } else {
        request_response::ProtocolSupport::Full
    };
    let rr_config = request_response::Config::default()
        .with_request_timeout(s.request_timeout)
        .with_max_concurrent_streams(64);
    let sync = request_response::Behaviour::with_codec(
        SyncCodec::new(MAX_REQUEST_LEN, MAX_RESPONSE_LEN),
        [(StreamProtocol::new(SYNC_PROTOCOL), support.clone())],
        rr_config.clone(),
    );
    let search = request_response::Behaviour::with_codec(
        SearchCodec::new(MAX_REQUEST_LEN, MAX_RESPONSE_LEN),
        [(StreamProtocol::new(SEARCH_PROTOCOL), support.clone())],
        rr_config.clone(),
    );
    let outcome_sync = request_response::Behaviour::with_codec(
        OutcomeSyncCodec::new(MAX_REQUEST_LEN, MAX_RESPONSE_LEN),
        [(StreamProtocol::new(OUTCOME_SYNC_PROTOCOL), support)],
        rr_config.clone(),
    );
    // Every node can hire; every node can also be hired (light nodes simply publish nothing).
    let hire = request_response::Behaviour::with_codec(
        HireCodec::new(MAX_CALL_LEN, MAX_REPLY_LEN),
        [(
            StreamProtocol::new(HIRE_PROTOCOL),
            request_response::ProtocolSupport::Full,
        )],
        rr_config
            .clone()
            .with_request_timeout(HIRE_TIMEOUT)
            .with_max_concurrent_streams(HIRE_STREAMS_PER_CONNECTION),
    );
    // Every node may have hired with relayed credentials; every node may relay to a client.
    let relay = request_response::Behaviour::with_codec(
        RelayCodec::new(MAX_RELAY_REQUEST_LEN, MAX_RELAY_REPLY_LEN),
        [(
            StreamProtocol::new(RELAY_PROTOCOL),
            request_response::ProtocolSupport::Full,
        )],
        rr_config.with_request_timeout(RELAY_TIMEOUT),
    );

    let mode = if s.light { "light" } else { "full" };
    let identify = identify::Behaviour::new(
        identify::Config::new(IDENTIFY_VERSION.into(), key.public())
            .with_agent_version(format!("souk/{} ({mode})", env!("CARGO_PKG_VERSION")))
            .with_interval(Duration::from_secs(300)),
    );
    let limits = connection_limits::Behaviour::new(
        connection_limits::ConnectionLimits::default()
            .with_max_established(Some(s.max_connections))
            .with_max_established_per_peer(Some(2))
            .with_max_pending_incoming(Some(64)),
    );
    Ok(Behaviour {
        blocked: allow_block_list::Behaviour::default(),
        limits,
        identify,
        ping: ping::Behaviour::new(ping::Config::new().with_interval(s.ping_interval)),
        kad,
        gossipsub,
        sync,
        search,
        outcome_sync,
        hire,
        relay,
    })
}

/// Builds the swarm on the tokio runtime: TCP/noise/yamux, plus QUIC (`quic-v1`, TLS 1.3)
/// when the `quic` feature is on.
pub fn build(
    key: libp2p::identity::Keypair,
    s: &SwarmSettings,
) -> Result<libp2p::Swarm<Behaviour>, SwarmError> {
    let settings = s.clone();
    if let Some(gate) = settings.gate.clone() {
        return build_gated(key, &settings, gate);
    }
    let key_for_behaviour = key.clone();
    let builder = libp2p::SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(|e| SwarmError::Transport(e.to_string()))?;
    #[cfg(feature = "quic")]
    let builder = builder.with_quic();
    // The builder boxes the behaviour's error; build it first to keep the type.
    let built = behaviour(&key_for_behaviour, &settings)?;
    let swarm = builder
        .with_behaviour(move |_| built)
        .map_err(|e| SwarmError::Transport(e.to_string()))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(settings.idle_timeout))
        .build();
    Ok(swarm)
}

/// [`build`] with TCP through the testnet's [`gate::Gate`] (TCP only, no QUIC).
fn build_gated(
    key: libp2p::identity::Keypair,
    settings: &SwarmSettings,
    gate: std::sync::Arc<gate::Gate>,
) -> Result<libp2p::Swarm<Behaviour>, SwarmError> {
    use libp2p::Transport;
    let built = behaviour(&key, settings)?;
    let idle = settings.idle_timeout;
    let swarm = libp2p::SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_other_transport(|key| {
            let noise = noise::Config::new(key)
                .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)?;
            let tcp = libp2p::tcp::tokio::Transport::new(tcp::Config::default().nodelay(true))
                .map(move |stream, endpoint| gate::wrap(gate.clone(), stream, &endpoint));
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(
                tcp.upgrade(libp2p::core::upgrade::Version::V1Lazy)
                    .authenticate(noise)
                    .multiplex(yamux::Config::default()),
            )
        })
        .map_err(|e| SwarmError::Transport(e.to_string()))?
        .with_behaviour(move |_| built)
        .map_err(|e| SwarmError::Transport(e.to_string()))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(idle))
        .build();
    Ok(swarm)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(i: u8) -> PeerId {
        let key = libp2p::identity::Keypair::ed25519_from_bytes([i; 32])
            .unwrap_or_else(|e| panic!("key {i}: {e}"));
        key.public().to_peer_id()
    }

    #[test]
    fn heartbeats_are_stretched_by_at_most_a_tenth_and_differ_between_nodes() {
        let base = Duration::from_secs(1);
        let periods: Vec<Duration> = (0..64).map(|i| heartbeat_of(&peer(i), base)).collect();
        for p in &periods {
            assert!(
                *p >= base && *p < base.mul_f64(1.0 + HEARTBEAT_STRETCH),
                "{p:?}"
            );
        }
        let mut distinct = periods.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), periods.len(), "every node its own period");
        // Spread over the whole range, not bunched at one end.
        let spread = distinct[distinct.len() - 1] - distinct[0];
        assert!(spread > base.mul_f64(HEARTBEAT_STRETCH * 0.8), "{spread:?}");
        // Stable for a node (across restarts).
        assert_eq!(heartbeat_of(&peer(7), base), periods[7]);
    }
}
