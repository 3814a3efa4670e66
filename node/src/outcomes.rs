//! Where outcome records and equivocation proofs are admitted or refused, and what a node
//! holds of them: [`Outcomes`], the in-memory set (one record per hire, one proof per
//! provider) with the [`souk_reputation::Ledger`] computed from it, and the sync pages it
//! serves.
//!
//! [`Outcomes::admit_record`] and [`Outcomes::admit_proof`] are the single gates for every
//! record and proof that reaches a node, by gossip, sync, a light node's fetch or its own
//! publication (`spec/discovery.md`, "Outcome records and equivocation proofs"). Only verified
//! items enter; the choice between two valid records of one hire (or two proofs against one
//! provider) is a total order, so every node keeps the same one whatever the arrival order.
//! This module never does I/O: the caller persists what it admits and reports verdicts.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;

use souk_protocol::equivocation::{Equivocation, EquivocationProof, MAX_PROOF_LEN};
use souk_protocol::hire::Verdict;
use souk_protocol::manifest::MAX_CLOCK_SKEW_MS;
use souk_protocol::outcome::{MAX_OUTCOME_LEN, Outcome, OutcomeEnd, OutcomeRecord};
use souk_protocol::outcome_sync::{
    MAX_OUTCOME_PAGE, OutcomeSyncRequest, OutcomeSyncResponse, SyncKind,
};
use souk_protocol::receipt::Canceler;
use souk_protocol::{Hash, NodeId, Violation};
use souk_reputation::{End, Figures, Ledger, OutcomeFacts, Policy};

/// Latest records returned with figures.
pub const LAST_OUTCOMES: usize = 10;

/// Why a record or proof was refused (the sender is charged, `spec/discovery.md`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemRejection {
    /// Larger than any record (or proof) may be.
    Oversized(usize),
    /// It does not decode or does not verify.
    Invalid(Violation),
    /// A record settled more than 5 minutes in the future.
    NotYetValid,
}

impl std::fmt::Display for ItemRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ItemRejection::Oversized(n) => write!(f, "oversized ({n} bytes)"),
            ItemRejection::Invalid(v) => write!(f, "invalid: {v}"),
            ItemRejection::NotYetValid => f.write_str("settled in the future"),
        }
    }
}

/// The outcome of [`Outcomes::admit_record`].
#[derive(Debug, Clone)]
pub enum RecordAdmission {
    /// New, or preferred to the record held for its hire: keep, store, forward.
    Accepted {
        /// What the record shows.
        outcome: Box<Outcome>,
        /// The record id of the record it replaced.
        replaced: Option<Hash>,
    },
    /// This very record is held: no forward, no penalty.
    Duplicate,
    /// Valid, but the record held for its hire is preferred: no forward, no penalty.
    Superseded,
    /// Invalid: no forward, the sender is charged.
    Rejected(ItemRejection),
}

/// The outcome of [`Outcomes::admit_proof`].
#[derive(Debug, Clone)]
pub enum ProofAdmission {
    /// New, or with a lower proof id than the one held for its signer: keep, store, forward.
    Accepted {
        /// What the proof shows.
        equivocation: Box<Equivocation>,
        /// Whether the provider was not flagged before.
        newly_flagged: bool,
    },
    /// This very proof is held.
    Duplicate,
    /// Valid, but the proof held for its signer has a lower id.
    Superseded,
    /// Invalid: no forward, the sender is charged.
    Rejected(ItemRejection),
}

/// A held record: its bytes and what it shows.
#[derive(Debug, Clone)]
struct HeldRecord {
    bytes: Vec<u8>,
    outcome: Outcome,
}

/// A held proof.
#[derive(Debug, Clone)]
struct HeldProof {
    bytes: Vec<u8>,
    id: Hash,
    equivocation: Equivocation,
}

