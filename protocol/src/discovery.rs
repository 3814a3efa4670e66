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
    /// Only providers whose node id in text form starts with this (a full node id or a
    /// prefix, 1 to [`MAX_PROVIDER_PREFIX`] bytes). On the wire an optional seventh item,
    /// omitted when `None`, so requests without it are the version-1 six-item form.
    pub provider: Option<String>,
    /// Also return agents of flagged providers (a verified equivocation proof against them is
    /// held), which are hidden by default. On the wire an optional eighth item, present (as
    /// `true`) only when set, with the seventh item then `null` when there is no provider
    /// filter.
    pub include_flagged: bool,
}

/// Longest `provider` filter in a search request: the length of a node id in text form.
pub const MAX_PROVIDER_PREFIX: usize = 56;

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
        let items = match (self.include_flagged, self.provider.is_some()) {
            (true, _) => 8,
            (false, true) => 7,
            (false, false) => 6,
        };
        enc.array(items);
        enc.u64(DISCOVERY_VERSION);
        enc.text(&self.text);
        enc.text_list(&self.capabilities);
        enc.option(self.max_price.as_ref());
        match &self.currency {
            Some(c) => enc.text(c),
            None => enc.null(),
        }
        enc.u64(u64::from(self.limit));
        match &self.provider {
            Some(p) => enc.text(p),
            None if self.include_flagged => enc.null(),
            None => {}
        }
        if self.include_flagged {
            enc.bool(true);
        }
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let start = r.offset();
        let items = r.array()?;
        if !(6..=8).contains(&items) {
            return Err(DecodeError {
                offset: start,
                kind: DecodeErrorKind::WrongArity {
                    expected: 8,
                    found: items as u64,
                },
            });
        }
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
        // In the eight-item form the filter may be null; in the seven-item form it must not
        // be (that would be a second encoding of the six-item form).
        let provider = if items == 8 && r.null()? {
            None
        } else if items >= 7 {
            let at = r.offset();
            let p = r.text_max(MAX_PROVIDER_PREFIX, "provider filter")?;
            if p.is_empty() {
                return Err(DecodeError {
                    offset: at,
                    // An empty filter would be a second encoding of "no filter".
                    kind: DecodeErrorKind::WrongLength {
                        expected: 1,
                        found: 0,
                    },
                });
            }
            Some(p)
        } else {
            None
        };
        let include_flagged = if items == 8 {
            let at = r.offset();
            if !r.bool()? {
                return Err(DecodeError {
                    offset: at,
                    // `false` would be a second encoding of the shorter forms.
                    kind: DecodeErrorKind::UnknownCode {
                        what: "include-flagged (only true is encoded)",
                        code: 0,
                    },
                });
            }
            true
        } else {
            false
        };
        r.leave();
        Ok(SearchRequest {
            text,
            capabilities,
            max_price,
            currency,
            limit,
            provider,
            include_flagged,
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
            provider: None,
            include_flagged: false,
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

    /// The version-1 six-item form (no provider filter), written out by hand.
    #[test]
    fn six_item_requests_still_decode_and_provider_is_a_seventh() {
        // [1, "ab", [], null, null, 5]
        let old = [0x86, 0x01, 0x62, b'a', b'b', 0x80, 0xf6, 0xf6, 0x05];
        let req = SearchRequest {
            text: "ab".into(),
            limit: 5,
            ..SearchRequest::default()
        };
        assert_eq!(
            encoding::decode::<SearchRequest>(&old, MAX_REQUEST_LEN),
            Ok(req.clone())
        );
        assert_eq!(to_bytes(&req), old, "no filter encodes the six-item form");
        let with = SearchRequest {
            provider: Some("souka".into()),
            ..req
        };
        let mut new = old.to_vec();
        new[0] = 0x87;
        new.extend([0x65, b's', b'o', b'u', b'k', b'a']);
        assert_eq!(to_bytes(&with), new);
        assert_eq!(
            encoding::decode::<SearchRequest>(&new, MAX_REQUEST_LEN),
            Ok(with)
        );
        // An empty or null seventh item, or a longer one, is refused.
        let mut empty = old.to_vec();
        empty[0] = 0x87;
        empty.push(0x60);
        assert!(encoding::decode::<SearchRequest>(&empty, MAX_REQUEST_LEN).is_err());
        let mut null = old.to_vec();
        null[0] = 0x87;
        null.push(0xf6);
        assert!(encoding::decode::<SearchRequest>(&null, MAX_REQUEST_LEN).is_err());
        let mut long = old.to_vec();
        long[0] = 0x87;
        long.extend([0x78, 57]);
        long.extend([b'a'; 57]);
        assert!(encoding::decode::<SearchRequest>(&long, MAX_REQUEST_LEN).is_err());
        let mut eight = new.clone();
        eight[0] = 0x88;
        eight.push(0x01);
        assert!(encoding::decode::<SearchRequest>(&eight, MAX_REQUEST_LEN).is_err());
    }

    proptest::proptest! {
        /// Every request round-trips, with or without the provider filter.
        #[test]
        fn search_requests_round_trip(
            text in "[a-z ]{0,40}",
            caps in proptest::collection::vec("[a-z-]{0,12}", 0..4),
            max_price in proptest::option::of(proptest::num::u64::ANY),
            currency in proptest::option::of("[A-Z]{0,12}"),
            limit in proptest::num::u32::ANY,
            provider in proptest::option::of("[a-z2-7]{1,56}"),
            include_flagged in proptest::bool::ANY,
        ) {
            let req = SearchRequest {
                text, capabilities: caps, max_price, currency, limit, provider, include_flagged,
            };
            let bytes = to_bytes(&req);
            let head = match (req.include_flagged, req.provider.is_some()) {
                (true, _) => 0x88,
                (false, true) => 0x87,
                (false, false) => 0x86,
            };
            proptest::prop_assert_eq!(bytes[0], head);
            proptest::prop_assert_eq!(
                encoding::decode::<SearchRequest>(&bytes, MAX_REQUEST_LEN),
                Ok(req)
            );
        }
    }

    #[test]
    fn search_request_forms_have_one_encoding_each() {
        let base = SearchRequest {
            text: String::new(),
            capabilities: vec![],
            max_price: None,
            currency: None,
            limit: 5,
            provider: None,
            include_flagged: true,
        };
        let bytes = to_bytes(&base);
        assert_eq!(
            &bytes[bytes.len() - 2..],
            &[0xf6, 0xf5],
            "null provider, then true"
        );
        assert_eq!(encoding::decode(&bytes, MAX_REQUEST_LEN), Ok(base.clone()));
        // `false` is not an encoding: the six-item form says it.
        let mut with_false = bytes.clone();
        let last = with_false.len() - 1;
        with_false[last] = 0xf4;
        assert!(encoding::decode::<SearchRequest>(&with_false, MAX_REQUEST_LEN).is_err());
        // A null provider in the seven-item form is a second encoding of the six-item form.
        let mut seven = bytes[..bytes.len() - 1].to_vec();
        seven[0] = 0x87;
        assert!(encoding::decode::<SearchRequest>(&seven, MAX_REQUEST_LEN).is_err());
        // Nine items are not a search request.
        let mut nine = bytes.clone();
        nine[0] = 0x89;
        nine.push(0xf5);
        assert!(encoding::decode::<SearchRequest>(&nine, MAX_REQUEST_LEN).is_err());
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
