//! Receipt chain verification: where a receipt is appended and checked.
//!
//! [`ChainVerifier`] is the incremental verifier a client runs while entries stream in: each
//! [`ChainVerifier::push`] checks one entry against the chain so far (rules R2-R10), detects
//! gaps and forks at once, and turns a conflicting, validly signed entry into an
//! [`EquivocationProof`]. [`verify_bundle`] checks a whole bundle offline: manifest, contract,
//! every entry, the attestation and the disclosures, reporting the *first* rule broken in the
//! order fixed by `spec/receipts.md` ("Order of checks"). Every signature is decided by
//! [`crate::signature::verify`] (directly or through its batch form), so every
//! [`SignatureCheck`] mode reaches the same verdict and reports the same violation.

use std::collections::HashSet;

use crate::Timestamp;
use crate::bundle::Bundle;
use crate::credential::observe::{self, NetworkRules, NetworkSummary};
use crate::equivocation::EquivocationProof;
use crate::hash::Hash;
use crate::hire::{HireState, Verdict};
use crate::identity::NodeId;
use crate::manifest::Manifest;
use crate::negotiation::{Contract, HireId, Price};
use crate::receipt::{Attestation, EntryKind, ReceiptEntry, SignedEntry, Usage};
use crate::rules::{Rule, Violation};
use crate::signature::{self, VerifyingKey};
use crate::signed::Signed;

/// Who a chain belongs to: the facts every entry is checked against.
#[derive(Debug, Clone)]
pub struct ChainContext {
    /// The hire id (the contract's id).
    pub hire_id: HireId,
    /// The provider, who signs entries.
    pub provider: NodeId,
    /// The client, who signs the attestation.
    pub client: NodeId,
    /// The runtime package the manifest promises (`started` must name it).
    pub runtime_digest: Hash,
    /// The contract's deadline (`expired` must name it).
    pub deadline: Timestamp,
    /// The contract's agreed price (every terminal entry's usage must name it).
    pub price: Price,
    provider_key: VerifyingKey,
    network: NetworkRules,
}

impl ChainContext {
    /// The context of a contract (which should already have passed [`Contract::verify`]
    /// against `manifest`).
    pub fn new(contract: &Contract, manifest: &Manifest) -> Self {
        let provider = contract.provider();
        Self {
            hire_id: contract.hire_id(),
            provider,
            client: contract.client(),
            runtime_digest: manifest.runtime_digest,
            deadline: contract.terms().deadline,
            price: contract.terms().price.clone(),
            provider_key: VerifyingKey::new(&provider),
            network: NetworkRules::new(contract, manifest),
        }
    }
}

/// What [`ChainVerifier::push`] did with an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// A new entry, now the head.
    Appended,
    /// An entry already in the chain (a harmless redelivery).
    Duplicate,
}

/// Why an entry was refused by [`ChainVerifier::push`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    /// The entry breaks a rule.
    #[error(transparent)]
    Violation(#[from] Violation),
    /// The provider signed two different entries with the same seq: proof attached.
    #[error("equivocation: the provider signed two different entries at seq {}", .0.seq())]
    Equivocation(Box<EquivocationProof>),
}

/// The incremental verifier of one hire's receipt chain.
#[derive(Debug, Clone)]
pub struct ChainVerifier {
    ctx: ChainContext,
    state: HireState,
    entries: Vec<SignedEntry>,
    last_time: Timestamp,
    relay_records: HashSet<Hash>,
    /// What the chain used so far (the usage a terminal entry must record).
    used: Tally,
}

/// The usage a chain's entries add up to (spec/receipts.md, "Usage").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Time of the `started` entry, if there is one.
    pub started_at: Option<Timestamp>,
    /// `decision` and `tool-call` entries.
    pub steps: u64,
    /// `network-call` entries.
    pub network_calls: u64,
}

impl Tally {
    /// Counts one more entry of `kind` at `time`.
    pub fn add(&mut self, kind: &EntryKind, time: Timestamp) {
        match kind {
            EntryKind::Started { .. } => {
                self.started_at.get_or_insert(time);
            }
            EntryKind::Decision | EntryKind::ToolCall { .. } => self.steps += 1,
            EntryKind::NetworkCall(_) => self.network_calls += 1,
            _ => {}
        }
    }

    /// The usage a terminal entry at `time` records, for a hire agreed at `price`.
    pub fn usage(&self, price: &Price, time: Timestamp) -> Usage {
        Usage {
            price: price.clone(),
            wall_ms: self.started_at.map_or(0, |t| time.saturating_sub(t)),
            steps: self.steps,
            network_calls: self.network_calls,
        }
    }
}

