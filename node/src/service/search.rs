//! Search: answering full-node searches from the catalog, and a light node's search through
//! up to three full peers whose answers are verified and ranked with the same index.

use std::collections::HashSet;

use libp2p::PeerId;
use libp2p::request_response::{self, OutboundRequestId};
use serde::{Deserialize, Serialize};
use souk_index::{Index, Query};
use souk_protocol::discovery::{MAX_SEARCH_RESULTS, SearchRequest, SearchResponse};
use souk_protocol::manifest::Manifest;
use souk_protocol::signed::Signed;

use super::Node;
use super::handle::{NodeError, Reply};
use crate::discovery::{Rejection, verify_envelope};
use crate::now_ms;

/// A search result as the API returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchHit {
    /// Manifest id (hex).
    pub id: String,
    /// Provider node id.
    pub provider: String,
    /// Agent name.
    pub name: String,
    /// Manifest seq.
    pub seq: u64,
    /// Capability tags.
    pub capabilities: Vec<String>,
    /// Description.
    pub description: String,
    /// Currency.
    pub currency: String,
    /// Price per hire (micro-units).
    pub per_hire: u64,
    /// Price per hour (micro-units).
    pub per_hour: u64,
    /// Expiry (ms).
    pub expires_at: u64,
    /// The agent's handle, `<provider>/<name>`.
    pub handle: String,
    /// The agent's reputation from outcome records this node verified (`null`: unknown, as
    /// on a light node whose full peers did not answer for them).
    #[serde(default)]
    pub reputation: Option<HitReputation>,
    /// Whether the provider is flagged (a verified equivocation proof against it is held);
    /// such agents appear only when asked for (`include_flagged`).
    #[serde(default)]
    pub flagged: bool,
}

/// The reputation figures a search result carries (spec/reputation.md; the agent card has
/// them all).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HitReputation {
    /// Settled hires.
    pub settled: u64,
    /// Accepted by their client.
    pub accepted: u64,
    /// Disputed by their client.
    pub rejected: u64,
    /// Distinct clients.
    pub distinct_clients: u64,
    /// Wilson lower bound of the verified success rate (0 to 1).
    pub success_lower_bound: f64,
}

impl From<&souk_reputation::Figures> for HitReputation {
    fn from(f: &souk_reputation::Figures) -> Self {
        HitReputation {
            settled: f.settled,
            accepted: f.accepted,
            rejected: f.rejected,
            distinct_clients: f.distinct_clients,
            success_lower_bound: f.success_lower_bound,
        }
    }
}

impl SearchHit {
    /// From a verified manifest.
    pub fn from_manifest(m: &Signed<Manifest>) -> Self {
        let b = m.body();
        Self {
            id: m.id().to_hex(),
            provider: b.provider.to_string(),
            name: b.name.clone(),
            seq: b.seq,
            capabilities: b.capabilities.clone(),
            description: b.description.clone(),
            currency: b.pricing.currency.clone(),
            per_hire: b.pricing.per_hire,
            per_hour: b.pricing.per_hour,
            expires_at: b.expires_at,
            handle: crate::agent_ref::handle_of(b),
            reputation: None,
            flagged: false,
        }
    }
}

/// A light node's search in flight.
pub(super) struct PendingSearch {
    req: SearchRequest,
    waiting: HashSet<OutboundRequestId>,
    results: Vec<Signed<Manifest>>,
    reply: Reply<Result<Vec<SearchHit>, NodeError>>,
    deadline: tokio::time::Instant,
}

impl Node {
    pub(super) fn search(
        &mut self,
        mut req: SearchRequest,
        reply: Reply<Result<Vec<SearchHit>, NodeError>>,
    ) {
        req.limit = req.limit.clamp(1, MAX_SEARCH_RESULTS);
        if !self.light {
            let hits = self
                .catalog
                .search(&req, now_ms())
                .iter()
                .map(SearchHit::from_manifest)
                .collect();
            let _ = reply.send(Ok(hits));
            return;
        }
        // Light node: ask up to three connected full nodes, verify and rank their answers.
        let connected: HashSet<PeerId> = self.swarm.connected_peers().copied().collect();
        let mut peers: Vec<PeerId> = self
            .full_peers
            .keys()
            .filter(|p| connected.contains(p))
            .copied()
            .collect();
        if peers.is_empty() {
            peers = self.full_peers.keys().copied().collect();
        }
        peers.sort();
        peers.truncate(3);
        if peers.is_empty() {
            let _ = reply.send(Err(NodeError::NoFullPeer));
            return;
        }
        let id = self.next_search;
        self.next_search += 1;
        let mut waiting = HashSet::new();
        for p in peers {
            let rid = self
                .swarm
                .behaviour_mut()
                .search
                .send_request(&p, req.clone());
            waiting.insert(rid);
            self.search_of.insert(rid, id);
        }
        self.searches.insert(
            id,
            PendingSearch {
                req,
                waiting,
                results: Vec::new(),
                reply,
                deadline: tokio::time::Instant::now() + self.request_timeout,
            },
        );
    }

