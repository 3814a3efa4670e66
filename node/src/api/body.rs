//! Request bodies under [`ApiLimits`]: [`buffer`] (middleware) reads each authenticated
//! request's body in full before any handler runs, refusing one over `max_body` (400,
//! `too-large`) or one that arrives too slowly (408, `timeout`); [`refuse`] answers a request
//! refused early (authentication) after throwing its body away.
//!
//! A refused body is read and discarded up to `drain_limit`, so that a client still sending it
//! (most clients write the whole body before they read) gets the answer rather than a reset;
//! past that, or past the deadline, the answer carries `Connection: close`. Never holds more
//! than `max_body` bytes of one request.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use futures::StreamExt;
use tokio::time::Instant;

use super::error::error_with_code;
use super::limits::ApiLimits;

/// Why a body could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BodyError {
    /// Longer than the limit.
    #[error("the request body is larger than the API's limit of {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: usize,
    },
    /// The client sent it too slowly.
    #[error(
        "the request body did not arrive in time (the API waits {grace:?}, then wants at least {rate} bytes/s)"
    )]
    TimedOut {
        /// `body_timeout`.
        grace: Duration,
        /// `body_min_rate`.
        rate: u64,
    },
    /// The connection failed while reading it.
    #[error("cannot read the request body: {0}")]
    Read(String),
}

impl BodyError {
    fn response(&self) -> Response {
        match self {
            BodyError::TooLarge { .. } => {
                error_with_code(StatusCode::BAD_REQUEST, "too-large", self.to_string())
            }
            BodyError::TimedOut { .. } => {
                error_with_code(StatusCode::REQUEST_TIMEOUT, "timeout", self.to_string())
            }
            BodyError::Read(_) => {
                error_with_code(StatusCode::BAD_REQUEST, "bad-request", self.to_string())
            }
        }
    }
}

/// The declared `Content-Length`, if any (hyper has already refused a malformed one).
fn declared_len(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

/// How reading a body ended.
enum Read {
    /// To its end: the bytes kept, and whether it was longer than what could be kept (then
    /// nothing is kept).
    Done { kept: Vec<u8>, over: bool },
    /// It went on past the most bytes to read.
    Cut,
    /// The deadline passed (`over`: after the body went over what could be kept).
    Late { over: bool },
    /// The connection failed.
    Failed(String),
}

/// Reads `body` to its end, keeping it if it is at most `keep` bytes and throwing it away
/// otherwise, giving up after `read_at_most` bytes or at the deadline of
/// [`ApiLimits::body_allowance`] counted from `start`.
async fn read(
    body: Body,
    limits: &ApiLimits,
    keep: usize,
    read_at_most: u64,
    start: Instant,
) -> Read {
    let mut stream = body.into_data_stream();
    let mut kept = Vec::new();
    let mut over = false;
    let mut seen = 0u64;
    loop {
        let deadline = start + limits.body_allowance(seen);
        let chunk = match tokio::time::timeout_at(deadline, stream.next()).await {
            Err(_) => return Read::Late { over },
            Ok(None) => return Read::Done { kept, over },
            Ok(Some(Err(e))) => return Read::Failed(e.to_string()),
            Ok(Some(Ok(chunk))) => chunk,
        };
        seen = seen.saturating_add(chunk.len() as u64);
        if seen > read_at_most {
            return Read::Cut;
        }
        if !over {
            if seen > keep as u64 {
                over = true;
                kept = Vec::new();
            } else {
                kept.extend_from_slice(&chunk);
            }
        }
    }
}

/// Marks a response as the connection's last.
fn closing(mut resp: Response) -> Response {
    resp.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    resp
}

/// Throws `body` away (up to `drain_limit` bytes, within the body deadline), then returns
/// `resp`; with `Connection: close` if the body could not be read to its end.
pub(crate) async fn refuse(
    headers: &HeaderMap,
    body: Body,
    limits: &ApiLimits,
    resp: Response,
) -> Response {
    if declared_len(headers).is_some_and(|n| n > limits.drain_limit) {
        return closing(resp);
    }
    match read(body, limits, 0, limits.drain_limit, Instant::now()).await {
        Read::Done { .. } => resp,
        _ => closing(resp),
    }
}

/// Middleware: reads the body in full (see the module docs), then runs the handler with it.
pub(crate) async fn buffer(
    State(limits): State<Arc<ApiLimits>>,
    req: Request,
    next: Next,
) -> Response {
    let (parts, body) = req.into_parts();
    let too_large = BodyError::TooLarge {
        limit: limits.max_body,
    };
    if declared_len(&parts.headers).is_some_and(|n| n > limits.max_body as u64) {
        return refuse(&parts.headers, body, &limits, too_large.response()).await;
    }
    let timed_out = BodyError::TimedOut {
        grace: limits.body_timeout,
        rate: limits.body_min_rate,
    };
    match read(
        body,
        &limits,
        limits.max_body,
        limits.drain_limit,
        Instant::now(),
    )
    .await
    {
        Read::Done { kept, over: false } => {
            next.run(Request::from_parts(parts, Body::from(Bytes::from(kept))))
                .await
        }
        Read::Done { over: true, .. } => too_large.response(),
        Read::Cut | Read::Late { over: true } => closing(too_large.response()),
        Read::Late { over: false } => closing(timed_out.response()),
        Read::Failed(e) => closing(BodyError::Read(e).response()),
    }
}
