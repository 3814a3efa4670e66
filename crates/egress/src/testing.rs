//! Test support shared with other crates (feature `test-utils`): a local CA and an HTTPS (or
//! plain-HTTP) echo upstream that can redirect, hold, answer big or compressed bodies and echo
//! the credential it received in every encoding; random canary secrets and the encodings a
//! leak could take; log capture. Used by this crate's tests and by the node's end-to-end
//! credential tests. Never compiled into a node.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::convert::Infallible;
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpListener;

/// `unwrap` with a message, for tests (the workspace lints forbid bare unwraps).
pub trait Must<T> {
    /// The value, or a panic naming `what`.
    fn must(self, what: &str) -> T;
}

impl<T, E: std::fmt::Debug> Must<T> for Result<T, E> {
    fn must(self, what: &str) -> T {
        self.unwrap_or_else(|e| panic!("{what}: {e:?}"))
    }
}

impl<T> Must<T> for Option<T> {
    fn must(self, what: &str) -> T {
        self.unwrap_or_else(|| panic!("{what}: none"))
    }
}

// ---------------------------------------------------------------- logs

static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();

#[derive(Clone)]
struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs (once per test binary) a TRACE subscriber writing into a buffer.
pub fn capture_logs() {
    LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let w = LogWriter(buf.clone());
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || w.clone())
            .finish();
        let _ = tracing::subscriber::set_global_default(subscriber);
        buf
    });
}

/// Everything logged so far in this test binary.
pub fn logs() -> Vec<u8> {
    LOGS.get()
        .map(|b| b.lock().unwrap_or_else(|p| p.into_inner()).clone())
        .unwrap_or_default()
}

// ---------------------------------------------------------------- canaries

/// A fresh random secret with characters that percent-encoding and base64 treat specially.
pub fn canary() -> Vec<u8> {
    let mut b = [0u8; 24];
    getrandom::fill(&mut b).must("random");
    format!(
        "sk-{}/{}+x",
        URL_SAFE_NO_PAD.encode(&b[..12]),
        hex::encode(&b[12..])
    )
    .into_bytes()
}

/// The encodings a leak could take.
pub fn forms(secret: &[u8]) -> Vec<(&'static str, Vec<u8>)> {
    let pct: String = secret.iter().map(|b| format!("%{b:02X}")).collect();
    let pct_lower: String = secret
        .iter()
        .map(|&b| {
            if b.is_ascii_alphanumeric() {
                char::from(b).to_string()
            } else {
                format!("%{b:02x}")
            }
        })
        .collect();
    vec![
        ("raw", secret.to_vec()),
        ("base64", STANDARD.encode(secret).into_bytes()),
        ("base64-nopad", STANDARD_NO_PAD.encode(secret).into_bytes()),
        ("base64url", URL_SAFE.encode(secret).into_bytes()),
        (
            "base64url-nopad",
            URL_SAFE_NO_PAD.encode(secret).into_bytes(),
        ),
        ("hex", hex::encode(secret).into_bytes()),
        ("HEX", hex::encode_upper(secret).into_bytes()),
        ("pct-all", pct.into_bytes()),
        ("pct-lower", pct_lower.into_bytes()),
        ("pct", percent_min_upper(secret)),
    ]
}

fn percent_min_upper(secret: &[u8]) -> Vec<u8> {
    percent_encoding::percent_encode(secret, percent_encoding::NON_ALPHANUMERIC)
        .collect::<String>()
        .into_bytes()
}

