//! Search latency of `souk-index` over 100k signed manifests, on this machine.
//!
//! `cargo bench -p souk-index --bench search` builds a synthetic market (2,000 providers x
//! 50 agents; a 5,000-word Zipf vocabulary; 200 capability tags, 1-5 per agent, Zipf
//! popularity; descriptions of 20-60 words; log-uniform prices; 90% USD), runs the criterion
//! groups (each iteration is the next of 1,000 random queries of one kind), then prints a
//! summary: index build time, approximate memory, and p50/p99/max latency per query kind
//! over the same 1,000 queries timed one by one with `std::time::Instant`. After the build,
//! 70% of agents get a reputation from a synthetic outcome history (Laplace rank, Wilson
//! lower bound, as the node computes them) and 1% of providers are flagged.
//! Goal (issue #5): p99 <= 5 ms for every kind.
//!
//! Without `--bench` (as under `cargo test --benches`) it runs on 2,000 manifests.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::Criterion;
use souk_index::{AgentReputation, Index, Inserted, Query};
use souk_protocol::manifest::Manifest;
use souk_protocol::vectors::{T0, manifest_body};
use souk_protocol::{Keypair, Signed};

const VOCAB: usize = 5_000;
const TAGS: usize = 200;
const AGENTS_PER_PROVIDER: usize = 50;
const QUERIES: usize = 1_000;
const HOUR: u64 = 3600 * 1000;
/// The time every query runs at: 6 h after issue; about 3% of manifests have expired.
const NOW: u64 = T0 + 6 * HOUR;
/// Zipf ranks below this are "common" words, at or above `RARE_FROM` "rare".
const COMMON_BELOW: usize = 100;
const RARE_FROM: usize = 1_000;

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

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo)
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Ranks drawn with probability proportional to `1 / (rank + 1)`.
struct Zipf {
    cumulative: Vec<f64>,
}

impl Zipf {
    fn new(n: usize) -> Self {
        let mut acc = 0.0;
        let cumulative = (0..n)
            .map(|r| {
                acc += 1.0 / (r as f64 + 1.0);
                acc
            })
            .collect();
        Zipf { cumulative }
    }

    fn sample(&self, rng: &mut Rng) -> usize {
        let total = self.cumulative.last().copied().unwrap_or(1.0);
        let x = rng.unit() * total;
        self.cumulative
            .partition_point(|&c| c < x)
            .min(self.cumulative.len() - 1)
    }
}

/// Distinct pronounceable words: two to three consonant-vowel syllables.
fn word(i: usize) -> String {
    const C: &[u8] = b"bcdfghjklmnprstvwxyz";
    const V: &[u8] = b"aeiou";
    let syl = |n: usize| [C[n % 20] as char, V[n / 20 % 5] as char];
    let mut w: String = syl(i % 100).into_iter().chain(syl(i / 100 % 100)).collect();
    if i.is_multiple_of(3) {
        w.extend(syl(i.wrapping_mul(7) % 100));
    }
    w
}

struct Market {
    words: Vec<String>,
    tags: Vec<String>,
    word_zipf: Zipf,
    tag_zipf: Zipf,
    providers: Vec<Keypair>,
    manifests: Vec<Signed<Manifest>>,
}

fn market(n: usize) -> Market {
    let mut rng = Rng(0x50_0C);
    let words: Vec<String> = (0..VOCAB).map(word).collect();
    let tags: Vec<String> = (0..TAGS)
        .map(|i| match i % 4 {
            0 => word(VOCAB + i),
            1 => format!("{}-{}", word(VOCAB + i), word(i)),
            2 => format!("{}.{}", word(VOCAB + i), word(i + 7)),
            _ => format!("lang:{}", word(VOCAB + i)),
        })
        .collect();
    let word_zipf = Zipf::new(VOCAB);
    let tag_zipf = Zipf::new(TAGS);
    let providers: Vec<Keypair> = (0..n.div_ceil(AGENTS_PER_PROVIDER))
        .map(|p| {
            let mut seed = [0u8; 32];
            seed[..8].copy_from_slice(&(p as u64 + 1).to_le_bytes());
            Keypair::from_seed(&seed)
        })
        .collect();
    let mut manifests = Vec::with_capacity(n);
    for (p, key) in providers.iter().enumerate() {
        let template = manifest_body(key);
        for a in 0..AGENTS_PER_PROVIDER {
            if manifests.len() == n {
                break;
            }
            let mut m = template.clone();
            m.name = format!(
                "{}-{}-{a}",
                words[rng.below(VOCAB)],
                words[word_zipf.sample(&mut rng)]
            );
            let mut caps: Vec<String> = (0..rng.range(1, 6))
                .map(|_| tags[tag_zipf.sample(&mut rng)].clone())
                .collect();
            caps.sort();
            caps.dedup();
            m.capabilities = caps;
            m.description = (0..rng.range(20, 61))
                .map(|i| {
                    let w = &words[word_zipf.sample(&mut rng)];
                    if i == 0 {
                        let mut c = w.chars();
                        c.next()
                            .map(|f| f.to_uppercase().chain(c).collect())
                            .unwrap_or_default()
                    } else {
                        w.clone()
                    }
                })
                .collect::<Vec<String>>()
                .join(" ")
                + ".";
            // Log-uniform from 0.01 to 100 units.
            m.pricing.per_hire = (10_000.0 * 10f64.powf(4.0 * rng.unit())) as u64;
            m.pricing.currency = if rng.below(10) == 0 { "CREDIT" } else { "USD" }.into();
            m.seq = 1 + p as u64 % 7;
            m.expires_at = T0 + HOUR + (rng.unit() * (167 * HOUR) as f64) as u64;
            manifests.push(Signed::sign(m, key));
        }
    }
    Market {
        words,
        tags,
        word_zipf,
        tag_zipf,
        providers,
        manifests,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    TextCommon,
    TextRare,
    TextMixed,
    TextPrefix,
    TextCapPrice,
    TextMinSuccess,
    CapPrice,
    CapBrowse,
    BrowseAll,
}

const KINDS: [Kind; 9] = [
    Kind::TextCommon,
    Kind::TextRare,
    Kind::TextMixed,
    Kind::TextPrefix,
    Kind::TextCapPrice,
    Kind::TextMinSuccess,
    Kind::CapPrice,
    Kind::CapBrowse,
    Kind::BrowseAll,
];

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::TextCommon => "text, 1-3 common words",
            Kind::TextRare => "text, 1-3 rare words",
            Kind::TextMixed => "text, common + rare words",
            Kind::TextPrefix => "text, 1-3 word prefixes (3-4 chars)",
            Kind::TextCapPrice => "text + capability + price",
            Kind::TextMinSuccess => "text + min_success 0.5",
            Kind::CapPrice => "capability + price, no text",
            Kind::CapBrowse => "capability browse, no text",
            Kind::BrowseAll => "browse all, no filter",
        }
    }
}

