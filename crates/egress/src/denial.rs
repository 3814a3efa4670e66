//! Denials: the machine-readable refusals the agent gets and the observation records.
//!
//! Owns the list of codes, their HTTP status, their `retry` flag and the JSON body of
//! `egress-contract.md`. It never puts a secret, a query string or a local path into a
//! message: messages name the host, the slot and the rule, nothing else.

use std::fmt;

use bytes::Bytes;
use serde::Serialize;

/// Why the proxy refused a call. The string forms are the contract's `error` codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DenialCode {
    /// The host is not listed in the manifest (nor a host of a granted slot).
    BlockedByPolicy,
    /// The grant does not allow this method.
    MethodNotAllowed,
    /// The grant does not allow this path (or the path is not normalisable).
    PathNotAllowed,
    /// The grant's `expires_at` has passed.
    CredentialExpired,
    /// The grant's `max_requests` have been used.
    BudgetExhausted,
    /// Missing or wrong `Proxy-Authorization`.
    ProxyAuthRequired,
    /// The upstream does not speak TLS; credentials are never sent in clear.
    TlsRequired,
    /// The request carries a credential placeholder or the secret outside its slot.
    SecretInRequest,
    /// The agent set the injection header or parameter to something else.
    HeaderConflict,
    /// The secret cannot be opened for this hire, slot and policy (missing, tampered, replayed).
    CredentialUnavailable,
    /// Relayed mode: the client's node cannot be reached.
    ClientOffline,
    /// The host resolved only to private, loopback, link-local or metadata addresses.
    PrivateAddress,
    /// `CONNECT` to a host with a credential slot; use plain HTTP so the proxy can inject.
    UsePlainHttpForCredentialHosts,
    /// The request body is larger than the proxy accepts.
    RequestTooLarge,
    /// The upstream response is larger than the proxy delivers.
    ResponseTooLarge,
    /// The upstream could not be reached or failed mid-exchange.
    UpstreamError,
    /// The request is not something the proxy handles (origin-form, upgrade, bad URI, ...).
    BadRequest,
}

impl DenialCode {
    /// Every code, in declaration order.
    pub const ALL: [DenialCode; 17] = [
        DenialCode::BlockedByPolicy,
        DenialCode::MethodNotAllowed,
        DenialCode::PathNotAllowed,
        DenialCode::CredentialExpired,
        DenialCode::BudgetExhausted,
        DenialCode::ProxyAuthRequired,
        DenialCode::TlsRequired,
        DenialCode::SecretInRequest,
        DenialCode::HeaderConflict,
        DenialCode::CredentialUnavailable,
        DenialCode::ClientOffline,
        DenialCode::PrivateAddress,
        DenialCode::UsePlainHttpForCredentialHosts,
        DenialCode::RequestTooLarge,
        DenialCode::ResponseTooLarge,
        DenialCode::UpstreamError,
        DenialCode::BadRequest,
    ];

    /// The contract's string for this code (the JSON `error` field).
    pub fn as_str(self) -> &'static str {
        match self {
            DenialCode::BlockedByPolicy => "blocked_by_policy",
            DenialCode::MethodNotAllowed => "method_not_allowed",
            DenialCode::PathNotAllowed => "path_not_allowed",
            DenialCode::CredentialExpired => "credential_expired",
            DenialCode::BudgetExhausted => "budget_exhausted",
            DenialCode::ProxyAuthRequired => "proxy_auth_required",
            DenialCode::TlsRequired => "tls_required",
            DenialCode::SecretInRequest => "secret_in_request",
            DenialCode::HeaderConflict => "header_conflict",
            DenialCode::CredentialUnavailable => "credential_unavailable",
            DenialCode::ClientOffline => "client_offline",
            DenialCode::PrivateAddress => "private_address",
            DenialCode::UsePlainHttpForCredentialHosts => "use_plain_http_for_credential_hosts",
            DenialCode::RequestTooLarge => "request_too_large",
            DenialCode::ResponseTooLarge => "response_too_large",
            DenialCode::UpstreamError => "upstream_error",
            DenialCode::BadRequest => "bad_request",
        }
    }

    /// Parses a contract string (e.g. one received from a client's node in relayed mode).
    pub fn parse(s: &str) -> Option<DenialCode> {
        DenialCode::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// The HTTP status the agent gets: 407 for proxy auth, 400 bad request, 413 request too
    /// large, 502 for upstream failures (including `tls_required` and `response_too_large`),
    /// 503 when the client is offline, 403 for every policy refusal.
    pub fn status(self) -> u16 {
        match self {
            DenialCode::ProxyAuthRequired => 407,
            DenialCode::BadRequest => 400,
            DenialCode::RequestTooLarge => 413,
            DenialCode::TlsRequired | DenialCode::ResponseTooLarge | DenialCode::UpstreamError => {
                502
            }
            DenialCode::ClientOffline => 503,
            _ => 403,
        }
    }

    /// Whether trying the same call again later may succeed.
    pub fn retry(self) -> bool {
        matches!(self, DenialCode::ClientOffline | DenialCode::UpstreamError)
    }
}

impl fmt::Display for DenialCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refusal: code, the host it concerns (`host[:port]`, empty when unknown) and a message
/// for humans and agents. Contains no secret by construction (see the module doc).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    /// What rule refused the call.
    pub code: DenialCode,
    /// `host[:port]` of the call (port omitted when 443), or empty.
    pub host: String,
    /// Human-readable explanation.
    pub message: String,
}

#[derive(Serialize)]
struct Body<'a> {
    error: &'a str,
    host: &'a str,
    message: &'a str,
    retry: bool,
}

impl Denial {
    /// A denial for `host` with `message`.
    pub fn new(code: DenialCode, host: impl Into<String>, message: impl Into<String>) -> Denial {
        Denial {
            code,
            host: host.into(),
            message: message.into(),
        }
    }

    /// The HTTP status of the response ([`DenialCode::status`]).
    pub fn status(&self) -> u16 {
        self.code.status()
    }

    /// The JSON body: `{"error":…,"host":…,"message":…,"retry":…}`.
    pub fn json(&self) -> Bytes {
        let body = Body {
            error: self.code.as_str(),
            host: &self.host,
            message: &self.message,
            retry: self.code.retry(),
        };
        // Serialising a struct of strings and a bool cannot fail.
        Bytes::from(serde_json::to_vec(&body).unwrap_or_default())
    }
}

impl fmt::Display for Denial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.code, self.host, self.message)
    }
}

impl std::error::Error for Denial {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_are_unique() {
        for code in DenialCode::ALL {
            assert_eq!(DenialCode::parse(code.as_str()), Some(code));
        }
        let mut names: Vec<_> = DenialCode::ALL.iter().map(|c| c.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), DenialCode::ALL.len());
        assert_eq!(DenialCode::parse("nope"), None);
    }

    #[test]
    fn json_body_has_the_contract_fields() {
        let d = Denial::new(
            DenialCode::BlockedByPolicy,
            "evil.example",
            "not \"listed\"",
        );
        let v: serde_json::Value =
            serde_json::from_slice(&d.json()).unwrap_or_else(|e| panic!("json: {e}"));
        assert_eq!(v["error"], "blocked_by_policy");
        assert_eq!(v["host"], "evil.example");
        assert_eq!(v["message"], "not \"listed\"");
        assert_eq!(v["retry"], false);
        assert_eq!(d.status(), 403);
        let off = Denial::new(DenialCode::ClientOffline, "h", "m");
        assert_eq!(off.status(), 503);
        assert!(off.code.retry());
        assert_eq!(DenialCode::ProxyAuthRequired.status(), 407);
    }
}
