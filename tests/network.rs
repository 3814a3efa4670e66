//! Real libp2p swarms on loopback: a manifest published on one node becomes searchable on
//! every full and light node, and a node that joins later catches up through sync.

#[path = "support/mod.rs"]
mod support;

use std::time::Duration;

use support::{TestNode, agent, finds, seed, start_node, start_node_with, wait_for};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_published_manifest_is_searchable_on_every_node() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut full: Vec<TestNode> = Vec::new();
    for i in 0..10u16 {
        let dir = tmp.path().join(format!("full{i}"));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        // A tree: every node dials node 0 and its parent, so the network is connected.
        let mut boot = Vec::new();
        if i > 0 {
            boot.push(full[0].addr.clone());
            boot.push(full[((i - 1) / 2) as usize].addr.clone());
            boot.dedup();
        }
        full.push(start_node(&dir, seed(i), false, boot).await);
    }
    let mut light = Vec::new();
    for i in 0..2u16 {
        let dir = tmp.path().join(format!("light{i}"));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        light.push(
            start_node(
                &dir,
                seed(100 + i),
                true,
                vec![full[3 + i as usize].addr.clone()],
            )
            .await,
        );
    }

    let published = full[7]
        .handle
        .publish(agent(
            "invoice-reader",
            &["ocr", "invoices"],
            "Extracts totals from scanned invoices.",
            1_500_000,
        ))
        .await
        .unwrap_or_else(|e| panic!("publish: {e}"));
    let id = published.manifest_id.clone();

    for (i, n) in full.iter().enumerate() {
        wait_for(&format!("full node {i} to find the manifest"), || {
            finds(&n.handle, "invoices", &id)
        })
        .await;
    }
    for (i, n) in light.iter().enumerate() {
        wait_for(&format!("light node {i} to find the manifest"), || {
            finds(&n.handle, "scanned invoice totals", &id)
        })
        .await;
        let info = n.handle.info().await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(info.mode, "light");
        assert_eq!(info.manifests, 0, "a light node keeps no catalog");
    }
    // Capability and price filters work on every node.
    for n in &full {
        let req = souk_protocol::discovery::SearchRequest {
            capabilities: vec!["ocr".into()],
            max_price: Some(1_000_000),
            limit: 10,
            ..Default::default()
        };
        let hits = n.handle.search(req).await.unwrap_or_else(|e| panic!("{e}"));
        assert!(
            hits.is_empty(),
            "the max-price filter must exclude a 1.5 USD agent"
        );
    }
    for n in full.iter().chain(&light) {
        n.handle.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_joiner_catches_up_through_sync() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mk = |name: &str| {
        let d = tmp.path().join(name);
        std::fs::create_dir_all(&d).unwrap_or_else(|e| panic!("{e}"));
        d
    };
    let a = start_node(&mk("a"), seed(1), false, vec![]).await;
    let b = start_node(&mk("b"), seed(2), false, vec![a.addr.clone()]).await;
    let mut ids = Vec::new();
    for (i, name) in ["summarizer", "translator", "csv-analyst"]
        .iter()
        .enumerate()
    {
        let node = if i % 2 == 0 { &a } else { &b };
        let p = node
            .handle
            .publish(agent(name, &["text"], &format!("{name} agent"), 1_000_000))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        ids.push(p.manifest_id);
    }
    for id in &ids {
        wait_for("a and b to hold every manifest", || async {
            finds(&a.handle, "agent", id).await && finds(&b.handle, "agent", id).await
        })
        .await;
    }
    // c joins after every publication: gossip will not repeat them, sync must deliver them.
    let c = start_node(&mk("c"), seed(3), false, vec![b.addr.clone()]).await;
    for id in &ids {
        wait_for("the late joiner to catch up", || {
            finds(&c.handle, "agent", id)
        })
        .await;
    }
    let m = c.handle.metrics.snapshot();
    assert!(m.sync_received >= 3, "{m:?}");
    assert_eq!(m.sync_rejected, 0);
    for n in [a, b, c] {
        n.handle.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn providers_heartbeat_and_dead_providers_fall_out_of_search() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mk = |name: &str| {
        let d = tmp.path().join(name);
        std::fs::create_dir_all(&d).unwrap_or_else(|e| panic!("{e}"));
        d
    };
    // Manifests valid for 3 s, re-announced at half of that, swept every 100 ms.
    let short = |o: &mut souk_node::service::NodeOptions| {
        o.manifest_ttl_ms = 3_000;
        o.tick = Duration::from_millis(100);
    };
    let provider = start_node_with(&mk("p"), seed(40), false, vec![], short).await;
    let watcher = start_node_with(
        &mk("w"),
        seed(41),
        false,
        vec![provider.addr.clone()],
        short,
    )
    .await;
    let first = provider
        .handle
        .publish(agent(
            "heartbeat",
            &["text"],
            "alive while its node runs",
            1_000_000,
        ))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    wait_for("the watcher to find the agent", || {
        finds(&watcher.handle, "alive", &first.manifest_id)
    })
    .await;
    let search = |w: souk_node::service::NodeHandle| async move {
        let req = souk_protocol::discovery::SearchRequest {
            text: "alive".into(),
            limit: 5,
            ..Default::default()
        };
        w.search(req).await.unwrap_or_default()
    };
    // The heartbeat replaces it with a higher seq before it expires.
    wait_for(
        "a re-announcement with a higher seq to reach the watcher",
        || {
            let w = watcher.handle.clone();
            async move {
                search(w)
                    .await
                    .iter()
                    .any(|x| x.name == "heartbeat" && x.seq > first.seq)
            }
        },
    )
    .await;
    // The provider dies: without heartbeats the agent leaves the watcher's search on its own.
    provider.handle.shutdown().await;
    wait_for("the dead provider's agent to expire", || {
        let w = watcher.handle.clone();
        async move { search(w).await.is_empty() }
    })
    .await;
    wait_for("the sweep to drop it from the catalog", || async {
        watcher.handle.metrics.snapshot().expired >= 1
    })
    .await;
    watcher.handle.shutdown().await;
}

/// A hub that everyone dials keeps only its target of full peers: surplus peers outside its
/// gossip mesh are disconnected once idle, and the network still delivers every manifest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_prunes_surplus_peers_and_gossip_still_reaches_everyone() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let dir = tmp.path().join("hub");
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let hub = start_node_with(&dir, seed(400), false, vec![], |o| {
        o.swarm.target_peers = 3;
        o.swarm.mesh_n = 2;
        o.swarm.prune_grace = Duration::from_secs(1);
    })
    .await;
    let mut leaves: Vec<TestNode> = Vec::new();
    for i in 0..7u16 {
        let dir = tmp.path().join(format!("leaf{i}"));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        leaves.push(start_node(&dir, seed(401 + i), false, vec![hub.addr.clone()]).await);
    }
    // Everyone reaches the hub first; then the hub sheds the surplus (mesh_n 2: at most 4
    // mesh peers are kept whatever the target).
    wait_for("the hub to prune surplus peers", || async {
        let info = hub.handle.info().await.unwrap_or_else(|e| panic!("{e}"));
        info.metrics.peers_pruned >= 3 && info.peers.len() <= 4
    })
    .await;
    let published = leaves[6]
        .handle
        .publish(agent(
            "after-pruning",
            &["pruning"],
            "Published after pruning.",
            1_000,
        ))
        .await
        .unwrap_or_else(|e| panic!("publish: {e}"));
    wait_for("the hub to find the manifest", || {
        finds(&hub.handle, "pruning", &published.manifest_id)
    })
    .await;
    for (i, n) in leaves.iter().enumerate() {
        wait_for(&format!("leaf {i} to find the manifest"), || {
            finds(&n.handle, "pruning", &published.manifest_id)
        })
        .await;
    }
}

