//! Wire messages of the hire protocol `/souk/hire/1`: the calls a client makes directly to a
//! provider's node and the provider's replies (`spec/hiring.md`).
//!
//! Negotiation is stateless on the provider side: the client sends back the whole contract
//! (request, the provider's own signed proposal, the client's acceptance), so a provider that
//! restarted mid-negotiation can still check and accept it. Receipts are pulled with a
//! long-poll [`HireCall::Fetch`] from the client's last seq, which is also how a client that
//! was offline catches up. Calls other than `Request` and `Accept` must come from the hire's
//! client: the libp2p connection authenticates the caller's node id.

use crate::encoding::{self, Canonical, DecodeError, DecodeErrorKind, Encoder, Reader};
use crate::hash::Hash;
use crate::receipt::Disclosure;

/// The request-response protocol name.
pub const HIRE_PROTOCOL: &str = "/souk/hire/1";
/// Format version of hire messages.
pub const HIRING_VERSION: u64 = 1;
/// Largest job input carried in an `Accept` call.
pub const MAX_INPUT_LEN: usize = 16 * 1024 * 1024;
/// Largest answer to a question.
pub const MAX_ANSWER_LEN: usize = 1024 * 1024;
/// Largest job output carried in a `Receipts` reply.
pub const MAX_OUTPUT_LEN: usize = 16 * 1024 * 1024;
/// Most entries in one `Receipts` reply.
pub const MAX_FETCH_ENTRIES: usize = 512;
/// Longest a provider holds a `Fetch` open waiting for new entries.
pub const MAX_FETCH_WAIT_MS: u64 = 25_000;
/// Most credential grants in an `Accept` call.
pub const MAX_ACCEPT_CREDENTIALS: usize = crate::credential::MAX_GRANTS;
/// Largest credential grant envelope in an `Accept` call.
pub const MAX_ACCEPT_CREDENTIAL_LEN: usize = crate::credential::MAX_GRANT_ENVELOPE_LEN;
/// Largest call on the wire: the input, up to 16 grants of at most 48 KiB + 128, and 64 KiB
/// for the rest.
pub const MAX_CALL_LEN: usize = MAX_INPUT_LEN + 1024 * 1024;
/// Largest reply on the wire.
pub const MAX_REPLY_LEN: usize = MAX_OUTPUT_LEN + 8 * 1024 * 1024;

/// A call from a client to a provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HireCall {
    /// Ask for terms: a signed `HireRequest` envelope.
    Request {
        /// The signed request envelope.
        request: Vec<u8>,
    },
    /// Accept an offer or counter: the full contract plus the job input it commits to, and
    /// the client's credential grants for the hire.
    Accept {
        /// Canonical contract bytes (request, proposal, acceptance).
        contract: Vec<u8>,
        /// The job input.
        input: Vec<u8>,
        /// The salt of the request's input commitment.
        salt: [u8; 32],
        /// Signed credential grant envelopes (`Signed<CredentialGrant>`), at most one per
        /// slot, at most [`MAX_ACCEPT_CREDENTIALS`]; empty for a hire without credentials.
        credentials: Vec<Vec<u8>>,
    },
    /// Receipts from `from_seq` on; the provider may hold the call up to `wait_ms` until
    /// there is at least one.
    Fetch {
        /// The hire.
        hire_id: Hash,
        /// First seq wanted.
        from_seq: u64,
        /// How long to wait for new entries (capped at [`MAX_FETCH_WAIT_MS`]).
        wait_ms: u64,
    },
    /// The client's answer to the agent's question.
    Answer {
        /// The hire.
        hire_id: Hash,
        /// The answer (JSON text).
        answer: Vec<u8>,
    },
    /// Stop the hire.
    Cancel {
        /// The hire.
        hire_id: Hash,
        /// Why.
        reason: String,
    },
    /// Deliver the client's countersigned attestation.
    Settle {
        /// The signed attestation envelope.
        attestation: Vec<u8>,
    },
}

/// Why a call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallError {
    /// No such hire on this node.
    UnknownHire,
    /// The caller is not this hire's client.
    NotYourHire,
    /// The call is malformed or breaks a rule.
    BadCall,
    /// The contract does not verify or does not match this provider's proposal.
    InvalidContract,
    /// The offer lapsed or the agent is at capacity.
    Unavailable,
    /// The call does not fit the hire's state (e.g. an answer with no question).
    WrongState,
    /// The provider failed internally.
    Internal,
    /// The provider is overloaded (its queue of calls is full) or the hire's job is between
    /// runs; the same call may succeed shortly.
    Busy,
}

