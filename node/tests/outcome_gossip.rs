//! Outcome records and equivocation proofs travel like manifests, between real nodes on
//! loopback: a record published on A reaches B and C by gossip and a late joiner D by sync,
//! with the same figures everywhere; forged records are rejected, not forwarded, and cost the
//! sender its connection; a proof published by a light node flags the provider on every full
//! node and survives a restart; a record published with no peer waits in the outbox, across
//! a restart, until a peer takes it; a light node fetches a provider's records and verifies
//! them itself.

use std::path::Path;
use std::time::Duration;

use futures::StreamExt;
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, gossipsub, noise, tcp, yamux};
use souk_node::service::NodeHandle;
use souk_node::testkit::{
    TIMEOUT, attest, equivocation_proof, outcome_record, seed, settled_hire, start_node, wait_for,
};
use souk_protocol::hire::Verdict;
use souk_protocol::outcome::OutcomeRecord;
use souk_protocol::outcome_sync::OUTCOME_TOPIC;
use souk_protocol::{Keypair, NodeId};
use souk_reputation::{Figures, Policy};

fn key(n: u8) -> Keypair {
    Keypair::from_seed(&[n; 32])
}

async fn figures(node: &NodeHandle, provider: NodeId) -> Figures {
    node.reputation(provider, Some("csv".into()), Policy::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .0
}

async fn settled(node: &NodeHandle, provider: NodeId) -> u64 {
    figures(node, provider).await.settled
}

async fn wait_settled(what: &str, node: &NodeHandle, provider: NodeId, n: u64) {
    wait_for(what, || async { settled(node, provider).await == n }).await;
}

/// A bare gossipsub swarm on the outcome topic that publishes whatever bytes it is given.
struct Liar {
    swarm: libp2p::Swarm<gossipsub::Behaviour>,
    topic: gossipsub::IdentTopic,
}

impl Liar {
    async fn connect(target: Multiaddr) -> Liar {
        let config = gossipsub::ConfigBuilder::default()
            .validation_mode(gossipsub::ValidationMode::Anonymous)
            .message_id_fn(|m: &gossipsub::Message| {
                gossipsub::MessageId::from(&blake3::hash(&m.data).as_bytes()[..20])
            })
            .max_transmit_size(128 * 1024)
            .heartbeat_interval(Duration::from_millis(200))
            .build()
            .unwrap_or_else(|e| panic!("{e}"));
        let mut swarm = libp2p::SwarmBuilder::with_new_identity()
            .with_tokio()
            .with_tcp(
                tcp::Config::default(),
                noise::Config::new,
                yamux::Config::default,
            )
            .unwrap_or_else(|e| panic!("{e}"))
            .with_behaviour(|_| {
                gossipsub::Behaviour::new(gossipsub::MessageAuthenticity::Anonymous, config.clone())
                    .unwrap_or_else(|e| panic!("{e}"))
            })
            .unwrap_or_else(|e| panic!("{e}"))
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
            .build();
        let topic = gossipsub::IdentTopic::new(OUTCOME_TOPIC);
        swarm
            .behaviour_mut()
            .subscribe(&topic)
            .unwrap_or_else(|e| panic!("{e}"));
        swarm.dial(target).unwrap_or_else(|e| panic!("{e}"));
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        loop {
            let ev = tokio::time::timeout_at(deadline, swarm.select_next_some())
                .await
                .unwrap_or_else(|_| panic!("the liar never saw the node subscribe"));
            if let SwarmEvent::Behaviour(gossipsub::Event::Subscribed { topic: t, .. }) = ev
                && t == topic.hash()
            {
                break;
            }
        }
        Liar { swarm, topic }
    }

    async fn publish(&mut self, bytes: Vec<u8>) {
        self.swarm
            .behaviour_mut()
            .publish(self.topic.clone(), bytes)
            .unwrap_or_else(|e| panic!("liar publish: {e}"));
        let until = tokio::time::Instant::now() + Duration::from_millis(100);
        while let Ok(_ev) = tokio::time::timeout_at(until, self.swarm.select_next_some()).await {}
    }

    async fn wait_disconnected(&mut self) {
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        while self.swarm.connected_peers().count() > 0 {
            if tokio::time::timeout_at(deadline, self.swarm.select_next_some())
                .await
                .is_err()
            {
                panic!("the node never disconnected the liar");
            }
        }
    }
}

fn dir(root: &Path, name: &str) -> std::path::PathBuf {
    root.join(name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_reach_every_node_and_forgeries_are_refused() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let root = tmp.path();
    let a = start_node(&dir(root, "a"), seed(40), false, vec![]).await;
    let b = start_node(&dir(root, "b"), seed(41), false, vec![a.addr.clone()]).await;
    let c = start_node(&dir(root, "c"), seed(42), false, vec![b.addr.clone()]).await;
    let (provider, client) = (key(1), key(2));
    let p = provider.id();

    // Published on A, possibly before the mesh has formed: the outbox retries.
    let record = outcome_record(&provider, &client, "csv", Verdict::Accepted);
    a.handle
        .publish_outcome(record.clone())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(settled(&a.handle, p).await, 1);
    wait_settled("B to admit the record", &b.handle, p, 1).await;
    wait_settled("C to admit the record", &c.handle, p, 1).await;

    // A late joiner gets it by sync (gossip does not repeat it).
    let d = start_node(&dir(root, "d"), seed(43), false, vec![c.addr.clone()]).await;
    wait_settled("D to sync the record", &d.handle, p, 1).await;
    let reference = figures(&a.handle, p).await;
    for n in [&b, &c, &d] {
        assert_eq!(figures(&n.handle, p).await, reference);
    }
    let (_, last) = d
        .handle
        .reputation(p, Some("csv".into()), Policy::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(last.len(), 1);
    assert_eq!(last[0].client, client.id());

    // Forgeries, sent to A only: wrong head signer, a verdict over another head, the same
    // hire under another agent name.
    let h = settled_hire(&provider, &key(3), "csv");
    let att = attest(&key(3), h.hire_id, &h.head, Verdict::Accepted);
    let good = OutcomeRecord::build(h.manifest.body().reference(), &h.contract, &h.head, &att);
    let forged_head = OutcomeRecord {
        head: settled_hire(&key(9), &key(3), "csv").head.to_bytes(),
        ..good.clone()
    };
    let other = attest(&key(3), h.hire_id, &h.started, Verdict::Accepted);
    let wrong_head =
        OutcomeRecord::build(h.manifest.body().reference(), &h.contract, &h.head, &other);
    let mut renamed = h.manifest.body().reference();
    renamed.name = "csv-pro".into();
    let replayed = OutcomeRecord::build(renamed, &h.contract, &h.head, &att);

    let mut liar = Liar::connect(a.addr.clone()).await;
    for forged in [forged_head, wrong_head, replayed] {
        liar.publish(forged.to_bytes()).await;
    }
    liar.wait_disconnected().await;
    let m = a.handle.metrics.snapshot();
    assert_eq!(m.outcomes_rejected, 3);
    assert!(m.peers_banned >= 1);
    // Nothing was forwarded: B saw no invalid record, and the valid one of that hire,
    // published afterwards, is still new to everyone.
    assert_eq!(b.handle.metrics.snapshot().outcomes_rejected, 0);
    a.handle
        .publish_outcome(good.to_bytes())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    for n in [&a, &b, &c, &d] {
        wait_settled("every node to admit the second record", &n.handle, p, 2).await;
    }
    for n in [&b, &c, &d] {
        assert_eq!(n.handle.metrics.snapshot().outcomes_rejected, 0);
    }
    eprintln!(
        "record sizes: {} and {} bytes",
        record.len(),
        good.to_bytes().len()
    );
    for n in [d, c, b, a] {
        n.handle.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proofs_flag_everywhere_and_records_wait_in_the_outbox_across_restarts() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let root = tmp.path();
    let a = start_node(&dir(root, "a"), seed(50), false, vec![]).await;
    let b = start_node(&dir(root, "b"), seed(51), false, vec![a.addr.clone()]).await;
    let light = start_node(&dir(root, "l"), seed(52), true, vec![a.addr.clone()]).await;
    let cheat = key(7);

    // A light node publishes a proof; every full node flags the provider.
    wait_for("the light node to know a full peer", || async {
        light.handle.info().await.is_ok_and(|i| !i.peers.is_empty())
    })
    .await;
    light
        .handle
        .publish_equivocation(equivocation_proof(&cheat, 1))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    for n in [&a, &b] {
        wait_for("the provider to be flagged", || async {
            n.handle.is_flagged(cheat.id()).await.unwrap_or(false)
        })
        .await;
    }
    assert_eq!(a.handle.metrics.snapshot().providers_flagged, 1);
    let flagged = b.handle.flagged().await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(flagged.len(), 1);
    assert_eq!(flagged[0].0, cheat.id());
    assert!(figures(&b.handle, cheat.id()).await.flagged);

    // B restarts alone: the flag is still there.
    let b_seed = b.seed;
    b.handle.shutdown().await;
    let _ = b.task.await;
    let b = start_node(&dir(root, "b"), b_seed, false, vec![]).await;
    assert!(b.handle.is_flagged(cheat.id()).await.unwrap_or(false));

    // E publishes a record with no peer at all: it waits in the outbox, across a restart.
    let (provider, client) = (key(11), key(12));
    let record = outcome_record(&provider, &client, "csv", Verdict::Disputed);
    let e = start_node(&dir(root, "e"), seed(53), false, vec![]).await;
    e.handle
        .publish_outcome(record)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    e.handle.shutdown().await;
    let _ = e.task.await;
    {
        let store = souk_store::Store::open(
            &dir(root, "e").join("souk.redb"),
            &souk_store::StoreConfig::default(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let outbox = store.outbox().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(outbox.len(), 1, "no peer took it: it waits in the outbox");
    }
    let e = start_node(&dir(root, "e"), seed(53), false, vec![a.addr.clone()]).await;
    wait_settled(
        "A to get the record from E's outbox",
        &a.handle,
        provider.id(),
        1,
    )
    .await;
    assert_eq!(figures(&a.handle, provider.id()).await.rejected, 1);
    // Handed to gossip after the restart: the outbox mark goes (with the next store batch).
    wait_for("E's outbox to empty", || async {
        e.store().outbox().is_ok_and(|o| o.is_empty())
    })
    .await;

    // The light node fetches that provider's records from its full peer.
    let fetched = light
        .handle
        .fetch_outcomes(provider.id())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(fetched.len(), 1);
    assert_eq!(fetched[0].verdict, Verdict::Disputed);
    assert_eq!(settled(&light.handle, provider.id()).await, 1);
    for n in [light, e, b, a] {
        n.handle.shutdown().await;
    }
}
