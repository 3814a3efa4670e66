//! The credential policy: what a client grants for one credential slot of one hire, its
//! canonical encoding, its hash, its validation against the manifest's slot, and the pure
//! request check both the provider's egress proxy and a relaying client node apply.
//!
//! A policy binds a secret to a hire id and slot name, exact hosts (a subset of the slot's),
//! allowed methods and path prefixes, the manifest's injection, an expiry and a request
//! budget, and says whether the secret is sealed to the provider or relayed by the client.
//! This module holds no secret and does no I/O. Format and semantics: `spec/credentials.md`.

use crate::Timestamp;
use crate::credential::denial::DenialCode;
use crate::encoding::{self, Canonical, DecodeError, DecodeErrorKind, Encoder, Reader};
use crate::hash::{Domain, Hash};
use crate::manifest::{CredentialSlot, Injection, is_valid_host, is_valid_name};
use crate::negotiation::HireId;

/// Format version of the policy.
pub const POLICY_VERSION: u64 = 1;
/// Largest encoded policy (a policy at every field limit is about 33 800 bytes).
pub const MAX_POLICY_LEN: usize = 36 * 1024;
/// Most hosts in a policy (the manifest's limit per slot).
pub const MAX_POLICY_HOSTS: usize = 64;
/// Most methods in a policy.
pub const MAX_POLICY_METHODS: usize = 16;
/// Longest method name.
pub const MAX_METHOD_LEN: usize = 16;
/// Most path prefixes in a policy.
pub const MAX_PATH_PREFIXES: usize = 32;
/// Longest path prefix.
pub const MAX_PATH_PREFIX_LEN: usize = 512;
/// Longest path [`normalize_path`] accepts (the receipt limit on observed paths).
pub const MAX_NORMALIZED_PATH_LEN: usize = crate::receipt::MAX_PATH_LEN;
/// Largest request budget.
pub const MAX_REQUESTS: u64 = 1_000_000;
/// Longest a relayed call may wait for an offline client: 5 minutes.
pub const MAX_OFFLINE_WAIT_MS: u64 = 5 * 60 * 1000;

const MAX_SLOT_NAME: usize = 64;
const MAX_HOST: usize = 253 + 6;

/// What the provider's proxy does with a relayed call while the client's node is unreachable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OfflineBehaviour {
    /// Deny at once with `client_offline` (retry true).
    Fail,
    /// Hold the call up to `max_ms` for the client to come back, then deny with
    /// `client_offline`.
    Wait {
        /// Longest wait, 1..=[`MAX_OFFLINE_WAIT_MS`].
        max_ms: u64,
    },
}

/// How the secret reaches the upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialMode {
    /// Sealed to the provider's X25519 sealing key; the provider's proxy injects it.
    Sealed,
    /// The provider's proxy forwards the un-injected request to the client's node, which
    /// injects the secret and performs the call; the secret never leaves the client.
    Relayed {
        /// What to do while the client is offline.
        offline: OfflineBehaviour,
    },
}

impl CredentialMode {
    /// `"sealed"` or `"relayed"`.
    pub fn as_str(self) -> &'static str {
        match self {
            CredentialMode::Sealed => "sealed",
            CredentialMode::Relayed { .. } => "relayed",
        }
    }
}

/// What a client grants for one credential slot of one hire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialPolicy {
    /// The hire (the contract's id).
    pub hire_id: HireId,
    /// The manifest's slot name.
    pub slot: String,
    /// Exact `host[:port]` the secret may be sent to (port omitted for 443): a non-empty,
    /// sorted, unique subset of the slot's hosts.
    pub hosts: Vec<String>,
    /// Allowed methods (uppercase, sorted, unique); empty allows any method.
    pub methods: Vec<String>,
    /// Allowed path prefixes (normalised, sorted, unique; matched on segment boundaries);
    /// empty allows any path.
    pub path_prefixes: Vec<String>,
    /// How the secret is injected; must equal the manifest slot's.
    pub injection: Injection,
    /// The secret is unusable from this time on (ms since the Unix epoch).
    pub expires_at: Timestamp,
    /// Most requests the secret may be injected into, 1..=[`MAX_REQUESTS`].
    pub max_requests: u64,
    /// Sealed or relayed.
    pub mode: CredentialMode,
}

