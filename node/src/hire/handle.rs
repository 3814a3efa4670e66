//! [`HireOps`]: the local API's handle on the hire actor. Each method sends one operation to
//! the actor's inbox and waits for its answer; nothing here touches a hire directly.

use serde_json::Value;
use souk_protocol::Hash;
use souk_protocol::hire::Verdict;
use tokio::sync::{mpsc, oneshot};

use super::error::HireError;
use super::msg::{ApiOp, Msg, Reply};
use super::record::HireRecord;
use super::view::{NewHire, ReceiptsView, WorkdirView};

/// The API's handle on the hire actor. Cheap to clone.
#[derive(Clone, Debug)]
pub struct HireOps {
    tx: mpsc::Sender<Msg>,
}

impl HireOps {
    pub(crate) fn new(tx: mpsc::Sender<Msg>) -> Self {
        HireOps { tx }
    }

    async fn ask<T>(&self, make: impl FnOnce(Reply<T>) -> ApiOp) -> Result<T, HireError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Msg::Api(make(tx)))
            .await
            .map_err(|_| HireError::Stopped)?;
        rx.await.map_err(|_| HireError::Stopped)
    }

    /// Negotiates and, if the terms are acceptable, forms a contract and starts following.
    pub async fn create(&self, new: NewHire) -> Result<HireRecord, HireError> {
        self.ask(|r| ApiOp::Create(new, r)).await?
    }
    /// Every hire, newest first.
    pub async fn list(&self) -> Result<Vec<HireRecord>, HireError> {
        self.ask(ApiOp::List).await
    }
    /// One hire.
    pub async fn get(&self, id: Hash) -> Result<Option<HireRecord>, HireError> {
        self.ask(|r| ApiOp::Get(id, r)).await
    }
    /// Receipts from `from`, waiting up to `wait_ms` (at most 60 s) for new ones.
    pub async fn receipts(
        &self,
        id: Hash,
        from: u64,
        wait_ms: u64,
    ) -> Result<ReceiptsView, HireError> {
        self.ask(|reply| ApiOp::Receipts {
            id,
            from,
            wait_ms,
            reply,
        })
        .await?
    }
    /// Answers the agent's question.
    pub async fn answer(&self, id: Hash, answer: Value) -> Result<(), HireError> {
        self.ask(|r| ApiOp::Answer(id, answer, r)).await?
    }
    /// Cancels the hire (either side).
    pub async fn cancel(&self, id: Hash, reason: String) -> Result<(), HireError> {
        self.ask(|r| ApiOp::Cancel(id, reason, r)).await?
    }
    /// Settles a finished hire: countersigns its head with a verdict.
    pub async fn settle(
        &self,
        id: Hash,
        verdict: Verdict,
        reason: String,
    ) -> Result<HireRecord, HireError> {
        self.ask(|r| ApiOp::Settle(id, verdict, reason, r)).await?
    }
    /// The receipt bundle (`souk verify` format); `disclose` opens every held payload.
    pub async fn bundle(&self, id: Hash, disclose: bool) -> Result<Vec<u8>, HireError> {
        self.ask(|r| ApiOp::Bundle(id, disclose, r)).await?
    }
    /// The job output, once completed.
    pub async fn output(&self, id: Hash) -> Result<Option<Value>, HireError> {
        self.ask(|r| ApiOp::Output(id, r)).await?
    }

    /// Ends every unfinished client hire with `provider`, because the node admitted an
    /// equivocation proof (canonical bytes) against it; the proof is kept with each hire.
    /// Returns how many hires were ended.
    pub async fn provider_equivocated(
        &self,
        provider: souk_protocol::NodeId,
        proof: Vec<u8>,
    ) -> Result<usize, HireError> {
        self.ask(|reply| ApiOp::Equivocated {
            provider,
            proof,
            reply,
        })
        .await?
    }

    /// Where a provider hire's working directory is, and whether it still exists.
    pub async fn workdir(&self, id: Hash) -> Result<WorkdirView, HireError> {
        self.ask(|r| ApiOp::Workdir(id, r)).await?
    }

    /// Pauses every job and follower (they resume on the next start) and stops the actor.
    pub async fn shutdown(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Msg::Shutdown(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }
}