/// The id of an equivocation proof: `BLAKE3(proof bytes)` (no domain tag: it names bytes only
/// for the choice of one proof per signer, it is never signed).
pub fn proof_id(bytes: &[u8]) -> Hash {
    Hash::digest(bytes)
}

/// The `after` cursor of a kind-1 request whose first item is the proof held against
/// `provider`, if any: the provider key minus one, as a 256-bit big-endian number (`None`,
/// from the start, for the all-zero key).
pub fn proof_cursor(provider: &[u8; 32]) -> Option<Hash> {
    let mut key = *provider;
    for b in key.iter_mut().rev() {
        if *b > 0 {
            *b -= 1;
            return Some(Hash(key));
        }
        *b = 0xff;
    }
    None
}

/// The reputation crate's facts of a verified outcome.
pub fn facts(o: &Outcome) -> OutcomeFacts {
    OutcomeFacts {
        hire_id: o.hire_id.0,
        provider: *o.provider.as_bytes(),
        agent: o.agent.name.clone(),
        client: *o.client.as_bytes(),
        end: match o.end {
            OutcomeEnd::Completed => End::Completed,
            OutcomeEnd::Failed { .. } => End::Failed,
            OutcomeEnd::Expired => End::Expired,
            OutcomeEnd::Canceled {
                by: Canceler::Provider,
            } => End::CanceledByProvider,
            OutcomeEnd::Canceled {
                by: Canceler::Client,
            } => End::CanceledByClient,
        },
        verdict: match o.verdict {
            Verdict::Accepted => souk_reputation::Verdict::Accepted,
            Verdict::Disputed => souk_reputation::Verdict::Disputed,
        },
        settled_at_ms: o.settled_at,
        entries: o.entries,
        price_amount: o.price.amount,
        currency: o.price.currency.clone(),
    }
}

/// Which of two valid records of one hire every node keeps: the greater under the precedence
/// of `spec/reputation.md` ("Two records for one hire": a dispute beats an acceptance, ...),
/// and between records of equal precedence the lower record id. A total order: nodes converge
/// on one record whatever the arrival order.
fn preferred(new: &Outcome, held: &Outcome) -> bool {
    let key = |o: &Outcome| {
        let f = facts(o);
        (
            f.verdict == souk_reputation::Verdict::Disputed,
            f.end != End::Completed,
            f.end.code(),
            f.settled_at_ms,
            f.entries,
            f.price_amount,
            f.currency,
        )
    };
    match key(new).cmp(&key(held)) {
        Ordering::Greater => true,
        Ordering::Less => false,
        Ordering::Equal => new.record_id < held.record_id,
    }
}

/// Checks a record completely: size, decoding and every rule, and that it was not settled
/// more than [`MAX_CLOCK_SKEW_MS`] after `now_ms`.
pub fn verify_record(bytes: &[u8], now_ms: u64) -> Result<Outcome, ItemRejection> {
    if bytes.len() > MAX_OUTCOME_LEN {
        return Err(ItemRejection::Oversized(bytes.len()));
    }
    let outcome = OutcomeRecord::verify_bytes(bytes).map_err(ItemRejection::Invalid)?;
    if outcome.settled_at > now_ms.saturating_add(MAX_CLOCK_SKEW_MS) {
        return Err(ItemRejection::NotYetValid);
    }
    Ok(outcome)
}

/// Checks a proof completely.
pub fn verify_proof(bytes: &[u8]) -> Result<Equivocation, ItemRejection> {
    if bytes.len() > MAX_PROOF_LEN {
        return Err(ItemRejection::Oversized(bytes.len()));
    }
    EquivocationProof::verify_bytes(bytes).map_err(ItemRejection::Invalid)
}

/// The records and proofs a node holds, and the reputation ledger computed from them.
#[derive(Default)]
pub struct Outcomes {
    records: BTreeMap<Hash, HeldRecord>,
    by_provider: BTreeSet<([u8; 32], Hash)>,
    proofs: BTreeMap<[u8; 32], HeldProof>,
    /// The ids of the held proofs, for the duplicate check before verification.
    proof_ids: BTreeSet<Hash>,
    ledger: Ledger,
}

