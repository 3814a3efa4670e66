//! Manifest propagation over gossipsub: N full nodes in one process on loopback TCP.
//!
//! All nodes are started, then node `i` dials 2-3 random earlier nodes (seeded). The bench
//! waits until every node has two peers and a warm-up manifest has reached every node, lets
//! the start-up traffic (Kademlia bootstrap) die down, then publishes M manifests from random
//! nodes, one every interval, and measures per manifest the time from `NodeHandle::publish`
//! returning to each other node's `NodeEvent::ManifestAdmitted`. It also reports process CPU
//! time (`/proc/self/stat`), time spent waiting for a core, and peak RSS.
//!
//! ```sh
//! cargo bench -p souk-node --bench propagation            # N = 50, then N = 200
//! cargo bench -p souk-node --bench propagation -- 200     # only N = 200
//! ```
//!
//! Environment: `SOUK_BENCH_NODES` (e.g. `50,200`), `SOUK_BENCH_MANIFESTS` (20),
//! `SOUK_BENCH_INTERVAL_MS` (100), `SOUK_BENCH_SETTLE_SECS` (5: the shortest quiet time
//! before measuring; settling goes on until two seconds cost under half a core),
//! `SOUK_BENCH_SEED` (1), and the swarm tuning of `common::Tuning`
//! (`SOUK_BENCH_HEARTBEAT_MS`, `SOUK_BENCH_MESH_N`, `SOUK_BENCH_MAX_CONNECTIONS`,
//! `SOUK_BENCH_IDLE_SECS`). `max_connections` is lowered when N nodes at the cap would exceed
//! the open-file limit (two descriptors per in-process connection).

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::{
    BenchNode, Rng, Tuning, agent, cpu_time, env_or, load_average, mib, ms, peer_counts, quantile,
    reset_peak_rss, runqueue_wait, shutdown, start_network, status_kib, wait_connected,
};
use souk_node::service::{NodeEvent, Stamped, Via};
use souk_protocol::Hash;
use tokio::sync::{broadcast, mpsc};

/// The issue's goal: every node gets every manifest, p99 at most this.
const GOAL_P99: Duration = Duration::from_millis(50);
/// How long to wait for stragglers after the last publication.
const DRAIN: Duration = Duration::from_secs(10);
/// The network counts as settled after two seconds under this many cores of CPU.
const QUIET_CORES: f64 = 0.5;
/// The longest wait for every node to have two peers (the start-up storm of 200 nodes on
/// 2 cores takes minutes).
const CONNECT_MAX: Duration = Duration::from_secs(300);
/// The longest wait for the warm-up manifest to reach every node.
const WARMUP_MAX: Duration = Duration::from_secs(120);
/// The longest settling time.
const SETTLE_MAX: Duration = Duration::from_secs(180);

/// One admission seen by one node.
struct Seen {
    node: usize,
    id: Hash,
    via: Via,
    at: Instant,
}

/// One publication.
struct Publication {
    id: Hash,
    origin: usize,
    /// When the `publish` call returned.
    returned: Instant,
    /// How long the call took (includes the durable write of the agent record).
    call: Duration,
}

/// Everything one run measured.
struct Report {
    nodes: usize,
    max_connections: u32,
    settled: Duration,
    load: (Option<f64>, Option<f64>),
    manifests: usize,
    setup: Duration,
    connect: Duration,
    warmup: Duration,
    peers_min: usize,
    peers_mean: f64,
    peers_max: usize,
    peers_end_min: usize,
    delivered: usize,
    expected: usize,
    via_sync: usize,
    early: usize,
    lagged: u64,
    lat: Vec<Duration>,
    last: Vec<Duration>,
    /// First, median and last-node time of each manifest, in publication order (or how many got it).
    in_order: Vec<String>,
    incomplete: usize,
    publish_call: Vec<Duration>,
    window: Duration,
    cpu: Option<Duration>,
    /// Time this process's threads spent runnable but not running, during the window.
    waited: Option<Duration>,
    idle_cpu: Option<f64>,
    peak_rss_kib: Option<u64>,
    rss_end_kib: Option<u64>,
}

