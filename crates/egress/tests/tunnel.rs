//! `CONNECT` tunnels to listed hosts without a slot: TLS end to end by the agent, observed
//! with byte counts when the tunnel closes.

mod common;

use common::*;
use souk_egress::*;
use souk_protocol::receipt::CallMode;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

async fn connect_through(proxy: &Proxy, authority: &str) -> (TcpStream, Vec<u8>) {
    let mut s = TcpStream::connect(proxy.addr).await.must("connect proxy");
    let req = format!(
        "CONNECT {authority} HTTP/1.1\r\nhost: {authority}\r\nproxy-authorization: {}\r\n\r\n",
        proxy.agent().auth
    );
    s.write_all(req.as_bytes()).await.must("write CONNECT");
    // Read the response head byte by byte so no tunnel byte is consumed.
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut b = [0u8; 1];
        let n = s.read(&mut b).await.must("read head");
        assert_ne!(n, 0, "proxy closed: {}", String::from_utf8_lossy(&head));
        head.push(b[0]);
    }
    (s, head)
}

#[tokio::test]
async fn tunnel_to_a_listed_host_carries_tls_end_to_end_and_is_observed() {
    let env = env().await;
    let mut proxy = start(env.config(
        &["tunnel.test"],
        vec![slot(
            grant("crm", &["api.test"], bearer()),
            sealed(&canary()),
        )],
    ))
    .await;
    let (stream, head) = connect_through(&proxy, "tunnel.test:443").await;
    assert!(
        head.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    // The agent's own TLS session with the upstream, validated against its certificate.
    let mut tls = tls_over(stream, "tunnel.test").await;
    let body = b"hello through the tunnel";
    let req = format!(
        "POST /inside HTTP/1.1\r\nhost: tunnel.test\r\nconnection: close\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    tls.write_all(req.as_bytes()).await.must("write");
    tls.write_all(body).await.must("write body");
    let mut out = Vec::new();
    tls.read_to_end(&mut out).await.must("read");
    let resp = parse_response(out);
    assert_eq!(resp.status, 200);
    assert_eq!(resp.json()["path"], "/inside");
    assert_eq!(resp.json()["body_len"], body.len());
    let seen = env.echo.last();
    assert_eq!(seen.header("proxy-authorization"), None);
    drop(tls);

    let obs = proxy.observation().await;
    assert_eq!(obs.method, "CONNECT");
    assert_eq!(obs.host, "tunnel.test");
    assert_eq!(obs.path, "", "a tunnel has no path");
    assert_eq!(obs.status, 200);
    assert_eq!(
        (obs.mode, obs.slot.as_deref(), obs.denial),
        (CallMode::None, None, None)
    );
    // TLS records both ways: more than the plaintext, and committed.
    assert!(obs.request_bytes > body.len() as u64, "{obs:?}");
    assert!(obs.response_bytes > 100, "{obs:?}");
    assert_ne!(obs.request_hash, body_hash(&[]));
    assert_ne!(obs.response_hash, body_hash(&[]));
    proxy.stop().await;
}

#[tokio::test]
async fn tunnel_ends_when_the_agent_closes() {
    let env = env().await;
    let mut proxy = start(env.config(&["tunnel.test"], vec![])).await;
    let (mut stream, head) = connect_through(&proxy, "tunnel.test:443").await;
    assert!(head.starts_with(b"HTTP/1.1 200"));
    stream.write_all(b"\x16\x03\x01").await.must("write");
    stream.flush().await.must("flush");
    assert!(
        proxy.pending_observation().is_none(),
        "observed only when the tunnel ends"
    );
    drop(stream);
    let obs = proxy.observation().await;
    assert_eq!((obs.method.as_str(), obs.status), ("CONNECT", 200));
    assert_eq!(obs.request_bytes, 3);
    assert_eq!(obs.request_hash, body_hash(b"\x16\x03\x01"));
    proxy.stop().await;
}

#[tokio::test]
async fn shutdown_closes_open_tunnels_and_still_observes_them() {
    let env = env().await;
    let mut proxy = start(env.config(&["tunnel.test"], vec![])).await;
    let (mut stream, head) = connect_through(&proxy, "tunnel.test:443").await;
    assert!(head.starts_with(b"HTTP/1.1 200"));
    stream.write_all(b"\x16\x03").await.must("write");
    proxy.stop.cancel();
    let obs = proxy.observation().await;
    assert_eq!(obs.method, "CONNECT");
    let mut rest = Vec::new();
    match stream.read_to_end(&mut rest).await {
        Ok(n) => assert_eq!(n, 0, "the tunnel is closed"),
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset),
    }
    proxy.stop().await;
}
