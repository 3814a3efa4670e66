//! Grant policies: what one client allows one slot of one hire to do, and the pure checks.
//!
//! Owns [`GrantPolicy`] (the client's grant), [`Grant`] (a validated policy plus its request
//! counter), path normalisation and the decision for one call: host, method, path, expiry,
//! budget. Decisions are pure functions of the request and a clock value; this module never
//! touches the network, the secret or the agent.

use std::sync::Mutex;

use souk_protocol::manifest::Injection;

use crate::config::ConfigError;
use crate::denial::{Denial, DenialCode};
use crate::host::HostKey;

/// What the proxy does with a relayed call while the client's node is unreachable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OfflineBehaviour {
    /// Deny at once with `client_offline` (retry true).
    Fail,
    /// Keep trying for up to `max_ms` milliseconds, then deny with `client_offline`.
    Wait {
        /// Longest wait, in milliseconds.
        max_ms: u64,
    },
}

/// The client's grant for one credential slot of one hire (mirrors the signed policy of
/// `spec/credentials.md`; the node maps the protocol type onto this one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantPolicy {
    /// Slot name, as in the manifest.
    pub slot: String,
    /// Exact `host[:port]` the secret may be sent to (a subset of the manifest slot's hosts).
    pub hosts: Vec<String>,
    /// Allowed methods, uppercase; empty means any.
    pub methods: Vec<String>,
    /// Allowed path prefixes (matched on whole segments after normalisation); empty means any.
    pub path_prefixes: Vec<String>,
    /// How the secret is injected (equal to the manifest slot's injection).
    pub injection: Injection,
    /// Expiry, ms since the Unix epoch: calls at or after this instant are refused.
    pub expires_at: u64,
    /// Calls that may reach the upstream with the credential.
    pub max_requests: u64,
    /// Relayed mode: behaviour while the client is offline (ignored in sealed mode).
    pub offline: OfflineBehaviour,
}

#[derive(Debug, Default)]
struct Usage {
    used: u64,
    reserved: u64,
}

/// A validated [`GrantPolicy`] with its request counter. Shared by the provider's proxy
/// (sealed mode, and pre-checks in relayed mode) and by the client's node (relayed mode).
#[derive(Debug)]
pub struct Grant {
    policy: GrantPolicy,
    hosts: Vec<HostKey>,
    prefixes: Vec<String>,
    usage: Mutex<Usage>,
}

