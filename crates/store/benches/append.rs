//! Throughput and latency of `Store::append_receipt`, the store call on the hot path of every
//! agent step (one write transaction and one fsync each).
//!
//! Appends `SOUK_BENCH_N` (default 2,000) receipt entries of ~300 bytes, each with a 100-byte
//! private payload, to one hire, one durable commit per call, and prints appends/s and the
//! p50/p99/max latency of a call. A second run also replaces a ~400-byte hire record with every
//! append, as the node does when an entry changes the hire's state. A third run redelivers
//! every entry (the `Duplicate` path: no commit, no fsync). For scale, a baseline first times a
//! bare 4 KiB `pwrite` + `fdatasync` on a file in the same directory: the floor any durable
//! append pays on this disk.
//!
//! The file is created under `SOUK_BENCH_DIR` if set, else in Cargo's target tmp directory
//! (not `/tmp`, which may be a tmpfs where fsync is free). Figures depend mostly on the disk's
//! fsync latency.
//!
//! Run: `cargo bench -p souk-store --bench append`.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use souk_protocol::Hash;
use souk_store::{Appended, Store, StoreConfig};

const ENTRY_LEN: usize = 300;
const PAYLOAD_LEN: usize = 100;
const RECORD_LEN: usize = 400;

fn filled(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx]
}

fn report(label: &str, mut lat: Vec<Duration>, total: Duration) {
    lat.sort();
    let n = lat.len();
    println!(
        "{label:<34} n={n:<5} {:>8.0} appends/s   p50 {:>7.1} µs   p99 {:>7.1} µs   max {:>7.1} µs",
        n as f64 / total.as_secs_f64(),
        percentile(&lat, 0.50).as_secs_f64() * 1e6,
        percentile(&lat, 0.99).as_secs_f64() * 1e6,
        lat[n - 1].as_secs_f64() * 1e6,
    );
}

/// Appends `n` entries to `hire` and returns the per-call latencies and the total time.
fn run(
    store: &Store,
    hire: &Hash,
    n: u64,
    with_record: bool,
    expect: Appended,
) -> (Vec<Duration>, Duration) {
    let entries: Vec<Vec<u8>> = (0..n).map(|seq| filled(ENTRY_LEN, seq)).collect();
    let payloads: Vec<Vec<u8>> = (0..n).map(|seq| filled(PAYLOAD_LEN, seq + n)).collect();
    let record = filled(RECORD_LEN, 7);
    let mut lat = Vec::with_capacity(n as usize);
    let start = Instant::now();
    for seq in 0..n {
        let t = Instant::now();
        let outcome = store
            .append_receipt(
                hire,
                seq,
                &entries[seq as usize],
                Some(&payloads[seq as usize]),
                with_record.then_some(record.as_slice()),
            )
            .unwrap();
        lat.push(t.elapsed());
        assert_eq!(outcome, expect);
    }
    (lat, start.elapsed())
}

/// `n` rounds of writing one 4 KiB page and `sync_data` (fdatasync) on a plain file.
fn fsync_baseline(dir: &Path, n: u64) -> (Vec<Duration>, Duration) {
    let mut file = std::fs::File::create(dir.join("baseline")).unwrap();
    let page = filled(4096, 3);
    let mut lat = Vec::with_capacity(n as usize);
    let start = Instant::now();
    for i in 0..n {
        let t = Instant::now();
        file.seek(SeekFrom::Start((i % 64) * 4096)).unwrap();
        file.write_all(&page).unwrap();
        file.sync_data().unwrap();
        lat.push(t.elapsed());
    }
    (lat, start.elapsed())
}

fn main() {
    let n: u64 = std::env::var("SOUK_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000);
    let base: PathBuf = std::env::var_os("SOUK_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")));
    std::fs::create_dir_all(&base).unwrap();
    let dir = tempfile::tempdir_in(&base).unwrap();
    let path = dir.path().join("bench.redb");
    let store = Store::open(&path, &StoreConfig::default()).unwrap();
    println!(
        "append_receipt: {ENTRY_LEN}-byte entries, {PAYLOAD_LEN}-byte payloads, file {}",
        path.display()
    );

    let (lat, total) = fsync_baseline(dir.path(), n);
    report("baseline: 4 KiB write + fdatasync", lat, total);

    let plain = Hash([1; 32]);
    let (lat, total) = run(&store, &plain, n, false, Appended::New);
    report("entry + payload", lat, total);

    let with_record = Hash([2; 32]);
    let (lat, total) = run(&store, &with_record, n, true, Appended::New);
    report("entry + payload + hire record", lat, total);

    let (lat, total) = run(&store, &plain, n, false, Appended::Duplicate);
    report("redelivery (Duplicate, no fsync)", lat, total);

    assert_eq!(store.receipt_count(&plain).unwrap(), n);
    drop(store);
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    println!(
        "file size after {} entries: {:.1} MiB",
        2 * n,
        size as f64 / (1024.0 * 1024.0)
    );
}