fn find(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

/// Panics if `hay` holds `secret` in any of its [`forms`].
pub fn assert_absent(secret: &[u8], hay: &[u8], what: &str) {
    for (name, form) in forms(secret) {
        assert!(!find(hay, &form), "{what} contains the secret ({name})");
    }
}

// ---------------------------------------------------------------- CA and upstreams

/// A local CA and a leaf for the test host names.
pub struct TestCa {
    pub ca_der: CertificateDer<'static>,
    pub leaf_der: CertificateDer<'static>,
    pub leaf_key: Vec<u8>,
}

pub fn test_ca() -> &'static TestCa {
    static CA: OnceLock<TestCa> = OnceLock::new();
    CA.get_or_init(|| {
        let ca_key = rcgen::KeyPair::generate().must("ca key");
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).must("ca params");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "souk egress test CA");
        let ca = ca_params.self_signed(&ca_key).must("ca");
        let leaf_key = rcgen::KeyPair::generate().must("leaf key");
        let names: Vec<String> = [
            "api.test",
            "other.test",
            "tunnel.test",
            "plain.test",
            "rebind.test",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let leaf_params = rcgen::CertificateParams::new(names).must("leaf params");
        let leaf = leaf_params.signed_by(&leaf_key, &ca, &ca_key).must("leaf");
        TestCa {
            ca_der: ca.der().clone(),
            leaf_der: leaf.der().clone(),
            leaf_key: leaf_key.serialize_der(),
        }
    })
}

fn ring() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A TLS client config trusting the test CA (for direct calls and tunnels).
pub fn client_tls() -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(test_ca().ca_der.clone()).must("root");
    let mut cfg = rustls::ClientConfig::builder_with_provider(ring())
        .with_safe_default_protocol_versions()
        .must("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(cfg)
}

fn server_tls() -> Arc<rustls::ServerConfig> {
    let ca = test_ca();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ca.leaf_key.clone()));
    let mut cfg = rustls::ServerConfig::builder_with_provider(ring())
        .with_safe_default_protocol_versions()
        .must("versions")
        .with_no_client_auth()
        .with_single_cert(vec![ca.leaf_der.clone(), ca.ca_der.clone()], key)
        .must("server cert");
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(cfg)
}

/// What the echo upstream received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }
}

/// An echo upstream (HTTPS or plain HTTP) on 127.0.0.1.
pub struct Echo {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    pub connections: Arc<AtomicUsize>,
    /// Signalled when a request to `/hold` arrives.
    pub held: Arc<tokio::sync::Notify>,
    /// Lets one held `/hold` request answer.
    pub release: Arc<tokio::sync::Notify>,
}

impl Echo {
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
    pub fn last(&self) -> Seen {
        self.seen().pop().must("the upstream saw no request")
    }
    pub fn hits(&self) -> usize {
        self.seen().len()
    }
}

pub async fn spawn_echo(tls: bool) -> Echo {
    let listener = TcpListener::bind("127.0.0.1:0").await.must("bind");
    let addr = listener.local_addr().must("addr");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let connections = Arc::new(AtomicUsize::new(0));
    let acceptor = tokio_rustls::TlsAcceptor::from(server_tls());
    let held = Arc::new(tokio::sync::Notify::new());
    let release = Arc::new(tokio::sync::Notify::new());
    let gates = (held.clone(), release.clone());
    let (s, c) = (seen.clone(), connections.clone());
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            // As real servers do; without it, Nagle + delayed ACK can stall small responses.
            let _ = tcp.set_nodelay(true);
            c.fetch_add(1, Ordering::SeqCst);
            let seen = s.clone();
            let acceptor = acceptor.clone();
            let gates = gates.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req| echo(req, seen.clone(), gates.clone()));
                let builder = hyper::server::conn::http1::Builder::new();
                if tls {
                    let Ok(stream) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let _ = builder.serve_connection(TokioIo::new(stream), svc).await;
                } else {
                    let _ = builder.serve_connection(TokioIo::new(tcp), svc).await;
                }
            });
        }
    });
    Echo {
        addr,
        seen,
        connections,
        held,
        release,
    }
}

fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        (k == name).then(|| {
            percent_encoding::percent_decode_str(v)
                .decode_utf8_lossy()
                .into_owned()
        })
    })
}

