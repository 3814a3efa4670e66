//! The in-process network: N full nodes on loopback TCP in this process (node `i` dials 2
//! or 3 random earlier nodes, as the propagation bench wires them), their events collected
//! as the process mode's are, publications, waits, samples and the process's memory.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use libp2p::Multiaddr;
use souk_node::agent_file::AgentSpec;
use souk_node::service::{self, NodeHandle, NodeOptions};
use souk_node::swarm::SwarmSettings;
use souk_protocol::identity::Keypair;
use souk_store::{Store, StoreConfig};

use crate::network::now_ms;
use crate::report::data::Sample;
use crate::scenario::{Publication, Rng, Seen};

/// Each node's store cache (the nodes hold a few manifests each).
const CACHE_SIZE: usize = 256 << 10;

/// The running nodes.
pub(crate) struct Nodes {
    nodes: Vec<(NodeHandle, tokio::task::JoinHandle<()>)>,
}

/// `node-7` → 7.
pub(crate) fn index_of(name: &str) -> anyhow::Result<usize> {
    name.strip_prefix("node-")
        .and_then(|i| i.parse().ok())
        .with_context(|| format!("{name} is not a full node name"))
}

/// Starts `n` full nodes under `root`, sends their events to `events`, then wires them.
pub(crate) async fn start(
    root: &Path,
    n: usize,
    seed: u64,
    events: Arc<Mutex<Vec<Seen>>>,
) -> anyhow::Result<Nodes> {
    let mut nodes = Vec::with_capacity(n);
    let mut addrs: Vec<Multiaddr> = Vec::with_capacity(n);
    let t = Instant::now();
    let swarm = swarm_settings(n, souk_node::fd_limit::soft_limit());
    eprintln!(
        "  per node: at most {} connections, {} peers kept (open-file limit {:?})",
        swarm.max_connections,
        swarm.target_peers,
        souk_node::fd_limit::soft_limit()
    );
    for i in 0..n {
        let dir = root.join(format!("node-{i}"));
        std::fs::create_dir_all(&dir)?;
        let store = Store::open(
            &dir.join("souk.redb"),
            &StoreConfig {
                cache_size: CACHE_SIZE,
            },
        )
        .with_context(|| format!("cannot open the store of node-{i}"))?;
        let opts = NodeOptions {
            light: false,
            listen: vec!["/ip4/127.0.0.1/tcp/0".parse()?],
            bootstrap: Vec::new(),
            swarm: swarm.clone(),
            manifest_ttl_ms: 3_600_000,
            tick: Duration::from_secs(30),
            sealing_secret: Arc::new(zeroize::Zeroizing::new(
                *blake3::hash(format!("sealing {i}").as_bytes()).as_bytes(),
            )),
            work_dir: dir.join("hires"),
            ..NodeOptions::default()
        };
        let key = Keypair::from_seed(
            blake3::hash(format!("souk testnet {seed} node {i}").as_bytes()).as_bytes(),
        );
        let (handle, task) = service::start(key, Arc::new(store), opts)
            .await
            .with_context(|| format!("cannot start node-{i}"))?;
        let deadline = Instant::now() + Duration::from_secs(30);
        let addr = loop {
            if let Some(a) = handle.info().await?.listen_addrs.first() {
                break a.clone();
            }
            anyhow::ensure!(Instant::now() < deadline, "node-{i} never listened");
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        addrs.push(format!("{addr}/p2p/{}", handle.peer_id).parse()?);
        let mut rx = handle.subscribe();
        let events = events.clone();
        let name = format!("node-{i}");
        tokio::spawn(async move {
            loop {
                match rx.recv().await {
                    Ok(e) => {
                        // Only what the figures use: admissions and peers.
                        let keep = matches!(
                            e.event,
                            service::NodeEvent::ManifestAdmitted { .. }
                                | service::NodeEvent::ManifestRejected { .. }
                                | service::NodeEvent::PeerBanned { .. }
                                | service::NodeEvent::PeerConnected { .. }
                                | service::NodeEvent::PeerDisconnected { .. }
                        );
                        if keep
                            && let Ok(v) = serde_json::to_value(&e)
                            && let Ok(mut all) = events.lock()
                        {
                            all.push(Seen {
                                node: name.clone(),
                                event: v,
                            });
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(k)) => {
                        eprintln!("  {name}: {k} events lost (the collector lagged)");
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                }
            }
        });
        nodes.push((handle, task));
        if (i + 1) % 100 == 0 {
            eprintln!(
                "  {} nodes started ({:.1} s)",
                i + 1,
                t.elapsed().as_secs_f64()
            );
        }
    }
    let mut rng = Rng::new(seed);
    let mut dials = Vec::new();
    for (i, (handle, _)) in nodes.iter().enumerate().skip(1) {
        let want = (2 + (rng.next_u64() % 2) as usize).min(i);
        let mut picked: Vec<usize> = Vec::with_capacity(want);
        while picked.len() < want {
            let j = (rng.next_u64() % i as u64) as usize;
            if !picked.contains(&j) {
                picked.push(j);
            }
        }
        for j in picked {
            dials.push(handle.dial(addrs[j].clone()));
        }
    }
    for r in futures::future::join_all(dials).await {
        r.context("dial")?;
    }
    Ok(Nodes { nodes })
}

/// Swarm settings for `n` nodes in one process: each in-process connection costs a
/// descriptor at both ends, so the connection cap is what the open-file limit allows per
/// node (minus a reserve for stores and listeners), at most the default.
pub(crate) fn swarm_settings(n: usize, fd_limit: Option<u64>) -> SwarmSettings {
    let d = SwarmSettings::default();
    let budget = fd_limit.unwrap_or(1024).saturating_sub(4 * n as u64 + 256);
    let cap = (budget / n.max(1) as u64).clamp(8, u64::from(d.max_connections)) as u32;
    SwarmSettings {
        max_connections: cap,
        target_peers: d.target_peers.min(cap as usize * 3 / 4),
        ..d
    }
}

/// Waits until every node has at least `min` peers (progress every 10 s).
pub(crate) async fn wait_peers(net: &Nodes, min: usize, max: Duration) -> anyhow::Result<Duration> {
    let start = Instant::now();
    let mut report = Instant::now();
    loop {
        let mut short = 0;
        for (h, _) in &net.nodes {
            if h.info().await.map_or(true, |i| i.peers.len() < min) {
                short += 1;
            }
        }
        if short == 0 {
            return Ok(start.elapsed());
        }
        anyhow::ensure!(
            start.elapsed() < max,
            "{short} node(s) still had fewer than {min} peers after {} s",
            max.as_secs()
        );
        if report.elapsed() >= Duration::from_secs(10) {
            eprintln!("  {short} node(s) with fewer than {min} peers");
            report = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Waits until every publication reached every node but its publisher (or `max`).
pub(crate) async fn wait_delivered(
    events: &Mutex<Vec<Seen>>,
    pubs: &[Publication],
    n: usize,
    max: Duration,
) -> anyhow::Result<Duration> {
    let start = Instant::now();
    loop {
        let missing = {
            let all = events.lock().map_err(|_| anyhow::anyhow!("events lock"))?;
            let mut got = std::collections::HashSet::new();
            for s in all.iter() {
                if s.event["type"] == "manifest_admitted"
                    && let (Some(id), Some(seq)) = (s.event["id"].as_str(), s.event["seq"].as_u64())
                {
                    got.insert((s.node.clone(), id.to_owned(), seq));
                }
            }
            pubs.iter()
                .map(|p| {
                    (0..n)
                        .filter(|i| {
                            let name = format!("node-{i}");
                            name != p.node && !got.contains(&(name, p.id.clone(), p.seq))
                        })
                        .count()
                })
                .sum::<usize>()
        };
        if missing == 0 {
            return Ok(start.elapsed());
        }
        anyhow::ensure!(
            start.elapsed() < max,
            "{missing} deliveries still missing after {} s",
            max.as_secs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

impl Nodes {
    /// Every node's handle.
    pub(crate) fn handles(&self) -> Vec<NodeHandle> {
        self.nodes.iter().map(|(h, _)| h.clone()).collect()
    }

    /// Publishes (or republishes) the agent file `file` on node `i`: its id and seq.
    pub(crate) async fn publish(&self, i: usize, file: &Path) -> anyhow::Result<(String, u64)> {
        let spec =
            AgentSpec::load(file).with_context(|| format!("cannot load {}", file.display()))?;
        let (h, _) = self.nodes.get(i).with_context(|| format!("no node-{i}"))?;
        let p = h.publish(spec).await?;
        Ok((p.manifest_id, p.seq))
    }

    /// Stops every node (concurrently) and waits for their tasks.
    pub(crate) async fn shutdown(self) {
        let stops = self.nodes.iter().map(|(h, _)| h.shutdown());
        futures::future::join_all(stops).await;
        for (_, t) in self.nodes {
            let _ = t.await;
        }
    }
}

/// Samples the process's CPU and RSS every second (node `process`) and each node's peers
/// every 5 s, until `stop`.
pub(crate) async fn sample(
    handles: Vec<NodeHandle>,
    out: Arc<Mutex<Vec<Sample>>>,
    stop: Arc<AtomicBool>,
    t0: u64,
) {
    let me = std::process::id();
    let ticks = 100.0;
    let mut last: Option<(u64, u64)> = None;
    let mut tick = 0u64;
    while !stop.load(Ordering::SeqCst) {
        let now = now_ms();
        if let Some((cpu, rss)) = crate::scenario::read_proc(me) {
            let cpu_percent = last.map(|(t, c)| {
                100.0 * (cpu.saturating_sub(c) as f64 / ticks) / ((now - t).max(1) as f64 / 1000.0)
            });
            last = Some((now, cpu));
            if let Ok(mut o) = out.lock() {
                o.push(Sample {
                    at_ms: now - t0,
                    node: "process".into(),
                    peers: None,
                    cpu_percent,
                    rss_bytes: Some(rss),
                });
            }
        }
        if tick.is_multiple_of(5) {
            for (i, h) in handles.iter().enumerate() {
                if let Ok(info) = h.info().await
                    && let Ok(mut o) = out.lock()
                {
                    o.push(Sample {
                        at_ms: now - t0,
                        node: format!("node-{i}"),
                        peers: Some(info.peers.len() as u32),
                        cpu_percent: None,
                        rss_bytes: None,
                    });
                }
            }
        }
        tick += 1;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// This process's resident memory.
pub(crate) fn rss_bytes() -> Option<u64> {
    crate::scenario::read_proc(std::process::id()).map(|(_, rss)| rss)
}

/// This process's peak resident memory (`VmHWM`).
pub(crate) fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<u64>().ok())
        .map(|kb| kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_fit_the_open_file_limit() {
        let s = swarm_settings(1000, Some(20_000));
        assert_eq!(s.max_connections, 15);
        assert_eq!(s.target_peers, 11);
        let few = swarm_settings(10, Some(20_000));
        assert_eq!(
            few.max_connections,
            SwarmSettings::default().max_connections
        );
        assert_eq!(few.target_peers, SwarmSettings::default().target_peers);
        assert_eq!(swarm_settings(5000, Some(1024)).max_connections, 8);
    }
}
