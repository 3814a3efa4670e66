//! The upstream side: resolve once, check the address, connect to exactly that address, TLS,
//! one HTTP/1.1 exchange with a bounded response.
//!
//! Owns [`UpstreamConfig`] (roots, address policy, resolver, timeouts, body caps), the
//! [`Resolve`] seam and [`Upstream`] (the TLS client config and a small pool of idle
//! connections, keyed by `host[:port]`; a pooled connection was made to an address that
//! passed the check, so reusing it never re-resolves). Private, loopback, link-local,
//! unique-local, CGNAT, multicast, documentation and metadata addresses are refused unless
//! `allow_private`. Never speaks cleartext HTTP upstream; never follows redirects; never logs
//! request URIs or header values.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, ServerName};
use souk_protocol::credential::{Denial, DenialCode};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::config::ConfigError;
use crate::host::HostKey;

/// Resolves a host name to socket addresses. The proxy calls it once per new connection and
/// connects only to an address it returned that passed the address check.
pub trait Resolve: Send + Sync {
    /// All addresses for `host` (a name, never an IP literal) and `port`. Returned addresses
    /// are used as they are, port included, so a test resolver may map `api.test:443` to
    /// `127.0.0.1:<port>`.
    fn resolve<'a>(
        &'a self,
        host: &'a str,
        port: u16,
    ) -> Pin<Box<dyn Future<Output = io::Result<Vec<SocketAddr>>> + Send + 'a>>;
}

/// The operating system's resolver (`getaddrinfo` on a blocking thread, through tokio).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

impl Resolve for SystemResolver {
    fn resolve<'a>(
        &'a self,
        host: &'a str,
        port: u16,
    ) -> Pin<Box<dyn Future<Output = io::Result<Vec<SocketAddr>>> + Send + 'a>> {
        Box::pin(async move { Ok(tokio::net::lookup_host((host, port)).await?.collect()) })
    }
}

/// How the proxy (or the client's node, in relayed mode) talks to upstreams.
#[derive(Clone)]
pub struct UpstreamConfig {
    /// Trust the Mozilla roots of `webpki-roots`.
    pub webpki_roots: bool,
    /// Extra trusted roots, DER-encoded certificates (tests, private CAs).
    pub extra_roots: Vec<Vec<u8>>,
    /// Allow private, loopback, link-local and other non-public addresses (node config).
    pub allow_private: bool,
    /// Name resolution.
    pub resolver: Arc<dyn Resolve>,
    /// TCP connect timeout (resolution included).
    pub connect_timeout: Duration,
    /// TLS handshake timeout.
    pub tls_timeout: Duration,
    /// From sending the request to the last byte of the response.
    pub response_timeout: Duration,
    /// Largest request body accepted, bytes.
    pub max_request_body: usize,
    /// Largest response body delivered, bytes; beyond: `response_too_large`.
    pub max_response_body: usize,
    /// Largest response head (status line and headers), bytes (at least 8 KiB).
    pub max_response_head: usize,
    /// How long an idle upstream connection is kept for reuse; zero disables reuse.
    pub pool_idle_timeout: Duration,
    /// Idle connections kept per `host[:port]`.
    pub pool_max_idle_per_host: usize,
}

impl Default for UpstreamConfig {
    fn default() -> Self {
        UpstreamConfig {
            webpki_roots: true,
            extra_roots: Vec::new(),
            allow_private: false,
            resolver: Arc::new(SystemResolver),
            connect_timeout: Duration::from_secs(10),
            tls_timeout: Duration::from_secs(10),
            response_timeout: Duration::from_secs(120),
            max_request_body: 16 << 20,
            max_response_body: 32 << 20,
            max_response_head: 64 << 10,
            pool_idle_timeout: Duration::from_secs(30),
            pool_max_idle_per_host: 4,
        }
    }
}

impl std::fmt::Debug for UpstreamConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamConfig")
            .field("webpki_roots", &self.webpki_roots)
            .field("extra_roots", &self.extra_roots.len())
            .field("allow_private", &self.allow_private)
            .field("connect_timeout", &self.connect_timeout)
            .field("tls_timeout", &self.tls_timeout)
            .field("response_timeout", &self.response_timeout)
            .field("max_request_body", &self.max_request_body)
            .field("max_response_body", &self.max_response_body)
            .field("pool_idle_timeout", &self.pool_idle_timeout)
            .finish_non_exhaustive()
    }
}

