//! What a reader can do against Sybil clients: which clients' votes it counts.
//!
//! This module owns [`Policy`] (the reader's choice) and [`PolicySummary`] (what the figures
//! report about it). It never looks at records; the ledger answers the questions it asks.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

/// Which clients' votes count toward `counted`, `successes` and `success_lower_bound`.
///
/// The default counts every client (no filter). The raw counts (`settled`, `accepted`, ...)
/// never depend on the policy.
///
/// Only the trust list resists fake clients: client keys and records cost nothing to make, and
/// so do the fake providers that satisfy `min_other_providers`, which only raises the price
/// of a fake vote from one key to a few more keys and records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    /// Count a client's vote only if it has settled, verified, non-self hires with at least
    /// this many distinct providers other than the one being rated (and other than itself),
    /// not counting flagged providers. `0` = no filter. Gameable: fake providers are free.
    pub min_other_providers: u32,
    /// If set, count only these clients' votes (a trust list; a node seeds it with itself and
    /// the clients it knows). The one filter a key-making attacker cannot pass.
    pub trusted_clients: Option<BTreeSet<[u8; 32]>>,
}

impl Policy {
    /// The summary reported in [`Figures::policy`](crate::Figures::policy).
    pub fn summary(&self) -> PolicySummary {
        PolicySummary {
            min_other_providers: self.min_other_providers,
            trusted_only: self.trusted_clients.is_some(),
        }
    }

    /// Whether the trust list (if any) admits `client`.
    pub(crate) fn trusts(&self, client: &[u8; 32]) -> bool {
        self.trusted_clients
            .as_ref()
            .is_none_or(|trusted| trusted.contains(client))
    }
}

/// The policy that produced a [`Figures`](crate::Figures) (JSON: `policy`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicySummary {
    /// [`Policy::min_other_providers`].
    pub min_other_providers: u32,
    /// Whether a trust list restricted the votes.
    pub trusted_only: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_trusts_everyone() {
        let p = Policy::default();
        assert!(p.trusts(&[9; 32]));
        assert_eq!(
            p.summary(),
            PolicySummary {
                min_other_providers: 0,
                trusted_only: false
            }
        );
    }

    #[test]
    fn trust_list_admits_only_members() {
        let p = Policy {
            min_other_providers: 2,
            trusted_clients: Some([[1; 32]].into_iter().collect()),
        };
        assert!(p.trusts(&[1; 32]));
        assert!(!p.trusts(&[2; 32]));
        assert!(p.summary().trusted_only);
        assert_eq!(p.summary().min_other_providers, 2);
    }
}
