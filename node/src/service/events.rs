//! What happened on a node, for observers: [`NodeEvent`] stamped with the node's clock
//! ([`Stamped`]), sent on the node's broadcast channel to tests, benchmarks and the local
//! API's event stream (`GET /v1/events`, see docs/api.md), and how a manifest, record or
//! proof arrived ([`Via`]).
//!
//! Events are observations, never commands: a slow observer lags and misses events (it is
//! told how many), it never slows the node.

use serde::{Deserialize, Serialize};
use souk_protocol::hire::{HireState, Verdict};
use souk_protocol::{Hash, NodeId};

use crate::hire::Role;

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

/// An event with the time the node saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamped {
    /// When it happened, ms since the Unix epoch on the host's system clock (a measurement;
    /// not the node's protocol clock, which a testnet may run faster: see [`crate::clock`]).
    pub at_ms: u64,
    /// What happened.
    #[serde(flatten)]
    pub event: NodeEvent,
}

/// Something that happened on the node. Serialized with a `type` tag in snake case
/// (`manifest_admitted`, ...), the form `GET /v1/events` sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum NodeEvent {
    /// A manifest entered the catalog.
    ManifestAdmitted {
        /// Its id (stable across an agent's versions).
        id: Hash,
        /// Its version (`seq`): each (re)announcement has a higher one.
        seq: u64,
        /// How it arrived.
        via: Via,
        /// The gossipsub message id (hex), when it came by gossip.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message_id: Option<String>,
        /// The peer it came from (base58 peer id), unless published here.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<String>,
    },
    /// A manifest was refused as invalid (its sender was charged).
    ManifestRejected {
        /// How it arrived.
        via: Via,
        /// The gossipsub message id (hex), when it came by gossip.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message_id: Option<String>,
        /// The peer it came from.
        from: String,
        /// Why (the spec rule it broke, as the node words it).
        reason: String,
    },
    /// A connection to a peer opened (its first one).
    PeerConnected {
        /// The peer (base58 peer id).
        peer: String,
        /// The remote address of the connection.
        address: String,
    },
    /// The last connection to a peer closed.
    PeerDisconnected {
        /// The peer.
        peer: String,
    },
    /// The peer manager disconnected a surplus peer.
    PeerPruned {
        /// The peer.
        peer: String,
    },
    /// A peer was banned for repeated invalid input.
    PeerBanned {
        /// The peer.
        peer: String,
    },
    /// A hire this node takes part in changed state (or was first seen: `from` is absent).
    HireTransition {
        /// The hire.
        hire_id: Hash,
        /// This node's side.
        role: Role,
        /// The agent hired.
        agent: String,
        /// The state before.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<HireState>,
        /// The state now.
        to: HireState,
        /// Receipt entries held now.
        entries: u64,
    },
    /// Provider: receipt entries were appended (signed and stored) to a hire's chain.
    ReceiptAppended {
        /// The hire.
        hire_id: Hash,
        /// Entries held now (the last appended has seq `entries - 1`).
        entries: u64,
    },
    /// Client: receipt entries from the provider were verified against the chain and stored.
    ReceiptVerified {
        /// The hire.
        hire_id: Hash,
        /// Entries held now.
        entries: u64,
    },
    /// A hire was settled: the client's verdict is recorded on this node.
    HireSettled {
        /// The hire.
        hire_id: Hash,
        /// This node's side.
        role: Role,
        /// The verdict.
        verdict: Verdict,
    },
    /// An outcome record was admitted (new, or preferred to the one held for its hire).
    OutcomeAdmitted {
        /// The hire it is about.
        hire_id: Hash,
        /// The record id.
        record_id: Hash,
        /// How it arrived (`Sync` also for a light node's fetch).
        via: Via,
    },
    /// A verified equivocation proof flagged a provider for the first time.
    ProviderFlagged {
        /// The provider.
        provider: NodeId,
        /// How the proof arrived.
        via: Via,
    },
}

/// The sending side of a node's event channel: stamps each event with the time.
#[derive(Debug, Clone)]
pub struct EventSender(tokio::sync::broadcast::Sender<Stamped>);

/// How many events a subscriber may fall behind before it misses some.
pub const EVENT_BACKLOG: usize = 4096;

impl EventSender {
    /// A new channel.
    pub fn new() -> Self {
        Self(tokio::sync::broadcast::channel(EVENT_BACKLOG).0)
    }

    /// Sends `event` stamped now, if anyone listens (cheap when no one does).
    pub fn send(&self, event: NodeEvent) {
        if self.0.receiver_count() > 0 {
            let _ = self.0.send(Stamped {
                at_ms: crate::clock::system_ms(),
                event,
            });
        }
    }

    /// A new subscriber, which sees the events sent from now on.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Stamped> {
        self.0.subscribe()
    }
}

impl Default for EventSender {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn events_serialize_with_a_type_tag_and_a_time() {
        let e = Stamped {
            at_ms: 7,
            event: NodeEvent::ManifestAdmitted {
                id: Hash([1; 32]),
                seq: 4,
                via: Via::Gossip,
                message_id: Some("ab".into()),
                from: Some("12D3".into()),
            },
        };
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["type"], "manifest_admitted");
        assert_eq!(v["at_ms"], 7);
        assert_eq!(v["via"], "gossip");
        assert_eq!(v["message_id"], "ab");
        let back: Stamped = serde_json::from_value(v).unwrap();
        assert_eq!(back, e);
        let t = serde_json::to_value(NodeEvent::HireTransition {
            hire_id: Hash([2; 32]),
            role: Role::Client,
            agent: "a".into(),
            from: None,
            to: HireState::InputRequired,
            entries: 3,
        })
        .unwrap();
        assert_eq!(t["type"], "hire_transition");
        assert_eq!(t["to"], "input-required");
        assert!(t.get("from").is_none());
    }

    #[test]
    fn sending_without_subscribers_is_free_and_subscribers_see_the_stamp() {
        let tx = EventSender::new();
        tx.send(NodeEvent::PeerPruned { peer: "p".into() });
        let mut rx = tx.subscribe();
        tx.send(NodeEvent::PeerBanned { peer: "q".into() });
        let got = rx.try_recv().unwrap();
        assert!(got.at_ms > 0);
        assert_eq!(got.event, NodeEvent::PeerBanned { peer: "q".into() });
    }
}
