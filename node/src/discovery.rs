//! Where inbound manifests are admitted or rejected, and where sync and search are served.
//!
//! [`Catalog::admit`] is the single gate for every manifest that reaches a node, by gossip,
//! sync or search: size, canonical encoding, signature, content rules, freshness, and seq
//! monotonic per (provider, agent name). Accepted manifests go into the in-memory
//! [`souk_index::Index`]; the caller persists them and reports the verdict to gossipsub.

use std::collections::BTreeSet;
use std::ops::Bound;

use souk_index::{Index, Inserted, Query};
use souk_protocol::discovery::{
    MAX_ENVELOPE_LEN, MAX_RESPONSE_LEN, MAX_SEARCH_RESULTS, MAX_SYNC_PAGE, SearchRequest,
    SyncRequest, SyncResponse,
};
use souk_protocol::manifest::{Manifest, ManifestError};
use souk_protocol::signed::{Signed, SignedError};
use souk_protocol::{Hash, NodeId};

/// Why a manifest was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// Larger than any manifest envelope may be.
    Oversized(usize),
    /// Not a canonical envelope.
    Malformed(String),
    /// The signature does not verify under the named provider.
    BadSignature(String),
    /// A content rule is broken.
    Invalid(String),
    /// Past its expiry.
    Expired,
    /// Issued in the future.
    NotYetValid,
    /// A seq at or below the one already held for this (provider, name): a replay.
    StaleSeq,
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rejection::Oversized(n) => write!(f, "oversized ({n} bytes)"),
            Rejection::Malformed(e) => write!(f, "malformed: {e}"),
            Rejection::BadSignature(e) => write!(f, "bad signature: {e}"),
            Rejection::Invalid(e) => write!(f, "invalid: {e}"),
            Rejection::Expired => f.write_str("expired"),
            Rejection::NotYetValid => f.write_str("issued in the future"),
            Rejection::StaleSeq => f.write_str("replayed or stale seq"),
        }
    }
}

/// The outcome of [`Catalog::admit`].
#[derive(Debug, Clone)]
pub enum Admission {
    /// New (or replacing a lower seq): keep, store, forward.
    Accepted {
        /// The manifest.
        manifest: Box<Signed<Manifest>>,
        /// The lower-seq manifest it replaced.
        replaced: Option<Hash>,
    },
    /// Already held: do not forward again, no penalty.
    Duplicate,
    /// Invalid: do not forward, penalise the sender.
    Rejected(Rejection),
}

/// Checks a manifest envelope completely (everything but seq order).
pub fn verify_envelope(bytes: &[u8], now_ms: u64) -> Result<Signed<Manifest>, Rejection> {
    if bytes.len() > MAX_ENVELOPE_LEN {
        return Err(Rejection::Oversized(bytes.len()));
    }
    Manifest::verify(bytes, now_ms).map_err(|e| match e {
        ManifestError::Signed(SignedError::Decode { source, .. }) => {
            Rejection::Malformed(source.to_string())
        }
        ManifestError::Signed(other) => Rejection::BadSignature(other.to_string()),
        ManifestError::Invalid { .. } => Rejection::Invalid(e.to_string()),
        ManifestError::Expired { .. } => Rejection::Expired,
        ManifestError::NotYetValid { .. } => Rejection::NotYetValid,
    })
}

/// The manifests a full node holds: the search index plus an id-ordered set for sync paging.
#[derive(Default)]
pub struct Catalog {
    index: Index,
    ids: BTreeSet<Hash>,
    /// Ids replaced by a changed version of their agent -> the id that replaced them (a
    /// client's saved id of a changed agent is answered with the current one).
    former: std::collections::HashMap<Hash, Hash>,
}

/// Most former ids a catalog remembers.
const MAX_FORMER_IDS: usize = 65_536;

impl Catalog {
    /// An empty catalog.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of manifests held.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// A held manifest.
    pub fn get(&self, id: &Hash) -> Option<&Signed<Manifest>> {
        self.index.get(id)
    }