/// With the `quic` feature, nodes listen and dial over QUIC alone, and gossip works there.
#[cfg(feature = "quic")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gossip_works_over_quic() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let quic = |o: &mut souk_node::service::NodeOptions| {
        o.listen = vec![
            "/ip4/127.0.0.1/udp/0/quic-v1"
                .parse()
                .unwrap_or_else(|e| panic!("{e}")),
        ];
    };
    let mut nodes: Vec<TestNode> = Vec::new();
    for i in 0..3u16 {
        let dir = tmp.path().join(format!("q{i}"));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        let boot = nodes.iter().map(|n| n.addr.clone()).collect();
        let node = start_node_with(&dir, seed(300 + i), false, boot, quic).await;
        assert!(
            node.addr.to_string().contains("/quic-v1/"),
            "listens on QUIC: {}",
            node.addr
        );
        nodes.push(node);
    }
    let published = nodes[2]
        .handle
        .publish(agent(
            "quic-agent",
            &["transport"],
            "Reached over QUIC.",
            1_000,
        ))
        .await
        .unwrap_or_else(|e| panic!("publish: {e}"));
    for (i, n) in nodes.iter().enumerate() {
        wait_for(&format!("node {i} to find the manifest over QUIC"), || {
            finds(&n.handle, "quic", &published.manifest_id)
        })
        .await;
    }
}