fn queries(m: &Market, kind: Kind, count: usize) -> Vec<Query> {
    let mut rng = Rng(0xBEEF + kind as u64);
    let common = |rng: &mut Rng| m.words[rng.below(COMMON_BELOW)].clone();
    let rare = |rng: &mut Rng| m.words[rng.range(RARE_FROM, VOCAB)].clone();
    let zipf_word = |rng: &mut Rng| m.words[m.word_zipf.sample(rng)].clone();
    let tag = |rng: &mut Rng| m.tags[m.tag_zipf.sample(rng)].clone();
    // Median price is 1 unit; filters ask for 0.1 to 10 units.
    let price = |rng: &mut Rng| (100_000.0 * 10f64.powf(2.0 * rng.unit())) as u64;
    (0..count)
        .map(|_| {
            let mut q = Query::default();
            let n = rng.range(1, 4);
            match kind {
                Kind::TextCommon => {
                    q.text = Some(
                        (0..n)
                            .map(|_| common(&mut rng))
                            .collect::<Vec<_>>()
                            .join(" "),
                    )
                }
                Kind::TextRare => {
                    q.text = Some((0..n).map(|_| rare(&mut rng)).collect::<Vec<_>>().join(" "))
                }
                Kind::TextMixed => {
                    let mut w = vec![common(&mut rng), rare(&mut rng)];
                    if n == 3 {
                        w.push(zipf_word(&mut rng));
                    }
                    q.text = Some(w.join(" "));
                }
                Kind::TextPrefix => {
                    q.text = Some(
                        (0..n)
                            .map(|_| {
                                let w = zipf_word(&mut rng);
                                let cut = rng.range(3, 5).min(w.len());
                                w[..cut].to_owned()
                            })
                            .collect::<Vec<_>>()
                            .join(" "),
                    )
                }
                Kind::TextCapPrice => {
                    q.text = Some(
                        (0..n)
                            .map(|_| zipf_word(&mut rng))
                            .collect::<Vec<_>>()
                            .join(" "),
                    );
                    q.capabilities = vec![tag(&mut rng)];
                    q.max_price = Some(price(&mut rng));
                }
                Kind::TextMinSuccess => {
                    q.text = Some(
                        (0..n)
                            .map(|_| zipf_word(&mut rng))
                            .collect::<Vec<_>>()
                            .join(" "),
                    );
                    q.min_success = Some(0.5);
                }
                Kind::CapPrice => {
                    q.capabilities = (0..rng.range(1, 3)).map(|_| tag(&mut rng)).collect();
                    q.max_price = Some(price(&mut rng));
                    q.currency = Some("USD".into());
                }
                Kind::CapBrowse => q.capabilities = vec![tag(&mut rng)],
                Kind::BrowseAll => {}
            }
            q
        })
        .collect()
}

/// A reputation from a synthetic history: 1-60 verified outcomes at a success rate drawn
/// from 0.3 to 1, as the node computes it (spec/reputation.md): rank `(s + 1) / (n + 2)`,
/// lower bound the Wilson score bound at z = 1.96.
fn outcomes(rng: &mut Rng) -> AgentReputation {
    let n = rng.range(1, 61) as f64;
    let rate = 0.3 + 0.7 * rng.unit();
    let s = (n * rate).round();
    let z2 = 1.96f64 * 1.96;
    let p = s / n;
    let centre = p + z2 / (2.0 * n);
    let spread = 1.96 * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    AgentReputation {
        rank: (s + 1.0) / (n + 2.0),
        success_lower_bound: ((centre - spread) / (1.0 + z2 / n)).max(0.0),
    }
}

