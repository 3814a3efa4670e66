//! JSON-RPC 2.0 as A2A 0.3 uses it: the request envelope, results and errors, and the error
//! codes of the A2A specification (section 8).

use serde::Deserialize;
use serde_json::{Value, json};

/// Invalid JSON.
pub(super) const PARSE_ERROR: i64 = -32700;
/// Not a JSON-RPC 2.0 request (or not authorized).
pub(super) const INVALID_REQUEST: i64 = -32600;
/// Unknown method.
pub(super) const METHOD_NOT_FOUND: i64 = -32601;
/// Bad parameters.
pub(super) const INVALID_PARAMS: i64 = -32602;
/// The node failed or could not be reached.
pub(super) const INTERNAL_ERROR: i64 = -32603;
/// No such task.
pub(super) const TASK_NOT_FOUND: i64 = -32001;
/// The task ended: it cannot be canceled.
pub(super) const TASK_NOT_CANCELABLE: i64 = -32002;
/// Push notifications are not supported.
pub(super) const PUSH_NOT_SUPPORTED: i64 = -32003;
/// The operation is not supported (e.g. a message to a task that ended).
pub(super) const UNSUPPORTED_OPERATION: i64 = -32004;
/// A content type (part kind) is not supported.
pub(super) const CONTENT_TYPE_NOT_SUPPORTED: i64 = -32005;

/// A JSON-RPC request.
#[derive(Debug, Deserialize)]
pub(super) struct Request {
    pub(super) jsonrpc: String,
    /// A string or a number; `null`/absent for a notification (answered all the same).
    #[serde(default)]
    pub(super) id: Value,
    pub(super) method: String,
    #[serde(default)]
    pub(super) params: Value,
}

/// A JSON-RPC error.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct RpcError {
    pub(super) code: i64,
    pub(super) message: String,
}

impl RpcError {
    pub(super) fn new(code: i64, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    pub(super) fn params(message: impl Into<String>) -> Self {
        Self::new(INVALID_PARAMS, message)
    }
}

/// A response carrying `result`.
pub(super) fn result(id: &Value, result: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

/// A response carrying `error`.
pub(super) fn error(id: &Value, e: &RpcError) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": e.code, "message": e.message}})
}

/// Parses a request body; `Err` is the error response to send.
pub(super) fn parse(body: &[u8]) -> Result<Request, Value> {
    let v: Value = serde_json::from_slice(body).map_err(|e| {
        error(
            &Value::Null,
            &RpcError::new(PARSE_ERROR, format!("not JSON: {e}")),
        )
    })?;
    let id = v.get("id").cloned().unwrap_or(Value::Null);
    if !(id.is_null() || id.is_string() || id.is_number()) {
        return Err(error(
            &Value::Null,
            &RpcError::new(INVALID_REQUEST, "id must be a string or a number"),
        ));
    }
    let req: Request = serde_json::from_value(v).map_err(|e| {
        error(
            &id,
            &RpcError::new(INVALID_REQUEST, format!("not a JSON-RPC request: {e}")),
        )
    })?;
    if req.jsonrpc != "2.0" {
        return Err(error(
            &id,
            &RpcError::new(INVALID_REQUEST, "jsonrpc must be \"2.0\""),
        ));
    }
    Ok(req)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_requests_and_words_bad_ones() {
        let r = parse(br#"{"jsonrpc":"2.0","id":7,"method":"tasks/get","params":{"id":"x"}}"#);
        assert!(matches!(r, Ok(ref q) if q.method == "tasks/get" && q.id == json!(7)));
        let code = |b: &[u8]| parse(b).err().and_then(|e| e["error"]["code"].as_i64());
        assert_eq!(code(b"{"), Some(PARSE_ERROR));
        assert_eq!(
            code(br#"{"jsonrpc":"1.0","id":1,"method":"m"}"#),
            Some(INVALID_REQUEST)
        );
        assert_eq!(
            code(br#"{"jsonrpc":"2.0","id":{},"method":"m"}"#),
            Some(INVALID_REQUEST)
        );
        assert_eq!(code(br#"{"jsonrpc":"2.0","id":1}"#), Some(INVALID_REQUEST));
        assert_eq!(
            parse(br#"{"jsonrpc":"2.0","id":"a","method":5}"#)
                .err()
                .map(|e| e["id"].clone()),
            Some(json!("a"))
        );
    }
}
