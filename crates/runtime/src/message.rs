//! The messages of the agent protocol (`spec/agent-protocol.md`): parsing what the agent
//! writes, building what the node writes, and the bytes and hashes that go into receipts.
//!
//! Everything the node hashes or commits to is the **canonical JSON** of a value
//! ([`canonical_json`]): compact (no whitespace), object members sorted by key in byte order,
//! strings and numbers written as `serde_json` writes them. The node hashes its own
//! re-encoding of what it parsed, never the agent's raw line, so the same value always has
//! the same hash however the agent spaced or ordered it.

use serde::Serialize;
use serde_json::{Map, Value, json};
use souk_protocol::Hash;
use souk_protocol::receipt::{EntryKind, MAX_ENTRY_TEXT};

/// A non-final message from the agent: one step of the hire.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AgentEvent {
    /// An LLM decision or reasoning step.
    Decision {
        /// What was decided, in the agent's words.
        text: String,
    },
    /// A tool call the agent made, with its arguments and result.
    ToolCall {
        /// The tool's name (1..=512 bytes; public in the receipt).
        tool: String,
        /// The arguments.
        args: Value,
        /// The result.
        result: Value,
    },
    /// A free-form progress note (recorded like a decision).
    Note {
        /// The note.
        text: String,
    },
    /// Opaque state the agent can be resumed from (never `null`).
    Checkpoint {
        /// The state, given back as `checkpoint` in the `start` message on resume.
        state: Value,
    },
    /// A question for the client; the agent waits for an answer (input-required).
    Question {
        /// The question (never `null`).
        question: Value,
    },
}

impl AgentEvent {
    /// The protocol `type` of the message this event came from.
    pub fn type_name(&self) -> &'static str {
        match self {
            AgentEvent::Decision { .. } => "decision",
            AgentEvent::ToolCall { .. } => "tool_call",
            AgentEvent::Note { .. } => "note",
            AgentEvent::Checkpoint { .. } => "checkpoint",
            AgentEvent::Question { .. } => "question",
        }
    }

    /// The event as the JSON object of its message (`{"type": ..., ...}`).
    pub fn to_value(&self) -> Value {
        match self {
            AgentEvent::Decision { text } => json!({"type": "decision", "text": text}),
            AgentEvent::ToolCall { tool, args, result } => {
                json!({"type": "tool_call", "tool": tool, "args": args, "result": result})
            }
            AgentEvent::Note { text } => json!({"type": "note", "text": text}),
            AgentEvent::Checkpoint { state } => json!({"type": "checkpoint", "state": state}),
            AgentEvent::Question { question } => json!({"type": "question", "question": question}),
        }
    }

    /// The receipt entry kind the node appends for this event.
    ///
    /// `decision` and `note` are both [`EntryKind::Decision`] (the payload's `type` tells them
    /// apart); `tool_call` is [`EntryKind::ToolCall`]; `checkpoint` is
    /// [`EntryKind::Checkpoint`] with the [`json_hash`] of the state; `question` is
    /// [`EntryKind::InputRequested`].
    pub fn entry_kind(&self) -> EntryKind {
        match self {
            AgentEvent::Decision { .. } | AgentEvent::Note { .. } => EntryKind::Decision,
            AgentEvent::ToolCall { tool, .. } => EntryKind::ToolCall { tool: tool.clone() },
            AgentEvent::Checkpoint { state } => EntryKind::Checkpoint {
                state_hash: json_hash(state),
            },
            AgentEvent::Question { .. } => EntryKind::InputRequested,
        }
    }

    /// True when the entry carries a salted commitment to [`payload_bytes`] (every event but
    /// `checkpoint`, whose state is identified by its hash in the entry kind).
    pub fn has_payload(&self) -> bool {
        !matches!(self, AgentEvent::Checkpoint { .. })
    }
}

/// The exact bytes the node commits to for an event's private payload: the canonical JSON
/// of the event's message object, `type` included (e.g.
/// `{"text":"2 rows","type":"decision"}`).
pub fn payload_bytes(event: &AgentEvent) -> Vec<u8> {
    canonical_json(&event.to_value())
}

