//! `souk-testnet run SCENARIO --in-process`: every full node of the scenario in this one
//! process (real libp2p swarms on loopback TCP, one redb store each, as the propagation
//! bench does), for sizes real processes cannot reach on one machine (1000 nodes on 2
//! cores). It runs propagation scenarios: agents published, then republished on the
//! workload's schedule; no hires and no faults yet (a scenario asking for them is refused).
//! Delivery and latency come from each node's event channel (the same events `GET
//! /v1/events` serves) through the same figures and report as the process mode, plus the
//! process's memory per node.

mod nodes;

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::network::now_ms;
use crate::report::data::{Delivery, ManifestRun, NodeSummary, RunData, Sample};
use crate::scenario::{Facts, Publication, Scenario, Seen, assertions, delivery_ratio, spreads};

/// The longest wait for every node to have two peers (the start-up storm of 1000 nodes on
/// 2 cores takes minutes).
const CONNECT_MAX: Duration = Duration::from_secs(900);
/// The longest wait for the agents to reach every node.
const WARMUP_MAX: Duration = Duration::from_secs(300);
/// How long publications get to arrive after the last one.
const DRAIN: Duration = Duration::from_secs(15);

/// Runs `s` in this process; the data directories go under `out/network`.
pub(crate) fn run(s: &Scenario, out: &Path) -> anyhow::Result<RunData> {
    anyhow::ensure!(
        s.workload.hires == 0 && s.faults.is_empty() && s.network.light == 0,
        "the in-process mode runs propagation scenarios only (full nodes, agents, \
         republish_every): no hires, faults or light nodes yet; run this scenario without \
         --in-process"
    );
    let raised = souk_node::fd_limit::raise();
    eprintln!("open-file limit: {raised:?}");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    runtime.block_on(execute(s, out))
}

