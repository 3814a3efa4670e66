//! Behaviour of the ledger and the figures: unit tests, and property tests against a naive,
//! independent implementation of the computation in spec/reputation.md.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use crate::*;

const P: [u8; 32] = [0xa0; 32];
const DAY: u64 = 24 * 60 * 60 * 1000;
const MONTH: u64 = 30 * DAY;
/// Some time 600 months after the epoch (mid-2019).
const T: u64 = 600 * MONTH + DAY;

fn key(n: u32) -> [u8; 32] {
    let mut k = [0u8; 32];
    k[..4].copy_from_slice(&n.to_be_bytes());
    k
}

fn client(n: u32) -> [u8; 32] {
    let mut k = key(n);
    k[31] = 0xc1;
    k
}

fn fact(hire: u32, client: [u8; 32], at: u64, end: End, verdict: Verdict) -> OutcomeFacts {
    OutcomeFacts {
        hire_id: key(hire),
        provider: P,
        agent: "csv-analyst".into(),
        client,
        end,
        verdict,
        settled_at_ms: at,
        entries: 5,
        price_amount: 1_000_000,
        currency: "USD".into(),
    }
}

fn add(ledger: &mut Ledger, f: OutcomeFacts) -> Inserted {
    ledger.insert(f).unwrap_or_else(|e| panic!("insert: {e}"))
}

fn success(hire: u32, c: [u8; 32], at: u64) -> OutcomeFacts {
    fact(hire, c, at, End::Completed, Verdict::Accepted)
}

fn handle(ledger: &Ledger, policy: &Policy) -> Figures {
    ledger.handle(&P, "csv-analyst", T, policy)
}

#[test]
fn empty_handle_has_zero_figures() {
    let f = handle(&Ledger::new(), &Policy::default());
    assert_eq!(
        (f.settled, f.counted, f.successes, f.distinct_clients),
        (0, 0, 0, 0)
    );
    assert_eq!(f.success_lower_bound.to_bits(), 0.0f64.to_bits());
    assert_eq!(f.success_rate_raw, None);
    assert_eq!(f.last_settled_at_ms, None);
    assert!(!f.flagged);
}

#[test]
fn one_client_hiring_a_thousand_times_is_one_vote() {
    let mut ledger = Ledger::new();
    for i in 0..1000 {
        add(&mut ledger, success(i, client(1), T - DAY + u64::from(i)));
    }
    let f = handle(&ledger, &Policy::default());
    assert_eq!((f.settled, f.accepted, f.completed), (1000, 1000, 1000));
    assert_eq!((f.distinct_clients, f.counted, f.successes), (1, 1, 1));
    assert_eq!(f.success_lower_bound, wilson_lower_bound(1, 1));
}

/// Settled times are signed by the parties to a record, so they are free: a client key whose
/// records are back-dated into 1000 different 30-day periods still casts one vote.
#[test]
fn a_clients_records_in_a_thousand_months_are_one_vote() {
    let mut ledger = Ledger::new();
    for i in 0..1000u32 {
        add(&mut ledger, success(i, client(1), u64::from(i) * MONTH + 7));
    }
    add(&mut ledger, success(5000, client(2), T));
    let f = ledger.handle(&P, "csv-analyst", 1000 * MONTH, &Policy::default());
    assert_eq!(f.settled, 1001);
    assert_eq!((f.distinct_clients, f.counted, f.successes), (2, 2, 2));
    assert_eq!(f.success_lower_bound, wilson_lower_bound(2, 2));
    assert_eq!(
        f.recent_settled, 1,
        "only the record of the last 30 days is recent"
    );
    assert_eq!(f.last_settled_at_ms, Some(999 * MONTH + 7));

    // The client's latest record decides its one vote, however old the others are.
    add(
        &mut ledger,
        fact(
            9000,
            client(1),
            2000 * MONTH,
            End::Failed,
            Verdict::Disputed,
        ),
    );
    let f = ledger.handle(&P, "csv-analyst", 1000 * MONTH, &Policy::default());
    assert_eq!((f.counted, f.successes), (2, 1));
    assert_eq!(
        f.recent_settled, 2,
        "a record settled after `now` (clock skew) counts as recent"
    );
}