    /// Verifies and admits a manifest envelope received from the network.
    ///
    /// Gossip and sync repeat themselves: an exact copy of a held envelope (same body, signer
    /// and signature) is a [`Admission::Duplicate`] without a second signature check. A
    /// different envelope with a held id (same body, other signature bytes) is verified in
    /// full, so a forged copy is still rejected and charged.
    pub fn admit(&mut self, bytes: &[u8], now_ms: u64) -> Admission {
        if bytes.len() <= MAX_ENVELOPE_LEN
            && let Ok(envelope) = Signed::<Manifest>::decode_bytes(bytes)
            && self.index.get(&envelope.id()) == Some(&envelope)
        {
            return Admission::Duplicate;
        }
        match verify_envelope(bytes, now_ms) {
            Ok(m) => self.insert_verified(m),
            Err(r) => Admission::Rejected(r),
        }
    }

    /// Admits a manifest that is already verified (own publications, the store at startup).
    pub fn insert_verified(&mut self, m: Signed<Manifest>) -> Admission {
        match self.index.insert(&m) {
            Inserted::New => {
                self.ids.insert(m.id());
                Admission::Accepted {
                    manifest: Box::new(m),
                    replaced: None,
                }
            }
            Inserted::Replaced(old) => {
                self.ids.remove(&old);
                self.ids.insert(m.id());
                if old != m.id() && self.former.len() < MAX_FORMER_IDS {
                    self.former.insert(old, m.id());
                }
                self.former.remove(&m.id());
                Admission::Accepted {
                    manifest: Box::new(m),
                    replaced: Some(old),
                }
            }
            Inserted::Duplicate => Admission::Duplicate,
            Inserted::Stale => Admission::Rejected(Rejection::StaleSeq),
        }
    }

    /// The id held now for the agent whose manifest `id` was replaced by a changed version
    /// (following later changes too), if the catalog remembers it.
    pub fn successor(&self, id: &Hash) -> Option<Hash> {
        let mut at = *self.former.get(id)?;
        for _ in 0..16 {
            if self.ids.contains(&at) {
                return Some(at);
            }
            at = *self.former.get(&at)?;
        }
        None
    }

    /// Removes one manifest.
    pub fn remove(&mut self, id: &Hash) -> bool {
        self.ids.remove(id);
        self.index.remove(id)
    }

    /// Drops every manifest expired at `now_ms`.
    pub fn sweep(&mut self, now_ms: u64) -> Vec<Hash> {
        let gone = self.index.remove_expired(now_ms);
        for id in &gone {
            self.ids.remove(id);
        }
        gone
    }

    /// One page of the sync protocol.
    pub fn sync_page(&self, req: &SyncRequest) -> SyncResponse {
        let limit = req.limit.clamp(1, MAX_SYNC_PAGE) as usize;
        let lower = match &req.after {
            Some(after) => Bound::Excluded(*after),
            None => Bound::Unbounded,
        };
        let mut manifests = Vec::with_capacity(limit);
        let mut last = None;
        let mut more = false;
        // Stay well under the response limit whatever the manifests' sizes.
        let budget = MAX_RESPONSE_LEN - 64 * 1024;
        let mut bytes = 0usize;
        for id in self.ids.range((lower, Bound::Unbounded)) {
            let Some(m) = self.index.get(id) else {
                continue;
            };
            let env = m.to_bytes();
            if manifests.len() == limit || (bytes + env.len() + 8 > budget && !manifests.is_empty())
            {
                more = true;
                break;
            }
            bytes += env.len() + 8;
            manifests.push(env);
            last = Some(*id);
        }
        SyncResponse {
            manifests,
            next: if more { last } else { None },
        }
    }

    /// The held manifest ids whose hex form starts with `prefix` (lowercase hex digits), in
    /// ascending order, at most `max`.
    pub fn ids_with_prefix(&self, prefix: &str, max: usize) -> Vec<Hash> {
        // The smallest id with this prefix: the prefix's digits, then zeros.
        let mut low = [0u8; 32];
        for (i, c) in prefix.bytes().take(64).enumerate() {
            let Some(d) = (c as char).to_digit(16) else {
                return Vec::new();
            };
            low[i / 2] |= (d as u8) << if i % 2 == 0 { 4 } else { 0 };
        }
        self.ids
            .range(Hash(low)..)
            .take_while(|id| id.to_hex().starts_with(prefix))
            .take(max)
            .copied()
            .collect()
    }

    /// Sets an agent's reputation, used in ranking (`None`: unknown).
    pub fn set_agent_reputation(
        &mut self,
        provider: NodeId,
        name: &str,
        rep: Option<souk_index::AgentReputation>,
    ) {
        self.index.set_agent_reputation(provider, name, rep);
    }

