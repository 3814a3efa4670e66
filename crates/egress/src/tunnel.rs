//! `CONNECT` tunnels to listed hosts without a credential slot.
//!
//! Owns the decision (slot hosts are refused with `use_plain_http_for_credential_hosts`,
//! unlisted hosts with `blocked_by_policy`), the checked upstream connection, and the byte
//! pump: it counts and hashes each direction, closes on idle or shutdown, and records one
//! observation when the tunnel ends. The bytes are the client's TLS records; the proxy never
//! decrypts, injects or scrubs them.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use souk_protocol::credential::{Denial, DenialCode};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;

use crate::host::HostKey;
use crate::observe::Recorder;
use crate::proxy::Ctx;

/// Checks and connects a `CONNECT`; on success answers 200 and pumps in a tracked task.
pub(crate) async fn open(
    ctx: &Arc<Ctx>,
    req: Request<Incoming>,
    rec: &mut Recorder,
    permit: OwnedSemaphorePermit,
) -> Result<Response<Full<Bytes>>, Denial> {
    let egress = &ctx.egress;
    let Some(host) = req
        .uri()
        .authority()
        .and_then(|a| HostKey::parse(a.as_str()))
    else {
        return Err(Denial::new(
            DenialCode::BadRequest,
            "",
            "CONNECT needs host:port",
        ));
    };
    let h = host.to_string();
    rec.obs.host = h.clone();
    if let Some(slot) = egress.slot_for(&host) {
        return Err(Denial::new(
            DenialCode::UsePlainHttpForCredentialHosts,
            h,
            format!(
                "this host uses credential slot {}: send plain HTTP to the proxy \
                 (http://{}/...) and it opens TLS and injects the credential; CONNECT would \
                 bypass the injection",
                slot.grant.slot(),
                host.authority()
            ),
        ));
    }
    if !egress.is_listed(&host) {
        return Err(Denial::new(
            DenialCode::BlockedByPolicy,
            h,
            "this host is not listed in the agent's manifest; the proxy refuses it",
        ));
    }
    let upstream = egress
        .upstream
        .connect_tcp(&host)
        .await
        .map_err(|f| f.denial(&host))?;
    let mut tunnel_rec = std::mem::replace(rec, Recorder::start());
    let idle = egress.limits.tunnel_idle_timeout;
    let stop = ctx.shutdown.clone();
    let task_ctx = ctx.clone();
    ctx.tasks.spawn(async move {
        let _permit = permit;
        tunnel_rec.obs.status = 200;
        match hyper::upgrade::on(req).await {
            Ok(upgraded) => {
                let tally = pump(TokioIo::new(upgraded), upstream, idle, stop).await;
                let o = &mut tunnel_rec.obs;
                o.request_bytes = tally.up_bytes;
                o.request_hash = souk_protocol::Hash(*tally.up_hash.finalize().as_bytes());
                o.response_bytes = tally.down_bytes;
                o.response_hash = souk_protocol::Hash(*tally.down_hash.finalize().as_bytes());
            }
            Err(e) => tracing::debug!(error = %e, "CONNECT upgrade failed"),
        }
        let _ = task_ctx.record(tunnel_rec.finish()).await;
    });
    let mut resp = Response::new(Full::new(Bytes::new()));
    *resp.status_mut() = StatusCode::OK;
    Ok(resp)
}

struct Tally {
    up_bytes: u64,
    up_hash: blake3::Hasher,
    down_bytes: u64,
    down_hash: blake3::Hasher,
}

/// Copies both ways until both sides finished, either side failed, the tunnel idled out, or
/// the proxy stops.
async fn pump<A>(
    agent: A,
    upstream: TcpStream,
    idle: Duration,
    stop: tokio_util::sync::CancellationToken,
) -> Tally
where
    A: AsyncRead + AsyncWrite + Unpin,
{
    let start = Instant::now();
    let last = AtomicU64::new(0);
    let (mut ar, mut aw) = tokio::io::split(agent);
    let (mut ur, mut uw) = upstream.into_split();
    let mut up = (0u64, blake3::Hasher::new());
    let mut down = (0u64, blake3::Hasher::new());
    {
        let a = copy(&mut ar, &mut uw, &mut up, &last, start);
        let b = copy(&mut ur, &mut aw, &mut down, &last, start);
        let idle_out = async {
            loop {
                let since = Duration::from_millis(last.load(Ordering::Relaxed));
                let deadline = start + since + idle;
                if Instant::now() >= deadline {
                    return;
                }
                tokio::time::sleep_until(deadline).await;
            }
        };
        tokio::select! {
            r = async { tokio::try_join!(a, b) } => {
                if let Err(e) = r {
                    tracing::debug!(error = %e, "tunnel ended with an error");
                }
            }
            () = idle_out => tracing::debug!("tunnel closed after idling"),
            () = stop.cancelled() => {}
        }
    }
    Tally {
        up_bytes: up.0,
        up_hash: up.1,
        down_bytes: down.0,
        down_hash: down.1,
    }
}

async fn copy<R, W>(
    r: &mut R,
    w: &mut W,
    tally: &mut (u64, blake3::Hasher),
    last: &AtomicU64,
    start: Instant,
) -> std::io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; 16 << 10];
    loop {
        let n = r.read(&mut buf).await?;
        if n == 0 {
            w.shutdown().await?;
            return Ok(());
        }
        tally.0 += n as u64;
        tally.1.update(&buf[..n]);
        w.write_all(&buf[..n]).await?;
        let ms = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
        last.store(ms, Ordering::Relaxed);
    }
}
