//! The proxy server for one hire: accept loop, per-connection HTTP/1.1 service, routing.
//!
//! Owns [`serve_tcp`] and [`serve_unix`]: bounded connections and in-flight requests,
//! `Proxy-Authorization` on every request, absolute-form plain HTTP (to slot hosts and listed
//! hosts, always TLS upstream), `CONNECT` (handed to the tunnel module), denials as the
//! contract's JSON, and one [`Observation`] per call, sent with backpressure *before* the
//! agent gets the response (if the node stops receiving, calls fail closed). It never logs
//! header values, queries or bodies.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, PROXY_AUTHENTICATE, PROXY_AUTHORIZATION, UPGRADE};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use souk_protocol::credential::{Denial, DenialCode};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{HireEgress, SlotState};
use crate::exchange::{self, Call, Performed};
use crate::host::{DEFAULT_PORT, HostKey};
use crate::observe::{Observation, Recorder, is_recordable_method};
use crate::secret::{Secret, SecretSource};
use crate::tunnel;

/// Shared by every connection of one proxy.
pub(crate) struct Ctx {
    pub(crate) egress: Arc<HireEgress>,
    pub(crate) observations: mpsc::Sender<Observation>,
    pub(crate) tasks: TaskTracker,
    pub(crate) shutdown: CancellationToken,
}

impl Ctx {
    /// Records `obs`, waiting for room in the channel. False when the node no longer listens.
    pub(crate) async fn record(&self, obs: Observation) -> bool {
        match &obs.denial {
            Some(code) => tracing::info!(
                hire = %self.egress.hire, method = %obs.method, host = %obs.host,
                path = %obs.path, denial = %code, "egress call denied"
            ),
            None => tracing::debug!(
                hire = %self.egress.hire, method = %obs.method, host = %obs.host,
                path = %obs.path, status = obs.status, slot = ?obs.slot,
                mode = obs.mode.as_str(), ms = obs.duration_ms, "egress call"
            ),
        }
        self.observations.send(obs).await.is_ok()
    }
}

/// Serves the hire's proxy on a TCP listener (tests, unsandboxed mode) until `shutdown` is
/// cancelled; then gives in-flight requests [`crate::Limits::shutdown_grace`], closes
/// tunnels and returns once every connection has ended.
pub async fn serve_tcp(
    listener: TcpListener,
    egress: Arc<HireEgress>,
    observations: mpsc::Sender<Observation>,
    shutdown: CancellationToken,
) {
    serve(Tcp(listener), egress, observations, shutdown).await;
}

/// Serves the hire's proxy on a unix socket (bind-mounted into the agent's sandbox) until
/// `shutdown` is cancelled; see [`serve_tcp`]. The caller creates the socket with
/// permissions that let only the sandbox reach it.
pub async fn serve_unix(
    listener: UnixListener,
    egress: Arc<HireEgress>,
    observations: mpsc::Sender<Observation>,
    shutdown: CancellationToken,
) {
    serve(Unix(listener), egress, observations, shutdown).await;
}

trait Listener: Send {
    type Io: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    fn accept(&self) -> impl Future<Output = io::Result<Self::Io>> + Send;
}

struct Tcp(TcpListener);
struct Unix(UnixListener);

impl Listener for Tcp {
    type Io = tokio::net::TcpStream;
    async fn accept(&self) -> io::Result<Self::Io> {
        let (s, _) = self.0.accept().await?;
        let _ = s.set_nodelay(true);
        Ok(s)
    }
}

impl Listener for Unix {
    type Io = tokio::net::UnixStream;
    async fn accept(&self) -> io::Result<Self::Io> {
        Ok(self.0.accept().await?.0)
    }
}

async fn serve<L: Listener>(
    listener: L,
    egress: Arc<HireEgress>,
    observations: mpsc::Sender<Observation>,
    shutdown: CancellationToken,
) {
    let grace = egress.limits.shutdown_grace;
    let connections = Arc::new(Semaphore::new(egress.limits.max_connections));
    let hard_stop = CancellationToken::new();
    let ctx = Arc::new(Ctx {
        egress,
        observations,
        tasks: TaskTracker::new(),
        shutdown: shutdown.clone(),
    });
    loop {
        let permit = tokio::select! {
            p = connections.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            () = shutdown.cancelled() => break,
        };
        let accepted = tokio::select! {
            a = listener.accept() => a,
            () = shutdown.cancelled() => break,
        };
        match accepted {
            Ok(io) => {
                let ctx2 = ctx.clone();
                let hard = hard_stop.clone();
                ctx.tasks.spawn(connection(io, ctx2, permit, hard));
            }
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(hire = %ctx.egress.hire, error = %e, "egress proxy accept failed");
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_millis(100)) => {}
                    () = shutdown.cancelled() => break,
                }
            }
        }
    }
    ctx.tasks.close();
    if tokio::time::timeout(grace, ctx.tasks.wait()).await.is_err() {
        hard_stop.cancel();
        ctx.tasks.wait().await;
    }
}

