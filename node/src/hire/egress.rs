//! A running hire's network, provider side: the egress proxy that is its agent's only route
//! ([`HireProxy`]), built from the signed manifest (listed hosts) and the client's grants
//! (credential slots, sealed or relayed), and the turning of every call the proxy observed
//! into a `network-call` receipt entry ([`network_call`]). Relayed slots reach the client
//! through [`ThroughClient`]; the client's side of a relayed call is in `relay.rs`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use libp2p::PeerId;
use souk_egress::{
    Denial, EgressConfig, HireEgress, Limits, Observation, ProxyToken, Relay, RelayError,
    RelayFuture, RelayedRequest, RelayedResponse, SecretError, SecretSource, SlotConfig, serve_tcp,
    serve_unix,
};
use souk_protocol::credential::{
    self, CredentialMode, Header, RelayReply, RelayRequest, SignedGrant,
};
use souk_protocol::manifest::Manifest;
use souk_protocol::receipt::{EntryKind, SignedEntry};
use souk_protocol::{Hash, NodeId};
use souk_runtime::sandbox::ProxyForward;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::credentials::{open_sealed, stored_grants};
use super::ctx::{Ctx, blocking, peer_of};
use super::error::HireError;
use super::transport::{HireNetwork, TransportError};

/// The loopback port the agent's forwarder listens on inside the sandbox.
pub(super) const PROXY_PORT: u16 = 3128;
/// Observations waiting for the job: the proxy waits (never drops one) when it is full.
const OBSERVATION_QUEUE: usize = 64;

/// Where a proxy listens.
enum Listener {
    /// A unix socket, bound into the sandbox.
    Unix(tokio::net::UnixListener, PathBuf),
    /// A loopback TCP port (no sandbox).
    Tcp(tokio::net::TcpListener),
}

/// The egress proxy of one running hire.
pub(crate) struct HireProxy {
    /// Every call the proxy handled or refused, in order.
    pub(crate) observations: mpsc::Receiver<Observation>,
    /// What the agent gets: `HTTP_PROXY` & co. and one placeholder per granted slot.
    pub(crate) env: Vec<(String, String)>,
    /// For the sandbox: the proxy's unix socket and the port inside.
    pub(crate) forward: Option<ProxyForward>,
    stop: CancellationToken,
    socket: Option<PathBuf>,
}