impl ChainVerifier {
    /// An empty chain for a hire whose contract is accepted.
    pub fn new(ctx: ChainContext) -> Self {
        Self {
            ctx,
            state: HireState::Accepted,
            entries: Vec::new(),
            last_time: 0,
            relay_records: HashSet::new(),
            used: Tally::default(),
        }
    }

    /// The context.
    pub fn context(&self) -> &ChainContext {
        &self.ctx
    }

    /// The hire state the chain has reached.
    pub fn state(&self) -> HireState {
        self.state
    }

    /// The verified entries, in order.
    pub fn entries(&self) -> &[SignedEntry] {
        &self.entries
    }

    /// The last entry, if any.
    pub fn head(&self) -> Option<&SignedEntry> {
        self.entries.last()
    }

    /// The seq the next entry must have.
    pub fn next_seq(&self) -> u64 {
        self.entries.len() as u64
    }

    /// Checks and appends one entry, verifying its signature ([`crate::signature::verify`]).
    ///
    /// A redelivered entry is [`Pushed::Duplicate`]. A validly signed, different entry at an
    /// existing seq is [`ChainError::Equivocation`] with a proof anyone can check. A gap
    /// (seq beyond the next) is a violation of R5: ask the provider for the missing entries.
    pub fn push(&mut self, entry: SignedEntry) -> Result<Pushed, ChainError> {
        let pos = self.next_seq();
        let seq = entry.body().seq;
        if entry.signer_bytes() != self.ctx.provider.as_bytes() {
            return Err(Violation::at(
                Rule::R2,
                seq.min(pos),
                "entry is not signed by the provider",
            )
            .into());
        }
        if seq < pos {
            let existing = &self.entries[seq as usize];
            if existing.id() == entry.id() {
                return Ok(Pushed::Duplicate);
            }
            self.check_signature(&entry, seq)?;
            if entry.body().hire_id != self.ctx.hire_id {
                return Err(Violation::at(Rule::R4, seq, "entry names another hire").into());
            }
            return match EquivocationProof::new(existing.clone(), entry) {
                Some(proof) => Err(ChainError::Equivocation(Box::new(proof))),
                None => Ok(Pushed::Duplicate),
            };
        }
        self.check_next(&entry)?;
        self.check_signature(&entry, pos)?;
        self.append_checked(entry);
        Ok(Pushed::Appended)
    }

    fn check_signature(&self, entry: &SignedEntry, at: u64) -> Result<(), Violation> {
        if signature::verify(
            &self.ctx.provider_key,
            &entry.signing_input(),
            entry.signature(),
        ) {
            Ok(())
        } else {
            Err(Violation::at(Rule::R3, at, "signature does not verify"))
        }
    }

    /// Rules R2 and R4-R10 for the next entry, without the signature (R3).
    pub fn check_next(&self, entry: &SignedEntry) -> Result<(), Violation> {
        let pos = self.next_seq();
        let e: &ReceiptEntry = entry.body();
        if entry.signer_bytes() != self.ctx.provider.as_bytes() {
            return Err(Violation::at(
                Rule::R2,
                pos,
                "entry is not signed by the provider",
            ));
        }
        if e.hire_id != self.ctx.hire_id {
            return Err(Violation::at(
                Rule::R4,
                pos,
                format!(
                    "entry names hire {}, expected {}",
                    e.hire_id.short(),
                    self.ctx.hire_id.short()
                ),
            ));
        }
        if e.seq != pos {
            return Err(Violation::at(
                Rule::R5,
                pos,
                format!("seq {} where {} was expected", e.seq, pos),
            ));
        }
        let want_prev = self.head().map_or(Hash::ZERO, |h| h.id());
        if e.prev != want_prev {
            return Err(Violation::at(
                Rule::R6,
                pos,
                format!(
                    "prev {} does not match the previous entry {}",
                    e.prev.short(),
                    want_prev.short()
                ),
            ));
        }
        if e.time < self.last_time {
            return Err(Violation::at(
                Rule::R7,
                pos,
                format!(
                    "time {} is before the previous entry's {}",
                    e.time, self.last_time
                ),
            ));
        }
        self.next_state(e, pos)?;
        if let Some(problem) = e.kind.field_problem() {
            return Err(Violation::at(Rule::R9, pos, problem));
        }
        match &e.kind {
            EntryKind::Started { runtime_digest } if *runtime_digest != self.ctx.runtime_digest => {
                Err(Violation::at(
                    Rule::R9,
                    pos,
                    format!(
                        "started names runtime {}, the manifest promises {}",
                        runtime_digest.short(),
                        self.ctx.runtime_digest.short()
                    ),
                ))
            }
            EntryKind::Expired { deadline, .. } if *deadline != self.ctx.deadline => {
                Err(Violation::at(
                    Rule::R9,
                    pos,
                    format!(
                        "expired names deadline {deadline}, the contract's is {}",
                        self.ctx.deadline
                    ),
                ))
            }
            EntryKind::NetworkCall(call) => self.ctx.network.check(call, pos, &self.relay_records),
            kind => match kind.usage() {
                Some(usage) => {
                    let want = self.used.usage(&self.ctx.price, e.time);
                    if *usage == want {
                        Ok(())
                    } else {
                        Err(Violation::at(
                            Rule::R9,
                            pos,
                            format!(
                                "{} records usage {}, the contract and chain show {}",
                                kind.name(),
                                show_usage(usage),
                                show_usage(&want)
                            ),
                        ))
                    }
                }
                None => Ok(()),
            },
        }
    }

