//! Baseline for the propagation bench: plain gossipsub, nothing else.
//!
//! N swarms in one process with only TCP + noise + yamux + gossipsub (signed messages,
//! strict validation: gossipsub checks the publisher's signature at every hop), wired like
//! `propagation` (node `i` dials 2-3 random earlier nodes, seeded), no Kademlia, identify,
//! store or Souk validation. It publishes M messages of `SOUK_BENCH_MSG_BYTES` (1500) from
//! random nodes, one every interval, and measures the time from `publish` to each other
//! node's `Message` event. The difference to `propagation` is what a Souk node adds on top
//! of gossip on the same machine.
//!
//! ```sh
//! cargo bench -p souk-node --bench gossip_baseline            # N = 50, then N = 200
//! cargo bench -p souk-node --bench gossip_baseline -- 200
//! ```
//!
//! Environment: `SOUK_BENCH_MANIFESTS` (30), `SOUK_BENCH_INTERVAL_MS` (100),
//! `SOUK_BENCH_MSG_BYTES` (1500), `SOUK_BENCH_SEED` (1), `SOUK_BENCH_MESH_N` (6, gossipsub's default),
//! `SOUK_BENCH_HEARTBEAT_MS` (1000, gossipsub's default).

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::{Rng, cpu_time, earlier_peers, env_or, ms, quantile};
use futures::StreamExt;
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, PeerId, gossipsub, noise, tcp, yamux};
use tokio::sync::mpsc;

/// A command to one swarm task.
enum Cmd {
    Dial(Multiaddr),
    Publish(Vec<u8>),
}

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![50, 200]
    } else {
        sizes
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"));
    let mut rows = Vec::new();
    for n in sizes {
        rows.push(rt.block_on(run(n)));
    }
    println!("| N | delivery | p50 ms | p99 ms | max ms | CPU cores |");
    println!("|---|---|---|---|---|---|");
    for r in rows {
        println!("{r}");
    }
}

