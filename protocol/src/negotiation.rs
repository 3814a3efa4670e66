//! Negotiation messages and the contract they form.
//!
//! A client sends a signed [`HireRequest`]; the provider answers with a signed [`Offer`]
//! (terms within the request's budget and deadline), a [`Counter`] (different terms) or a
//! [`Decline`]; the client closes with a signed [`Accept`] of the offer or counter. Request,
//! proposal and acceptance together are the [`Contract`], and BLAKE3 of the contract's
//! canonical bytes (domain `souk/v1/contract`) is the [`HireId`]. Wire format and rules:
//! `spec/negotiation.md`. Timeouts, retries and policy live in the node; this module only says
//! what a well-formed, consistent negotiation is.

use crate::Timestamp;
use crate::encoding::{self, Canonical, DecodeError, Encoder, Reader};
use crate::hash::{Domain, Hash};
use crate::identity::NodeId;
use crate::manifest::{Manifest, ManifestRef};
use crate::rules::{Rule, Violation};
use crate::signature::VerifyingKey;
use crate::signed::{Signed, SignedBody};

/// Format version of every negotiation body.
pub const NEGOTIATION_VERSION: u64 = 1;
/// Largest encoded negotiation body.
pub const MAX_NEGOTIATION_LEN: usize = 4 * 1024;
/// Largest encoded contract.
pub const MAX_CONTRACT_LEN: usize = 16 * 1024;
/// Longest free-text reason or message in a negotiation body.
pub const MAX_REASON_LEN: usize = 512;

/// A hire's id: the contract's id.
pub type HireId = Hash;

/// An amount of money in micro-units of a currency.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Price {
    /// Currency code (as in [`crate::manifest::Pricing`]).
    pub currency: String,
    /// Amount in millionths of a unit.
    pub amount: u64,
}

/// What the provider commits to: a price and a deadline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Terms {
    /// The price of the hire.
    pub price: Price,
    /// When the work must be finished (ms since the Unix epoch).
    pub deadline: Timestamp,
}

/// A client's request to hire an agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HireRequest {
    /// The manifest id of the agent to hire.
    pub manifest_id: Hash,
    /// The client node, which signs the request.
    pub client: NodeId,
    /// Salted commitment to the job input (see [`crate::receipt::commit`]).
    pub input_commitment: Hash,
    /// Size of the job input in bytes.
    pub input_size: u64,
    /// The most the client will pay.
    pub budget: Price,
    /// The latest acceptable finish time.
    pub deadline: Timestamp,
    /// Random bytes making every request unique.
    pub nonce: [u8; 16],
    /// When the request was made.
    pub created_at: Timestamp,
}

/// A provider's offer: terms that satisfy the request as asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    /// The request answered.
    pub request_id: Hash,
    /// The provider node, which signs.
    pub provider: NodeId,
    /// The terms offered.
    pub terms: Terms,
    /// The offer lapses after this time.
    pub valid_until: Timestamp,
    /// When the offer was made.
    pub created_at: Timestamp,
}

/// A provider's counter-offer: terms outside what the request asked (a higher price, a later
/// deadline), which the client may still accept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counter {
    /// The request answered.
    pub request_id: Hash,
    /// The provider node, which signs.
    pub provider: NodeId,
    /// The terms proposed instead.
    pub terms: Terms,
    /// The counter lapses after this time.
    pub valid_until: Timestamp,
    /// Why the request could not be met as asked.
    pub reason: String,
    /// When the counter was made.
    pub created_at: Timestamp,
}

/// Why a provider declined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeclineReason {
    /// The budget is below the agent's price.
    Price,
    /// The agent is at its concurrency limit.
    Capacity,
    /// The deadline cannot be met.
    Deadline,
    /// The manifest is unknown, retired or expired.
    UnknownManifest,
    /// The input is larger than the agent accepts.
    InputTooLarge,
    /// The provider's policy refuses this client or job.
    Policy,
    /// The request names an agent this provider still offers, but in a version that is no
    /// longer current; the decline carries the current manifest id ([`Decline::current`]).
    Superseded,
}

