//! The local API under a hostile local process that has no token: thousands of idle
//! connections do not starve it (the longest-idle ones are shed at the cap), a body that never
//! comes or is too large gets an answer, and requests with two `Host` headers or an
//! absolute-form target are refused.

#[path = "support/mod.rs"]
mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use souk_node::api::client::ApiClient;
use souk_node::api::{self, ApiLimits, ApiState};
use souk_node::service::NodeInfo;
use support::{TestNode, seed, start_node};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use zeroize::Zeroizing;

/// Long enough for anything these tests wait on; a failure shows as a timeout, not a hang.
const WAIT: Duration = Duration::from_secs(30);

fn token() -> String {
    "ab".repeat(32)
}

struct Api {
    addr: SocketAddr,
    stop: Arc<tokio::sync::Notify>,
    node: TestNode,
    _dir: tempfile::TempDir,
}

async fn start_api(n: u16, limits: Option<ApiLimits>) -> Api {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let node = start_node(dir.path(), seed(n), false, vec![]).await;
    let stop = Arc::new(tokio::sync::Notify::new());
    let state = ApiState {
        node: node.handle.clone(),
        token: Arc::new(Zeroizing::new(token())),
        shutdown: stop.clone(),
    };
    let s2 = stop.clone();
    let until = async move { s2.notified().await };
    let served = match limits {
        Some(l) => api::serve_with(([127, 0, 0, 1], 0).into(), state, l, until).await,
        None => api::serve(([127, 0, 0, 1], 0).into(), state, until).await,
    };
    let (addr, _task) = served.unwrap_or_else(|e| panic!("{e}"));
    Api {
        addr,
        stop,
        node,
        _dir: dir,
    }
}

impl Api {
    async fn stop(self) {
        self.stop.notify_waiters();
        self.node.handle.shutdown().await;
    }
}