impl CallError {
    const ALL: [(CallError, u64, &'static str); 8] = [
        (CallError::UnknownHire, 0, "unknown-hire"),
        (CallError::NotYourHire, 1, "not-your-hire"),
        (CallError::BadCall, 2, "bad-call"),
        (CallError::InvalidContract, 3, "invalid-contract"),
        (CallError::Unavailable, 4, "unavailable"),
        (CallError::WrongState, 5, "wrong-state"),
        (CallError::Internal, 6, "internal"),
        (CallError::Busy, 7, "busy"),
    ];
    /// Wire code.
    pub fn code(self) -> u64 {
        Self::ALL.iter().find(|x| x.0 == self).map_or(6, |x| x.1)
    }
    /// Kebab-case name.
    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|x| x.0 == self)
            .map_or("internal", |x| x.2)
    }
    fn from_code(c: u64) -> Option<Self> {
        Self::ALL.iter().find(|x| x.1 == c).map(|x| x.0)
    }
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A provider's reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HireReply {
    /// A signed `Offer` envelope.
    Offer(Vec<u8>),
    /// A signed `Counter` envelope.
    Counter(Vec<u8>),
    /// A signed `Decline` envelope.
    Decline(Vec<u8>),
    /// The contract is stored; the hire will start.
    Accepted {
        /// The hire id.
        hire_id: Hash,
    },
    /// Receipt entries from the requested seq, with the client's private payloads.
    Receipts {
        /// Signed entry envelopes, consecutive from the requested seq.
        entries: Vec<Vec<u8>>,
        /// Openings of those entries' commitments (the client may disclose them later).
        disclosures: Vec<Disclosure>,
        /// The job output, once a `completed` entry is among `entries`.
        output: Option<Vec<u8>>,
    },
    /// Done.
    Ok,
    /// The call failed.
    Error {
        /// Why.
        code: CallError,
        /// Details.
        message: String,
    },
}

impl Canonical for HireCall {
    fn encode(&self, enc: &mut Encoder) {
        match self {
            HireCall::Request { request } => {
                enc.array(3);
                enc.u64(HIRING_VERSION);
                enc.u64(0);
                enc.bytes(request);
            }
            HireCall::Accept {
                contract,
                input,
                salt,
                credentials,
            } => {
                // Without credentials the call keeps its original 5-element form.
                enc.array(if credentials.is_empty() { 5 } else { 6 });
                enc.u64(HIRING_VERSION);
                enc.u64(1);
                enc.bytes(contract);
                enc.bytes(input);
                enc.bytes(salt);
                if !credentials.is_empty() {
                    enc.array(credentials.len());
                    for c in credentials {
                        enc.bytes(c);
                    }
                }
            }
            HireCall::Fetch {
                hire_id,
                from_seq,
                wait_ms,
            } => {
                enc.array(5);
                enc.u64(HIRING_VERSION);
                enc.u64(2);
                hire_id.encode(enc);
                enc.u64(*from_seq);
                enc.u64(*wait_ms);
            }
            HireCall::Answer { hire_id, answer } => {
                enc.array(4);
                enc.u64(HIRING_VERSION);
                enc.u64(3);
                hire_id.encode(enc);
                enc.bytes(answer);
            }
            HireCall::Cancel { hire_id, reason } => {
                enc.array(4);
                enc.u64(HIRING_VERSION);
                enc.u64(4);
                hire_id.encode(enc);
                enc.text(reason);
            }
            HireCall::Settle { attestation } => {
                enc.array(3);
                enc.u64(HIRING_VERSION);
                enc.u64(5);
                enc.bytes(attestation);
            }
        }
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let start = r.offset();
        let len = r.array()? as u64;
        r.version(HIRING_VERSION)?;
        let at = r.offset();
        let kind = r.u64()?;
        let want = match kind {
            0 | 5 => 3,
            1 if len == 6 => 6,
            1 | 2 => 5,
            3 | 4 => 4,
            _ => return Err(Reader::unknown_code(at, "hire call", kind)),
        };
        if len != want {
            return Err(DecodeError {
                offset: start,
                kind: DecodeErrorKind::WrongArity {
                    expected: want,
                    found: len,
                },
            });
        }
        let call = match kind {
            0 => HireCall::Request {
                request: r.bytes_max(8 * 1024, "hire request")?.to_vec(),
            },
            1 => HireCall::Accept {
                contract: r
                    .bytes_max(crate::negotiation::MAX_CONTRACT_LEN, "contract")?
                    .to_vec(),
                input: r.bytes_max(MAX_INPUT_LEN, "input")?.to_vec(),
                salt: r.array_bytes()?,
                credentials: if len == 6 {
                    decode_credentials(r)?
                } else {
                    Vec::new()
                },
            },
            2 => HireCall::Fetch {
                hire_id: Hash::decode(r)?,
                from_seq: r.u64()?,
                wait_ms: r.u64()?,
            },
            3 => HireCall::Answer {
                hire_id: Hash::decode(r)?,
                answer: r.bytes_max(MAX_ANSWER_LEN, "answer")?.to_vec(),
            },
            4 => HireCall::Cancel {
                hire_id: Hash::decode(r)?,
                reason: r.text_max(crate::receipt::MAX_ENTRY_TEXT, "cancel reason")?,
            },
            _ => HireCall::Settle {
                attestation: r.bytes_max(4 * 1024, "attestation")?.to_vec(),
            },
        };
        r.leave();
        Ok(call)
    }
}

