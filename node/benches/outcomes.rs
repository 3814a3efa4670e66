//! What reputation costs a network: N full nodes in one process on loopback TCP; M outcome
//! records (real signatures, distinct clients, one provider's agent) are published from random
//! nodes, one every interval. Reports delivery, latency to the last node, the bytes the
//! network carried per record and node (loopback interface counters over the window, minus
//! the same window idle), the store growth per 1000 records and node, and the time of a
//! reputation lookup (`NodeHandle::reputation`, figures and last outcomes of a handle) on a
//! node holding them all.
//!
//! ```sh
//! cargo bench -p souk-node --bench outcomes           # N = 20, M = 1000
//! ```
//!
//! Environment: `SOUK_BENCH_NODES` (20), `SOUK_BENCH_OUTCOMES` (1000),
//! `SOUK_BENCH_INTERVAL_MS` (5), `SOUK_BENCH_SEED` (1), and `common::Tuning`'s knobs.

mod common;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{
    Rng, Tuning, cpu_time, env_or, ms, quantile, shutdown, start_network, wait_connected,
};
use souk_node::service::{NodeEvent, Stamped};
use souk_node::testkit::settled_hire;
use souk_protocol::Hash;
use souk_protocol::hire::Verdict;
use souk_protocol::identity::Keypair;
use souk_reputation::Policy;

/// Bytes received on the loopback interface so far (`/proc/net/dev`).
fn loopback_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/net/dev").ok()?;
    let line = text.lines().find(|l| l.trim_start().starts_with("lo:"))?;
    line.split(':')
        .nth(1)?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Total size of the node stores under `root`.
fn store_bytes(root: &Path, n: usize) -> u64 {
    (0..n)
        .filter_map(|i| std::fs::metadata(root.join(format!("node{i}/souk.redb"))).ok())
        .map(|m| m.len())
        .sum()
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"));
    runtime.block_on(run());
}