/// Sends `raw` and reads the answer's head and `Content-Length` body (empty: the server
/// closed without answering). Panics if nothing happens within [`WAIT`].
async fn exchange(addr: SocketAddr, raw: &[u8]) -> String {
    let mut s = TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    s.write_all(raw).await.unwrap_or_else(|e| panic!("{e}"));
    support::read_response(&mut s, WAIT)
        .await
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_without_the_token_cannot_starve_the_api() {
    let fds = souk_node::fd_limit::raise();
    const CAP: usize = 32;
    // 2000 idle connections, fewer if this process may not hold them (and its own needs).
    let idle_count = fds
        .now
        .map_or(2000, |l| (l.saturating_sub(300) as usize).min(2000));
    let api = start_api(
        60,
        Some(ApiLimits {
            max_connections: CAP,
            ..ApiLimits::default()
        }),
    )
    .await;
    let opened = Instant::now();
    let mut idle = Vec::with_capacity(idle_count);
    for _ in 0..idle_count {
        let s = tokio::time::timeout(WAIT, TcpStream::connect(api.addr))
            .await
            .unwrap_or_else(|_| panic!("connect timed out"))
            .unwrap_or_else(|e| panic!("connect: {e}"));
        idle.push(s);
    }
    let opened = opened.elapsed();
    let addr = api.addr;
    let (info, latency) = tokio::time::timeout(
        WAIT,
        tokio::task::spawn_blocking(move || {
            let client = ApiClient::new(addr, Zeroizing::new(token()));
            let t = Instant::now();
            let info: NodeInfo = client.get("/v1/info").unwrap_or_else(|e| panic!("{e}"));
            (info, t.elapsed())
        }),
    )
    .await
    .unwrap_or_else(|_| panic!("/v1/info did not answer within {WAIT:?}"))
    .unwrap_or_else(|e| panic!("{e}"));
    let d = info
        .descriptors
        .unwrap_or_else(|| panic!("/v1/info reports descriptors"));
    eprintln!(
        "{idle_count} idle connections opened in {opened:?}; /v1/info answered in {latency:?}; {d:?}"
    );
    assert_eq!(d.api_max_connections, CAP);
    // The cap, plus at most an eighth of it still closing after being shed.
    assert!(d.api_connections <= CAP + CAP / 8 + 1, "{d:?}");
    assert_eq!(d.limit, fds.now);
    // The server closed all but the newest of the idle connections: most are closed.
    let mut closed = 0;
    for s in idle.iter_mut().take(100) {
        let mut b = [0u8; 1];
        if matches!(
            tokio::time::timeout(WAIT, s.read(&mut b)).await,
            Ok(Ok(0) | Err(_))
        ) {
            closed += 1;
        }
    }
    assert_eq!(closed, 100, "the oldest idle connections were shed");
    drop(idle);
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_that_never_come_or_are_too_large_get_an_answer() {
    let api = start_api(61, None).await;
    let auth = format!("Authorization: Bearer {}\r\n", token());
    // A gigabyte announced, nothing sent: answered at once, not waited for.
    let r = exchange(
        api.addr,
        format!(
            "POST /v1/agents HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Content-Type: application/json\r\nContent-Length: 1073741824\r\n\r\n"
        )
        .as_bytes(),
    )
    .await;
    assert!(r.starts_with("HTTP/1.1 400"), "{r}");
    assert!(r.contains("\"code\":\"too-large\""), "{r}");
    assert!(r.contains("16842752 bytes"), "names the limit: {r}");
    // 20 MB sent by a client that writes the whole body before reading (as the CLI does):
    // the documented 400, not a reset.
    let addr = api.addr;
    let (status, body) = tokio::task::spawn_blocking(move || {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .new_agent();
        let mut big = b"{\"description\":\"".to_vec();
        big.resize(20_000_000, b'x');
        big.extend_from_slice(b"\"}");
        let mut resp = agent
            .post(format!("http://{addr}/v1/agents"))
            .header("Authorization", format!("Bearer {}", token()))
            .header("Content-Type", "application/json")
            .send(&big[..])
            .unwrap_or_else(|e| panic!("the client must get the answer, got {e}"));
        let status = resp.status().as_u16();
        (status, resp.body_mut().read_to_string().unwrap_or_default())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("\"code\":\"too-large\""), "{body}");
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_stops_coming_times_out() {
    let api = start_api(
        62,
        Some(ApiLimits {
            body_timeout: Duration::from_millis(300),
            ..ApiLimits::default()
        }),
    )
    .await;
    let auth = format!("Authorization: Bearer {}\r\n", token());
    let r = exchange(
        api.addr,
        format!(
            "POST /v1/agents HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"na"
        )
        .as_bytes(),
    )
    .await;
    assert!(r.starts_with("HTTP/1.1 408"), "{r}");
    assert!(r.contains("\"code\":\"timeout\""), "{r}");
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_host_headers_and_absolute_targets_are_refused() {
    let api = start_api(63, None).await;
    let auth = format!("Authorization: Bearer {}\r\n", token());
    let ok = exchange(
        api.addr,
        format!("GET /v1/info HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}\r\n").as_bytes(),
    )
    .await;
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    let two_hosts = exchange(
        api.addr,
        format!("GET /v1/info HTTP/1.1\r\nHost: 127.0.0.1\r\nHost: evil.example\r\n{auth}\r\n")
            .as_bytes(),
    )
    .await;
    assert!(two_hosts.starts_with("HTTP/1.1 400"), "{two_hosts}");
    for target in ["http://evil.example/v1/info", "http://127.0.0.1/v1/info"] {
        let r = exchange(
            api.addr,
            format!("GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}\r\n").as_bytes(),
        )
        .await;
        assert!(r.starts_with("HTTP/1.1 400"), "{target}: {r}");
    }
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_says_what_is_wrong() {
    let api = start_api(64, None).await;
    let addr = api.addr;
    let (too_large, bad_name) = tokio::task::spawn_blocking(move || {
        let client = ApiClient::new(addr, Zeroizing::new(token()));
        let big = serde_json::json!({ "description": "x".repeat(20_000_000) });
        let too_large = client.post::<_, serde_json::Value>("/v1/agents", &big);
        let bad_name = client.delete::<serde_json::Value>("/v1/agents/..%2F..%2Fidentity.key");
        (too_large, bad_name)
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    match too_large {
        Err(e @ souk_node::api::client::ClientError::TooLarge { .. }) => {
            assert!(e.to_string().contains("16842752"), "{e}");
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
    match bad_name {
        Err(souk_node::api::client::ClientError::Api { status, body }) => {
            assert_eq!(status, 400, "{body:?}");
            assert_eq!(body.code, "invalid");
            assert!(body.error.contains("not a valid agent name"), "{body:?}");
        }
        other => panic!("expected a 400, got {other:?}"),
    }
    api.stop().await;
}
