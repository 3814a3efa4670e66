//! Test support: a local CA, HTTPS and plain-HTTP echo upstreams, a mapping resolver, a proxy
//! harness with an observation receiver, a raw agent client, canaries and log capture.
#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::future::Future;
use std::io::Write as _;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rustls::pki_types::ServerName;
use souk_egress::*;
use souk_protocol::Hash;
use souk_protocol::credential::{CredentialMode, CredentialPolicy, OfflineBehaviour};
use souk_protocol::receipt::{CallMode, EntryKind};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use zeroize::Zeroizing;

pub use souk_egress::testing::*;

// ---------------------------------------------------------------- resolver

/// Maps names to fixed addresses; counts calls per name; can return a different answer on
/// later calls (DNS rebinding).
#[derive(Default)]
pub struct MapResolver {
    map: Mutex<HashMap<String, Vec<Vec<SocketAddr>>>>,
    calls: Mutex<HashMap<String, usize>>,
}

impl MapResolver {
    pub fn set(&self, name: &str, addrs: Vec<SocketAddr>) {
        self.map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.to_owned(), vec![addrs]);
    }
    /// Answers `first` on the first call, `then` on every later one.
    pub fn set_sequence(&self, name: &str, first: Vec<SocketAddr>, then: Vec<SocketAddr>) {
        self.map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.to_owned(), vec![first, then]);
    }
    pub fn calls(&self, name: &str) -> usize {
        *self
            .calls
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .unwrap_or(&0)
    }
}

impl Resolve for MapResolver {
    fn resolve<'a>(
        &'a self,
        host: &'a str,
        _port: u16,
    ) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<SocketAddr>>> + Send + 'a>> {
        let n = {
            let mut calls = self.calls.lock().unwrap_or_else(|p| p.into_inner());
            let c = calls.entry(host.to_owned()).or_default();
            *c += 1;
            *c
        };
        let answer = self
            .map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(host)
            .map(|seq| seq[(n - 1).min(seq.len() - 1)].clone());
        Box::pin(async move {
            answer.ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no such host"))
        })
    }
}

// ---------------------------------------------------------------- environment

/// Upstreams and a resolver: `api.test`, `other.test`, `tunnel.test` -> HTTPS echo,
/// `plain.test` -> plain-HTTP echo.
pub struct Env {
    pub echo: Echo,
    pub plain: Echo,
    pub resolver: Arc<MapResolver>,
}

pub async fn env() -> Env {
    capture_logs();
    env_quiet().await
}

/// [`env`] without installing the log capture (benchmarks).
pub async fn env_quiet() -> Env {
    let echo = spawn_echo(true).await;
    let plain = spawn_echo(false).await;
    let resolver = Arc::new(MapResolver::default());
    for name in ["api.test", "other.test", "tunnel.test"] {
        resolver.set(name, vec![echo.addr]);
    }
    resolver.set("plain.test", vec![plain.addr]);
    Env {
        echo,
        plain,
        resolver,
    }
}

impl Env {
    pub fn upstream(&self) -> UpstreamConfig {
        UpstreamConfig {
            webpki_roots: false,
            extra_roots: vec![test_ca().ca_der.to_vec()],
            allow_private: true,
            resolver: self.resolver.clone(),
            connect_timeout: Duration::from_secs(5),
            tls_timeout: Duration::from_secs(5),
            response_timeout: Duration::from_secs(10),
            ..UpstreamConfig::default()
        }
    }

    pub fn config(&self, hosts: &[&str], slots: Vec<SlotConfig>) -> EgressConfig {
        EgressConfig {
            hire: "test-hire".into(),
            proxy_token: ProxyToken::generate().must("token"),
            hosts: hosts.iter().map(|s| s.to_string()).collect(),
            slots,
            upstream: self.upstream(),
            limits: Limits::default(),
            clock: system_clock(),
        }
    }
}

pub const FAR_FUTURE: u64 = 4_000_000_000_000;

/// A sealed-mode policy for `slot` on `hosts` (any method, any path).
pub fn grant(slot: &str, hosts: &[&str], injection: Injection) -> CredentialPolicy {
    let mut hosts: Vec<String> = hosts.iter().map(|s| s.to_string()).collect();
    hosts.sort();
    CredentialPolicy {
        hire_id: Hash::digest(b"test-hire"),
        slot: slot.into(),
        hosts,
        methods: vec![],
        path_prefixes: vec![],
        injection,
        expires_at: FAR_FUTURE,
        max_requests: 1_000,
        mode: CredentialMode::Sealed,
    }
}

/// `policy` in relayed mode with `offline`.
pub fn relayed(mut policy: CredentialPolicy, offline: OfflineBehaviour) -> CredentialPolicy {
    policy.mode = CredentialMode::Relayed { offline };
    policy
}

pub fn bearer() -> Injection {
    Injection::Header {
        name: "authorization".into(),
        prefix: "Bearer ".into(),
    }
}

pub fn sealed(secret: &[u8]) -> SecretSource {
    let secret = Zeroizing::new(secret.to_vec());
    SecretSource::Sealed(Arc::new(move || Ok(Zeroizing::new(secret.to_vec()))))
}

pub fn slot(policy: CredentialPolicy, source: SecretSource) -> SlotConfig {
    SlotConfig {
        policy,
        source,
        requests_used: 0,
    }
}

/// A clock the test moves.
pub fn manual_clock(start: u64) -> (Clock, Arc<AtomicU64>) {
    let now = Arc::new(AtomicU64::new(start));
    let n = now.clone();
    (Arc::new(move || n.load(Ordering::SeqCst)), now)
}