async fn run() {
    let n: usize = env_or("SOUK_BENCH_NODES", 20);
    let m: usize = env_or("SOUK_BENCH_OUTCOMES", 1000);
    let interval = Duration::from_millis(env_or("SOUK_BENCH_INTERVAL_MS", 5));
    let mut rng = Rng::new(env_or("SOUK_BENCH_SEED", 1));
    let tuning = Tuning::from_env();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));

    eprintln!("outcomes: {n} nodes, {m} records, one every {interval:?}");
    let provider = Keypair::from_seed(&[200; 32]);
    let t = Instant::now();
    let records: Vec<(Hash, Vec<u8>)> = (0..m)
        .map(|i| {
            let mut seed = [0u8; 32];
            seed[..8].copy_from_slice(&(i as u64 + 1).to_le_bytes());
            let client = Keypair::from_seed(&seed);
            let hire = settled_hire(&provider, &client, "bench-agent");
            let verdict = if i % 5 == 0 {
                Verdict::Disputed
            } else {
                Verdict::Accepted
            };
            (hire.hire_id, hire.record(&client, verdict))
        })
        .collect();
    let record_len = records.iter().map(|(_, r)| r.len()).sum::<usize>() / m.max(1);
    eprintln!(
        "  {m} records built in {:.2?}, {record_len} bytes each on average",
        t.elapsed()
    );

    let nodes = start_network(dir.path(), n, &tuning, &mut rng).await;
    if let Err(e) = wait_connected(&nodes, 2.min(n - 1), Duration::from_secs(120)).await {
        panic!("{e}");
    }
    // Let the start-up traffic die down, then measure an idle window of the same length as
    // the publication window, for the loopback baseline.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let window = interval * m as u32 + Duration::from_secs(2);
    let idle_start = loopback_bytes();
    tokio::time::sleep(window).await;
    let idle = idle_start.zip(loopback_bytes()).map(|(a, b)| b - a);

    let stores_before = store_bytes(dir.path(), n);
    // Each node's admissions, timed as they happen (drained while records are published, so
    // a time is the admission's, not the end of the run's).
    let wanted: HashSet<Hash> = records.iter().map(|(h, _)| *h).collect();
    let seen: Arc<Mutex<Vec<HashMap<Hash, Instant>>>> =
        Arc::new(Mutex::new(vec![HashMap::new(); n]));
    let lagged = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let watchers: Vec<_> = nodes
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let mut rx = b.handle.subscribe();
            let seen = seen.clone();
            let lagged = lagged.clone();
            tokio::spawn(async move {
                loop {
                    match rx.recv().await {
                        Ok(Stamped {
                            event: NodeEvent::OutcomeAdmitted { hire_id, .. },
                            ..
                        }) => {
                            let now = Instant::now();
                            if let Ok(mut s) = seen.lock() {
                                s[i].entry(hire_id).or_insert(now);
                            }
                        }
                        Ok(_) => {}
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(k)) => {
                            lagged.fetch_add(k, std::sync::atomic::Ordering::Relaxed);
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                    }
                }
            })
        })
        .collect();
    let lo_start = loopback_bytes();
    let cpu_start = cpu_time(None);
    let start = Instant::now();
    let mut published = Vec::with_capacity(m);
    for (hire, bytes) in &records {
        let origin = rng.below(n);
        let at = Instant::now();
        nodes[origin]
            .handle
            .publish_outcome(bytes.clone())
            .await
            .unwrap_or_else(|e| panic!("publish: {e}"));
        published.push((*hire, at));
        tokio::time::sleep(interval).await;
    }
    // Wait until every node has every record (or a deadline).
    let deadline = Instant::now() + Duration::from_secs(120);
    let complete = || {
        seen.lock()
            .map(|s| s.iter().all(|h| wanted.iter().all(|w| h.contains_key(w))))
            .unwrap_or(false)
    };
    while !complete() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for w in watchers {
        w.abort();
    }
    let seen = seen.lock().map(|s| s.clone()).unwrap_or_default();
    let lagged = lagged.load(std::sync::atomic::Ordering::Relaxed);
    if lagged > 0 {
        println!("  warning: {lagged} node events were missed by the bench (lagged receivers)");
    }
    let held: Vec<HashSet<Hash>> = seen
        .iter()
        .map(|h| h.keys().filter(|k| wanted.contains(k)).copied().collect())
        .collect();
    let mut last_seen: HashMap<Hash, Instant> = HashMap::new();
    for node in &seen {
        for (h, t) in node {
            let e = last_seen.entry(*h).or_insert(*t);
            if *t > *e {
                *e = *t;
            }
        }
    }
    let elapsed = start.elapsed();
    let cpu = cpu_start.zip(cpu_time(None)).map(|(a, b)| b - a);
    let lo = lo_start.zip(loopback_bytes()).map(|(a, b)| b - a);
    let delivered: usize = held.iter().map(HashSet::len).sum();
    let mut to_last: Vec<Duration> = published
        .iter()
        .filter_map(|(h, at)| last_seen.get(h).map(|l| l.saturating_duration_since(*at)))
        .collect();
    to_last.sort();

    // Lookup: figures and the last outcomes of the handle on a node holding every record.
    let node = &nodes[0].handle;
    let lookups = 200;
    let mut times = Vec::with_capacity(lookups);
    let mut settled = 0;
    for _ in 0..lookups {
        let t = Instant::now();
        let (f, _) = node
            .reputation(provider.id(), Some("bench-agent".into()), Policy::default())
            .await
            .unwrap_or_else(|e| panic!("reputation: {e}"));
        times.push(t.elapsed());
        settled = f.settled;
    }
    times.sort();
    shutdown(nodes).await;
    let stores_after = store_bytes(dir.path(), n);

    let per = |total: Option<u64>| {
        total.map_or("?".into(), |b| {
            format!("{:.0}", b as f64 / (m as f64 * n as f64))
        })
    };
    let net = lo.zip(idle).map(|(a, b)| a.saturating_sub(b));
    println!(
        "\n| nodes | records | delivered | to last node p50 / p99 | loopback bytes per record per node (idle subtracted) | store growth per 1000 records per node | lookup p50 / p99 ({settled} records) | CPU |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    println!(
        "| {n} | {m} ({record_len} B each) | {:.2}% in {:.1?} | {} / {} ms | {} (raw {}) | {:.2} MB | {} / {} ms | {} |",
        100.0 * delivered as f64 / (m * n) as f64,
        elapsed,
        ms(quantile(&to_last, 0.5)),
        ms(quantile(&to_last, 0.99)),
        per(net),
        per(lo),
        (stores_after.saturating_sub(stores_before)) as f64 / n as f64 / m as f64 * 1000.0 / 1e6,
        ms(quantile(&times, 0.5)),
        ms(quantile(&times, 0.99)),
        cpu.map_or("?".into(), |c| format!("{c:.1?}")),
    );
}
