//! The A2A methods on the node: `message/send` (hire an agent, or answer a task's question),
//! `tasks/get`, `tasks/cancel`, and what `message/stream` shares with them (starting or
//! answering, reading receipts, a task with its artifacts).

use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};
use souk_protocol::Hash;
use souk_protocol::hire::HireState;

use super::Gateway;
use super::rpc::{
    INTERNAL_ERROR, INVALID_PARAMS, METHOD_NOT_FOUND, PUSH_NOT_SUPPORTED, RpcError,
    TASK_NOT_CANCELABLE, TASK_NOT_FOUND, UNSUPPORTED_OPERATION,
};
use super::task;
use crate::api::async_client::AsyncCallError;
use crate::api::client::ClientError;
use crate::hire::{HireRecord, NewHire, ReceiptsView, Role};

/// Longest single long-poll of the receipts.
const POLL: Duration = Duration::from_secs(20);
/// How long `tasks/cancel` waits for the provider to confirm.
const CANCEL_WAIT: Duration = Duration::from_secs(10);
/// How long a completed hire's output may trail its `completed` entry.
const OUTPUT_GRACE: Duration = Duration::from_secs(10);

/// Which URL a request came to.
#[derive(Debug, Clone)]
pub(super) enum Endpoint {
    /// `POST /`: a new task names its agent in `metadata.souk.agent`.
    Gateway,
    /// `POST /agents/<handle>`.
    Agent(String),
}

/// A started (or answered) task: the hire now and the receipt seq to follow from.
pub(super) struct Started {
    pub(super) hire: HireRecord,
    pub(super) from: u64,
    pub(super) blocking: bool,
}

/// An API failure as a JSON-RPC error; `missing` is the error of a 404.
fn node_error(e: AsyncCallError, missing: i64) -> RpcError {
    match e {
        AsyncCallError::Node(ClientError::Api { status, body }) => match status {
            404 => RpcError::new(missing, body.error),
            400 | 409 | 413 | 422 => RpcError::params(body.error),
            _ => RpcError::new(INTERNAL_ERROR, body.error),
        },
        other => RpcError::new(INTERNAL_ERROR, other.to_string()),
    }
}

fn object<'a>(v: &'a Value, what: &str) -> Result<&'a Map<String, Value>, RpcError> {
    v.as_object()
        .ok_or_else(|| RpcError::params(format!("{what} must be an object")))
}

/// `metadata.souk` of the message, else of the params.
fn souk_meta<'a>(
    params: &'a Map<String, Value>,
    message: &'a Map<String, Value>,
) -> Option<&'a Value> {
    message
        .get("metadata")
        .and_then(|m| m.get("souk"))
        .or_else(|| params.get("metadata").and_then(|m| m.get("souk")))
}

fn parse_deadline(v: Option<&Value>) -> Result<Option<u64>, RpcError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(d)) => humantime::parse_duration(d)
            .map(|d| Some(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)))
            .map_err(|e| {
                RpcError::params(format!(
                    "metadata.souk.deadline {d:?} is not a duration (e.g. 90s, 10m): {e}"
                ))
            }),
        Some(_) => Err(RpcError::params(
            "metadata.souk.deadline is a duration string (e.g. \"10m\")",
        )),
    }
}

fn parse_price(v: Option<&Value>) -> Result<Option<u64>, RpcError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(p)) => crate::agent_file::parse_amount(p).map(Some).ok_or_else(|| {
            RpcError::params(format!(
                "metadata.souk.max_price {p:?} is not a decimal amount (e.g. \"0.05\")"
            ))
        }),
        Some(_) => Err(RpcError::params(
            "metadata.souk.max_price is a decimal string (e.g. \"0.05\")",
        )),
    }
}

