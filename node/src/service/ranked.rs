//! Search as users see it: the node's search, each result with its agent's reputation from
//! outcome records this node verified, and the `min_success` filter applied to those
//! figures.

use std::collections::HashMap;

use souk_protocol::NodeId;
use souk_protocol::discovery::{MAX_SEARCH_RESULTS, SearchRequest};
use souk_protocol::manifest::Manifest;
use souk_protocol::signed::Signed;
use souk_reputation::Policy;

use super::handle::{NodeError, NodeHandle};
use super::search::{HitReputation, SearchHit};
use crate::card::{AgentCard, CardFlag, CardOutcome, CardReputation};

impl NodeHandle {
    /// Searches, attaches each result's reputation and flag, and keeps only results whose
    /// verified success lower bound is at least `min_success` (an agent without figures
    /// has none: it is left out when a minimum is asked for).
    pub async fn search_ranked(
        &self,
        req: SearchRequest,
        min_success: Option<f64>,
    ) -> Result<Vec<SearchHit>, NodeError> {
        // The minimum filters on verified figures, after ranking: ask for the most results a
        // search serves, so agents that meet it but rank below `limit` are not cut first.
        let limit = req.limit.clamp(1, MAX_SEARCH_RESULTS) as usize;
        let mut req = req;
        if min_success.is_some() {
            req.limit = MAX_SEARCH_RESULTS;
        }
        let mut hits = self.search(req).await?;
        self.attach_reputation(&mut hits).await;
        let hits: Vec<SearchHit> = hits
            .into_iter()
            .filter(|h| {
                min_success.is_none_or(|min| {
                    h.reputation
                        .as_ref()
                        .is_some_and(|r| r.settled > 0 && r.success_lower_bound >= min)
                })
            })
            .take(limit)
            .collect();
        Ok(hits)
    }

    /// Fills each hit's reputation and flag from verified records. A light node first
    /// fetches the records of each provider in the results from a full peer and verifies
    /// them itself (a provider whose records cannot be fetched keeps `reputation: null`).
    async fn attach_reputation(&self, hits: &mut [SearchHit]) {
        let mut providers: Vec<NodeId> = hits
            .iter()
            .filter_map(|h| h.provider.parse::<NodeId>().ok())
            .collect();
        providers.sort();
        providers.dedup();
        let mut known = HashMap::new();
        let fetches = providers.iter().map(|p| async move {
            let ok = !self.light || self.fetch_outcomes(*p).await.is_ok();
            (*p, ok)
        });
        for (p, ok) in futures::future::join_all(fetches).await {
            known.insert(p, ok);
        }
        for h in hits.iter_mut() {
            let Ok(provider) = h.provider.parse::<NodeId>() else {
                continue;
            };
            if !known.get(&provider).copied().unwrap_or(false) {
                continue;
            }
            if let Ok((figures, _)) = self
                .reputation(provider, Some(h.name.clone()), Policy::default())
                .await
            {
                h.reputation = Some(HitReputation::from(&figures));
            }
            h.flagged = self.is_flagged(provider).await.unwrap_or(false);
        }
    }

    /// An agent's card with its reputation (agent, provider, latest outcomes) and flag, from
    /// records this node verified (a light node fetches its provider's records first).
    pub async fn agent_card(&self, manifest: &Signed<Manifest>) -> AgentCard {
        let mut card = AgentCard::from_manifest(manifest);
        let provider = manifest.body().provider;
        let fetched = !self.light || self.fetch_outcomes(provider).await.is_ok();
        if fetched {
            let name = manifest.body().name.clone();
            let agent = self
                .reputation(provider, Some(name), Policy::default())
                .await;
            let all = self.reputation(provider, None, Policy::default()).await;
            if let (Ok((figures, last)), Ok((provider_figures, _))) = (agent, all) {
                card.reputation = Some(CardReputation {
                    figures,
                    provider: provider_figures,
                    last: last.iter().map(CardOutcome::from).collect(),
                });
            }
        }
        if let Ok(flagged) = self.flagged().await {
            card.flagged = flagged
                .iter()
                .find(|(p, _)| *p == provider)
                .map(|(_, e)| CardFlag::from(e));
        }
        card
    }
}
