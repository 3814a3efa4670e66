//! Denials: the closed list of reasons the egress proxy (or a client node relaying a call)
//! refuses an agent's request, their wire codes, HTTP statuses and the JSON body the agent gets.
//!
//! The same [`DenialCode`] travels in a relay reply (`spec/credentials.md`) and in a
//! `network-call` receipt entry (`spec/receipts.md`). This module never decides *whether* to
//! deny: that is the proxy's job (and [`crate::credential::CredentialPolicy::check_request`]'s).

use crate::encoding::{Canonical, DecodeError, Encoder, Reader};

/// Why a request was refused. Codes are closed: an unknown code is a decoding failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DenialCode {
    /// The host is not listed in the manifest (or not in the credential policy).
    BlockedByPolicy,
    /// The policy does not allow this method.
    MethodNotAllowed,
    /// The policy does not allow this path (or the path does not normalise).
    PathNotAllowed,
    /// The credential policy expired.
    CredentialExpired,
    /// The credential policy's request budget is used up.
    BudgetExhausted,
    /// The caller did not present the per-hire proxy token.
    ProxyAuthRequired,
    /// The upstream does not speak TLS; credentials are never sent in clear.
    TlsRequired,
    /// The secret or its placeholder appears outside the injection point.
    SecretInRequest,
    /// The agent set the injection header or parameter to something other than the
    /// placeholder.
    HeaderConflict,
    /// No usable credential: missing, tampered, replayed, or unopenable for this
    /// hire, slot and policy.
    CredentialUnavailable,
    /// The client node (relayed mode) cannot be reached.
    ClientOffline,
    /// The host resolved to a private, loopback, link-local or metadata address.
    PrivateAddress,
    /// `CONNECT` to a host that has a credential slot: use plain HTTP to the proxy instead.
    UsePlainHttpForCredentialHosts,
    /// The request exceeds a size limit.
    RequestTooLarge,
    /// The response exceeds a size limit.
    ResponseTooLarge,
    /// The upstream failed (connection, TLS handshake, protocol error, timeout).
    UpstreamError,
    /// The request is malformed.
    BadRequest,
}

impl DenialCode {
    /// Every code with its wire number and JSON name, in wire order.
    pub const ALL: [(DenialCode, u64, &'static str); 17] = [
        (DenialCode::BlockedByPolicy, 0, "blocked_by_policy"),
        (DenialCode::MethodNotAllowed, 1, "method_not_allowed"),
        (DenialCode::PathNotAllowed, 2, "path_not_allowed"),
        (DenialCode::CredentialExpired, 3, "credential_expired"),
        (DenialCode::BudgetExhausted, 4, "budget_exhausted"),
        (DenialCode::ProxyAuthRequired, 5, "proxy_auth_required"),
        (DenialCode::TlsRequired, 6, "tls_required"),
        (DenialCode::SecretInRequest, 7, "secret_in_request"),
        (DenialCode::HeaderConflict, 8, "header_conflict"),
        (
            DenialCode::CredentialUnavailable,
            9,
            "credential_unavailable",
        ),
        (DenialCode::ClientOffline, 10, "client_offline"),
        (DenialCode::PrivateAddress, 11, "private_address"),
        (
            DenialCode::UsePlainHttpForCredentialHosts,
            12,
            "use_plain_http_for_credential_hosts",
        ),
        (DenialCode::RequestTooLarge, 13, "request_too_large"),
        (DenialCode::ResponseTooLarge, 14, "response_too_large"),
        (DenialCode::UpstreamError, 15, "upstream_error"),
        (DenialCode::BadRequest, 16, "bad_request"),
    ];

    /// Wire code.
    pub fn code(self) -> u64 {
        Self::ALL.iter().find(|x| x.0 == self).map_or(16, |x| x.1)
    }

    /// The code for a wire number, if known.
    pub fn from_code(code: u64) -> Option<Self> {
        Self::ALL.iter().find(|x| x.1 == code).map(|x| x.0)
    }

    /// The snake_case name used in the JSON denial (`"error"`).
    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|x| x.0 == self)
            .map_or("bad_request", |x| x.2)
    }

    /// Parses a JSON name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.iter().find(|x| x.2 == name).map(|x| x.0)
    }

    /// The HTTP status the agent gets: 407 for `proxy_auth_required`, 400 for `bad_request`,
    /// 413 for `request_too_large`, 502 when the upstream side failed (`tls_required`,
    /// `response_too_large`, `upstream_error`), 503 for `client_offline`, and 403 for every
    /// policy refusal.
    pub fn http_status(self) -> u16 {
        match self {
            DenialCode::ProxyAuthRequired => 407,
            DenialCode::BadRequest => 400,
            DenialCode::RequestTooLarge => 413,
            DenialCode::TlsRequired | DenialCode::ResponseTooLarge | DenialCode::UpstreamError => {
                502
            }
            DenialCode::ClientOffline => 503,
            DenialCode::BlockedByPolicy
            | DenialCode::MethodNotAllowed
            | DenialCode::PathNotAllowed
            | DenialCode::CredentialExpired
            | DenialCode::BudgetExhausted
            | DenialCode::SecretInRequest
            | DenialCode::HeaderConflict
            | DenialCode::CredentialUnavailable
            | DenialCode::PrivateAddress
            | DenialCode::UsePlainHttpForCredentialHosts => 403,
        }
    }

    /// Whether the same request may succeed later (`client_offline`, `upstream_error`).
    pub fn retry(self) -> bool {
        matches!(self, DenialCode::ClientOffline | DenialCode::UpstreamError)
    }
}

