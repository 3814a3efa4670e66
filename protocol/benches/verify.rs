//! Receipt verification throughput, beside the raw batch verification of the underlying
//! Ed25519 crate on the same messages and signatures, on this machine.
//!
//! `cargo bench -p souk-protocol --bench verify` runs the criterion groups, then prints a
//! summary (`cargo bench -p souk-protocol --bench verify -- nomatch` prints only the summary):
//! entries/s of full bundle verification in both signature-check modes, of incremental
//! `ChainVerifier::push` and of decoding alone; the ratio of full batch verification to raw
//! `ed25519_zebra` batch verification (the crate that implements the signature rule) and to raw
//! `ed25519_dalek::verify_batch` (cofactorless, the rule before issue #10), each the median of
//! 15 adjacent pairs; and the cost of the key rule (`NodeId::from_bytes` of a key seen before,
//! which the process remembers, and the full check as curve25519-dalek offers it). Times are CPU time
//! of the benchmark thread where Linux provides it, so ratios hold on a shared machine.
//! Goal (issue #10): full verification >= 0.8x raw batch.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use curve25519_dalek::edwards::CompressedEdwardsY;
use souk_protocol::bundle::Bundle;
use souk_protocol::identity::NodeId;
use souk_protocol::receipt::SignedEntry;
use souk_protocol::vectors::{Ending, HireFixture};
use souk_protocol::verify::{ChainContext, ChainVerifier, SignatureCheck, verify_bundle_bytes};

const ENTRIES: usize = 2048;

struct Setup {
    fx: HireFixture,
    bundle: Vec<u8>,
    inputs: Vec<Vec<u8>>,
    sigs: Vec<[u8; 64]>,
    key: [u8; 32],
    entries: u64,
}

fn setup() -> Setup {
    let fx = HireFixture::build(ENTRIES - 2, Ending::CompletedAccepted);
    let bundle: Bundle = fx.bundle(&[]);
    Setup {
        bundle: bundle.to_bytes(),
        inputs: fx.entries.iter().map(|e| e.signing_input()).collect(),
        sigs: fx.entries.iter().map(|e| *e.signature()).collect(),
        key: *fx.contract.provider().as_bytes(),
        entries: fx.entries.len() as u64,
        fx,
    }
}

/// A fixed-seed stream for the raw batch's coefficients (its cost is not the point here).
struct FixedRng(blake3::OutputReader);

impl rand_core::TryRng for FixedRng {
    type Error = std::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        let mut b = [0; 4];
        self.0.fill(&mut b);
        Ok(u32::from_le_bytes(b))
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        let mut b = [0; 8];
        self.0.fill(&mut b);
        Ok(u64::from_le_bytes(b))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        self.0.fill(dst);
        Ok(())
    }
}

impl rand_core::TryCryptoRng for FixedRng {}

/// `ed25519_zebra::batch::Verifier` over every entry signature, in chunks of 4096 like
/// `souk_protocol::signature::verify_batch` (2048 entries: one chunk).
fn raw_zebra_batch(s: &Setup) {
    let mut batch = ed25519_zebra::batch::Verifier::new();
    let vk = ed25519_zebra::VerificationKeyBytes::from(s.key);
    for (m, sig) in s.inputs.iter().zip(&s.sigs) {
        batch.queue((vk, ed25519_zebra::Signature::from_bytes(sig), m.as_slice()));
    }
    let rng = FixedRng(blake3::Hasher::new().finalize_xof());
    assert!(batch.verify(rng).is_ok());
}

/// `ed25519_dalek::verify_batch` (cofactorless; the rule before issue #10).
fn raw_dalek_batch(s: &Setup) {
    let msgs: Vec<&[u8]> = s.inputs.iter().map(|m| m.as_slice()).collect();
    let sigs: Vec<ed25519_dalek::Signature> = s
        .sigs
        .iter()
        .map(ed25519_dalek::Signature::from_bytes)
        .collect();
    let key = ed25519_dalek::VerifyingKey::from_bytes(&s.key)
        .unwrap_or_else(|e| panic!("fixture key: {e}"));
    let keys = vec![key; sigs.len()];
    assert!(ed25519_dalek::verify_batch(&msgs, &sigs, &keys).is_ok());
}

fn full(s: &Setup, check: SignatureCheck) {
    let r = verify_bundle_bytes(black_box(&s.bundle), check);
    assert!(r.is_ok());
}

/// The client's path: every entry pushed one at a time (single verification each).
fn incremental(s: &Setup) {
    let mut chain = ChainVerifier::new(ChainContext::new(&s.fx.contract, s.fx.manifest.body()));
    for e in &s.fx.entries {
        assert!(chain.push(e.clone()).is_ok());
    }
}

/// Decoding alone (bundle, then every entry envelope): most of what full verification adds
/// to the signature checks.
fn decode_only(s: &Setup) {
    let bundle = Bundle::decode_bytes(black_box(&s.bundle)).unwrap_or_else(|e| panic!("{e}"));
    for raw in &bundle.entries {
        assert!(SignedEntry::decode_bytes(raw).is_ok());
    }
}

fn key_rule(s: &Setup) {
    assert!(NodeId::from_bytes(black_box(&s.key)).is_ok());
}

/// The subgroup check as `curve25519-dalek` offers it (constant time), for comparison.
fn key_rule_constant_time(s: &Setup) {
    let p = CompressedEdwardsY(*black_box(&s.key)).decompress();
    assert!(p.is_some_and(|p| !p.is_small_order() && p.is_torsion_free()));
}