impl Gateway {
    /// Answers a non-streaming method.
    pub(super) async fn call(
        &self,
        endpoint: &Endpoint,
        method: &str,
        params: &Value,
    ) -> Result<Value, RpcError> {
        match method {
            "message/send" => {
                let s = self.start(endpoint, params).await?;
                let r = if s.blocking && !task::is_final(&s.hire) {
                    self.wait(s.hire.hire_id, s.from, self.max_wait, true)
                        .await?
                } else {
                    s.hire
                };
                self.task_now(&r).await
            }
            "tasks/get" => {
                let r = self.task_param(params).await?;
                self.task_now(&r).await
            }
            "tasks/cancel" => self.cancel(params).await,
            "tasks/pushNotificationConfig/set"
            | "tasks/pushNotificationConfig/get"
            | "tasks/pushNotificationConfig/list"
            | "tasks/pushNotificationConfig/delete" => Err(RpcError::new(
                PUSH_NOT_SUPPORTED,
                "push notifications are not supported: use message/stream or tasks/get",
            )),
            "tasks/resubscribe" | "agent/getAuthenticatedExtendedCard" => Err(RpcError::new(
                UNSUPPORTED_OPERATION,
                format!("{method} is not supported: poll with tasks/get"),
            )),
            _ => Err(RpcError::new(
                METHOD_NOT_FOUND,
                format!("unknown method {method:?}"),
            )),
        }
    }

    /// `message/send` and `message/stream` up to the hire: a new hire, or the answer to the
    /// question of the task the message names.
    pub(super) async fn start(
        &self,
        endpoint: &Endpoint,
        params: &Value,
    ) -> Result<Started, RpcError> {
        let params = object(params, "params")?;
        let message = object(
            params
                .get("message")
                .ok_or_else(|| RpcError::params("params.message is missing"))?,
            "params.message",
        )?;
        if message.get("role").and_then(Value::as_str) != Some("user") {
            return Err(RpcError::params("message.role must be \"user\""));
        }
        let blocking = params
            .get("configuration")
            .and_then(|c| c.get("blocking"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        if params
            .get("configuration")
            .and_then(|c| c.get("pushNotificationConfig"))
            .is_some_and(|p| !p.is_null())
        {
            return Err(RpcError::new(
                PUSH_NOT_SUPPORTED,
                "push notifications are not supported: use message/stream or tasks/get",
            ));
        }
        let input = task::input_of(message)?;
        if let Some(id) = message.get("taskId").and_then(Value::as_str) {
            let before = self.client_hire(id).await?;
            if task::is_final(&before) {
                return Err(RpcError::new(
                    UNSUPPORTED_OPERATION,
                    format!(
                        "task {id} ended ({}): start a new task",
                        task::state(&before)
                    ),
                ));
            }
            if before.state != HireState::InputRequired {
                return Err(RpcError::params(format!(
                    "task {id} is {} and does not wait for input",
                    task::state(&before)
                )));
            }
            let hid = before.hire_id;
            let _: Value = self
                .api
                .post(
                    format!("/v1/hires/{hid}/answer"),
                    json!({ "answer": input }),
                )
                .await
                .map_err(|e| node_error(e, TASK_NOT_FOUND))?;
            let hire = self.hire(hid).await?;
            return Ok(Started {
                hire,
                from: before.entries,
                blocking,
            });
        }
        let meta = souk_meta(params, message);
        let agent = match endpoint {
            Endpoint::Agent(handle) => handle.clone(),
            Endpoint::Gateway => meta
                .and_then(|m| m.get("agent"))
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| {
                    RpcError::params(
                        "name the agent in metadata.souk.agent (a skill id of the gateway's card), or send to the agent's own URL",
                    )
                })?,
        };
        let new = NewHire {
            manifest_id: agent,
            input,
            max_price: parse_price(meta.and_then(|m| m.get("max_price")))?,
            deadline_ms: parse_deadline(meta.and_then(|m| m.get("deadline")))?,
            credentials: Vec::new(),
            retry_busy_ms: None,
        };
        let hire: HireRecord = self
            .api
            .post("/v1/hires".into(), new)
            .await
            .map_err(|e| node_error(e, INVALID_PARAMS))?;
        if let Some(c) = message.get("contextId").and_then(Value::as_str)
            && !c.is_empty()
            && c.len() <= 256
        {
            self.set_context(hire.hire_id, c.to_owned());
        }
        tracing::info!(hire = %hire.hire_id.short(), agent = %hire.agent, "a2a: hired");
        Ok(Started {
            hire,
            from: 0,
            blocking,
        })
    }

    /// The hire `id` now.
    pub(super) async fn hire(&self, id: Hash) -> Result<HireRecord, RpcError> {
        self.api
            .get(format!("/v1/hires/{id}"))
            .await
            .map_err(|e| node_error(e, TASK_NOT_FOUND))
    }

    /// A task id given by a client: one of this node's client hires. Hires it runs as a
    /// provider (other clients' work) are not reachable through the gateway.
    async fn client_hire(&self, id: &str) -> Result<HireRecord, RpcError> {
        let not_found = || RpcError::new(TASK_NOT_FOUND, format!("no task {id:?}"));
        let hash = Hash::from_hex(&id.to_ascii_lowercase()).ok_or_else(not_found)?;
        let r = self.hire(hash).await?;
        if r.role != Role::Client {
            return Err(not_found());
        }
        Ok(r)
    }

    async fn task_param(&self, params: &Value) -> Result<HireRecord, RpcError> {
        let id = object(params, "params")?
            .get("id")
            .and_then(Value::as_str)
            .ok_or_else(|| RpcError::params("params.id (the task id) is missing"))?;
        self.client_hire(id).await
    }

    async fn cancel(&self, params: &Value) -> Result<Value, RpcError> {
        let r = self.task_param(params).await?;
        if task::is_final(&r) {
            return Err(RpcError::new(
                TASK_NOT_CANCELABLE,
                format!("task {} ended ({})", r.hire_id, task::state(&r)),
            ));
        }
        let id = r.hire_id;
        let _: Value = self
            .api
            .post(
                format!("/v1/hires/{id}/cancel"),
                json!({"reason": "canceled by the A2A client"}),
            )
            .await
            .map_err(|e| node_error(e, TASK_NOT_FOUND))?;
        let r = self.wait(id, r.entries, CANCEL_WAIT, false).await?;
        self.task_now(&r).await
    }

    /// One long-poll of hire `id`'s receipts from `from`.
    pub(super) async fn page(
        &self,
        id: Hash,
        from: u64,
        wait: Duration,
    ) -> Result<ReceiptsView, RpcError> {
        let ms = wait.min(POLL).as_millis();
        self.api
            .get(format!("/v1/hires/{id}/receipts?from={from}&wait_ms={ms}"))
            .await
            .map_err(|e| node_error(e, TASK_NOT_FOUND))
    }

    /// Follows hire `id` from receipt `from` for at most `wait`: returns when it ended (or,
    /// with `stop_at_question`, when it waits for input), or when the time is up.
    pub(super) async fn wait(
        &self,
        id: Hash,
        from: u64,
        wait: Duration,
        stop_at_question: bool,
    ) -> Result<HireRecord, RpcError> {
        let until = Instant::now() + wait;
        let mut from = from;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            let view = self.page(id, from, left).await?;
            from = view.steps.last().map_or(from, |s| s.seq + 1);
            let r = view.hire;
            if r.follow_done(from)
                || (stop_at_question && r.state == HireState::InputRequired && from >= r.entries)
                || left.is_zero()
            {
                return Ok(r);
            }
        }
    }

