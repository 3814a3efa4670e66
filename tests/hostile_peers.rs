//! Peers that lie: forged signatures, manifests signed by the wrong key, non-canonical bytes,
//! expired or not-yet-valid manifests and oversized messages are rejected, never forwarded,
//! counted, and cost the sender its connection; a replayed lower seq is ignored (never
//! forwarded, never displacing the newer version, not charged: honest forwarders deliver
//! such versions when an agent is announced twice quickly); the honest network is unaffected.
//!
//! The liar is a bare gossipsub swarm (no Kademlia, no identify), connected to node A only,
//! so the only way its messages could reach node B is through A forwarding them.

#[path = "support/mod.rs"]
mod support;

use std::time::Duration;

use futures::StreamExt;
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, gossipsub, noise, tcp, yamux};
use souk_protocol::discovery::{MANIFEST_TOPIC, MAX_ENVELOPE_LEN};
use souk_protocol::manifest::Manifest;
use souk_protocol::signed::Signed;
use souk_protocol::{Keypair, NodeId};
use support::{agent, finds, seed, start_node, wait_for};

/// A libp2p swarm that speaks only gossipsub on the manifest topic and publishes whatever
/// bytes it is given.
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
            .max_transmit_size(MAX_ENVELOPE_LEN + 4096)
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
        let topic = gossipsub::IdentTopic::new(MANIFEST_TOPIC);
        swarm
            .behaviour_mut()
            .subscribe(&topic)
            .unwrap_or_else(|e| panic!("{e}"));
        swarm.dial(target).unwrap_or_else(|e| panic!("{e}"));
        // Wait until the target has subscribed back: then publishes reach it.
        let deadline = tokio::time::Instant::now() + support::TIMEOUT;
        loop {
            let ev = tokio::time::timeout_at(deadline, swarm.select_next_some())
                .await
                .unwrap_or_else(|_| panic!("the liar never saw the node subscribe"));
            if let SwarmEvent::Behaviour(gossipsub::Event::Subscribed { .. }) = ev {
                break;
            }
        }
        Liar { swarm, topic }
    }

    async fn publish(&mut self, bytes: Vec<u8>) {
        let r = self
            .swarm
            .behaviour_mut()
            .publish(self.topic.clone(), bytes);
        r.unwrap_or_else(|e| panic!("liar publish: {e}"));
        // Drive the swarm briefly so the message is actually written out.
        let until = tokio::time::Instant::now() + Duration::from_millis(100);
        while let Ok(_ev) = tokio::time::timeout_at(until, self.swarm.select_next_some()).await {}
    }

    /// Drives the swarm until the connection to the node is closed (the node banned us).
    async fn wait_disconnected(&mut self) {
        let deadline = tokio::time::Instant::now() + support::TIMEOUT;
        loop {
            if self.swarm.connected_peers().count() == 0 {
                return;
            }
            match tokio::time::timeout_at(deadline, self.swarm.select_next_some()).await {
                Ok(_) => {}
                Err(_) => panic!("the node never disconnected the liar"),
            }
        }
    }
}