fn main() {
    let counts: Vec<usize> = {
        let args: Vec<usize> = std::env::args()
            .skip(1)
            .filter(|a| !a.starts_with('-'))
            .map(|a| {
                a.parse()
                    .unwrap_or_else(|e| panic!("node count {a:?} is not a number: {e}"))
            })
            .collect();
        if args.is_empty() {
            env_or("SOUK_BENCH_NODES", "50,200".to_string())
                .split(',')
                .map(|s| {
                    s.trim()
                        .parse()
                        .unwrap_or_else(|e| panic!("SOUK_BENCH_NODES: {s:?}: {e}"))
                })
                .collect()
        } else {
            args
        }
    };
    let m: usize = env_or("SOUK_BENCH_MANIFESTS", 20);
    let interval = Duration::from_millis(env_or("SOUK_BENCH_INTERVAL_MS", 100));
    let seed: u64 = env_or("SOUK_BENCH_SEED", 1);
    let settle = Duration::from_secs(env_or("SOUK_BENCH_SETTLE_SECS", 5));
    let tuning = Tuning::from_env();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("tokio runtime: {e}"));
    println!("propagation: {m} manifests, one every {interval:?}; {tuning}; seed {seed}");
    let mut reports = Vec::new();
    for &n in &counts {
        assert!(n >= 2, "a network needs at least 2 nodes, got {n}");
        let r = runtime
            .block_on(run(n, m, interval, settle, seed, &tuning))
            .unwrap_or_else(|e| panic!("N = {n}: {e}"));
        print_detail(&r);
        reports.push(r);
    }
    print_table(&reports);
}

