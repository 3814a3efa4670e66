//! Observations: the proxy's own record of every call and every denial, as the receipt's
//! `network-call` entry.
//!
//! Owns [`Observation`] (the protocol's [`NetworkCall`]: one per proxied call, tunnel or
//! denial, which the node appends to the receipt chain as it is) and the recorder that fills
//! it in as a call proceeds. Every finished observation is well formed by rule R9 of
//! `spec/receipts.md` (what a receipt cannot spell is left empty, which only a denial may
//! do) and obeys R10's denial clause (status 0, no relay record), so an agent cannot make its
//! provider's receipts fail verification by sending odd requests.
//! An observation never holds a query string, a header value or a secret: bodies appear only
//! as sizes and BLAKE3 hashes.

use std::time::Instant;

use souk_protocol::Hash;
use souk_protocol::credential::Denial;
use souk_protocol::manifest::MAX_OBSERVED_HOST_LEN;
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
/// What a receipt cannot spell is left empty (R9 allows it in denials only; such requests
/// are always refused): a host that is not printable lowercase ASCII, a method that is not
/// 1–16 letters `A`–`Z`, a path that does not start with `/`. A tunnel records no path. A
/// path that does not normalise is recorded as sent, up to the first `?` or `#`, at most
/// 2 048 bytes.
pub type Observation = NetworkCall;

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
        if !is_recordable_host(&o.host) {
            o.host.clear();
        }
        if !is_recordable_method(&o.method) {
            o.method.clear();
        }
        o.path = recordable_path(&o.path);
        self.obs
    }
}

/// Whether a receipt can hold `host` as it is: printable ASCII without `A`–`Z`, at most
/// [`MAX_OBSERVED_HOST_LEN`] bytes.
fn is_recordable_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= MAX_OBSERVED_HOST_LEN
        && host
            .bytes()
            .all(|b| (0x21..=0x7e).contains(&b) && !b.is_ascii_uppercase())
}

/// Whether a receipt can hold `method` as it is: 1–16 letters `A`–`Z`.
pub(crate) fn is_recordable_method(method: &str) -> bool {
    (1..=MAX_METHOD_LEN).contains(&method.len()) && method.bytes().all(|b| b.is_ascii_uppercase())
}

/// `path` up to its first `?` or `#`, cut to [`MAX_PATH_LEN`] bytes on a character boundary;
/// empty when that does not start with `/`.
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
        String::new()
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
            ("", "", "", ("", "", "")),
            ("[::1]:8080", "get", "/a?b", ("[::1]:8080", "", "/a")),
            ("a_b.test", "M-SEARCH", "/a#frag", ("a_b.test", "", "/a")),
            ("API.test", "GET", "/a", ("", "GET", "/a")),
            (
                "api.test:8443",
                "VERYLONGMETHODNAME",
                "*",
                ("api.test:8443", "", ""),
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
