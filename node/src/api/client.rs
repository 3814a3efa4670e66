//! The blocking client of the local API, used by the CLI. Finds the running node through
//! `api.addr` and authenticates with `api.token` from the data directory.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::data_dir::DataDir;

/// A failed API call, worded for the person at the terminal.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No node runs on this data directory.
    #[error("no node is running for {0} (start one with `souk node run`, or pass --data-dir)")]
    NotRunning(String),
    /// The data directory is unusable.
    #[error(transparent)]
    DataDir(#[from] crate::data_dir::DataDirError),
    /// The connection failed.
    #[error("cannot reach the node's API at {addr}: {reason} (is `souk node run` still running?)")]
    Unreachable {
        /// The address.
        addr: SocketAddr,
        /// Why.
        reason: String,
    },
    /// The request could not be encoded as JSON.
    #[error("cannot encode the request: {0}")]
    Encode(String),
    /// The request body is over the API's body limit: not sent.
    #[error(
        "the request is {len} bytes, over the local API's limit of {limit} bytes (a job input may be at most 16 MiB)"
    )]
    TooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// The node answered with an error (the operation failed or was refused).
    #[error("{}", .body.error)]
    Api {
        /// The HTTP status.
        status: u16,
        /// The error body (message and machine code); boxed, so every `Result` carrying a
        /// `ClientError` stays small.
        body: Box<super::ApiError>,
    },
}

impl ClientError {
    /// The API's machine code, when the node answered with an error.
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Api { body, .. } => Some(&body.code),
            _ => None,
        }
    }

    /// Whether the node could not be reached at all (not running, or not answering).
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            ClientError::NotRunning(_) | ClientError::Unreachable { .. }
        )
    }
}

/// Percent-encodes `s` for a query string (RFC 3986 unreserved characters stay as they are).
pub fn query_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The error of a failed response: its JSON body, or the bare status.
fn api_error(status: ureq::http::StatusCode, body: &[u8]) -> ClientError {
    let body =
        serde_json::from_slice::<super::ApiError>(body).unwrap_or_else(|_| super::ApiError {
            error: format!("HTTP {status}"),
            code: String::new(),
            provider_code: None,
            decline_reason: None,
            current_manifest: None,
        });
    ClientError::Api {
        status: status.as_u16(),
        body: Box::new(body),
    }
}

/// A connection to a running node's API.
pub struct ApiClient {
    addr: SocketAddr,
    token: zeroize::Zeroizing<String>,
    agent: ureq::Agent,
}

impl ApiClient {
    /// Connects to the node running on `dir`.
    pub fn connect(dir: &DataDir) -> Result<Self, ClientError> {
        let token = dir.api_token()?;
        let addr = dir
            .api_addr()
            .ok_or_else(|| ClientError::NotRunning(dir.root().display().to_string()))?;
        Ok(Self::new(addr, token))
    }

    /// A client for `addr` with `token`.
    pub fn new(addr: SocketAddr, token: zeroize::Zeroizing<String>) -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(240)))
            .build()
            .new_agent();
        Self { addr, token, agent }
    }

    /// The API's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn finish<T: DeserializeOwned>(
        &self,
        r: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<T, ClientError> {
        let mut resp = r.map_err(|e| ClientError::Unreachable {
            addr: self.addr,
            reason: e.to_string(),
        })?;
        let status = resp.status();
        let text = resp
            .body_mut()
            .read_to_string()
            .map_err(|e| ClientError::Unreachable {
                addr: self.addr,
                reason: e.to_string(),
            })?;
        if !status.is_success() {
            return Err(api_error(status, text.as_bytes()));
        }
        serde_json::from_str(&text).map_err(|e| ClientError::Unreachable {
            addr: self.addr,
            reason: format!("unexpected answer from the node: {e}"),
        })
    }

    fn auth(&self) -> String {
        format!("Bearer {}", self.token.as_str())
    }

    /// GET a JSON resource.
    pub fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let r = self
            .agent
            .get(self.url(path))
            .header("Authorization", self.auth())
            .call();
        self.finish(r)
    }

    /// POST a JSON body. A body over the API's limit ([`super::limits::MAX_BODY`]) is
    /// refused here, before anything is sent.
    pub fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        let bytes = serde_json::to_vec(body).map_err(|e| ClientError::Encode(e.to_string()))?;
        let limit = super::limits::MAX_BODY;
        if bytes.len() > limit {
            return Err(ClientError::TooLarge {
                len: bytes.len(),
                limit,
            });
        }
        let r = self
            .agent
            .post(self.url(path))
            .header("Authorization", self.auth())
            .header("Content-Type", "application/json")
            .send(&bytes[..]);
        self.finish(r)
    }

    /// GET raw bytes (e.g. a bundle).
    pub fn get_bytes(&self, path: &str) -> Result<Vec<u8>, ClientError> {
        let r = self
            .agent
            .get(self.url(path))
            .header("Authorization", self.auth())
            .call();
        let mut resp = r.map_err(|e| ClientError::Unreachable {
            addr: self.addr,
            reason: e.to_string(),
        })?;
        let status = resp.status();
        let body = resp
            .body_mut()
            .with_config()
            .limit(souk_protocol::bundle::MAX_BUNDLE_LEN as u64)
            .read_to_vec()
            .map_err(|e| ClientError::Unreachable {
                addr: self.addr,
                reason: e.to_string(),
            })?;
        if !status.is_success() {
            return Err(api_error(status, &body));
        }
        Ok(body)
    }

    /// Opens the node's event stream (`GET /v1/events`, NDJSON), optionally only `types`
    /// (comma-separated). Returns a reader of its lines; the first is `subscribed`. The read
    /// blocks until the next event (a heartbeat comes every 15 s) and ends when the node
    /// stops.
    pub fn events(&self, types: Option<&str>) -> Result<impl std::io::BufRead, ClientError> {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(10)))
            .timeout_recv_response(Some(Duration::from_secs(30)))
            .build()
            .new_agent();
        let path = match types {
            Some(t) => format!("/v1/events?types={}", query_encode(t)),
            None => "/v1/events".to_owned(),
        };
        let r = agent
            .get(self.url(&path))
            .header("Authorization", self.auth())
            .call();
        let mut resp = r.map_err(|e| ClientError::Unreachable {
            addr: self.addr,
            reason: e.to_string(),
        })?;
        let status = resp.status();
        if !status.is_success() {
            let body = resp
                .body_mut()
                .with_config()
                .limit(1 << 16)
                .read_to_vec()
                .unwrap_or_default();
            return Err(api_error(status, &body));
        }
        Ok(std::io::BufReader::new(resp.into_body().into_reader()))
    }

    /// DELETE a resource.
    pub fn delete<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let r = self
            .agent
            .delete(self.url(path))
            .header("Authorization", self.auth())
            .call();
        self.finish(r)
    }
}
