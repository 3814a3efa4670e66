//! Carrying out one checked call: without a credential, with a secret at hand (sealed mode
//! on the provider, and [`perform`] on the client's node in relayed mode), or through a
//! [`Relay`] to the client's node.
//!
//! Owns the [`Call`] a request becomes once parsed, the secret-in-request check, the
//! injection into the outgoing request, the response filtering (hop-by-hop headers, content
//! encodings that cannot be scrubbed) and scrubbing, and the observation of each outcome.
//! Both credential modes run the same [`credentialed`] path. It never forwards
//! `Proxy-Authorization`, never follows a redirect, never logs a header value or a query.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{
    ACCEPT_ENCODING, CONNECTION, CONTENT_ENCODING, CONTENT_LENGTH, HOST, HeaderMap, HeaderName,
    HeaderValue,
};
use http::{Method, Request, Uri};
use http_body_util::Full;
use souk_protocol::credential::relay::MAX_RELAY_RECORD_ENVELOPE_LEN;
use souk_protocol::credential::{
    CredentialMode, Denial, DenialCode, OfflineBehaviour, normalize_path, placeholder,
};
use souk_protocol::manifest::Injection;
use souk_protocol::receipt::CallMode;
use zeroize::Zeroizing;

use crate::grant::Grant;
use crate::host::HostKey;
use crate::inject::{self, Conflict};
use crate::observe::{Observation, Recorder, is_recordable_method};
use crate::relay::{Relay, RelayError, RelayedRequest, RelayedResponse};
use crate::scrub::Scrubber;
use crate::secret::Secret;
use crate::upstream::Upstream;

/// Headers that describe one hop, never forwarded in either direction (plus any named in
/// `Connection`).
const HOP_BY_HOP: [&str; 11] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authorization",
    "proxy-authenticate",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "expect",
];

/// A parsed request to a known host.
pub(crate) struct Call {
    pub(crate) method: Method,
    pub(crate) host: HostKey,
    /// The path without query: as received until the request check passed, normalised after
    /// it (what was checked is what is sent).
    pub(crate) path: String,
    /// The query's `&`-separated pairs, as written.
    pub(crate) query: Vec<String>,
    /// End-to-end headers.
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl Call {
    /// Validates a request received from a provider's proxy (hostile input on the client):
    /// the relay request's content rules (`spec/credentials.md`, "Relay protocol") and the
    /// body limit. The path is left as received, for the request check.
    fn from_relayed(req: RelayedRequest, max_body: usize) -> Result<Call, Denial> {
        let host = HostKey::parse(&req.host).ok_or_else(|| {
            Denial::new(
                DenialCode::BadRequest,
                "",
                "the relayed host is not host[:port]",
            )
        })?;
        let h = host.to_string();
        if !is_recordable_method(&req.method) {
            return Err(Denial::new(
                DenialCode::BadRequest,
                h,
                "the method must be 1 to 16 letters A-Z",
            ));
        }
        let method = Method::from_bytes(req.method.as_bytes())
            .map_err(|_| Denial::new(DenialCode::BadRequest, h.clone(), "invalid method"))?;
        if method == Method::CONNECT {
            return Err(Denial::new(
                DenialCode::BadRequest,
                h,
                "CONNECT cannot be relayed",
            ));
        }
        if req.body.len() > max_body {
            return Err(Denial::new(
                DenialCode::RequestTooLarge,
                h,
                "the request body exceeds the limit",
            ));
        }
        let (path, query) = match req.path.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (req.path.as_str(), None),
        };
        if !path.starts_with('/') || path.contains('#') {
            return Err(Denial::new(
                DenialCode::BadRequest,
                h,
                "the target must start with '/' and carry no fragment",
            ));
        }
        if let Some(q) = query
            && !q.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b'#')
        {
            return Err(Denial::new(DenialCode::BadRequest, h, "invalid query"));
        }
        let mut headers = HeaderMap::new();
        for (name, value) in req.headers {
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                Denial::new(DenialCode::BadRequest, h.clone(), "invalid header name")
            })?;
            let value = HeaderValue::from_bytes(&value).map_err(|_| {
                Denial::new(DenialCode::BadRequest, h.clone(), "invalid header value")
            })?;
            headers.append(name, value);
        }
        strip_hop_by_hop(&mut headers);
        Ok(Call {
            method,
            host,
            path: path.to_owned(),
            query: inject::split_query(query),
            headers,
            body: Bytes::from(req.body),
        })
    }

    /// The un-injected request to relay to the client's node.
    fn to_relayed(&self, slot: &str) -> RelayedRequest {
        RelayedRequest {
            slot: slot.to_owned(),
            method: self.method.as_str().to_owned(),
            host: self.host.to_string(),
            path: path_and_query(&self.path, &self.query.join("&")),
            headers: self
                .headers
                .iter()
                .map(|(k, v)| (k.as_str().to_owned(), v.as_bytes().to_vec()))
                .collect(),
            body: self.body.to_vec(),
        }
    }

    /// Whether `scrubber` finds a needle anywhere in the request.
    pub(crate) fn carries(&self, scrubber: &Scrubber) -> bool {
        carries(scrubber, &self.path, &self.query, &self.headers, &self.body)
    }
}