/// One network of `n` nodes: setup, warm-up, `m` publications, teardown.
async fn run(
    n: usize,
    m: usize,
    interval: Duration,
    settle: Duration,
    seed: u64,
    tuning: &Tuning,
) -> Result<Report, String> {
    let tmp = tempfile::tempdir().map_err(|e| format!("tempdir: {e}"))?;
    let mut rng = Rng::new(seed);
    let (tuning, note) = tuning.within_file_limit(n);
    let tuning = &tuning;
    if let Some(note) = &note {
        eprintln!("N = {n}: {note}");
    }
    let load_start = load_average();
    let peak_reset = reset_peak_rss();
    let t = Instant::now();
    let nodes = start_network(tmp.path(), n, tuning, &mut rng).await;
    let setup = t.elapsed();
    let connect = wait_connected(&nodes, 2, CONNECT_MAX).await?;
    eprintln!("N = {n}: every node has 2+ peers after {connect:.2?}");

    // Every node reports its admissions, stamped on receipt, to one collector.
    let (tx, mut rx) = mpsc::unbounded_channel::<Seen>();
    let (lag_tx, mut lag_rx) = mpsc::unbounded_channel::<u64>();
    for (i, node) in nodes.iter().enumerate() {
        let mut events = node.handle.subscribe();
        let tx = tx.clone();
        let lag_tx = lag_tx.clone();
        tokio::spawn(async move {
            loop {
                match events.recv().await {
                    Ok(Stamped {
                        event: NodeEvent::ManifestAdmitted { id, via, .. },
                        ..
                    }) => {
                        let at = Instant::now();
                        if tx
                            .send(Seen {
                                node: i,
                                id,
                                via,
                                at,
                            })
                            .is_err()
                        {
                            return;
                        }
                    }
                    #[allow(unreachable_patterns)]
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(k)) => {
                        let _ = lag_tx.send(k);
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        });
    }
    drop(tx);
    drop(lag_tx);

    // Warm-up: meshes form over a few heartbeats; wait until one manifest reached everyone.
    let t = Instant::now();
    let warm = publish(&nodes, 0, "warmup-0", "warm-up manifest").await?;
    let mut seen_by: HashMap<Hash, usize> = HashMap::new();
    let deadline = t + WARMUP_MAX;
    while seen_by.get(&warm.id).copied().unwrap_or(0) < n {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, rx.recv()).await {
            Ok(Some(s)) => *seen_by.entry(s.id).or_default() += 1,
            Ok(None) => return Err("event collectors ended".into()),
            Err(_) => {
                return Err(format!(
                    "warm-up manifest reached {} of {n} nodes in {WARMUP_MAX:?}",
                    seen_by.get(&warm.id).copied().unwrap_or(0)
                ));
            }
        }
    }
    // A few more heartbeats so the meshes settle after the warm-up traffic.
    tokio::time::sleep(tuning.heartbeat * 3).await;
    let warmup = t.elapsed();
    let counts = peer_counts(&nodes).await;
    let peers_min = counts.iter().copied().min().unwrap_or(0);
    let peers_max = counts.iter().copied().max().unwrap_or(0);
    let peers_mean = counts.iter().sum::<usize>() as f64 / n as f64;
    eprintln!(
        "N = {n}: warm-up manifest everywhere; peers min {peers_min} mean {peers_mean:.1} max {peers_max}"
    );

    // Settle: the start-up traffic (Kademlia bootstrap queries and the dials they make) takes
    // a while to die down on 2 cores. Wait at least `settle`, then until two consecutive
    // seconds cost under QUIET_CORES (at most SETTLE_MAX), logging the CPU.
    // (A "second" lasts longer when the runtime is overloaded; CPU is per wall second.)
    let t = Instant::now();
    let mut trace = Vec::new();
    let mut quiet = 0;
    let mut pruned = false;
    while t.elapsed() < SETTLE_MAX && (t.elapsed() < settle || quiet < 2 || !pruned) {
        let (c0, w0) = (cpu_time(None), Instant::now());
        tokio::time::sleep(Duration::from_secs(1)).await;
        let wall = w0.elapsed().as_secs_f64();
        if let Some(c) = cpu_time(None)
            .zip(c0)
            .map(|(b, a)| (b - a).as_secs_f64() / wall)
        {
            trace.push(format!("{c:.2}"));
            quiet = if c < QUIET_CORES { quiet + 1 } else { 0 };
        }
        // Surplus peers (Kademlia's start-up dials) are pruned down to the target (mesh
        // peers, at most twice `mesh_n`, are never pruned).
        let keep = tuning.target_peers.max(2 * tuning.mesh_n);
        pruned = peer_counts(&nodes).await.iter().all(|c| *c <= keep);
    }
    let settled = t.elapsed();
    let conns = peer_counts(&nodes).await.iter().sum::<usize>() / 2;
    eprintln!(
        "N = {n}: settled for {settled:.0?} (CPU cores each second: {}); {conns} connections",
        trace.join(" ")
    );

    // Idle baseline: what the quiet network costs (gossipsub heartbeats, pings, Kademlia).
    let idle_wall = Duration::from_secs(2);
    let c0 = cpu_time(None);
    tokio::time::sleep(idle_wall).await;
    let idle_cpu = cpu_time(None)
        .zip(c0)
        .map(|(b, a)| (b - a).as_secs_f64() / idle_wall.as_secs_f64());
    while rx.try_recv().is_ok() {}

    // Measurement: `m` publications from random nodes, one every `interval`.
    let order: Vec<usize> = (0..m).map(|_| rng.below(n)).collect();
    let start = Instant::now();
    let cpu0 = cpu_time(None);
    let wait0 = runqueue_wait();
    let publisher = {
        let handles: Vec<_> = nodes.iter().map(|b| b.handle.clone()).collect();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut out = Vec::with_capacity(order.len());
            for (k, &origin) in order.iter().enumerate() {
                tick.tick().await;
                let spec = agent(
                    &format!("bench-agent-{k}"),
                    &["bench", "csv"],
                    &format!("Benchmark agent {k}: summarizes CSV files."),
                    1_000_000 + k as u64,
                );
                let called = Instant::now();
                let p = handles[origin]
                    .publish(spec)
                    .await
                    .map_err(|e| format!("publish {k} on node {origin}: {e}"))?;
                let returned = Instant::now();
                let id = Hash::from_hex(&p.manifest_id)
                    .ok_or_else(|| format!("bad manifest id {:?}", p.manifest_id))?;
                out.push(Publication {
                    id,
                    origin,
                    returned,
                    call: returned - called,
                });
            }
            Ok::<_, String>(out)
        })
    };
    let mut seen: Vec<Seen> = Vec::new();
    let mut per_id: HashMap<Hash, usize> = HashMap::new();
    let mut publisher = Some(publisher);
    let mut pubs: Vec<Publication> = Vec::new();
    let mut drain_deadline = None;
    loop {
        if let Some(p) = publisher.as_mut() {
            tokio::select! {
                done = p => {
                    pubs = done.map_err(|e| format!("publisher task: {e}"))??;
                    publisher = None;
                    drain_deadline = Some(Instant::now() + DRAIN);
                }
                s = rx.recv() => match s {
                    Some(s) => {
                        *per_id.entry(s.id).or_default() += 1;
                        seen.push(s);
                    }
                    None => return Err("event collectors ended".into()),
                },
            }
            continue;
        }
        if pubs
            .iter()
            .all(|p| per_id.get(&p.id).copied().unwrap_or(0) >= n)
        {
            break;
        }
        let left = drain_deadline
            .unwrap_or_else(Instant::now)
            .saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, rx.recv()).await {
            Ok(Some(s)) => {
                *per_id.entry(s.id).or_default() += 1;
                seen.push(s);
            }
            Ok(None) | Err(_) => break,
        }
    }
    let window = start.elapsed();
    let cpu = cpu_time(None).zip(cpu0).map(|(b, a)| b - a);
    let waited = runqueue_wait().zip(wait0).map(|(b, a)| b.saturating_sub(a));
    let peak_rss_kib = if peak_reset {
        status_kib(None, "VmHWM")
    } else {
        None
    };
    let rss_end_kib = status_kib(None, "VmRSS");
    let mut lagged = 0;
    while let Ok(k) = lag_rx.try_recv() {
        lagged += k;
    }
    let peers_end_min = peer_counts(&nodes).await.into_iter().min().unwrap_or(0);

    // Per manifest and node: time from the publish call returning to the admission.
    let index: HashMap<Hash, usize> = pubs.iter().enumerate().map(|(k, p)| (p.id, k)).collect();
    let mut got: Vec<Vec<Option<Duration>>> = vec![vec![None; n]; pubs.len()];
    let (mut via_sync, mut early) = (0, 0);
    for s in &seen {
        let Some(&k) = index.get(&s.id) else { continue };
        let p = &pubs[k];
        if s.node == p.origin || got[k][s.node].is_some() {
            continue;
        }
        if s.at < p.returned {
            early += 1;
        }
        if s.via == Via::Sync {
            via_sync += 1;
        }
        got[k][s.node] = Some(s.at.saturating_duration_since(p.returned));
    }
    let mut lat = Vec::new();
    let mut last = Vec::new();
    let mut in_order = Vec::new();
    let mut incomplete = 0;
    for (k, row) in got.iter().enumerate() {
        let others: Vec<Duration> = row
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != pubs[k].origin)
            .filter_map(|(_, d)| *d)
            .collect();
        if others.len() == n - 1 {
            last.extend(others.iter().max().copied());
            let mut sorted = others.clone();
            sorted.sort();
            in_order.push(format!(
                "{}/{}/{}",
                ms(sorted.first().copied()),
                ms(quantile(&sorted, 0.5)),
                ms(sorted.last().copied())
            ));
        } else {
            incomplete += 1;
            in_order.push(format!("{}/{} nodes", others.len(), n - 1));
        }
        lat.extend(others);
    }
    lat.sort();
    last.sort();
    let mut publish_call: Vec<Duration> = pubs.iter().map(|p| p.call).collect();
    publish_call.sort();
    let report = Report {
        nodes: n,
        max_connections: tuning.max_connections,
        settled,
        load: (load_start, load_average()),
        manifests: pubs.len(),
        setup,
        connect,
        warmup,
        peers_min,
        peers_mean,
        peers_max,
        peers_end_min,
        delivered: lat.len(),
        expected: pubs.len() * (n - 1),
        via_sync,
        early,
        lagged,
        lat,
        last,
        in_order,
        incomplete,
        publish_call,
        window,
        cpu,
        waited,
        idle_cpu,
        peak_rss_kib,
        rss_end_kib,
    };
    let t = Instant::now();
    shutdown(nodes).await;
    eprintln!("N = {n}: nodes shut down in {:.2?}", t.elapsed());
    drop(tmp);
    Ok(report)
}

