//! Wire messages that carry outcome records and equivocation proofs between nodes: the two
//! gossip topics and the `/souk/outcome-sync/1` request-response protocol (a joining full
//! node catches up; a light node fetches one provider's records). Specified in
//! `spec/discovery.md`.
//!
//! Records and proofs travel as their canonical bytes and are never re-serialized; nothing
//! here is signed or verified: each item is checked by the receiver
//! ([`crate::outcome::OutcomeRecord::verify_bytes`],
//! [`crate::equivocation::EquivocationProof::verify_bytes`]).

use crate::encoding::{self, Canonical, DecodeError, DecodeErrorKind, Encoder, Reader};
use crate::hash::Hash;
use crate::identity::NodeId;

/// The gossipsub topic carrying outcome records.
pub const OUTCOME_TOPIC: &str = "souk/outcomes/1";
/// The gossipsub topic carrying equivocation proofs.
pub const EQUIVOCATION_TOPIC: &str = "souk/equivocations/1";
/// The request-response protocol for outcome and proof sync.
pub const OUTCOME_SYNC_PROTOCOL: &str = "/souk/outcome-sync/1";
/// Format version of outcome-sync messages.
pub const OUTCOME_SYNC_VERSION: u64 = 1;
/// Most items in one page.
pub const MAX_OUTCOME_PAGE: u32 = 256;
/// Largest item in a page: the larger of a record and a proof.
pub const MAX_ITEM_LEN: usize = max(
    crate::outcome::MAX_OUTCOME_LEN,
    crate::equivocation::MAX_PROOF_LEN,
);

const fn max(a: usize, b: usize) -> usize {
    if a > b { a } else { b }
}

/// What a sync request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncKind {
    /// Every outcome record, by hire id (wire kind 0).
    Outcomes,
    /// Every equivocation proof, by provider (wire kind 1).
    Proofs,
    /// The outcome records of one provider, by hire id (wire kind 2; light nodes).
    Provider(NodeId),
}

/// Ask a full node for records or proofs in key order after a cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutcomeSyncRequest {
    /// What to page through.
    pub kind: SyncKind,
    /// Keys strictly greater than this (hire ids, or provider keys for proofs); `None`: from
    /// the start.
    pub after: Option<Hash>,
    /// At most this many (served as `clamp(limit, 1, 256)`).
    pub limit: u32,
}

/// A page of records or proofs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OutcomeSyncResponse {
    /// Canonical record or proof bytes, in ascending key order.
    pub items: Vec<Vec<u8>>,
    /// The cursor for the next page (the key of the last item), or `None` when this was the
    /// last.
    pub next: Option<Hash>,
}

impl Canonical for OutcomeSyncRequest {
    fn encode(&self, enc: &mut Encoder) {
        match &self.kind {
            SyncKind::Outcomes | SyncKind::Proofs => {
                enc.array(4);
                enc.u64(OUTCOME_SYNC_VERSION);
                enc.u64(u64::from(self.kind == SyncKind::Proofs));
            }
            SyncKind::Provider(p) => {
                enc.array(5);
                enc.u64(OUTCOME_SYNC_VERSION);
                enc.u64(2);
                enc.bytes(p.as_bytes());
            }
        }
        enc.option(self.after.as_ref());
        enc.u64(u64::from(self.limit));
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let start = r.offset();
        let items = r.array()?;
        if items != 4 && items != 5 {
            return Err(DecodeError {
                offset: start,
                kind: DecodeErrorKind::WrongArity {
                    expected: 4,
                    found: items as u64,
                },
            });
        }
        r.version(OUTCOME_SYNC_VERSION)?;
        let at = r.offset();
        let code = r.u64()?;
        let kind = match (code, items) {
            (0, 4) => SyncKind::Outcomes,
            (1, 4) => SyncKind::Proofs,
            (2, 5) => SyncKind::Provider(NodeId::decode(r)?),
            (0..=2, _) => {
                return Err(DecodeError {
                    offset: start,
                    kind: DecodeErrorKind::WrongArity {
                        expected: if code == 2 { 5 } else { 4 },
                        found: items as u64,
                    },
                });
            }
            _ => return Err(Reader::unknown_code(at, "outcome sync kind", code)),
        };
        let after = r.option()?;
        let limit = r.u32()?;
        r.leave();
        Ok(OutcomeSyncRequest { kind, after, limit })
    }
}