#[test]
fn the_latest_record_decides_the_vote() {
    let mut ledger = Ledger::new();
    add(&mut ledger, success(1, client(1), T - 10));
    add(
        &mut ledger,
        fact(2, client(1), T - 5, End::Completed, Verdict::Disputed),
    );
    let f = handle(&ledger, &Policy::default());
    assert_eq!(
        (f.counted, f.successes, f.accepted, f.rejected),
        (1, 0, 1, 1)
    );

    // A later success turns the vote back.
    add(&mut ledger, success(3, client(1), T - 1));
    assert_eq!(handle(&ledger, &Policy::default()).successes, 1);
    // An old failure does not change it; a failure months later does.
    add(
        &mut ledger,
        fact(4, client(1), T - 40 * MONTH, End::Failed, Verdict::Accepted),
    );
    assert_eq!(handle(&ledger, &Policy::default()).successes, 1);
    add(
        &mut ledger,
        fact(5, client(1), T + 7 * MONTH, End::Expired, Verdict::Accepted),
    );
    let f = handle(&ledger, &Policy::default());
    assert_eq!((f.counted, f.successes, f.settled), (1, 0, 5));

    // Same settled time: the greater hire id is the latest.
    let mut ledger = Ledger::new();
    add(&mut ledger, success(9, client(1), T));
    add(
        &mut ledger,
        fact(8, client(1), T, End::Failed, Verdict::Accepted),
    );
    assert_eq!(handle(&ledger, &Policy::default()).successes, 1);
    let mut ledger = Ledger::new();
    add(&mut ledger, success(8, client(1), T));
    add(
        &mut ledger,
        fact(9, client(1), T, End::Failed, Verdict::Accepted),
    );
    assert_eq!(handle(&ledger, &Policy::default()).successes, 0);
}

#[test]
fn self_hires_are_ignored() {
    let mut ledger = Ledger::new();
    for i in 0..50 {
        add(&mut ledger, success(i, P, T - u64::from(i)));
    }
    add(
        &mut ledger,
        fact(100, client(1), T, End::Failed, Verdict::Disputed),
    );
    let f = handle(&ledger, &Policy::default());
    assert_eq!(f.self_hires, 50);
    assert_eq!((f.settled, f.accepted, f.distinct_clients), (1, 0, 1));
    assert_eq!((f.counted, f.successes), (1, 0));
    assert_eq!(f.last_settled_at_ms, Some(T));
}

#[test]
fn provider_caused_ends_fail_even_if_accepted_and_client_cancel_fails_too() {
    for (i, end) in [
        End::Failed,
        End::Expired,
        End::CanceledByProvider,
        End::CanceledByClient,
    ]
    .into_iter()
    .enumerate()
    {
        let mut ledger = Ledger::new();
        add(&mut ledger, fact(1, client(1), T, end, Verdict::Accepted));
        let f = handle(&ledger, &Policy::default());
        assert_eq!((f.counted, f.successes, f.accepted), (1, 0, 1), "{end:?}");
        let counts = [
            f.failed,
            f.expired,
            f.canceled_by_provider,
            f.canceled_by_client,
        ];
        let mut want = [0; 4];
        want[i] = 1;
        assert_eq!(counts, want, "{end:?}");
    }
}

#[test]
fn a_dispute_is_never_displaced() {
    let accepted = success(1, client(1), T);
    let mut disputed = accepted.clone();
    disputed.verdict = Verdict::Disputed;
    disputed.settled_at_ms = T - 100;

    let mut ledger = Ledger::new();
    assert_eq!(add(&mut ledger, disputed.clone()), Inserted::Added);
    assert_eq!(add(&mut ledger, accepted.clone()), Inserted::Unchanged);
    assert_eq!(add(&mut ledger, disputed.clone()), Inserted::Unchanged);
    assert_eq!(ledger.get(&key(1)), Some(&disputed));

    let mut ledger = Ledger::new();
    assert_eq!(add(&mut ledger, accepted.clone()), Inserted::Added);
    assert_eq!(
        add(&mut ledger, disputed.clone()),
        Inserted::Replaced(accepted)
    );
    assert_eq!(ledger.len(), 1);
    let f = handle(&ledger, &Policy::default());
    assert_eq!((f.settled, f.rejected, f.successes), (1, 1, 0));
    assert_eq!(ledger.last(&P, "csv-analyst", 10), vec![&disputed]);
}