/// Whether `scrubber` finds a needle in the path, a query pair, a header name or value, or
/// the body.
fn carries(
    scrubber: &Scrubber,
    path: &str,
    query: &[String],
    headers: &HeaderMap,
    body: &[u8],
) -> bool {
    scrubber.contains(path.as_bytes())
        || query.iter().any(|p| scrubber.contains(p.as_bytes()))
        || headers.iter().any(|(k, v)| {
            scrubber.contains(k.as_str().as_bytes()) || scrubber.contains(v.as_bytes())
        })
        || scrubber.contains(body)
}

fn path_and_query(path: &str, query: &str) -> String {
    if query.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{query}")
    }
}

/// Removes hop-by-hop headers, those named in `Connection`, and `Content-Length` (the
/// outgoing body sets its own).
pub(crate) fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
        .collect();
    for n in named {
        headers.remove(n);
    }
    for n in HOP_BY_HOP {
        headers.remove(n);
    }
    headers.remove(CONTENT_LENGTH);
}

/// The result of [`perform`]: the response (or the denial) and the record of the exchange.
#[derive(Debug)]
pub struct Performed {
    /// What goes back to the provider's proxy.
    pub result: Result<RelayedResponse, Denial>,
    /// The client's record of the call (mode `relayed`); the client's node signs it and
    /// returns it as [`RelayedResponse::record`].
    pub observation: Observation,
}

/// Relayed mode, on the client's node: checks `req` against the client's own `grant` at
/// `now_ms`, injects `secret`, performs the HTTPS call and scrubs the response. The same code
/// path serves sealed mode on the provider.
///
/// `req` comes from the provider's node and is treated as hostile. In the order of
/// `spec/credentials.md` ("The client"): content rules and body size (`bad_request`,
/// `request_too_large`), the slot (`credential_unavailable`), the request check, then
/// `header_conflict` and `secret_in_request`. The observation's path is the normalised path
/// (the record's `path`); its sizes and hashes are those of the relayed body and of the body
/// returned.
pub async fn perform(
    req: RelayedRequest,
    grant: &Grant,
    secret: &Secret,
    upstream: &Upstream,
    now_ms: u64,
) -> Performed {
    let mut rec = Recorder::start();
    rec.obs.mode = CallMode::Relayed;
    rec.obs.slot = Some(grant.slot().to_owned());
    rec.obs.method = req.method.clone();
    rec.obs.host = HostKey::parse(&req.host)
        .map(|h| h.to_string())
        .unwrap_or_default();
    rec.obs.path = req.path.clone();
    rec.request_body(&req.body);
    let slot = req.slot.clone();
    let mut call = match Call::from_relayed(req, upstream.config().max_request_body) {
        Ok(c) => c,
        Err(d) => return denied(rec, d),
    };
    if slot != grant.slot() {
        let d = Denial::new(
            DenialCode::CredentialUnavailable,
            call.host.to_string(),
            format!("the request names slot {slot:?}, not this grant's slot"),
        );
        return denied(rec, d);
    }
    match checked_path(grant, &call.host, &call.method, &call.path, now_ms) {
        Ok(path) => {
            rec.obs.path.clone_from(&path);
            call.path = path;
        }
        Err(d) => return denied(rec, d),
    }
    credentialed(call, grant, secret, upstream, rec).await
}

