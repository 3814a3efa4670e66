//! The testnet's connection gate on real swarms: a node without it answers 404 and runs plain
//! TCP; with it, a partition closes the connection to the blocked peer at once and refuses
//! new ones until it is lifted, and an added link delay slows what crosses that link.

#[path = "support/mod.rs"]
mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use souk_node::api::client::{ApiClient, ClientError};
use souk_node::service::NodeHandle;
use souk_node::swarm::gate::{Gate, Link};
use support::{seed, serve_api, start_node, start_node_with, wait_for};

async fn peers(node: &NodeHandle) -> usize {
    node.info().await.map_or(0, |i| i.peers.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_without_the_gate_refuses_gate_requests() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let node = start_node(&tmp.path().join("a"), seed(700), false, vec![]).await;
    assert!(node.handle.gate.is_none());
    let api = serve_api(&node.handle).await;
    let err = tokio::task::spawn_blocking(move || {
        api.post::<_, serde_json::Value>("/v1/testnet/gate", &serde_json::json!({"block": []}))
            .err()
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"))
    .unwrap_or_else(|| panic!("a node without the gate accepted it"));
    assert!(matches!(err, ClientError::Api { status: 404, .. }), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_cuts_the_link_until_lifted_and_a_delay_slows_it() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let gated = |o: &mut souk_node::service::NodeOptions| {
        o.swarm.gate = Some(Arc::new(Gate::default()));
    };
    let a = start_node_with(&tmp.path().join("a"), seed(701), false, vec![], gated).await;
    let b = start_node_with(
        &tmp.path().join("b"),
        seed(702),
        false,
        vec![a.addr.clone()],
        gated,
    )
    .await;
    wait_for("a and b to connect", || async {
        peers(&a.handle).await == 1
    })
    .await;

    // A blocks B: the connection closes and B's dials are refused.
    let api = serve_api(&a.handle).await;
    let b_peer = b.handle.peer_id.to_base58();
    let set = |api: ApiClient, body: serde_json::Value| async move {
        tokio::task::spawn_blocking(move || {
            let r: Result<serde_json::Value, _> = api.post("/v1/testnet/gate", &body);
            (api, r.unwrap_or_else(|e| panic!("gate: {e}")))
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"))
    };
    // Hostile input is refused whole, naming what is wrong; nothing is applied.
    let (api, refused) = tokio::task::spawn_blocking(move || {
        let bad = [
            serde_json::json!({ "block": ["not-a-peer"] }),
            serde_json::json!({ "links": { "4000": { "loss": 2.0 } } }),
            serde_json::json!({ "links": { "4000": { "delay_ms": 600000 } } }),
            serde_json::json!({ "unknown": true }),
        ];
        let codes: Vec<Option<String>> = bad
            .iter()
            .map(|b| {
                api.post::<_, serde_json::Value>("/v1/testnet/gate", b)
                    .err()
                    .and_then(|e| e.code().map(str::to_owned))
            })
            .collect();
        (api, codes)
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        refused.iter().all(|c| c.as_deref() == Some("invalid")),
        "{refused:?}"
    );
    assert!(a.handle.gate.as_ref().is_some_and(|g| g.links().is_empty()));
    assert_eq!(peers(&a.handle).await, 1, "nothing was blocked");
    let (api, said) = set(api, serde_json::json!({ "block": [b_peer] })).await;
    assert_eq!(said["blocked"], 1, "{said}");
    wait_for("the link to close", || async {
        peers(&a.handle).await == 0 && peers(&b.handle).await == 0
    })
    .await;
    let _ = b.handle.dial(a.addr.clone()).await;
    let _ = a.handle.dial(b.addr.clone()).await;
    // Both dials run to their end (refused) before the partition is lifted.
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        assert_eq!(peers(&a.handle).await, 0, "a blocked peer connected");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Lifted: they connect again. Then a 150 ms delay on A's link to B's port.
    let (api, _) = set(api, serde_json::json!({ "block": [] })).await;
    b.handle
        .dial(a.addr.clone())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    wait_for("the link to come back", || async {
        peers(&a.handle).await == 1
    })
    .await;
    let b_port = b
        .addr
        .iter()
        .find_map(|p| match p {
            libp2p::multiaddr::Protocol::Tcp(port) => Some(port),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no port in {}", b.addr));
    let gate = a.handle.gate.clone().unwrap_or_else(|| panic!("no gate"));
    let (_api, _) = set(
        api,
        serde_json::json!({ "links": { b_port.to_string(): { "delay_ms": 150 } } }),
    )
    .await;
    assert_eq!(
        gate.links(),
        HashMap::from([(
            b_port,
            Link {
                delay_ms: 150,
                jitter_ms: 0,
                loss: 0.0
            }
        )])
    );
    // And B's side to A's port (as the testnet sets it): every connection between them is
    // delayed by its dialer, so a manifest B publishes reaches A no sooner than the delay.
    let a_port = a
        .addr
        .iter()
        .find_map(|p| match p {
            libp2p::multiaddr::Protocol::Tcp(port) => Some(port),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no port in {}", a.addr));
    b.handle
        .set_gate(
            vec![],
            HashMap::from([(
                a_port,
                Link {
                    delay_ms: 150,
                    jitter_ms: 0,
                    loss: 0.0,
                },
            )]),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let published = b
        .handle
        .publish(support::agent(
            "slowed",
            &["text"],
            "behind a slow link",
            1_000,
        ))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let t = Instant::now();
    wait_for("the manifest to cross the slow link", || async {
        a.handle
            .manifest(souk_protocol::Hash::from_hex(&published.manifest_id).unwrap_or_default())
            .await
            .ok()
            .flatten()
            .is_some()
    })
    .await;
    assert!(
        t.elapsed() >= Duration::from_millis(150),
        "crossed in {:?}",
        t.elapsed()
    );
}
