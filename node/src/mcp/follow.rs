//! Waiting for a hire inside a tool call: its receipts are long-polled from the node, every
//! new step becomes an MCP progress notification (when the caller asked for progress), and
//! the wait ends when the hire ends, when its agent asks a question, or when the caller's
//! time is up. The hire itself goes on whatever happens to the call.

use std::time::{Duration, Instant};

use rmcp::model::{ProgressNotificationParam, ProgressToken, RequestMetaObject};
use rmcp::{Peer, RoleServer};
use serde_json::{Value, json};
use souk_protocol::Hash;
use souk_protocol::hire::HireState;
use tokio_util::sync::CancellationToken;

use super::node::{CallError, Node};
use crate::api::client::ClientError;
use crate::hire::{HireRecord, ReceiptsView};

/// Longest single long-poll of the receipts.
const POLL: Duration = Duration::from_secs(20);
/// How long a completed hire's output may trail its `completed` entry.
const OUTPUT_GRACE: Duration = Duration::from_secs(10);
/// Largest output put into a tool result (a model's context is not a file).
const MAX_OUTPUT_IN_RESULT: usize = 256 * 1024;

/// Where progress goes (the caller's progress token, if it sent one), and the caller's
/// cancellation: a canceled call stops waiting at once (the hire goes on).
pub(super) struct Progress {
    pub(super) peer: Peer<RoleServer>,
    pub(super) token: Option<ProgressToken>,
    pub(super) cancel: CancellationToken,
}

impl Progress {
    /// The progress of a tool call: its `_meta` (progress token), its peer and its
    /// cancellation.
    pub(super) fn new(
        meta: &RequestMetaObject,
        peer: Peer<RoleServer>,
        cancel: CancellationToken,
    ) -> Self {
        Self {
            peer,
            token: meta.get_progress_token(),
            cancel,
        }
    }

    pub(super) async fn step(&self, done: u64, message: String) {
        if let Some(token) = &self.token {
            // A lost notification only loses progress, never the hire.
            let _ = self
                .peer
                .notify_progress(
                    ProgressNotificationParam::new(token.clone(), done as f64)
                        .with_message(message),
                )
                .await;
        }
    }
}

/// Follows hire `id` from receipt `from` for at most `wait`; returns its record when it
/// ended, asked a question (an `input-requested` step at or after `from`), or the time was
/// up. From 0, a question still open counts; after an answer, pass the chain's length then,
/// so the answered question does not.
pub(super) async fn follow(
    node: &Node,
    id: Hash,
    from: u64,
    wait: Duration,
    progress: &Progress,
) -> Result<HireRecord, CallError> {
    let until = Instant::now() + wait;
    let mut from = from;
    let mut asked = false;
    loop {
        let left = until.saturating_duration_since(Instant::now());
        let poll = left.min(POLL).as_millis();
        let poll_receipts = node.get::<ReceiptsView>(format!(
            "/v1/hires/{id}/receipts?from={from}&wait_ms={poll}"
        ));
        let view = tokio::select! {
            v = poll_receipts => v?,
            () = progress.cancel.cancelled() => {
                return node.get(format!("/v1/hires/{id}")).await;
            }
        };
        for s in &view.steps {
            from = s.seq + 1;
            asked |= s.kind == "input-requested";
            let summary: String = s.summary.chars().take(200).collect();
            progress
                .step(from, format!("#{} {}: {summary}", s.seq, s.kind))
                .await;
        }
        let r = view.hire;
        if r.follow_done(from) || (asked && r.state == HireState::InputRequired) || left.is_zero() {
            return Ok(r);
        }
    }
}

/// The output of a completed hire (it may trail the `completed` entry by a moment).
pub(super) async fn output(node: &Node, id: Hash) -> Result<Value, CallError> {
    let give_up = Instant::now() + OUTPUT_GRACE;
    let mut pause = Duration::from_millis(20);
    loop {
        match node.get::<Value>(format!("/v1/hires/{id}/output")).await {
            Ok(v) => return Ok(v),
            Err(CallError::Node(ClientError::Api { status: 404, .. }))
                if Instant::now() < give_up =>
            {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(500));
            }
            Err(e) => return Err(e),
        }
    }
}

/// What a tool returns about a hire: its state and terms, the question it waits on, its
/// output once completed, why it failed, and which tool to call next.
pub(super) async fn summary(node: &Node, r: &HireRecord) -> Result<Value, CallError> {
    let id = r.hire_id.to_hex();
    let mut v = json!({
        "hire_id": id,
        "agent": r.agent,
        "manifest_id": r.manifest_id.to_hex(),
        "provider": r.provider.to_string(),
        "role": r.role.as_str(),
        "state": r.state.as_str(),
        "price": crate::agent_file::format_amount(r.price),
        "currency": r.currency,
        "deadline_ms": r.deadline,
        "receipts": r.entries,
    });
    if let Some(q) = &r.question {
        v["question"] = q.clone();
    }
    if let Some(e) = &r.error {
        v["error"] = json!(e);
    }
    if let Some(verdict) = &r.verdict {
        v["verdict"] = json!(verdict.as_str());
    }
    let next = match r.state {
        HireState::Completed if r.error.is_none() => {
            match output(node, r.hire_id).await {
                Ok(o) => {
                    let text = o.to_string();
                    if text.len() > MAX_OUTPUT_IN_RESULT {
                        v["output_truncated"] = json!(format!(
                            "the output is {} bytes: `souk --data-dir DIR hire output {}` prints it",
                            text.len(),
                            &id[..12]
                        ));
                    } else {
                        v["output"] = o;
                    }
                }
                Err(e) => {
                    v["output"] = Value::Null;
                    v["output_missing"] = json!(e.to_string());
                }
            }
            if r.verdict.is_none() {
                "check the output, then accept_hire (or reject_hire with a reason); verify_receipts checks the signed chain"
            } else {
                "settled; verify_receipts checks the signed chain"
            }
        }
        HireState::InputRequired => {
            "the agent asks a question: answer it with answer_question (the answer must match question.answer_schema)"
        }
        s if s.is_terminal() => {
            if r.verdict.is_none() {
                "the hire ended without an output; reject_hire records a dispute, verify_receipts checks the chain"
            } else {
                "settled; verify_receipts checks the signed chain"
            }
        }
        _ if r.closed.is_some() || r.error.is_some() => {
            "the hire was broken off (see error); verify_receipts checks what was received"
        }
        _ => "still running: hire_status waits for it (wait_seconds), cancel_hire stops it",
    };
    v["next"] = json!(next);
    Ok(v)
}