    fn next_state(&self, e: &ReceiptEntry, pos: u64) -> Result<HireState, Violation> {
        let illegal = |why: String| Violation::at(Rule::R8, pos, why);
        if self.state.is_terminal() {
            return Err(illegal(format!(
                "{} after the chain ended ({})",
                e.kind.name(),
                self.state
            )));
        }
        match e.kind.event() {
            Some(ev) => self.state.apply(ev).map_err(|_| {
                illegal(format!(
                    "{} is not allowed in state {}",
                    e.kind.name(),
                    self.state
                ))
            }),
            None if self.state == HireState::Working => Ok(self.state),
            None => Err(illegal(format!(
                "{} is not allowed in state {}",
                e.kind.name(),
                self.state
            ))),
        }
    }

    /// Appends an entry that passed [`ChainVerifier::check_next`] (and whose signature the
    /// caller verifies, e.g. in a batch).
    pub fn append_checked(&mut self, entry: SignedEntry) {
        let pos = self.next_seq();
        if let Ok(next) = self.next_state(entry.body(), pos) {
            self.state = next;
        }
        self.last_time = entry.body().time;
        self.used.add(&entry.body().kind, entry.body().time);
        if let EntryKind::NetworkCall(call) = &entry.body().kind
            && let Some(id) = observe::relay_record_id(call)
        {
            self.relay_records.insert(id);
        }
        self.entries.push(entry);
    }
}

/// How [`verify_bundle`] checks the entry signatures. Modes differ in speed only: every mode
/// checks every signature with the same rule ([`crate::signature::verify`]) and reaches the
/// same verdict, with the same violation, on every input (`spec/receipts.md`,
/// "Signature-check modes").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureCheck {
    /// In batches ([`crate::signature::verify_batch`]), a failing batch rechecked one by one
    /// to find the first bad signature. The default, and the fastest.
    Batch,
    /// One signature at a time, in chain order.
    OneByOne,
}

impl SignatureCheck {
    /// The mode's name in `souk verify` output: `batch` or `one-by-one`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Batch => "batch",
            Self::OneByOne => "one-by-one",
        }
    }
}

/// What a valid bundle contains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleReport {
    /// The hire.
    pub hire_id: HireId,
    /// The manifest hired.
    pub manifest_id: Hash,
    /// The agent's name.
    pub agent: String,
    /// The provider.
    pub provider: NodeId,
    /// The client.
    pub client: NodeId,
    /// Number of receipt entries.
    pub entries: u64,
    /// The state the chain reached.
    pub state: HireState,
    /// The head entry's id, if any.
    pub head: Option<Hash>,
    /// The client's verdict, if the bundle carries an attestation.
    pub verdict: Option<Verdict>,
    /// Number of disclosures opened.
    pub disclosures: usize,
    /// The observed network calls: how many, denied, with a sealed or a relayed credential.
    pub network: NetworkSummary,
}

/// Verifies a bundle file's bytes. See [`verify_bundle`].
pub fn verify_bundle_bytes(bytes: &[u8], check: SignatureCheck) -> Result<BundleReport, Violation> {
    let bundle =
        Bundle::decode_bytes(bytes).map_err(|e| Violation::new(Rule::B1, e.to_string()))?;
    verify_bundle(&bundle, check)
}

