//! Wire messages of manifest discovery: the gossip topic, the sync protocol a late joiner
//! catches up with, and the search protocol light nodes use.
//! Specified in `spec/discovery.md`.
//!
//! Manifests always travel as their signed envelope bytes (never re-serialized), so every
//! receiver verifies exactly what the provider signed. Nothing here is signed: a peer that
//! answers a sync or search request can only choose *which* valid manifests to return, and
//! the receiver verifies each one.

use crate::encoding::{self, Canonical, DecodeError, DecodeErrorKind, Encoder, Reader};
use crate::hash::Hash;

/// The gossipsub topic carrying signed manifest envelopes.
pub const MANIFEST_TOPIC: &str = "souk/manifests/1";
/// The request-response protocol for manifest sync.
pub const SYNC_PROTOCOL: &str = "/souk/manifest-sync/1";
/// The request-response protocol for search.
pub const SEARCH_PROTOCOL: &str = "/souk/search/1";
/// Format version of discovery messages.
pub const DISCOVERY_VERSION: u64 = 1;
/// Most manifests in one sync page.
pub const MAX_SYNC_PAGE: u32 = 256;
/// Most results in one search response.
pub const MAX_SEARCH_RESULTS: u32 = 100;
/// Largest request on either protocol.
pub const MAX_REQUEST_LEN: usize = 8 * 1024;
/// Largest response on either protocol: a page of manifests.
pub const MAX_RESPONSE_LEN: usize = 8 * 1024 * 1024;
/// Largest manifest envelope accepted anywhere (body limit plus envelope overhead).
pub const MAX_ENVELOPE_LEN: usize = crate::manifest::MAX_MANIFEST_LEN + 128;

/// Ask a peer for the manifests it holds, in id order, after a cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncRequest {
    /// Return manifests whose id is strictly greater than this (`None`: from the start).
    pub after: Option<Hash>,
    /// At most this many (capped at [`MAX_SYNC_PAGE`]).
    pub limit: u32,
}

/// A page of manifests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncResponse {
    /// Signed manifest envelopes, in ascending id order.
    pub manifests: Vec<Vec<u8>>,
    /// The cursor for the next page, or `None` when this was the last.
    pub next: Option<Hash>,
}

/// A search query sent to a full node.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SearchRequest {
    /// Free text over agent names and descriptions (may be empty).
    pub text: String,
    /// Capability tags that must all be present.
    pub capabilities: Vec<String>,
    /// Highest acceptable per-hire price, in micro-units.
    pub max_price: Option<u64>,
    /// Only this currency.
    pub currency: Option<String>,
    /// At most this many results (capped at [`MAX_SEARCH_RESULTS`]).
    pub limit: u32,
}

/// Search results, best first.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SearchResponse {
    /// Signed manifest envelopes.
    pub manifests: Vec<Vec<u8>>,
}

fn envelopes(r: &mut Reader<'_>, max: usize) -> Result<Vec<Vec<u8>>, DecodeError> {
    let at = r.offset();
    let n = r.array()?;
    if n > max {
        return Err(DecodeError {
            offset: at,
            kind: DecodeErrorKind::TooLarge("too many manifests"),
        });
    }
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let at = r.offset();
        let b = r.bytes()?;
        if b.len() > MAX_ENVELOPE_LEN {
            return Err(DecodeError {
                offset: at,
                kind: DecodeErrorKind::TooLarge("manifest envelope"),
            });
        }
        out.push(b.to_vec());
    }
    r.leave();
    Ok(out)
}

fn encode_envelopes(enc: &mut Encoder, items: &[Vec<u8>]) {
    enc.array(items.len());
    for m in items {
        enc.bytes(m);
    }
}