/// Why an upstream exchange failed (mapped to a [`Denial`] by [`Failure::denial`]).
#[derive(Debug)]
pub(crate) enum Failure {
    Resolve(io::Error),
    NoAddress,
    Private(IpAddr),
    Connect(io::Error),
    Timeout(&'static str),
    NotTls,
    Tls(String),
    Http(hyper::Error),
    Body(String),
    TooLarge,
}

impl Failure {
    pub(crate) fn denial(&self, host: &HostKey) -> Denial {
        let h = host.to_string();
        match self {
            Failure::Resolve(e) => Denial::new(
                DenialCode::UpstreamError,
                h,
                format!("cannot resolve the host: {}", e.kind()),
            ),
            Failure::NoAddress => {
                Denial::new(DenialCode::UpstreamError, h, "the host has no address")
            }
            Failure::Private(ip) => Denial::new(
                DenialCode::PrivateAddress,
                h,
                format!(
                    "the host resolves to {} (a {} address); the node does not allow such targets",
                    ip,
                    address_class(*ip).unwrap_or("non-public")
                ),
            ),
            Failure::Connect(e) => Denial::new(
                DenialCode::UpstreamError,
                h,
                format!("cannot connect: {}", e.kind()),
            ),
            Failure::Timeout(stage) => Denial::new(
                DenialCode::UpstreamError,
                h,
                format!("timed out during {stage}"),
            ),
            Failure::NotTls => Denial::new(
                DenialCode::TlsRequired,
                h,
                "the upstream does not speak TLS; the proxy only connects over HTTPS",
            ),
            Failure::Tls(e) => Denial::new(
                DenialCode::UpstreamError,
                h,
                format!("TLS handshake failed: {e}"),
            ),
            Failure::Http(e) => Denial::new(
                DenialCode::UpstreamError,
                h,
                format!("HTTP exchange failed: {e}"),
            ),
            Failure::Body(e) => Denial::new(
                DenialCode::UpstreamError,
                h,
                format!("reading the response failed: {e}"),
            ),
            Failure::TooLarge => Denial::new(
                DenialCode::ResponseTooLarge,
                h,
                "the response body exceeds the proxy's limit",
            ),
        }
    }
}

/// The outcome of one exchange, and whether the request may have reached the upstream
/// (it was handed to an established TLS connection): that is what spends budget.
pub(crate) struct Exchanged {
    pub(crate) result: Result<(http::response::Parts, Bytes), Failure>,
    pub(crate) reached: bool,
}

struct Idle {
    sender: http1::SendRequest<Full<Bytes>>,
    since: Instant,
}

/// An upstream client: TLS configuration plus idle connections. One per hire on the
/// provider; one per node on the client side of relayed mode.
pub struct Upstream {
    config: UpstreamConfig,
    tls: TlsConnector,
    idle: Mutex<HashMap<String, Vec<Idle>>>,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Upstream {
    /// Builds the TLS client (ring provider, TLS 1.2 and 1.3, ALPN `http/1.1`).
    pub fn new(config: UpstreamConfig) -> Result<Upstream, ConfigError> {
        let mut roots = rustls::RootCertStore::empty();
        if config.webpki_roots {
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        }
        for (i, der) in config.extra_roots.iter().enumerate() {
            roots
                .add(CertificateDer::from(der.clone()))
                .map_err(|e| ConfigError::Root {
                    index: i,
                    reason: e.to_string(),
                })?;
        }
        if roots.is_empty() {
            return Err(ConfigError::NoRoots);
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| ConfigError::Tls(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Upstream {
            config,
            tls: TlsConnector::from(Arc::new(tls)),
            idle: Mutex::new(HashMap::new()),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &UpstreamConfig {
        &self.config
    }

    /// Resolves `host` once, picks the first allowed address and connects to it.
    pub(crate) async fn connect_tcp(&self, host: &HostKey) -> Result<TcpStream, Failure> {
        let budget = self.config.connect_timeout;
        let addr = match host.ip() {
            Some(ip) => {
                let addr = SocketAddr::new(ip, host.port());
                choose_address(&[addr], self.config.allow_private)?
            }
            None => {
                let resolved = tokio::time::timeout(
                    budget,
                    self.config.resolver.resolve(host.host(), host.port()),
                )
                .await
                .map_err(|_| Failure::Timeout("name resolution"))?
                .map_err(Failure::Resolve)?;
                choose_address(&resolved, self.config.allow_private)?
            }
        };
        let stream = tokio::time::timeout(budget, TcpStream::connect(addr))
            .await
            .map_err(|_| Failure::Timeout("connect"))?
            .map_err(Failure::Connect)?;
        // Small request/response exchanges: do not wait for ACKs to coalesce segments.
        let _ = stream.set_nodelay(true);
        Ok(stream)
    }

    async fn connect_http(
        &self,
        host: &HostKey,
    ) -> Result<http1::SendRequest<Full<Bytes>>, Failure> {
        let tcp = self.connect_tcp(host).await?;
        let name = match host.ip() {
            Some(ip) => ServerName::IpAddress(ip.into()),
            None => ServerName::try_from(host.host().to_owned())
                .map_err(|_| Failure::Tls("invalid server name".into()))?,
        };
        let tls = tokio::time::timeout(self.config.tls_timeout, self.tls.connect(name, tcp))
            .await
            .map_err(|_| Failure::Timeout("the TLS handshake"))?
            .map_err(classify_tls_error)?;
        let (sender, conn) = http1::Builder::new()
            .max_buf_size(self.config.max_response_head.max(8192))
            .handshake(TokioIo::new(tls))
            .await
            .map_err(Failure::Http)?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "upstream connection ended with an error");
            }
        });
        Ok(sender)
    }

    fn checkout(&self, key: &str) -> Option<http1::SendRequest<Full<Bytes>>> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let list = idle.get_mut(key)?;
        while let Some(entry) = list.pop() {
            if entry.since.elapsed() < self.config.pool_idle_timeout
                && !entry.sender.is_closed()
                && entry.sender.is_ready()
            {
                return Some(entry.sender);
            }
        }
        None
    }