impl HireProxy {
    /// Starts the proxy of hire `id` for an agent of `manifest` (`None`: the manifest lists
    /// no host and no credential slot, so the agent gets no network at all). In a sandbox
    /// the proxy listens on a unix socket in `sockets` (bound into the sandbox); without one,
    /// on a loopback TCP port. `used` restores each slot's request count from the chain.
    ///
    /// `reserved` is the address a warm-started agent was given before its hire (the agent's
    /// environment already names it); otherwise one is reserved here.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn start(
        ctx: &Ctx,
        id: Hash,
        client: &NodeId,
        manifest: &Manifest,
        used: &HashMap<String, u64>,
        sandboxed: bool,
        sockets: &Path,
        reserved: Option<ProxyReservation>,
    ) -> Result<Option<HireProxy>, HireError> {
        let store = ctx.store.clone();
        let raw = blocking(move || stored_grants(&store, &id)).await?;
        if manifest.hosts.is_empty() && manifest.credentials.is_empty() {
            return Ok(None);
        }
        let mut slots = Vec::new();
        let mut env = Vec::new();
        for bytes in raw {
            // Checked when the contract was accepted; decoded again from our own store.
            let grant = SignedGrant::decode_bytes(&bytes)
                .map_err(|e| HireError::corrupt(id, super::credentials::BLOB_GRANTS, e))?;
            let policy = grant.body().policy.clone();
            let slot = policy.slot.clone();
            // Checked on accept, checked again: the store is not trusted with a credential.
            let intact = grant.verify(client).is_ok() && policy.hire_id == id;
            if !intact {
                tracing::warn!(hire = %id.short(), slot = %slot, "a stored credential grant does not verify; its calls will be refused");
            }
            let source = match policy.mode {
                CredentialMode::Sealed if !intact => {
                    SecretSource::Sealed(Arc::new(|| Err(SecretError::Invalid)))
                }
                CredentialMode::Sealed => {
                    let sealing = ctx.sealing.clone();
                    let grant = grant.body().clone();
                    SecretSource::Sealed(Arc::new(move || {
                        open_sealed(&grant, &sealing, &id).map_err(|e| {
                            tracing::warn!(hire = %id.short(), "a sealed credential does not open: {e}");
                            SecretError::Invalid
                        })
                    }))
                }
                CredentialMode::Relayed { .. } => SecretSource::Relayed(Arc::new(ThroughClient {
                    net: ctx.net.clone(),
                    client: peer_of(client),
                    hire: id,
                })),
            };
            env.push((credential::env_var(&slot), credential::placeholder(&slot)));
            slots.push(SlotConfig {
                requests_used: used.get(&slot).copied().unwrap_or(0),
                policy,
                source,
            });
        }
        let reservation = match reserved {
            Some(r) => r,
            None => ProxyReservation::new(&id.to_hex(), sandboxed, sockets)
                .await
                .map_err(|e| HireError::corrupt(id, "proxy listener", e))?,
        };
        env.extend(reservation.env());
        let (token, listener) = reservation
            .into_parts()
            .ok_or_else(|| HireError::corrupt(id, "proxy listener", "reservation already used"))?;
        let egress = HireEgress::new(EgressConfig {
            hire: id.short(),
            proxy_token: token,
            hosts: manifest.hosts.clone(),
            slots,
            upstream: ctx.settings.egress.upstream(),
            limits: Limits::default(),
            // Grants expire on the node's clock, as the contract's deadline does.
            clock: std::sync::Arc::new(crate::now_ms),
        })
        .map_err(|e| HireError::corrupt(id, "egress configuration", e))?;
        let (tx, observations) = mpsc::channel(OBSERVATION_QUEUE);
        let stop = CancellationToken::new();
        let egress = Arc::new(egress);
        let (forward, socket) = match listener {
            Listener::Unix(unix, path) => {
                tokio::spawn(serve_unix(unix, egress, tx, stop.clone()));
                let forward = ProxyForward {
                    socket: path.clone(),
                    port: PROXY_PORT,
                };
                (Some(forward), Some(path))
            }
            Listener::Tcp(tcp) => {
                tokio::spawn(serve_tcp(tcp, egress, tx, stop.clone()));
                (None, None)
            }
        };
        Ok(Some(HireProxy {
            observations,
            env,
            forward,
            stop,
            socket,
        }))
    }

    /// Stops accepting calls and returns every observation not yet taken (the in-flight calls
    /// get the proxy's grace period), in order.
    pub(crate) async fn close(mut self) -> Vec<Observation> {
        self.stop.cancel();
        let mut rest = Vec::new();
        while let Some(o) = self.observations.recv().await {
            rest.push(o);
        }
        if let Some(path) = self.socket.take() {
            let _ = std::fs::remove_file(path);
        }
        rest
    }
}

