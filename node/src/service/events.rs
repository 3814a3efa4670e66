//! What happened on a node, for observers: [`NodeEvent`] (tests, benchmarks, and later the
//! API's event stream) and how a manifest, record or proof arrived ([`Via`]).

use serde::{Deserialize, Serialize};
use souk_protocol::{Hash, NodeId};

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

/// Something that happened on the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeEvent {
    /// A manifest entered the catalog.
    ManifestAdmitted {
        /// Its id.
        id: Hash,
        /// How it arrived.
        via: Via,
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