impl Canonical for HireReply {
    fn encode(&self, enc: &mut Encoder) {
        match self {
            HireReply::Offer(b) | HireReply::Counter(b) | HireReply::Decline(b) => {
                enc.array(3);
                enc.u64(HIRING_VERSION);
                enc.u64(match self {
                    HireReply::Offer(_) => 0,
                    HireReply::Counter(_) => 1,
                    _ => 2,
                });
                enc.bytes(b);
            }
            HireReply::Accepted { hire_id } => {
                enc.array(3);
                enc.u64(HIRING_VERSION);
                enc.u64(3);
                hire_id.encode(enc);
            }
            HireReply::Receipts {
                entries,
                disclosures,
                output,
            } => {
                enc.array(5);
                enc.u64(HIRING_VERSION);
                enc.u64(4);
                enc.array(entries.len());
                for e in entries {
                    enc.bytes(e);
                }
                enc.list(disclosures);
                match output {
                    Some(o) => enc.bytes(o),
                    None => enc.null(),
                }
            }
            HireReply::Ok => {
                enc.array(2);
                enc.u64(HIRING_VERSION);
                enc.u64(5);
            }
            HireReply::Error { code, message } => {
                enc.array(4);
                enc.u64(HIRING_VERSION);
                enc.u64(6);
                enc.u64(code.code());
                enc.text(message);
            }
        }
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let start = r.offset();
        let len = r.array()? as u64;
        r.version(HIRING_VERSION)?;
        let at = r.offset();
        let kind = r.u64()?;
        let want = match kind {
            0..=3 => 3,
            4 => 5,
            5 => 2,
            6 => 4,
            _ => return Err(Reader::unknown_code(at, "hire reply", kind)),
        };
        if len != want {
            return Err(DecodeError {
                offset: start,
                kind: DecodeErrorKind::WrongArity {
                    expected: want,
                    found: len,
                },
            });
        }
        let reply = match kind {
            0 => HireReply::Offer(r.bytes_max(8 * 1024, "offer")?.to_vec()),
            1 => HireReply::Counter(r.bytes_max(8 * 1024, "counter")?.to_vec()),
            2 => HireReply::Decline(r.bytes_max(8 * 1024, "decline")?.to_vec()),
            3 => HireReply::Accepted {
                hire_id: Hash::decode(r)?,
            },
            4 => {
                let at = r.offset();
                let n = r.array()?;
                if n > MAX_FETCH_ENTRIES {
                    return Err(DecodeError {
                        offset: at,
                        kind: DecodeErrorKind::TooLarge("too many entries"),
                    });
                }
                let mut entries = Vec::with_capacity(n);
                for _ in 0..n {
                    entries.push(
                        r.bytes_max(crate::receipt::MAX_ENTRY_LEN + 128, "entry")?
                            .to_vec(),
                    );
                }
                r.leave();
                let disclosures = r.list(MAX_FETCH_ENTRIES, "disclosures")?;
                let output = if r.null()? {
                    None
                } else {
                    Some(r.bytes_max(MAX_OUTPUT_LEN, "output")?.to_vec())
                };
                HireReply::Receipts {
                    entries,
                    disclosures,
                    output,
                }
            }
            5 => HireReply::Ok,
            _ => {
                let at = r.offset();
                let c = r.u64()?;
                let code = CallError::from_code(c)
                    .ok_or_else(|| Reader::unknown_code(at, "call error", c))?;
                HireReply::Error {
                    code,
                    message: r.text_max(1024, "error message")?,
                }
            }
        };
        r.leave();
        Ok(reply)
    }
}

/// The credential list of a 6-element `accept`: 1..=16 byte strings of at most
/// [`MAX_ACCEPT_CREDENTIAL_LEN`] (an empty list has the 5-element form instead).
fn decode_credentials(r: &mut Reader<'_>) -> Result<Vec<Vec<u8>>, DecodeError> {
    let at = r.offset();
    let n = r.array()?;
    if n == 0 {
        return Err(DecodeError {
            offset: at,
            kind: DecodeErrorKind::NotCanonical,
        });
    }
    if n > MAX_ACCEPT_CREDENTIALS {
        return Err(DecodeError {
            offset: at,
            kind: DecodeErrorKind::TooLarge("too many credential grants"),
        });
    }
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(
            r.bytes_max(MAX_ACCEPT_CREDENTIAL_LEN, "credential grant")?
                .to_vec(),
        );
    }
    r.leave();
    Ok(out)
}