impl Grant {
    /// Validates `policy`; `requests_used` restores the counter (e.g. after a node restart,
    /// from the observations already recorded for this slot).
    pub fn new(policy: GrantPolicy, requests_used: u64) -> Result<Grant, ConfigError> {
        let slot = policy.slot.clone();
        if slot.is_empty() || !slot.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(ConfigError::Slot {
                slot,
                reason: "slot name must be [A-Za-z0-9-]+".into(),
            });
        }
        if policy.hosts.is_empty() {
            return Err(ConfigError::Slot {
                slot,
                reason: "a grant needs at least one host".into(),
            });
        }
        let mut hosts = Vec::with_capacity(policy.hosts.len());
        for h in &policy.hosts {
            let key = HostKey::parse(h).ok_or_else(|| ConfigError::Slot {
                slot: slot.clone(),
                reason: format!("host {h:?} is not host[:port]"),
            })?;
            hosts.push(key);
        }
        for m in &policy.methods {
            if m.is_empty() || !m.bytes().all(|b| b.is_ascii_uppercase()) {
                return Err(ConfigError::Slot {
                    slot,
                    reason: format!("method {m:?} must be an uppercase token"),
                });
            }
        }
        let mut prefixes = Vec::with_capacity(policy.path_prefixes.len());
        for p in &policy.path_prefixes {
            let n = normalize_path(p).map_err(|e| ConfigError::Slot {
                slot: slot.clone(),
                reason: format!("path prefix {p:?}: {e}"),
            })?;
            prefixes.push(n);
        }
        Ok(Grant {
            policy,
            hosts,
            prefixes,
            usage: Mutex::new(Usage {
                used: requests_used,
                reserved: 0,
            }),
        })
    }

    /// The policy this grant enforces.
    pub fn policy(&self) -> &GrantPolicy {
        &self.policy
    }

    /// Calls that reached the upstream with the credential so far.
    pub fn requests_used(&self) -> u64 {
        self.lock().used
    }

    pub(crate) fn slot(&self) -> &str {
        &self.policy.slot
    }

    pub(crate) fn covers(&self, host: &HostKey) -> bool {
        self.hosts.contains(host)
    }

    /// Host, method, path (already normalised), expiry and budget, in that order.
    pub(crate) fn check(
        &self,
        host: &HostKey,
        method: &str,
        path: &str,
        now_ms: u64,
    ) -> Result<(), Denial> {
        let h = host.to_string();
        let slot = &self.policy.slot;
        if !self.covers(host) {
            return Err(Denial::new(
                DenialCode::BlockedByPolicy,
                h,
                format!("the grant for slot {slot} does not list this host"),
            ));
        }
        if !self.policy.methods.is_empty() && !self.policy.methods.iter().any(|m| m == method) {
            return Err(Denial::new(
                DenialCode::MethodNotAllowed,
                h,
                format!(
                    "slot {slot} allows only {}; not {method}",
                    self.policy.methods.join(", ")
                ),
            ));
        }
        if !self.prefixes.is_empty() && !self.prefixes.iter().any(|p| path_matches(p, path)) {
            return Err(Denial::new(
                DenialCode::PathNotAllowed,
                h,
                format!(
                    "slot {slot} allows only paths under {}",
                    self.prefixes.join(", ")
                ),
            ));
        }
        if now_ms >= self.policy.expires_at {
            return Err(Denial::new(
                DenialCode::CredentialExpired,
                h,
                format!("the grant for slot {slot} has expired"),
            ));
        }
        let u = self.lock();
        if u.used.saturating_add(u.reserved) >= self.policy.max_requests {
            return Err(budget_denial(h, slot, self.policy.max_requests));
        }
        Ok(())
    }

    /// Takes one request from the budget; released unless [`Reservation::commit`] is called.
    pub(crate) fn reserve(&self, host: &HostKey) -> Result<Reservation<'_>, Denial> {
        let mut u = self.lock();
        if u.used.saturating_add(u.reserved) >= self.policy.max_requests {
            return Err(budget_denial(
                host.to_string(),
                &self.policy.slot,
                self.policy.max_requests,
            ));
        }
        u.reserved += 1;
        Ok(Reservation {
            grant: self,
            done: false,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Usage> {
        // The counter stays consistent even if a holder panicked: recover the guard.
        self.usage.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn budget_denial(host: String, slot: &str, max: u64) -> Denial {
    Denial::new(
        DenialCode::BudgetExhausted,
        host,
        format!("the grant for slot {slot} allows {max} requests; all are used"),
    )
}

/// One request taken from a grant's budget.
pub(crate) struct Reservation<'a> {
    grant: &'a Grant,
    done: bool,
}

impl Reservation<'_> {
    /// The call reached the upstream with the credential: it counts.
    pub(crate) fn commit(mut self) {
        let mut u = self.grant.lock();
        u.reserved -= 1;
        u.used += 1;
        self.done = true;
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.grant.lock().reserved -= 1;
        }
    }
}

/// Whether `path` is `prefix` or lies under it on a segment boundary (`/v1/users` covers
/// `/v1/users` and `/v1/users/7`, not `/v1/usersX`). Both must be normalised.
pub(crate) fn path_matches(prefix: &str, path: &str) -> bool {
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || prefix.ends_with('/') || rest.starts_with('/'),
        None => false,
    }
}

