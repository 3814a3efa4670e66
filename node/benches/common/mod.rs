//! Shared harness of the node benchmarks: in-process full nodes on loopback TCP with their
//! own redb stores, a seeded random topology, event-driven waits with timeouts, agent
//! fixtures, and readers for `/proc` (CPU time and resident memory).
#![allow(dead_code)]

use std::future::Future;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use libp2p::Multiaddr;
use souk_node::service::{self, NodeHandle, NodeOptions};
use souk_node::swarm::SwarmSettings;
use souk_protocol::Keypair;
use souk_store::{Store, StoreConfig};

/// redb cache of every benchmark node.
pub(crate) const CACHE_SIZE: usize = 2 << 20;

/// Reads environment variable `name`, or `default` when it is unset; panics with a message
/// naming the variable when it is set but does not parse.
pub(crate) fn env_or<T: FromStr>(name: &str, default: T) -> T
where
    T::Err: std::fmt::Display,
{
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("{name}={v:?} is not valid: {e}")),
        Err(_) => default,
    }
}

/// Swarm tuning of the benchmark nodes (environment overrides in parentheses).
#[derive(Debug, Clone)]
pub(crate) struct Tuning {
    /// Gossipsub heartbeat (`SOUK_BENCH_HEARTBEAT_MS`, default 1000, a node's).
    pub(crate) heartbeat: Duration,
    /// Gossipsub mesh degree (`SOUK_BENCH_MESH_N`, default 4, a node's).
    pub(crate) mesh_n: usize,
    /// Connection cap per node (`SOUK_BENCH_MAX_CONNECTIONS`, default 128).
    pub(crate) max_connections: u32,
    /// Idle connection timeout (`SOUK_BENCH_IDLE_SECS`, default 60).
    pub(crate) idle_timeout: Duration,
    /// Full peers each node keeps (`SOUK_BENCH_TARGET_PEERS`, default a node's: 12).
    pub(crate) target_peers: usize,
    /// How long a surplus peer lives before it is pruned (`SOUK_BENCH_PRUNE_GRACE_SECS`,
    /// default 5: a node's 60 s would only make the bench wait longer for the same state).
    pub(crate) prune_grace: Duration,
}

impl Tuning {
    /// The defaults of a full node, with the environment overrides applied.
    pub(crate) fn from_env() -> Self {
        let d = SwarmSettings::default();
        Self {
            heartbeat: Duration::from_millis(env_or(
                "SOUK_BENCH_HEARTBEAT_MS",
                d.heartbeat.as_millis() as u64,
            )),
            mesh_n: env_or("SOUK_BENCH_MESH_N", d.mesh_n),
            max_connections: env_or("SOUK_BENCH_MAX_CONNECTIONS", d.max_connections),
            idle_timeout: Duration::from_secs(env_or(
                "SOUK_BENCH_IDLE_SECS",
                d.idle_timeout.as_secs(),
            )),
            target_peers: env_or("SOUK_BENCH_TARGET_PEERS", d.target_peers),
            prune_grace: Duration::from_secs(env_or("SOUK_BENCH_PRUNE_GRACE_SECS", 5)),
        }
    }
}

impl Tuning {
    /// This tuning for `n` nodes in one process: `max_connections` is lowered if needed so
    /// that `n` nodes at the cap stay within the open-file limit (a loopback connection
    /// between two in-process nodes costs two descriptors). Returns the note to print.
    pub(crate) fn within_file_limit(&self, n: usize) -> (Tuning, Option<String>) {
        let Some(limit) = open_file_limit() else {
            return (self.clone(), None);
        };
        // A few descriptors per node (listener, database) and some for the process itself.
        let budget = (limit.saturating_sub(200) as f64 * 0.9 / n as f64) as u32;
        let cap = budget.saturating_sub(4).max(8);
        if cap >= self.max_connections {
            return (self.clone(), None);
        }
        let note = format!(
            "max_connections lowered from {} to {cap} per node: {n} nodes in one process \
             must stay under the open-file limit of {limit}",
            self.max_connections
        );
        (
            Tuning {
                max_connections: cap,
                ..self.clone()
            },
            Some(note),
        )
    }
}

/// The soft limit on open files of this process (`/proc/self/limits`).
pub(crate) fn open_file_limit() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    line.trim_start_matches("Max open files")
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The 1-minute load average of the machine (`/proc/loadavg`): other work competes for the
/// same cores.
pub(crate) fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

impl std::fmt::Display for Tuning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "heartbeat {} ms, mesh_n {}, max_connections {}, target peers {} (prune grace {} s), \
             idle timeout {} s",
            self.heartbeat.as_millis(),
            self.mesh_n,
            self.max_connections,
            self.target_peers,
            self.prune_grace.as_secs(),
            self.idle_timeout.as_secs()
        )
    }
}

/// A full node started in-process.
pub(crate) struct BenchNode {
    /// Its handle.
    pub(crate) handle: NodeHandle,
    /// Its event loop.
    pub(crate) task: tokio::task::JoinHandle<()>,
    /// Its dialable address (with `/p2p/`).
    pub(crate) addr: Multiaddr,
}

