//! Verified reputation across a network, on real libp2p swarms on loopback: five full nodes
//! (one of them the provider) and two light clients. Hires settle accepted, disputed, and
//! failed (then disputed); the outcome records reach every full node by gossip, and a full node that took
//! part in none of the hires shows the same figures for the agent's handle as the others,
//! also after a restart and when it joins late (through sync). A light client's agent card
//! carries figures it computed from records it fetched and verified itself.
//!
//! Waits are on conditions with timeouts, never fixed sleeps.

#[path = "support/mod.rs"]
mod support;

use serde_json::json;
use souk_node::service::NodeHandle;
use souk_protocol::NodeId;
use souk_protocol::hire::{HireState, Verdict};
use souk_reputation::{Figures, Policy};
use support::{
    TestNode, hire, new_hire, publish_and_find, script_agent, seed, start_node, wait_for_some,
    wait_for_state,
};

/// Finishes at once with one decision.
const QUICK: &str = r#"
send("decision", text="nothing to do")
send("result", output={"ok": True})
"#;

/// One decision, then exit status 3 without a final message.
const CRASH: &str = r#"
send("decision", text="about to crash")
sys.exit(3)
"#;

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"))
}

async fn figures(node: &NodeHandle, provider: NodeId, name: &str) -> Figures {
    node.reputation(provider, Some(name.into()), Policy::default())
        .await
        .unwrap_or_else(|e| panic!("reputation: {e}"))
        .0
}

/// Waits until `node` shows `want` settled hires for the handle, and returns its figures.
async fn settled(node: &NodeHandle, provider: NodeId, name: &str, want: u64) -> Figures {
    wait_for_some(&format!("{want} settled hires of {name}"), || async move {
        let f = figures(node, provider, name).await;
        (f.settled == want).then_some(f)
    })
    .await
}

/// Hires `manifest` from `client`, waits for `state`, settles with `verdict`.
async fn hire_and_settle(
    client: &NodeHandle,
    manifest: &str,
    state: HireState,
    verdict: Verdict,
    reason: &str,
) {
    let r = hire(client, new_hire(manifest, json!({}), None, None)).await;
    wait_for_state(client, r.hire_id, state).await;
    client
        .hires
        .settle(r.hire_id, verdict, reason.into())
        .await
        .unwrap_or_else(|e| panic!("settle: {e}"));
}

/// The figures every node must agree on (the time-dependent `recent_settled` aside).
fn comparable(f: &Figures) -> (u64, u64, u64, u64, u64, u64, u64, f64, Option<u64>) {
    (
        f.settled,
        f.accepted,
        f.rejected,
        f.completed,
        f.failed,
        f.distinct_clients,
        f.counted,
        f.success_lower_bound,
        f.last_settled_at_ms,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_full_node_shows_the_same_verified_figures() {
    let tmp = tempdir();
    let root = tmp.path();
    let provider = start_node(&root.join("provider"), seed(1), false, vec![]).await;
    let mut full: Vec<TestNode> = Vec::new();
    for i in 0..3u16 {
        let boot = vec![provider.addr.clone()];
        full.push(start_node(&root.join(format!("full{i}")), seed(10 + i), false, boot).await);
    }
    let light_a = start_node(
        &root.join("light-a"),
        seed(20),
        true,
        vec![full[0].addr.clone()],
    )
    .await;
    let light_b = start_node(
        &root.join("light-b"),
        seed(21),
        true,
        vec![full[1].addr.clone()],
    )
    .await;

    let pkg = root.join("pkg");
    let quick = publish_and_find(
        &provider.handle,
        &light_a.handle,
        script_agent(&pkg.join("quick"), "quick", QUICK, 1_000_000),
        "quick",
    )
    .await;
    let crash = publish_and_find(
        &provider.handle,
        &light_b.handle,
        script_agent(&pkg.join("crash"), "crasher", CRASH, 1_000_000),
        "crasher",
    )
    .await;
    assert!(support::finds(&light_b.handle, "quick", &quick).await);

    hire_and_settle(
        &light_a.handle,
        &quick,
        HireState::Completed,
        Verdict::Accepted,
        "",
    )
    .await;
    hire_and_settle(
        &light_b.handle,
        &quick,
        HireState::Completed,
        Verdict::Disputed,
        "wrong numbers",
    )
    .await;
    hire_and_settle(
        &light_a.handle,
        &quick,
        HireState::Completed,
        Verdict::Accepted,
        "",
    )
    .await;
    hire_and_settle(
        &light_b.handle,
        &crash,
        HireState::Failed,
        Verdict::Disputed,
        "it crashed",
    )
    .await;

    let pid = provider.handle.node_id;
    // full[2] took part in none of the hires: it learned the records by gossip.
    let reference = settled(&full[2].handle, pid, "quick", 3).await;
    assert_eq!(reference.accepted, 2, "{reference:?}");
    assert_eq!(reference.rejected, 1, "{reference:?}");
    assert_eq!(reference.distinct_clients, 2, "{reference:?}");
    assert_eq!(reference.completed, 3, "{reference:?}");
    // One vote per client: light-a's latest hire is a success, light-b's is a
    // dispute.
    assert_eq!(
        (reference.counted, reference.successes),
        (2, 1),
        "{reference:?}"
    );
    assert!(
        reference.success_lower_bound > 0.0 && reference.success_lower_bound < 0.5,
        "{reference:?}"
    );
    let crasher = settled(&full[2].handle, pid, "crasher", 1).await;
    assert_eq!(
        (crasher.failed, crasher.rejected, crasher.successes),
        (1, 1, 0),
        "{crasher:?}"
    );
    for node in full.iter().map(|n| &n.handle).chain([&provider.handle]) {
        let f = settled(node, pid, "quick", 3).await;
        assert_eq!(comparable(&f), comparable(&reference), "{f:?}");
    }
    // The records name their hires: the latest outcomes are those of the three hires.
    let (_, last) = full[2]
        .handle
        .reputation(pid, Some("quick".into()), Policy::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(last.len(), 3);
    assert!(last.iter().any(|o| o.reason == "wrong numbers"), "{last:?}");

    // A late joiner gets them by sync.
    let late = start_node(
        &root.join("late"),
        seed(30),
        false,
        vec![full[0].addr.clone()],
    )
    .await;
    let f = settled(&late.handle, pid, "quick", 3).await;
    assert_eq!(comparable(&f), comparable(&reference), "late joiner: {f:?}");
    let f = settled(&late.handle, pid, "crasher", 1).await;
    assert_eq!(comparable(&f), comparable(&crasher), "late joiner: {f:?}");

    // A restart keeps them.
    let dir = root.join("full2");
    let seed2 = full[2].seed;
    let stopped = full.remove(2);
    stopped.handle.shutdown().await;
    let _ = stopped.task.await;
    let again = start_node(&dir, seed2, false, vec![]).await;
    let f = figures(&again.handle, pid, "quick").await;
    assert_eq!(
        comparable(&f),
        comparable(&reference),
        "after a restart: {f:?}"
    );

    // A light client computes the figures from records it fetched and verified.
    let fetched = light_a
        .handle
        .fetch_outcomes(pid)
        .await
        .unwrap_or_else(|e| panic!("fetch: {e}"));
    assert_eq!(fetched.len(), 4, "{fetched:?}");
    let f = figures(&light_a.handle, pid, "quick").await;
    assert_eq!(
        comparable(&f),
        comparable(&reference),
        "light client: {f:?}"
    );
}
