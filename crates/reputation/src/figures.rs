//! The reputation figures of one handle or one provider, and the exact computation that turns
//! a set of verified outcome facts into them (spec/reputation.md, "The computation").
//!
//! This module owns [`Figures`] and [`compute`]. It never decides which records belong to a
//! handle (the ledger does) and never reads a record that the caller did not verify.

use serde::{Deserialize, Serialize};

use crate::facts::{End, OutcomeFacts, Verdict};
use crate::policy::{Policy, PolicySummary};
use crate::wilson::wilson_lower_bound;

/// `recent_settled` counts records settled at or after `now_ms - RECENT_MS`: 30 days.
pub const RECENT_MS: u64 = 30 * 24 * 60 * 60 * 1000;

/// Reputation figures of a handle (`<provider>/<agent>`) or of a provider (all its agents).
///
/// Serialized with these snake_case field names; the node nests the object under
/// `reputation`. The raw counts cover every non-self-hire record held; `counted`, `successes`,
/// `success_lower_bound` and `success_rate_raw` cover the votes the [`Policy`] admits.
///
/// Each client casts **one vote, all time**, for a handle (or, in provider figures, for the
/// provider): its latest record decides it. So `counted <= distinct_clients` always, and no
/// choice of timestamps buys a client a second vote. A vote costs whoever fakes it one client
/// key, nothing more; read the bound beside `distinct_clients` and under a trust list
/// (spec/reputation.md, "Sybil analysis").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Figures {
    /// Records (settled hires), self-hires excluded.
    pub settled: u64,
    /// Records whose client accepted (any end).
    pub accepted: u64,
    /// Records whose client disputed (any end).
    pub rejected: u64,
    /// Records that ended `completed`.
    pub completed: u64,
    /// Records that ended `failed`.
    pub failed: u64,
    /// Records that ended `expired`.
    pub expired: u64,
    /// Records the provider canceled.
    pub canceled_by_provider: u64,
    /// Records the client canceled.
    pub canceled_by_client: u64,
    /// Records whose client is the provider itself: held but never counted anywhere else.
    pub self_hires: u64,
    /// Distinct clients among the `settled` records (self-hires excluded; any policy).
    pub distinct_clients: u64,
    /// Number of votes: distinct clients among the records the policy admits (one vote per
    /// client, all time).
    pub counted: u64,
    /// Votes that are successes (the client's latest record, by `(settled_at_ms, hire_id)`,
    /// completed and was accepted).
    pub successes: u64,
    /// Wilson score lower bound (z = 1.96) of `successes` out of `counted`, in `[0, 1]`; `0`
    /// with no votes. The headline figure.
    pub success_lower_bound: f64,
    /// `successes / counted`, `null` with no votes. Never the headline: it ranks one lucky vote
    /// above a thousand good ones.
    pub success_rate_raw: Option<f64>,
    /// The latest `settled_at_ms` among the records, if any.
    pub last_settled_at_ms: Option<u64>,
    /// Records settled in the last 30 days (`settled_at_ms >= now_ms - RECENT_MS`). A plain
    /// count of records: it takes no part in the votes.
    pub recent_settled: u64,
    /// Whether the provider is flagged (a verified equivocation proof is held).
    pub flagged: bool,
    /// The policy that produced the vote figures.
    pub policy: PolicySummary,
}

/// Computes the figures of the given records (all of one handle, or all of one provider).
///
/// `other_providers_ok(client)` answers the policy's `min_other_providers` question for the
/// rated provider; it is asked at most once per client, and only for clients on the trust
/// list (if any). The result does not depend on the order of `records`.
pub(crate) fn compute<'a>(
    records: impl Iterator<Item = &'a OutcomeFacts>,
    now_ms: u64,
    flagged: bool,
    policy: &Policy,
    mut other_providers_ok: impl FnMut(&[u8; 32]) -> bool,
) -> Figures {
    let mut f = Figures {
        settled: 0,
        accepted: 0,
        rejected: 0,
        completed: 0,
        failed: 0,
        expired: 0,
        canceled_by_provider: 0,
        canceled_by_client: 0,
        self_hires: 0,
        distinct_clients: 0,
        counted: 0,
        successes: 0,
        success_lower_bound: 0.0,
        success_rate_raw: None,
        last_settled_at_ms: None,
        recent_settled: 0,
        flagged,
        policy: policy.summary(),
    };
    let recent_from = now_ms.saturating_sub(RECENT_MS);
    let mut counted: Vec<&OutcomeFacts> = Vec::new();

    for r in records {
        if r.is_self_hire() {
            f.self_hires += 1;
            continue;
        }
        f.settled += 1;
        match r.verdict {
            Verdict::Accepted => f.accepted += 1,
            Verdict::Disputed => f.rejected += 1,
        }
        match r.end {
            End::Completed => f.completed += 1,
            End::Failed => f.failed += 1,
            End::Expired => f.expired += 1,
            End::CanceledByProvider => f.canceled_by_provider += 1,
            End::CanceledByClient => f.canceled_by_client += 1,
        }
        f.last_settled_at_ms = Some(
            f.last_settled_at_ms
                .map_or(r.settled_at_ms, |t| t.max(r.settled_at_ms)),
        );
        if r.settled_at_ms >= recent_from {
            f.recent_settled += 1;
        }
        counted.push(r);
    }

    // Runs of one client, each in settled order: the last record of a client's run is its
    // latest, and decides its one vote.
    counted.sort_unstable_by(|a, b| {
        (a.client, a.settled_at_ms, a.hire_id).cmp(&(b.client, b.settled_at_ms, b.hire_id))
    });
    for (i, r) in counted.iter().enumerate() {
        let last_of_client = counted.get(i + 1).is_none_or(|n| n.client != r.client);
        if !last_of_client {
            continue;
        }
        f.distinct_clients += 1;
        if policy.trusts(&r.client) && other_providers_ok(&r.client) {
            f.counted += 1;
            if r.is_success() {
                f.successes += 1;
            }
        }
    }

    f.success_lower_bound = wilson_lower_bound(f.successes, f.counted);
    f.success_rate_raw = (f.counted > 0).then(|| f.successes as f64 / f.counted as f64);
    f
}
