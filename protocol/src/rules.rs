//! The numbered verification rules of `spec/receipts.md`, `spec/bundle.md` and
//! `spec/outcomes.md`, and the [`Violation`] error that names the rule an input breaks.
//!
//! Every rejection in [`crate::verify`], [`crate::negotiation::Contract::verify`] and
//! [`crate::outcome::OutcomeRecord::verify`] carries exactly one [`Rule`], so `souk verify`,
//! the test vectors and an independent implementation can agree on *why* an input is
//! invalid, not only *that* it is.

use std::fmt;

/// A verification rule. The code (`B1`, `R6`, ...) is stable and appears in the spec, in
/// invalid test vectors and in `souk verify` output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rule {
    /// B1: the bundle decodes as canonical CBOR with the right magic, version and limits.
    B1,
    /// M1: the manifest envelope is canonical and its signature verifies under its provider.
    M1,
    /// M2: the manifest's fields satisfy every content rule of `spec/manifest.md`.
    M2,
    /// C1: request, proposal and acceptance are canonical and carry valid signatures.
    C1,
    /// C2: the request names the bundle's manifest.
    C2,
    /// C3: the request and the acceptance are signed by the request's client.
    C3,
    /// C4: the proposal is signed by the manifest's provider and names it.
    C4,
    /// C5: the proposal answers the request; the acceptance names both.
    C5,
    /// C6: the acceptance was made no later than the proposal's `valid_until`.
    C6,
    /// C7: the proposal is in the manifest's currency; an offer (not a counter) also stays
    /// within the request's budget (same currency) and deadline.
    C7,
    /// R1: every entry is a canonical envelope within the size limit.
    R1,
    /// R2: every entry is signed by the contract's provider.
    R2,
    /// R3: every entry's signature is valid (`spec/encoding.md`, "Signature validity").
    R3,
    /// R4: every entry names the contract's hire id.
    R4,
    /// R5: sequence numbers start at 0 and increase by one.
    R5,
    /// R6: each entry's `prev` is the id of the entry before it (zero for the first).
    R6,
    /// R7: timestamps never decrease.
    R7,
    /// R8: each entry kind is a legal step of the hire state machine, replayed from
    /// `accepted`: the first entry is `started` (or `failed`, `canceled`, `expired` for a hire
    /// that never started), nothing follows a terminal entry, `input-provided` answers
    /// `input-requested`, steps happen only while `working`.
    R8,
    /// R9: each entry's fields are well formed (host, method, path, status of a network call;
    /// a non-empty tool name) and consistent with the hire (`started` names the manifest's
    /// runtime digest; `expired` names the contract's deadline).
    R9,
    /// R10: a `network-call` entry's credential fields are consistent with the manifest and
    /// the contract: its slot and mode agree and the slot is declared; a denial has status 0
    /// and no record; a call that went through has an HTTP status, a host the manifest lists,
    /// and, if relayed, the client's record; a relay record is signed by the contract's
    /// client, describes exactly this call, and appears in no earlier entry.
    R10,
    /// A1: the attestation is canonical and signed by the contract's client.
    A1,
    /// A2: the attestation names the contract's hire id.
    A2,
    /// A3: the attestation's head is the chain's last entry (seq and id).
    A3,
    /// A4: the attested head is a terminal entry.
    A4,
    /// D1: disclosures are sorted by seq, unique, and refer to entries with a commitment.
    D1,
    /// D2: each disclosure opens its entry's commitment.
    D2,
    /// E1: both entries of an equivocation proof are canonical and signed by the same key.
    E1,
    /// E2: both entries name the same hire and seq.
    E2,
    /// E3: the two entries differ, and are ordered by id.
    E3,
    /// O1: the record decodes canonically within its limits (version 1, at most
    /// `MAX_OUTCOME_LEN` bytes), each part decodes as its type within its own limit, and
    /// the reference's name is a valid agent name.
    O1,
    /// O2: the contract's request names the reference's manifest id (`agent.id()`);
    /// replaces C2, and C4 checks the proposal against `agent.provider`.
    O2,
    /// O3: the client is not the provider (a self-hire record is refused).
    O3,
    /// O4: the head is signed by the contract's provider with a valid signature.
    O4,
    /// O5: the head names the contract's hire id.
    O5,
    /// O6: the head is a terminal entry (`completed`, `failed`, `canceled`, `expired`).
    O6,
    /// O7: the head's usage names the agreed price, and an `expired` head names the
    /// contract's deadline.
    O7,
    /// O8: the attestation is signed by the contract's client with a valid signature.
    O8,
    /// O9: the attestation names the contract's hire id.
    O9,
    /// O10: the attestation countersigns the head (its seq and id).
    O10,
}