    /// Flags a provider: its agents are hidden from searches that do not include flagged
    /// providers.
    pub fn set_flagged(&mut self, provider: NodeId) {
        self.index.set_flagged(provider, true);
    }

    /// Runs a search request against the index.
    pub fn search(&self, req: &SearchRequest, now_ms: u64) -> Vec<Signed<Manifest>> {
        let query = Query {
            text: (!req.text.trim().is_empty()).then(|| req.text.clone()),
            capabilities: req.capabilities.clone(),
            max_price: req.max_price,
            currency: req.currency.clone(),
            provider: None,
            provider_prefix: req.provider.clone(),
            limit: req.limit.clamp(1, MAX_SEARCH_RESULTS) as usize,
            // Filtered on verified figures by the caller (`search_ranked`), on every node.
            min_success: None,
            include_flagged: req.include_flagged,
        };
        self.index
            .search(&query, now_ms)
            .into_iter()
            .map(|h| h.manifest)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use souk_protocol::vectors::{T0, manifest_body, provider_key};

    fn signed(seq: u64) -> Signed<Manifest> {
        let k = provider_key();
        let mut m = manifest_body(&k);
        m.seq = seq;
        Signed::sign(m, &k)
    }

    #[test]
    fn admission_rules() {
        let mut c = Catalog::new();
        let now = T0 + 1000;
        let m5 = signed(5);
        assert!(matches!(
            c.admit(&m5.to_bytes(), now),
            Admission::Accepted { replaced: None, .. }
        ));
        assert!(matches!(c.admit(&m5.to_bytes(), now), Admission::Duplicate));
        // A copy of a held body under someone else's signature is a forgery, not a duplicate.
        let mut other_sig = m5.to_bytes();
        let n = other_sig.len();
        other_sig[n - 1] ^= 1;
        assert!(matches!(
            c.admit(&other_sig, now),
            Admission::Rejected(Rejection::BadSignature(_))
        ));
        assert!(matches!(
            c.admit(&signed(4).to_bytes(), now),
            Admission::Rejected(Rejection::StaleSeq)
        ));
        let m6 = signed(6);
        match c.admit(&m6.to_bytes(), now) {
            Admission::Accepted { replaced, .. } => assert_eq!(replaced, Some(m5.id())),
            other => panic!("{other:?}"),
        }
        let mut forged = m6.to_bytes();
        let n = forged.len();
        forged[n - 1] ^= 1;
        assert!(matches!(
            c.admit(&forged, now),
            Admission::Rejected(Rejection::BadSignature(_))
        ));
        let mut non_canonical = vec![0x98, 0x03];
        non_canonical.extend_from_slice(&m6.to_bytes()[1..]);
        assert!(matches!(
            c.admit(&non_canonical, now),
            Admission::Rejected(Rejection::Malformed(_))
        ));
        let expired_at = m6.body().expires_at;
        assert!(matches!(
            c.admit(&signed(7).to_bytes(), expired_at),
            Admission::Rejected(Rejection::Expired)
        ));
        assert!(matches!(
            c.admit(&vec![0u8; MAX_ENVELOPE_LEN + 1], now),
            Admission::Rejected(Rejection::Oversized(_))
        ));
        assert_eq!(c.len(), 1);
        assert_eq!(c.sweep(expired_at), vec![m6.id()]);
        assert!(c.is_empty());
    }

    #[test]
    fn sync_pages_cover_everything_once() {
        let mut c = Catalog::new();
        for i in 0..25u8 {
            let k = souk_protocol::Keypair::from_seed(&[i + 1; 32]);
            let mut m = manifest_body(&k);
            m.provider = k.id();
            assert!(matches!(
                c.insert_verified(Signed::sign(m, &k)),
                Admission::Accepted { .. }
            ));
        }
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let page = c.sync_page(&SyncRequest { after, limit: 7 });
            seen.extend(page.manifests);
            match page.next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        assert_eq!(seen.len(), 25);
        let ids: BTreeSet<Hash> = seen
            .iter()
            .filter_map(|b| Signed::<Manifest>::decode_bytes(b).ok().map(|m| m.id()))
            .collect();
        assert_eq!(ids.len(), 25);
    }
}
