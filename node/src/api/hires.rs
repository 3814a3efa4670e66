//! `/v1/hires…`: create a hire, list and inspect hires, follow receipts, answer, cancel,
//! settle, and export the receipt bundle.

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;
use souk_protocol::Hash;
use souk_protocol::hire::Verdict;
use souk_protocol::manifest::Manifest;
use souk_protocol::signed::Signed;

use super::ApiState;
use super::error::{error, hire_error, resolve_error};
use crate::agent_ref::{self, AgentRef};
use crate::hire::NewHire;
use crate::hire::record::HireRecord;

fn hire_id(raw: &str) -> Result<Hash, Box<Response>> {
    Hash::from_hex(raw)
        .ok_or_else(|| Box::new(error(StatusCode::BAD_REQUEST, "a hire id is 64 hex digits")))
}

/// `POST /v1/hires?wait_ms=N`: also wait (up to [`MAX_CREATE_WAIT_MS`]) for the hire to end
/// or ask a question.
#[derive(Debug, Default, Deserialize)]
pub(super) struct CreateParams {
    wait_ms: Option<u64>,
}

/// Longest `POST /v1/hires` waits for the hire after its contract (`wait_ms`).
const MAX_CREATE_WAIT_MS: u64 = 60_000;

/// A hire as `POST /v1/hires?wait_ms=` returns it: its record when the wait ended and, if it
/// completed, its output.
#[derive(Debug, serde::Serialize)]
struct WaitedHire {
    #[serde(flatten)]
    hire: HireRecord,
    #[serde(skip_serializing_if = "Option::is_none")]
    output: Option<Value>,
}

pub(super) async fn create(
    State(s): State<ApiState>,
    q: Result<Query<CreateParams>, QueryRejection>,
    body: Result<Json<NewHire>, JsonRejection>,
) -> Response {
    let Query(q) = match q {
        Ok(q) => q,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let Json(mut new) = match body {
        Ok(b) => b,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("invalid hire: {e}")),
    };
    // Any reference the CLI prints names the agent: a whole id goes to the hire as given (an
    // id this node does not know is the hire's `unknown-manifest`); a handle or a prefix is
    // resolved here to the manifest it names now.
    match new.manifest_id.parse::<AgentRef>() {
        Ok(AgentRef::Id(_)) => {}
        Ok(r) => match agent_ref::resolve(&s.node, &r).await {
            Ok(m) => new.manifest_id = m.id().to_hex(),
            Err(e) => return resolve_error(e),
        },
        Err(e) => return resolve_error(e),
    }
    if let Some(refused) = deadline_beyond_limit(&s, &new).await {
        return refused;
    }
    let record = match s.node.hires.create(new).await {
        Ok(r) => r,
        Err(e) => return hire_error(e),
    };
    let Some(wait) = q.wait_ms.filter(|w| *w > 0) else {
        return (StatusCode::CREATED, Json(record)).into_response();
    };
    let waited = wait_for_end(&s, record, wait.min(MAX_CREATE_WAIT_MS)).await;
    (StatusCode::CREATED, Json(waited)).into_response()
}

/// Follows hire `record` for up to `wait_ms`: until it ends (terminal) or waits for an
/// answer. Its output comes with it when it completed (the client's node stores the output
/// before it shows the hire completed). The hire exists once its contract is formed, so a
/// wait that fails (the node stopping) still answers with the record as last seen: the
/// caller keeps the hire's id.
async fn wait_for_end(s: &ApiState, record: HireRecord, wait_ms: u64) -> WaitedHire {
    let until = tokio::time::Instant::now() + std::time::Duration::from_millis(wait_ms);
    let id = record.hire_id;
    let mut hire = record;
    let mut from = 0;
    loop {
        let settled =
            hire.state.is_terminal() || hire.state == souk_protocol::hire::HireState::InputRequired;
        let left = until.saturating_duration_since(tokio::time::Instant::now());
        if settled || left.is_zero() {
            break;
        }
        match s
            .node
            .hires
            .receipts(id, from, left.as_millis() as u64)
            .await
        {
            Ok(view) => {
                from += view.steps.len() as u64;
                hire = view.hire;
            }
            Err(e) => {
                tracing::debug!(hire = %id.short(), "stopped waiting for the hire: {e}");
                break;
            }
        }
    }
    let output = match hire.state {
        souk_protocol::hire::HireState::Completed => s.node.hires.output(id).await.ok().flatten(),
        _ => None,
    };
    WaitedHire { hire, output }
}

/// A deadline window longer than the agent's `max_duration_ms` is refused here, with the
/// limit, rather than cut short by the provider. Checked against the manifest this node
/// knows; an unknown manifest is left to the hire itself (which reports it).
async fn deadline_beyond_limit(s: &ApiState, new: &NewHire) -> Option<Response> {
    let window = new.deadline_ms?;
    let id = Hash::from_hex(&new.manifest_id)?;
    let bytes = s.node.manifest(id).await.ok()??;
    let manifest = Signed::<Manifest>::decode_bytes(&bytes).ok()?;
    let limit = manifest.body().limits.max_duration_ms;
    (window > limit).then(|| {
        let human = |ms: u64| humantime::format_duration(std::time::Duration::from_secs(ms / 1000));
        error(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "a deadline of {} is longer than {}'s limit of {} (its max duration): ask for at most {}",
                human(window),
                manifest.body().name,
                human(limit),
                human(limit)
            ),
        )
    })
}