/// Why a policy is not acceptable. Callers match on the variant; the text is for people.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// The slot name is not a valid name.
    #[error("slot name {0:?} is invalid")]
    InvalidSlotName(String),
    /// The policy names another slot than the one it is checked against.
    #[error("policy is for slot {policy:?}, checked against slot {slot:?}")]
    SlotMismatch {
        /// The policy's slot.
        policy: String,
        /// The manifest slot's name.
        slot: String,
    },
    /// The policy lists no host.
    #[error("policy lists no host")]
    NoHosts,
    /// A host is not a lowercase `host[:port]`.
    #[error("host {0:?} is not a lowercase host[:port]")]
    InvalidHost(String),
    /// Hosts are not sorted and unique.
    #[error("hosts must be sorted and unique")]
    HostsNotSorted,
    /// A host the manifest's slot does not list.
    #[error("host {0:?} is not one of the slot's hosts")]
    HostNotInSlot(String),
    /// A method that is not an uppercase token.
    #[error("method {0:?} is not an uppercase token of 1..=16 letters")]
    InvalidMethod(String),
    /// Methods are not sorted and unique.
    #[error("methods must be sorted and unique")]
    MethodsNotSorted,
    /// A path prefix that is not a normalised absolute path.
    #[error("path prefix {prefix:?} is not a normalised absolute path")]
    InvalidPathPrefix {
        /// The prefix.
        prefix: String,
    },
    /// Path prefixes are not sorted and unique.
    #[error("path prefixes must be sorted and unique")]
    PathPrefixesNotSorted,
    /// The injection differs from the manifest slot's.
    #[error("injection differs from the manifest slot's")]
    InjectionMismatch,
    /// The budget is 0 or above [`MAX_REQUESTS`].
    #[error("max_requests {0} is outside 1..={MAX_REQUESTS}")]
    Budget(u64),
    /// The offline wait is 0 or above [`MAX_OFFLINE_WAIT_MS`].
    #[error("offline wait {0} ms is outside 1..={MAX_OFFLINE_WAIT_MS}")]
    OfflineWait(u64),
}

impl PolicyError {
    /// Stable kebab-case name (used in test vectors).
    pub fn code(&self) -> &'static str {
        match self {
            PolicyError::InvalidSlotName(_) => "invalid-slot-name",
            PolicyError::SlotMismatch { .. } => "slot-mismatch",
            PolicyError::NoHosts => "no-hosts",
            PolicyError::InvalidHost(_) => "invalid-host",
            PolicyError::HostsNotSorted => "hosts-not-sorted",
            PolicyError::HostNotInSlot(_) => "host-not-in-slot",
            PolicyError::InvalidMethod(_) => "invalid-method",
            PolicyError::MethodsNotSorted => "methods-not-sorted",
            PolicyError::InvalidPathPrefix { .. } => "invalid-path-prefix",
            PolicyError::PathPrefixesNotSorted => "path-prefixes-not-sorted",
            PolicyError::InjectionMismatch => "injection-mismatch",
            PolicyError::Budget(_) => "budget",
            PolicyError::OfflineWait(_) => "offline-wait",
        }
    }
}

/// Why a request path cannot be normalised (it is then never allowed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// Does not start with `/`.
    #[error("path does not start with '/'")]
    NotAbsolute,
    /// Contains `?` or `#` (pass the path without query and fragment).
    #[error("path carries a query or fragment")]
    QueryOrFragment,
    /// A `%` not followed by two hex digits.
    #[error("malformed percent-encoding")]
    BadPercentEncoding,
    /// `%2F` or `%5C`: an encoded separator that servers disagree about.
    #[error("encoded '/' or '\\' in the path")]
    EncodedSeparator,
    /// An encoded control character (`%00`–`%1F`, `%7F`).
    #[error("encoded control character in the path")]
    EncodedControl,
    /// A byte outside RFC 3986 `pchar` and `/`.
    #[error("byte 0x{0:02x} is not allowed in a path")]
    InvalidCharacter(u8),
    /// A `.` or `..` segment (after percent-decoding).
    #[error("dot segment in the path")]
    DotSegment,
    /// Longer than [`MAX_NORMALIZED_PATH_LEN`].
    #[error("path longer than {MAX_NORMALIZED_PATH_LEN} bytes")]
    TooLong,
}