impl Outcomes {
    /// Nothing held.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records held.
    pub fn records(&self) -> usize {
        self.records.len()
    }

    /// Proofs held.
    pub fn proofs(&self) -> usize {
        self.proofs.len()
    }

    /// The bytes of the record held for a hire.
    pub fn record_bytes(&self, hire: &Hash) -> Option<&[u8]> {
        self.records.get(hire).map(|h| h.bytes.as_slice())
    }

    /// The bytes of the proof held against a provider.
    pub fn proof_bytes(&self, provider: &[u8; 32]) -> Option<&[u8]> {
        self.proofs.get(provider).map(|h| h.bytes.as_slice())
    }

    /// The proof held against a provider, with what it shows.
    pub fn proof(&self, provider: &[u8; 32]) -> Option<(&[u8], &Equivocation)> {
        self.proofs
            .get(provider)
            .map(|h| (h.bytes.as_slice(), &h.equivocation))
    }

    /// Every agent handle (provider, agent name) with at least one held record.
    pub fn handles(&self) -> BTreeSet<(NodeId, String)> {
        self.records
            .values()
            .map(|h| (h.outcome.provider, h.outcome.agent.name.clone()))
            .collect()
    }

    /// Verifies and admits an outcome record.
    pub fn admit_record(&mut self, bytes: &[u8], now_ms: u64) -> RecordAdmission {
        // Gossip and sync repeat themselves: an exact copy of a held record needs no check.
        if bytes.len() <= MAX_OUTCOME_LEN
            && let Ok(record) = OutcomeRecord::decode_bytes(bytes)
            && self
                .records
                .get(&record.hire_id())
                .is_some_and(|h| h.bytes == bytes)
        {
            return RecordAdmission::Duplicate;
        }
        match verify_record(bytes, now_ms) {
            Ok(outcome) => self.insert_verified(bytes.to_vec(), outcome),
            Err(r) => RecordAdmission::Rejected(r),
        }
    }

    /// Admits a record that is already verified (the store at start).
    pub fn insert_verified(&mut self, bytes: Vec<u8>, outcome: Outcome) -> RecordAdmission {
        let hire = outcome.hire_id;
        let replaced = match self.records.get(&hire) {
            Some(held) if held.outcome.record_id == outcome.record_id => {
                return RecordAdmission::Duplicate;
            }
            Some(held) if !preferred(&outcome, &held.outcome) => {
                return RecordAdmission::Superseded;
            }
            Some(held) => Some(held.outcome.record_id),
            None => None,
        };
        let facts = facts(&outcome);
        if replaced.is_some() {
            self.ledger.remove(&hire.0);
        }
        if let Err(e) = self.ledger.insert(facts) {
            // A hire id commits to its contract, so a verified record cannot disagree with
            // the held one on provider, agent or client; refuse it rather than mix them.
            tracing::warn!("outcome record not taken into the ledger: {e}");
            return RecordAdmission::Superseded;
        }
        self.by_provider
            .insert((*outcome.provider.as_bytes(), hire));
        self.records.insert(
            hire,
            HeldRecord {
                bytes,
                outcome: outcome.clone(),
            },
        );
        RecordAdmission::Accepted {
            outcome: Box::new(outcome),
            replaced,
        }
    }

    /// Verifies and admits an equivocation proof; an admitted proof flags its signer.
    pub fn admit_proof(&mut self, bytes: &[u8]) -> ProofAdmission {
        if self.proof_ids.contains(&proof_id(bytes)) {
            return ProofAdmission::Duplicate;
        }
        match verify_proof(bytes) {
            Ok(e) => self.insert_verified_proof(bytes.to_vec(), e),
            Err(r) => ProofAdmission::Rejected(r),
        }
    }

