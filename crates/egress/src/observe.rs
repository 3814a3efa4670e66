//! Observations: the proxy's own record of every call and every denial, as the receipt's
//! `network-call` entry.
//!
//! Owns [`Observation`] (the protocol's [`NetworkCall`]: one per proxied call, tunnel or
//! denial, which the node appends to the receipt chain as it is) and the recorder that fills
//! it in as a call proceeds. Every finished observation is well formed by rule R9 of
//! `spec/receipts.md` (a valid host, a method of letters `A`–`Z`, a path starting with `/`
//! without query or fragment) and obeys R10's denial clause (status 0, no relay record), so
//! an agent cannot make its provider's receipts fail verification by sending odd requests.
//! An observation never holds a query string, a header value or a secret: bodies appear only
//! as sizes and BLAKE3 hashes.

use std::time::Instant;

use souk_protocol::Hash;
use souk_protocol::credential::Denial;
use souk_protocol::manifest::is_valid_host;
use souk_protocol::receipt::{CallMode, MAX_PATH_LEN, NetworkCall};

/// One observed call or denial: the receipt's `network-call` entry.
///
/// Sizes and hashes: `request_bytes`/`request_hash` cover the request body as the agent sent
/// it (which is the body sent upstream: the secret is injected only into a header or the
/// query); `response_bytes`/`response_hash` cover the body delivered to the agent, after
/// scrubbing. For a `CONNECT` tunnel (method `CONNECT`, path `/`, status 200) they cover the
/// bytes carried in each direction (TLS records, opaque to the proxy). Denials carry the size
/// and hash of whatever request body was read and an empty response.
///
/// Fields a receipt cannot spell are recorded as markers: the host as [`UNKNOWN_HOST`] (no
/// host, an IPv6 literal, a name with `_`), the method as [`UNKNOWN_METHOD`] (anything but
/// 1–16 letters `A`–`Z`; such requests are refused), the path as `/` when there is none (a
/// tunnel, a request that could not be parsed). A path that does not normalise is recorded as
/// sent, up to the first `?` or `#`, at most 2 048 bytes.
pub type Observation = NetworkCall;

/// The host recorded when the request's host cannot be written as a receipt's host:
/// `invalid`, a name reserved never to resolve (RFC 6761, section 6.4).
pub const UNKNOWN_HOST: &str = "invalid";

/// The method recorded when the request's method is not 1–16 letters `A`–`Z`.
pub const UNKNOWN_METHOD: &str = "INVALID";

/// Longest method a receipt holds.
const MAX_METHOD_LEN: usize = 16;

/// Builds an [`Observation`] as a call proceeds.
#[derive(Debug)]
pub(crate) struct Recorder {
    started: Instant,
    pub(crate) obs: Observation,
}

impl Recorder {
    pub(crate) fn start() -> Recorder {
        let empty = body_hash(&[]);
        Recorder {
            started: Instant::now(),
            obs: Observation {
                host: String::new(),
                method: String::new(),
                path: String::new(),
                status: 0,
                request_bytes: 0,
                response_bytes: 0,
                request_hash: empty,
                response_hash: empty,
                duration_ms: 0,
                slot: None,
                mode: CallMode::None,
                denial: None,
                relay_record: None,
            },
        }
    }

    pub(crate) fn request_body(&mut self, body: &[u8]) {
        self.obs.request_bytes = body.len() as u64;
        self.obs.request_hash = body_hash(body);
    }

    pub(crate) fn response(&mut self, status: u16, body: &[u8]) {
        self.obs.status = u32::from(status);
        self.obs.response_bytes = body.len() as u64;
        self.obs.response_hash = body_hash(body);
    }

    /// Finishes with a denial: status 0, the denial's code, no response body, no relay record
    /// (rule R10: a refused call carries none).
    pub(crate) fn deny(mut self, denial: &Denial) -> Observation {
        self.obs.status = 0;
        self.obs.denial = Some(denial.code);
        self.obs.response_bytes = 0;
        self.obs.response_hash = body_hash(&[]);
        self.obs.relay_record = None;
        self.finish()
    }

