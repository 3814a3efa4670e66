//! The MCP tools: find agents (`search_agents`, `show_agent`), hire one and follow it
//! (`hire_agent`, `hire_status`, `answer_question`, `cancel_hire`), settle it (`accept_hire`,
//! `reject_hire`) and audit it (`verify_receipts`). Each maps onto the node's local API as
//! the CLI command of the same purpose does; a refused or failed call is a tool error whose
//! text says what went wrong and what to do.

use std::time::Duration;

use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, RequestMetaObject};
use rmcp::{Peer, RoleServer, schemars, tool, tool_router};
use serde::Deserialize;
use serde_json::{Value, json};
use souk_protocol::hire::HireState;
use souk_protocol::verify::{SignatureCheck, verify_bundle_bytes};
use tokio_util::sync::CancellationToken;

use super::follow::{self, Progress};
use super::node::CallError;
use super::server::SoukMcp;
use crate::agent_file::parse_amount;
use crate::agent_ref::AgentRef;
use crate::api::client::query_encode;
use crate::hire::{HireRecord, NewHire};

/// How long `hire_agent` and `answer_question` wait by default before they return a hire
/// that is still running.
const DEFAULT_WAIT_SECS: u64 = 20;
/// The longest wait a call may ask for.
const MAX_WAIT_SECS: u64 = 600;

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub(super) struct SearchParams {
    /// Words to look for in names, descriptions, capabilities and tools (prefixes match:
    /// "summar" finds "Summarizes"). Empty: every agent.
    #[serde(default)]
    query: String,
    /// Capability tags the agent must all have, e.g. ["csv"].
    #[serde(default)]
    capabilities: Vec<String>,
    /// Highest price per hire, as a decimal in the agent's currency, e.g. "2.50".
    max_price: Option<String>,
    /// Only agents whose verified success lower bound is at least this (0 to 1).
    min_success: Option<f64>,
    /// Most results (default 10, at most 100).
    limit: Option<u32>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub(super) struct AgentParams {
    /// The agent: its handle `<provider node id>/<name>` as search_agents returns it, or its
    /// manifest id (or a unique prefix of at least 8 hex digits).
    agent: String,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub(super) struct HireParams {
    /// The agent: its handle `<provider node id>/<name>`, or its manifest id (or a unique
    /// prefix of at least 8 hex digits).
    agent: String,
    /// The job input: JSON matching the agent's input schema (show_agent shows it).
    input: Value,
    /// Highest price accepted, as a decimal in the agent's currency (default: what the
    /// agent's pricing charges for the deadline window). Advisory: no money moves.
    max_price: Option<String>,
    /// How long the work may take, e.g. "90s", "10m", "2h" (default: the agent's maximum).
    deadline: Option<String>,
    /// How long this call waits for the hire to end or ask a question before it returns
    /// the hire still running (default 20, at most 600; 0 returns at once). Keep it under
    /// your client's request timeout; hire_status waits again.
    wait_seconds: Option<u64>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub(super) struct StatusParams {
    /// The hire id (or a unique prefix of at least 6 hex digits).
    hire: String,
    /// How long to wait for the hire to end or ask a question (default 0: answer at once;
    /// at most 600).
    wait_seconds: Option<u64>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub(super) struct AnswerParams {
    /// The hire id (or a unique prefix of at least 6 hex digits).
    hire: String,
    /// The answer: JSON matching the question's answer_schema.
    answer: Value,
    /// How long to wait afterwards for the hire to end or ask again (default 20, at most
    /// 600).
    wait_seconds: Option<u64>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub(super) struct ReasonParams {
    /// The hire id (or a unique prefix of at least 6 hex digits).
    hire: String,
    /// Why (kept in the signed record; required to reject).
    #[serde(default)]
    reason: String,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub(super) struct HireRefParams {
    /// The hire id (or a unique prefix of at least 6 hex digits).
    hire: String,
}

/// A tool's answer: structured JSON, or a tool error whose text the model reads.
fn answer(r: Result<Value, CallError>) -> CallToolResult {
    match r {
        Ok(v) => CallToolResult::structured(v),
        Err(e) => {
            let mut body = json!({ "error": e.to_string() });
            if let CallError::Node(c) = &e
                && let Some(code) = c.code()
                && !code.is_empty()
            {
                body["code"] = json!(code);
            }
            CallToolResult::structured_error(body)
        }
    }
}

fn wait(secs: Option<u64>, default: u64) -> Duration {
    Duration::from_secs(secs.unwrap_or(default).min(MAX_WAIT_SECS))
}

fn amount(field: &str, text: &Option<String>) -> Result<Option<u64>, CallError> {
    text.as_deref()
        .map(|p| {
            parse_amount(p).ok_or_else(|| {
                CallError::Invalid(format!("{field} {p:?} is not a decimal amount (e.g. 2.50)"))
            })
        })
        .transpose()
}

/// The API path of an agent card.
fn agent_path(agent: &str) -> Result<String, CallError> {
    match agent.parse::<AgentRef>() {
        Ok(AgentRef::Handle { provider, name }) => Ok(format!("/v1/agents/{provider}/{name}")),
        Ok(r) => Ok(format!("/v1/agents/{r}")),
        Err(e) => Err(CallError::Invalid(e.to_string())),
    }
}

#[tool_router(vis = "pub(super)")]
impl SoukMcp {
    /// search_agents
    #[tool(
        description = "Search the Souk network for agents to hire. Returns each agent's handle (use it to hire), price, capabilities, description and verified reputation (success lower bound from signed outcome records, not stars).",
        annotations(read_only_hint = true, open_world_hint = true)
    )]
    async fn search_agents(&self, Parameters(p): Parameters<SearchParams>) -> CallToolResult {
        answer(self.search(p).await)
    }

    /// show_agent
    #[tool(
        description = "Show an agent's card: description, capabilities, input and output JSON schemas, pricing, limits, the hosts it may reach, credential slots, provider, liveness and verified reputation with its last outcomes.",
        annotations(read_only_hint = true, open_world_hint = true)
    )]
    async fn show_agent(&self, Parameters(p): Parameters<AgentParams>) -> CallToolResult {
        answer(
            async {
                let card: Value = self.node.get(agent_path(&p.agent)?).await?;
                Ok(card)
            }
            .await,
        )
    }

    /// hire_agent
    #[tool(
        description = "Hire an agent: negotiate with its provider, start the job and wait (wait_seconds) until it ends or asks a question. Returns the hire id, its state, and the output when it completed; a question must be answered with answer_question. Every step is a signed receipt (verify_receipts).",
        annotations(destructive_hint = false, open_world_hint = true)
    )]
    async fn hire_agent(
        &self,
        Parameters(p): Parameters<HireParams>,
        meta: RequestMetaObject,
        peer: Peer<RoleServer>,
        cancel: CancellationToken,
    ) -> CallToolResult {
        let progress = Progress::new(&meta, peer, cancel);
        answer(self.hire(p, &progress).await)
    }

    /// list_hires
    #[tool(
        description = "The hires this node made (newest first): hire id, agent, state, price, receipts, verdict.",
        annotations(read_only_hint = true)
    )]
    async fn list_hires(&self) -> CallToolResult {
        answer(
            async {
                let hires = self.node.client_hires().await?;
                let list: Vec<Value> = hires
                    .iter()
                    .take(100)
                    .map(|h| {
                        json!({
                            "hire_id": h.hire_id.to_hex(),
                            "agent": h.agent,
                            "state": h.state.as_str(),
                            "price": crate::agent_file::format_amount(h.price),
                            "currency": h.currency,
                            "receipts": h.entries,
                            "verdict": h.verdict.map(|v| v.as_str()),
                            "created_at_ms": h.created_at,
                        })
                    })
                    .collect();
                Ok(json!({ "hires": list, "total": hires.len() }))
            }
            .await,
        )
    }

    /// hire_status
    #[tool(
        description = "A hire's state, question, output (once completed) or error. With wait_seconds, first waits for it to end or ask a question.",
        annotations(read_only_hint = true)
    )]
    async fn hire_status(
        &self,
        Parameters(p): Parameters<StatusParams>,
        meta: RequestMetaObject,
        peer: Peer<RoleServer>,
        cancel: CancellationToken,
    ) -> CallToolResult {
        let progress = Progress::new(&meta, peer, cancel);
        answer(
            async {
                let r = self.node.client_hire(&p.hire).await?;
                let r = match wait(p.wait_seconds, 0) {
                    d if d.is_zero() => r,
                    d => follow::follow(&self.node, r.hire_id, 0, d, &progress).await?,
                };
                follow::summary(&self.node, &r).await
            }
            .await,
        )
    }

    /// answer_question
    #[tool(
        description = "Answer the question a hired agent asked (state input-required); the answer must match the question's answer_schema. Then waits (wait_seconds) for the hire to end or ask again.",
        annotations(destructive_hint = false)
    )]
    async fn answer_question(
        &self,
        Parameters(p): Parameters<AnswerParams>,
        meta: RequestMetaObject,
        peer: Peer<RoleServer>,
        cancel: CancellationToken,
    ) -> CallToolResult {
        let progress = Progress::new(&meta, peer, cancel);
        answer(
            async {
                let before = self.node.client_hire(&p.hire).await?;
                let id = before.hire_id;
                let _: Value = self
                    .node
                    .post(
                        format!("/v1/hires/{id}/answer"),
                        json!({ "answer": p.answer }),
                    )
                    .await?;
                // Only a question asked after this answer ends the wait.
                let r = follow::follow(
                    &self.node,
                    id,
                    before.entries,
                    wait(p.wait_seconds, DEFAULT_WAIT_SECS),
                    &progress,
                )
                .await?;
                let mut v = follow::summary(&self.node, &r).await?;
                if r.entries <= before.entries {
                    // The answer is not in the receipts yet: the question shown is answered.
                    if let Some(o) = v.as_object_mut() {
                        o.remove("question");
                    }
                    v["next"] =
                        json!("answer sent; hire_status with wait_seconds follows the hire");
                }
                Ok(v)
            }
            .await,
        )
    }

    /// cancel_hire
    #[tool(
        description = "Cancel a running hire. The provider stops the agent and signs the cancellation into the receipts.",
        annotations(destructive_hint = true, idempotent_hint = true)
    )]
    async fn cancel_hire(&self, Parameters(p): Parameters<ReasonParams>) -> CallToolResult {
        answer(
            async {
                let id = self.node.client_hire(&p.hire).await?.hire_id;
                let _: Value = self
                    .node
                    .post(
                        format!("/v1/hires/{id}/cancel"),
                        json!({ "reason": p.reason }),
                    )
                    .await?;
                Ok(json!({
                    "hire_id": id.to_hex(),
                    "canceling": true,
                    "next": "hire_status with wait_seconds shows when it stopped",
                }))
            }
            .await,
        )
    }

    /// accept_hire
    #[tool(
        description = "Accept a completed hire: countersign its receipts with the verdict accepted. The signed outcome counts toward the agent's public verified reputation.",
        annotations(destructive_hint = false, idempotent_hint = true)
    )]
    async fn accept_hire(&self, Parameters(p): Parameters<ReasonParams>) -> CallToolResult {
        answer(self.settle(p, "accept").await)
    }

    /// reject_hire
    #[tool(
        description = "Dispute a finished hire: countersign its receipts with the verdict disputed and a reason. The signed outcome counts against the agent's public verified reputation.",
        annotations(destructive_hint = false, idempotent_hint = true)
    )]
    async fn reject_hire(&self, Parameters(p): Parameters<ReasonParams>) -> CallToolResult {
        if p.reason.trim().is_empty() {
            return answer(Err(CallError::Invalid("a dispute needs a reason".into())));
        }
        answer(self.settle(p, "reject").await)
    }

    /// verify_receipts
    #[tool(
        description = "Verify a hire's receipts offline: the manifest, the contract, every hash-chained signed receipt, the client's countersignature and disclosed payloads. Returns valid with the chain's facts, or the spec rule that failed.",
        annotations(read_only_hint = true)
    )]
    async fn verify_receipts(&self, Parameters(p): Parameters<HireRefParams>) -> CallToolResult {
        answer(
            async {
                let id = self.node.client_hire(&p.hire).await?.hire_id;
                let bytes = self
                    .node
                    .get_bytes(format!("/v1/hires/{id}/bundle"))
                    .await?;
                let verdict = tokio::task::spawn_blocking(move || {
                    verify_bundle_bytes(&bytes, SignatureCheck::Batch)
                })
                .await
                .map_err(|_| CallError::Interrupted)?;
                Ok(match verdict {
                    Ok(r) => json!({
                        "valid": true,
                        "hire_id": r.hire_id.to_string(),
                        "agent": r.agent,
                        "manifest_id": r.manifest_id.to_hex(),
                        "provider": r.provider.to_string(),
                        "client": r.client.to_string(),
                        "entries": r.entries,
                        "state": r.state.as_str(),
                        "head": r.head.map(|h| h.to_hex()),
                        "verdict": r.verdict.map(|v| v.as_str()),
                        "disclosures": r.disclosures,
                        "network_calls": r.network.calls,
                    }),
                    Err(v) => json!({
                        "valid": false,
                        "rule": v.rule.to_string(),
                        "reason": v.to_string(),
                    }),
                })
            }
            .await,
        )
    }
}

