//! Peers: penalties and bans for invalid input ([`crate::peer_score`]), and keeping the
//! number of connections near the target ([`crate::connections`]): prune surplus idle peers
//! outside the gossip mesh, dial more when short.

use std::collections::HashSet;
use std::time::Instant;

use libp2p::request_response;
use libp2p::{Multiaddr, PeerId};

use super::Node;
use super::events::NodeEvent;
use crate::now_ms;
use crate::peer_score::Verdict;

impl Node {
    pub(super) fn penalize(&mut self, peer: PeerId, why: &str) {
        tracing::debug!(%peer, "invalid input: {why}");
        if self.scores.penalize(peer, now_ms()) == Verdict::Banned {
            tracing::warn!(%peer, "banning peer after repeated invalid input ({why})");
            self.metrics.peers_banned.inc();
            self.events.send(NodeEvent::PeerBanned {
                peer: peer.to_base58(),
            });
            self.swarm.behaviour_mut().blocked.block_peer(peer);
        }
    }

    /// The testnet gate's partition: blocks exactly `block` (connections close, new ones
    /// are refused); peers it blocked before and not listed now are unblocked, unless banned.
    pub(super) fn gate_block(&mut self, block: Vec<PeerId>) {
        let now = now_ms();
        let new: HashSet<PeerId> = block.into_iter().collect();
        for peer in self.gate_blocked.difference(&new) {
            if !self.scores.is_banned(peer, now) {
                self.swarm.behaviour_mut().blocked.unblock_peer(*peer);
            }
        }
        for peer in &new {
            self.swarm.behaviour_mut().blocked.block_peer(*peer);
        }
        tracing::info!("testnet gate: {} peer(s) blocked", new.len());
        self.gate_blocked = new;
    }

    /// Records application traffic with a peer, which protects it from pruning for a while.
    pub(super) fn touch<Req, Resp>(&mut self, ev: &request_response::Event<Req, Resp>) {
        match ev {
            request_response::Event::Message { peer, .. }
            | request_response::Event::ResponseSent { peer, .. } => {
                self.peers.touch(peer, Instant::now())
            }
            _ => {}
        }
    }

    /// Disconnects surplus peers and dials more when short (see [`crate::connections`]).
    pub(super) fn maintain_peers(&mut self) {
        let now = Instant::now();
        let topic = self.topic.hash();
        let mesh: HashSet<PeerId> = self
            .swarm
            .behaviour()
            .gossipsub
            .mesh_peers(&topic)
            .copied()
            .collect();
        for peer in self.peers.surplus(now, |p| mesh.contains(p)) {
            tracing::debug!(%peer, "pruning a surplus peer");
            self.metrics.peers_pruned.inc();
            self.events.send(NodeEvent::PeerPruned {
                peer: peer.to_base58(),
            });
            let _ = self.swarm.disconnect_peer_id(peer);
        }
        let mut wanted = self.peers.wanted();
        if wanted == 0 {
            return;
        }
        use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
        // Peers from the routing table first, then the configured bootstrap addresses.
        let mut candidates: Vec<(PeerId, Vec<Multiaddr>)> = Vec::new();
        for bucket in self.swarm.behaviour_mut().kad.kbuckets() {
            for entry in bucket.iter() {
                let peer = *entry.node.key.preimage();
                candidates.push((peer, entry.node.value.iter().cloned().collect()));
            }
        }
        for (peer, addrs) in candidates {
            if wanted == 0 {
                return;
            }
            if self.swarm.is_connected(&peer) || addrs.is_empty() {
                continue;
            }
            let opts = DialOpts::peer_id(peer)
                .addresses(addrs)
                .condition(PeerCondition::DisconnectedAndNotDialing)
                .build();
            if self.swarm.dial(opts).is_ok() {
                wanted -= 1;
            }
        }
        for addr in self.bootstrap.clone() {
            if wanted == 0 {
                return;
            }
            let known = addr.iter().find_map(|p| match p {
                libp2p::multiaddr::Protocol::P2p(id) => Some(id),
                _ => None,
            });
            let dialed = match known {
                Some(id) if self.swarm.is_connected(&id) => continue,
                Some(id) => self.swarm.dial(
                    DialOpts::peer_id(id)
                        .addresses(vec![addr])
                        .condition(PeerCondition::DisconnectedAndNotDialing)
                        .build(),
                ),
                None => self.swarm.dial(addr),
            };
            if dialed.is_ok() {
                wanted -= 1;
            }
        }
    }
}