    fn checkin(&self, key: String, sender: http1::SendRequest<Full<Bytes>>) {
        if self.config.pool_idle_timeout.is_zero() || sender.is_closed() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        idle.retain(|_, list| {
            list.retain(|e| e.since.elapsed() < self.config.pool_idle_timeout);
            !list.is_empty()
        });
        let list = idle.entry(key).or_default();
        if list.len() < self.config.pool_max_idle_per_host {
            list.push(Idle {
                sender,
                since: Instant::now(),
            });
        }
    }

    /// Sends `req` (origin-form URI, `Host` set) to `host` over TLS and reads the whole
    /// response, bounded by `max_response_body`; `response_timeout` covers the whole exchange
    /// after the connection is up.
    pub(crate) async fn send(&self, host: &HostKey, req: Request<Full<Bytes>>) -> Exchanged {
        let key = host.to_string();
        let timeout = self.config.response_timeout;
        let mut req = req;
        if let Some(mut pooled) = self.checkout(&key) {
            let deadline = tokio::time::Instant::now() + timeout;
            match tokio::time::timeout_at(deadline, pooled.try_send_request(req)).await {
                Ok(Ok(resp)) => return self.finish(key, pooled, resp, deadline).await,
                Ok(Err(mut e)) => match e.take_message() {
                    // Never written to the connection: safe to send on a fresh one.
                    Some(back) => req = back,
                    None => return failed(Failure::Http(e.into_error()), true),
                },
                Err(_) => return failed(Failure::Timeout("the response"), true),
            }
        }
        let mut fresh = match self.connect_http(host).await {
            Ok(s) => s,
            Err(f) => return failed(f, false),
        };
        let deadline = tokio::time::Instant::now() + timeout;
        match tokio::time::timeout_at(deadline, fresh.send_request(req)).await {
            Ok(Ok(resp)) => self.finish(key, fresh, resp, deadline).await,
            Ok(Err(e)) => failed(Failure::Http(e), true),
            Err(_) => failed(Failure::Timeout("the response"), true),
        }
    }

    async fn finish(
        &self,
        key: String,
        sender: http1::SendRequest<Full<Bytes>>,
        resp: Response<hyper::body::Incoming>,
        deadline: tokio::time::Instant,
    ) -> Exchanged {
        let (parts, body) = resp.into_parts();
        let limited = Limited::new(body, self.config.max_response_body);
        let body = match tokio::time::timeout_at(deadline, limited.collect()).await {
            Ok(Ok(collected)) => collected.to_bytes(),
            Ok(Err(e)) => {
                let failure = if e
                    .downcast_ref::<http_body_util::LengthLimitError>()
                    .is_some()
                {
                    Failure::TooLarge
                } else {
                    match e.downcast::<hyper::Error>() {
                        Ok(h) => Failure::Http(*h),
                        Err(other) => Failure::Body(other.to_string()),
                    }
                };
                return failed(failure, true);
            }
            Err(_) => return failed(Failure::Timeout("the response body"), true),
        };
        self.checkin(key, sender);
        Exchanged {
            result: Ok((parts, body)),
            reached: true,
        }
    }
}

fn failed(failure: Failure, reached: bool) -> Exchanged {
    Exchanged {
        result: Err(failure),
        reached,
    }
}

fn classify_tls_error(e: io::Error) -> Failure {
    match e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(rustls::Error::InvalidMessage(_)) => Failure::NotTls,
        Some(other) => Failure::Tls(other.to_string()),
        None => Failure::Tls(format!("{}", e.kind())),
    }
}

