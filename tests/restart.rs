//! Restart: the identity, the agents a node publishes and the manifests it learned persist
//! across a shutdown; a restarted provider re-announces with a higher seq.

#[path = "support/mod.rs"]
mod support;

use support::{agent, finds, seed, start_node, wait_for};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_agents_and_manifests_survive_a_restart() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let dir_a = tmp.path().join("a");
    let dir_b = tmp.path().join("b");
    for d in [&dir_a, &dir_b] {
        std::fs::create_dir_all(d).unwrap_or_else(|e| panic!("{e}"));
    }
    let a = start_node(&dir_a, seed(20), false, vec![]).await;
    let b = start_node(&dir_b, seed(21), false, vec![a.addr.clone()]).await;
    let mine = a
        .handle
        .publish(agent(
            "persistent",
            &["text"],
            "survives restarts",
            1_000_000,
        ))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let theirs = b
        .handle
        .publish(agent("remote", &["text"], "learned from a peer", 1_000_000))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    wait_for("a to learn b's manifest", || {
        finds(&a.handle, "peer", &theirs.manifest_id)
    })
    .await;
    let node_id = a.handle.node_id;
    a.handle.shutdown().await;
    let _ = a.task.await;
    b.handle.shutdown().await;
    let _ = b.task.await;

    // Same store, same seed, no peers: everything must come from disk.
    let a2 = start_node(&dir_a, seed(20), false, vec![]).await;
    assert_eq!(a2.handle.node_id, node_id);
    assert!(
        finds(&a2.handle, "peer", &theirs.manifest_id).await,
        "learned manifests persist"
    );
    let agents = a2.handle.agents().await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(agents.len(), 1);
    // The restart re-announces the agent with a higher seq.
    wait_for("the re-announcement", || {
        let h = a2.handle.clone();
        async move {
            h.agents()
                .await
                .map(|v| v.first().is_some_and(|r| r.seq > mine.seq))
                .unwrap_or(false)
        }
    })
    .await;
    a2.handle.shutdown().await;
}