impl std::fmt::Display for DeclineReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl DeclineReason {
    /// Every reason with its wire code.
    pub const ALL: [(DeclineReason, u64, &'static str); 7] = [
        (DeclineReason::Price, 0, "price"),
        (DeclineReason::Capacity, 1, "capacity"),
        (DeclineReason::Deadline, 2, "deadline"),
        (DeclineReason::UnknownManifest, 3, "unknown-manifest"),
        (DeclineReason::InputTooLarge, 4, "input-too-large"),
        (DeclineReason::Policy, 5, "policy"),
        (DeclineReason::Superseded, 6, "superseded"),
    ];

    /// The wire code.
    pub fn code(self) -> u64 {
        Self::ALL
            .iter()
            .find(|(r, _, _)| *r == self)
            .map_or(5, |(_, c, _)| *c)
    }

    /// The kebab-case name.
    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(r, _, _)| *r == self)
            .map_or("policy", |(_, _, n)| n)
    }

    fn from_code(code: u64) -> Option<Self> {
        Self::ALL
            .iter()
            .find(|(_, c, _)| *c == code)
            .map(|(r, _, _)| *r)
    }
}

/// A provider's refusal of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decline {
    /// The request refused.
    pub request_id: Hash,
    /// The provider node, which signs.
    pub provider: NodeId,
    /// Why.
    pub reason: DeclineReason,
    /// Details for the client.
    pub message: String,
    /// When.
    pub created_at: Timestamp,
    /// The manifest id of the agent's current manifest: present if and only if `reason` is
    /// [`DeclineReason::Superseded`] (the encoding enforces it both ways).
    pub current: Option<Hash>,
}

impl Decline {
    /// A decline for any reason but [`DeclineReason::Superseded`] (use
    /// [`Decline::superseded`] for that one; given it here, `current` stays absent and the
    /// body would not encode as a valid decline).
    pub fn new(
        request_id: Hash,
        provider: NodeId,
        reason: DeclineReason,
        message: String,
        created_at: Timestamp,
    ) -> Self {
        Self {
            request_id,
            provider,
            reason,
            message,
            created_at,
            current: None,
        }
    }

    /// A `superseded` decline: the request named an older version of an agent this provider
    /// still offers, whose current manifest id is `current`.
    pub fn superseded(
        request_id: Hash,
        provider: NodeId,
        current: Hash,
        message: String,
        created_at: Timestamp,
    ) -> Self {
        Self {
            request_id,
            provider,
            reason: DeclineReason::Superseded,
            message,
            created_at,
            current: Some(current),
        }
    }
}

/// A client's acceptance of an offer or counter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accept {
    /// The request this closes.
    pub request_id: Hash,
    /// The offer or counter accepted.
    pub proposal_id: Hash,
    /// The client node, which signs.
    pub client: NodeId,
    /// When.
    pub created_at: Timestamp,
}

/// The provider's answer that a contract was formed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Proposal {
    /// An offer within the request.
    Offer(Signed<Offer>),
    /// A counter-offer.
    Counter(Signed<Counter>),
}

impl Proposal {
    /// The proposal's id.
    pub fn id(&self) -> Hash {
        match self {
            Proposal::Offer(s) => s.id(),
            Proposal::Counter(s) => s.id(),
        }
    }

    /// The terms proposed.
    pub fn terms(&self) -> &Terms {
        match self {
            Proposal::Offer(s) => &s.body().terms,
            Proposal::Counter(s) => &s.body().terms,
        }
    }

    /// The request answered.
    pub fn request_id(&self) -> Hash {
        match self {
            Proposal::Offer(s) => s.body().request_id,
            Proposal::Counter(s) => s.body().request_id,
        }
    }

    /// The provider named in the body.
    pub fn provider(&self) -> NodeId {
        match self {
            Proposal::Offer(s) => s.body().provider,
            Proposal::Counter(s) => s.body().provider,
        }
    }

    /// When it lapses.
    pub fn valid_until(&self) -> Timestamp {
        match self {
            Proposal::Offer(s) => s.body().valid_until,
            Proposal::Counter(s) => s.body().valid_until,
        }
    }
}

/// Request, proposal and acceptance: the agreement a hire runs under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contract {
    /// The client's request.
    pub request: Signed<HireRequest>,
    /// The provider's offer or counter.
    pub proposal: Proposal,
    /// The client's acceptance.
    pub accept: Signed<Accept>,
}