/// The key seed of benchmark node `n`.
pub(crate) fn seed(n: u32) -> [u8; 32] {
    *blake3::hash(format!("souk bench node {n}").as_bytes()).as_bytes()
}

/// Starts a full node whose store lives in `dir`, dialing `bootstrap`, and waits until it
/// listens.
pub(crate) async fn start_full_node(
    dir: &Path,
    n: u32,
    bootstrap: Vec<Multiaddr>,
    tuning: &Tuning,
) -> BenchNode {
    std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    let store = Store::open(
        &dir.join("souk.redb"),
        &StoreConfig {
            cache_size: CACHE_SIZE,
        },
    )
    .unwrap_or_else(|e| panic!("open the store of node {n}: {e}"));
    let opts = NodeOptions {
        light: false,
        listen: vec![
            "/ip4/127.0.0.1/tcp/0"
                .parse()
                .unwrap_or_else(|e| panic!("listen address: {e}")),
        ],
        bootstrap,
        swarm: SwarmSettings {
            light: false,
            heartbeat: tuning.heartbeat,
            mesh_n: tuning.mesh_n,
            max_connections: tuning.max_connections,
            idle_timeout: tuning.idle_timeout,
            target_peers: tuning.target_peers,
            prune_grace: tuning.prune_grace,
            ..SwarmSettings::default()
        },
        manifest_ttl_ms: 3_600_000,
        // A full node's default sweep interval (`sweep_interval_secs`): each housekeeping tick
        // opens a store write transaction, which at 500 ms (the tests' tick) would cost
        // hundreds of transactions a second across the network.
        tick: Duration::from_secs(30),
        sealing_secret: Arc::new(zeroize::Zeroizing::new([7; 32])),
        // Anything else (e.g. where hires would run) keeps its default: no bench hires.
        ..NodeOptions::default()
    };
    let (handle, task) = service::start(Keypair::from_seed(&seed(n)), Arc::new(store), opts)
        .await
        .unwrap_or_else(|e| panic!("start node {n}: {e}"));
    let deadline = Instant::now() + Duration::from_secs(30);
    let addr = loop {
        let info = handle
            .info()
            .await
            .unwrap_or_else(|e| panic!("info of node {n}: {e}"));
        if let Some(a) = info.listen_addrs.first() {
            break a.clone();
        }
        assert!(
            Instant::now() < deadline,
            "node {n} never started listening"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let addr: Multiaddr = format!("{addr}/p2p/{}", handle.peer_id)
        .parse()
        .unwrap_or_else(|e| panic!("address of node {n}: {e}"));
    BenchNode { handle, task, addr }
}

/// A small deterministic generator (SplitMix64): the topology and the publishers depend only
/// on the seed.
pub(crate) struct Rng(u64);

impl Rng {
    /// A generator from `seed`.
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`; the modulo bias is negligible for the sizes used here).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// Starts `n` full nodes under `root`, then wires them: node `i` dials 2 or 3 random
/// earlier nodes (all of them while fewer exist), so the graph is connected.
///
/// Every node is started first and the dials are made together afterwards, so that each
/// node's first connections exist before the Kademlia bootstrap traffic they trigger can fill
/// the peers' connection slots (a node at `max_connections` refuses newcomers).
pub(crate) async fn start_network(
    root: &Path,
    n: usize,
    tuning: &Tuning,
    rng: &mut Rng,
) -> Vec<BenchNode> {
    let t = Instant::now();
    let mut nodes: Vec<BenchNode> = Vec::with_capacity(n);
    for i in 0..n {
        nodes.push(start_full_node(&root.join(format!("node{i}")), i as u32, vec![], tuning).await);
    }
    let mut dials = Vec::new();
    for i in 1..n {
        for j in earlier_peers(rng, i) {
            dials.push(nodes[i].handle.dial(nodes[j].addr.clone()));
        }
    }
    for r in futures::future::join_all(dials).await {
        r.unwrap_or_else(|e| panic!("dial: {e}"));
    }
    eprintln!(
        "  {n} nodes started and wired after {:.2?}; {} open files",
        t.elapsed(),
        open_files().map_or("?".into(), |f| f.to_string())
    );
    nodes
}

/// The nodes node `i` dials in the bench topology: 2 or 3 distinct random earlier nodes (all
/// of them while fewer exist), so the graph is connected.
pub(crate) fn earlier_peers(rng: &mut Rng, i: usize) -> Vec<usize> {
    let want = (2 + rng.below(2)).min(i);
    let mut picked: Vec<usize> = Vec::with_capacity(want);
    while picked.len() < want {
        let j = rng.below(i);
        if !picked.contains(&j) {
            picked.push(j);
        }
    }
    picked
}

/// Open file descriptors of this process (each loopback connection between two in-process
/// nodes costs two).
pub(crate) fn open_files() -> Option<usize> {
    Some(std::fs::read_dir("/proc/self/fd").ok()?.count())
}

/// Connected-peer counts of `nodes`, in order.
pub(crate) async fn peer_counts(nodes: &[BenchNode]) -> Vec<usize> {
    let mut out = Vec::with_capacity(nodes.len());
    for (i, n) in nodes.iter().enumerate() {
        let info = n
            .handle
            .info()
            .await
            .unwrap_or_else(|e| panic!("info of node {i}: {e}"));
        out.push(info.peers.len());
    }
    out
}

/// Polls `check` every `every` until it returns true; returns the time it took, or an error
/// naming `what` after `timeout`.
pub(crate) async fn wait_until<F, Fut>(
    what: &str,
    timeout: Duration,
    every: Duration,
    mut check: F,
) -> Result<Duration, String>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            return Ok(start.elapsed());
        }
        if start.elapsed() > timeout {
            return Err(format!("timed out after {timeout:?} waiting for {what}"));
        }
        tokio::time::sleep(every).await;
    }
}

/// Waits until every node has at least `min` connected peers.
pub(crate) async fn wait_connected(
    nodes: &[BenchNode],
    min: usize,
    timeout: Duration,
) -> Result<Duration, String> {
    let start = Instant::now();
    let mut counts;
    let r = loop {
        counts = peer_counts(nodes).await;
        if counts.iter().all(|&c| c >= min) {
            break Ok(start.elapsed());
        }
        if start.elapsed() > timeout {
            break Err(format!(
                "timed out after {timeout:?} waiting for every node to have {min} peers"
            ));
        }
        // Not faster: `info()` formats every peer id, which is not free for 200 nodes.
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    r.map_err(|e| {
        let below = counts.iter().filter(|&&c| c < min).count();
        let total: usize = counts.iter().sum();
        format!(
            "{e}: {below} of {} nodes below {min}, peers min {} max {}, {} connections, {} open files",
            counts.len(),
            counts.iter().min().copied().unwrap_or(0),
            counts.iter().max().copied().unwrap_or(0),
            total / 2,
            open_files().map_or("?".into(), |f| f.to_string())
        )
    })
}

/// Stops every node (flushing its store) and waits for the event loops to end.
pub(crate) async fn shutdown(nodes: Vec<BenchNode>) {
    futures::future::join_all(nodes.iter().map(|n| n.handle.shutdown())).await;
    for n in nodes {
        let _ = n.task.await;
    }
}

/// An agent spec that passes every manifest rule (the shared test kit's).
#[allow(unused_imports)]
pub(crate) use souk_node::testkit::agent;

/// Clock ticks per second of `/proc/*/stat` times (`USER_HZ`, 100 on Linux/x86).
pub(crate) const USER_HZ: f64 = 100.0;

/// User + system CPU time of process `pid` (`None`: this process) from `/proc/PID/stat`.
pub(crate) fn cpu_time(pid: Option<u32>) -> Option<Duration> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/stat"),
        None => "/proc/self/stat".into(),
    };
    let text = std::fs::read_to_string(path).ok()?;
    // The command name (field 2) may contain spaces: count fields after its closing ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state); utime and stime are fields 14 and 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(Duration::from_secs_f64((utime + stime) as f64 / USER_HZ))
}

/// A `kB` field of `/proc/PID/status` (`VmRSS`, `VmHWM`, ...) in KiB; `None`: this process.
pub(crate) fn status_kib(pid: Option<u32>, field: &str) -> Option<u64> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/status"),
        None => "/proc/self/status".into(),
    };
    let text = std::fs::read_to_string(path).ok()?;
    text.lines().find_map(|l| {
        let v = l.strip_prefix(field)?.strip_prefix(':')?;
        v.trim().strip_suffix("kB")?.trim().parse().ok()
    })
}

/// Total time this process's threads have spent runnable but waiting for a CPU
/// (`/proc/self/task/*/schedstat`, second field): high when other work takes the cores.
pub(crate) fn runqueue_wait() -> Option<Duration> {
    let mut total = 0u64;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let Ok(task) = task else { continue };
        let Ok(text) = std::fs::read_to_string(task.path().join("schedstat")) else {
            continue;
        };
        if let Some(ns) = text
            .split_whitespace()
            .nth(1)
            .and_then(|f| f.parse::<u64>().ok())
        {
            total += ns;
        }
    }
    Some(Duration::from_nanos(total))
}

/// Resets this process's peak RSS (`VmHWM`) to its current RSS; false if the kernel refused.
pub(crate) fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// The `q`-quantile (nearest rank) of sorted `v`.
pub(crate) fn quantile(v: &[Duration], q: f64) -> Option<Duration> {
    if v.is_empty() {
        return None;
    }
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    Some(v[rank - 1])
}

/// Milliseconds with two decimals, or `-`.
pub(crate) fn ms(d: Option<Duration>) -> String {
    d.map_or_else(|| "-".into(), |d| format!("{:.2}", d.as_secs_f64() * 1e3))
}

/// KiB as MiB with one decimal, or `-`.
pub(crate) fn mib(kib: Option<u64>) -> String {
    kib.map_or_else(|| "-".into(), |k| format!("{:.1}", k as f64 / 1024.0))
}