// ---------------------------------------------------------------- proxy and agent

pub struct Proxy {
    pub addr: SocketAddr,
    pub token: String,
    pub egress: Arc<HireEgress>,
    obs: mpsc::Receiver<Observation>,
    pub stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

pub async fn start(cfg: EgressConfig) -> Proxy {
    let token = cfg.proxy_token.expose().to_owned();
    let egress = Arc::new(HireEgress::new(cfg).must("egress config"));
    let listener = TcpListener::bind("127.0.0.1:0").await.must("bind proxy");
    let addr = listener.local_addr().must("addr");
    let (tx, obs) = mpsc::channel(16);
    let stop = CancellationToken::new();
    let task = tokio::spawn(serve_tcp(listener, egress.clone(), tx, stop.clone()));
    Proxy {
        addr,
        token,
        egress,
        obs,
        stop,
        task,
    }
}

/// Panics unless `obs` can go into a receipt chain as it is: well formed (R9) and, for its
/// own fields, consistent with R10 (slot iff mode, a denial has status 0 and no record, a
/// call that went through has an HTTP status and, if relayed, a record).
pub fn assert_recordable(obs: &Observation) {
    let kind = EntryKind::NetworkCall(obs.clone());
    assert_eq!(kind.field_problem(), None, "{obs:?}");
    assert_eq!(obs.slot.is_none(), obs.mode == CallMode::None, "{obs:?}");
    match obs.denial {
        Some(_) => assert!(obs.status == 0 && obs.relay_record.is_none(), "{obs:?}"),
        None => {
            assert!((100..=999).contains(&obs.status), "{obs:?}");
            if obs.mode == CallMode::Relayed {
                assert!(obs.relay_record.is_some(), "{obs:?}");
            }
        }
    }
}

impl Proxy {
    /// The next observation, checked with [`assert_recordable`].
    pub async fn observation(&mut self) -> Observation {
        let obs = tokio::time::timeout(Duration::from_secs(10), self.obs.recv())
            .await
            .must("no observation within 10 s")
            .must("observation channel closed");
        assert_recordable(&obs);
        obs
    }

    pub fn pending_observation(&mut self) -> Option<Observation> {
        self.obs.try_recv().ok()
    }

    pub fn agent(&self) -> Agent {
        Agent {
            proxy: self.addr,
            auth: format!("Basic {}", STANDARD.encode(format!("souk:{}", self.token))),
        }
    }

    pub async fn stop(self) {
        self.stop.cancel();
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .must("proxy did not stop")
            .must("proxy task");
    }
}

/// The agent's side: raw HTTP/1.1 to the proxy, reading everything it sends back.
#[derive(Clone)]
pub struct Agent {
    pub proxy: SocketAddr,
    pub auth: String,
}

#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
    /// Every byte the agent received.
    pub raw: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).must("json body")
    }
    /// Asserts a contract denial with `code` and returns its JSON.
    pub fn assert_denied(&self, code: &str, status: u16) -> serde_json::Value {
        assert_eq!(
            self.status,
            status,
            "status for {code}: {}",
            String::from_utf8_lossy(&self.raw)
        );
        assert_eq!(
            self.header("content-type"),
            Some(b"application/json".as_slice())
        );
        let v = self.json();
        assert_eq!(v["error"], code, "{v}");
        assert!(
            v["host"].is_string() && v["message"].is_string() && v["retry"].is_boolean(),
            "{v}"
        );
        v
    }
}

pub fn parse_response(raw: Vec<u8>) -> Resp {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .must("response head");
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().must("status line");
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .must("status");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().as_bytes().to_vec()))
        .collect();
    let body = raw[end + 4..].to_vec();
    Resp {
        status,
        headers,
        body,
        raw,
    }
}

impl Agent {
    /// Sends `method url` (absolute-form) with `headers` and `body`; `Connection: close`.
    pub async fn send(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &[u8])],
        body: &[u8],
    ) -> Resp {
        let mut req = format!("{method} {url} HTTP/1.1\r\n").into_bytes();
        let host = url
            .split("://")
            .nth(1)
            .and_then(|r| r.split('/').next())
            .unwrap_or("");
        let _ = write!(
            req,
            "host: {host}\r\nproxy-authorization: {}\r\nconnection: close\r\n",
            self.auth
        );
        for (k, v) in headers {
            req.extend_from_slice(k.as_bytes());
            req.extend_from_slice(b": ");
            req.extend_from_slice(v);
            req.extend_from_slice(b"\r\n");
        }
        let _ = write!(req, "content-length: {}\r\n\r\n", body.len());
        req.extend_from_slice(body);
        self.raw(req).await
    }

    pub async fn get(&self, url: &str) -> Resp {
        self.send("GET", url, &[], b"").await
    }

    /// Writes `bytes`, reads until the proxy closes.
    pub async fn raw(&self, bytes: Vec<u8>) -> Resp {
        let mut s = TcpStream::connect(self.proxy).await.must("connect proxy");
        s.write_all(&bytes).await.must("write");
        let mut out = Vec::new();
        tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut out))
            .await
            .must("proxy response within 20 s")
            .must("read");
        parse_response(out)
    }
}

/// A TLS client connection to `name` over an established stream.
pub async fn tls_over<S>(stream: S, name: &str) -> tokio_rustls::client::TlsStream<S>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let connector = tokio_rustls::TlsConnector::from(client_tls());
    let server = ServerName::try_from(name.to_owned()).must("server name");
    connector
        .connect(server, stream)
        .await
        .must("tls handshake")
}
