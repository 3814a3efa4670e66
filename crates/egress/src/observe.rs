//! Observations: the proxy's own record of every call and every denial.
//!
//! Owns [`Observation`] (one per proxied call, tunnel or denial; the node turns it into a
//! `network-call` receipt entry) and how its sizes and commitments are computed. An
//! observation never holds a query string, a header value or a secret: the path is recorded
//! without its query and after scrubbing, bodies only as sizes and BLAKE3 hashes.

use std::time::Instant;

use souk_protocol::Hash;

use crate::denial::{Denial, DenialCode};

/// How a call's credential was supplied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// No credential slot was involved.
    None,
    /// The provider's node opened a sealed secret and injected it.
    Sealed,
    /// The client's node injected the secret and performed the call.
    Relayed,
}

impl Mode {
    /// The contract's string: `none`, `sealed` or `relayed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::None => "none",
            Mode::Sealed => "sealed",
            Mode::Relayed => "relayed",
        }
    }
}

/// One observed call or denial.
///
/// Sizes and hashes: `request_bytes`/`request_hash` cover the request body as the agent sent
/// it (which is the body sent upstream: the secret is injected only into a header or the
/// query); `response_bytes`/`response_hash` cover the body delivered to the agent, after
/// scrubbing. For a `CONNECT` tunnel they cover the bytes carried in each direction (TLS
/// records, opaque to the proxy). Denials carry the sizes and hashes of whatever was read
/// (an empty body hashes to BLAKE3 of nothing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    /// Request method (`CONNECT` for tunnels); empty when the request could not be parsed.
    pub method: String,
    /// `host[:port]`, port omitted when 443; empty when unknown.
    pub host: String,
    /// Normalised path without the query (empty for tunnels and unparsable requests).
    pub path: String,
    /// Upstream status; 0 when denied or when there was no response.
    pub status: u16,
    /// Size of the request body (bytes the agent sent through a tunnel).
    pub request_bytes: u64,
    /// Size of the response body delivered to the agent (bytes received through a tunnel).
    pub response_bytes: u64,
    /// BLAKE3 of the request body (of the agent-to-upstream tunnel bytes).
    pub request_hash: Hash,
    /// BLAKE3 of the delivered response body (of the upstream-to-agent tunnel bytes).
    pub response_hash: Hash,
    /// Wall time from the proxy receiving the request head to the response (or tunnel end).
    pub duration_ms: u64,
    /// The credential slot involved, if any.
    pub slot: Option<String>,
    /// How the credential was supplied.
    pub mode: Mode,
    /// Why the call was refused, if it was.
    pub denial: Option<DenialCode>,
    /// Relayed mode: the client-signed record of the exchange, as returned by the client.
    pub relay_record: Option<Vec<u8>>,
}

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
                method: String::new(),
                host: String::new(),
                path: String::new(),
                status: 0,
                request_bytes: 0,
                response_bytes: 0,
                request_hash: empty,
                response_hash: empty,
                duration_ms: 0,
                slot: None,
                mode: Mode::None,
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
        self.obs.status = status;
        self.obs.response_bytes = body.len() as u64;
        self.obs.response_hash = body_hash(body);
    }

    /// Finishes with a denial: status 0, the denial's code, no response body.
    pub(crate) fn deny(mut self, denial: &Denial) -> Observation {
        self.obs.status = 0;
        self.obs.denial = Some(denial.code);
        self.obs.response_bytes = 0;
        self.obs.response_hash = body_hash(&[]);
        self.finish()
    }

    pub(crate) fn finish(mut self) -> Observation {
        self.obs.duration_ms =
            u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.obs
    }
}

/// The body commitment used in observations: plain BLAKE3 of the bytes.
pub fn body_hash(body: &[u8]) -> Hash {
    Hash::digest(body)
}
