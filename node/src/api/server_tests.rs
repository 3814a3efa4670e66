//! The connection layer and the body bound over real sockets, with a trivial router and
//! shortened limits.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::routing::{get, post};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::super::body;
use super::super::limits::ApiLimits;
use super::{Connections, hard_cap, run};

/// Long enough for anything these tests wait on; a failure shows as a timeout, not a hang.
const WAIT: Duration = Duration::from_secs(20);

fn limits() -> ApiLimits {
    ApiLimits {
        max_connections: 4,
        header_timeout: Duration::from_secs(30),
        body_timeout: Duration::from_millis(300),
        body_min_rate: 1024 * 1024,
        max_body: 1024 * 1024,
        drain_limit: 4 * 1024 * 1024,
        shed_wait: Duration::from_secs(5),
        shutdown_grace: Duration::from_secs(1),
    }
}

async fn start(
    limits: ApiLimits,
) -> (
    SocketAddr,
    Arc<Connections>,
    tokio::sync::oneshot::Sender<()>,
) {
    let limits = Arc::new(limits);
    let app = Router::new()
        .route("/", get(|| async { "hello" }))
        .route(
            "/echo",
            post(|b: Bytes| async move { format!("{}", b.len()) }),
        )
        .layer(axum::extract::DefaultBodyLimit::max(limits.max_body))
        .layer(axum::middleware::from_fn_with_state(
            limits.clone(),
            body::buffer,
        ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    let table = Arc::new(Connections::default());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(run(listener, app, limits, table.clone(), async move {
        let _ = rx.await;
    }));
    (addr, table, tx)
}

async fn connect(addr: SocketAddr) -> TcpStream {
    TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Reads one response (head and a `Content-Length` body); `None` on EOF before any byte.
async fn response(s: &mut TcpStream) -> Option<String> {
    crate::testkit::read_response(s, WAIT).await
}

/// Whether the server closed `s` (EOF or reset) within [`WAIT`].
async fn closed(s: &mut TcpStream) -> bool {
    let mut b = [0u8; 16];
    matches!(
        tokio::time::timeout(WAIT, s.read(&mut b)).await,
        Ok(Ok(0) | Err(_))
    )
}

async fn get_root(s: &mut TcpStream) -> Option<String> {
    s.write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .ok()?;
    response(s).await
}

#[tokio::test]
async fn at_the_cap_the_longest_idle_connection_makes_room() {
    let (addr, table, _stop) = start(limits()).await;
    let mut idle = Vec::new();
    for _ in 0..4 {
        idle.push(connect(addr).await);
    }
    // The last three have served a request since, so the first is the longest idle.
    for s in &mut idle[1..] {
        let r = get_root(s).await.unwrap_or_default();
        assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    }
    assert_eq!(table.len(), 4);
    let mut late = connect(addr).await;
    let r = get_root(&mut late).await.unwrap_or_default();
    assert!(r.ends_with("hello"), "the new connection is served: {r}");
    assert!(
        closed(&mut idle[0]).await,
        "the longest-idle connection was closed"
    );
    for s in &mut idle[1..] {
        let r = get_root(s).await.unwrap_or_default();
        assert!(r.starts_with("HTTP/1.1 200"), "the others stay open: {r}");
    }
    assert!(table.len() <= hard_cap(4));
}

#[tokio::test]
async fn a_silent_connection_is_closed_after_the_header_timeout() {
    let (addr, table, _stop) = start(ApiLimits {
        header_timeout: Duration::from_millis(200),
        ..limits()
    })
    .await;
    let mut silent = connect(addr).await;
    assert!(closed(&mut silent).await);
    // Kept alive after an answer, then silent: closed too.
    let mut kept = connect(addr).await;
    assert!(get_root(&mut kept).await.is_some());
    assert!(closed(&mut kept).await);
    // Slots are released.
    let deadline = tokio::time::Instant::now() + WAIT;
    while table.len() > 0 && tokio::time::Instant::now() < deadline {
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(table.len(), 0);
}

#[tokio::test]
async fn a_declared_huge_body_is_refused_at_once() {
    let (addr, _, _stop) = start(limits()).await;
    let mut s = connect(addr).await;
    s.write_all(b"POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1073741824\r\n\r\n")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let r = response(&mut s).await.unwrap_or_default();
    assert!(r.starts_with("HTTP/1.1 400"), "{r}");
    assert!(r.contains("\"code\":\"too-large\""), "{r}");
    assert!(r.contains("1048576 bytes"), "names the limit: {r}");
    assert!(closed(&mut s).await);
}

#[tokio::test]
async fn a_body_that_never_comes_times_out() {
    let (addr, _, _stop) = start(limits()).await;
    let mut s = connect(addr).await;
    s.write_all(b"POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n\r\nabc")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let r = response(&mut s).await.unwrap_or_default();
    assert!(r.starts_with("HTTP/1.1 408"), "{r}");
    assert!(r.contains("\"code\":\"timeout\""), "{r}");
}

#[tokio::test]
async fn an_oversized_body_gets_its_answer_not_a_reset() {
    let (addr, _, _stop) = start(limits()).await;
    // 2 MiB, over the 1 MiB limit and under the drain limit: the client writes all of it
    // before reading, as the CLI does.
    let answer = tokio::task::spawn_blocking(move || {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .new_agent();
        let mut resp = agent
            .post(format!("http://{addr}/echo"))
            .send(&vec![b'x'; 2 * 1024 * 1024][..])
            .unwrap_or_else(|e| panic!("the client must get an answer, got {e}"));
        let status = resp.status().as_u16();
        let body = resp.body_mut().read_to_string().unwrap_or_default();
        (status, body)
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(answer.0, 400, "{}", answer.1);
    assert!(answer.1.contains("too-large"), "{}", answer.1);
    // Chunked (no length declared) and over the limit: the same answer.
    let mut s = connect(addr).await;
    let mut req =
        b"POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    let chunk = vec![b'y'; 256 * 1024];
    for _ in 0..6 {
        req.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        req.extend_from_slice(&chunk);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"0\r\n\r\n");
    s.write_all(&req).await.unwrap_or_else(|e| panic!("{e}"));
    let r = response(&mut s).await.unwrap_or_default();
    assert!(r.starts_with("HTTP/1.1 400"), "{r}");
    // Drained to its end: the connection stays usable.
    let r = get_root(&mut s).await.unwrap_or_default();
    assert!(r.ends_with("hello"), "{r}");
}

#[tokio::test]
async fn a_body_within_the_limit_reaches_the_handler() {
    let (addr, _, _stop) = start(limits()).await;
    let mut s = connect(addr).await;
    s.write_all(b"POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\n\r\nhello")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let r = response(&mut s).await.unwrap_or_default();
    assert!(
        r.starts_with("HTTP/1.1 200") && r.ends_with("\r\n\r\n5"),
        "{r}"
    );
}
