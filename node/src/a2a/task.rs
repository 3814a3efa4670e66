//! A Souk hire as an A2A task (state, status message, artifacts, metadata), a receipt as a
//! status update, and an A2A message's parts as a hire input or answer. The tables are in
//! docs/a2a.md.

use std::time::{Duration, UNIX_EPOCH};

use base64::Engine;
use serde_json::{Map, Value, json};
use souk_protocol::hire::HireState;

use super::rpc::{CONTENT_TYPE_NOT_SUPPORTED, RpcError};
use crate::hire::{HireRecord, StepView};

/// The A2A task state of a hire.
pub(super) fn state(r: &HireRecord) -> &'static str {
    if r.closed.is_some() {
        return "failed";
    }
    match r.state {
        HireState::Requested | HireState::Negotiating | HireState::Accepted => "submitted",
        HireState::Working => "working",
        HireState::InputRequired => "input-required",
        HireState::Completed => "completed",
        HireState::Failed | HireState::Expired => "failed",
        HireState::Canceled => "canceled",
        HireState::Rejected => "rejected",
    }
}

/// Whether the task can change no more (an A2A terminal state).
pub(super) fn is_final(r: &HireRecord) -> bool {
    r.closed.is_some() || r.state.is_terminal()
}

fn timestamp(ms: u64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

/// An agent message of task `id`.
fn agent_message(r: &HireRecord, context: &str, suffix: &str, parts: Vec<Value>) -> Value {
    json!({
        "kind": "message",
        "role": "agent",
        "messageId": format!("{}-{suffix}", r.hire_id),
        "taskId": r.hire_id.to_hex(),
        "contextId": context,
        "parts": parts,
    })
}

fn text(t: impl Into<String>) -> Value {
    json!({"kind": "text", "text": t.into()})
}

/// The status message of a hire in its state now, if it has one.
fn status_message(r: &HireRecord, context: &str) -> Option<Value> {
    if let Some(q) = &r.question
        && r.state == HireState::InputRequired
    {
        let prompt = q
            .get("text")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .or_else(|| q.as_str().map(str::to_owned))
            .unwrap_or_else(|| "The agent asks for input".into());
        let parts = vec![text(prompt), json!({"kind": "data", "data": q})];
        return Some(agent_message(r, context, &format!("q{}", r.entries), parts));
    }
    let why = if let Some(c) = &r.closed {
        Some(format!(
            "the hire was ended by this node: {} (nothing it signs for this hire can be trusted)",
            c.reason.as_str()
        ))
    } else if r.state == HireState::Expired {
        Some(
            r.error
                .clone()
                .unwrap_or_else(|| "the deadline passed before the work finished".into()),
        )
    } else if matches!(r.state, HireState::Failed | HireState::Rejected) {
        r.error.clone()
    } else {
        None
    };
    why.map(|w| agent_message(r, context, "status", vec![text(w)]))
}

/// The status of a hire.
pub(super) fn status(r: &HireRecord, context: &str) -> Value {
    let mut s = json!({"state": state(r), "timestamp": timestamp(r.updated_at)});
    if let Some(m) = status_message(r, context) {
        s["message"] = m;
    }
    s
}

/// The `souk` metadata of a task.
pub(super) fn metadata(r: &HireRecord) -> Value {
    let mut m = json!({
        "hire_id": r.hire_id.to_hex(),
        "agent": r.agent,
        "provider": r.provider.to_string(),
        "manifest_id": r.manifest_id.to_hex(),
        "price": crate::agent_file::format_amount(r.price),
        "currency": r.currency,
        "deadline": timestamp(r.deadline),
        "receipts": r.entries,
        "state": r.state.as_str(),
    });
    if let Some(v) = &r.verdict {
        m["verdict"] = json!(v.as_str());
    }
    if let Some(e) = &r.error {
        m["error"] = json!(e);
    }
    json!({ "souk": m })
}

/// The `output` artifact.
pub(super) fn output_artifact(output: Value) -> Value {
    json!({
        "artifactId": "output",
        "name": "output",
        "description": "the agent's output (signed in the receipts as its hash)",
        "parts": [{"kind": "data", "data": output}],
    })
}

/// The `souk-receipts` artifact: the receipt bundle, verifiable offline.
pub(super) fn bundle_artifact(r: &HireRecord, bundle: &[u8]) -> Value {
    json!({
        "artifactId": "souk-receipts",
        "name": "souk-receipts",
        "description": "the hire's signed receipt bundle; `souk verify FILE` (or any Souk verifier) checks it offline",
        "parts": [{"kind": "file", "file": {
            "name": format!("{}.souk", r.hire_id),
            "mimeType": "application/cbor",
            "bytes": base64::engine::general_purpose::STANDARD.encode(bundle),
        }}],
    })
}

/// A task.
pub(super) fn task(r: &HireRecord, context: &str, artifacts: Vec<Value>) -> Value {
    let mut t = json!({
        "kind": "task",
        "id": r.hire_id.to_hex(),
        "contextId": context,
        "status": status(r, context),
        "metadata": metadata(r),
    });
    if !artifacts.is_empty() {
        t["artifacts"] = Value::Array(artifacts);
    }
    t
}

/// A `status-update` event.
pub(super) fn status_update(r: &HireRecord, context: &str, final_: bool) -> Value {
    json!({
        "kind": "status-update",
        "taskId": r.hire_id.to_hex(),
        "contextId": context,
        "status": status(r, context),
        "final": final_,
        "metadata": metadata(r),
    })
}

/// A receipt as a `status-update` (`working`) whose message is the step.
pub(super) fn step_update(r: &HireRecord, context: &str, s: &StepView) -> Value {
    let line: String = s.summary.chars().take(500).collect();
    json!({
        "kind": "status-update",
        "taskId": r.hire_id.to_hex(),
        "contextId": context,
        "status": {
            "state": "working",
            "timestamp": timestamp(s.time),
            "message": agent_message(r, context, &format!("s{}", s.seq),
                vec![text(format!("#{} {}: {line}", s.seq, s.kind))]),
        },
        "final": false,
        "metadata": {"souk_receipt": {"seq": s.seq, "kind": s.kind, "entry_id": s.id}},
    })
}

/// An `artifact-update` event.
pub(super) fn artifact_update(r: &HireRecord, context: &str, artifact: Value) -> Value {
    json!({
        "kind": "artifact-update",
        "taskId": r.hire_id.to_hex(),
        "contextId": context,
        "artifact": artifact,
        "lastChunk": true,
    })
}

/// The hire input (or answer) a message carries: its first `data` part, else its text parts
/// joined, read as JSON when they are JSON, else as a JSON string.
pub(super) fn input_of(message: &Map<String, Value>) -> Result<Value, RpcError> {
    let parts = message
        .get("parts")
        .and_then(Value::as_array)
        .ok_or_else(|| RpcError::params("message.parts must be an array"))?;
    let mut texts = Vec::new();
    for p in parts {
        match p.get("kind").and_then(Value::as_str) {
            Some("data") => {
                return p
                    .get("data")
                    .cloned()
                    .ok_or_else(|| RpcError::params("a data part has no data"));
            }
            Some("text") => texts.push(
                p.get("text")
                    .and_then(Value::as_str)
                    .ok_or_else(|| RpcError::params("a text part has no text"))?,
            ),
            Some("file") => {
                return Err(RpcError::new(
                    CONTENT_TYPE_NOT_SUPPORTED,
                    "file parts are not supported: send the input as a data part (JSON) or text",
                ));
            }
            other => {
                return Err(RpcError::params(format!(
                    "unknown part kind {other:?} (text, data)"
                )));
            }
        }
    }
    if texts.is_empty() {
        return Err(RpcError::params(
            "the message has no text or data part to use as input",
        ));
    }
    let joined = texts.join("\n");
    Ok(serde_json::from_str::<Value>(joined.trim()).unwrap_or(Value::String(joined)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(parts: Value) -> Map<String, Value> {
        match json!({"kind": "message", "parts": parts}) {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn input_is_the_data_part_else_the_text_as_json_else_a_string() {
        let data = msg(json!([{"kind": "text", "text": "hi"}, {"kind": "data", "data": {"a": 1}}]));
        assert_eq!(input_of(&data), Ok(json!({"a": 1})));
        let json_text = msg(json!([{"kind": "text", "text": " {\"csv\": \"a\"} "}]));
        assert_eq!(input_of(&json_text), Ok(json!({"csv": "a"})));
        let plain =
            msg(json!([{"kind": "text", "text": "hello"}, {"kind": "text", "text": "you"}]));
        assert_eq!(input_of(&plain), Ok(json!("hello\nyou")));
        let file = msg(json!([{"kind": "file", "file": {"bytes": "AA=="}}]));
        assert_eq!(
            input_of(&file).map_err(|e| e.code),
            Err(CONTENT_TYPE_NOT_SUPPORTED)
        );
        assert!(input_of(&msg(json!([]))).is_err());
        assert!(input_of(&msg(json!("x"))).is_err());
        assert!(input_of(&msg(json!([{"kind": "weird"}]))).is_err());
    }
}
