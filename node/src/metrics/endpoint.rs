//! The Prometheus scrape endpoint: `GET /metrics` on the address the operator gives
//! (`metrics` in config.toml, `souk node run --metrics`), answered with every metric of a
//! node in the OpenMetrics text format, encoded when scraped (the node's loop is never
//! involved: it only bumps atomics). Anything else is 404.
//!
//! It has **no authentication**: whoever reaches the address reads the metrics (nothing
//! secret, but traffic figures), which is why loopback is the recommended address. Bounded
//! like the local API, with less: at most [`MAX_CONNECTIONS`] connections (a new one over
//! the cap is closed), a header read timeout, small request heads.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use prometheus_client::registry::Registry;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinHandle;

use super::Metrics;
use super::prometheus::{encode, registry};

/// Most scrape connections open at once (Prometheus keeps one per target).
pub const MAX_CONNECTIONS: usize = 16;
/// How long a connection may take to send a request head (also closes an idle kept-alive
/// connection).
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long open connections may finish their answer once the endpoint stops.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);
/// The OpenMetrics text format, which Prometheus scrapes natively.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Binds `addr` and serves `GET /metrics` for `metrics` until `stop` resolves. Returns the
/// bound address (port 0 picks one), also recorded in [`Metrics::endpoint`] so that
/// `GET /v1/info` shows it, and the server's task.
pub async fn serve(
    addr: SocketAddr,
    metrics: &Metrics,
    stop: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<(SocketAddr, JoinHandle<()>)> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    // A second endpoint for the same metrics keeps the first address in `/v1/info`.
    let _ = metrics.endpoint.set(bound);
    let app = router(Arc::new(registry(metrics)));
    Ok((bound, tokio::spawn(run(listener, app, stop))))
}

/// `GET /metrics` and nothing else.
fn router(registry: Arc<Registry>) -> Router {
    Router::new()
        .route("/metrics", get(scrape).fallback(not_found))
        .fallback(not_found)
        .with_state(registry)
}

async fn scrape(State(registry): State<Arc<Registry>>) -> Response {
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], encode(&registry)).into_response()
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "not found: GET /metrics\n").into_response()
}

async fn run(listener: TcpListener, app: Router, stop: impl Future<Output = ()> + Send + 'static) {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .max_headers(32)
        .max_buf_size(16 * 1024);
    let builder = Arc::new(builder);
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let (stopping_tx, stopping) = watch::channel(false);
    let service = TowerToHyperService::new(app);
    tokio::pin!(stop);
    loop {
        let stream = tokio::select! {
            () = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::debug!("metrics endpoint: accept failed: {e}");
                    if !matches!(e.kind(), std::io::ErrorKind::ConnectionAborted
                        | std::io::ErrorKind::ConnectionReset)
                    {
                        // Out of descriptors or memory: pause instead of spinning.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    continue;
                }
            },
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            tracing::debug!(
                "metrics endpoint: {MAX_CONNECTIONS} connections open; closing a new one"
            );
            continue;
        };
        tokio::spawn(serve_connection(
            stream,
            service.clone(),
            builder.clone(),
            permit,
            stopping.clone(),
        ));
    }
    drop(listener);
    let _ = stopping_tx.send(true);
    let all = u32::try_from(MAX_CONNECTIONS).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, permits.acquire_many(all)).await;
}

/// Serves one connection until it ends; closes it gracefully when the endpoint stops.
async fn serve_connection(
    stream: TcpStream,
    service: TowerToHyperService<Router>,
    builder: Arc<http1::Builder>,
    _permit: OwnedSemaphorePermit,
    mut stopping: watch::Receiver<bool>,
) {
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    let mut closing = false;
    loop {
        tokio::select! {
            done = conn.as_mut() => {
                if let Err(e) = done {
                    tracing::debug!("metrics connection: {e}");
                }
                return;
            }
            _ = stopping.wait_for(|s| *s), if !closing => {
                conn.as_mut().graceful_shutdown();
                closing = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// Sends `request` on a new connection and reads the whole answer (the request asks the
    /// server to close).
    async fn exchange(addr: SocketAddr, request: &str) -> String {
        let mut s = TcpStream::connect(addr)
            .await
            .unwrap_or_else(|e| panic!("connect: {e}"));
        s.write_all(request.as_bytes())
            .await
            .unwrap_or_else(|e| panic!("write: {e}"));
        let mut answer = String::new();
        tokio::time::timeout(Duration::from_secs(10), s.read_to_string(&mut answer))
            .await
            .unwrap_or_else(|_| panic!("no answer to {request:?}"))
            .unwrap_or_else(|e| panic!("read: {e}"));
        answer
    }

    #[tokio::test]
    async fn serves_get_metrics_and_nothing_else() {
        let metrics = Arc::new(Metrics::default());
        let (stop_tx, mut stop_rx) = watch::channel(false);
        let (addr, task) = serve(
            SocketAddr::from(([127, 0, 0, 1], 0)),
            &metrics,
            async move {
                let _ = stop_rx.wait_for(|s| *s).await;
            },
        )
        .await
        .unwrap_or_else(|e| panic!("bind: {e}"));
        assert_eq!(metrics.endpoint(), Some(addr));
        metrics.gossip_accepted.inc();

        let ok = exchange(
            addr,
            "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
        assert!(ok.to_ascii_lowercase().contains(CONTENT_TYPE), "{ok}");
        assert!(ok.contains("\nsouk_gossip_accepted_total 1\n"), "{ok}");
        assert!(ok.ends_with("# EOF\n"), "{ok}");

        for request in [
            "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            "GET /v1/metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            "GET /metrics/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        ] {
            let answer = exchange(addr, request).await;
            assert!(answer.starts_with("HTTP/1.1 404"), "{request:?}: {answer}");
        }

        let _ = stop_tx.send(true);
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .unwrap_or_else(|_| panic!("the endpoint did not stop"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(TcpStream::connect(addr).await.is_err(), "still listening");
    }
}
