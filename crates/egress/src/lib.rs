//! # souk-egress
//!
//! The per-hire HTTP egress proxy: a hired agent's only network route. It enforces the signed
//! manifest (listed hosts only, exact `host[:port]`), the client's credential grants (hosts,
//! methods, path prefixes, expiry, request budget), injects credentials the agent never sees
//! (sealed: the provider's node opens them; relayed: the client's node performs the call),
//! scrubs secrets from responses, and records an [`Observation`] of every call and denial.
//!
//! ```no_run
//! use std::sync::Arc;
//! use souk_egress::*;
//! use souk_protocol::credential::{CredentialMode, CredentialPolicy};
//! use souk_protocol::receipt::EntryKind;
//! # async fn run(
//! #     open_sealed: SealedOpener,
//! #     hire_id: souk_protocol::negotiation::HireId,
//! # ) -> Result<(), Box<dyn std::error::Error>> {
//! let token = ProxyToken::generate()?;
//! let proxy_url = token.proxy_url("127.0.0.1:3128"); // HTTP_PROXY for the agent
//! let egress = HireEgress::new(EgressConfig {
//!     hire: "ab12".into(),
//!     proxy_token: token,
//!     hosts: vec!["pypi.org".into()],
//!     slots: vec![SlotConfig {
//!         // The policy of the client's signed grant for slot `crm`.
//!         policy: CredentialPolicy {
//!             hire_id,
//!             slot: "crm".into(),
//!             hosts: vec!["api.crm.example".into()],
//!             methods: vec!["GET".into()],
//!             path_prefixes: vec!["/v1/contacts".into()],
//!             injection: Injection::Header { name: "authorization".into(), prefix: "Bearer ".into() },
//!             expires_at: 1_900_000_000_000,
//!             max_requests: 100,
//!             mode: CredentialMode::Sealed,
//!         },
//!         source: SecretSource::Sealed(open_sealed),
//!         requests_used: 0,
//!     }],
//!     upstream: UpstreamConfig::default(),
//!     limits: Limits::default(),
//!     clock: system_clock(),
//! })?;
//! let (tx, mut rx) = tokio::sync::mpsc::channel(64);
//! let stop = tokio_util::sync::CancellationToken::new();
//! let listener = tokio::net::UnixListener::bind("/run/souk/hires/ab12/proxy.sock")?;
//! tokio::spawn(serve_unix(listener, Arc::new(egress), tx, stop.clone()));
//! while let Some(obs) = rx.recv().await {
//!     // An observation is the receipt's `network-call` entry.
//!     let kind = EntryKind::NetworkCall(obs);
//! #   let _ = kind;
//! }
//! # Ok(()) }
//! ```
//!
//! Module map (one role per file): `config` ([`EgressConfig`], [`HireEgress`], [`ProxyToken`],
//! [`Limits`]), `host` (the `host[:port]` key), `grant` ([`Grant`]: a client's
//! `CredentialPolicy` with its request counter; the decision is the protocol's
//! `CredentialPolicy::check_request`), `secret` ([`Secret`], [`SecretSource`]), `inject` (where
//! the secret goes), `scrub` ([`Scrubber`]), `upstream` ([`UpstreamConfig`], [`Upstream`],
//! [`Resolve`], address checks, TLS, pooling), `observe` ([`Observation`], the receipt's
//! `network-call` entry), `relay` ([`Relay`] and its messages), `exchange` ([`perform`] and the
//! shared call paths), `proxy` ([`serve_tcp`], [`serve_unix`]), `tunnel` (`CONNECT`).
//!
//! Policies, denials, path normalisation and placeholders are `souk_protocol::credential`'s
//! (`spec/credentials.md`); [`Denial`] and [`DenialCode`] are re-exported here.

mod config;
mod exchange;
mod grant;
mod host;
mod inject;
mod observe;
mod proxy;
mod relay;
mod scrub;
mod secret;
mod tunnel;
mod upstream;

#[cfg(feature = "test-utils")]
pub mod testing;

pub use config::{
    Clock, ConfigError, EgressConfig, HireEgress, Limits, ProxyToken, SlotConfig, system_clock,
};
pub use exchange::{Performed, perform};
pub use grant::Grant;
pub use observe::{Observation, body_hash};
pub use proxy::{serve_tcp, serve_unix};
pub use relay::{Relay, RelayError, RelayFuture, RelayedRequest, RelayedResponse};
pub use scrub::{REDACTED, Scrubber};
pub use secret::{SealedOpener, Secret, SecretError, SecretSource};
pub use souk_protocol::credential::{Denial, DenialCode};
pub use souk_protocol::manifest::Injection;
pub use upstream::{Resolve, SystemResolver, Upstream, UpstreamConfig, address_class};