impl SoukMcp {
    async fn search(&self, p: SearchParams) -> Result<Value, CallError> {
        let limit = p.limit.unwrap_or(10).clamp(1, 100);
        let mut q = format!("/v1/search?limit={limit}");
        if !p.query.trim().is_empty() {
            q.push_str(&format!("&q={}", query_encode(p.query.trim())));
        }
        if !p.capabilities.is_empty() {
            q.push_str(&format!(
                "&capabilities={}",
                query_encode(&p.capabilities.join(","))
            ));
        }
        if let Some(price) = &p.max_price {
            amount("max_price", &p.max_price)?;
            q.push_str(&format!("&max_price={}", query_encode(price)));
        }
        if let Some(s) = p.min_success {
            if !(0.0..=1.0).contains(&s) {
                return Err(CallError::Invalid(format!(
                    "min_success {s} is not between 0 and 1"
                )));
            }
            q.push_str(&format!("&min_success={s}"));
        }
        let hits: Value = self.node.get(q).await?;
        Ok(json!({ "agents": hits }))
    }

    async fn hire(&self, p: HireParams, progress: &Progress) -> Result<Value, CallError> {
        let max_price = amount("max_price", &p.max_price)?;
        let deadline_ms = p
            .deadline
            .as_deref()
            .map(|d| {
                humantime::parse_duration(d)
                    .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
                    .map_err(|e| {
                        CallError::Invalid(format!(
                            "deadline {d:?} is not a duration (e.g. 90s, 10m, 2h): {e}"
                        ))
                    })
            })
            .transpose()?;
        let new = NewHire {
            manifest_id: p.agent.trim().to_owned(),
            input: p.input,
            max_price,
            deadline_ms,
            credentials: Vec::new(),
            retry_busy_ms: None,
        };
        let r: HireRecord = self.node.post("/v1/hires".into(), new).await?;
        progress
            .step(0, format!("hired: hire_id {}", r.hire_id))
            .await;
        let wait = wait(p.wait_seconds, DEFAULT_WAIT_SECS);
        // From here on the hire exists: nothing may lose its id.
        let (r, follow_error) = if wait.is_zero() || r.state.is_terminal() {
            (r, None)
        } else {
            match follow::follow(&self.node, r.hire_id, 0, wait, progress).await {
                Ok(r) => (r, None),
                Err(e) => (r, Some(e.to_string())),
            }
        };
        let mut v = follow::summary(&self.node, &r).await?;
        if let Some(e) = follow_error {
            v["follow_error"] = json!(e);
            v["next"] = json!("the hire was made; hire_status follows it");
        }
        Ok(v)
    }

    async fn settle(&self, p: ReasonParams, how: &str) -> Result<Value, CallError> {
        let id = self.node.client_hire(&p.hire).await?.hire_id;
        let r: HireRecord = self
            .node
            .post(
                format!("/v1/hires/{id}/{how}"),
                json!({ "reason": p.reason }),
            )
            .await?;
        let mut v = json!({
            "hire_id": id.to_hex(),
            "state": r.state.as_str(),
            "verdict": r.verdict.map(|v| v.as_str()),
        });
        if r.state == HireState::Completed || r.verdict.is_some() {
            v["next"] = json!("verify_receipts checks the countersigned chain");
        }
        Ok(v)
    }
}