/// The exact bytes the node commits to for an `input-provided` entry: the canonical JSON of
/// the `answer` message it sent (`{"answer":...,"type":"answer"}`).
pub fn answer_payload_bytes(answer: &Value) -> Vec<u8> {
    canonical_json(&json!({"type": "answer", "answer": answer}))
}

/// BLAKE3 (no domain tag) of the canonical JSON of `value`: the `state-hash` of a checkpoint
/// entry and the `output-hash` of a completed entry.
pub fn json_hash(value: &Value) -> Hash {
    Hash(*blake3::hash(&canonical_json(value)).as_bytes())
}

/// The canonical JSON bytes of `value`: compact, object members sorted by key (bytewise),
/// strings and numbers as `serde_json` writes them.
pub fn canonical_json(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        Value::Object(members) => {
            let mut sorted: Vec<(&String, &Value)> = members.iter().collect();
            sorted.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push(b'{');
            for (i, (key, item)) in sorted.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(Value::from(key.as_str()).to_string().as_bytes());
                out.push(b':');
                write_canonical(item, out);
            }
            out.push(b'}');
        }
        scalar => out.extend_from_slice(scalar.to_string().as_bytes()),
    }
}

/// Cuts `text` to at most [`MAX_ENTRY_TEXT`] bytes on a character boundary (receipt text
/// fields are limited to that).
pub fn truncate_entry_text(text: &str) -> String {
    if text.len() <= MAX_ENTRY_TEXT {
        return text.to_owned();
    }
    let mut end = MAX_ENTRY_TEXT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

/// A parsed line from the agent.
#[derive(Debug)]
pub(crate) enum AgentMessage {
    Event(AgentEvent),
    Result(Value),
    Error(String),
}

impl AgentMessage {
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            AgentMessage::Event(e) => e.type_name(),
            AgentMessage::Result(_) => "result",
            AgentMessage::Error(_) => "error",
        }
    }
}

/// Parses one line from the agent; `Err` is the protocol-violation message (it never quotes
/// the agent's payload, which is private).
pub(crate) fn parse_agent_line(line: &[u8]) -> Result<AgentMessage, String> {
    let value: Value =
        serde_json::from_slice(line).map_err(|e| format!("malformed JSON message: {e}"))?;
    let Value::Object(mut obj) = value else {
        return Err("message is not a JSON object".into());
    };
    let kind = match obj.get("type") {
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err("message \"type\" is not a string".into()),
        None => return Err("message has no \"type\"".into()),
    };
    let msg = match kind.as_str() {
        "decision" => AgentMessage::Event(AgentEvent::Decision {
            text: take_string(&mut obj, &kind, "text")?,
        }),
        "note" => AgentMessage::Event(AgentEvent::Note {
            text: take_string(&mut obj, &kind, "text")?,
        }),
        "tool_call" => {
            let tool = take_string(&mut obj, &kind, "tool")?;
            if tool.is_empty() || tool.len() > MAX_ENTRY_TEXT {
                return Err(format!(
                    "tool_call \"tool\" must be 1 to {MAX_ENTRY_TEXT} bytes long"
                ));
            }
            AgentMessage::Event(AgentEvent::ToolCall {
                tool,
                args: take_any(&mut obj, &kind, "args")?,
                result: take_any(&mut obj, &kind, "result")?,
            })
        }
        "checkpoint" => AgentMessage::Event(AgentEvent::Checkpoint {
            state: take_non_null(&mut obj, &kind, "state")?,
        }),
        "question" => AgentMessage::Event(AgentEvent::Question {
            question: take_non_null(&mut obj, &kind, "question")?,
        }),
        "result" => AgentMessage::Result(take_any(&mut obj, &kind, "output")?),
        "error" => AgentMessage::Error(take_string(&mut obj, &kind, "message")?),
        other => {
            let shown: String = other.chars().take(64).collect();
            return Err(format!("unknown message type {shown:?}"));
        }
    };
    Ok(msg)
}

fn take_any(obj: &mut Map<String, Value>, kind: &str, field: &str) -> Result<Value, String> {
    obj.remove(field)
        .ok_or_else(|| format!("{kind} message has no \"{field}\""))
}

