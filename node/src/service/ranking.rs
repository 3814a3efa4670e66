//! What verified outcome records and equivocation proofs change outside the records
//! themselves: each agent's rank in search (from its handle's figures,
//! spec/reputation.md), flagged providers hidden from default searches, and the client
//! hires of a flagged provider ended.

use souk_index::AgentReputation;
use souk_protocol::NodeId;
use souk_reputation::{Figures, Policy};

use super::Node;
use crate::now_ms;

/// An agent's rank from its figures: the verified success rate smoothed with one success
/// and one failure, `(successes + 1) / (votes + 2)` (0.5 with no votes, like an unknown
/// agent), and its Wilson lower bound for the `min_success` filter.
pub(super) fn agent_reputation(f: &Figures) -> AgentReputation {
    AgentReputation {
        rank: (f.successes as f64 + 1.0) / (f.counted as f64 + 2.0),
        success_lower_bound: f.success_lower_bound,
    }
}

impl Node {
    /// Recomputes one agent's rank from the records held for its handle.
    pub(super) fn rerank(&mut self, provider: NodeId, name: &str) {
        let (figures, _) =
            self.outcomes
                .reputation(&provider, Some(name), now_ms(), &Policy::default());
        self.catalog
            .set_agent_reputation(provider, name, Some(agent_reputation(&figures)));
    }

    /// Re-ranks the agents whose records changed since the last call.
    pub(super) fn rerank_changed(&mut self) {
        for (provider, name) in std::mem::take(&mut self.unranked) {
            self.rerank(provider, &name);
        }
    }

    /// Ranks every agent with records, hides every flagged provider and ends this node's
    /// unfinished hires with them (at start).
    pub(super) fn rank_all(&mut self) {
        for (provider, name) in self.outcomes.handles() {
            self.rerank(provider, &name);
        }
        for (provider, _) in self.outcomes.flagged() {
            self.on_provider_flagged(provider);
        }
    }

    /// A provider was just flagged: hide its agents, and end every unfinished client hire
    /// this node has with it (the proof is kept with each).
    pub(super) fn on_provider_flagged(&mut self, provider: NodeId) {
        self.catalog.set_flagged(provider);
        let Some((bytes, _)) = self.outcomes.proof(provider.as_bytes()) else {
            return;
        };
        let proof = bytes.to_vec();
        let ops = self.hire_ops.clone();
        // The actor answers after store writes: never wait for it in the loop.
        tokio::spawn(async move {
            match ops.provider_equivocated(provider, proof).await {
                Ok(0) => {}
                Ok(n) => tracing::warn!(%provider, "{n} hire(s) ended: their provider is flagged"),
                Err(e) => {
                    tracing::warn!(%provider, "cannot end the hires of a flagged provider: {e}")
                }
            }
        });
    }
}