impl Canonical for SyncRequest {
    fn encode(&self, enc: &mut Encoder) {
        enc.array(3);
        enc.u64(DISCOVERY_VERSION);
        enc.option(self.after.as_ref());
        enc.u64(u64::from(self.limit));
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.array_of(3)?;
        r.version(DISCOVERY_VERSION)?;
        let v = SyncRequest {
            after: r.option()?,
            limit: r.u32()?,
        };
        r.leave();
        Ok(v)
    }
}

impl Canonical for SyncResponse {
    fn encode(&self, enc: &mut Encoder) {
        enc.array(3);
        enc.u64(DISCOVERY_VERSION);
        encode_envelopes(enc, &self.manifests);
        enc.option(self.next.as_ref());
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.array_of(3)?;
        r.version(DISCOVERY_VERSION)?;
        let v = SyncResponse {
            manifests: envelopes(r, MAX_SYNC_PAGE as usize)?,
            next: r.option()?,
        };
        r.leave();
        Ok(v)
    }
}

impl Canonical for SearchRequest {
    fn encode(&self, enc: &mut Encoder) {
        enc.array(6);
        enc.u64(DISCOVERY_VERSION);
        enc.text(&self.text);
        enc.text_list(&self.capabilities);
        enc.option(self.max_price.as_ref());
        match &self.currency {
            Some(c) => enc.text(c),
            None => enc.null(),
        }
        enc.u64(u64::from(self.limit));
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.array_of(6)?;
        r.version(DISCOVERY_VERSION)?;
        let text = r.text_max(512, "search text")?;
        let capabilities = r.text_list(16, 48, "capabilities")?;
        let max_price = r.option()?;
        let currency = if r.null()? {
            None
        } else {
            Some(r.text_max(12, "currency")?)
        };
        let limit = r.u32()?;
        r.leave();
        Ok(SearchRequest {
            text,
            capabilities,
            max_price,
            currency,
            limit,
        })
    }
}

impl Canonical for SearchResponse {
    fn encode(&self, enc: &mut Encoder) {
        enc.array(2);
        enc.u64(DISCOVERY_VERSION);
        encode_envelopes(enc, &self.manifests);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.array_of(2)?;
        r.version(DISCOVERY_VERSION)?;
        let v = SearchResponse {
            manifests: envelopes(r, MAX_SEARCH_RESULTS as usize)?,
        };
        r.leave();
        Ok(v)
    }
}

/// Encodes any discovery message.
pub fn to_bytes<T: Canonical>(msg: &T) -> Vec<u8> {
    encoding::encode(msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip() {
        let req = SyncRequest {
            after: Some(Hash::digest(b"x")),
            limit: 10,
        };
        let resp = SyncResponse {
            manifests: vec![vec![1, 2, 3], vec![]],
            next: None,
        };
        let search = SearchRequest {
            text: "csv report".into(),
            capabilities: vec!["csv".into()],
            max_price: Some(5_000_000),
            currency: None,
            limit: 20,
        };
        let results = SearchResponse {
            manifests: vec![vec![9; 40]],
        };
        assert_eq!(
            encoding::decode::<SyncRequest>(&to_bytes(&req), MAX_REQUEST_LEN),
            Ok(req)
        );
        assert_eq!(
            encoding::decode::<SyncResponse>(&to_bytes(&resp), MAX_RESPONSE_LEN),
            Ok(resp)
        );
        assert_eq!(
            encoding::decode::<SearchRequest>(&to_bytes(&search), MAX_REQUEST_LEN),
            Ok(search)
        );
        assert_eq!(
            encoding::decode::<SearchResponse>(&to_bytes(&results), MAX_RESPONSE_LEN),
            Ok(results)
        );
    }

    #[test]
    fn oversized_pages_are_rejected() {
        let resp = SyncResponse {
            manifests: vec![vec![0]; MAX_SYNC_PAGE as usize + 1],
            next: None,
        };
        assert!(encoding::decode::<SyncResponse>(&to_bytes(&resp), MAX_RESPONSE_LEN).is_err());
    }
}