    fn finish_search(&mut self, id: u64) {
        let Some(p) = self.searches.remove(&id) else {
            return;
        };
        for rid in &p.waiting {
            self.search_of.remove(rid);
        }
        // Rank the merged, verified answers with the same index a full node uses.
        let mut index = Index::new();
        for m in &p.results {
            index.insert(m);
            self.remember(m);
            // Ranked by the figures of the records this light node verified (fetched for
            // earlier searches and cards); an agent it has none for ranks as unknown.
            let b = m.body();
            let (figures, _) = self.outcomes.reputation(
                &b.provider,
                Some(&b.name),
                now_ms(),
                &souk_reputation::Policy::default(),
            );
            if figures.settled > 0 {
                index.set_agent_reputation(
                    b.provider,
                    &b.name,
                    Some(super::ranking::agent_reputation(&figures)),
                );
            }
        }
        let query = Query {
            text: (!p.req.text.trim().is_empty()).then(|| p.req.text.clone()),
            capabilities: p.req.capabilities.clone(),
            max_price: p.req.max_price,
            currency: p.req.currency.clone(),
            provider: None,
            provider_prefix: p.req.provider.clone(),
            limit: p.req.limit as usize,
            min_success: None,
            // The full nodes applied the flag filter the request asked for.
            include_flagged: true,
        };
        let hits = index
            .search(&query, now_ms())
            .iter()
            .map(|h| SearchHit::from_manifest(&h.manifest))
            .collect();
        let _ = p.reply.send(Ok(hits));
    }

    pub(super) fn expire_searches(&mut self) {
        let now = tokio::time::Instant::now();
        let late: Vec<u64> = self
            .searches
            .iter()
            .filter(|(_, s)| s.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in late {
            self.finish_search(id);
        }
    }

    pub(super) fn on_search(&mut self, ev: request_response::Event<SearchRequest, SearchResponse>) {
        match ev {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => {
                    self.metrics.search_served.inc();
                    let manifests = self
                        .catalog
                        .search(&request, now_ms())
                        .iter()
                        .map(|m| m.to_bytes())
                        .collect();
                    let _ = self
                        .swarm
                        .behaviour_mut()
                        .search
                        .send_response(channel, SearchResponse { manifests });
                }
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    let Some(sid) = self.search_of.remove(&request_id) else {
                        return;
                    };
                    let now = now_ms();
                    let mut bad = 0;
                    if let Some(p) = self.searches.get_mut(&sid) {
                        p.waiting.remove(&request_id);
                        for bytes in &response.manifests {
                            match verify_envelope(bytes, now) {
                                Ok(m) => {
                                    if !p.results.iter().any(|r| r.id() == m.id()) {
                                        p.results.push(m);
                                    }
                                }
                                // Expired in transit or clock skew: drop it, no blame.
                                Err(Rejection::Expired | Rejection::NotYetValid) => {}
                                Err(_) => bad += 1,
                            }
                        }
                    }
                    if bad > 0 {
                        for _ in 0..bad {
                            self.metrics.sync_rejected.inc();
                        }
                        self.penalize(peer, "invalid manifest in a search response");
                    }
                    if self
                        .searches
                        .get(&sid)
                        .is_some_and(|p| p.waiting.is_empty())
                    {
                        self.finish_search(sid);
                    }
                }
            },
            request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                tracing::debug!(%peer, "search request failed: {error}");
                let sid = self.search_of.remove(&request_id);
                if let Some((sid, p)) =
                    sid.and_then(|sid| self.searches.get_mut(&sid).map(|p| (sid, p)))
                {
                    p.waiting.remove(&request_id);
                    if p.waiting.is_empty() {
                        self.finish_search(sid);
                    }
                }
            }
            _ => {}
        }
    }
}