/// Encodes a hire message.
pub fn to_bytes<T: Canonical>(msg: &T) -> Vec<u8> {
    encoding::encode(msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_and_replies_round_trip() {
        let h = Hash::digest(b"hire");
        let calls = vec![
            HireCall::Request {
                request: vec![1, 2],
            },
            HireCall::Accept {
                contract: vec![3],
                input: b"{}".to_vec(),
                salt: [9; 32],
                credentials: vec![],
            },
            HireCall::Accept {
                contract: vec![3],
                input: b"{}".to_vec(),
                salt: [9; 32],
                credentials: vec![vec![1; 40], vec![2; 3]],
            },
            HireCall::Fetch {
                hire_id: h,
                from_seq: 7,
                wait_ms: 20_000,
            },
            HireCall::Answer {
                hire_id: h,
                answer: b"\"yes\"".to_vec(),
            },
            HireCall::Cancel {
                hire_id: h,
                reason: "changed my mind".into(),
            },
            HireCall::Settle {
                attestation: vec![4; 10],
            },
        ];
        for c in calls {
            let b = to_bytes(&c);
            assert_eq!(encoding::decode::<HireCall>(&b, MAX_CALL_LEN), Ok(c));
        }
        let replies = vec![
            HireReply::Offer(vec![1]),
            HireReply::Counter(vec![2]),
            HireReply::Decline(vec![3]),
            HireReply::Accepted { hire_id: h },
            HireReply::Receipts {
                entries: vec![vec![5; 20]],
                disclosures: vec![Disclosure {
                    seq: 0,
                    salt: [1; 32],
                    payload: b"x".to_vec(),
                }],
                output: Some(b"{}".to_vec()),
            },
            HireReply::Ok,
            HireReply::Error {
                code: CallError::NotYourHire,
                message: "no".into(),
            },
        ];
        for rep in replies {
            let b = to_bytes(&rep);
            assert_eq!(encoding::decode::<HireReply>(&b, MAX_REPLY_LEN), Ok(rep));
        }
    }

    #[test]
    fn wrong_arity_and_unknown_kinds_are_rejected() {
        // [1, 9] : unknown call kind
        assert!(encoding::decode::<HireCall>(&[0x82, 0x01, 0x09], MAX_CALL_LEN).is_err());
        // [1, 5, h'00'] would be Settle; [1, 5] is the wrong arity
        assert!(encoding::decode::<HireCall>(&[0x82, 0x01, 0x05], MAX_CALL_LEN).is_err());
        assert!(encoding::decode::<HireReply>(&[0x82, 0x02, 0x05], MAX_REPLY_LEN).is_err());
    }

    #[test]
    fn accept_without_credentials_keeps_its_five_element_form() {
        let accept = |credentials: Vec<Vec<u8>>| HireCall::Accept {
            contract: vec![3],
            input: b"{}".to_vec(),
            salt: [9; 32],
            credentials,
        };
        let plain = to_bytes(&accept(vec![]));
        // [1, 1, h'03', h'7b7d', h'09' x 32]: exactly the pre-credentials encoding.
        let mut want = vec![0x85, 0x01, 0x01, 0x41, 0x03, 0x42, b'{', b'}', 0x58, 0x20];
        want.extend_from_slice(&[9; 32]);
        assert_eq!(plain, want);
        // The 6-element form with an empty list is not canonical.
        let mut empty = plain.clone();
        empty[0] = 0x86;
        empty.push(0x80);
        assert_eq!(
            encoding::decode::<HireCall>(&empty, MAX_CALL_LEN)
                .err()
                .map(|e| e.kind),
            Some(DecodeErrorKind::NotCanonical)
        );
        // Limits: 17 grants, or one grant over its size limit.
        let many = to_bytes(&accept(vec![vec![0]; MAX_ACCEPT_CREDENTIALS + 1]));
        assert!(encoding::decode::<HireCall>(&many, MAX_CALL_LEN).is_err());
        let big = to_bytes(&accept(vec![vec![0; MAX_ACCEPT_CREDENTIAL_LEN + 1]]));
        assert!(encoding::decode::<HireCall>(&big, MAX_CALL_LEN).is_err());
        let full = accept(vec![
            vec![0; MAX_ACCEPT_CREDENTIAL_LEN];
            MAX_ACCEPT_CREDENTIALS
        ]);
        let mut huge = full.clone();
        if let HireCall::Accept { input, .. } = &mut huge {
            *input = vec![b' '; MAX_INPUT_LEN];
        }
        let bytes = to_bytes(&huge);
        assert!(bytes.len() <= MAX_CALL_LEN);
        assert_eq!(encoding::decode::<HireCall>(&bytes, MAX_CALL_LEN), Ok(huge));
    }
}
