//! Catalog intake: manifests arriving by gossip (validated once per message before
//! gossipsub may forward them) and by sync from full peers met through identify, within a
//! session budget. Invalid input is rejected, counted and charged to the sender.

use std::time::Instant;

use libp2p::request_response;
use libp2p::{PeerId, gossipsub, identify};
use souk_protocol::discovery::{
    MAX_SYNC_PAGE, SEARCH_PROTOCOL, SYNC_PROTOCOL, SyncRequest, SyncResponse,
};

use super::events::{NodeEvent, Via};
use super::{MAX_SYNC_PAGES, Node, SYNC_SESSIONS, SYNC_WINDOW};
use crate::discovery::{Admission, Rejection};
use crate::now_ms;
use crate::swarm::KAD_PROTOCOL;

impl Node {
    pub(super) fn on_gossip(&mut self, source: PeerId, id: gossipsub::MessageId, data: &[u8]) {
        self.metrics.gossip_received.inc();
        let acceptance = match self.catalog.admit(data, now_ms()) {
            Admission::Accepted { manifest, replaced } => {
                self.metrics.gossip_accepted.inc();
                self.keep(
                    manifest,
                    replaced,
                    Via::Gossip,
                    Some(id.to_string()),
                    Some(source),
                );
                gossipsub::MessageAcceptance::Accept
            }
            // Superseded (stale seq): an honest forwarder delivers an older version after a
            // newer one when an agent is announced twice in quick succession. Not charged
            // (spec/discovery.md, "Verdicts").
            Admission::Duplicate | Admission::Rejected(Rejection::StaleSeq) => {
                self.metrics.gossip_ignored.inc();
                gossipsub::MessageAcceptance::Ignore
            }
            Admission::Rejected(why) => {
                self.metrics.gossip_rejected.inc();
                let reason = why.to_string();
                self.events.send(NodeEvent::ManifestRejected {
                    via: Via::Gossip,
                    message_id: Some(id.to_string()),
                    from: source.to_base58(),
                    reason: reason.clone(),
                });
                self.penalize(source, &reason);
                gossipsub::MessageAcceptance::Reject
            }
        };
        self.swarm
            .behaviour_mut()
            .gossipsub
            .report_message_validation_result(&id, &source, acceptance);
    }

    /// Whether a new sync session fits the budget ([`SYNC_SESSIONS`] per [`SYNC_WINDOW`]);
    /// counts it if so.
    pub(super) fn may_start_sync(&mut self) -> bool {
        let now = Instant::now();
        while self
            .sync_starts
            .front()
            .is_some_and(|t| now.duration_since(*t) >= SYNC_WINDOW)
        {
            self.sync_starts.pop_front();
        }
        if self.sync_starts.len() >= SYNC_SESSIONS {
            return false;
        }
        self.sync_starts.push_back(now);
        true
    }

    pub(super) fn on_identify(&mut self, peer: PeerId, info: identify::Info) {
        let speaks = |p: &str| info.protocols.iter().any(|x| x.as_ref() == p);
        if !(speaks(SEARCH_PROTOCOL) && speaks(SYNC_PROTOCOL)) {
            self.peers.mark_light(&peer);
        }
        if speaks(KAD_PROTOCOL.as_ref()) {
            for addr in &info.listen_addrs {
                self.swarm
                    .behaviour_mut()
                    .kad
                    .add_address(&peer, addr.clone());
            }
            if !self.kad_bootstrapped {
                self.kad_bootstrapped = self.swarm.behaviour_mut().kad.bootstrap().is_ok();
            }
        }
        for addr in &info.listen_addrs {
            self.swarm.add_peer_address(peer, addr.clone());
        }
        if speaks(SEARCH_PROTOCOL) && speaks(SYNC_PROTOCOL) {
            self.full_peers.insert(peer, info.listen_addrs.clone());
            if !self.light && !self.synced.contains_key(&peer) && self.may_start_sync() {
                self.synced.insert(peer, 1);
                self.start_outcome_sync(peer);
                self.swarm.behaviour_mut().sync.send_request(
                    &peer,
                    SyncRequest {
                        after: None,
                        limit: MAX_SYNC_PAGE,
                    },
                );
            }
        }
    }

    pub(super) fn on_sync(&mut self, ev: request_response::Event<SyncRequest, SyncResponse>) {
        match ev {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => {
                    self.metrics.sync_served.inc();
                    let page = self.catalog.sync_page(&request);
                    let _ = self.swarm.behaviour_mut().sync.send_response(channel, page);
                }
                request_response::Message::Response { response, .. } => {
                    let now = now_ms();
                    let mut bad = 0;
                    let mut last = None;
                    for bytes in &response.manifests {
                        self.metrics.sync_received.inc();
                        match self.catalog.admit(bytes, now) {
                            Admission::Accepted { manifest, replaced } => {
                                last = Some(manifest.id());
                                self.keep(manifest, replaced, Via::Sync, None, Some(peer));
                            }
                            Admission::Duplicate => {}
                            // Stale or expired in transit is normal for sync; invalid is not.
                            Admission::Rejected(
                                Rejection::StaleSeq | Rejection::Expired | Rejection::NotYetValid,
                            ) => {}
                            Admission::Rejected(why) => {
                                bad += 1;
                                self.metrics.sync_rejected.inc();
                                tracing::debug!(%peer, "invalid manifest in sync: {why}");
                                self.events.send(NodeEvent::ManifestRejected {
                                    via: Via::Sync,
                                    message_id: None,
                                    from: peer.to_base58(),
                                    reason: why.to_string(),
                                });
                            }
                        }
                    }
                    if bad > 0 {
                        self.penalize(peer, "invalid manifests in a sync page");
                    }
                    let pages = self.synced.get(&peer).copied().unwrap_or(1);
                    if let Some(next) = response.next {
                        // The cursor must move forward, and a session is bounded.
                        let forward =
                            last.is_none_or(|l| next >= l) && !response.manifests.is_empty();
                        if forward && pages < MAX_SYNC_PAGES {
                            self.synced.insert(peer, pages + 1);
                            self.swarm.behaviour_mut().sync.send_request(
                                &peer,
                                SyncRequest {
                                    after: Some(next),
                                    limit: MAX_SYNC_PAGE,
                                },
                            );
                        } else if !forward {
                            self.penalize(peer, "a sync cursor that does not advance");
                        }
                    }
                }
            },
            request_response::Event::OutboundFailure { peer, error, .. } => {
                tracing::debug!(%peer, "sync request failed: {error}");
                // Try again on the next identify from this peer; the failed session does not
                // count against the budget.
                self.synced.remove(&peer);
                self.sync_starts.pop_back();
            }
            _ => {}
        }
    }
}