impl PathError {
    /// Stable kebab-case name (used in test vectors).
    pub fn code(&self) -> &'static str {
        match self {
            PathError::NotAbsolute => "not-absolute",
            PathError::QueryOrFragment => "query-or-fragment",
            PathError::BadPercentEncoding => "bad-percent-encoding",
            PathError::EncodedSeparator => "encoded-separator",
            PathError::EncodedControl => "encoded-control",
            PathError::InvalidCharacter(_) => "invalid-character",
            PathError::DotSegment => "dot-segment",
            PathError::TooLong => "too-long",
        }
    }
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn is_path_char(b: u8) -> bool {
    is_unreserved(b)
        || matches!(
            b,
            b'!' | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b':'
                | b'@'
                | b'/'
        )
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Normalises a request path (without query) for policy matching (`spec/credentials.md`,
/// "Path normalisation"): percent-encoded unreserved characters are decoded, other
/// percent-encodings get uppercase hex digits; encoded separators and control characters,
/// bytes outside RFC 3986 `pchar`, and `.`/`..` segments are refused, never resolved.
pub fn normalize_path(raw: &str) -> Result<String, PathError> {
    let bytes = raw.as_bytes();
    if bytes.len() > MAX_NORMALIZED_PATH_LEN {
        return Err(PathError::TooLong);
    }
    if bytes.first() != Some(&b'/') {
        return Err(PathError::NotAbsolute);
    }
    let mut out = String::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'%' => {
                let (hi, lo) = match (bytes.get(i + 1), bytes.get(i + 2)) {
                    (Some(h), Some(l)) => (hex_value(*h), hex_value(*l)),
                    _ => (None, None),
                };
                let (Some(hi), Some(lo)) = (hi, lo) else {
                    return Err(PathError::BadPercentEncoding);
                };
                let v = hi * 16 + lo;
                if is_unreserved(v) {
                    out.push(char::from(v));
                } else if v == b'/' || v == b'\\' {
                    return Err(PathError::EncodedSeparator);
                } else if v < 0x20 || v == 0x7f {
                    return Err(PathError::EncodedControl);
                } else {
                    out.push_str(&format!("%{v:02X}"));
                }
                i += 3;
            }
            b'?' | b'#' => return Err(PathError::QueryOrFragment),
            b if is_path_char(b) => {
                out.push(char::from(b));
                i += 1;
            }
            other => return Err(PathError::InvalidCharacter(other)),
        }
    }
    // A dot segment, also with `;` parameters (`..;x`): servers that strip parameters would
    // resolve it and leave the granted prefix.
    if out.split('/').any(|seg| {
        let base = seg.split(';').next().unwrap_or(seg);
        base == "." || base == ".."
    }) {
        return Err(PathError::DotSegment);
    }
    Ok(out)
}

/// True when the normalised `path` is under the normalised `prefix`: equal to it, or starting
/// with it at a segment boundary (the prefix ends with `/`, or the path continues with `/`).
pub fn path_matches(path: &str, prefix: &str) -> bool {
    match path.strip_prefix(prefix) {
        Some("") => true,
        Some(rest) => prefix.ends_with('/') || rest.starts_with('/'),
        None => false,
    }
}

fn is_method(m: &str) -> bool {
    !m.is_empty() && m.len() <= MAX_METHOD_LEN && m.bytes().all(|b| b.is_ascii_uppercase())
}

fn strictly_sorted(items: &[String]) -> bool {
    items.windows(2).all(|w| w[0] < w[1])
}

impl CredentialPolicy {
    /// `BLAKE3("souk/v1/credential-policy" || 0x00 || canonical policy bytes)`.
    pub fn policy_hash(&self) -> Hash {
        Domain::CredentialPolicy.hash(&encoding::encode(self))
    }

