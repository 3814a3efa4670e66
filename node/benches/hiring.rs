//! Hiring benchmarks on loopback, two in-process nodes (provider and client), each with its
//! own redb store:
//!
//! 1. Negotiation round trip: `HireOps::create` from the client's call to its return, which
//!    covers request -> offer -> accept -> accepted with the contract stored durably on both
//!    sides (goal: p50 <= 3 ms, p99 <= 10 ms).
//! 2. Node overhead per agent step: an agent emits N decisions as fast as it can; the time
//!    from the client seeing `started` to seeing `completed`, divided by N, covers signing,
//!    the provider's durable append, the long-poll reply, the client's incremental
//!    verification and its durable append (goal: <= 1 ms per step).
//!
//! `cargo bench -p souk-node --bench hiring` (env SOUK_BENCH_HIRES, SOUK_BENCH_STEPS).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use souk_node::agent_file::{AgentSpec, RunSpec, package_digest};
use souk_node::hire::NewHire;
use souk_node::service::{self, NodeHandle, NodeOptions};
use souk_node::swarm::SwarmSettings;
use souk_protocol::Keypair;
use souk_protocol::discovery::SearchRequest;
use souk_store::{Store, StoreConfig};

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn node(
    dir: &Path,
    seed: u8,
    bootstrap: Vec<libp2p::Multiaddr>,
) -> (NodeHandle, libp2p::Multiaddr) {
    std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("{e}"));
    let store = Store::open(
        &dir.join("souk.redb"),
        &StoreConfig {
            cache_size: 16 << 20,
        },
    )
    .unwrap_or_else(|e| panic!("store: {e}"));
    let opts = NodeOptions {
        listen: vec![
            "/ip4/127.0.0.1/tcp/0"
                .parse()
                .unwrap_or_else(|e| panic!("{e}")),
        ],
        bootstrap,
        swarm: SwarmSettings {
            heartbeat: Duration::from_millis(200),
            ..SwarmSettings::default()
        },
        tick: Duration::from_millis(500),
        work_dir: dir.join("hires"),
        ..NodeOptions::default()
    };
    let (h, _task) = service::start(Keypair::from_seed(&[seed; 32]), Arc::new(store), opts)
        .await
        .unwrap_or_else(|e| panic!("start: {e}"));
    let addr = loop {
        let info = h.info().await.unwrap_or_else(|e| panic!("{e}"));
        if let Some(a) = info.listen_addrs.first() {
            break format!("{a}/p2p/{}", h.peer_id);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    (h, addr.parse().unwrap_or_else(|e| panic!("{e}")))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// An agent package: a Python script emitting `steps` decisions, then a result (or, with
/// `steps == 0`, a shell one-liner that answers at once: negotiation rounds measure the
/// network and the stores, not interpreter start-up).
fn agent(dir: &Path, name: &str, steps: usize) -> AgentSpec {
    std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("{e}"));
    let script = format!(
        "import sys, json\nsys.stdin.readline()\nout = sys.stdout\nfor i in range({steps}):\n    out.write(json.dumps({{\"type\": \"decision\", \"text\": \"step %d\" % i}}) + \"\\n\")\nout.write(json.dumps({{\"type\": \"result\", \"output\": {{\"steps\": {steps}}}}}) + \"\\n\")\nout.flush()\n"
    );
    std::fs::write(dir.join("agent.py"), script).unwrap_or_else(|e| panic!("{e}"));
    let digest = package_digest(dir).unwrap_or_else(|e| panic!("{e}"));
    AgentSpec {
        name: name.into(),
        description: format!("benchmark agent emitting {steps} steps"),
        capabilities: vec!["bench".into()],
        input_schema: r#"{"type":"object"}"#.into(),
        output_schema: r#"{"type":"object"}"#.into(),
        hosts: vec![],
        tools: vec![],
        credentials: vec![],
        currency: "USD".into(),
        per_hire: 1_000_000,
        per_hour: 0,
        max_duration_ms: 600_000,
        max_concurrency: 10_000,
        max_input_bytes: 1 << 20,
        runtime_digest: digest.to_hex(),
        run: RunSpec {
            command: if steps == 0 {
                vec![
                    "sh".into(),
                    "-c".into(),
                    r#"read line; echo '{"type":"result","output":{}}'"#.into(),
                ]
            } else {
                vec!["python3".into(), "agent.py".into()]
            },
            workdir: dir.to_path_buf(),
        },
    }
}

async fn find(client: &NodeHandle, text: &str, id: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let req = SearchRequest {
            text: text.into(),
            limit: 10,
            ..Default::default()
        };
        if client
            .search(req)
            .await
            .unwrap_or_default()
            .iter()
            .any(|h| h.id == id)
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the client never found the manifest"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn main() {
    let hires = env_or("SOUK_BENCH_HIRES", 200);
    let steps = env_or("SOUK_BENCH_STEPS", 1000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    rt.block_on(async move {
        let tmp = tempfile::Builder::new()
            .prefix("souk-bench-hiring")
            .tempdir_in(std::env::var("SOUK_BENCH_DIR").unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../target").into()))
            .unwrap_or_else(|e| panic!("{e}"));
        let (provider, paddr) = node(&tmp.path().join("provider"), 51, vec![]).await;
        let (client, _) = node(&tmp.path().join("client"), 52, vec![paddr]).await;

        // 1. Negotiation round trips (the agent answers at once; it runs after the contract).
        let quick = provider
            .publish(agent(&tmp.path().join("quick"), "quick", 0))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        find(&client, "benchmark", &quick.manifest_id).await;
        let mut rtts = Vec::with_capacity(hires);
        for i in 0..hires {
            let t = Instant::now();
            let r = client
                .hires
                .create(NewHire {
                    manifest_id: quick.manifest_id.clone(),
                    input: serde_json::json!({ "n": i }),
                    max_price: None,
                    deadline_ms: None,
                })
                .await
                .unwrap_or_else(|e| panic!("hire {i}: {e}"));
            rtts.push(t.elapsed());
            // Let this hire's agent run and finish before the next round, so rounds measure
            // negotiation, not the previous job's disk syncs and process start-up.
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let done = client
                    .hires
                    .get(r.id())
                    .await
                    .ok()
                    .flatten()
                    .is_some_and(|h| h.state().is_terminal());
                if done {
                    break;
                }
                assert!(Instant::now() < deadline, "hire {i} did not finish");
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
        rtts.sort();
        println!("negotiation round trip (request -> contract stored on both sides), {hires} hires:");
        println!(
            "  p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  max {:.2} ms   (goal p50 <= 3 ms, p99 <= 10 ms)",
            percentile(&rtts, 0.5).as_secs_f64() * 1e3,
            percentile(&rtts, 0.9).as_secs_f64() * 1e3,
            percentile(&rtts, 0.99).as_secs_f64() * 1e3,
            rtts.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
        );

        // Let the quick hires finish before measuring steps.
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let all = client.hires.list().await.unwrap_or_default();
            if all.iter().all(|r| r.state().is_terminal()) {
                break;
            }
            assert!(Instant::now() < deadline, "quick hires did not finish");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }

        // 2. Per-step overhead.
        let busy = provider
            .publish(agent(&tmp.path().join("busy"), "busy", steps))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        find(&client, "benchmark", &busy.manifest_id).await;
        let r = client
            .hires
            .create(NewHire {
                manifest_id: busy.manifest_id.clone(),
                input: serde_json::json!({}),
                max_price: None,
                deadline_ms: None,
            })
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let id = r.id();
        let mut started = None;
        let mut from = 0;
        let done = loop {
            let view = client
                .hires
                .receipts(id, from, 20_000)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            if started.is_none() && !view.steps.is_empty() {
                started = Some(Instant::now());
            }
            from += view.steps.len() as u64;
            if view.hire.state().is_terminal() && from >= view.hire.entries {
                break Instant::now();
            }
        };
        let total = done.duration_since(started.unwrap_or(done));
        let per_step = total.as_secs_f64() * 1e3 / steps.max(1) as f64;
        println!("agent steps: {steps} decisions -> {from} receipts signed, stored, streamed, verified and stored by the client");
        println!(
            "  {:.1} ms in all, {:.3} ms per step (goal <= 1 ms; includes the agent's own output time)",
            total.as_secs_f64() * 1e3,
            per_step
        );
        client.shutdown().await;
        provider.shutdown().await;
    });
}