impl Contract {
    /// Canonical bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        encoding::encode(self)
    }

    /// Decodes a contract (signatures are checked by [`Contract::verify`]).
    pub fn decode_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        encoding::decode(bytes, MAX_CONTRACT_LEN)
    }

    /// The hire id: `BLAKE3("souk/v1/contract" || 0x00 || contract bytes)`.
    pub fn hire_id(&self) -> HireId {
        Domain::Contract.hash(&self.to_bytes())
    }

    /// The client.
    pub fn client(&self) -> NodeId {
        self.request.body().client
    }

    /// The provider.
    pub fn provider(&self) -> NodeId {
        self.proposal.provider()
    }

    /// The agreed terms.
    pub fn terms(&self) -> &Terms {
        self.proposal.terms()
    }

    /// Checks rules C1-C7 against the manifest the request names.
    pub fn verify(&self, manifest: &Signed<Manifest>) -> Result<(), Violation> {
        let provider = manifest.body().provider;
        let req = self.request.body();
        self.verify_signers(&provider)?;
        if req.manifest_id != manifest.id() {
            return Err(Violation::new(
                Rule::C2,
                format!(
                    "the request names manifest {}, the bundle holds {}",
                    req.manifest_id.short(),
                    manifest.id().short()
                ),
            ));
        }
        self.verify_links()?;
        let currency = &manifest.body().pricing.currency;
        if &self.proposal.terms().price.currency != currency {
            return Err(Violation::new(
                Rule::C7,
                "the proposal's currency differs from the manifest's",
            ));
        }
        self.verify_offer_within_request()
    }

    /// The rules of [`Contract::verify`] that need no manifest, in the same order, with C2
    /// replaced by a check against a manifest reference (`spec/outcomes.md`, rule O2): the
    /// request names `agent.id()` and the proposal's provider is `agent.provider`. C7 loses
    /// its manifest-currency half; an offer must still stay within the request.
    ///
    /// Each failure is reported under the contract rule it breaks (C1, C3-C7), or under
    /// `reference_rule` when the request names another agent.
    pub fn verify_against_reference(
        &self,
        agent: &ManifestRef,
        reference_rule: Rule,
    ) -> Result<(), Violation> {
        self.verify_signers(&agent.provider)?;
        let named = self.request.body().manifest_id;
        let id = agent.id();
        if named != id {
            return Err(Violation::new(
                reference_rule,
                format!(
                    "the request names manifest {}, the reference gives {}",
                    named.short(),
                    id.short()
                ),
            ));
        }
        self.verify_links()?;
        self.verify_offer_within_request()
    }

    /// C3, C4, C1: every part is signed by the party that must sign it, and every signature
    /// is valid; the proposal must come from `provider`.
    fn verify_signers(&self, provider: &NodeId) -> Result<(), Violation> {
        let client = self.request.body().client;
        // C3 before C1: a wrong signer is a more precise diagnosis than a bad signature.
        if self.request.signer_bytes() != client.as_bytes() {
            return Err(Violation::new(
                Rule::C3,
                "the request is not signed by its client",
            ));
        }
        if self.accept.signer_bytes() != client.as_bytes() || self.accept.body().client != client {
            return Err(Violation::new(
                Rule::C3,
                "the acceptance is not signed by the request's client",
            ));
        }
        let (proposal_signer, proposal_ok) = match &self.proposal {
            Proposal::Offer(s) => (s.signer_bytes(), s.verify(provider).is_ok()),
            Proposal::Counter(s) => (s.signer_bytes(), s.verify(provider).is_ok()),
        };
        if proposal_signer != provider.as_bytes() || self.proposal.provider() != *provider {
            return Err(Violation::new(
                Rule::C4,
                "the proposal is not signed by the manifest's provider",
            ));
        }
        let client_key = VerifyingKey::new(&client);
        if self.request.verify_with(&client_key).is_err() {
            return Err(Violation::new(
                Rule::C1,
                "the request's signature does not verify",
            ));
        }
        if !proposal_ok {
            return Err(Violation::new(
                Rule::C1,
                "the proposal's signature does not verify",
            ));
        }
        if self.accept.verify_with(&client_key).is_err() {
            return Err(Violation::new(
                Rule::C1,
                "the acceptance's signature does not verify",
            ));
        }
        Ok(())
    }

    /// C5 and C6: the proposal answers the request, the acceptance names both, in time.
    fn verify_links(&self) -> Result<(), Violation> {
        let request_id = self.request.id();
        if self.proposal.request_id() != request_id {
            return Err(Violation::new(
                Rule::C5,
                "the proposal answers another request",
            ));
        }
        let acc = self.accept.body();
        if acc.request_id != request_id || acc.proposal_id != self.proposal.id() {
            return Err(Violation::new(
                Rule::C5,
                "the acceptance names another request or proposal",
            ));
        }
        if acc.created_at > self.proposal.valid_until() {
            return Err(Violation::new(
                Rule::C6,
                format!(
                    "accepted at {} after the proposal lapsed at {}",
                    acc.created_at,
                    self.proposal.valid_until()
                ),
            ));
        }
        Ok(())
    }

    /// The half of C7 that needs no manifest: an offer (not a counter) stays within the
    /// request's budget (same currency) and deadline.
    fn verify_offer_within_request(&self) -> Result<(), Violation> {
        let req = self.request.body();
        if let Proposal::Offer(offer) = &self.proposal {
            let terms = &offer.body().terms;
            if terms.price.currency != req.budget.currency {
                return Err(Violation::new(
                    Rule::C7,
                    "the offer's currency differs from the request's budget",
                ));
            }
            if terms.price.amount > req.budget.amount {
                return Err(Violation::new(
                    Rule::C7,
                    format!(
                        "the offer's price {} exceeds the budget {}",
                        terms.price.amount, req.budget.amount
                    ),
                ));
            }
            if terms.deadline > req.deadline {
                return Err(Violation::new(
                    Rule::C7,
                    "the offer's deadline is later than the request's",
                ));
            }
        }
        Ok(())
    }
}