/// Publishes one agent from `nodes[origin]`, returning its publication.
async fn publish(
    nodes: &[BenchNode],
    origin: usize,
    name: &str,
    description: &str,
) -> Result<Publication, String> {
    let called = Instant::now();
    let p = nodes[origin]
        .handle
        .publish(agent(name, &["bench", "csv"], description, 1_000_000))
        .await
        .map_err(|e| format!("publish {name}: {e}"))?;
    let returned = Instant::now();
    let id = Hash::from_hex(&p.manifest_id)
        .ok_or_else(|| format!("bad manifest id {:?}", p.manifest_id))?;
    Ok(Publication {
        id,
        origin,
        returned,
        call: returned - called,
    })
}

fn print_detail(r: &Report) {
    let cpu_share = r.cpu.map(|c| c.as_secs_f64() / r.window.as_secs_f64());
    println!();
    println!(
        "N = {} nodes (max_connections {}), {} manifests",
        r.nodes, r.max_connections, r.manifests
    );
    println!(
        "  setup {:.2?}; 2+ peers after {:.2?}; warm-up {:.2?}; settled {:.0?}; peers min/mean/max {}/{:.1}/{} (min {} at the end)",
        r.setup,
        r.connect,
        r.warmup,
        r.settled,
        r.peers_min,
        r.peers_mean,
        r.peers_max,
        r.peers_end_min
    );
    let load = |l: Option<f64>| l.map_or("?".into(), |l| format!("{l:.2}"));
    println!(
        "  machine load average {} at start, {} at end (2 cores; other processes compete)",
        load(r.load.0),
        load(r.load.1)
    );
    println!(
        "  delivery {}/{} = {:.2}% ({} via sync, {} manifests incomplete, {} admissions before publish returned, {} events lost to lag)",
        r.delivered,
        r.expected,
        100.0 * r.delivered as f64 / r.expected.max(1) as f64,
        r.via_sync,
        r.incomplete,
        r.early,
        r.lagged
    );
    println!(
        "  latency to a node: p50 {} ms, p90 {} ms, p99 {} ms, max {} ms",
        ms(quantile(&r.lat, 0.5)),
        ms(quantile(&r.lat, 0.9)),
        ms(quantile(&r.lat, 0.99)),
        ms(r.lat.last().copied())
    );
    println!(
        "  latency to the last node: p50 {} ms, p99 {} ms, max {} ms",
        ms(quantile(&r.last, 0.5)),
        ms(quantile(&r.last, 0.99)),
        ms(r.last.last().copied())
    );
    println!(
        "  per manifest in publication order, first/median/last node (ms): {}",
        r.in_order.join(" ")
    );
    println!(
        "  publish call: p50 {} ms, max {} ms",
        ms(quantile(&r.publish_call, 0.5)),
        ms(r.publish_call.last().copied())
    );
    println!(
        "  CPU: {} s over {:.2} s = {} cores during measurement ({} ms per delivery); idle network {} cores",
        r.cpu
            .map_or("-".into(), |c| format!("{:.2}", c.as_secs_f64())),
        r.window.as_secs_f64(),
        cpu_share.map_or("-".into(), |c| format!("{c:.2}")),
        r.cpu.map_or("-".into(), |c| format!(
            "{:.2}",
            c.as_secs_f64() * 1e3 / r.delivered.max(1) as f64
        )),
        r.idle_cpu.map_or("-".into(), |c| format!("{c:.2}"))
    );
    println!(
        "  runnable but waiting for a core: {} thread-seconds over the window (others' work or our own saturation)",
        r.waited
            .map_or("-".into(), |w| format!("{:.2}", w.as_secs_f64()))
    );
    println!(
        "  RSS: peak {} MiB (since this run started), at end {} MiB",
        mib(r.peak_rss_kib),
        mib(r.rss_end_kib)
    );
}

