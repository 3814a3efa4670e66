//! The hire data the local API takes and returns: a new hire's parameters ([`NewHire`]) and
//! receipts as people read them ([`ReceiptsView`], [`StepView`], [`summarize`]).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use souk_protocol::receipt::EntryKind;

use super::credentials::CredentialRequest;
use super::record::HireRecord;

/// A hire a client wants to make.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NewHire {
    /// The manifest to hire (hex id).
    pub manifest_id: String,
    /// The job input.
    pub input: Value,
    /// Highest acceptable price (micro-units); default: the advertised price.
    pub max_price: Option<u64>,
    /// How long the work may take, ms; default: the agent's maximum duration.
    pub deadline_ms: Option<u64>,
    /// Credentials granted to the agent's slots (sealed to the provider, or relayed).
    #[serde(default)]
    pub credentials: Vec<CredentialRequest>,
    /// While the provider is at capacity, keep asking (with backoff) for up to this many
    /// ms; default: decline at once.
    #[serde(default)]
    pub retry_busy_ms: Option<u64>,
}

/// One receipt entry as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepView {
    /// Position in the chain.
    pub seq: u64,
    /// Entry id (hex).
    pub id: String,
    /// When (ms).
    pub time: u64,
    /// Kind name (`decision`, `tool-call`, ...).
    pub kind: String,
    /// A one-line description for people.
    pub summary: String,
    /// The private payload, decoded as JSON when this node holds it.
    pub payload: Option<Value>,
}

/// A page of receipts for the API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReceiptsView {
    /// The hire's record now.
    pub hire: HireRecord,
    /// Entries from the requested seq.
    pub steps: Vec<StepView>,
}

/// A one-line description of an entry for `souk hire watch`.
pub fn summarize(kind: &EntryKind, payload: Option<&Value>) -> String {
    let text = |key: &str| {
        payload
            .and_then(|p| p.get(key))
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    };
    match kind {
        EntryKind::Started { runtime_digest } => {
            format!("agent started (runtime {})", runtime_digest.short())
        }
        EntryKind::Decision => text("text").unwrap_or_else(|| "decision".into()),
        EntryKind::ToolCall { tool } => match payload.and_then(|p| p.get("args")) {
            Some(args) => format!("{tool} {args}"),
            None => tool.clone(),
        },
        EntryKind::NetworkCall(c) => {
            format!("{} https://{}{} -> {}", c.method, c.host, c.path, c.status)
        }
        EntryKind::InputRequested => match payload.and_then(|p| p.get("question")) {
            Some(q) => format!("question: {q}"),
            None => "the agent asks a question".into(),
        },
        EntryKind::InputProvided => "answer delivered".into(),
        EntryKind::Checkpoint { state_hash } => format!("checkpoint {}", state_hash.short()),
        EntryKind::Completed { output_hash, .. } => {
            format!("completed (output {})", output_hash.short())
        }
        EntryKind::Failed { code, message, .. } => {
            format!("failed ({}): {message}", code.as_str())
        }
        EntryKind::Canceled { reason, .. } => format!("canceled: {reason}"),
        EntryKind::Expired { .. } => "deadline passed".into(),
    }
}

/// Where a provider hire's working directory is (`souk hire workdir ID`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkdirView {
    /// The directory.
    pub path: String,
    /// Whether it still exists (it is removed some time after the hire ended).
    pub exists: bool,
}