// ---- canonical encodings -------------------------------------------------------------------

impl Canonical for Price {
    fn encode(&self, enc: &mut Encoder) {
        enc.array(2);
        enc.text(&self.currency);
        enc.u64(self.amount);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.array_of(2)?;
        let p = Price {
            currency: r.text_max(12, "currency")?,
            amount: r.u64()?,
        };
        r.leave();
        Ok(p)
    }
}

impl Canonical for Terms {
    fn encode(&self, enc: &mut Encoder) {
        enc.array(2);
        self.price.encode(enc);
        enc.u64(self.deadline);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.array_of(2)?;
        let t = Terms {
            price: Price::decode(r)?,
            deadline: r.u64()?,
        };
        r.leave();
        Ok(t)
    }
}

impl Canonical for HireRequest {
    fn encode(&self, enc: &mut Encoder) {
        enc.array(9);
        enc.u64(NEGOTIATION_VERSION);
        self.manifest_id.encode(enc);
        self.client.encode(enc);
        self.input_commitment.encode(enc);
        enc.u64(self.input_size);
        self.budget.encode(enc);
        enc.u64(self.deadline);
        enc.bytes(&self.nonce);
        enc.u64(self.created_at);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.array_of(9)?;
        r.version(NEGOTIATION_VERSION)?;
        let v = HireRequest {
            manifest_id: Hash::decode(r)?,
            client: NodeId::decode(r)?,
            input_commitment: Hash::decode(r)?,
            input_size: r.u64()?,
            budget: Price::decode(r)?,
            deadline: r.u64()?,
            nonce: r.array_bytes()?,
            created_at: r.u64()?,
        };
        r.leave();
        Ok(v)
    }
}

impl SignedBody for HireRequest {
    const DOMAIN: Domain = Domain::HireRequest;
    const MAX_BODY_LEN: usize = MAX_NEGOTIATION_LEN;
    fn named_signer(&self) -> Option<NodeId> {
        Some(self.client)
    }
}

impl Canonical for Offer {
    fn encode(&self, enc: &mut Encoder) {
        enc.array(6);
        enc.u64(NEGOTIATION_VERSION);
        self.request_id.encode(enc);
        self.provider.encode(enc);
        self.terms.encode(enc);
        enc.u64(self.valid_until);
        enc.u64(self.created_at);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.array_of(6)?;
        r.version(NEGOTIATION_VERSION)?;
        let v = Offer {
            request_id: Hash::decode(r)?,
            provider: NodeId::decode(r)?,
            terms: Terms::decode(r)?,
            valid_until: r.u64()?,
            created_at: r.u64()?,
        };
        r.leave();
        Ok(v)
    }
}

impl SignedBody for Offer {
    const DOMAIN: Domain = Domain::Offer;
    const MAX_BODY_LEN: usize = MAX_NEGOTIATION_LEN;
    fn named_signer(&self) -> Option<NodeId> {
        Some(self.provider)
    }
}

impl Canonical for Counter {
    fn encode(&self, enc: &mut Encoder) {
        enc.array(7);
        enc.u64(NEGOTIATION_VERSION);
        self.request_id.encode(enc);
        self.provider.encode(enc);
        self.terms.encode(enc);
        enc.u64(self.valid_until);
        enc.text(&self.reason);
        enc.u64(self.created_at);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.array_of(7)?;
        r.version(NEGOTIATION_VERSION)?;
        let v = Counter {
            request_id: Hash::decode(r)?,
            provider: NodeId::decode(r)?,
            terms: Terms::decode(r)?,
            valid_until: r.u64()?,
            reason: r.text_max(MAX_REASON_LEN, "counter reason")?,
            created_at: r.u64()?,
        };
        r.leave();
        Ok(v)
    }
}