#[test]
fn conflicting_contract_fields_are_refused() {
    let mut ledger = Ledger::new();
    add(&mut ledger, success(1, client(1), T));
    let mut other = success(1, client(2), T);
    assert_eq!(
        ledger.insert(other.clone()),
        Err(InsertError::ContractMismatch { hire_id: key(1) })
    );
    other.client = client(1);
    other.agent = "other".into();
    assert!(matches!(
        ledger.insert(other),
        Err(InsertError::ContractMismatch { .. })
    ));
    assert_eq!(ledger.get(&key(1)), Some(&success(1, client(1), T)));
}

#[test]
fn remove_forgets_every_trace() {
    let mut ledger = Ledger::new();
    let mut elsewhere = success(2, client(1), T);
    elsewhere.provider = key(77);
    add(&mut ledger, elsewhere);
    add(&mut ledger, success(1, client(1), T));
    let policy = Policy {
        min_other_providers: 1,
        trusted_clients: None,
    };
    assert_eq!(handle(&ledger, &policy).counted, 1);
    assert!(ledger.remove(&key(2)).is_some());
    assert_eq!(ledger.remove(&key(2)), None);
    assert_eq!(
        handle(&ledger, &policy).counted,
        0,
        "client no longer hires another provider"
    );
    assert!(ledger.remove(&key(1)).is_some());
    assert!(ledger.is_empty());
    assert!(ledger.agents(&P).is_empty());
    assert_eq!(handle(&ledger, &Policy::default()).settled, 0);
}

#[test]
fn min_other_providers_counts_distinct_unflagged_other_providers() {
    let mut ledger = Ledger::new();
    let (q1, q2) = (key(501), key(502));
    // Client 1 hires P and two other providers; client 2 only P; client 3 P and q1.
    add(&mut ledger, success(1, client(1), T));
    add(&mut ledger, success(2, client(2), T));
    add(&mut ledger, success(3, client(3), T));
    for (hire, c, q) in [
        (10, client(1), q1),
        (11, client(1), q2),
        (12, client(1), q2),
        (13, client(3), q1),
    ] {
        let mut f = success(hire, c, T);
        f.provider = q;
        add(&mut ledger, f);
    }
    // Client 2 "hires" itself as a provider: not another provider.
    let mut own = success(20, client(2), T);
    own.provider = client(2);
    add(&mut ledger, own);

    let at_least = |n| Policy {
        min_other_providers: n,
        trusted_clients: None,
    };
    assert_eq!(handle(&ledger, &at_least(0)).counted, 3);
    assert_eq!(handle(&ledger, &at_least(1)).counted, 2);
    assert_eq!(handle(&ledger, &at_least(2)).counted, 1);
    assert_eq!(handle(&ledger, &at_least(3)).counted, 0);
    // Raw counts do not depend on the policy.
    assert_eq!(handle(&ledger, &at_least(3)).settled, 3);
    assert_eq!(handle(&ledger, &at_least(2)).policy.min_other_providers, 2);

    // A flagged provider is not evidence.
    assert!(ledger.flag(q1));
    assert!(!ledger.flag(q1));
    assert_eq!(handle(&ledger, &at_least(1)).counted, 1);
    assert!(ledger.provider(&q1, T, &Policy::default()).flagged);
    assert!(!handle(&ledger, &Policy::default()).flagged);
}

