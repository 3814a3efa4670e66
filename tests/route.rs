//! A light client reaches a provider it has never met: in a network larger than a Kademlia
//! bucket, the client bootstraps at one end of a chain and hires the full node farthest from
//! it in the DHT. (A call to a peer the node is neither connected to nor knows as a full peer
//! first looks its addresses up, `service/route.rs`. In-process the client's own Kademlia
//! bootstrap happens to reach the provider here, so this checks the path works rather than
//! reproducing the failure; the testnet's `processes-50` scenario reproduced it: 4 of 20 hires
//! failed with "Failed to dial the requested peer" before the lookup, none after.)

#[path = "support/mod.rs"]
mod support;

use libp2p::kad::KBucketKey;
use serde_json::json;
use souk_protocol::hire::HireState;
use support::{
    TestNode, hire, new_hire, publish_and_find, script_agent, seed, start_node, wait_for,
    wait_for_state,
};

/// Full nodes: more than a Kademlia bucket (20), so the light client's own lookup cannot
/// cover them all.
const FULL: u16 = 26;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_light_client_hires_a_provider_it_never_met() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    // A chain: node i dials node i-1.
    let mut full: Vec<TestNode> = Vec::new();
    for i in 0..FULL {
        let boot = full
            .last()
            .map(|n| vec![n.addr.clone()])
            .unwrap_or_default();
        full.push(
            start_node(
                &tmp.path().join(format!("n{i}")),
                seed(800 + i),
                false,
                boot,
            )
            .await,
        );
    }
    let client_seed = seed(900);
    let client_peer = souk_protocol::identity::Keypair::from_seed(&client_seed);
    let client_key = KBucketKey::from(
        libp2p::PeerId::from_bytes(&client_peer.id().peer_id_bytes())
            .unwrap_or_else(|e| panic!("{e}")),
    );
    // The provider: the full node farthest from the client in the DHT, other than the
    // one the client bootstraps to.
    let last = full.len() - 1;
    let provider_idx = (0..last)
        .max_by_key(|&i| KBucketKey::from(full[i].handle.peer_id).distance(&client_key))
        .unwrap_or(0);
    let provider = &full[provider_idx];
    let client = start_node(
        &tmp.path().join("client"),
        client_seed,
        true,
        vec![full[last].addr.clone()],
    )
    .await;
    wait_for("the client to have a full peer", || async {
        client
            .handle
            .info()
            .await
            .is_ok_and(|i| !i.peers.is_empty())
    })
    .await;
    let spec = script_agent(
        &tmp.path().join("pkg"),
        "faraway",
        "send(\"result\", output={\"ok\": True})\n",
        1_000,
    );
    let mid = publish_and_find(&provider.handle, &client.handle, spec, "faraway").await;
    let created = hire(&client.handle, new_hire(&mid, json!({}), None, None)).await;
    let done = wait_for_state(&client.handle, created.id(), HireState::Completed).await;
    assert_eq!(done.state, HireState::Completed);
    for n in full {
        n.handle.shutdown().await;
    }
    client.handle.shutdown().await;
}
