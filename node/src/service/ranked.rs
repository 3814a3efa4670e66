//! Search as users see it: the node's search, each result with its agent's reputation from
//! outcome records this node verified, and the `min_success` filter applied to those
//! figures.

use souk_protocol::discovery::SearchRequest;

use super::handle::{NodeError, NodeHandle};
use super::search::SearchHit;

impl NodeHandle {
    /// Searches, attaches each result's reputation and flag, and keeps only results whose
    /// verified success lower bound is at least `min_success` (an agent without figures
    /// has none: it is left out when a minimum is asked for).
    pub async fn search_ranked(
        &self,
        req: SearchRequest,
        min_success: Option<f64>,
    ) -> Result<Vec<SearchHit>, NodeError> {
        let hits = self.search(req).await?;
        Ok(hits
            .into_iter()
            .filter(|h| {
                min_success.is_none_or(|min| {
                    h.reputation
                        .as_ref()
                        .is_some_and(|r| r.settled > 0 && r.success_lower_bound >= min)
                })
            })
            .collect())
    }
}