    /// Canonical bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        encoding::encode(self)
    }

    /// Decodes a standalone policy.
    pub fn decode_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        encoding::decode(bytes, MAX_POLICY_LEN)
    }

    /// The content rules that do not depend on the manifest.
    pub fn validate(&self) -> Result<(), PolicyError> {
        if !is_valid_name(&self.slot, MAX_SLOT_NAME) {
            return Err(PolicyError::InvalidSlotName(self.slot.clone()));
        }
        if self.hosts.is_empty() {
            return Err(PolicyError::NoHosts);
        }
        if let Some(h) = self.hosts.iter().find(|h| !is_valid_host(h)) {
            return Err(PolicyError::InvalidHost(h.clone()));
        }
        if !strictly_sorted(&self.hosts) {
            return Err(PolicyError::HostsNotSorted);
        }
        if let Some(m) = self.methods.iter().find(|m| !is_method(m)) {
            return Err(PolicyError::InvalidMethod(m.clone()));
        }
        if !strictly_sorted(&self.methods) {
            return Err(PolicyError::MethodsNotSorted);
        }
        if let Some(p) = self.path_prefixes.iter().find(|p| {
            p.len() > MAX_PATH_PREFIX_LEN || normalize_path(p).as_deref() != Ok(p.as_str())
        }) {
            return Err(PolicyError::InvalidPathPrefix { prefix: p.clone() });
        }
        if !strictly_sorted(&self.path_prefixes) {
            return Err(PolicyError::PathPrefixesNotSorted);
        }
        if self.max_requests == 0 || self.max_requests > MAX_REQUESTS {
            return Err(PolicyError::Budget(self.max_requests));
        }
        if let CredentialMode::Relayed {
            offline: OfflineBehaviour::Wait { max_ms },
        } = self.mode
            && (max_ms == 0 || max_ms > MAX_OFFLINE_WAIT_MS)
        {
            return Err(PolicyError::OfflineWait(max_ms));
        }
        Ok(())
    }

    /// [`CredentialPolicy::validate`] plus the rules against the manifest's slot: same
    /// name, hosts a subset of the slot's, the same injection.
    pub fn validate_for(&self, slot: &CredentialSlot) -> Result<(), PolicyError> {
        self.validate()?;
        if self.slot != slot.name {
            return Err(PolicyError::SlotMismatch {
                policy: self.slot.clone(),
                slot: slot.name.clone(),
            });
        }
        if let Some(h) = self.hosts.iter().find(|h| !slot.hosts.contains(h)) {
            return Err(PolicyError::HostNotInSlot(h.clone()));
        }
        if self.injection != slot.injection {
            return Err(PolicyError::InjectionMismatch);
        }
        Ok(())
    }

    /// Whether the secret may be injected into a request, checked in this order: host
    /// (`blocked_by_policy`), method (`method_not_allowed`), path (`path_not_allowed`; `path`
    /// is the raw path without query, normalised here), expiry at `now`
    /// (`credential_expired`), budget given `used` requests already injected
    /// (`budget_exhausted`). `host` is the lowercase `host[:port]`, port omitted for 443.
    pub fn check_request(
        &self,
        method: &str,
        host: &str,
        path: &str,
        now: Timestamp,
        used: u64,
    ) -> Result<(), DenialCode> {
        if !self.hosts.iter().any(|h| h == host) {
            return Err(DenialCode::BlockedByPolicy);
        }
        if !self.methods.is_empty() && !self.methods.iter().any(|m| m == method) {
            return Err(DenialCode::MethodNotAllowed);
        }
        let path = normalize_path(path).map_err(|_| DenialCode::PathNotAllowed)?;
        if !self.path_prefixes.is_empty()
            && !self.path_prefixes.iter().any(|p| path_matches(&path, p))
        {
            return Err(DenialCode::PathNotAllowed);
        }
        if now >= self.expires_at {
            return Err(DenialCode::CredentialExpired);
        }
        if used >= self.max_requests {
            return Err(DenialCode::BudgetExhausted);
        }
        Ok(())
    }
}

impl Canonical for OfflineBehaviour {
    fn encode(&self, enc: &mut Encoder) {
        match self {
            OfflineBehaviour::Fail => {
                enc.array(1);
                enc.u64(0);
            }
            OfflineBehaviour::Wait { max_ms } => {
                enc.array(2);
                enc.u64(1);
                enc.u64(*max_ms);
            }
        }
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let start = r.offset();
        let len = r.array()? as u64;
        let at = r.offset();
        let code = r.u64()?;
        let want = match code {
            0 => 1,
            1 => 2,
            _ => return Err(Reader::unknown_code(at, "offline behaviour", code)),
        };
        if len != want {
            return Err(wrong_arity(start, want, len));
        }
        let out = if code == 0 {
            OfflineBehaviour::Fail
        } else {
            OfflineBehaviour::Wait { max_ms: r.u64()? }
        };
        r.leave();
        Ok(out)
    }
}