async fn connection<IO>(
    io: IO,
    ctx: Arc<Ctx>,
    _permit: OwnedSemaphorePermit,
    hard_stop: CancellationToken,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let limits = &ctx.egress.limits;
    let svc_ctx = ctx.clone();
    let service = service_fn(move |req| {
        let ctx = svc_ctx.clone();
        async move {
            let failed =
                |why: &str| denial_response(&Denial::new(DenialCode::UpstreamError, "", why));
            // Waiting for a slot happens here: an agent that hangs up while waiting leaves
            // nothing behind (nothing happened yet).
            let Ok(permit) = ctx.egress.in_flight.clone().acquire_owned().await else {
                return Ok::<_, Infallible>(failed("the proxy is stopping"));
            };
            // The request then runs in its own tracked task: if the agent disconnects, hyper
            // drops this future but the call completes and its observation is recorded.
            let task = ctx.tasks.spawn(handle(ctx.clone(), req, permit));
            Ok(task
                .await
                .unwrap_or_else(|_| failed("the proxy failed while handling the request")))
        }
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes.max(8192));
    let conn = builder
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                tracing::debug!(hire = %ctx.egress.hire, error = %e, "agent connection ended with an error");
            }
        }
        () = ctx.shutdown.cancelled() => {
            conn.as_mut().graceful_shutdown();
            tokio::select! {
                _ = conn.as_mut() => {}
                () = hard_stop.cancelled() => {}
            }
        }
    }
}

async fn handle(
    ctx: Arc<Ctx>,
    req: Request<Incoming>,
    permit: OwnedSemaphorePermit,
) -> Response<Full<Bytes>> {
    let mut rec = Recorder::start();
    rec.obs.method = req.method().as_str().to_owned();
    rec.obs.host = request_host(&req)
        .map(|h| h.to_string())
        .unwrap_or_default();
    let authed = req
        .headers()
        .get(PROXY_AUTHORIZATION)
        .is_some_and(|v| ctx.egress.token.matches(v.as_bytes()));
    if !authed {
        let d = Denial::new(
            DenialCode::ProxyAuthRequired,
            rec.obs.host.clone(),
            "send Proxy-Authorization: Basic base64(souk:<token>) (the credentials in HTTP_PROXY)",
        );
        let obs = rec.deny(&d);
        return respond(&ctx, Err(d), obs).await;
    }
    if req.method() == Method::CONNECT {
        return match tunnel::open(&ctx, req, &mut rec, permit).await {
            Ok(resp) => resp,
            Err(d) => {
                let obs = rec.deny(&d);
                respond(&ctx, Err(d), obs).await
            }
        };
    }
    let performed = plain(&ctx, req, rec).await;
    drop(permit);
    respond(&ctx, performed.result, performed.observation).await
}

/// The target host of a request: the URI's authority (absolute-form or authority-form).
fn request_host(req: &Request<Incoming>) -> Option<HostKey> {
    let uri = req.uri();
    if req.method() == Method::CONNECT {
        return HostKey::parse(uri.authority()?.as_str());
    }
    HostKey::from_parts(uri.host()?, uri.port_u16().unwrap_or(DEFAULT_PORT))
}

enum Route<'a> {
    Unslotted,
    Slot(&'a SlotState),
}