fn print_table(reports: &[Report]) {
    println!();
    println!(
        "| N | delivery | p50 ms | p99 ms | max ms | last-node p50 ms | last-node p99 ms | CPU cores (idle) | peak RSS MiB | goal |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for r in reports {
        let ratio = r.delivered as f64 / r.expected.max(1) as f64;
        let p99 = quantile(&r.lat, 0.99);
        let ok = r.delivered == r.expected && p99.is_some_and(|p| p <= GOAL_P99);
        println!(
            "| {} | {:.2}% | {} | {} | {} | {} | {} | {} ({}) | {} | {} |",
            r.nodes,
            100.0 * ratio,
            ms(quantile(&r.lat, 0.5)),
            ms(p99),
            ms(r.lat.last().copied()),
            ms(quantile(&r.last, 0.5)),
            ms(quantile(&r.last, 0.99)),
            r.cpu.map_or("-".into(), |c| format!(
                "{:.2}",
                c.as_secs_f64() / r.window.as_secs_f64()
            )),
            r.idle_cpu.map_or("-".into(), |c| format!("{c:.2}")),
            mib(r.peak_rss_kib),
            if ok { "met" } else { "missed" }
        );
    }
    println!("goal: 100% delivery and p99 <= {} ms", GOAL_P99.as_millis());
}