    /// Admits a proof that is already verified (the store at start).
    pub fn insert_verified_proof(
        &mut self,
        bytes: Vec<u8>,
        equivocation: Equivocation,
    ) -> ProofAdmission {
        let signer = *equivocation.signer.as_bytes();
        let id = proof_id(&bytes);
        match self.proofs.get(&signer) {
            Some(held) if held.id == id => return ProofAdmission::Duplicate,
            Some(held) if held.id < id => return ProofAdmission::Superseded,
            _ => {}
        }
        let newly_flagged = self.ledger.flag(signer);
        self.proof_ids.insert(id);
        let replaced = self.proofs.insert(
            signer,
            HeldProof {
                bytes,
                id,
                equivocation: equivocation.clone(),
            },
        );
        if let Some(old) = replaced {
            self.proof_ids.remove(&old.id);
        }
        ProofAdmission::Accepted {
            equivocation: Box::new(equivocation),
            newly_flagged,
        }
    }

    /// Whether a provider is flagged (a verified proof against it is held).
    pub fn is_flagged(&self, provider: &NodeId) -> bool {
        self.ledger.is_flagged(provider.as_bytes())
    }

    /// Every flagged provider with what its proof shows, by provider key.
    pub fn flagged(&self) -> Vec<(NodeId, Equivocation)> {
        self.proofs
            .values()
            .map(|p| (p.equivocation.signer, p.equivocation.clone()))
            .collect()
    }

    /// Figures of a provider (all its agents) or of one agent, with its latest records
    /// (latest first, at most [`LAST_OUTCOMES`]).
    pub fn reputation(
        &self,
        provider: &NodeId,
        name: Option<&str>,
        now_ms: u64,
        policy: &Policy,
    ) -> (Figures, Vec<Outcome>) {
        let key = provider.as_bytes();
        match name {
            Some(name) => {
                let figures = self.ledger.handle(key, name, now_ms, policy);
                let last = self
                    .ledger
                    .last(key, name, LAST_OUTCOMES)
                    .into_iter()
                    .filter_map(|f| self.records.get(&Hash(f.hire_id)))
                    .map(|h| h.outcome.clone())
                    .collect();
                (figures, last)
            }
            None => {
                let figures = self.ledger.provider(key, now_ms, policy);
                let mut all: Vec<&Outcome> = self
                    .of_provider(key)
                    .filter_map(|hire| self.records.get(&hire))
                    .map(|h| &h.outcome)
                    .collect();
                all.sort_by_key(|o| std::cmp::Reverse((o.settled_at, o.hire_id)));
                let last = all.into_iter().take(LAST_OUTCOMES).cloned().collect();
                (figures, last)
            }
        }
    }

    /// Every held record of a provider, by hire id.
    pub fn provider_outcomes(&self, provider: &NodeId) -> Vec<Outcome> {
        self.of_provider(provider.as_bytes())
            .filter_map(|hire| self.records.get(&hire))
            .map(|h| h.outcome.clone())
            .collect()
    }