fn take_non_null(obj: &mut Map<String, Value>, kind: &str, field: &str) -> Result<Value, String> {
    match take_any(obj, kind, field)? {
        Value::Null => Err(format!("{kind} \"{field}\" is null")),
        v => Ok(v),
    }
}

fn take_string(obj: &mut Map<String, Value>, kind: &str, field: &str) -> Result<String, String> {
    match take_any(obj, kind, field)? {
        Value::String(s) => Ok(s),
        _ => Err(format!("{kind} \"{field}\" is not a string")),
    }
}

/// A node-to-agent line (terminated by `\n`).
pub(crate) fn node_line(value: &Value) -> Vec<u8> {
    let mut line = canonical_json(value);
    line.push(b'\n');
    line
}

/// The `start` line.
pub(crate) fn start_line(hire_id: &str, input: &Value, checkpoint: Option<&Value>) -> Vec<u8> {
    node_line(&json!({
        "type": "start",
        "hire_id": hire_id,
        "input": input,
        "checkpoint": checkpoint.cloned().unwrap_or(Value::Null),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_sorts_keys_and_is_compact() {
        let v: Value = serde_json::from_str(
            r#"{ "b": [1, 2.5, "x\n"], "a": {"z": null, "é": true, "A": 1} }"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            String::from_utf8_lossy(&canonical_json(&v)),
            r#"{"a":{"A":1,"z":null,"é":true},"b":[1,2.5,"x\n"]}"#
        );
    }

    #[test]
    fn payload_bytes_include_type() {
        let e = AgentEvent::Note { text: "hi".into() };
        assert_eq!(
            payload_bytes(&e),
            br#"{"text":"hi","type":"note"}"#.to_vec()
        );
        assert_eq!(e.entry_kind(), EntryKind::Decision);
        assert_eq!(
            answer_payload_bytes(&json!({"csv": "a"})),
            br#"{"answer":{"csv":"a"},"type":"answer"}"#.to_vec()
        );
    }

    #[test]
    fn parse_rules() {
        let ok = |s: &str| parse_agent_line(s.as_bytes()).unwrap_or_else(|e| panic!("{s}: {e}"));
        let bad = |s: &str| match parse_agent_line(s.as_bytes()) {
            Ok(m) => panic!("{s} parsed as {m:?}"),
            Err(e) => e,
        };
        assert!(matches!(
            ok(r#"{"type":"tool_call","tool":"t","args":null,"result":{},"extra":1}"#),
            AgentMessage::Event(AgentEvent::ToolCall { .. })
        ));
        assert!(matches!(
            ok(r#"{"type":"result","output":null}"#),
            AgentMessage::Result(Value::Null)
        ));
        assert!(bad("not json").starts_with("malformed JSON"));
        assert!(bad("[1]").contains("not a JSON object"));
        assert!(bad(r#"{"type":"shout"}"#).contains("unknown message type"));
        assert!(bad(r#"{"type":"tool_call","tool":"","args":1,"result":1}"#).contains("tool"));
        assert!(bad(r#"{"type":"tool_call","tool":"t","args":1}"#).contains("result"));
        assert!(bad(r#"{"type":"checkpoint","state":null}"#).contains("null"));
        assert!(bad(r#"{"type":"decision","text":3}"#).contains("not a string"));
        assert!(bad(r#"{"type":"result"}"#).contains("output"));
    }

    #[test]
    fn spec_example_hashes() {
        // spec/agent-protocol.md, "Canonical JSON".
        let hex = |v: &Value| {
            json_hash(v)
                .0
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        };
        assert_eq!(
            hex(&json!({ "done": [ "city" ] })),
            "5b5a0cb96c77669902f111a1a5d017f22cccd053b36a16444b1ca8a8b6f446a3"
        );
        assert_eq!(
            hex(&json!({"summary": "ok", "rows": 2})),
            "3674529b27079cf6df217c3e4dcd9608af3562311a2f95e65979412efb992854"
        );
    }

    #[test]
    fn truncation_respects_char_boundaries() {
        let long = "é".repeat(400);
        let t = truncate_entry_text(&long);
        assert!(t.len() <= MAX_ENTRY_TEXT && t.len() >= MAX_ENTRY_TEXT - 1);
        assert_eq!(truncate_entry_text("short"), "short");
    }
}