pub(super) async fn list(State(s): State<ApiState>) -> Response {
    match s.node.hires.list().await {
        Ok(v) => Json(v).into_response(),
        Err(e) => hire_error(e),
    }
}

pub(super) async fn get_one(State(s): State<ApiState>, Path(id): Path<String>) -> Response {
    let id = match hire_id(&id) {
        Ok(h) => h,
        Err(r) => return *r,
    };
    match s.node.hires.get(id).await {
        Ok(Some(r)) => Json(r).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, format!("no hire {}", id.short())),
        Err(e) => hire_error(e),
    }
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct ReceiptParams {
    from: Option<u64>,
    wait_ms: Option<u64>,
}

pub(super) async fn receipts(
    State(s): State<ApiState>,
    Path(id): Path<String>,
    q: Result<Query<ReceiptParams>, QueryRejection>,
) -> Response {
    let id = match hire_id(&id) {
        Ok(h) => h,
        Err(r) => return *r,
    };
    let Query(q) = match q {
        Ok(q) => q,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    match s
        .node
        .hires
        .receipts(id, q.from.unwrap_or(0), q.wait_ms.unwrap_or(0))
        .await
    {
        Ok(v) => Json(v).into_response(),
        Err(e) => hire_error(e),
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct AnswerBody {
    answer: Value,
}

pub(super) async fn answer(
    State(s): State<ApiState>,
    Path(id): Path<String>,
    body: Result<Json<AnswerBody>, JsonRejection>,
) -> Response {
    let id = match hire_id(&id) {
        Ok(h) => h,
        Err(r) => return *r,
    };
    let Json(b) = match body {
        Ok(b) => b,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("expected {{\"answer\": ...}}: {e}"),
            );
        }
    };
    match s.node.hires.answer(id, b.answer).await {
        Ok(()) => Json(serde_json::json!({"answered": true})).into_response(),
        Err(e) => hire_error(e),
    }
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct ReasonBody {
    #[serde(default)]
    reason: String,
}

pub(super) async fn cancel(
    State(s): State<ApiState>,
    Path(id): Path<String>,
    body: Option<Json<ReasonBody>>,
) -> Response {
    let id = match hire_id(&id) {
        Ok(h) => h,
        Err(r) => return *r,
    };
    // An empty reason gets a default naming the side that cancels (the manager knows it).
    let reason = body.map(|b| b.0.reason).unwrap_or_default();
    match s.node.hires.cancel(id, reason).await {
        Ok(()) => (
            StatusCode::ACCEPTED,
            Json(serde_json::json!({"canceling": true})),
        )
            .into_response(),
        Err(e) => hire_error(e),
    }
}

async fn settle(
    s: ApiState,
    id: String,
    verdict: Verdict,
    body: Option<Json<ReasonBody>>,
) -> Response {
    let id = match hire_id(&id) {
        Ok(h) => h,
        Err(r) => return *r,
    };
    let reason = body.map(|b| b.0.reason).unwrap_or_default();
    match s.node.hires.settle(id, verdict, reason).await {
        Ok(r) => Json(r).into_response(),
        Err(e) => hire_error(e),
    }
}

pub(super) async fn accept(
    State(s): State<ApiState>,
    Path(id): Path<String>,
    body: Option<Json<ReasonBody>>,
) -> Response {
    settle(s, id, Verdict::Accepted, body).await
}

pub(super) async fn reject(
    State(s): State<ApiState>,
    Path(id): Path<String>,
    body: Option<Json<ReasonBody>>,
) -> Response {
    settle(s, id, Verdict::Disputed, body).await
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct BundleParams {
    disclose: Option<bool>,
}

pub(super) async fn bundle(
    State(s): State<ApiState>,
    Path(id): Path<String>,
    q: Result<Query<BundleParams>, QueryRejection>,
) -> Response {
    let id = match hire_id(&id) {
        Ok(h) => h,
        Err(r) => return *r,
    };
    let disclose = q.ok().and_then(|q| q.0.disclose).unwrap_or(false);
    match s.node.hires.bundle(id, disclose).await {
        Ok(bytes) => (
            [(header::CONTENT_TYPE, "application/vnd.souk.bundle")],
            bytes,
        )
            .into_response(),
        Err(e) => hire_error(e),
    }
}

pub(super) async fn output(State(s): State<ApiState>, Path(id): Path<String>) -> Response {
    let id = match hire_id(&id) {
        Ok(h) => h,
        Err(r) => return *r,
    };
    match s.node.hires.output(id).await {
        Ok(Some(v)) => Json(v).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, "no output (yet)"),
        Err(e) => hire_error(e),
    }
}

pub(super) async fn workdir(State(s): State<ApiState>, Path(id): Path<String>) -> Response {
    let id = match hire_id(&id) {
        Ok(h) => h,
        Err(r) => return *r,
    };
    match s.node.hires.workdir(id).await {
        Ok(v) => Json(v).into_response(),
        Err(e) => hire_error(e),
    }
}
