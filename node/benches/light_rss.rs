//! Resident memory of a real `souk` light node connected to 16 full nodes.
//!
//! Starts 16 full nodes in-process (seeded random topology, 50 manifests published among
//! them), then the `souk` binary as a light node in a fresh data directory bootstrapped to
//! all 16; waits until it has 16 peers, runs 20 searches through `souk search --json csv`,
//! samples `VmRSS`/`VmHWM` from `/proc/PID/status` every 200 ms for 10 s, and stops it with
//! SIGTERM, expecting exit status 0.
//!
//! ```sh
//! cargo bench -p souk-node --bench light_rss
//! ```
//!
//! Environment: `SOUK_BIN` (the binary; default: the one Cargo built for this bench),
//! `SOUK_BENCH_SAMPLE_SECS` (10), `SOUK_BENCH_SEED` (1), and the swarm tuning of the full
//! nodes (`common::Tuning`).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::{
    BenchNode, Rng, Tuning, agent, cpu_time, env_or, mib, ms, quantile, shutdown, start_network,
    status_kib, wait_connected, wait_until,
};
use souk_node::service::{NodeInfo, SearchHit};

/// Full nodes the light node connects to.
const FULL_NODES: usize = 16;
/// Manifests published among the full nodes.
const MANIFESTS: usize = 50;
/// Searches run through the light node.
const SEARCHES: usize = 20;
/// The issue's goal for a light node's resident memory.
const GOAL_RSS_KIB: u64 = 32 << 10;

fn main() {
    let bin = std::env::var_os("SOUK_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_souk")));
    let sample = Duration::from_secs(env_or("SOUK_BENCH_SAMPLE_SECS", 10));
    let seed: u64 = env_or("SOUK_BENCH_SEED", 1);
    let tuning = Tuning::from_env();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("tokio runtime: {e}"));
    println!(
        "light_rss: {} as a light node, {FULL_NODES} full nodes ({tuning}), {MANIFESTS} manifests",
        bin.display()
    );
    if let Err(e) = runtime.block_on(run(&bin, sample, seed, &tuning)) {
        eprintln!("light_rss failed: {e}");
        std::process::exit(1);
    }
}

/// What the light node's memory did.
#[derive(Default)]
struct Samples {
    rss_kib: Vec<u64>,
    hwm_kib: Option<u64>,
}

async fn run(bin: &Path, sample: Duration, seed: u64, tuning: &Tuning) -> Result<(), String> {
    let tmp = tempfile::tempdir().map_err(|e| format!("tempdir: {e}"))?;
    let mut rng = Rng::new(seed);
    let nodes = start_network(&tmp.path().join("full"), FULL_NODES, tuning, &mut rng).await;
    wait_connected(&nodes, 2, Duration::from_secs(60)).await?;
    publish_catalog(&nodes, &mut rng).await?;
    eprintln!("{FULL_NODES} full nodes hold {MANIFESTS} manifests");

    let dir = tmp.path().join("light");
    souk(bin, &dir, &["init", "--light"]).await?;
    let log_path = tmp.path().join("light.log");
    let log = std::fs::File::create(&log_path).map_err(|e| format!("light.log: {e}"))?;
    let mut cmd = Command::new(bin);
    cmd.arg("--data-dir").arg(&dir).args([
        "node",
        "run",
        "--light",
        "--listen",
        "/ip4/127.0.0.1/tcp/0",
    ]);
    for n in &nodes {
        cmd.arg("--bootstrap").arg(n.addr.to_string());
    }
    let started = Instant::now();
    let child = cmd
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(|e| format!("cannot start the light node: {e}"))?;
    let mut light = Light { child, dir };
    let result = measure(&mut light, bin, sample, started).await;
    let stop = light.stop().await;
    shutdown(nodes).await;
    if (result.is_err() || stop.is_err())
        && let Ok(text) = std::fs::read_to_string(&log_path)
    {
        let tail: Vec<&str> = text.lines().rev().take(20).collect();
        eprintln!("light node log (last lines):");
        for l in tail.iter().rev() {
            eprintln!("  {l}");
        }
    }
    let samples = result?;
    let status = stop?;
    report(&samples, status);
    Ok(())
}

/// The light node process; killed if dropped while running.
struct Light {
    child: Child,
    dir: PathBuf,
}

impl Light {
    /// Sends SIGTERM and waits up to 20 s for the exit status.
    async fn stop(&mut self) -> Result<ExitStatus, String> {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .map_err(|e| format!("cannot run kill: {e}"))?;
        if !sent.success() {
            return Err(format!("kill -TERM {pid} failed: {sent}"));
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return Ok(status),
                Ok(None) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Ok(None) => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    return Err("the light node ignored SIGTERM for 20 s (killed)".into());
                }
                Err(e) => return Err(format!("waiting for the light node: {e}")),
            }
        }
    }
}