    fn of_provider(&self, key: &[u8; 32]) -> impl Iterator<Item = Hash> + '_ {
        self.of_provider_after(key, None)
    }

    /// The hire ids of a provider's held records strictly after `after`, in order: a range
    /// of the index, not a scan of the provider's records.
    fn of_provider_after(
        &self,
        key: &[u8; 32],
        after: Option<Hash>,
    ) -> impl Iterator<Item = Hash> + '_ {
        let lower = match after {
            Some(a) => Bound::Excluded((*key, a)),
            None => Bound::Included((*key, Hash([0; 32]))),
        };
        self.by_provider
            .range((lower, Bound::Included((*key, Hash([0xff; 32])))))
            .map(|(_, hire)| *hire)
    }

    /// One page of `/souk/outcome-sync/1`: items with keys strictly after the cursor, in key
    /// order, at most `clamp(limit, 1, 256)` and at most `budget` bytes of items (at least
    /// one item per non-empty page); `next` is the last key when more follow.
    pub fn sync_page(&self, req: &OutcomeSyncRequest, budget: usize) -> OutcomeSyncResponse {
        let limit = req.limit.clamp(1, MAX_OUTCOME_PAGE) as usize;
        let items: Box<dyn Iterator<Item = (Hash, &[u8])>> = match &req.kind {
            SyncKind::Outcomes => {
                let lower = req.after.map_or(Bound::Unbounded, Bound::Excluded);
                Box::new(
                    self.records
                        .range((lower, Bound::Unbounded))
                        .map(|(k, h)| (*k, h.bytes.as_slice())),
                )
            }
            SyncKind::Proofs => {
                let lower = req.after.map_or(Bound::Unbounded, |a| Bound::Excluded(a.0));
                Box::new(
                    self.proofs
                        .range((lower, Bound::Unbounded))
                        .map(|(k, p)| (Hash(*k), p.bytes.as_slice())),
                )
            }
            SyncKind::Provider(p) => Box::new(
                self.of_provider_after(p.as_bytes(), req.after)
                    .filter_map(|hire| self.records.get(&hire).map(|h| (hire, h.bytes.as_slice()))),
            ),
        };
        let mut page = OutcomeSyncResponse::default();
        let mut bytes = 0usize;
        let mut last = None;
        for (key, item) in items {
            if page.items.len() == limit
                || (bytes + item.len() + 8 > budget && !page.items.is_empty())
            {
                page.next = last;
                break;
            }
            bytes += item.len() + 8;
            page.items.push(item.to_vec());
            last = Some(key);
        }
        page
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{equivocation_proof, outcome_record, settled_hire};
    use souk_protocol::Keypair;
    use souk_protocol::outcome::OutcomeRecord;
    use souk_protocol::vectors::T0;

    const NOW: u64 = T0 + 3_600_000;

    fn key(n: u8) -> Keypair {
        Keypair::from_seed(&[n; 32])
    }

    fn accepted(r: &RecordAdmission) -> bool {
        matches!(r, RecordAdmission::Accepted { .. })
    }

    #[test]
    fn records_are_verified_deduplicated_and_counted() {
        let mut o = Outcomes::new();
        let (p, c) = (key(1), key(2));
        let rec = outcome_record(&p, &c, "csv", Verdict::Accepted);
        assert!(accepted(&o.admit_record(&rec, NOW)));
        assert!(matches!(
            o.admit_record(&rec, NOW),
            RecordAdmission::Duplicate
        ));
        let (figures, last) = o.reputation(&p.id(), Some("csv"), NOW, &Policy::default());
        assert_eq!(figures.settled, 1);
        assert_eq!(figures.accepted, 1);
        assert_eq!(last.len(), 1);
        assert_eq!(
            o.reputation(&p.id(), None, NOW, &Policy::default())
                .0
                .settled,
            1
        );
        // Settled far in the future (the node's clock far behind): refused.
        assert!(matches!(
            o.admit_record(
                &outcome_record(&p, &key(3), "csv", Verdict::Accepted),
                T0 - 600_000
            ),
            RecordAdmission::Rejected(ItemRejection::NotYetValid)
        ));
        assert!(matches!(
            o.admit_record(&vec![0; MAX_OUTCOME_LEN + 1], NOW),
            RecordAdmission::Rejected(ItemRejection::Oversized(_))
        ));
        let mut flipped = rec.clone();
        let n = flipped.len();
        flipped[n - 1] ^= 1;
        assert!(matches!(
            o.admit_record(&flipped, NOW),
            RecordAdmission::Rejected(ItemRejection::Invalid(_))
        ));
        assert_eq!(o.records(), 1);
    }

    #[test]
    fn forged_records_are_rejected() {
        let mut o = Outcomes::new();
        let (p, c, mallory) = (key(1), key(2), key(9));
        let h = settled_hire(&p, &c, "csv");
        let att = crate::testkit::attest(&c, h.hire_id, &h.head, Verdict::Accepted);
        // The head signed by someone other than the provider.
        let bad_head = settled_hire(&mallory, &c, "csv");
        let forged_head = OutcomeRecord {
            head: bad_head.head.to_bytes(),
            ..OutcomeRecord::build(h.manifest.body().reference(), &h.contract, &h.head, &att)
        };
        // A verdict over another head (the started entry).
        let other = crate::testkit::attest(&c, h.hire_id, &h.started, Verdict::Accepted);
        let wrong_head =
            OutcomeRecord::build(h.manifest.body().reference(), &h.contract, &h.head, &other);
        // The same hire under another agent name.
        let mut renamed = h.manifest.body().reference();
        renamed.name = "csv-pro".into();
        let replayed = OutcomeRecord::build(renamed, &h.contract, &h.head, &att);
        for forged in [forged_head, wrong_head, replayed] {
            assert!(
                matches!(
                    o.admit_record(&forged.to_bytes(), NOW),
                    RecordAdmission::Rejected(ItemRejection::Invalid(_))
                ),
                "{forged:?}"
            );
        }
        assert_eq!(o.records(), 0);
    }

    #[test]
    fn two_records_of_one_hire_converge_whatever_the_order() {
        let (p, c) = (key(1), key(2));
        let h = settled_hire(&p, &c, "csv");
        let ok = h.record(&c, Verdict::Accepted);
        let disputed = h.record(&c, Verdict::Disputed);
        for order in [[&ok, &disputed], [&disputed, &ok]] {
            let mut o = Outcomes::new();
            for r in order {
                o.admit_record(r, NOW);
            }
            assert_eq!(o.record_bytes(&h.hire_id), Some(disputed.as_slice()));
            let f = o
                .reputation(&p.id(), Some("csv"), NOW, &Policy::default())
                .0;
            assert_eq!((f.settled, f.rejected), (1, 1));
        }
        let mut o = Outcomes::new();
        o.admit_record(&disputed, NOW);
        assert!(matches!(
            o.admit_record(&ok, NOW),
            RecordAdmission::Superseded
        ));
        let mut o = Outcomes::new();
        o.admit_record(&ok, NOW);
        assert!(matches!(
            o.admit_record(&disputed, NOW),
            RecordAdmission::Accepted {
                replaced: Some(_),
                ..
            }
        ));
    }

    #[test]
    fn proofs_flag_once_and_keep_the_lowest_id() {
        let mut o = Outcomes::new();
        let p = key(1);
        let a = equivocation_proof(&p, 1);
        let b = equivocation_proof(&p, 2);
        let (low, high) = if proof_id(&a) < proof_id(&b) {
            (a, b)
        } else {
            (b, a)
        };
        assert!(matches!(
            o.admit_proof(&high),
            ProofAdmission::Accepted {
                newly_flagged: true,
                ..
            }
        ));
        assert!(o.is_flagged(&p.id()));
        assert!(matches!(o.admit_proof(&high), ProofAdmission::Duplicate));
        assert!(matches!(
            o.admit_proof(&low),
            ProofAdmission::Accepted {
                newly_flagged: false,
                ..
            }
        ));
        assert!(matches!(o.admit_proof(&high), ProofAdmission::Superseded));
        assert_eq!(o.proof_bytes(p.id().as_bytes()), Some(low.as_slice()));
        assert_eq!(o.flagged().len(), 1);
        let mut bad = low.clone();
        let n = bad.len();
        bad[n - 1] ^= 1;
        assert!(matches!(o.admit_proof(&bad), ProofAdmission::Rejected(_)));
        assert!(!o.is_flagged(&key(2).id()));
    }

    #[test]
    fn the_proof_cursor_is_the_key_just_below() {
        assert_eq!(proof_cursor(&[0; 32]), None);
        let mut one = [0; 32];
        one[31] = 1;
        assert_eq!(proof_cursor(&one), Some(Hash([0; 32])));
        let mut carry = [0; 32];
        carry[30] = 1;
        let mut below = [0; 32];
        below[31] = 0xff;
        assert_eq!(proof_cursor(&carry), Some(Hash(below)));
        let mut top_below = [0xff; 32];
        top_below[31] = 0xfe;
        assert_eq!(proof_cursor(&[0xff; 32]), Some(Hash(top_below)));
    }

    #[test]
    fn a_proof_probe_returns_the_provider_proof_first() {
        let mut o = Outcomes::new();
        let mut keys: Vec<Keypair> = (1..=3).map(key).collect();
        keys.sort_by_key(|k| *k.id().as_bytes());
        // Proofs against the lowest and the highest key, none against the middle one.
        for k in [&keys[0], &keys[2]] {
            assert!(matches!(
                o.admit_proof(&equivocation_proof(k, 1)),
                ProofAdmission::Accepted { .. }
            ));
        }
        let probe = |k: &Keypair| {
            let page = o.sync_page(
                &OutcomeSyncRequest {
                    kind: SyncKind::Proofs,
                    after: proof_cursor(k.id().as_bytes()),
                    limit: 1,
                },
                usize::MAX,
            );
            assert!(page.items.len() <= 1);
            page.items
                .first()
                .and_then(|b| verify_proof(b).ok())
                .map(|e| e.signer)
        };
        assert_eq!(probe(&keys[0]), Some(keys[0].id()));
        assert_eq!(probe(&keys[1]), Some(keys[2].id()));
        assert_eq!(probe(&keys[2]), Some(keys[2].id()));
    }

    #[test]
    fn sync_pages_cover_everything_once_and_filter_by_provider() {
        let mut o = Outcomes::new();
        let (p, q) = (key(1), key(2));
        for i in 0..20u8 {
            let provider = if i % 2 == 0 { &p } else { &q };
            let rec = outcome_record(provider, &key(100 + i), "csv", Verdict::Accepted);
            assert!(accepted(&o.admit_record(&rec, NOW)));
        }
        let pages = |kind: SyncKind, limit: u32, budget: usize| {
            let mut seen = Vec::new();
            let mut after = None;
            let mut n = 0;
            loop {
                let page = o.sync_page(&OutcomeSyncRequest { kind, after, limit }, budget);
                n += 1;
                seen.extend(page.items);
                match page.next {
                    Some(next) => after = Some(next),
                    None => return (seen, n),
                }
            }
        };
        let (all, n) = pages(SyncKind::Outcomes, 7, usize::MAX);
        assert_eq!((all.len(), n), (20, 3));
        let ids: BTreeSet<Hash> = all
            .iter()
            .filter_map(|b| OutcomeRecord::decode_bytes(b).ok().map(|r| r.hire_id()))
            .collect();
        assert_eq!(ids.len(), 20);
        // A byte budget smaller than two records: one record per page, nothing lost.
        let one = all[0].len();
        let (small, n) = pages(SyncKind::Outcomes, 256, one + 10);
        assert_eq!((small.len(), n), (20, 20));
        let (mine, _) = pages(SyncKind::Provider(p.id()), 3, usize::MAX);
        assert_eq!(mine.len(), 10);
        assert!(
            mine.iter().all(|b| {
                OutcomeRecord::decode_bytes(b).is_ok_and(|r| r.agent.provider == p.id())
            })
        );
        assert_eq!(o.provider_outcomes(&q.id()).len(), 10);
        assert!(
            o.sync_page(
                &OutcomeSyncRequest {
                    kind: SyncKind::Proofs,
                    after: None,
                    limit: 0
                },
                1
            )
            .items
            .is_empty()
        );
    }
}