/// The credential the upstream received, recovered from whichever position carries it.
fn credential_of(seen: &Seen) -> Option<Vec<u8>> {
    if let Some(v) = seen.header("authorization") {
        let v = String::from_utf8_lossy(v).into_owned();
        if let Some(b) = v.strip_prefix("Basic ") {
            return STANDARD.decode(b).ok();
        }
        if let Some(b) = v.strip_prefix("Bearer ") {
            return Some(b.as_bytes().to_vec());
        }
    }
    if let Some(v) = seen.header("x-api-key") {
        return Some(v.to_vec());
    }
    query_param(&seen.query, "key").map(String::into_bytes)
}

async fn echo(
    req: Request<Incoming>,
    log: Arc<Mutex<Vec<Seen>>>,
    (held, release): (Arc<tokio::sync::Notify>, Arc<tokio::sync::Notify>),
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes().to_vec())
        .unwrap_or_default();
    let seen = Seen {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().unwrap_or("").to_owned(),
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), v.as_bytes().to_vec()))
            .collect(),
        body,
    };
    log.lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(seen.clone());
    let mut resp = Response::new(Full::new(Bytes::new()));
    match seen.path.as_str() {
        "/hold" => {
            held.notify_one();
            release.notified().await;
            *resp.body_mut() = Full::new(Bytes::from_static(b"released"));
        }
        "/redirect" => {
            *resp.status_mut() = StatusCode::FOUND;
            let to = query_param(&seen.query, "to").unwrap_or_default();
            resp.headers_mut()
                .insert("location", to.parse().must("location"));
        }
        "/echo-secret" | "/redirect-secret" => {
            let secret = credential_of(&seen).unwrap_or_default();
            let mut text = Vec::new();
            for (name, form) in forms(&secret) {
                let _ = write!(text, "{name}=");
                text.extend_from_slice(&form);
                text.push(b'\n');
            }
            // Inside a JSON string and inside a longer base64 text, too.
            let json = serde_json::json!({ "token": String::from_utf8_lossy(&secret) });
            text.extend_from_slice(json.to_string().as_bytes());
            let mut long = b"xx".to_vec();
            long.extend_from_slice(&secret);
            text.extend_from_slice(STANDARD.encode(&long).as_bytes());
            *resp.body_mut() = Full::new(Bytes::from(text));
            let h = resp.headers_mut();
            h.insert(
                "x-echo",
                http::HeaderValue::from_bytes(&secret).must("x-echo"),
            );
            h.insert(
                "x-echo-b64",
                STANDARD.encode(&secret).parse().must("x-echo-b64"),
            );
            h.insert(
                "set-cookie",
                format!("t={}", hex::encode(&secret)).parse().must("cookie"),
            );
            let enc: String =
                percent_encoding::percent_encode(&secret, percent_encoding::NON_ALPHANUMERIC)
                    .collect();
            let loc = format!("https://other.test/cb?token={enc}");
            h.insert("location", loc.parse().must("location"));
            if seen.path == "/redirect-secret" {
                *resp.status_mut() = StatusCode::FOUND;
            }
        }
        "/big" => {
            let n: usize = query_param(&seen.query, "n")
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            *resp.body_mut() = Full::new(Bytes::from(vec![b'a'; n]));
        }
        "/gzip" => {
            resp.headers_mut()
                .insert("content-encoding", http::HeaderValue::from_static("gzip"));
            *resp.body_mut() = Full::new(Bytes::from_static(b"\x1f\x8b not really"));
        }
        _ => {
            let json = serde_json::json!({
                "method": seen.method,
                "path": seen.path,
                "query": seen.query,
                "body_len": seen.body.len(),
            });
            resp.headers_mut().insert(
                "content-type",
                http::HeaderValue::from_static("application/json"),
            );
            *resp.body_mut() = Full::new(Bytes::from(json.to_string()));
        }
    }
    Ok(resp)
}