impl Canonical for OutcomeSyncResponse {
    fn encode(&self, enc: &mut Encoder) {
        enc.array(3);
        enc.u64(OUTCOME_SYNC_VERSION);
        enc.array(self.items.len());
        for item in &self.items {
            enc.bytes(item);
        }
        enc.option(self.next.as_ref());
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.array_of(3)?;
        r.version(OUTCOME_SYNC_VERSION)?;
        let at = r.offset();
        let n = r.array()?;
        if n > MAX_OUTCOME_PAGE as usize {
            return Err(DecodeError {
                offset: at,
                kind: DecodeErrorKind::TooLarge("too many items"),
            });
        }
        let mut items = Vec::with_capacity(n);
        for _ in 0..n {
            items.push(r.bytes_max(MAX_ITEM_LEN, "outcome sync item")?.to_vec());
        }
        r.leave();
        let next = r.option()?;
        r.leave();
        Ok(OutcomeSyncResponse { items, next })
    }
}

/// Encodes an outcome-sync message.
pub fn to_bytes<T: Canonical>(msg: &T) -> Vec<u8> {
    encoding::encode(msg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::{MAX_REQUEST_LEN, MAX_RESPONSE_LEN};

    fn round_trip(req: OutcomeSyncRequest) {
        let bytes = to_bytes(&req);
        assert_eq!(
            encoding::decode::<OutcomeSyncRequest>(&bytes, MAX_REQUEST_LEN),
            Ok(req)
        );
    }

    #[test]
    fn requests_have_the_documented_bytes() {
        let first = OutcomeSyncRequest {
            kind: SyncKind::Outcomes,
            after: None,
            limit: 256,
        };
        assert_eq!(hex::encode(to_bytes(&first)), "840100f6190100");
        let proofs = OutcomeSyncRequest {
            kind: SyncKind::Proofs,
            after: Some(Hash([7; 32])),
            limit: 5,
        };
        round_trip(first);
        round_trip(proofs);
        let provider = crate::Keypair::from_seed(&[1; 32]).id();
        let by_provider = OutcomeSyncRequest {
            kind: SyncKind::Provider(provider),
            after: None,
            limit: 1,
        };
        let bytes = to_bytes(&by_provider);
        assert_eq!(&bytes[..5], &[0x85, 0x01, 0x02, 0x58, 0x20]);
        round_trip(by_provider);
    }

    #[test]
    fn bad_requests_fail() {
        // Unknown kind, kind 2 without a provider, kind 0 with one.
        for hex_msg in ["840103f601", "840102f601", "85010058200000"] {
            let bytes = hex::decode(hex_msg).unwrap_or_else(|e| panic!("{e}"));
            assert!(
                encoding::decode::<OutcomeSyncRequest>(&bytes, MAX_REQUEST_LEN).is_err(),
                "{hex_msg}"
            );
        }
    }

    #[test]
    fn responses_round_trip_and_pages_are_bounded() {
        let resp = OutcomeSyncResponse {
            items: vec![vec![1, 2, 3], vec![]],
            next: Some(Hash([9; 32])),
        };
        assert_eq!(
            encoding::decode::<OutcomeSyncResponse>(&to_bytes(&resp), MAX_RESPONSE_LEN),
            Ok(resp)
        );
        assert_eq!(
            hex::encode(to_bytes(&OutcomeSyncResponse::default())),
            "830180f6"
        );
        let too_many = OutcomeSyncResponse {
            items: vec![vec![0]; MAX_OUTCOME_PAGE as usize + 1],
            next: None,
        };
        assert!(
            encoding::decode::<OutcomeSyncResponse>(&to_bytes(&too_many), MAX_RESPONSE_LEN)
                .is_err()
        );
        let too_big = OutcomeSyncResponse {
            items: vec![vec![0; MAX_ITEM_LEN + 1]],
            next: None,
        };
        assert!(
            encoding::decode::<OutcomeSyncResponse>(&to_bytes(&too_big), MAX_RESPONSE_LEN).is_err()
        );
    }
}
