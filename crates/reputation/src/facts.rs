//! The input of the crate: the facts taken from one **verified** outcome record.
//!
//! This module owns [`OutcomeFacts`], [`End`] and [`Verdict`] and the precedence rule between
//! two facts for the same hire. It never verifies anything: the caller (the node) maps only
//! outcome records that passed verification (spec/outcomes.md) into these facts.

use std::cmp::Ordering;

/// How a hire ended, as the provider's terminal receipt entry says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum End {
    /// The agent finished and the provider signed a `completed` entry.
    Completed,
    /// The provider signed a `failed` entry.
    Failed,
    /// The hire passed its deadline (`expired` entry).
    Expired,
    /// The provider canceled the hire.
    CanceledByProvider,
    /// The client canceled the hire.
    CanceledByClient,
}

impl End {
    /// The end's code in the precedence rule and in spec/reputation.md: completed 0, failed 1,
    /// expired 2, canceled by provider 3, canceled by client 4.
    pub fn code(self) -> u8 {
        match self {
            End::Completed => 0,
            End::Failed => 1,
            End::Expired => 2,
            End::CanceledByProvider => 3,
            End::CanceledByClient => 4,
        }
    }

    /// Whether the provider's side caused this end (failed, expired, canceled by provider).
    pub fn is_provider_caused(self) -> bool {
        matches!(self, End::Failed | End::Expired | End::CanceledByProvider)
    }
}

/// The client's verdict in its signed attestation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Verdict {
    /// The client accepted the result.
    Accepted,
    /// The client disputed the result.
    Disputed,
}

/// The facts of one verified outcome record: the contract of a hire, the provider-signed
/// terminal receipt entry and the client's signed attestation.
///
/// **Callers must only build this from an outcome record that verified** (every signature
/// and rule of spec/outcomes.md). The crate trusts every field; no figure is better than the
/// facts it is given.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OutcomeFacts {
    /// The hire id (the contract's id).
    pub hire_id: [u8; 32],
    /// The provider's node id (ed25519 public key).
    pub provider: [u8; 32],
    /// The agent's name; with `provider` it forms the handle `<provider>/<agent>`.
    pub agent: String,
    /// The client's node id (ed25519 public key).
    pub client: [u8; 32],
    /// How the hire ended (the terminal entry's kind).
    pub end: End,
    /// The client's verdict (the attestation).
    pub verdict: Verdict,
    /// When the hire was settled: the attestation's time, milliseconds since the Unix epoch.
    pub settled_at_ms: u64,
    /// Number of receipt entries in the chain.
    pub entries: u64,
    /// The contract's price, in micro-units of `currency`.
    pub price_amount: u64,
    /// The contract's currency code.
    pub currency: String,
}

impl OutcomeFacts {
    /// Whether the client is the provider itself. Self-hires never count.
    pub fn is_self_hire(&self) -> bool {
        self.client == self.provider
    }

    /// Whether this record is a success: ended `Completed` **and** the client `Accepted`.
    /// A provider-caused end is a failure even if accepted.
    pub fn is_success(&self) -> bool {
        self.end == End::Completed && self.verdict == Verdict::Accepted
    }

    /// Whether `other` can describe the same hire: same hire id, provider, agent and client
    /// (all fixed by the contract the hire id commits to).
    pub(crate) fn same_contract(&self, other: &OutcomeFacts) -> bool {
        self.hire_id == other.hire_id
            && self.provider == other.provider
            && self.agent == other.agent
            && self.client == other.client
    }

    /// Precedence between two facts of the same contract: the greater one is kept
    /// (spec/reputation.md, "Two records for one hire"). Disputed beats accepted; then an end
    /// other than completed beats completed; then greater end code, later `settled_at_ms`,
    /// more entries, higher price, greater currency (bytewise). It is a total order on facts
    /// of the same contract, so the kept fact does not depend on insertion order.
    pub(crate) fn precedence(&self, other: &OutcomeFacts) -> Ordering {
        self.precedence_key().cmp(&other.precedence_key())
    }

    fn precedence_key(&self) -> (bool, bool, u8, u64, u64, u64, &[u8]) {
        (
            self.verdict == Verdict::Disputed,
            self.end != End::Completed,
            self.end.code(),
            self.settled_at_ms,
            self.entries,
            self.price_amount,
            self.currency.as_bytes(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fact() -> OutcomeFacts {
        OutcomeFacts {
            hire_id: [1; 32],
            provider: [2; 32],
            agent: "a".into(),
            client: [3; 32],
            end: End::Completed,
            verdict: Verdict::Accepted,
            settled_at_ms: 1_700_000_000_005,
            entries: 4,
            price_amount: 10,
            currency: "USD".into(),
        }
    }

    #[test]
    fn success_needs_completed_and_accepted() {
        let mut f = fact();
        assert!(f.is_success());
        f.verdict = Verdict::Disputed;
        assert!(!f.is_success());
        for end in [
            End::Failed,
            End::Expired,
            End::CanceledByProvider,
            End::CanceledByClient,
        ] {
            f.end = end;
            f.verdict = Verdict::Accepted;
            assert!(!f.is_success(), "{end:?} accepted is not a success");
        }
    }

    #[test]
    fn self_hire_is_client_equal_to_provider() {
        let mut f = fact();
        assert!(!f.is_self_hire());
        f.client = f.provider;
        assert!(f.is_self_hire());
    }

    #[test]
    fn dispute_takes_precedence_over_acceptance() {
        let accepted = fact();
        let mut disputed = fact();
        disputed.verdict = Verdict::Disputed;
        disputed.settled_at_ms = 0; // even an earlier dispute wins
        assert_eq!(disputed.precedence(&accepted), Ordering::Greater);
        let mut failed = fact();
        failed.end = End::Failed;
        assert_eq!(failed.precedence(&accepted), Ordering::Greater);
        assert_eq!(accepted.precedence(&accepted.clone()), Ordering::Equal);
    }

    #[test]
    fn provider_caused_ends() {
        assert!(!End::Completed.is_provider_caused());
        assert!(End::Failed.is_provider_caused());
        assert!(End::Expired.is_provider_caused());
        assert!(End::CanceledByProvider.is_provider_caused());
        assert!(!End::CanceledByClient.is_provider_caused());
    }
}
