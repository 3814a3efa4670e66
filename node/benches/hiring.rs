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

use std::time::{Duration, Instant};

use souk_node::testkit::{
    finds, new_hire, seed, start_node, steps_agent, wait_for, wait_for_record,
};

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
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
        // Two full nodes with the test kit's options (200 ms heartbeat, loopback TCP).
        let p = start_node(&tmp.path().join("provider"), seed(51), false, vec![]).await;
        let c = start_node(&tmp.path().join("client"), seed(52), false, vec![p.addr.clone()]).await;
        let (provider, client) = (p.handle.clone(), c.handle.clone());

        // 1. Negotiation round trips (the agent answers at once; it runs after the contract).
        let quick = provider
            .publish(steps_agent(&tmp.path().join("quick"), "quick", 0))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        wait_for("the client to find the agent", || finds(&client, "benchmark", &quick.manifest_id)).await;
        let mut rtts = Vec::with_capacity(hires);
        for i in 0..hires {
            let t = Instant::now();
            let r = client
                .hires
                .create(new_hire(&quick.manifest_id, serde_json::json!({ "n": i }), None, None))
                .await
                .unwrap_or_else(|e| panic!("hire {i}: {e}"));
            rtts.push(t.elapsed());
            // Let this hire's agent run and finish before the next round, so rounds measure
            // negotiation, not the previous job's disk syncs and process start-up.
            wait_for_record(&client, r.id(), "the hire to finish", |h| h.state.is_terminal()).await;
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
            if all.iter().all(|r| r.state.is_terminal()) {
                break;
            }
            assert!(Instant::now() < deadline, "quick hires did not finish");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }

        // 2. Per-step overhead.
        let busy = provider
            .publish(steps_agent(&tmp.path().join("busy"), "busy", steps))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        wait_for("the client to find the agent", || finds(&client, "benchmark", &busy.manifest_id)).await;
        let r = client
            .hires
            .create(new_hire(&busy.manifest_id, serde_json::json!({}), None, None))
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
            if view.hire.state.is_terminal() && from >= view.hire.entries {
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
