//! Agent references: how a user names an agent, and finding the manifest it names.
//!
//! An agent is named by its **handle** `<provider node id>/<agent name>` (the node id may be
//! shortened to a unique prefix of at least 8 base32 characters after `souk`), by its
//! manifest id (64 hex digits), or by a unique prefix of the id (at least 8 hex digits, as
//! `souk search` prints). A handle always means the agent's current manifest; an id means
//! that manifest (spec/manifest.md: ids change only when the provider changes the agent).
//!
//! Resolving asks the node only: its catalog, the manifests its searches returned (a light
//! node), and for a handle a search filtered on the provider (which a light node sends to
//! its full peers). Nothing here trusts a peer: every manifest it returns was verified by
//! the node when it arrived.

use std::fmt;
use std::str::FromStr;

use souk_protocol::Hash;
use souk_protocol::discovery::SearchRequest;
use souk_protocol::manifest::Manifest;
use souk_protocol::signed::Signed;

use crate::service::{NodeError, NodeHandle};

/// Fewest hex digits of a manifest id prefix.
pub const MIN_ID_PREFIX: usize = 8;
/// Fewest base32 characters of a node id prefix (after `souk`) in a handle.
pub const MIN_PROVIDER_PREFIX: usize = 8;
/// Characters of a node id's text form after `souk`.
const NODE_ID_CHARS: usize = 52;

/// A parsed agent reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentRef {
    /// A whole manifest id.
    Id(Hash),
    /// A prefix of a manifest id (lowercase hex, 8 to 63 digits).
    IdPrefix(String),
    /// `<node id or prefix>/<name>`; `provider` is lowercase and starts with `souk`.
    Handle {
        /// The provider's node id in text form, or a prefix of it.
        provider: String,
        /// The agent name.
        name: String,
    },
}

/// Why a reference names no single agent.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// Not a handle, an id or an id prefix.
    #[error(
        "{0:?} is not an agent: give a handle <node id>/<name> (the node id may be a prefix of \
         at least 8 characters after souk), a manifest id (64 hex digits) or a unique prefix of \
         one (at least 8)"
    )]
    Malformed(String),
    /// Nothing this node knows matches.
    #[error("no agent {0} is known to this node: find it with `souk search` first")]
    NotFound(String),
    /// More than one agent matches.
    #[error("{query} matches several agents ({}); give more characters", candidates.join(", "))]
    Ambiguous {
        /// The reference as given.
        query: String,
        /// Handles or ids that match.
        candidates: Vec<String>,
    },
    /// A manifest the node holds does not decode (a local fault: it was verified on arrival).
    #[error("a manifest this node holds does not decode: {0}")]
    Corrupt(String),
    /// The node could not answer.
    #[error(transparent)]
    Node(#[from] NodeError),
}

impl fmt::Display for AgentRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AgentRef::Id(id) => write!(f, "{}", id.to_hex()),
            AgentRef::IdPrefix(p) => f.write_str(p),
            AgentRef::Handle { provider, name } => write!(f, "{provider}/{name}"),
        }
    }
}

impl FromStr for AgentRef {
    type Err = ResolveError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let malformed = || ResolveError::Malformed(s.to_owned());
        let text = s.trim();
        if let Some((provider, name)) = text.split_once('/') {
            let provider = provider.to_ascii_lowercase();
            let body = provider.strip_prefix("souk").unwrap_or(&provider);
            let base32 = |c: char| matches!(c, 'a'..='z' | '2'..='7');
            if body.len() < MIN_PROVIDER_PREFIX
                || body.len() > NODE_ID_CHARS
                || !body.chars().all(base32)
                || crate::agent_file::check_agent_name(name).is_err()
            {
                return Err(malformed());
            }
            return Ok(AgentRef::Handle {
                provider: format!("souk{body}"),
                name: name.to_owned(),
            });
        }
        let hex = text.to_ascii_lowercase();
        if hex.len() < MIN_ID_PREFIX
            || hex.len() > 64
            || !hex.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return Err(malformed());
        }
        Ok(match Hash::from_hex(&hex) {
            Some(id) if hex.len() == 64 => AgentRef::Id(id),
            _ => AgentRef::IdPrefix(hex),
        })
    }
}