impl Canonical for CredentialMode {
    fn encode(&self, enc: &mut Encoder) {
        match self {
            CredentialMode::Sealed => {
                enc.array(1);
                enc.u64(0);
            }
            CredentialMode::Relayed { offline } => {
                enc.array(2);
                enc.u64(1);
                offline.encode(enc);
            }
        }
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let start = r.offset();
        let len = r.array()? as u64;
        let at = r.offset();
        let code = r.u64()?;
        let want = match code {
            0 => 1,
            1 => 2,
            _ => return Err(Reader::unknown_code(at, "credential mode", code)),
        };
        if len != want {
            return Err(wrong_arity(start, want, len));
        }
        let out = if code == 0 {
            CredentialMode::Sealed
        } else {
            CredentialMode::Relayed {
                offline: OfflineBehaviour::decode(r)?,
            }
        };
        r.leave();
        Ok(out)
    }
}

pub(crate) fn wrong_arity(offset: usize, expected: u64, found: u64) -> DecodeError {
    DecodeError {
        offset,
        kind: DecodeErrorKind::WrongArity { expected, found },
    }
}

impl Canonical for CredentialPolicy {
    fn encode(&self, enc: &mut Encoder) {
        enc.array(10);
        enc.u64(POLICY_VERSION);
        self.hire_id.encode(enc);
        enc.text(&self.slot);
        enc.text_list(&self.hosts);
        enc.text_list(&self.methods);
        enc.text_list(&self.path_prefixes);
        self.injection.encode(enc);
        enc.u64(self.expires_at);
        enc.u64(self.max_requests);
        self.mode.encode(enc);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.array_of(10)?;
        r.version(POLICY_VERSION)?;
        let p = CredentialPolicy {
            hire_id: Hash::decode(r)?,
            slot: r.text_max(MAX_SLOT_NAME, "slot name")?,
            hosts: r.text_list(MAX_POLICY_HOSTS, MAX_HOST, "policy hosts")?,
            methods: r.text_list(MAX_POLICY_METHODS, MAX_METHOD_LEN, "policy methods")?,
            path_prefixes: r.text_list(MAX_PATH_PREFIXES, MAX_PATH_PREFIX_LEN, "path prefixes")?,
            injection: Injection::decode(r)?,
            expires_at: r.u64()?,
            max_requests: r.u64()?,
            mode: CredentialMode::decode(r)?,
        };
        r.leave();
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot() -> CredentialSlot {
        CredentialSlot {
            name: "crm".into(),
            hosts: vec!["api.example.com".into(), "eu.api.example.com".into()],
            injection: Injection::Header {
                name: "authorization".into(),
                prefix: "Bearer ".into(),
            },
        }
    }

    fn policy() -> CredentialPolicy {
        CredentialPolicy {
            hire_id: Hash::digest(b"hire"),
            slot: "crm".into(),
            hosts: vec!["api.example.com".into()],
            methods: vec!["GET".into(), "POST".into()],
            path_prefixes: vec!["/v1/contacts".into(), "/v2/".into()],
            injection: slot().injection,
            expires_at: 1_000,
            max_requests: 3,
            mode: CredentialMode::Sealed,
        }
    }

    #[test]
    fn valid_policy_round_trips_and_hash_depends_on_every_byte() {
        let p = policy();
        assert_eq!(p.validate_for(&slot()), Ok(()));
        let bytes = p.to_bytes();
        assert_eq!(CredentialPolicy::decode_bytes(&bytes), Ok(p.clone()));
        let mut q = p.clone();
        q.max_requests = 4;
        assert_ne!(p.policy_hash(), q.policy_hash());
        assert_eq!(
            p.policy_hash(),
            Domain::CredentialPolicy.hash(&bytes),
            "hash is over the canonical bytes with the policy tag"
        );
    }

    #[test]
    fn validation_names_each_problem() {
        let s = slot();
        type Mutation = Box<dyn Fn(&mut CredentialPolicy)>;
        let cases: Vec<(Mutation, PolicyError)> = vec![
            (
                Box::new(|p| p.slot = "CRM".into()),
                PolicyError::InvalidSlotName("CRM".into()),
            ),
            (
                Box::new(|p| p.slot = "mail".into()),
                PolicyError::SlotMismatch {
                    policy: "mail".into(),
                    slot: "crm".into(),
                },
            ),
            (Box::new(|p| p.hosts.clear()), PolicyError::NoHosts),
            (
                Box::new(|p| p.hosts = vec!["evil.example".into()]),
                PolicyError::HostNotInSlot("evil.example".into()),
            ),
            (
                Box::new(|p| p.hosts = vec!["API.example.com".into()]),
                PolicyError::InvalidHost("API.example.com".into()),
            ),
            (
                Box::new(|p| p.hosts = vec!["eu.api.example.com".into(), "api.example.com".into()]),
                PolicyError::HostsNotSorted,
            ),
            (
                Box::new(|p| p.methods = vec!["get".into()]),
                PolicyError::InvalidMethod("get".into()),
            ),
            (
                Box::new(|p| p.methods = vec!["POST".into(), "GET".into()]),
                PolicyError::MethodsNotSorted,
            ),
            (
                Box::new(|p| p.path_prefixes = vec!["/v1/../admin".into()]),
                PolicyError::InvalidPathPrefix {
                    prefix: "/v1/../admin".into(),
                },
            ),
            (
                Box::new(|p| p.path_prefixes = vec!["/v1/%7euser".into()]),
                PolicyError::InvalidPathPrefix {
                    prefix: "/v1/%7euser".into(),
                },
            ),
            (
                Box::new(|p| p.path_prefixes = vec!["/b".into(), "/a".into()]),
                PolicyError::PathPrefixesNotSorted,
            ),
            (
                Box::new(|p| p.injection = Injection::Basic),
                PolicyError::InjectionMismatch,
            ),
            (Box::new(|p| p.max_requests = 0), PolicyError::Budget(0)),
            (
                Box::new(|p| {
                    p.mode = CredentialMode::Relayed {
                        offline: OfflineBehaviour::Wait { max_ms: 0 },
                    }
                }),
                PolicyError::OfflineWait(0),
            ),
        ];
        for (mutate, want) in cases {
            let mut p = policy();
            mutate(&mut p);
            assert_eq!(p.validate_for(&s), Err(want));
        }
    }

    #[test]
    fn path_normalisation() {
        let ok = [
            ("/", "/"),
            ("/v1/contacts", "/v1/contacts"),
            ("/v1/%7Euser/%61", "/v1/~user/a"),
            ("/a%2cb", "/a%2Cb"),
            ("/a%20b", "/a%20b"),
            ("/x:y@z;p=1", "/x:y@z;p=1"),
            ("//double", "//double"),
        ];
        for (raw, want) in ok {
            assert_eq!(normalize_path(raw).as_deref(), Ok(want), "{raw}");
        }
        let bad = [
            ("v1", PathError::NotAbsolute),
            ("", PathError::NotAbsolute),
            ("/a?b", PathError::QueryOrFragment),
            ("/a#b", PathError::QueryOrFragment),
            ("/a%2", PathError::BadPercentEncoding),
            ("/a%zz", PathError::BadPercentEncoding),
            ("/a%2Fb", PathError::EncodedSeparator),
            ("/a%5cb", PathError::EncodedSeparator),
            ("/a%00", PathError::EncodedControl),
            ("/a b", PathError::InvalidCharacter(b' ')),
            ("/a\\b", PathError::InvalidCharacter(b'\\')),
            ("/é", PathError::InvalidCharacter(0xc3)),
            ("/v1/../admin", PathError::DotSegment),
            ("/v1/%2e%2E/admin", PathError::DotSegment),
            ("/v1/.", PathError::DotSegment),
        ];
        for (raw, want) in bad {
            assert_eq!(normalize_path(raw), Err(want), "{raw}");
        }
        assert_eq!(normalize_path(&"/a".repeat(1025)), Err(PathError::TooLong));
    }

    #[test]
    fn prefixes_match_on_segment_boundaries() {
        assert!(path_matches("/v1/contacts", "/v1/contacts"));
        assert!(path_matches("/v1/contacts/7", "/v1/contacts"));
        assert!(!path_matches("/v1/contactsx", "/v1/contacts"));
        assert!(path_matches("/v2/x", "/v2/"));
        assert!(!path_matches("/v2", "/v2/"));
        assert!(path_matches("/anything", "/"));
    }

    #[test]
    fn request_checks_in_order() {
        let p = policy();
        let host = "api.example.com";
        assert_eq!(p.check_request("GET", host, "/v1/contacts/1", 0, 0), Ok(()));
        assert_eq!(
            p.check_request("GET", host, "/v1/%63ontacts", 0, 2),
            Ok(()),
            "percent-encoded unreserved characters match their decoded form"
        );
        let cases = [
            (
                "GET",
                "eu.api.example.com",
                "/v1/contacts",
                0,
                0,
                DenialCode::BlockedByPolicy,
            ),
            (
                "DELETE",
                host,
                "/v1/contacts",
                0,
                0,
                DenialCode::MethodNotAllowed,
            ),
            ("GET", host, "/v1/admin", 0, 0, DenialCode::PathNotAllowed),
            (
                "GET",
                host,
                "/v1/contacts/../../admin",
                0,
                0,
                DenialCode::PathNotAllowed,
            ),
            (
                "GET",
                host,
                "/v1/contacts%2F..%2Fadmin",
                0,
                0,
                DenialCode::PathNotAllowed,
            ),
            (
                "GET",
                host,
                "/v1/contacts",
                1_000,
                0,
                DenialCode::CredentialExpired,
            ),
            (
                "GET",
                host,
                "/v1/contacts",
                999,
                3,
                DenialCode::BudgetExhausted,
            ),
        ];
        for (m, h, path, now, used, want) in cases {
            assert_eq!(
                p.check_request(m, h, path, now, used),
                Err(want),
                "{m} {h}{path}"
            );
        }
        let mut any = p.clone();
        any.methods.clear();
        any.path_prefixes.clear();
        assert_eq!(any.check_request("PATCH", host, "/x", 0, 0), Ok(()));
    }

    #[test]
    fn a_policy_at_every_limit_fits_its_size_limits() {
        let label = |i: usize| format!("{:0>63}", i);
        let p = CredentialPolicy {
            hire_id: Hash::digest(b"hire"),
            slot: "s".repeat(MAX_SLOT_NAME),
            hosts: (0..MAX_POLICY_HOSTS)
                .map(|i| {
                    format!(
                        "{}.{}.{}.{}:65535",
                        label(i),
                        label(0),
                        label(1),
                        "a".repeat(61)
                    )
                })
                .collect(),
            methods: (0..MAX_POLICY_METHODS)
                .map(|i| format!("{}{}", char::from(b'A' + i as u8), "M".repeat(15)))
                .collect(),
            path_prefixes: (0..MAX_PATH_PREFIXES)
                .map(|i| format!("/{:0>511}", i))
                .collect(),
            injection: Injection::Header {
                name: "h".repeat(64),
                prefix: "p".repeat(32),
            },
            expires_at: u64::MAX,
            max_requests: u64::MAX,
            mode: CredentialMode::Relayed {
                offline: OfflineBehaviour::Wait { max_ms: u64::MAX },
            },
        };
        assert!(p.hosts.iter().all(|h| h.len() == MAX_HOST));
        let bytes = p.to_bytes();
        assert!(bytes.len() <= MAX_POLICY_LEN, "{}", bytes.len());
        assert_eq!(CredentialPolicy::decode_bytes(&bytes), Ok(p.clone()));
        let grant = crate::credential::CredentialGrant {
            policy: p,
            sealed: Some(crate::credential::SealedSecret {
                recipient: [1; 32],
                policy_hash: Hash::digest(b"p"),
                enc: [2; 32],
                ciphertext: vec![3; crate::credential::seal::MAX_SECRET_LEN + 16],
            }),
        };
        let g = encoding::encode(&grant);
        assert!(
            g.len() <= crate::credential::grant::MAX_GRANT_LEN,
            "{}",
            g.len()
        );
        assert_eq!(
            encoding::decode::<crate::credential::CredentialGrant>(&g, usize::MAX),
            Ok(grant)
        );
    }

    #[test]
    fn mode_encodings_are_distinct_and_strict() {
        let modes = [
            CredentialMode::Sealed,
            CredentialMode::Relayed {
                offline: OfflineBehaviour::Fail,
            },
            CredentialMode::Relayed {
                offline: OfflineBehaviour::Wait { max_ms: 30_000 },
            },
        ];
        for m in modes {
            let b = encoding::encode(&m);
            assert_eq!(encoding::decode::<CredentialMode>(&b, 64), Ok(m));
        }
        // [0, 0]: sealed with an extra element; [2]: unknown mode.
        for bad in [&[0x82, 0x00, 0x00][..], &[0x81, 0x02], &[0x81, 0x01]] {
            assert!(
                encoding::decode::<CredentialMode>(bad, 64).is_err(),
                "{bad:02x?}"
            );
        }
    }
}