impl std::fmt::Display for DenialCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Canonical for DenialCode {
    fn encode(&self, enc: &mut Encoder) {
        enc.u64(self.code());
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let at = r.offset();
        let code = r.u64()?;
        DenialCode::from_code(code).ok_or_else(|| Reader::unknown_code(at, "denial", code))
    }
}

/// The machine-readable denial an agent receives as the body of the refusing response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    /// Why.
    pub code: DenialCode,
    /// The `host[:port]` the agent asked for (port omitted when 443).
    pub host: String,
    /// Human text for the agent's logs and its LLM. Never contains a secret.
    pub message: String,
    /// Whether retrying the same request may succeed.
    pub retry: bool,
}

impl Denial {
    /// A denial with the code's default `retry`.
    pub fn new(code: DenialCode, host: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code,
            host: host.into(),
            message: message.into(),
            retry: code.retry(),
        }
    }

    /// The HTTP status of the refusing response.
    pub fn http_status(&self) -> u16 {
        self.code.http_status()
    }

    /// The JSON body: `{"error":…,"host":…,"message":…,"retry":…}` on one line, keys in this
    /// order, no insignificant whitespace.
    pub fn to_json(&self) -> Vec<u8> {
        let value = serde_json::json!({
            "error": self.code.as_str(),
            "host": self.host,
            "message": self.message,
            "retry": self.retry,
        });
        // Serializing a `Value` built from strings and a bool cannot fail.
        serde_json::to_vec(&value).unwrap_or_default()
    }

    /// Parses a JSON denial body (as an agent or a test would); `None` unless it has the four
    /// fields with the right types and a known code.
    pub fn from_json(bytes: &[u8]) -> Option<Denial> {
        let v: serde_json::Value = serde_json::from_slice(bytes).ok()?;
        Some(Denial {
            code: DenialCode::parse(v.get("error")?.as_str()?)?,
            host: v.get("host")?.as_str()?.to_owned(),
            message: v.get("message")?.as_str()?.to_owned(),
            retry: v.get("retry")?.as_bool()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_dense_unique_and_round_trip() {
        for (i, (code, n, name)) in DenialCode::ALL.iter().enumerate() {
            assert_eq!(*n, i as u64);
            assert_eq!(DenialCode::from_code(*n), Some(*code));
            assert_eq!(DenialCode::parse(name), Some(*code));
            assert_eq!(code.code(), *n);
            assert_eq!(code.as_str(), *name);
        }
        assert_eq!(DenialCode::from_code(17), None);
        assert_eq!(DenialCode::parse("Blocked_By_Policy"), None);
    }

    #[test]
    fn json_has_the_contract_shape() {
        let d = Denial::new(
            DenialCode::BlockedByPolicy,
            "evil.example",
            "host not listed in the agent's manifest",
        );
        assert_eq!(
            String::from_utf8(d.to_json()).ok().as_deref(),
            Some(
                r#"{"error":"blocked_by_policy","host":"evil.example","message":"host not listed in the agent's manifest","retry":false}"#
            )
        );
        assert_eq!(Denial::from_json(&d.to_json()), Some(d));
        let offline = Denial::new(DenialCode::ClientOffline, "api.example.com", "");
        assert!(offline.retry);
        assert_eq!(offline.http_status(), 503);
    }

    #[test]
    fn statuses_follow_the_spec_table() {
        let want: [(DenialCode, u16); 17] = [
            (DenialCode::BlockedByPolicy, 403),
            (DenialCode::MethodNotAllowed, 403),
            (DenialCode::PathNotAllowed, 403),
            (DenialCode::CredentialExpired, 403),
            (DenialCode::BudgetExhausted, 403),
            (DenialCode::ProxyAuthRequired, 407),
            (DenialCode::TlsRequired, 502),
            (DenialCode::SecretInRequest, 403),
            (DenialCode::HeaderConflict, 403),
            (DenialCode::CredentialUnavailable, 403),
            (DenialCode::ClientOffline, 503),
            (DenialCode::PrivateAddress, 403),
            (DenialCode::UsePlainHttpForCredentialHosts, 403),
            (DenialCode::RequestTooLarge, 413),
            (DenialCode::ResponseTooLarge, 502),
            (DenialCode::UpstreamError, 502),
            (DenialCode::BadRequest, 400),
        ];
        for (code, status) in want {
            assert_eq!(code.http_status(), status, "{code}");
        }
    }
}
