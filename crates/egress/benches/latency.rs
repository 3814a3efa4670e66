//! Added latency per call: a direct HTTPS GET to a local upstream versus the same GET through
//! the proxy (sealed credential injected, response scrubbed, observation recorded).
//!
//! `cargo bench -p souk-egress --bench latency` (set `EGRESS_BENCH_CALLS` to change the 500
//! calls per scenario). Prints median and p99 per scenario and the difference.
#![allow(missing_docs, unreachable_pub)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use http::Request;
use http_body_util::{BodyExt as _, Empty};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use souk_egress::*;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

type Sender = http1::SendRequest<Empty<Bytes>>;

async fn sender_direct(env: &Env) -> Sender {
    let tcp = TcpStream::connect(env.echo.addr).await.must("connect");
    tcp.set_nodelay(true).must("nodelay");
    let tls = tls_over(tcp, "api.test").await;
    let (s, conn) = http1::handshake(TokioIo::new(tls)).await.must("handshake");
    tokio::spawn(conn);
    s
}

async fn sender_proxy(addr: std::net::SocketAddr) -> Sender {
    let tcp = TcpStream::connect(addr).await.must("connect");
    tcp.set_nodelay(true).must("nodelay");
    let (s, conn) = http1::handshake(TokioIo::new(tcp)).await.must("handshake");
    tokio::spawn(conn);
    s
}

async fn call(sender: &mut Sender, uri: &str, auth: Option<&str>) {
    let mut req = Request::get(uri).header("host", "api.test");
    if let Some(a) = auth {
        req = req.header("proxy-authorization", a);
    }
    let req = req.body(Empty::new()).must("request");
    sender.ready().await.must("ready");
    let resp = sender.send_request(req).await.must("send");
    assert_eq!(resp.status(), 200);
    let _ = resp.into_body().collect().await.must("body");
}

struct Stats {
    median: Duration,
    p99: Duration,
}

fn stats(mut v: Vec<Duration>) -> Stats {
    v.sort_unstable();
    let at = |q: f64| v[((v.len() as f64 - 1.0) * q).round() as usize];
    Stats {
        median: at(0.5),
        p99: at(0.99),
    }
}

async fn measure(n: usize, mut f: impl AsyncFnMut()) -> Stats {
    for _ in 0..n / 10 {
        f().await;
    }
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        f().await;
        times.push(t.elapsed());
    }
    stats(times)
}

async fn start_proxy(env: &Env, pool: bool) -> (std::net::SocketAddr, String, CancellationToken) {
    let mut cfg = env.config(
        &[],
        vec![slot(
            grant("crm", &["api.test"], bearer()),
            sealed(&canary()),
        )],
    );
    cfg.slots[0].policy.max_requests = souk_protocol::credential::policy::MAX_REQUESTS;
    if !pool {
        cfg.upstream.pool_idle_timeout = Duration::ZERO;
    }
    let auth = {
        use base64::Engine as _;
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD
                .encode(format!("souk:{}", cfg.proxy_token.expose()))
        )
    };
    let egress = Arc::new(HireEgress::new(cfg).must("config"));
    let listener = TcpListener::bind("127.0.0.1:0").await.must("bind");
    let addr = listener.local_addr().must("addr");
    let (tx, mut rx) = mpsc::channel(64);
    tokio::spawn(async move { while rx.recv().await.is_some() {} });
    let stop = CancellationToken::new();
    tokio::spawn(serve_tcp(listener, egress, tx, stop.clone()));
    (addr, auth, stop)
}

fn report(name: &str, direct: &Stats, proxied: &Stats) {
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "{name}: direct median {:.3} ms p99 {:.3} ms | proxied median {:.3} ms p99 {:.3} ms | added median {:.3} ms p99 {:.3} ms",
        ms(direct.median),
        ms(direct.p99),
        ms(proxied.median),
        ms(proxied.p99),
        ms(proxied.median) - ms(direct.median),
        ms(proxied.p99) - ms(direct.p99),
    );
}

fn main() {
    let n: usize = std::env::var("EGRESS_BENCH_CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .must("runtime");
    rt.block_on(async {
        let env = env_quiet().await;

        // Keep-alive everywhere: the agent keeps its proxy connection, the proxy pools upstream.
        let mut direct = sender_direct(&env).await;
        let d = measure(n, async || call(&mut direct, "/bench", None).await).await;
        let (addr, auth, stop) = start_proxy(&env, true).await;
        let mut via = sender_proxy(addr).await;
        let p = measure(n, async || {
            call(&mut via, "http://api.test/bench", Some(&auth)).await
        })
        .await;
        report("keep-alive", &d, &p);
        stop.cancel();

        // A new connection per call: TCP + TLS handshake each time on both paths.
        let d = measure(n, async || {
            let mut s = sender_direct(&env).await;
            call(&mut s, "/bench", None).await;
        })
        .await;
        let (addr, auth, stop) = start_proxy(&env, false).await;
        let p = measure(n, async || {
            let mut s = sender_proxy(addr).await;
            call(&mut s, "http://api.test/bench", Some(&auth)).await;
        })
        .await;
        report("new connection per call", &d, &p);
        stop.cancel();

        if std::env::var("EGRESS_BENCH_DIAG").is_ok() {
            let (addr, auth, stop) = start_proxy(&env, false).await;
            let mut via = sender_proxy(addr).await;
            let p = measure(n, async || {
                call(&mut via, "http://api.test/bench", Some(&auth)).await
            })
            .await;
            report("diag: agent keep-alive, no upstream pool", &d, &p);
            stop.cancel();
            let (addr, auth, stop) = start_proxy(&env, true).await;
            let p = measure(n, async || {
                let mut s = sender_proxy(addr).await;
                call(&mut s, "http://api.test/bench", Some(&auth)).await;
            })
            .await;
            report("diag: new agent connection, upstream pool", &d, &p);
            stop.cancel();
        }
    });
}
