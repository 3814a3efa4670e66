//! Receipt verification throughput, beside raw `ed25519_dalek::verify_batch` on the same
//! messages and signatures, on this machine.
//!
//! `cargo bench -p souk-protocol --bench verify` runs the criterion groups, then prints a
//! summary table with entries/s and the ratio full-verification / raw-batch.
//! Goals (issue #2): full verification >= 0.8x the raw batch rate; head-only >= 500k
//! entries/s on one core.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use ed25519_dalek::Signature;
use souk_protocol::bundle::Bundle;
use souk_protocol::vectors::{Ending, HireFixture};
use souk_protocol::verify::{SignatureCheck, verify_bundle_bytes};

const ENTRIES: usize = 2048;

struct Setup {
    bundle: Vec<u8>,
    inputs: Vec<Vec<u8>>,
    sigs: Vec<Signature>,
    keys: Vec<ed25519_dalek::VerifyingKey>,
    entries: u64,
}

fn setup() -> Setup {
    let fx = HireFixture::build(ENTRIES - 2, Ending::CompletedAccepted);
    let bundle: Bundle = fx.bundle(&[]);
    let key = fx.contract.provider().verifying_key();
    Setup {
        bundle: bundle.to_bytes(),
        inputs: fx.entries.iter().map(|e| e.signing_input()).collect(),
        sigs: fx
            .entries
            .iter()
            .map(|e| Signature::from_bytes(e.signature()))
            .collect(),
        keys: vec![key; fx.entries.len()],
        entries: fx.entries.len() as u64,
    }
}

fn raw_batch(s: &Setup) {
    let msgs: Vec<&[u8]> = s.inputs.iter().map(|m| m.as_slice()).collect();
    let ok = ed25519_dalek::verify_batch(&msgs, &s.sigs, &s.keys).is_ok();
    assert!(ok);
}

fn full(s: &Setup, check: SignatureCheck) {
    let r = verify_bundle_bytes(black_box(&s.bundle), check);
    assert!(r.is_ok());
}

fn benches(c: &mut Criterion, s: &Setup) {
    let mut g = c.benchmark_group("receipt-chain");
    g.throughput(Throughput::Elements(s.entries));
    g.sample_size(10);
    g.bench_function("raw ed25519 verify_batch", |b| b.iter(|| raw_batch(s)));
    g.bench_function("full verification, batch", |b| {
        b.iter(|| full(s, SignatureCheck::Batch))
    });
    g.bench_function("full verification, strict", |b| {
        b.iter(|| full(s, SignatureCheck::Strict))
    });
    g.bench_function("head-only", |b| {
        b.iter(|| full(s, SignatureCheck::HeadOnly))
    });
    g.finish();
}

/// Best-of-N entries/s for `f`, each run at least 300 ms.
fn rate(entries: u64, mut f: impl FnMut()) -> f64 {
    let mut best = f64::MAX;
    for _ in 0..5 {
        let start = Instant::now();
        let mut runs = 0u32;
        while start.elapsed() < Duration::from_millis(300) {
            f();
            runs += 1;
        }
        best = best.min(start.elapsed().as_secs_f64() / f64::from(runs));
    }
    entries as f64 / best
}

fn main() {
    let s = setup();
    let mut c = Criterion::default().configure_from_args();
    benches(&mut c, &s);
    c.final_summary();

    let raw = rate(s.entries, || raw_batch(&s));
    let batch = rate(s.entries, || full(&s, SignatureCheck::Batch));
    let strict = rate(s.entries, || full(&s, SignatureCheck::Strict));
    let head = rate(s.entries, || full(&s, SignatureCheck::HeadOnly));
    println!();
    println!("summary: {} entries per bundle, one core", s.entries);
    println!(
        "  raw ed25519_dalek::verify_batch   {:>10.0} entries/s",
        raw
    );
    println!(
        "  full verification (batch path)    {:>10.0} entries/s   {:.2}x raw batch (goal >= 0.80x)",
        batch,
        batch / raw
    );
    println!(
        "  full verification (strict path)   {:>10.0} entries/s   {:.2}x raw batch",
        strict,
        strict / raw
    );
    println!(
        "  head-only (links + head signature){:>10.0} entries/s   (goal >= 500000)",
        head
    );
}