fn benches(c: &mut Criterion, s: &Setup) {
    let mut g = c.benchmark_group("receipt-chain");
    g.throughput(Throughput::Elements(s.entries));
    g.sample_size(10);
    g.bench_function("raw ed25519-zebra batch", |b| b.iter(|| raw_zebra_batch(s)));
    g.bench_function("raw ed25519-dalek verify_batch", |b| {
        b.iter(|| raw_dalek_batch(s))
    });
    g.bench_function("full verification, batch", |b| {
        b.iter(|| full(s, SignatureCheck::Batch))
    });
    g.bench_function("full verification, one-by-one", |b| {
        b.iter(|| full(s, SignatureCheck::OneByOne))
    });
    g.bench_function("ChainVerifier::push", |b| b.iter(|| incremental(s)));
    g.finish();
    let mut g = c.benchmark_group("key-rule");
    g.bench_function("NodeId::from_bytes", |b| b.iter(|| key_rule(s)));
    g.bench_function("decompress + constant-time subgroup check", |b| {
        b.iter(|| key_rule_constant_time(s))
    });
    g.finish();
}

/// CPU time of the current thread (Linux `/proc/thread-self/schedstat`, nanoseconds on the
/// CPU), so that ratios hold on a machine shared with other work; wall time elsewhere.
fn cpu_now() -> Duration {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .map(Duration::from_nanos)
        .unwrap_or_else(|| {
            static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
            START.get_or_init(Instant::now).elapsed()
        })
}

/// Seconds per run of `f` (CPU time), over at least 300 ms of it.
fn per_run(f: &mut dyn FnMut()) -> f64 {
    let start = cpu_now();
    let mut runs = 0u32;
    while cpu_now() - start < Duration::from_millis(300) {
        f();
        runs += 1;
    }
    (cpu_now() - start).as_secs_f64() / f64::from(runs)
}

/// The ratio of `a`'s rate to `b`'s, measured in adjacent pairs: (median, min, max) over
/// `rounds` pairs.
fn paired_ratio(rounds: usize, a: &mut dyn FnMut(), b: &mut dyn FnMut()) -> (f64, f64, f64) {
    let mut ratios: Vec<f64> = (0..rounds).map(|_| per_run(b) / per_run(a)).collect();
    ratios.sort_by(f64::total_cmp);
    (ratios[rounds / 2], ratios[0], ratios[rounds - 1])
}

/// Runs/s of each function: the best of 5 rounds, the functions interleaved within each round
/// so that they see the same conditions.
fn rates(fs: &mut [&mut dyn FnMut()]) -> Vec<f64> {
    let mut best = vec![f64::MAX; fs.len()];
    for _ in 0..5 {
        for (f, b) in fs.iter_mut().zip(best.iter_mut()) {
            *b = b.min(per_run(*f));
        }
    }
    best.into_iter().map(|t| 1.0 / t).collect()
}

fn main() {
    let s = setup();
    let mut c = Criterion::default().configure_from_args();
    benches(&mut c, &s);
    c.final_summary();

    let n = s.entries as f64;
    let r = rates(&mut [
        &mut || raw_zebra_batch(&s),
        &mut || raw_dalek_batch(&s),
        &mut || full(&s, SignatureCheck::Batch),
        &mut || full(&s, SignatureCheck::OneByOne),
        &mut || incremental(&s),
        &mut || key_rule(&s),
        &mut || key_rule_constant_time(&s),
        &mut || decode_only(&s),
    ]);
    let (zebra, dalek, batch, single, push) = (n * r[0], n * r[1], n * r[2], n * r[3], n * r[4]);
    let (key, key_ct, decode) = (r[5], r[6], n * r[7]);
    let goal = paired_ratio(15, &mut || full(&s, SignatureCheck::Batch), &mut || {
        raw_zebra_batch(&s)
    });
    let versus_dalek = paired_ratio(15, &mut || full(&s, SignatureCheck::Batch), &mut || {
        raw_dalek_batch(&s)
    });
    println!();
    println!(
        "summary: {} entries per bundle, one core, per CPU second (best of 5 interleaved rounds)",
        s.entries
    );
    println!("  raw ed25519-zebra batch (cofactored)     {zebra:>10.0} entries/s");
    println!(
        "  raw ed25519-dalek verify_batch           {dalek:>10.0} entries/s   ({:.2}x zebra)",
        dalek / zebra
    );
    println!(
        "  full verification, batch                 {batch:>10.0} entries/s   {:.2}x raw zebra batch (goal >= 0.80x), {:.2}x raw dalek batch",
        batch / zebra,
        batch / dalek
    );
    println!(
        "  full verification, one-by-one           {single:>10.0} entries/s   {:.2}x raw zebra batch",
        single / zebra
    );
    println!(
        "  ChainVerifier::push (incremental)        {push:>10.0} entries/s   {:.2}x raw zebra batch",
        push / zebra
    );
    println!("  decoding alone (bundle + entries)        {decode:>10.0} entries/s");
    println!(
        "  full batch / raw zebra batch, 15 adjacent pairs: median {:.2}x (min {:.2}, max {:.2}); goal >= 0.80x",
        goal.0, goal.1, goal.2
    );
    println!(
        "  full batch / raw dalek batch, 15 adjacent pairs: median {:.2}x (min {:.2}, max {:.2})",
        versus_dalek.0, versus_dalek.1, versus_dalek.2
    );
    println!(
        "  NodeId::from_bytes (a key seen before)   {key:>10.0} keys/s      ({:.1} us)",
        1e6 / key
    );
    println!(
        "  decompress + constant-time subgroup check {key_ct:>9.0} keys/s      ({:.1} us)",
        1e6 / key_ct
    );
}
