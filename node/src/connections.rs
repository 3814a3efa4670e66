//! Keeps a node's peer count near a target: which surplus peers to disconnect, and when to
//! dial more.
//!
//! libp2p never closes a connection that has a live stream, and gossipsub keeps one open on
//! every connection to a subscriber, so an idle connection is never closed by the idle
//! timeout. Kademlia queries dial many peers; left alone, a full node ends up connected to
//! nearly every node it ever looked up, and every connection costs CPU on each gossip message
//! (heartbeats, IHAVE gossip, flood publishing) and memory. The [`PeerManager`] picks the
//! peers to drop when the node has more than `target` full peers: only peers outside the
//! gossip mesh, connected for at least the grace period, and without application traffic
//! (sync, search, hire) for that long; the least recently active go first. Light clients are
//! never pruned here (the connection limit bounds them), so a client following a hire keeps
//! its connection. When the node has fewer than `low` peers it asks for dials.
//!
//! The manager is pure bookkeeping: [`crate::service`] feeds it swarm events and acts on its
//! answers.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use libp2p::PeerId;

/// What the manager knows about one connected peer.
#[derive(Debug, Clone)]
struct Peer {
    /// When the first of its current connections was established.
    since: Instant,
    /// The last application-level exchange (request or response of sync, search or hire).
    active: Instant,
    /// A light client (identify said so): never pruned.
    light: bool,
}

/// Connected-peer bookkeeping and the pruning rule.
#[derive(Debug)]
pub struct PeerManager {
    target: usize,
    low: usize,
    grace: Duration,
    peers: HashMap<PeerId, Peer>,
}

impl PeerManager {
    /// Keeps at most `target` full peers (surplus pruned after `grace`) and asks for dials
    /// below `low`.
    pub fn new(target: usize, low: usize, grace: Duration) -> Self {
        Self {
            target: target.max(1),
            low: low.min(target.max(1)),
            grace,
            peers: HashMap::new(),
        }
    }

    /// A first connection to `peer` was established.
    pub fn connected(&mut self, peer: PeerId, now: Instant) {
        self.peers.entry(peer).or_insert(Peer {
            since: now,
            active: now,
            light: false,
        });
    }

    /// The last connection to `peer` closed.
    pub fn disconnected(&mut self, peer: &PeerId) {
        self.peers.remove(peer);
    }

    /// `peer` identified itself as a light client.
    pub fn mark_light(&mut self, peer: &PeerId) {
        if let Some(p) = self.peers.get_mut(peer) {
            p.light = true;
        }
    }

    /// An application-level exchange with `peer` happened.
    pub fn touch(&mut self, peer: &PeerId, now: Instant) {
        if let Some(p) = self.peers.get_mut(peer) {
            p.active = now;
        }
    }

    /// How many more peers the node should dial (0 at or above `low`).
    pub fn wanted(&self) -> usize {
        if self.peers.len() < self.low {
            self.target - self.peers.len()
        } else {
            0
        }
    }

    /// The peers to disconnect now so the full peers come down to the target: outside the
    /// mesh (`in_mesh`), connected and idle for the grace period; least recently active first.
    pub fn surplus(&self, now: Instant, in_mesh: impl Fn(&PeerId) -> bool) -> Vec<PeerId> {
        let full = self.peers.values().filter(|p| !p.light).count();
        let Some(excess) = full.checked_sub(self.target).filter(|e| *e > 0) else {
            return Vec::new();
        };
        let ripe = |t: Instant| now.saturating_duration_since(t) >= self.grace;
        let mut candidates: Vec<(&PeerId, &Peer)> = self
            .peers
            .iter()
            .filter(|(id, p)| !p.light && ripe(p.since) && ripe(p.active) && !in_mesh(id))
            .collect();
        candidates.sort_by_key(|(id, p)| (p.active, p.since, **id));
        candidates
            .into_iter()
            .take(excess)
            .map(|(id, _)| *id)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peers(n: usize) -> Vec<PeerId> {
        (0..n).map(|_| PeerId::random()).collect()
    }

    #[test]
    fn prunes_only_surplus_idle_non_mesh_full_peers() {
        let t0 = Instant::now();
        let grace = Duration::from_secs(10);
        let mut m = PeerManager::new(3, 2, grace);
        let p = peers(7);
        for id in &p {
            m.connected(*id, t0);
        }
        // Within the grace period nothing goes.
        assert!(m.surplus(t0 + Duration::from_secs(5), |_| false).is_empty());
        let later = t0 + grace;
        // p0 is in the mesh, p1 was active recently, p2 is a light client.
        m.touch(&p[1], later - Duration::from_secs(1));
        m.mark_light(&p[2]);
        let out = m.surplus(later, |id| *id == p[0]);
        // 6 full peers, target 3: 3 go, chosen among p3..p6 (all equally idle).
        assert_eq!(out.len(), 3);
        for id in &out {
            assert!(p[3..].contains(id), "{id} must not be pruned");
        }
    }

    #[test]
    fn least_recently_active_go_first() {
        let t0 = Instant::now();
        let mut m = PeerManager::new(1, 1, Duration::ZERO);
        let p = peers(3);
        for (i, id) in p.iter().enumerate() {
            m.connected(*id, t0);
            m.touch(id, t0 + Duration::from_secs(i as u64));
        }
        let out = m.surplus(t0 + Duration::from_secs(10), |_| false);
        assert_eq!(out, vec![p[0], p[1]]);
    }

    #[test]
    fn nothing_to_prune_at_or_below_target() {
        let t0 = Instant::now();
        let mut m = PeerManager::new(4, 2, Duration::ZERO);
        for id in peers(4) {
            m.connected(id, t0);
        }
        assert!(
            m.surplus(t0 + Duration::from_secs(60), |_| false)
                .is_empty()
        );
        // Light clients do not count toward the full-peer target.
        let extra = PeerId::random();
        m.connected(extra, t0);
        m.mark_light(&extra);
        assert!(
            m.surplus(t0 + Duration::from_secs(60), |_| false)
                .is_empty()
        );
    }

    #[test]
    fn asks_for_dials_below_low() {
        let t0 = Instant::now();
        let mut m = PeerManager::new(8, 3, Duration::ZERO);
        assert_eq!(m.wanted(), 8);
        let p = peers(3);
        for id in &p {
            m.connected(*id, t0);
        }
        assert_eq!(m.wanted(), 0);
        m.disconnected(&p[0]);
        assert_eq!(m.wanted(), 6);
        // A second connection to a known peer does not count twice.
        m.connected(p[1], t0 + Duration::from_secs(5));
        assert_eq!(m.peers.len(), 2);
    }
}