#[test]
fn trust_list_counts_only_trusted_clients() {
    let mut ledger = Ledger::new();
    add(&mut ledger, success(1, client(1), T));
    add(
        &mut ledger,
        fact(2, client(2), T, End::Failed, Verdict::Disputed),
    );
    let policy = Policy {
        min_other_providers: 0,
        trusted_clients: Some([client(2)].into_iter().collect()),
    };
    let f = handle(&ledger, &policy);
    assert_eq!(
        (f.settled, f.distinct_clients, f.counted, f.successes),
        (2, 2, 1, 0)
    );
    assert!(f.policy.trusted_only);
}

#[test]
fn provider_figures_span_agents_with_one_vote_per_client() {
    let mut ledger = Ledger::new();
    add(&mut ledger, success(1, client(1), T));
    let mut b = fact(2, client(1), T + 1, End::Failed, Verdict::Disputed);
    b.agent = "translator".into();
    add(&mut ledger, b);
    assert_eq!(ledger.agents(&P), vec!["csv-analyst", "translator"]);
    let a = ledger.handle(&P, "csv-analyst", T, &Policy::default());
    assert_eq!((a.counted, a.successes), (1, 1));
    let t = ledger.handle(&P, "translator", T, &Policy::default());
    assert_eq!((t.counted, t.successes), (1, 0));
    let all = ledger.provider(&P, T, &Policy::default());
    assert_eq!((all.settled, all.counted, all.successes), (2, 1, 0));
}

#[test]
fn last_is_latest_first_with_ties_by_hire_id() {
    let mut ledger = Ledger::new();
    add(&mut ledger, success(1, client(1), T - 10));
    add(&mut ledger, success(3, client(1), T));
    add(&mut ledger, success(2, client(1), T));
    add(&mut ledger, success(4, client(1), T - 20));
    let ids: Vec<[u8; 32]> = ledger
        .last(&P, "csv-analyst", 3)
        .iter()
        .map(|f| f.hire_id)
        .collect();
    assert_eq!(ids, vec![key(3), key(2), key(1)]);
    assert_eq!(ledger.last(&P, "csv-analyst", 10).len(), 4);
    assert!(ledger.last(&P, "nobody", 10).is_empty());
}

#[test]
fn recency() {
    let mut ledger = Ledger::new();
    add(&mut ledger, success(1, client(1), T - RECENT_MS - 1));
    add(&mut ledger, success(2, client(2), T - RECENT_MS));
    add(&mut ledger, success(3, client(3), T - 5));
    let f = handle(&ledger, &Policy::default());
    assert_eq!(f.recent_settled, 2);
    assert_eq!(f.last_settled_at_ms, Some(T - 5));
    // `now` near the epoch does not underflow.
    assert_eq!(
        ledger
            .handle(&P, "csv-analyst", 0, &Policy::default())
            .recent_settled,
        3
    );
}

#[test]
fn json_field_names() {
    let mut ledger = Ledger::new();
    add(&mut ledger, success(1, client(1), T));
    let v =
        serde_json::to_value(handle(&ledger, &Policy::default())).unwrap_or_else(|e| panic!("{e}"));
    let obj = v.as_object().unwrap_or_else(|| panic!("not an object"));
    let keys: BTreeSet<&str> = obj.keys().map(String::as_str).collect();
    let want: BTreeSet<&str> = [
        "settled",
        "accepted",
        "rejected",
        "completed",
        "failed",
        "expired",
        "canceled_by_provider",
        "canceled_by_client",
        "self_hires",
        "distinct_clients",
        "counted",
        "successes",
        "success_lower_bound",
        "success_rate_raw",
        "last_settled_at_ms",
        "recent_settled",
        "flagged",
        "policy",
    ]
    .into_iter()
    .collect();
    assert_eq!(keys, want);
    assert_eq!(
        v["policy"],
        serde_json::json!({"min_other_providers": 0, "trusted_only": false})
    );
    assert_eq!(
        v["success_lower_bound"].as_f64(),
        Some(wilson_lower_bound(1, 1))
    );
    let back: Figures = serde_json::from_value(v).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(back, handle(&ledger, &Policy::default()));
}

// ---------------------------------------------------------------------------------------------
// Property tests.