impl Drop for Light {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Publishes [`MANIFESTS`] agents from random full nodes (about half match `csv`) and waits
/// until every full node holds all of them.
async fn publish_catalog(nodes: &[BenchNode], rng: &mut Rng) -> Result<(), String> {
    const KINDS: [(&str, &[&str], &str); 4] = [
        (
            "csv-analyst",
            &["csv", "analytics"],
            "Answers questions about CSV files.",
        ),
        (
            "csv-cleaner",
            &["csv", "etl"],
            "Normalizes and deduplicates CSV exports.",
        ),
        (
            "invoice-reader",
            &["ocr", "invoices"],
            "Extracts totals from scanned invoices.",
        ),
        (
            "translator",
            &["text", "translation"],
            "Translates documents between languages.",
        ),
    ];
    for k in 0..MANIFESTS {
        let (name, caps, description) = KINDS[k % KINDS.len()];
        let origin = rng.below(nodes.len());
        nodes[origin]
            .handle
            .publish(agent(
                &format!("{name}-{k}"),
                caps,
                description,
                500_000 + 10_000 * k as u64,
            ))
            .await
            .map_err(|e| format!("publish {k}: {e}"))?;
    }
    wait_until(
        "every full node to hold every manifest",
        Duration::from_secs(60),
        Duration::from_millis(100),
        || async {
            for n in nodes {
                match n.handle.info().await {
                    Ok(i) if i.manifests >= MANIFESTS => {}
                    _ => return false,
                }
            }
            true
        },
    )
    .await?;
    Ok(())
}

/// Runs `souk --data-dir DIR ARGS...` on a blocking thread and returns its stdout.
async fn souk(bin: &Path, dir: &Path, args: &[&str]) -> Result<Vec<u8>, String> {
    let mut cmd = Command::new(bin);
    cmd.arg("--data-dir").arg(dir).args(args);
    let what = format!("souk {}", args.join(" "));
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .map_err(|e| format!("{what}: {e}"))?
        .map_err(|e| format!("cannot run {what}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{what} exited with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(out.stdout)
}

/// Waits for 16 peers, runs the searches, then samples memory for `sample`.
async fn measure(
    light: &mut Light,
    bin: &Path,
    sample: Duration,
    started: Instant,
) -> Result<Samples, String> {
    let pid = light.child.id();
    let dir = light.dir.clone();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last_err = String::new();
    let mut peers = 0;
    loop {
        match souk(bin, &dir, &["node", "info", "--json"])
            .await
            .and_then(|out| {
                serde_json::from_slice::<NodeInfo>(&out).map_err(|e| format!("node info: {e}"))
            }) {
            Ok(info) => {
                peers = info.peers.len();
                if info.mode == "light" && peers >= FULL_NODES {
                    break;
                }
            }
            Err(e) => last_err = e,
        }
        if let Ok(Some(status)) = light.child.try_wait() {
            return Err(format!("the light node exited early with {status}"));
        }
        if Instant::now() > deadline {
            return Err(format!(
                "the light node had {peers} of {FULL_NODES} peers after 60 s (last error: {last_err})"
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!(
        "light node (pid {pid}) has {peers} peers {:.2?} after start",
        started.elapsed()
    );

    let mut times = Vec::with_capacity(SEARCHES);
    let mut hits_seen = 0;
    for _ in 0..SEARCHES {
        let t = Instant::now();
        let out = souk(bin, &dir, &["search", "--json", "csv"]).await?;
        times.push(t.elapsed());
        let hits: Vec<SearchHit> =
            serde_json::from_slice(&out).map_err(|e| format!("search output: {e}"))?;
        if hits.is_empty() {
            return Err("a search for csv found nothing".into());
        }
        hits_seen = hits.len();
    }
    times.sort();
    println!(
        "{SEARCHES} searches (`souk search --json csv`, {hits_seen} hits each, process included): p50 {} ms, max {} ms",
        ms(quantile(&times, 0.5)),
        ms(times.last().copied())
    );

    let mut samples = Samples::default();
    let cpu0 = cpu_time(Some(pid));
    let t0 = Instant::now();
    while t0.elapsed() < sample {
        let rss = status_kib(Some(pid), "VmRSS")
            .ok_or_else(|| format!("cannot read /proc/{pid}/status: has the node exited?"))?;
        samples.rss_kib.push(rss);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let cpu = cpu_time(Some(pid)).zip(cpu0).map(|(b, a)| b - a);
    samples.hwm_kib = status_kib(Some(pid), "VmHWM");
    println!(
        "light node CPU while idle: {} over {:.1} s",
        cpu.map_or("-".into(), |c| format!("{:.2} s", c.as_secs_f64())),
        t0.elapsed().as_secs_f64()
    );
    Ok(samples)
}

fn report(s: &Samples, status: ExitStatus) {
    let max = s.rss_kib.iter().copied().max();
    let last = s.rss_kib.last().copied();
    let ok = max.is_some_and(|m| m <= GOAL_RSS_KIB) && s.hwm_kib.is_some_and(|h| h <= GOAL_RSS_KIB);
    println!();
    println!(
        "| samples | VmRSS max MiB | VmRSS final MiB | VmHWM (lifetime peak) MiB | exit on SIGTERM | goal <= 32 MiB |"
    );
    println!("|---|---|---|---|---|---|");
    println!(
        "| {} | {} | {} | {} | {} | {} |",
        s.rss_kib.len(),
        mib(max),
        mib(last),
        mib(s.hwm_kib),
        status,
        if ok { "met" } else { "missed" }
    );
    if !status.success() {
        eprintln!("the light node did not exit 0 on SIGTERM: {status}");
        std::process::exit(1);
    }
}
