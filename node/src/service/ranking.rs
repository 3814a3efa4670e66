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

    /// Ranks every agent with records and hides every flagged provider (at start).
    pub(super) fn rank_all(&mut self) {
        for (provider, name) in self.outcomes.handles() {
            self.rerank(provider, &name);
        }
        for (provider, _) in self.outcomes.flagged() {
            self.catalog.set_flagged(provider);
        }
    }

    /// A provider was just flagged: hide its agents, and end this node's client hire named
    /// by the proof (the hire actor ignores it when the hire is not ours or has ended).
    pub(super) fn on_provider_flagged(&mut self, provider: NodeId) {
        self.catalog.set_flagged(provider);
        let Some((bytes, e)) = self.outcomes.proof(provider.as_bytes()) else {
            return;
        };
        let (hire_id, proof) = (e.hire_id, bytes.to_vec());
        let ops = self.hire_ops.clone();
        // The actor answers after a store write: never wait for it in the loop.
        tokio::spawn(async move {
            match ops.provider_equivocated(hire_id, proof).await {
                Ok(true) => {
                    tracing::warn!(hire = %hire_id.short(), "hire ended: its provider is flagged")
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(hire = %hire_id.short(), "cannot end the hire of a flagged provider: {e}")
                }
            }
        });
    }
}