/// The handle of a manifest's agent: `<provider node id>/<name>`.
pub fn handle_of(m: &Manifest) -> String {
    format!("{}/{}", m.provider, m.name)
}

/// The manifest `r` names, as this node knows it.
pub async fn resolve(node: &NodeHandle, r: &AgentRef) -> Result<Signed<Manifest>, ResolveError> {
    let decode = |bytes: Vec<u8>| {
        // The node verified every manifest it holds; a decoding failure is a local fault.
        Signed::<Manifest>::decode_bytes(&bytes).map_err(|e| ResolveError::Corrupt(e.to_string()))
    };
    match r {
        AgentRef::Id(id) => match node.manifest(*id).await? {
            Some(bytes) => decode(bytes),
            None => Err(ResolveError::NotFound(r.to_string())),
        },
        AgentRef::IdPrefix(prefix) => {
            let mut found = node.manifests_by_prefix(prefix.clone()).await?;
            match found.len() {
                0 => Err(ResolveError::NotFound(r.to_string())),
                1 => decode(found.remove(0)),
                _ => {
                    let candidates = found
                        .into_iter()
                        .filter_map(|b| Signed::<Manifest>::decode_bytes(&b).ok())
                        .map(|m| m.id().to_hex()[..16].to_owned())
                        .collect();
                    Err(ResolveError::Ambiguous {
                        query: r.to_string(),
                        candidates,
                    })
                }
            }
        }
        AgentRef::Handle { provider, name } => {
            let hits = node
                .search(SearchRequest {
                    // The name's words narrow the provider's agents to those it names (the
                    // exact name is checked below), so a provider with many agents is served.
                    text: name.replace('-', " "),
                    capabilities: Vec::new(),
                    max_price: None,
                    currency: None,
                    limit: 100,
                    provider: Some(provider.clone()),
                    // A flagged provider's agent is still named by its handle (its card
                    // says why it is flagged).
                    include_flagged: true,
                })
                .await?;
            let mut matching: Vec<_> = hits.into_iter().filter(|h| h.name == *name).collect();
            matching.sort_by(|a, b| a.provider.cmp(&b.provider));
            matching.dedup_by(|a, b| a.provider == b.provider);
            match matching.len() {
                0 => Err(ResolveError::NotFound(r.to_string())),
                1 => {
                    let id = Hash::from_hex(&matching[0].id)
                        .ok_or_else(|| ResolveError::NotFound(r.to_string()))?;
                    match node.manifest(id).await? {
                        Some(bytes) => decode(bytes),
                        None => Err(ResolveError::NotFound(r.to_string())),
                    }
                }
                _ => Err(ResolveError::Ambiguous {
                    query: r.to_string(),
                    candidates: matching
                        .iter()
                        .map(|h| format!("{}/{}", h.provider, h.name))
                        .collect(),
                }),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_parse() {
        let id = "ab".repeat(32);
        assert_eq!(
            id.parse::<AgentRef>().ok(),
            Hash::from_hex(&id).map(AgentRef::Id)
        );
        assert_eq!(
            "ABCDEF0123".parse::<AgentRef>().ok(),
            Some(AgentRef::IdPrefix("abcdef0123".into()))
        );
        assert_eq!(
            "soukabcdefgh/csv-analyst".parse::<AgentRef>().ok(),
            Some(AgentRef::Handle {
                provider: "soukabcdefgh".into(),
                name: "csv-analyst".into()
            })
        );
        // `souk` may be left out of the node id.
        assert_eq!(
            "abcdefgh/x".parse::<AgentRef>().ok(),
            Some(AgentRef::Handle {
                provider: "soukabcdefgh".into(),
                name: "x".into()
            })
        );
        for bad in [
            "",
            "abc",
            "abcdefg",
            "soukabc/x",
            "soukabcdefgh/",
            "soukabcdefgh/Bad Name",
            "souk0000000000/x",
            "../../etc/passwd",
            &"a".repeat(65),
        ] {
            assert!(
                matches!(bad.parse::<AgentRef>(), Err(ResolveError::Malformed(_))),
                "{bad:?} parsed"
            );
        }
    }
}
