//! Lookup and insert cost of `souk-reputation` on a synthetic market, on this machine.
//!
//! `cargo bench -p souk-reputation --bench lookup` builds a ledger of 100,000 outcome facts
//! over 1,000 handles (200 providers x 5 agents) and 5,000 clients (each client hires 1-6
//! providers; settled times spread over 12 months; 85% completed, 90% accepted), then runs the
//! criterion groups:
//!
//! - `handle/*`: `Ledger::handle` on a random handle (about 100 records each) under the default
//!   policy, `min_other_providers = 2`, and a 500-client trust list;
//! - `provider/default`: `Ledger::provider` (about 500 records each);
//! - `insert+remove`: inserting a new fact into the full ledger and removing it again.
//!
//! It then prints the build time (100,000 inserts into an empty ledger) and one handle's
//! figures. Without `--bench` (as under `cargo test --benches`) it runs on 2,000 facts.

use std::collections::BTreeSet;
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::Criterion;
use souk_reputation::{End, Ledger, OutcomeFacts, Policy, Verdict};

const PROVIDERS: u32 = 200;
const AGENTS_PER_PROVIDER: u32 = 5;
const CLIENTS: u32 = 5_000;
const DAY: u64 = 24 * 60 * 60 * 1000;
/// 2024-01-01T00:00:00Z; the market spans the following 12 months.
const START: u64 = 1_704_067_200_000;
const NOW: u64 = START + 365 * DAY;

/// SplitMix64: small, fast, deterministic.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn node(tag: u8, n: u32) -> [u8; 32] {
    let mut k = [tag; 32];
    k[..4].copy_from_slice(&n.to_be_bytes());
    k
}

fn agent(a: u32) -> String {
    format!("agent-{a}")
}

/// `n` facts; each client has a fixed set of 1-6 providers it hires from.
fn market(n: u32, rng: &mut Rng) -> Vec<OutcomeFacts> {
    let favourites: Vec<Vec<u32>> = (0..CLIENTS)
        .map(|_| {
            (0..1 + rng.below(6))
                .map(|_| rng.below(u64::from(PROVIDERS)) as u32)
                .collect()
        })
        .collect();
    (0..n).map(|i| fact(i, &favourites, rng)).collect()
}

fn fact(i: u32, favourites: &[Vec<u32>], rng: &mut Rng) -> OutcomeFacts {
    let c = rng.below(u64::from(CLIENTS)) as usize;
    let p = favourites[c][rng.below(favourites[c].len() as u64) as usize];
    let end = match rng.below(100) {
        0..85 => End::Completed,
        85..92 => End::Failed,
        92..95 => End::Expired,
        95..97 => End::CanceledByProvider,
        _ => End::CanceledByClient,
    };
    let mut hire_id = [0u8; 32];
    hire_id[..8].copy_from_slice(&rng.next().to_be_bytes());
    hire_id[8..12].copy_from_slice(&i.to_be_bytes());
    OutcomeFacts {
        hire_id,
        provider: node(0xa0, p),
        agent: agent(rng.below(u64::from(AGENTS_PER_PROVIDER)) as u32),
        client: node(0xc1, c as u32),
        end,
        verdict: if rng.below(10) == 0 {
            Verdict::Disputed
        } else {
            Verdict::Accepted
        },
        settled_at_ms: START + rng.below(365 * DAY),
        entries: 3 + rng.below(40),
        price_amount: 10_000 * (1 + rng.below(500)),
        currency: "USD".into(),
    }
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let n = if full { 100_000 } else { 2_000 };
    let mut rng = Rng(42);
    let facts = market(n, &mut rng);
    let extra = market(10_000, &mut Rng(43));

    let start = Instant::now();
    let mut ledger = Ledger::new();
    for f in &facts {
        let r = ledger.insert(f.clone());
        assert!(matches!(r, Ok(souk_reputation::Inserted::Added)), "{r:?}");
    }
    let build = start.elapsed();

    let handles: Vec<([u8; 32], String)> = (0..1_000)
        .map(|_| {
            (
                node(0xa0, rng.below(u64::from(PROVIDERS)) as u32),
                agent(rng.below(u64::from(AGENTS_PER_PROVIDER)) as u32),
            )
        })
        .collect();
    let policies = [
        ("default", Policy::default()),
        (
            "min_other_providers=2",
            Policy {
                min_other_providers: 2,
                trusted_clients: None,
            },
        ),
        (
            "trust_list_500",
            Policy {
                min_other_providers: 0,
                trusted_clients: Some(
                    (0..500)
                        .map(|c| node(0xc1, c * 10))
                        .collect::<BTreeSet<_>>(),
                ),
            },
        ),
    ];

    let mut c = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    {
        let mut g = c.benchmark_group(format!("reputation-{}k", n / 1000));
        for (label, policy) in &policies {
            g.bench_function(format!("handle/{label}"), |b| {
                let mut i = 0usize;
                b.iter(|| {
                    i += 1;
                    let (p, a) = &handles[i % handles.len()];
                    ledger.handle(black_box(p), black_box(a), NOW, policy)
                })
            });
        }
        g.bench_function("provider/default", |b| {
            let mut i = 0usize;
            let policy = Policy::default();
            b.iter(|| {
                i += 1;
                ledger.provider(black_box(&handles[i % handles.len()].0), NOW, &policy)
            })
        });
        g.bench_function("insert+remove", |b| {
            let mut i = 0usize;
            b.iter(|| {
                i += 1;
                let f = &extra[i % extra.len()];
                let r = ledger.insert(black_box(f.clone()));
                ledger.remove(&f.hire_id);
                r
            })
        });
        g.finish();
    }
    c.final_summary();

    let (p, a) = &handles[0];
    println!();
    println!(
        "summary: {} facts, {} handles, {} clients; one core",
        ledger.len(),
        PROVIDERS * AGENTS_PER_PROVIDER,
        CLIENTS
    );
    println!(
        "  build ({} inserts)  {:>10}  ({:.2} us per insert)",
        n,
        ms(build),
        build.as_secs_f64() * 1e6 / f64::from(n)
    );
    for (label, policy) in &policies {
        println!("  {label}: {:?}", ledger.handle(p, a, NOW, policy));
    }
}