async fn run(n: usize) -> String {
    let m: usize = env_or("SOUK_BENCH_MANIFESTS", 30);
    let interval = Duration::from_millis(env_or("SOUK_BENCH_INTERVAL_MS", 100));
    let size: usize = env_or("SOUK_BENCH_MSG_BYTES", 1500);
    let mesh_n: usize = env_or("SOUK_BENCH_MESH_N", 6);
    let heartbeat = Duration::from_millis(env_or("SOUK_BENCH_HEARTBEAT_MS", 1000));
    let mut rng = Rng::new(env_or("SOUK_BENCH_SEED", 1));
    let topic = gossipsub::IdentTopic::new("baseline");
    let (seen_tx, mut seen_rx) = mpsc::unbounded_channel::<(usize, Vec<u8>, Instant)>();
    let mut cmds = Vec::with_capacity(n);
    let mut addrs = Vec::with_capacity(n);
    for i in 0..n {
        let mut swarm = libp2p::SwarmBuilder::with_new_identity()
            .with_tokio()
            .with_tcp(
                tcp::Config::default().nodelay(true),
                noise::Config::new,
                yamux::Config::default,
            )
            .unwrap_or_else(|e| panic!("transport: {e}"))
            .with_behaviour(|key| {
                let config = gossipsub::ConfigBuilder::default()
                    .mesh_n(mesh_n)
                    .mesh_n_low((mesh_n * 2 / 3).max(1))
                    .mesh_n_high(mesh_n * 2)
                    .mesh_outbound_min((mesh_n / 3).max(1))
                    .heartbeat_interval(heartbeat)
                    .build()
                    .map_err(|e| e.to_string())?;
                let behaviour: gossipsub::Behaviour = gossipsub::Behaviour::new(
                    gossipsub::MessageAuthenticity::Signed(key.clone()),
                    config,
                )?;
                Ok(behaviour)
            })
            .unwrap_or_else(|e| panic!("behaviour: {e}"))
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
            .build();
        swarm
            .behaviour_mut()
            .subscribe(&topic)
            .unwrap_or_else(|e| panic!("subscribe: {e}"));
        swarm
            .listen_on(
                "/ip4/127.0.0.1/tcp/0"
                    .parse()
                    .unwrap_or_else(|e| panic!("{e}")),
            )
            .unwrap_or_else(|e| panic!("listen: {e}"));
        let addr = loop {
            if let SwarmEvent::NewListenAddr { address, .. } = swarm.select_next_some().await {
                break address;
            }
        };
        let peer: PeerId = *swarm.local_peer_id();
        addrs.push(
            format!("{addr}/p2p/{peer}")
                .parse::<Multiaddr>()
                .unwrap_or_else(|e| panic!("{e}")),
        );
        let (tx, mut rx) = mpsc::unbounded_channel::<Cmd>();
        cmds.push(tx);
        let seen = seen_tx.clone();
        let topic = topic.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    ev = swarm.select_next_some() => {
                        if let SwarmEvent::Behaviour(gossipsub::Event::Message { message, .. }) = ev {
                            let _ = seen.send((i, message.data, Instant::now()));
                        }
                    }
                    cmd = rx.recv() => match cmd {
                        Some(Cmd::Dial(a)) => { let _ = swarm.dial(a); }
                        Some(Cmd::Publish(data)) => {
                            if let Err(e) = swarm.behaviour_mut().publish(topic.clone(), data) {
                                eprintln!("publish on node {i}: {e}");
                            }
                        }
                        None => return,
                    }
                }
            }
        });
    }
    for (i, cmd) in cmds.iter().enumerate().skip(1) {
        for j in earlier_peers(&mut rng, i) {
            let _ = cmd.send(Cmd::Dial(addrs[j].clone()));
        }
    }
    // Meshes form over a few heartbeats; then one warm-up message must reach everyone.
    tokio::time::sleep(heartbeat * 6).await;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let warm = format!("warm-up {}", rng.next_u64()).into_bytes();
        let _ = cmds[0].send(Cmd::Publish(warm.clone()));
        let mut got = 0;
        let round = Instant::now() + Duration::from_secs(5);
        while got < n - 1 && Instant::now() < round {
            if let Ok(Some((_, data, _))) =
                tokio::time::timeout(Duration::from_millis(200), seen_rx.recv()).await
                && data == warm
            {
                got += 1;
            }
        }
        if got == n - 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "N = {n}: the network never formed"
        );
    }
    tokio::time::sleep(heartbeat * 3).await;
    while seen_rx.try_recv().is_ok() {}

    let cpu0 = cpu_time(None);
    let t0 = Instant::now();
    let mut published: HashMap<Vec<u8>, (usize, Instant)> = HashMap::new();
    let mut latencies = Vec::new();
    let mut delivered = 0usize;
    for k in 0..m {
        let origin = rng.below(n);
        let mut data = vec![0u8; size];
        let tag = format!("msg {k} {}", rng.next_u64());
        data[..tag.len()].copy_from_slice(tag.as_bytes());
        published.insert(data.clone(), (origin, Instant::now()));
        let _ = cmds[origin].send(Cmd::Publish(data));
        let next = Instant::now() + interval;
        while let Ok(Some((_, data, at))) = tokio::time::timeout(
            next.saturating_duration_since(Instant::now()),
            seen_rx.recv(),
        )
        .await
        {
            if let Some((_, sent)) = published.get(&data) {
                latencies.push(at - *sent);
                delivered += 1;
            }
        }
    }
    let drain = Instant::now() + Duration::from_secs(10);
    while delivered < m * (n - 1) && Instant::now() < drain {
        if let Ok(Some((_, data, at))) =
            tokio::time::timeout(Duration::from_millis(200), seen_rx.recv()).await
            && let Some((_, sent)) = published.get(&data)
        {
            latencies.push(at - *sent);
            delivered += 1;
        }
    }
    let wall = t0.elapsed();
    let cores = cpu_time(None)
        .zip(cpu0)
        .map(|(b, a)| (b - a).as_secs_f64() / wall.as_secs_f64())
        .unwrap_or(f64::NAN);
    latencies.sort();
    let row = format!(
        "| {n} | {:.2}% | {} | {} | {} | {cores:.2} |",
        100.0 * delivered as f64 / (m * (n - 1)) as f64,
        ms(quantile(&latencies, 0.5)),
        ms(quantile(&latencies, 0.99)),
        ms(latencies.last().copied()),
    );
    eprintln!("N = {n} plain gossipsub: {row}");
    drop(cmds);
    row
}