/// The request check on `path` as received; when it passes, the normalised path (what is sent
/// and recorded from then on).
pub(crate) fn checked_path(
    grant: &Grant,
    host: &HostKey,
    method: &Method,
    path: &str,
    now_ms: u64,
) -> Result<String, Denial> {
    grant.check(host, method.as_str(), path, now_ms)?;
    // The check has just normalised the same path, so this does not fail.
    normalised(host, path)
}

/// `path` normalised (`spec/credentials.md`, "Path normalisation"), or `path_not_allowed`.
pub(crate) fn normalised(host: &HostKey, path: &str) -> Result<String, Denial> {
    normalize_path(path).map_err(|e| {
        Denial::new(
            DenialCode::PathNotAllowed,
            host.to_string(),
            format!("the path does not normalise: {e}"),
        )
    })
}

fn denied(rec: Recorder, denial: Denial) -> Performed {
    let observation = rec.deny(&denial);
    Performed {
        result: Err(denial),
        observation,
    }
}

/// The needles for a secret: the secret, its placeholder, and for Basic injection the
/// password alone (when long enough to be distinctive).
fn secret_scrubber(injection: &Injection, secret: &Secret, placeholder: &str) -> Scrubber {
    let raw = secret.expose();
    let mut needles: Vec<&[u8]> = vec![raw, placeholder.as_bytes()];
    if matches!(injection, Injection::Basic)
        && let Some(colon) = raw.iter().position(|&b| b == b':')
        && raw.len() - colon > 6
    {
        needles.push(&raw[colon + 1..]);
    }
    Scrubber::new(&needles)
}

/// Injects and performs a call whose policy checks passed; scrubs and observes the result.
/// `rec` already holds method, host, path, slot, mode and the request body.
pub(crate) async fn credentialed(
    call: Call,
    grant: &Grant,
    secret: &Secret,
    upstream: &Upstream,
    mut rec: Recorder,
) -> Performed {
    let Call {
        method,
        host,
        path,
        mut query,
        mut headers,
        body,
    } = call;
    let h = host.to_string();
    let slot = grant.slot();
    let injection = &grant.policy().injection;
    let ph = placeholder(slot);
    let site = match inject::take_site(injection, &ph, &mut headers, &mut query) {
        Ok(site) => site,
        Err(Conflict) => {
            let d = Denial::new(
                DenialCode::HeaderConflict,
                h,
                format!(
                    "the request sets the {} for slot {slot} to something other than {ph}; \
                     leave it unset or use the placeholder",
                    injection_site_name(injection)
                ),
            );
            return denied(rec, d);
        }
    };
    let scrubber = secret_scrubber(injection, secret, &ph);
    if carries(&scrubber, &path, &query, &headers, &body) {
        if let Some(p) = scrubber.scrub(rec.obs.path.as_bytes()) {
            rec.obs.path = String::from_utf8_lossy(&p).into_owned();
        }
        let d = Denial::new(
            DenialCode::SecretInRequest,
            h,
            format!(
                "the request carries the credential of slot {slot} (or its placeholder) outside \
                 the {}",
                injection_site_name(injection)
            ),
        );
        return denied(rec, d);
    }
    let new_query = match inject::apply(injection, site, secret, &mut headers, &query) {
        Ok(q) => q,
        Err(_) => {
            let d = Denial::new(
                DenialCode::CredentialUnavailable,
                h,
                format!("the credential of slot {slot} cannot be placed in the request"),
            );
            return denied(rec, d);
        }
    };
    // Compressed bodies could hide the secret from the scrubber.
    headers.insert(ACCEPT_ENCODING, HeaderValue::from_static("identity"));
    let target = match new_query {
        Some(q) => Zeroizing::new(path_and_query(&path, &q)),
        None => Zeroizing::new(path_and_query(&path, &query.join("&"))),
    };
    let req = match build_request(&method, &host, &target, headers, body) {
        Ok(r) => r,
        Err(d) => return denied(rec, d),
    };
    drop(target);
    let reservation = match grant.reserve(&host) {
        Ok(r) => r,
        Err(d) => return denied(rec, d),
    };
    let exchanged = upstream.send(&host, req).await;
    if exchanged.reached {
        reservation.commit();
    } else {
        drop(reservation);
    }
    let (parts, body) = match exchanged.result {
        Ok(ok) => ok,
        Err(f) => return denied(rec, f.denial(&host)),
    };
    if let Some(enc) = parts.headers.get(CONTENT_ENCODING)
        && !enc.as_bytes().eq_ignore_ascii_case(b"identity")
    {
        let d = Denial::new(
            DenialCode::UpstreamError,
            h,
            "the upstream sent a compressed response despite accept-encoding: identity; it \
             cannot be scrubbed",
        );
        return denied(rec, d);
    }
    let is_head = method == Method::HEAD;
    let response = response_from(
        parts.status.as_u16(),
        &parts.headers,
        body,
        is_head,
        Some(&scrubber),
    );
    rec.response(response.status, &response.body);
    Performed {
        result: Ok(response),
        observation: rec.finish(),
    }
}