/// Resident set size in bytes (Linux), if known.
fn rss() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

fn mib(bytes: Option<u64>) -> String {
    bytes.map_or("n/a".into(), |b| {
        format!("{:.0} MiB", b as f64 / (1 << 20) as f64)
    })
}

struct Stats {
    p50: Duration,
    p99: Duration,
    max: Duration,
    mean: Duration,
    hits: f64,
}

fn measure(index: &Index, qs: &[Query]) -> Stats {
    for q in qs.iter().take(100) {
        black_box(index.search(q, NOW));
    }
    let mut times = Vec::with_capacity(qs.len());
    let mut hits = 0usize;
    for q in qs {
        let start = Instant::now();
        let r = index.search(black_box(q), NOW);
        times.push(start.elapsed());
        hits += r.len();
        black_box(r);
    }
    times.sort();
    let at = |p: f64| times[((times.len() as f64 * p).ceil() as usize).clamp(1, times.len()) - 1];
    Stats {
        p50: at(0.50),
        p99: at(0.99),
        max: times[times.len() - 1],
        mean: times.iter().sum::<Duration>() / times.len() as u32,
        hits: hits as f64 / qs.len() as f64,
    }
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let (n, nq) = if full {
        (100_000, QUERIES)
    } else {
        (2_000, 50)
    };

    let start = Instant::now();
    let m = market(n);
    let generate = start.elapsed();
    let rss1 = rss();

    let start = Instant::now();
    let mut index = Index::new();
    for s in &m.manifests {
        let r = index.insert(s);
        assert!(matches!(r, Inserted::New), "{r:?}");
    }
    let build = start.elapsed();
    let rss2 = rss();
    // What the index's own copies of the manifests cost (clones have exact capacities,
    // like the index's), measured after the build so it cannot reuse freed memory.
    let copies = m.manifests.clone();
    let rss3 = rss();
    let mut rng = Rng(7);
    let start = Instant::now();
    for s in &m.manifests {
        let body = s.body();
        if rng.below(10) < 7 {
            index.set_agent_reputation(body.provider, &body.name, Some(outcomes(&mut rng)));
        }
    }
    for key in &m.providers {
        if rng.below(100) == 0 {
            index.set_flagged(key.id(), true);
        }
    }
    let scoring = start.elapsed();
    let body_bytes: usize = m.manifests.iter().map(|s| s.body_bytes().len()).sum();
    let sets: Vec<(Kind, Vec<Query>)> = KINDS.iter().map(|&k| (k, queries(&m, k, nq))).collect();

    let mut c = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    {
        let mut g = c.benchmark_group(format!("search-{}k", n / 1000));
        for (kind, qs) in &sets {
            g.bench_function(kind.label(), |b| {
                let mut i = 0usize;
                b.iter(|| {
                    i += 1;
                    index.search(black_box(&qs[i % qs.len()]), NOW)
                })
            });
        }
        g.finish();
    }
    c.final_summary();

    println!();
    println!(
        "summary: {} manifests from {} providers, {} words, {} tags; one core",
        index.len(),
        m.providers.len(),
        VOCAB,
        TAGS
    );
    println!(
        "  generate + sign        {:>10}  ({:.1} us per manifest)",
        ms(generate),
        generate.as_secs_f64() * 1e6 / n as f64
    );
    println!(
        "  index build (insert)   {:>10}  ({:.1} us per manifest)",
        ms(build),
        build.as_secs_f64() * 1e6 / n as f64
    );
    println!(
        "  reputations + flags    {:>10}  ({:.2} us per manifest)",
        ms(scoring),
        scoring.as_secs_f64() * 1e6 / n as f64
    );
    let index_rss = rss2.zip(rss1).map(|(a, b)| a.saturating_sub(b));
    let copies_rss = rss3.zip(rss2).map(|(a, b)| a.saturating_sub(b));
    println!(
        "  memory (RSS growth)    index {}: manifest copies {}, search structures ~{} \
         ({:.0} bytes of encoded manifest body each)",
        mib(index_rss),
        mib(copies_rss),
        mib(index_rss.zip(copies_rss).map(|(a, b)| a.saturating_sub(b))),
        body_bytes as f64 / n as f64
    );
    println!("  latency over {nq} random queries each (Instant per query; goal p99 <= 5 ms):");
    println!(
        "    {:<30} {:>10} {:>10} {:>10} {:>10} {:>8}",
        "query", "p50", "p99", "max", "mean", "hits"
    );
    for (kind, qs) in &sets {
        let s = measure(&index, qs);
        println!(
            "    {:<30} {:>10} {:>10} {:>10} {:>10} {:>8.1}",
            kind.label(),
            ms(s.p50),
            ms(s.p99),
            ms(s.max),
            ms(s.mean),
            s.hits
        );
    }
    drop(black_box(copies));
}