/// The computation of spec/reputation.md, written as directly as possible from the pseudo-code,
/// over every fact held (no indexes).
fn naive(
    all: &[OutcomeFacts],
    flagged: &BTreeSet<[u8; 32]>,
    provider: [u8; 32],
    agent: Option<&str>,
    now: u64,
    policy: &Policy,
) -> Figures {
    let rated: Vec<&OutcomeFacts> = all
        .iter()
        .filter(|r| r.provider == provider && agent.is_none_or(|a| r.agent == a))
        .collect();
    let counted: Vec<&&OutcomeFacts> = rated.iter().filter(|r| r.client != r.provider).collect();
    let admitted = |c: &[u8; 32]| {
        let trusted = policy
            .trusted_clients
            .as_ref()
            .is_none_or(|t| t.contains(c));
        let others: BTreeSet<[u8; 32]> = all
            .iter()
            .filter(|r| r.client == *c && r.client != r.provider)
            .map(|r| r.provider)
            .filter(|q| *q != provider && !flagged.contains(q))
            .collect();
        trusted && others.len() as u64 >= u64::from(policy.min_other_providers)
    };
    // client -> (settled_at_ms, hire_id, success) of its latest record.
    type Groups = BTreeMap<[u8; 32], (u64, [u8; 32], bool)>;
    let mut groups = Groups::new();
    for r in counted.iter().filter(|r| admitted(&r.client)) {
        let cand = (
            r.settled_at_ms,
            r.hire_id,
            r.end == End::Completed && r.verdict == Verdict::Accepted,
        );
        let g = groups.entry(r.client).or_insert(cand);
        if (cand.0, cand.1) > (g.0, g.1) {
            *g = cand;
        }
    }
    let n = groups.len() as u64;
    let s = groups.values().filter(|g| g.2).count() as u64;
    let count = |p: &dyn Fn(&OutcomeFacts) -> bool| counted.iter().filter(|r| p(r)).count() as u64;
    Figures {
        settled: counted.len() as u64,
        accepted: count(&|r| r.verdict == Verdict::Accepted),
        rejected: count(&|r| r.verdict == Verdict::Disputed),
        completed: count(&|r| r.end == End::Completed),
        failed: count(&|r| r.end == End::Failed),
        expired: count(&|r| r.end == End::Expired),
        canceled_by_provider: count(&|r| r.end == End::CanceledByProvider),
        canceled_by_client: count(&|r| r.end == End::CanceledByClient),
        self_hires: (rated.len() - counted.len()) as u64,
        distinct_clients: counted
            .iter()
            .map(|r| r.client)
            .collect::<BTreeSet<_>>()
            .len() as u64,
        counted: n,
        successes: s,
        success_lower_bound: wilson_lower_bound(s, n),
        success_rate_raw: (n > 0).then(|| s as f64 / n as f64),
        last_settled_at_ms: counted.iter().map(|r| r.settled_at_ms).max(),
        recent_settled: count(&|r| r.settled_at_ms >= now.saturating_sub(RECENT_MS)),
        flagged: flagged.contains(&provider),
        policy: policy.summary(),
    }
}

const ENDS: [End; 5] = [
    End::Completed,
    End::Failed,
    End::Expired,
    End::CanceledByProvider,
    End::CanceledByClient,
];

/// Facts over a small world (3 providers, 2 agent names, 6 clients, some of them providers,
/// 4 months) so that a client's several records, self-hires and duplicate hire ids happen often. The contract
/// fields (provider, agent, client) are a function of the hire id, as with real records.
fn arb_fact() -> impl Strategy<Value = OutcomeFacts> {
    (
        0u32..60,
        0usize..5,
        any::<bool>(),
        0u64..4 * MONTH,
        0u64..3,
        0u64..3,
    )
        .prop_map(|(hire, end, disputed, at, entries, price)| {
            let h = hire.wrapping_mul(2_654_435_761);
            let provider = key(1 + h % 3);
            // Clients 1..=3 are also the providers' keys: self-hires and provider-clients.
            let c = (h >> 8) % 6;
            OutcomeFacts {
                hire_id: key(hire),
                provider,
                agent: if (h >> 16) % 2 == 0 {
                    "a".into()
                } else {
                    "b".into()
                },
                client: if c < 3 { key(1 + c) } else { client(c) },
                end: ENDS[end],
                verdict: if disputed {
                    Verdict::Disputed
                } else {
                    Verdict::Accepted
                },
                settled_at_ms: MONTH + at,
                entries,
                price_amount: price,
                currency: "USD".into(),
            }
        })
}