fn injection_site_name(injection: &Injection) -> String {
    match injection {
        Injection::Header { name, .. } => format!("{name} header"),
        Injection::Basic => "authorization header".into(),
        Injection::Query { param } => format!("query parameter {param}"),
    }
}

fn build_request(
    method: &Method,
    host: &HostKey,
    target: &str,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Request<Full<Bytes>>, Denial> {
    let uri = Uri::try_from(target).map_err(|_| {
        Denial::new(
            DenialCode::BadRequest,
            host.to_string(),
            "invalid request target",
        )
    })?;
    let host_value = HeaderValue::from_str(&host.authority())
        .map_err(|_| Denial::new(DenialCode::BadRequest, host.to_string(), "invalid host"))?;
    let mut req = Request::new(Full::new(body));
    *req.method_mut() = method.clone();
    *req.uri_mut() = uri;
    *req.headers_mut() = headers;
    req.headers_mut().insert(HOST, host_value);
    Ok(req)
}

/// The response for the agent: end-to-end headers (scrubbed when a scrubber is given; a
/// header whose name matches is dropped) and the body (scrubbed likewise).
fn response_from(
    status: u16,
    headers: &HeaderMap,
    body: Bytes,
    is_head: bool,
    scrubber: Option<&Scrubber>,
) -> RelayedResponse {
    let mut headers = headers.clone();
    let head_length = headers.get(CONTENT_LENGTH).cloned();
    strip_hop_by_hop(&mut headers);
    if is_head && let Some(len) = head_length {
        headers.insert(CONTENT_LENGTH, len);
    }
    let mut out = Vec::with_capacity(headers.len());
    for (name, value) in &headers {
        match scrubber {
            Some(s) if s.contains(name.as_str().as_bytes()) => continue,
            Some(s) => {
                let v = s
                    .scrub(value.as_bytes())
                    .unwrap_or_else(|| value.as_bytes().to_vec());
                out.push((name.as_str().to_owned(), v));
            }
            None => out.push((name.as_str().to_owned(), value.as_bytes().to_vec())),
        }
    }
    let body = match scrubber.and_then(|s| s.scrub(&body)) {
        Some(scrubbed) => scrubbed,
        None => body.to_vec(),
    };
    RelayedResponse {
        status,
        headers: out,
        body,
        record: None,
    }
}

/// A call to a listed host without a slot: forwarded over TLS, no injection, no scrubbing.
pub(crate) async fn forward(call: Call, upstream: &Upstream, mut rec: Recorder) -> Performed {
    let target = path_and_query(&call.path, &call.query.join("&"));
    let req = match build_request(&call.method, &call.host, &target, call.headers, call.body) {
        Ok(r) => r,
        Err(d) => return denied(rec, d),
    };
    let exchanged = upstream.send(&call.host, req).await;
    match exchanged.result {
        Ok((parts, body)) => {
            let is_head = call.method == Method::HEAD;
            let response =
                response_from(parts.status.as_u16(), &parts.headers, body, is_head, None);
            rec.response(response.status, &response.body);
            Performed {
                result: Ok(response),
                observation: rec.finish(),
            }
        }
        Err(f) => denied(rec, f.denial(&call.host)),
    }
}

/// Relayed mode on the provider: checks the placeholder positions, carries the un-injected
/// call to the client's node (waiting for it as the grant allows), and scrubs placeholders
/// from the answer. Budget counts calls the client performed.
pub(crate) async fn relayed(
    call: Call,
    grant: &Grant,
    relay: &Arc<dyn Relay>,
    upstream: &Upstream,
    placeholders: &Scrubber,
    mut rec: Recorder,
) -> Performed {
    let h = call.host.to_string();
    let slot = grant.slot();
    let injection = &grant.policy().injection;
    let ph = placeholder(slot);
    let mut headers = call.headers.clone();
    let mut query = call.query.clone();
    if inject::take_site(injection, &ph, &mut headers, &mut query).is_err() {
        let d = Denial::new(
            DenialCode::HeaderConflict,
            h,
            format!(
                "the request sets the {} for slot {slot} to something other than {ph}",
                injection_site_name(injection)
            ),
        );
        return denied(rec, d);
    }
    let own = Scrubber::new(&[ph.as_bytes()]);
    if carries(&own, &call.path, &query, &headers, &call.body) {
        let d = Denial::new(
            DenialCode::SecretInRequest,
            h,
            format!(
                "the placeholder of slot {slot} may only appear in the {}",
                injection_site_name(injection)
            ),
        );
        return denied(rec, d);
    }
    let reservation = match grant.reserve(&call.host) {
        Ok(r) => r,
        Err(d) => return denied(rec, d),
    };
    let req = call.to_relayed(slot);
    let cfg = upstream.config();
    let attempt_limit = cfg.connect_timeout + cfg.tls_timeout + cfg.response_timeout;
    let wait = match grant.policy().mode {
        CredentialMode::Relayed {
            offline: OfflineBehaviour::Wait { max_ms },
        } => Duration::from_millis(max_ms),
        CredentialMode::Relayed {
            offline: OfflineBehaviour::Fail,
        }
        | CredentialMode::Sealed => Duration::ZERO,
    };
    let give_up = tokio::time::Instant::now() + wait;
    let mut backoff = Duration::from_millis(50);
    let answer = loop {
        match tokio::time::timeout(attempt_limit, relay.relay(req.clone())).await {
            Ok(Err(RelayError::Offline)) => {
                let now = tokio::time::Instant::now();
                if now >= give_up {
                    break Err(RelayError::Offline);
                }
                tokio::time::sleep_until((now + backoff).min(give_up)).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
            Ok(other) => break other,
            Err(_) => {
                break Err(RelayError::Failed(
                    "the client's node did not answer in time".into(),
                ));
            }
        }
    };
    let mut resp = match answer {
        Ok(resp) => resp,
        Err(RelayError::Offline) => {
            let d = Denial::new(
                DenialCode::ClientOffline,
                h,
                format!("the client's node, which holds the credential of slot {slot}, is offline"),
            );
            return denied(rec, d);
        }
        Err(RelayError::Denied { denial, record: _ }) => {
            // The client's code, message and retry; no record (a refused call carries none).
            return denied(rec, Denial { host: h, ..denial });
        }
        Err(RelayError::Failed(reason)) => {
            let d = Denial::new(
                DenialCode::UpstreamError,
                h,
                format!("relay failed: {reason}"),
            );
            return denied(rec, d);
        }
    };
    reservation.commit();
    rec.obs.relay_record = resp.record.take();
    if resp.body.len() > cfg.max_response_body {
        let d = Denial::new(
            DenialCode::ResponseTooLarge,
            h,
            "the client's node returned a response larger than the proxy delivers",
        );
        return denied(rec, d);
    }
    let unusable = if !(100..=599).contains(&resp.status) {
        Some("a status outside 100-599")
    } else if rec
        .obs
        .relay_record
        .as_ref()
        .is_none_or(|r| r.len() > MAX_RELAY_RECORD_ENVELOPE_LEN)
    {
        Some("no usable record of the exchange")
    } else if placeholders.contains(&resp.body) {
        // Scrubbing here would make the delivered body differ from the one the client's
        // record commits to.
        Some("a body holding a credential placeholder")
    } else {
        None
    };
    if let Some(what) = unusable {
        let d = Denial::new(
            DenialCode::UpstreamError,
            h,
            format!("the client's node returned {what}"),
        );
        return denied(rec, d);
    }
    let mut map = HeaderMap::new();
    for (k, v) in &resp.headers {
        if let (Ok(k), Ok(v)) = (
            HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_bytes(v),
        ) {
            map.append(k, v);
        }
    }
    let is_head = call.method == Method::HEAD;
    let response = response_from(
        resp.status,
        &map,
        Bytes::from(resp.body),
        is_head,
        Some(placeholders),
    );
    rec.response(response.status, &response.body);
    Performed {
        result: Ok(response),
        observation: rec.finish(),
    }
}