/// The first address allowed by the policy; refuses when none is.
pub(crate) fn choose_address(
    addrs: &[SocketAddr],
    allow_private: bool,
) -> Result<SocketAddr, Failure> {
    let first = addrs.first().ok_or(Failure::NoAddress)?;
    if allow_private {
        return Ok(*first);
    }
    addrs
        .iter()
        .find(|a| address_class(a.ip()).is_none())
        .copied()
        .ok_or(Failure::Private(first.ip()))
}

/// `None` for a public unicast address; otherwise what kind of non-public address it is.
pub fn address_class(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_class(v4),
        IpAddr::V6(v6) => v6_class(v6),
    }
}

fn v4_class(ip: Ipv4Addr) -> Option<&'static str> {
    let o = ip.octets();
    let class = match o {
        [0, ..] => "unspecified",
        [127, ..] => "loopback",
        [10, ..] => "private",
        [172, b, ..] if (16..=31).contains(&b) => "private",
        [192, 168, ..] => "private",
        [169, 254, ..] => "link-local (cloud metadata)",
        [100, b, ..] if (64..=127).contains(&b) => "shared (CGNAT)",
        [192, 0, 0, _] => "IETF protocol assignment",
        [192, 0, 2, _] | [198, 51, 100, _] | [203, 0, 113, _] => "documentation",
        [198, 18 | 19, ..] => "benchmarking",
        [a, ..] if a >= 224 => "multicast or reserved",
        _ => return None,
    };
    Some(class)
}

fn v6_class(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    if let Some(v4) = ip.to_ipv4_mapped() {
        return v4_class(v4);
    }
    let class = match s {
        [0, 0, 0, 0, 0, 0, 0, 0] => "unspecified",
        [0, 0, 0, 0, 0, 0, 0, 1] => "loopback",
        // IPv4-compatible (deprecated) addresses.
        [0, 0, 0, 0, 0, 0, _, _] => "IPv4-compatible",
        // NAT64: the gateway would reach the embedded IPv4 address.
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => {
            let v4 = Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
            return v4_class(v4);
        }
        // 6to4: embedded IPv4 address in bits 16..48.
        [0x2002, hi, lo, ..] => {
            let v4 = Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
            return v4_class(v4);
        }
        [0x2001, 0, ..] => "Teredo",
        [0x2001, 0xdb8, ..] => "documentation",
        [0x100, 0, 0, 0, ..] => "discard",
        [a, ..] if a & 0xfe00 == 0xfc00 => "unique local",
        [a, ..] if a & 0xffc0 == 0xfe80 => "link-local",
        [a, ..] if a & 0xffc0 == 0xfec0 => "site-local",
        [a, ..] if a & 0xff00 == 0xff00 => "multicast",
        _ => return None,
    };
    Some(class)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(s: &str) -> Option<&'static str> {
        address_class(s.parse().unwrap_or_else(|e| panic!("{s}: {e}")))
    }

    #[test]
    fn public_addresses_pass() {
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
            "::ffff:1.1.1.1",
            "64:ff9b::808:808",
        ] {
            assert_eq!(class(ip), None, "{ip}");
        }
    }

    #[test]
    fn non_public_addresses_are_refused() {
        for ip in [
            "0.0.0.0",
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.255",
            "192.0.2.1",
            "198.18.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::7f00:1",
            "2002:7f00:1::",
            "2001::1",
            "2001:db8::1",
            "fd00:ec2::254",
            "fc00::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
        ] {
            assert!(class(ip).is_some(), "{ip}");
        }
    }

    #[test]
    fn choose_first_allowed() {
        let a = |s: &str| s.parse::<SocketAddr>().unwrap_or_else(|e| panic!("{e}"));
        let addrs = [a("127.0.0.1:443"), a("1.1.1.1:443")];
        assert_eq!(choose_address(&addrs, false).ok(), Some(a("1.1.1.1:443")));
        assert_eq!(choose_address(&addrs, true).ok(), Some(a("127.0.0.1:443")));
        assert!(matches!(
            choose_address(&addrs[..1], false),
            Err(Failure::Private(_))
        ));
        assert!(matches!(choose_address(&[], true), Err(Failure::NoAddress)));
    }
}