impl Rule {
    /// The stable code, e.g. `"R6"`.
    pub fn code(self) -> &'static str {
        match self {
            Rule::B1 => "B1",
            Rule::M1 => "M1",
            Rule::M2 => "M2",
            Rule::C1 => "C1",
            Rule::C2 => "C2",
            Rule::C3 => "C3",
            Rule::C4 => "C4",
            Rule::C5 => "C5",
            Rule::C6 => "C6",
            Rule::C7 => "C7",
            Rule::R1 => "R1",
            Rule::R2 => "R2",
            Rule::R3 => "R3",
            Rule::R4 => "R4",
            Rule::R5 => "R5",
            Rule::R6 => "R6",
            Rule::R7 => "R7",
            Rule::R8 => "R8",
            Rule::R9 => "R9",
            Rule::R10 => "R10",
            Rule::A1 => "A1",
            Rule::A2 => "A2",
            Rule::A3 => "A3",
            Rule::A4 => "A4",
            Rule::D1 => "D1",
            Rule::D2 => "D2",
            Rule::E1 => "E1",
            Rule::E2 => "E2",
            Rule::E3 => "E3",
            Rule::O1 => "O1",
            Rule::O2 => "O2",
            Rule::O3 => "O3",
            Rule::O4 => "O4",
            Rule::O5 => "O5",
            Rule::O6 => "O6",
            Rule::O7 => "O7",
            Rule::O8 => "O8",
            Rule::O9 => "O9",
            Rule::O10 => "O10",
        }
    }

    /// Parses a code such as `"R6"`.
    pub fn from_code(code: &str) -> Option<Rule> {
        Rule::ALL.iter().copied().find(|r| r.code() == code)
    }

    /// Every rule, in spec order.
    pub const ALL: [Rule; 39] = [
        Rule::B1,
        Rule::M1,
        Rule::M2,
        Rule::C1,
        Rule::C2,
        Rule::C3,
        Rule::C4,
        Rule::C5,
        Rule::C6,
        Rule::C7,
        Rule::R1,
        Rule::R2,
        Rule::R3,
        Rule::R4,
        Rule::R5,
        Rule::R6,
        Rule::R7,
        Rule::R8,
        Rule::R9,
        Rule::R10,
        Rule::A1,
        Rule::A2,
        Rule::A3,
        Rule::A4,
        Rule::D1,
        Rule::D2,
        Rule::E1,
        Rule::E2,
        Rule::E3,
        Rule::O1,
        Rule::O2,
        Rule::O3,
        Rule::O4,
        Rule::O5,
        Rule::O6,
        Rule::O7,
        Rule::O8,
        Rule::O9,
        Rule::O10,
    ];
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// An input broke a rule. `entry` is the receipt seq (or position) where it failed, if any.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Violation {
    /// The rule broken.
    pub rule: Rule,
    /// The receipt entry (by position in the chain) where verification stopped, if any.
    pub entry: Option<u64>,
    /// What exactly is wrong, for a person.
    pub detail: String,
}

impl Violation {
    /// A violation not tied to an entry.
    pub fn new(rule: Rule, detail: impl Into<String>) -> Self {
        Self {
            rule,
            entry: None,
            detail: detail.into(),
        }
    }

    /// A violation at receipt entry `entry`.
    pub fn at(rule: Rule, entry: u64, detail: impl Into<String>) -> Self {
        Self {
            rule,
            entry: Some(entry),
            detail: detail.into(),
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.entry {
            Some(e) => write!(
                f,
                "rule {} failed at entry {}: {}",
                self.rule, e, self.detail
            ),
            None => write!(f, "rule {} failed: {}", self.rule, self.detail),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_are_unique() {
        for r in Rule::ALL {
            assert_eq!(Rule::from_code(r.code()), Some(r));
        }
        let mut codes: Vec<_> = Rule::ALL.iter().map(|r| r.code()).collect();
        codes.dedup();
        assert_eq!(codes.len(), Rule::ALL.len());
    }
}