async fn execute(s: &Scenario, out: &Path) -> anyhow::Result<RunData> {
    let t0 = now_ms();
    let n = usize::from(s.network.full);
    let root = out.join("network");
    std::fs::create_dir_all(&root)?;
    let events: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let started = Instant::now();
    let net = nodes::start(&root, n, s.seed, events.clone()).await?;
    eprintln!(
        "{n} nodes started and wired in {:.1} s; waiting for two peers each",
        started.elapsed().as_secs_f64()
    );
    let waited = nodes::wait_peers(&net, 2, CONNECT_MAX).await?;
    eprintln!(
        "every node has two peers after {:.1} s more",
        waited.as_secs_f64()
    );
    let rss_start = nodes::rss_bytes();

    // Resource and peer samples, every second (peers every 5 s: 1000 questions).
    let stop = Arc::new(AtomicBool::new(false));
    let samples: Arc<Mutex<Vec<Sample>>> = Arc::default();
    let sampler = tokio::spawn(nodes::sample(
        net.handles(),
        samples.clone(),
        stop.clone(),
        t0,
    ));

    // Agents, then the republications.
    let offers = crate::scenario::offers(s)?;
    let mut pubs: Vec<Publication> = Vec::new();
    for o in &offers {
        let i = nodes::index_of(&o.node)?;
        let (id, seq) = net.publish(i, &o.file).await?;
        pubs.push(Publication {
            id,
            seq,
            node: o.node.clone(),
            at_ms: now_ms(),
        });
    }
    let waited = nodes::wait_delivered(&events, &pubs, n, WARMUP_MAX).await?;
    eprintln!(
        "the {} agent(s) reached every node in {:.1} s",
        pubs.len(),
        waited.as_secs_f64()
    );
    let work = Instant::now();
    if let Some(every) = s.workload.republish_every {
        let mut rng = crate::scenario::Rng::new(s.seed ^ 0x5eed);
        let mut next = work + every;
        let end = work + s.duration;
        let mut count = 0;
        while next < end {
            tokio::time::sleep_until(next.into()).await;
            next += every;
            let Some(o) = rng.pick(&offers) else { break };
            let i = nodes::index_of(&o.node)?;
            match net.publish(i, &o.file).await {
                Ok((id, seq)) => {
                    count += 1;
                    pubs.push(Publication {
                        id,
                        seq,
                        node: o.node.clone(),
                        at_ms: now_ms(),
                    });
                }
                Err(e) => eprintln!("  republish on {} failed: {e:#}", o.node),
            }
            if count % 10 == 0 {
                eprintln!("  {count} republications");
            }
        }
    }
    let _ = nodes::wait_delivered(&events, &pubs, n, DRAIN).await;
    let end_ms = now_ms();
    stop.store(true, Ordering::SeqCst);
    let _ = sampler.await;
    let rss_end = nodes::rss_bytes();
    let peak = nodes::peak_rss_bytes();
    eprintln!("stopping {n} nodes");
    net.shutdown().await;

    let names: Vec<String> = (0..n).map(|i| format!("node-{i}")).collect();
    let up: HashMap<String, Vec<(u64, Option<u64>)>> = names
        .iter()
        .map(|m| (m.clone(), vec![(t0, None)]))
        .collect();
    let seen = events.lock().map(|e| e.clone()).unwrap_or_default();
    let sp = spreads(&pubs, &names, &up, &seen, end_ms);
    let (got, want) = delivery_ratio(&sp);
    let per_node = |b: Option<u64>| b.map(|b| b / n as u64);
    let mut facts = Facts::empty();
    facts.delivery = (got, want);
    facts.full_nodes = n;
    facts.stale = crate::scenario::stale_nodes(&pubs, &names, &seen);
    facts.superseded = crate::scenario::superseded(&sp);
    let rejected = seen
        .iter()
        .filter(|e| e.event["type"] == "manifest_rejected")
        .count();
    let banned = seen
        .iter()
        .filter(|e| e.event["type"] == "peer_banned")
        .count();
    let assertions = assertions(&s.assert, &facts);
    let rel = |t: u64| t.saturating_sub(t0);
    let mib = |b: Option<u64>| b.map_or("?".into(), |b| format!("{:.1} MiB", b as f64 / 1048576.0));
    let notes = vec![
        format!(
            "{n} full nodes in one process (--in-process), 2 tokio worker threads, loopback TCP; \
             each dialed 2-3 random earlier nodes"
        ),
        format!(
            "memory: RSS {} after start-up, {} at the end, peak {} = {} per node",
            mib(rss_start),
            mib(rss_end),
            mib(peak),
            mib(per_node(peak))
        ),
        format!(
            "{rejected} manifests rejected by gossip (e.g. an older version arriving after a newer one), {banned} peers banned"
        ),
    ];
    for note in &notes {
        eprintln!("{note}");
    }
    Ok(RunData {
        scenario: s.name.clone(),
        seed: s.seed,
        started_unix_ms: t0,
        duration_ms: end_ms - t0,
        mode: "in-process".into(),
        nodes: names
            .iter()
            .map(|m| NodeSummary {
                name: m.clone(),
                mode: "full".into(),
                kills: 0,
                restarts: 0,
                peak_rss_bytes: per_node(peak),
                cpu_seconds: None,
            })
            .collect(),
        faults: Vec::new(),
        manifests: sp
            .iter()
            .map(|x| ManifestRun {
                id: x.publication.id.clone(),
                publisher: x.publication.node.clone(),
                published_at_ms: rel(x.publication.at_ms),
                deliveries: x
                    .delivered
                    .iter()
                    .map(|(node, at)| Delivery {
                        node: node.clone(),
                        at_ms: rel(*at),
                    })
                    .collect(),
                expected: Some(x.expected.len() as u32),
            })
            .collect(),
        expected_receivers: n.saturating_sub(1) as u32,
        hires: Vec::new(),
        samples: samples.lock().map(|v| v.clone()).unwrap_or_default(),
        assertions,
        notes,
    })
}