/// Why a path cannot be normalised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// The path does not start with `/`.
    #[error("the path must start with /")]
    NotAbsolute,
    /// A `%` not followed by two hex digits.
    #[error("bad percent-encoding")]
    BadEncoding,
    /// An encoded `/` or `\` (`%2F`, `%5C`), which servers disagree on.
    #[error("encoded path separators are not allowed")]
    EncodedSeparator,
    /// A character outside visible ASCII, or `\`, `#`, `?`.
    #[error("invalid character in the path")]
    InvalidChar,
    /// A `..` segment (also `..;x` or `.;x`), after decoding.
    #[error("dot segments are not allowed")]
    DotSegment,
}

/// Normalises a request path (without the query) for prefix matching; the result is also what
/// the proxy sends upstream, so the upstream sees exactly the path that was checked.
///
/// Rules: starts with `/`; `%XX` of an unreserved character (`A-Z a-z 0-9 - . _ ~`) is
/// decoded, any other `%XX` is kept with uppercase hex; `%2F` and `%5C` are refused; raw
/// characters must be visible ASCII other than `\ # ?`; `.` segments are removed; `..`
/// segments (and `.`/`..` carrying `;` parameters) are refused; empty segments are kept.
pub fn normalize_path(raw: &str) -> Result<String, PathError> {
    let bytes = raw.as_bytes();
    if bytes.first() != Some(&b'/') {
        return Err(PathError::NotAbsolute);
    }
    let mut decoded = String::with_capacity(raw.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let hi = bytes.get(i + 1).and_then(|c| hex_val(*c));
            let lo = bytes.get(i + 2).and_then(|c| hex_val(*c));
            let (Some(hi), Some(lo)) = (hi, lo) else {
                return Err(PathError::BadEncoding);
            };
            let v = hi * 16 + lo;
            if v == b'/' || v == b'\\' {
                return Err(PathError::EncodedSeparator);
            }
            if is_unreserved(v) {
                decoded.push(char::from(v));
            } else {
                decoded.push('%');
                decoded.push(char::from(HEX_UPPER[usize::from(v >> 4)]));
                decoded.push(char::from(HEX_UPPER[usize::from(v & 15)]));
            }
            i += 3;
            continue;
        }
        if !(0x21..=0x7e).contains(&b) || matches!(b, b'\\' | b'#' | b'?') {
            return Err(PathError::InvalidChar);
        }
        decoded.push(char::from(b));
        i += 1;
    }
    let segments: Vec<&str> = decoded[1..].split('/').collect();
    let last = segments.len() - 1;
    let mut out = String::with_capacity(decoded.len());
    for (n, seg) in segments.iter().enumerate() {
        if *seg == "." {
            if n == last {
                out.push('/');
            }
            continue;
        }
        let base = seg.split(';').next().unwrap_or(seg);
        if base == ".." || (base == "." && seg.contains(';')) {
            return Err(PathError::DotSegment);
        }
        out.push('/');
        out.push_str(seg);
    }
    if out.is_empty() {
        out.push('/');
    }
    Ok(out)
}

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> GrantPolicy {
        GrantPolicy {
            slot: "crm".into(),
            hosts: vec!["api.test".into()],
            methods: vec!["GET".into(), "POST".into()],
            path_prefixes: vec!["/v1/contacts".into()],
            injection: Injection::Basic,
            expires_at: 1_000,
            max_requests: 2,
            offline: OfflineBehaviour::Fail,
        }
    }

    fn host(s: &str) -> HostKey {
        HostKey::parse(s).unwrap_or_else(|| panic!("host {s}"))
    }

    #[test]
    fn normalisation() {
        let n = |s: &str| normalize_path(s);
        assert_eq!(n("/"), Ok("/".into()));
        assert_eq!(n("/a/./b"), Ok("/a/b".into()));
        assert_eq!(n("/a/."), Ok("/a/".into()));
        assert_eq!(n("/%7euser/%41%2d"), Ok("/~user/A-".into()));
        assert_eq!(n("/a%3ab%20c"), Ok("/a%3Ab%20c".into()));
        assert_eq!(n("/a//b"), Ok("/a//b".into()));
        assert_eq!(n("/a/%2e/b"), Ok("/a/b".into()));
        assert_eq!(n("/a/../b"), Err(PathError::DotSegment));
        assert_eq!(n("/a/%2e%2E/b"), Err(PathError::DotSegment));
        assert_eq!(n("/a/..;x/b"), Err(PathError::DotSegment));
        assert_eq!(n("/a/.;x/b"), Err(PathError::DotSegment));
        assert_eq!(n("/a%2fb"), Err(PathError::EncodedSeparator));
        assert_eq!(n("/a%5Cb"), Err(PathError::EncodedSeparator));
        assert_eq!(n("/a\\b"), Err(PathError::InvalidChar));
        assert_eq!(n("/a b"), Err(PathError::InvalidChar));
        assert_eq!(n("/a%zz"), Err(PathError::BadEncoding));
        assert_eq!(n("/a%2"), Err(PathError::BadEncoding));
        assert_eq!(n("a"), Err(PathError::NotAbsolute));
        assert_eq!(n(""), Err(PathError::NotAbsolute));
        assert_eq!(n("/..."), Ok("/...".into()));
    }

    #[test]
    fn prefix_on_segment_boundary() {
        assert!(path_matches("/v1/users", "/v1/users"));
        assert!(path_matches("/v1/users", "/v1/users/7"));
        assert!(!path_matches("/v1/users", "/v1/usersX"));
        assert!(path_matches("/v1/", "/v1/x"));
        assert!(path_matches("/", "/anything"));
        assert!(!path_matches("/v1/users", "/v1"));
    }

    #[test]
    fn checks_in_order() {
        let g = Grant::new(policy(), 0).unwrap_or_else(|e| panic!("{e}"));
        let h = host("api.test");
        assert_eq!(g.check(&h, "GET", "/v1/contacts/1", 999), Ok(()));
        let code = |r: Result<(), Denial>| r.err().map(|d| d.code);
        assert_eq!(
            code(g.check(&host("api.test:8443"), "GET", "/v1/contacts", 0)),
            Some(DenialCode::BlockedByPolicy)
        );
        assert_eq!(
            code(g.check(&h, "DELETE", "/v1/contacts", 0)),
            Some(DenialCode::MethodNotAllowed)
        );
        assert_eq!(
            code(g.check(&h, "GET", "/v1/admin", 0)),
            Some(DenialCode::PathNotAllowed)
        );
        assert_eq!(
            code(g.check(&h, "GET", "/v1/contacts", 1_000)),
            Some(DenialCode::CredentialExpired)
        );
    }

    #[test]
    fn budget_counts_only_committed_calls() {
        let g = Grant::new(policy(), 1).unwrap_or_else(|e| panic!("{e}"));
        let h = host("api.test");
        let r = g.reserve(&h).unwrap_or_else(|d| panic!("{d}"));
        // The reserved request holds the last unit while in flight.
        assert_eq!(
            g.check(&h, "GET", "/v1/contacts", 0).err().map(|d| d.code),
            Some(DenialCode::BudgetExhausted)
        );
        drop(r);
        assert_eq!(g.requests_used(), 1);
        let r = g.reserve(&h).unwrap_or_else(|d| panic!("{d}"));
        r.commit();
        assert_eq!(g.requests_used(), 2);
        assert!(g.reserve(&h).is_err());
    }

    #[test]
    fn rejects_bad_policies() {
        let mut p = policy();
        p.methods = vec!["get".into()];
        assert!(Grant::new(p, 0).is_err());
        let mut p = policy();
        p.path_prefixes = vec!["/a/../b".into()];
        assert!(Grant::new(p, 0).is_err());
        let mut p = policy();
        p.hosts = vec!["http://x".into()];
        assert!(Grant::new(p, 0).is_err());
        let mut p = policy();
        p.hosts.clear();
        assert!(Grant::new(p, 0).is_err());
    }
}
