//! A burst of hires against an agent with few slots, on loopback: one provider (full node)
//! and two clients (light nodes), each client firing `SOUK_BENCH_BURST` / 2 hires at once
//! against an agent with `max_concurrency = SOUK_BENCH_SLOTS` (200 and 8 by default).
//!
//! Two rounds:
//! 1. no retry: every hire must be contracted (and complete) or be declined with the
//!    provider's signed reason; none may fail for transport reasons;
//! 2. `retry_busy_ms` = 10 min: clients turned away for capacity ask again with backoff, so
//!    every hire must complete.
//!
//! Reported per round: outcomes by kind, time until every hire ended, the provider's
//! counters (offers made, capacity declines, acceptances answered busy).
//!
//! `cargo bench -p souk-node --bench burst` (env SOUK_BENCH_BURST, SOUK_BENCH_SLOTS,
//! SOUK_BENCH_STEPS).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use souk_node::hire::{HireError, NewHire};
use souk_node::service::NodeHandle;
use souk_node::testkit::{finds, new_hire, seed, start_node, steps_agent, wait_for};
use souk_protocol::hire::HireState;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// How one hire of the burst ended.
fn outcome(result: &Result<HireState, HireError>) -> String {
    match result {
        Ok(state) => format!("contracted, then {state}"),
        Err(HireError::Declined { reason, .. }) => format!("declined ({reason})"),
        Err(e @ HireError::Unreachable { .. }) => format!("TRANSPORT FAILURE: {e}"),
        Err(e) => format!("error ({}): {e}", e.code()),
    }
}

/// Fires `n` hires at once from each client, waits for each contracted one to end; returns
/// the outcome counts and the time until the last hire ended.
async fn round(
    clients: &[NodeHandle],
    manifest_id: &str,
    per_client: usize,
    retry_busy_ms: Option<u64>,
) -> (BTreeMap<String, usize>, Duration) {
    let t = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for client in clients {
        for i in 0..per_client {
            let client = client.clone();
            let new = NewHire {
                retry_busy_ms,
                ..new_hire(manifest_id, serde_json::json!({ "n": i }), None, None)
            };
            tasks.spawn(async move {
                let record = client.hires.create(new).await?;
                let id = record.id();
                // Follow it to its end (the client's follower streams and verifies it).
                loop {
                    let r = client.hires.get(id).await?;
                    match r {
                        Some(r) if r.state.is_terminal() => return Ok(r.state),
                        _ => tokio::time::sleep(Duration::from_millis(50)).await,
                    }
                }
            });
        }
    }
    let mut counts = BTreeMap::new();
    while let Some(done) = tasks.join_next().await {
        let result = done.unwrap_or_else(|e| panic!("hire task: {e}"));
        *counts.entry(outcome(&result)).or_insert(0) += 1;
    }
    (counts, t.elapsed())
}

fn main() {
    let burst = env_or("SOUK_BENCH_BURST", 200);
    let slots = env_or("SOUK_BENCH_SLOTS", 8) as u32;
    let steps = env_or("SOUK_BENCH_STEPS", 20);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    rt.block_on(async move {
        let tmp = tempfile::Builder::new()
            .prefix("souk-bench-burst")
            .tempdir_in(
                std::env::var("SOUK_BENCH_DIR")
                    .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../target").into()),
            )
            .unwrap_or_else(|e| panic!("{e}"));
        let p = start_node(&tmp.path().join("provider"), seed(61), false, vec![]).await;
        let mut clients = Vec::new();
        for i in 0..2u16 {
            let c = start_node(
                &tmp.path().join(format!("client-{i}")),
                seed(62 + i),
                true,
                vec![p.addr.clone()],
            )
            .await;
            clients.push(c);
        }
        let handles: Vec<NodeHandle> = clients.iter().map(|c| c.handle.clone()).collect();
        let mut spec = steps_agent(&tmp.path().join("agent"), "burst", steps);
        spec.max_concurrency = slots;
        let published = p
            .handle
            .publish(spec)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let mid = published.manifest_id;
        for h in &handles {
            wait_for("the clients to find the agent", || finds(h, "benchmark", &mid)).await;
        }
        println!(
            "burst of {burst} concurrent hires from 2 clients against {slots} slots ({steps} steps per hire):"
        );
        let mut transport_failures = 0;
        for (name, retry) in [("no retry", None), ("--retry-busy 10m", Some(600_000))] {
            let before = p.handle.info().await.unwrap_or_else(|e| panic!("{e}")).metrics;
            let (counts, took) = round(&handles, &mid, burst / 2, retry).await;
            let after = p.handle.info().await.unwrap_or_else(|e| panic!("{e}")).metrics;
            println!("  {name}: all {burst} ended in {:.2} s", took.as_secs_f64());
            for (what, n) in &counts {
                println!("    {n:>4}  {what}");
                if what.starts_with("TRANSPORT") {
                    transport_failures += n;
                }
            }
            println!(
                "    provider: {} offers, {} capacity declines, {} acceptances answered busy",
                after.hires_offered - before.hires_offered,
                after.hires_declined_capacity - before.hires_declined_capacity,
                after.hire_calls_busy - before.hire_calls_busy,
            );
        }
        println!(
            "  transport failures: {transport_failures} (goal 0: every hire completes or is declined with a reason)"
        );
        for c in clients {
            c.handle.shutdown().await;
        }
        p.handle.shutdown().await;
    });
}
