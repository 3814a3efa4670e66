//! What happened on a node, for observers: [`NodeEvent`] (tests, benchmarks, and later the
//! API's event stream) and how a manifest arrived ([`Via`]).

use serde::{Deserialize, Serialize};
use souk_protocol::Hash;

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
}