    /// The artifacts of a hire that ended: its output (completed) and its receipt bundle.
    pub(super) async fn artifacts(&self, r: &HireRecord) -> Vec<Value> {
        let mut out = Vec::new();
        if !task::is_final(r) {
            return out;
        }
        if r.state == HireState::Completed
            && let Some(o) = self.output(r.hire_id).await
        {
            out.push(task::output_artifact(o));
        }
        if r.entries > 0 {
            match self
                .api
                .get_bytes(format!("/v1/hires/{}/bundle", r.hire_id))
                .await
            {
                Ok(b) => out.push(task::bundle_artifact(r, &b)),
                Err(e) => tracing::warn!(hire = %r.hire_id.short(), error = %e, "a2a: no bundle"),
            }
        }
        out
    }

    /// A task as `tasks/get` shows it (artifacts once it ended).
    pub(super) async fn task_now(&self, r: &HireRecord) -> Result<Value, RpcError> {
        let artifacts = self.artifacts(r).await;
        Ok(task::task(r, &self.context_of(r.hire_id), artifacts))
    }

    /// The output of a completed hire (it may trail the `completed` entry by a moment).
    async fn output(&self, id: Hash) -> Option<Value> {
        let give_up = Instant::now() + OUTPUT_GRACE;
        let mut pause = Duration::from_millis(20);
        loop {
            match self
                .api
                .get::<Value>(format!("/v1/hires/{id}/output"))
                .await
            {
                Ok(v) => return Some(v),
                Err(AsyncCallError::Node(ClientError::Api { status: 404, .. }))
                    if Instant::now() < give_up =>
                {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(500));
                }
                Err(e) => {
                    tracing::warn!(hire = %id.short(), error = %e, "a2a: no output");
                    return None;
                }
            }
        }
    }
}
