//! Reaching a peer this node has no address for. A hire or relay call names the other
//! node by its peer id; when the node is neither connected to that peer nor knows it as a
//! full peer (a light client that bootstrapped elsewhere, in a network larger than its
//! Kademlia view), the call waits while a Kademlia lookup (`FIND_NODE` for the peer id) finds
//! its addresses, then goes out. A lookup that ends without them lets the call fail as a dial
//! failure (`unreachable`). One lookup per peer at a time; calls to that peer queue behind it
//! (spec/discovery.md, "Kademlia").

use libp2p::{PeerId, kad};
use souk_protocol::credential::{RelayReply, RelayRequest};
use souk_protocol::hiring::{HireCall, HireReply};

use super::Node;
use super::handle::Reply;
use crate::hire::TransportError;

/// A call waiting for its peer's addresses.
pub(super) enum Parked {
    Hire(Box<HireCall>, Reply<Result<HireReply, TransportError>>),
    Relay(Box<RelayRequest>, Reply<Result<RelayReply, TransportError>>),
}

impl Node {
    /// Whether a call to `peer` can go out now: connected, or a full peer whose addresses
    /// identify gave.
    fn reachable(&self, peer: &PeerId) -> bool {
        self.swarm.is_connected(peer) || self.full_peers.contains_key(peer)
    }

    /// Sends `call` now, or after a lookup of the peer's addresses.
    pub(super) fn call(&mut self, peer: PeerId, call: Parked) {
        if self.reachable(&peer) {
            self.send_call(peer, call);
            return;
        }
        let waiting = self.unrouted.entry(peer).or_default();
        waiting.push(call);
        if waiting.len() == 1 {
            tracing::debug!(%peer, "no address for the peer: looking it up");
            let q = self.swarm.behaviour_mut().kad.get_closest_peers(peer);
            self.route_queries.insert(q, peer);
        }
    }

    fn send_call(&mut self, peer: PeerId, call: Parked) {
        match call {
            Parked::Hire(call, reply) => {
                let id = self.swarm.behaviour_mut().hire.send_request(&peer, *call);
                self.calls.insert(id, reply);
            }
            Parked::Relay(request, reply) => {
                let id = self
                    .swarm
                    .behaviour_mut()
                    .relay
                    .send_request(&peer, *request);
                self.relay_calls.insert(id, reply);
            }
        }
    }

    /// Kademlia events: the lookups started by [`Node::call`].
    pub(super) fn on_kad(&mut self, ev: kad::Event) {
        let kad::Event::OutboundQueryProgressed {
            id, result, step, ..
        } = ev
        else {
            return;
        };
        let Some(&peer) = self.route_queries.get(&id) else {
            return;
        };
        let kad::QueryResult::GetClosestPeers(r) = result else {
            return;
        };
        let found = match r {
            Ok(ok) => ok.peers,
            Err(kad::GetClosestPeersError::Timeout { peers, .. }) => peers,
        };
        let mut known = false;
        for p in found.into_iter().filter(|p| p.peer_id == peer) {
            for a in p.addrs {
                self.swarm.add_peer_address(peer, a);
                known = true;
            }
        }
        if !known && !step.last {
            return;
        }
        self.route_queries.remove(&id);
        if !step.last
            && let Some(mut q) = self.swarm.behaviour_mut().kad.query_mut(&id)
        {
            q.finish();
        }
        if !known {
            tracing::debug!(%peer, "the lookup found no address for the peer");
        }
        for call in self.unrouted.remove(&peer).unwrap_or_default() {
            self.send_call(peer, call);
        }
    }
}