impl Drop for HireProxy {
    fn drop(&mut self) {
        self.stop.cancel();
        if let Some(path) = &self.socket {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Binds the proxy's unix socket at `path` (a stale one from a crash is replaced), private to
/// this user.
/// A proxy address made before the proxy runs: its password and listener, so that a
/// warm-started agent's environment can name it before the agent has a hire. Dropped unused,
/// it removes its socket.
pub(crate) struct ProxyReservation {
    token: Option<ProxyToken>,
    listener: Option<Listener>,
    /// The agent's view of the proxy: `http://souk:<token>@<address>`.
    url: zeroize::Zeroizing<String>,
    socket: Option<PathBuf>,
}

impl ProxyReservation {
    /// Reserves a proxy address named `name` (the hire id, or a warm slot's): a unix socket in
    /// `sockets` when `sandboxed` (bound into the sandbox), else a loopback TCP port.
    pub(crate) async fn new(name: &str, sandboxed: bool, sockets: &Path) -> std::io::Result<Self> {
        let token = ProxyToken::generate().map_err(std::io::Error::other)?;
        let (listener, address, socket) = if sandboxed {
            let path = sockets.join(format!("{name}.sock"));
            let unix = bind_unix(&path)?;
            (
                Listener::Unix(unix, path.clone()),
                format!("127.0.0.1:{PROXY_PORT}"),
                Some(path),
            )
        } else {
            let tcp = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
            let address = tcp.local_addr()?.to_string();
            (Listener::Tcp(tcp), address, None)
        };
        let url = token.proxy_url(&address);
        Ok(Self {
            token: Some(token),
            listener: Some(listener),
            url,
            socket,
        })
    }

    /// `HTTP_PROXY` & co., as the agent gets them.
    pub(crate) fn env(&self) -> Vec<(String, String)> {
        [
            "HTTP_PROXY",
            "HTTPS_PROXY",
            "ALL_PROXY",
            "http_proxy",
            "https_proxy",
            "all_proxy",
        ]
        .into_iter()
        .map(|var| (var.to_owned(), self.url.to_string()))
        .collect()
    }

    /// For the sandbox: the proxy's unix socket and the port inside.
    pub(crate) fn forward(&self) -> Option<ProxyForward> {
        self.socket.as_ref().map(|path| ProxyForward {
            socket: path.clone(),
            port: PROXY_PORT,
        })
    }

    /// The password and the listener, for the proxy that serves them (the socket is the
    /// proxy's to remove from then on).
    fn into_parts(mut self) -> Option<(ProxyToken, Listener)> {
        self.socket = None;
        Some((self.token.take()?, self.listener.take()?))
    }
}

impl Drop for ProxyReservation {
    fn drop(&mut self) {
        if let Some(path) = &self.socket {
            let _ = std::fs::remove_file(path);
        }
    }
}

fn bind_unix(path: &Path) -> std::io::Result<tokio::net::UnixListener> {
    use std::os::unix::fs::PermissionsExt;
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let listener = tokio::net::UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// The receipt entry of one observed call (the proxy records only entries the field rules
/// accept: R9, R10's denial clause), counted in `souk_egress_calls_total{verdict}`.
pub(crate) fn network_call(metrics: &crate::metrics::Metrics, o: Observation) -> EntryKind {
    metrics.egress_call(o.denial.is_some());
    EntryKind::NetworkCall(o)
}

/// Per slot, the calls of this hire's chain that reached the upstream with the credential
/// (network-call entries with the slot and no denial): the budget already used.
pub(crate) fn requests_used(entries: &[Vec<u8>]) -> HashMap<String, u64> {
    let mut used = HashMap::new();
    for raw in entries {
        if let Ok(e) = SignedEntry::decode_bytes(raw)
            && let EntryKind::NetworkCall(c) = &e.body().kind
            && c.denial.is_none()
            && let Some(slot) = &c.slot
        {
            *used.entry(slot.clone()).or_insert(0) += 1;
        }
    }
    used
}

/// A relayed slot's calls travel to the client's node over `/souk/relay/1`.
pub(crate) struct ThroughClient {
    net: Arc<dyn HireNetwork>,
    client: PeerId,
    hire: Hash,
}

impl Relay for ThroughClient {
    fn relay(&self, req: RelayedRequest) -> RelayFuture<'_> {
        Box::pin(async move {
            let mut request_id = [0u8; 16];
            getrandom::fill(&mut request_id)
                .map_err(|e| RelayError::Failed(format!("randomness: {e}")))?;
            let host = req.host.clone();
            let request = RelayRequest {
                hire_id: self.hire,
                slot: req.slot,
                request_id,
                method: req.method,
                host: req.host,
                target: req.path,
                headers: req
                    .headers
                    .into_iter()
                    .map(|(name, value)| Header { name, value })
                    .collect(),
                body: req.body,
            };
            match self.net.relay(self.client, request).await {
                Ok(RelayReply::Response {
                    status,
                    headers,
                    body,
                    record,
                }) => Ok(RelayedResponse {
                    status,
                    headers: headers.into_iter().map(|h| (h.name, h.value)).collect(),
                    body,
                    record: Some(record),
                }),
                Ok(RelayReply::Denied { code, message, .. }) => Err(RelayError::Denied {
                    denial: Denial::new(code, host, message),
                    record: None,
                }),
                Err(TransportError::NoReply(_)) => Err(RelayError::Offline),
                Err(TransportError::Stopped) => {
                    Err(RelayError::Failed("the provider's node is stopping".into()))
                }
            }
        })
    }
}