impl SignedBody for Counter {
    const DOMAIN: Domain = Domain::Counter;
    const MAX_BODY_LEN: usize = MAX_NEGOTIATION_LEN;
    fn named_signer(&self) -> Option<NodeId> {
        Some(self.provider)
    }
}

impl Canonical for Decline {
    /// Six items, or seven (with `current`) when the reason is `superseded`. The reason
    /// decides the shape: a body whose `current` disagrees with its reason (build declines
    /// with [`Decline::new`] or [`Decline::superseded`]) encodes a missing `current` as
    /// [`Hash::ZERO`] and drops an extra one.
    fn encode(&self, enc: &mut Encoder) {
        let superseded = self.reason == DeclineReason::Superseded;
        enc.array(if superseded { 7 } else { 6 });
        enc.u64(NEGOTIATION_VERSION);
        self.request_id.encode(enc);
        self.provider.encode(enc);
        enc.u64(self.reason.code());
        enc.text(&self.message);
        enc.u64(self.created_at);
        if superseded {
            self.current.unwrap_or(Hash::ZERO).encode(enc);
        }
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let start = r.offset();
        let len = r.array()?;
        if !(6..=7).contains(&len) {
            return Err(DecodeError {
                offset: start,
                kind: crate::encoding::DecodeErrorKind::WrongArity {
                    expected: 6,
                    found: len as u64,
                },
            });
        }
        r.version(NEGOTIATION_VERSION)?;
        let request_id = Hash::decode(r)?;
        let provider = NodeId::decode(r)?;
        let at = r.offset();
        let code = r.u64()?;
        let reason = DeclineReason::from_code(code)
            .ok_or_else(|| Reader::unknown_code(at, "decline reason", code))?;
        let want = if reason == DeclineReason::Superseded {
            7
        } else {
            6
        };
        if len != want {
            return Err(DecodeError {
                offset: start,
                kind: crate::encoding::DecodeErrorKind::WrongArity {
                    expected: want as u64,
                    found: len as u64,
                },
            });
        }
        let message = r.text_max(MAX_REASON_LEN, "decline message")?;
        let created_at = r.u64()?;
        let current = if want == 7 {
            Some(Hash::decode(r)?)
        } else {
            None
        };
        r.leave();
        Ok(Decline {
            request_id,
            provider,
            reason,
            message,
            created_at,
            current,
        })
    }
}

impl SignedBody for Decline {
    const DOMAIN: Domain = Domain::Decline;
    const MAX_BODY_LEN: usize = MAX_NEGOTIATION_LEN;
    fn named_signer(&self) -> Option<NodeId> {
        Some(self.provider)
    }
}

impl Canonical for Accept {
    fn encode(&self, enc: &mut Encoder) {
        enc.array(5);
        enc.u64(NEGOTIATION_VERSION);
        self.request_id.encode(enc);
        self.proposal_id.encode(enc);
        self.client.encode(enc);
        enc.u64(self.created_at);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.array_of(5)?;
        r.version(NEGOTIATION_VERSION)?;
        let v = Accept {
            request_id: Hash::decode(r)?,
            proposal_id: Hash::decode(r)?,
            client: NodeId::decode(r)?,
            created_at: r.u64()?,
        };
        r.leave();
        Ok(v)
    }
}

impl SignedBody for Accept {
    const DOMAIN: Domain = Domain::Accept;
    const MAX_BODY_LEN: usize = MAX_NEGOTIATION_LEN;
    fn named_signer(&self) -> Option<NodeId> {
        Some(self.client)
    }
}

impl Canonical for Contract {
    fn encode(&self, enc: &mut Encoder) {
        enc.array(5);
        enc.u64(NEGOTIATION_VERSION);
        self.request.encode(enc);
        match &self.proposal {
            Proposal::Offer(s) => {
                enc.u64(0);
                s.encode(enc);
            }
            Proposal::Counter(s) => {
                enc.u64(1);
                s.encode(enc);
            }
        }
        self.accept.encode(enc);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.array_of(5)?;
        r.version(NEGOTIATION_VERSION)?;
        let request = Signed::<HireRequest>::decode(r)?;
        let at = r.offset();
        let proposal = match r.u64()? {
            0 => Proposal::Offer(Signed::decode(r)?),
            1 => Proposal::Counter(Signed::decode(r)?),
            code => return Err(Reader::unknown_code(at, "proposal kind", code)),
        };
        let accept = Signed::<Accept>::decode(r)?;
        r.leave();
        Ok(Contract {
            request,
            proposal,
            accept,
        })
    }
}