fn arb_policy() -> impl Strategy<Value = Policy> {
    (
        0u32..3,
        proptest::option::of(proptest::collection::btree_set(0u32..6, 0..4)),
    )
        .prop_map(|(min, trusted)| Policy {
            min_other_providers: min,
            trusted_clients: trusted.map(|t| {
                t.into_iter()
                    .map(|c| if c < 3 { key(1 + c) } else { client(c) })
                    .collect()
            }),
        })
}

/// What the ledger holds after inserting `facts` in order, per hire id: the greatest by
/// precedence, computed independently of the ledger.
fn kept(facts: &[OutcomeFacts]) -> Vec<OutcomeFacts> {
    let mut by_id: BTreeMap<[u8; 32], OutcomeFacts> = BTreeMap::new();
    for f in facts {
        let e = by_id.entry(f.hire_id).or_insert_with(|| f.clone());
        if f.precedence(e).is_gt() {
            *e = f.clone();
        }
    }
    by_id.into_values().collect()
}

fn all_figures(ledger: &Ledger, policy: &Policy, now: u64) -> Vec<Figures> {
    let mut out = Vec::new();
    for p in 1..=3 {
        out.push(ledger.provider(&key(p), now, policy));
        for a in ["a", "b"] {
            out.push(ledger.handle(&key(p), a, now, policy));
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn lower_bound_is_in_unit_interval_and_monotone(n in 0u64..2_000_000, s_frac in 0.0f64..=1.0) {
        let s = ((n as f64) * s_frac) as u64;
        let lb = wilson_lower_bound(s, n);
        prop_assert!((0.0..=1.0).contains(&lb));
        prop_assert!(lb <= s as f64 / n.max(1) as f64);
        // One more success vote never lowers it; one more failure vote never raises it.
        prop_assert!(wilson_lower_bound(s + 1, n + 1) >= lb);
        prop_assert!(wilson_lower_bound(s, n + 1) <= lb);
        // More successes among the same votes never lower it.
        if s < n {
            prop_assert!(wilson_lower_bound(s + 1, n) >= lb);
        }
    }

    #[test]
    fn ledger_agrees_with_the_naive_computation(
        facts in proptest::collection::vec(arb_fact(), 0..80),
        policy in arb_policy(),
        flag in proptest::option::of(1u32..=3),
        now in 0u64..6 * MONTH,
    ) {
        let mut ledger = Ledger::new();
        for f in &facts {
            ledger.insert(f.clone()).unwrap_or_else(|e| panic!("{e}"));
        }
        let mut flagged = BTreeSet::new();
        if let Some(p) = flag {
            ledger.flag(key(p));
            flagged.insert(key(p));
        }
        let held = kept(&facts);
        prop_assert_eq!(ledger.len(), held.len());
        for p in 1..=3 {
            prop_assert_eq!(
                ledger.provider(&key(p), now, &policy),
                naive(&held, &flagged, key(p), None, now, &policy)
            );
            for a in ["a", "b"] {
                prop_assert_eq!(
                    ledger.handle(&key(p), a, now, &policy),
                    naive(&held, &flagged, key(p), Some(a), now, &policy)
                );
            }
        }
    }

    #[test]
    fn insertion_order_and_duplicates_do_not_change_figures(
        facts in proptest::collection::vec(arb_fact(), 0..80),
        policy in arb_policy(),
        seed in any::<u64>(),
    ) {
        let mut a = Ledger::new();
        for f in &facts {
            a.insert(f.clone()).unwrap_or_else(|e| panic!("{e}"));
        }
        // Another order (a seeded shuffle), every fact twice.
        let mut shuffled: Vec<OutcomeFacts> = facts.iter().chain(facts.iter()).cloned().collect();
        let mut x = seed | 1;
        for i in (1..shuffled.len()).rev() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            shuffled.swap(i, (x % (i as u64 + 1)) as usize);
        }
        let mut b = Ledger::new();
        for f in shuffled {
            b.insert(f).unwrap_or_else(|e| panic!("{e}"));
        }
        prop_assert_eq!(all_figures(&a, &policy, 3 * MONTH), all_figures(&b, &policy, 3 * MONTH));
        for p in 1..=3 {
            for name in ["a", "b"] {
                prop_assert_eq!(a.last(&key(p), name, 5), b.last(&key(p), name, 5));
            }
        }
    }

    #[test]
    fn removal_leaves_the_figures_of_the_rest(
        facts in proptest::collection::vec(arb_fact(), 0..60),
        removed in proptest::collection::btree_set(0u32..60, 0..30),
        policy in arb_policy(),
    ) {
        let mut ledger = Ledger::new();
        for f in &facts {
            ledger.insert(f.clone()).unwrap_or_else(|e| panic!("{e}"));
        }
        for r in &removed {
            ledger.remove(&key(*r));
        }
        let rest: Vec<OutcomeFacts> = kept(&facts)
            .into_iter()
            .filter(|f| !removed.iter().any(|r| key(*r) == f.hire_id))
            .collect();
        let mut fresh = Ledger::new();
        for f in &rest {
            fresh.insert(f.clone()).unwrap_or_else(|e| panic!("{e}"));
        }
        prop_assert_eq!(all_figures(&ledger, &policy, 2 * MONTH), all_figures(&fresh, &policy, 2 * MONTH));
    }

    /// Timestamps are chosen by the record's signers, so they must not buy votes: re-dating
    /// every record (anywhere in 0..2^50 ms) leaves `counted` and `distinct_clients` alone, and
    /// `counted` is the number of admitted distinct clients, never more than
    /// `distinct_clients`.
    #[test]
    fn timestamps_cannot_buy_votes(
        facts in proptest::collection::vec(arb_fact(), 0..80),
        times in proptest::collection::vec(0u64..1 << 50, 80),
        policy in arb_policy(),
    ) {
        let mut a = Ledger::new();
        let mut b = Ledger::new();
        for (f, t) in facts.iter().zip(&times) {
            a.insert(f.clone()).unwrap_or_else(|e| panic!("{e}"));
            let mut redated = f.clone();
            redated.settled_at_ms = *t;
            b.insert(redated).unwrap_or_else(|e| panic!("{e}"));
        }
        for (fa, fb) in all_figures(&a, &policy, 3 * MONTH)
            .iter()
            .zip(&all_figures(&b, &policy, 3 * MONTH))
        {
            prop_assert_eq!(fa.counted, fb.counted);
            prop_assert_eq!(fa.distinct_clients, fb.distinct_clients);
            prop_assert!(fa.counted <= fa.distinct_clients);
            if policy == Policy::default() {
                prop_assert_eq!(fa.counted, fa.distinct_clients);
            }
        }
    }

    #[test]
    fn a_new_clients_success_never_lowers_and_failure_never_raises(
        facts in proptest::collection::vec(arb_fact(), 0..60),
        success in any::<bool>(),
    ) {
        let mut ledger = Ledger::new();
        for f in &facts {
            ledger.insert(f.clone()).unwrap_or_else(|e| panic!("{e}"));
        }
        let before = ledger.handle(&key(1), "a", 0, &Policy::default());
        let mut extra = fact(
            1000,
            client(99),
            MONTH,
            if success { End::Completed } else { End::Failed },
            Verdict::Accepted,
        );
        extra.provider = key(1);
        extra.agent = "a".into();
        ledger.insert(extra).unwrap_or_else(|e| panic!("{e}"));
        let after = ledger.handle(&key(1), "a", 0, &Policy::default());
        prop_assert_eq!(after.counted, before.counted + 1);
        if success {
            prop_assert!(after.success_lower_bound >= before.success_lower_bound);
        } else {
            prop_assert!(after.success_lower_bound <= before.success_lower_bound);
        }
    }
}