/// A plain-HTTP (absolute-form) request: parse, route, check, read the body, carry it out.
async fn plain(ctx: &Ctx, req: Request<Incoming>, mut rec: Recorder) -> Performed {
    let egress = &ctx.egress;
    let deny = |rec: Recorder, d: Denial| {
        let observation = rec.deny(&d);
        Performed {
            result: Err(d),
            observation,
        }
    };
    let (parts, body) = req.into_parts();
    if !is_recordable_method(parts.method.as_str()) {
        let d = Denial::new(
            DenialCode::BadRequest,
            rec.obs.host.clone(),
            "the method must be 1 to 16 letters A-Z",
        );
        return deny(rec, d);
    }
    let uri = &parts.uri;
    let absolute = matches!(uri.scheme_str(), Some(s) if s.eq_ignore_ascii_case("http") || s.eq_ignore_ascii_case("https"));
    let Some(authority) = uri.authority().filter(|_| absolute) else {
        let d = Denial::new(
            DenialCode::BadRequest,
            "",
            "send requests in absolute form through the proxy (GET http://host/path), or \
             CONNECT host:port for listed hosts without a credential",
        );
        return deny(rec, d);
    };
    if authority.as_str().contains('@') {
        return deny(
            rec,
            Denial::new(
                DenialCode::BadRequest,
                "",
                "user info in the URL is not allowed",
            ),
        );
    }
    let Some(host) = uri
        .host()
        .and_then(|h| HostKey::from_parts(h, uri.port_u16().unwrap_or(DEFAULT_PORT)))
    else {
        return deny(rec, Denial::new(DenialCode::BadRequest, "", "invalid host"));
    };
    let h = host.to_string();
    rec.obs.host = h.clone();
    rec.obs.path = uri.path().to_owned();
    let route = match egress.slot_for(&host) {
        Some(slot) => {
            rec.obs.slot = Some(slot.grant.slot().to_owned());
            rec.obs.mode = slot.source.call_mode();
            Route::Slot(slot)
        }
        None if egress.is_listed(&host) => Route::Unslotted,
        None => {
            let d = Denial::new(
                DenialCode::BlockedByPolicy,
                h,
                "this host is not listed in the agent's manifest; the proxy refuses it",
            );
            return deny(rec, d);
        }
    };
    if parts.headers.contains_key(UPGRADE) {
        let d = Denial::new(
            DenialCode::BadRequest,
            h,
            "protocol upgrades are not supported",
        );
        return deny(rec, d);
    }
    let path = match route {
        Route::Slot(slot) => {
            let now = (egress.clock)();
            match exchange::checked_path(&slot.grant, &host, &parts.method, uri.path(), now) {
                Ok(p) => p,
                Err(d) => return deny(rec, d),
            }
        }
        Route::Unslotted => match exchange::normalised(&host, uri.path()) {
            Ok(p) => p,
            Err(d) => return deny(rec, d),
        },
    };
    rec.obs.path = path.clone();
    let max = egress.upstream.config().max_request_body;
    let body = match Limited::new(body, max).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            let d = Denial::new(
                DenialCode::RequestTooLarge,
                h,
                format!("the request body exceeds {max} bytes"),
            );
            return deny(rec, d);
        }
        Err(_) => {
            let d = Denial::new(
                DenialCode::BadRequest,
                h,
                "the request body could not be read",
            );
            return deny(rec, d);
        }
    };
    rec.request_body(&body);
    let mut headers = parts.headers;
    exchange::strip_hop_by_hop(&mut headers);
    let call = Call {
        method: parts.method,
        host,
        path,
        query: crate::inject::split_query(uri.query()),
        headers,
        body,
    };
    let own = match route {
        Route::Slot(s) => Some(s.grant.slot()),
        Route::Unslotted => None,
    };
    let others = egress.placeholder_scrubber(own);
    if call.carries(&others) {
        let d = Denial::new(
            DenialCode::SecretInRequest,
            h,
            "the request carries the placeholder of a credential slot that does not cover this \
             host; a credential is only ever sent to its own hosts",
        );
        return deny(rec, d);
    }
    match route {
        Route::Unslotted => exchange::forward(call, &egress.upstream, rec).await,
        Route::Slot(slot) => match &slot.source {
            SecretSource::Sealed(open) => match open() {
                Ok(bytes) => {
                    let secret = Secret::new(bytes);
                    exchange::credentialed(call, &slot.grant, &secret, &egress.upstream, rec).await
                }
                Err(e) => {
                    let d = Denial::new(
                        DenialCode::CredentialUnavailable,
                        h,
                        format!("slot {}: {e}", slot.grant.slot()),
                    );
                    deny(rec, d)
                }
            },
            SecretSource::Relayed(relay) => {
                let all = egress.placeholder_scrubber(None);
                exchange::relayed(call, &slot.grant, relay, &egress.upstream, &all, rec).await
            }
        },
    }
}

/// Records the observation, then answers the agent; fails closed if it cannot be recorded.
pub(crate) async fn respond(
    ctx: &Ctx,
    result: Result<crate::relay::RelayedResponse, Denial>,
    obs: Observation,
) -> Response<Full<Bytes>> {
    let host = obs.host.clone();
    if !ctx.record(obs).await {
        let d = Denial::new(
            DenialCode::UpstreamError,
            host,
            "the node is not recording network calls for this hire; nothing is delivered",
        );
        return denial_response(&d);
    }
    match result {
        Ok(resp) => {
            let mut out = Response::new(Full::new(Bytes::from(resp.body)));
            *out.status_mut() =
                StatusCode::from_u16(resp.status).unwrap_or(StatusCode::BAD_GATEWAY);
            for (k, v) in resp.headers {
                if let (Ok(k), Ok(v)) = (
                    http::HeaderName::from_bytes(k.as_bytes()),
                    HeaderValue::from_bytes(&v),
                ) {
                    out.headers_mut().append(k, v);
                }
            }
            out
        }
        Err(d) => denial_response(&d),
    }
}

/// The contract's JSON denial as an HTTP response.
pub(crate) fn denial_response(d: &Denial) -> Response<Full<Bytes>> {
    let mut out = Response::new(Full::new(Bytes::from(d.to_json())));
    *out.status_mut() = StatusCode::from_u16(d.http_status()).unwrap_or(StatusCode::FORBIDDEN);
    out.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if d.code == DenialCode::ProxyAuthRequired {
        out.headers_mut().insert(
            PROXY_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"souk\""),
        );
    }
    out
}
