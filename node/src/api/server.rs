//! The local API's connection layer: accepts TCP connections and serves each with hyper's
//! HTTP/1.1 server under [`ApiLimits`]: at most `max_connections` at once (at the cap, the
//! connection idle the longest is told to close to make room for the new one, and at most
//! [`hard_cap`] are open while those close; when every connection has a request in progress,
//! the new one is closed), and hyper's header read timeout, which
//! also closes a kept-alive connection that sends nothing. Request bodies are bounded in
//! [`super::body`]. Never parses HTTP itself.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot, watch};

use super::limits::ApiLimits;

/// One open connection, as the table sees it.
#[derive(Debug)]
struct Entry {
    /// Requests in progress (0 or 1 with HTTP/1.1).
    busy: u32,
    /// Since when it has had no request in progress.
    idle_since: Instant,
    /// Tells the connection to close once its current answer is written (taken when used).
    shed: Option<oneshot::Sender<()>>,
}

/// The open connections, for shedding and for `GET /v1/info`.
#[derive(Debug, Default)]
pub(crate) struct Connections {
    inner: Mutex<Table>,
}

#[derive(Debug, Default)]
struct Table {
    next_id: u64,
    open: HashMap<u64, Entry>,
}

impl Connections {
    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Connections open now.
    pub(crate) fn len(&self) -> usize {
        self.lock().open.len()
    }

    /// Connections open and not told to close.
    fn live(&self) -> usize {
        let t = self.lock();
        t.open.values().filter(|e| e.shed.is_some()).count()
    }

    fn add(&self) -> (u64, oneshot::Receiver<()>) {
        let (tx, rx) = oneshot::channel();
        let mut t = self.lock();
        let id = t.next_id;
        t.next_id += 1;
        t.open.insert(
            id,
            Entry {
                busy: 0,
                idle_since: Instant::now(),
                shed: Some(tx),
            },
        );
        (id, rx)
    }

    fn remove(&self, id: u64) {
        self.lock().open.remove(&id);
    }

    fn set_busy(&self, id: u64, busy: bool) {
        if let Some(e) = self.lock().open.get_mut(&id) {
            if busy {
                e.busy += 1;
            } else {
                e.busy = e.busy.saturating_sub(1);
                if e.busy == 0 {
                    e.idle_since = Instant::now();
                }
            }
        }
    }

    /// Tells the connection idle the longest (not already told) to close. False when every
    /// connection has a request in progress.
    fn shed_oldest_idle(&self) -> bool {
        let mut t = self.lock();
        let oldest = t
            .open
            .iter()
            .filter(|(_, e)| e.busy == 0 && e.shed.is_some())
            .min_by_key(|(id, e)| (e.idle_since, **id))
            .map(|(id, _)| *id);
        let Some(tx) = oldest
            .and_then(|id| t.open.get_mut(&id))
            .and_then(|e| e.shed.take())
        else {
            return false;
        };
        // A connection that already ended dropped its receiver: it frees its slot anyway.
        let _ = tx.send(());
        true
    }
}

/// Removes a connection from the table when its task ends, however it ends.
struct Registered {
    table: Arc<Connections>,
    id: u64,
    _permit: OwnedSemaphorePermit,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.table.remove(self.id);
    }
}

/// Marks a connection busy while one request is being handled.
struct Busy {
    table: Arc<Connections>,
    id: u64,
}

impl Busy {
    fn new(table: Arc<Connections>, id: u64) -> Self {
        table.set_busy(id, true);
        Busy { table, id }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.table.set_busy(self.id, false);
    }
}

/// Marks a response whose body streams for long (an event stream): its connection counts
/// as busy until the body ends.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LongLived;

/// The router as a hyper service that keeps the table's busy/idle state.
#[derive(Clone)]
struct Tracked {
    inner: TowerToHyperService<Router>,
    table: Arc<Connections>,
    id: u64,
}

impl hyper::service::Service<Request<Incoming>> for Tracked {
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        let busy = Busy::new(self.table.clone(), self.id);
        let fut = self.inner.call(req.map(Body::new));
        Box::pin(async move {
            let resp = fut.await;
            match resp {
                // A stream stays busy until its body ends (never shed as idle).
                Ok(r) if r.extensions().get::<LongLived>().is_some() => {
                    let (parts, body) = r.into_parts();
                    let stream = futures::StreamExt::map(body.into_data_stream(), move |chunk| {
                        let _held = &busy;
                        chunk
                    });
                    Ok(Response::from_parts(parts, Body::from_stream(stream)))
                }
                other => {
                    drop(busy);
                    other
                }
            }
        })
    }
}