    /// Finishes: the duration, and every field in a form a receipt accepts.
    pub(crate) fn finish(mut self) -> Observation {
        let o = &mut self.obs;
        o.duration_ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        if !is_valid_host(&o.host) {
            o.host = UNKNOWN_HOST.to_owned();
        }
        if !is_recordable_method(&o.method) {
            o.method = UNKNOWN_METHOD.to_owned();
        }
        o.path = recordable_path(&o.path);
        self.obs
    }
}

/// Whether a receipt can hold `method` as it is: 1–16 letters `A`–`Z`.
pub(crate) fn is_recordable_method(method: &str) -> bool {
    (1..=MAX_METHOD_LEN).contains(&method.len()) && method.bytes().all(|b| b.is_ascii_uppercase())
}

/// `path` up to its first `?` or `#`, cut to [`MAX_PATH_LEN`] bytes on a character boundary;
/// `/` when that does not start with `/`.
fn recordable_path(path: &str) -> String {
    let end = path.find(['?', '#']).unwrap_or(path.len());
    let mut cut = end.min(MAX_PATH_LEN);
    while !path.is_char_boundary(cut) {
        cut -= 1;
    }
    let p = &path[..cut];
    if p.starts_with('/') {
        p.to_owned()
    } else {
        "/".to_owned()
    }
}

/// The body commitment used in observations: plain BLAKE3 of the bytes.
pub fn body_hash(body: &[u8]) -> Hash {
    Hash::digest(body)
}

#[cfg(test)]
mod tests {
    use souk_protocol::credential::DenialCode;
    use souk_protocol::receipt::EntryKind;

    use super::*;

    fn finished(host: &str, method: &str, path: &str) -> Observation {
        let mut rec = Recorder::start();
        rec.obs.host = host.into();
        rec.obs.method = method.into();
        rec.obs.path = path.into();
        rec.deny(&Denial::new(DenialCode::BadRequest, host, "test"))
    }

    #[test]
    fn whatever_the_agent_sends_the_entry_is_well_formed() {
        let long = format!("/{}é", "a".repeat(MAX_PATH_LEN - 2));
        for (host, method, path, want) in [
            ("api.test", "GET", "/v1/x", ("api.test", "GET", "/v1/x")),
            ("", "", "", (UNKNOWN_HOST, UNKNOWN_METHOD, "/")),
            (
                "[::1]:8080",
                "get",
                "/a?b",
                (UNKNOWN_HOST, UNKNOWN_METHOD, "/a"),
            ),
            (
                "a_b.test",
                "M-SEARCH",
                "/a#frag",
                (UNKNOWN_HOST, UNKNOWN_METHOD, "/a"),
            ),
            (
                "api.test:8443",
                "VERYLONGMETHODNAME",
                "*",
                ("api.test:8443", UNKNOWN_METHOD, "/"),
            ),
            (
                "api.test",
                "GET",
                long.as_str(),
                ("api.test", "GET", &long[..MAX_PATH_LEN - 1]),
            ),
        ] {
            let obs = finished(host, method, path);
            assert_eq!(
                (obs.host.as_str(), obs.method.as_str(), obs.path.as_str()),
                want
            );
            assert_eq!(
                EntryKind::NetworkCall(obs).field_problem(),
                None,
                "{host} {method} {path}"
            );
        }
    }

    #[test]
    fn a_denial_carries_no_response_and_no_record() {
        let mut rec = Recorder::start();
        rec.response(200, b"body");
        rec.obs.relay_record = Some(vec![1, 2, 3]);
        let obs = rec.deny(&Denial::new(DenialCode::UpstreamError, "api.test", "x"));
        assert_eq!((obs.status, obs.response_bytes), (0, 0));
        assert_eq!(obs.relay_record, None);
        assert_eq!(obs.denial, Some(DenialCode::UpstreamError));
    }
}