fn signed_manifest(key: &Keypair, name: &str, seq: u64, issued: u64, ttl: u64) -> Signed<Manifest> {
    let spec = agent(name, &["text"], "an agent", 1_000_000);
    let body = spec
        .to_manifest(key.id(), seq, [7; 32], issued, issued + ttl)
        .unwrap_or_else(|e| panic!("{e}"));
    Signed::sign(body, key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lying_peers_are_rejected_not_forwarded_and_banned() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mk = |name: &str| {
        let d = tmp.path().join(name);
        std::fs::create_dir_all(&d).unwrap_or_else(|e| panic!("{e}"));
        d
    };
    let a = start_node(&mk("a"), seed(10), false, vec![]).await;
    let b = start_node(&mk("b"), seed(11), false, vec![a.addr.clone()]).await;
    let provider = Keypair::from_seed(&seed(12));
    let mallory = Keypair::from_seed(&seed(13));
    let now = souk_node::now_ms();

    // An honest manifest at seq 5 is known to both A and B.
    let honest = signed_manifest(&provider, "honest-agent", 5, now, 3_600_000);
    let honest_id = honest.id().to_hex();
    let mut liar0 = Liar::connect(a.addr.clone()).await;
    liar0.publish(honest.to_bytes()).await;
    wait_for("A and B to accept the honest manifest", || async {
        finds(&a.handle, "agent", &honest_id).await && finds(&b.handle, "agent", &honest_id).await
    })
    .await;
    let b_before = b.handle.metrics.snapshot();
    let a_before = a.handle.metrics.snapshot();

    // A replayed lower seq (from the so far honest peer): ignored, not forwarded, not charged.
    let replay = signed_manifest(&provider, "honest-agent", 4, now + 1, 3_600_000).to_bytes();
    liar0.publish(replay).await;
    wait_for("A to ignore the replay", || async {
        a.handle.metrics.snapshot().gossip_ignored > a_before.gossip_ignored
    })
    .await;
    let a_before = a.handle.metrics.snapshot();
    assert_eq!(
        a_before.gossip_rejected, 0,
        "a replay is not charged: {a_before:?}"
    );

    // Liar 1: forged signature, non-canonical encoding, issued an hour ahead.
    let mut forged = signed_manifest(&provider, "forged", 1, now, 3_600_000).to_bytes();
    let n = forged.len();
    forged[n - 5] ^= 0x01;
    let mut non_canonical = vec![0x98, 0x03];
    non_canonical
        .extend_from_slice(&signed_manifest(&provider, "nc", 1, now, 3_600_000).to_bytes()[1..]);
    let ahead = signed_manifest(&provider, "ahead", 1, now + 3_600_000, 3_600_000).to_bytes();
    let mut liar1 = Liar::connect(a.addr.clone()).await;
    for bytes in [forged, non_canonical, ahead] {
        liar1.publish(bytes).await;
    }
    wait_for("A to reject liar 1's messages", || async {
        a.handle.metrics.snapshot().gossip_rejected >= a_before.gossip_rejected + 3
    })
    .await;
    liar1.wait_disconnected().await;

    // Liar 2: signed by the wrong key (provider field says P, Mallory signs), expired, oversized.
    let mut wrong_key_body = signed_manifest(&provider, "wrong-key", 1, now, 3_600_000)
        .body()
        .clone();
    wrong_key_body.provider = provider.id();
    let wrong_key = Signed::sign(wrong_key_body, &mallory).to_bytes();
    let expired = signed_manifest(&provider, "expired", 1, now - 7_200_000, 3_600_000).to_bytes();
    let oversized = vec![0x5a; MAX_ENVELOPE_LEN + 500];
    let mut liar2 = Liar::connect(a.addr.clone()).await;
    for bytes in [wrong_key, expired, oversized] {
        liar2.publish(bytes).await;
    }
    liar2.wait_disconnected().await;

    let a_after = a.handle.metrics.snapshot();
    assert_eq!(
        a_after.gossip_rejected - a_before.gossip_rejected,
        6,
        "{a_after:?}"
    );
    assert_eq!(
        a_after.peers_banned - a_before.peers_banned,
        2,
        "{a_after:?}"
    );
    assert_eq!(
        a_after.gossip_accepted, a_before.gossip_accepted,
        "nothing invalid was accepted"
    );

    // The honest network is unaffected: B saw none of it, and new honest manifests still flow.
    let p = a
        .handle
        .publish(agent(
            "after-the-storm",
            &["text"],
            "published after the attack",
            1_000_000,
        ))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    wait_for("B to receive the next honest manifest", || {
        finds(&b.handle, "storm", &p.manifest_id)
    })
    .await;
    let b_after = b.handle.metrics.snapshot();
    assert_eq!(
        b_after.gossip_rejected, b_before.gossip_rejected,
        "B must never see invalid messages"
    );
    assert_eq!(
        b_after.gossip_received,
        b_before.gossip_received + 1,
        "{b_after:?}"
    );
    assert!(
        finds(&b.handle, "agent", &honest_id).await,
        "the replay must not displace seq 5"
    );
    let _ = NodeId::from_bytes(provider.id().as_bytes());
    a.handle.shutdown().await;
    b.handle.shutdown().await;
}