/// Most connections open at once: `max_connections`, plus up to an eighth of it (at least
/// one) still closing after being shed.
pub(crate) fn hard_cap(max_connections: usize) -> usize {
    max_connections.saturating_add(max_connections / 8 + 1)
}

/// Serves `app` on `listener` under `limits` until `stop` resolves, then lets open connections
/// finish their requests for at most `shutdown_grace`.
pub(crate) async fn run(
    listener: TcpListener,
    app: Router,
    limits: Arc<ApiLimits>,
    table: Arc<Connections>,
    stop: impl Future<Output = ()> + Send + 'static,
) {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_headers(64)
        .max_buf_size(64 * 1024);
    let builder = Arc::new(builder);
    // The hard bound: the cap, plus room for connections told to close that have not yet.
    let hard_cap = hard_cap(limits.max_connections);
    let permits = Arc::new(Semaphore::new(hard_cap));
    let (stopping_tx, stopping) = watch::channel(false);
    let service = TowerToHyperService::new(app);
    let mut last_warning: Option<Instant> = None;
    tokio::pin!(stop);
    loop {
        let stream = tokio::select! {
            () = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of descriptors or memory: wait a little instead of spinning. A
                    // connection reset before it was accepted needs no pause.
                    tracing::debug!("local API: accept failed: {e}");
                    if !matches!(e.kind(), std::io::ErrorKind::ConnectionAborted
                        | std::io::ErrorKind::ConnectionReset)
                    {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    continue;
                }
            },
        };
        if table.live() >= limits.max_connections {
            if last_warning.is_none_or(|t| t.elapsed() > Duration::from_secs(60)) {
                tracing::warn!(
                    "local API: {} connections open (the cap); closing the longest-idle ones to make room",
                    limits.max_connections
                );
                last_warning = Some(Instant::now());
            }
            if !table.shed_oldest_idle() {
                tracing::debug!("local API: every connection is busy; closing a new one");
                continue;
            }
        }
        // Shed connections close asynchronously: the new one starts at once while at most
        // `max_connections / 8 + 1` of them are still closing, else it waits for one.
        let permit = match permits.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                match tokio::time::timeout(limits.shed_wait, permits.clone().acquire_owned()).await
                {
                    Ok(Ok(p)) => p,
                    _ => continue,
                }
            }
        };
        let (id, shed) = table.add();
        let registered = Registered {
            table: table.clone(),
            id,
            _permit: permit,
        };
        let svc = Tracked {
            inner: service.clone(),
            table: table.clone(),
            id,
        };
        tokio::spawn(serve_connection(
            stream,
            svc,
            builder.clone(),
            registered,
            shed,
            stopping.clone(),
        ));
    }
    drop(listener);
    let _ = stopping_tx.send(true);
    let all = u32::try_from(hard_cap).unwrap_or(u32::MAX);
    if tokio::time::timeout(limits.shutdown_grace, permits.acquire_many(all))
        .await
        .is_err()
    {
        tracing::debug!(
            "local API: {} connections still open at shutdown",
            table.len()
        );
    }
}

/// Serves one connection until it ends, closing it gracefully when shed or at shutdown.
async fn serve_connection(
    stream: TcpStream,
    svc: Tracked,
    builder: Arc<http1::Builder>,
    registered: Registered,
    mut shed: oneshot::Receiver<()>,
    mut stopping: watch::Receiver<bool>,
) {
    let conn = builder.serve_connection(TokioIo::new(stream), svc);
    tokio::pin!(conn);
    let mut closing = false;
    loop {
        tokio::select! {
            done = conn.as_mut() => {
                if let Err(e) = done {
                    tracing::debug!("local API connection: {e}");
                }
                break;
            }
            _ = &mut shed, if !closing => {
                conn.as_mut().graceful_shutdown();
                closing = true;
            }
            _ = stopping.wait_for(|s| *s), if !closing => {
                conn.as_mut().graceful_shutdown();
                closing = true;
            }
        }
    }
    drop(registered);
}

#[cfg(test)]
#[path = "server_tests.rs"]
mod tests;
