//! A hostile gossip peer for testnet scenarios (`action = "invalid-gossip"`): the kit's own
//! libp2p peer connects to a node and publishes fresh invalid manifests (one per admission
//! rule, cycled), then reports whether the node cut it off. What the rest of the network saw
//! is judged by the scenario from the nodes' events.

use std::time::Duration;

use libp2p::Multiaddr;

use super::checks::subscribed;
use super::fixtures;
use super::peer::Peer;
use crate::network::now_ms;

/// What one hostile peer did and what happened to it.
#[derive(Debug, Clone)]
pub(crate) struct Hostile {
    /// Its peer id (base58).
    pub(crate) peer: String,
    /// Invalid manifests it published.
    pub(crate) sent: u32,
    /// Whether the node closed its connection within 10 s of the last one (a ban).
    pub(crate) cut_off: bool,
}

/// Connects to `addr` and publishes `count` invalid manifests, 200 ms apart (stopping early
/// if the node cuts the connection).
pub(crate) fn invalid_gossip(addr: &str, count: u32) -> anyhow::Result<Hostile> {
    let addr: Multiaddr = addr.parse()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let mut p = Peer::new()?;
        let other = Peer::new()?;
        p.connect(&addr).await?;
        anyhow::ensure!(
            subscribed(&mut p).await,
            "the node did not subscribe to the manifest topic within 10 s"
        );
        let peer = p.swarm.local_peer_id().to_base58();
        let mut sent = 0;
        'outer: while sent < count {
            // Fresh bytes each round: gossipsub drops a message id it has seen.
            let variants = fixtures::invalid(&p.key, &other.key, now_ms())?;
            for (_, _, bytes) in variants {
                if sent >= count || p.swarm.connected_peers().next().is_none() {
                    break 'outer;
                }
                if p.publish(bytes).is_ok() {
                    sent += 1;
                }
                let _ = p.pump(Duration::from_millis(200), |_| false).await;
            }
        }
        let cut_off = p
            .pump(Duration::from_secs(10), |p| {
                p.swarm.connected_peers().next().is_none()
            })
            .await;
        Ok(Hostile {
            peer,
            sent,
            cut_off,
        })
    })
}