/// Verifies a bundle offline: every rule of `spec/receipts.md`, first failure reported.
pub fn verify_bundle(bundle: &Bundle, check: SignatureCheck) -> Result<BundleReport, Violation> {
    let manifest = Signed::<Manifest>::open(&bundle.manifest)
        .map_err(|e| Violation::new(Rule::M1, e.to_string()))?;
    manifest
        .body()
        .validate(&manifest.id())
        .map_err(|e| Violation::new(Rule::M2, e.to_string()))?;
    let contract = Contract::decode_bytes(&bundle.contract)
        .map_err(|e| Violation::new(Rule::C1, format!("contract: {e}")))?;
    contract.verify(&manifest)?;

    let ctx = ChainContext::new(&contract, manifest.body());
    let mut chain = ChainVerifier::new(ctx.clone());
    let mut structural: Option<Violation> = None;
    for (i, raw) in bundle.entries.iter().enumerate() {
        let entry = match SignedEntry::decode_bytes(raw) {
            Ok(e) => e,
            Err(e) => {
                structural = Some(Violation::at(Rule::R1, i as u64, e.to_string()));
                break;
            }
        };
        if let Err(v) = chain.check_next(&entry) {
            structural = Some(v);
            break;
        }
        chain.append_checked(entry);
    }
    // Signatures of the entries before the first structural failure: an earlier bad
    // signature is the first failure in check order.
    let checked = chain.entries();
    let key = &ctx.provider_key;
    let sig_result = match check {
        SignatureCheck::Batch => {
            let inputs: Vec<Vec<u8>> = checked.iter().map(|e| e.signing_input()).collect();
            let msgs: Vec<&[u8]> = inputs.iter().map(|m| m.as_slice()).collect();
            let sigs: Vec<[u8; 64]> = checked.iter().map(|e| *e.signature()).collect();
            signature::verify_batch(key, &msgs, &sigs)
        }
        SignatureCheck::OneByOne => checked
            .iter()
            .position(|e| !signature::verify(key, &e.signing_input(), e.signature()))
            .map_or(Ok(()), Err),
    };
    if let Err(i) = sig_result {
        return Err(Violation::at(
            Rule::R3,
            i as u64,
            "signature does not verify",
        ));
    }
    if let Some(v) = structural {
        return Err(v);
    }

    let verdict = match &bundle.attestation {
        None => None,
        Some(raw) => Some(check_attestation(raw, &chain)?),
    };
    let disclosures = check_disclosures(bundle, &chain)?;
    Ok(BundleReport {
        hire_id: ctx.hire_id,
        manifest_id: manifest.id(),
        agent: manifest.body().name.clone(),
        provider: ctx.provider,
        client: ctx.client,
        entries: chain.next_seq(),
        state: chain.state(),
        head: chain.head().map(|h| h.id()),
        verdict,
        disclosures,
        network: NetworkSummary::of(chain.entries()),
    })
}

/// Rules A1-A4: the attestation countersigns the chain's terminal head.
pub fn check_attestation(raw: &[u8], chain: &ChainVerifier) -> Result<Verdict, Violation> {
    let ctx = chain.context();
    let att = Signed::<Attestation>::decode_bytes(raw)
        .map_err(|e| Violation::new(Rule::A1, e.to_string()))?;
    att.verify(&ctx.client)
        .map_err(|e| Violation::new(Rule::A1, e.to_string()))?;
    let a = att.body();
    if a.hire_id != ctx.hire_id {
        return Err(Violation::new(
            Rule::A2,
            "the attestation names another hire",
        ));
    }
    match chain.head() {
        Some(head) if head.body().seq == a.head_seq && head.id() == a.head_id => {}
        _ => {
            return Err(Violation::new(
                Rule::A3,
                format!(
                    "the attestation countersigns seq {} ({}), not the chain's head",
                    a.head_seq,
                    a.head_id.short()
                ),
            ));
        }
    }
    if !chain.state().is_terminal() {
        return Err(Violation::new(
            Rule::A4,
            format!(
                "the attested head is not terminal (state {})",
                chain.state()
            ),
        ));
    }
    Ok(a.verdict)
}

fn check_disclosures(bundle: &Bundle, chain: &ChainVerifier) -> Result<usize, Violation> {
    let mut last: Option<u64> = None;
    for d in &bundle.disclosures {
        if last.is_some_and(|l| d.seq <= l) {
            return Err(Violation::at(
                Rule::D1,
                d.seq,
                "disclosures must be sorted by seq and unique",
            ));
        }
        last = Some(d.seq);
        let entry = chain
            .entries()
            .get(usize::try_from(d.seq).unwrap_or(usize::MAX))
            .ok_or_else(|| {
                Violation::at(
                    Rule::D1,
                    d.seq,
                    "disclosure for an entry that is not in the chain",
                )
            })?;
        let commitment = entry.body().commitment.ok_or_else(|| {
            Violation::at(
                Rule::D1,
                d.seq,
                "disclosure for an entry without a commitment",
            )
        })?;
        if !d.opens(&commitment) {
            return Err(Violation::at(
                Rule::D2,
                d.seq,
                "disclosed payload does not open the entry's commitment",
            ));
        }
    }
    Ok(bundle.disclosures.len())
}

/// A usage record as a violation message shows it.
fn show_usage(u: &Usage) -> String {
    format!(
        "(price {} {}, {} ms, {} steps, {} network calls)",
        u.price.amount, u.price.currency, u.wall_ms, u.steps, u.network_calls
    )
}
