//! One hire's egress configuration, validated.
//!
//! Owns [`EgressConfig`] (what the node hands over when a hire starts: proxy token, listed
//! hosts, granted slots with their policies and secret sources, upstream settings, limits,
//! clock), [`HireEgress`] (the validated, shared state a proxy serves from, including each
//! grant's request counter), [`ProxyToken`] and [`Limits`]. Hosts are compared in the
//! manifest's spelling (`souk_protocol::manifest::is_valid_host`). It performs no I/O.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use souk_protocol::credential::{CredentialMode, CredentialPolicy, PolicyError, placeholder};
use souk_protocol::manifest::is_valid_host;
use tokio::sync::Semaphore;
use zeroize::Zeroizing;

use crate::grant::Grant;
use crate::host::HostKey;
use crate::scrub::Scrubber;
use crate::secret::SecretSource;
use crate::upstream::{Upstream, UpstreamConfig};

/// Milliseconds since the Unix epoch, injectable for tests.
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// The system clock as a [`Clock`].
pub fn system_clock() -> Clock {
    Arc::new(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0)
    })
}

/// Why an egress configuration was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A listed host is not a lowercase `host[:port]` as the manifest spells it (port
    /// omitted when 443).
    #[error("listed host {0:?} is not a lowercase host[:port]")]
    Host(String),
    /// A slot's policy breaks a rule of `spec/credentials.md` ("Policy rules").
    #[error("slot {slot}: {source}")]
    Policy {
        /// The slot.
        slot: String,
        /// The rule it breaks.
        #[source]
        source: PolicyError,
    },
    /// A slot's secret source does not match its policy's mode (a sealed source for a
    /// relayed policy, or the reverse).
    #[error("slot {slot}: the policy is {policy} but the secret source is {source_mode}")]
    ModeMismatch {
        /// The slot.
        slot: String,
        /// The policy's mode (`sealed` or `relayed`).
        policy: &'static str,
        /// The source's mode.
        source_mode: &'static str,
    },
    /// Two slots' policies name different hires.
    #[error("slot {0}: the policy names another hire than the other slots'")]
    MixedHires(String),
    /// Two slots with the same name.
    #[error("slot {0} is granted twice")]
    DuplicateSlot(String),
    /// A host granted to two slots (the proxy could not tell which secret to inject).
    #[error("host {0} is granted to two slots")]
    HostInTwoSlots(String),
    /// An extra root certificate does not parse.
    #[error("extra root certificate #{index}: {reason}")]
    Root {
        /// Its position in `extra_roots`.
        index: usize,
        /// The parser's complaint.
        reason: String,
    },
    /// Neither webpki roots nor extra roots: nothing could ever be trusted.
    #[error("no trusted roots configured")]
    NoRoots,
    /// The TLS configuration cannot be built.
    #[error("TLS configuration: {0}")]
    Tls(String),
    /// A limit is zero.
    #[error("limit {0} must be at least 1")]
    Limit(&'static str),
    /// The proxy token is empty or not printable ASCII.
    #[error("the proxy token must be 16 to 128 printable ASCII characters without ':'")]
    Token,
}

/// The per-hire proxy password the agent presents as `Proxy-Authorization: Basic
/// base64("souk:" + token)`. Zeroized on drop; no `Debug`.
pub struct ProxyToken(Zeroizing<String>);

impl ProxyToken {
    /// The user name in the proxy URL and in `Proxy-Authorization`.
    pub const USER: &'static str = "souk";

    /// A fresh random token (32 bytes, hex).
    pub fn generate() -> Result<ProxyToken, getrandom::Error> {
        let mut raw = Zeroizing::new([0u8; 32]);
        getrandom::fill(raw.as_mut())?;
        let mut s = Zeroizing::new(String::with_capacity(64));
        for b in raw.iter() {
            s.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
            s.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
        }
        Ok(ProxyToken(s))
    }

    /// An existing token (e.g. restored after a node restart): 16 to 128 printable ASCII
    /// characters without `:`.
    pub fn from_string(token: Zeroizing<String>) -> Result<ProxyToken, ConfigError> {
        let ok = (16..=128).contains(&token.len())
            && token
                .bytes()
                .all(|b| (0x21..=0x7e).contains(&b) && b != b':');
        if ok {
            Ok(ProxyToken(token))
        } else {
            Err(ConfigError::Token)
        }
    }

    /// The token itself (for the node to store or hand to the sandbox).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The proxy URL for the agent's `HTTP_PROXY`/`HTTPS_PROXY`/`ALL_PROXY`:
    /// `http://souk:<token>@<addr>` (`addr` is what the agent connects to, e.g.
    /// `127.0.0.1:3128`).
    pub fn proxy_url(&self, addr: &str) -> Zeroizing<String> {
        let token: String =
            percent_encoding::utf8_percent_encode(&self.0, percent_encoding::NON_ALPHANUMERIC)
                .collect();
        let token = Zeroizing::new(token);
        Zeroizing::new(format!(
            "http://{}:{}@{addr}",
            ProxyToken::USER,
            token.as_str()
        ))
    }

    /// Whether a `Proxy-Authorization` value carries this token (constant time in the
    /// token's bytes).
    pub(crate) fn matches(&self, header: &[u8]) -> bool {
        let Some(sp) = header.iter().position(|&b| b == b' ') else {
            return false;
        };
        if !header[..sp].eq_ignore_ascii_case(b"basic") {
            return false;
        }
        let encoded = header[sp + 1..].trim_ascii();
        let Ok(decoded) = STANDARD.decode(encoded).map(Zeroizing::new) else {
            return false;
        };
        let mut expected = Zeroizing::new(Vec::with_capacity(5 + self.0.len()));
        expected.extend_from_slice(ProxyToken::USER.as_bytes());
        expected.push(b':');
        expected.extend_from_slice(self.0.as_bytes());
        constant_time_eq(&decoded, &expected)
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Per-hire bounds on the proxy's own resources.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Agent connections served at once; further connections wait in the listen backlog.
    pub max_connections: usize,
    /// Requests (and tunnels) in progress at once; further requests wait.
    pub max_in_flight: usize,
    /// Largest request head from the agent, bytes (at least 8 KiB).
    pub max_header_bytes: usize,
    /// Time allowed for the agent to send a request head.
    pub header_read_timeout: Duration,
    /// A `CONNECT` tunnel with no traffic for this long is closed.
    pub tunnel_idle_timeout: Duration,
    /// On shutdown, time given to in-flight requests before connections are dropped.
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 32,
            max_in_flight: 16,
            max_header_bytes: 64 << 10,
            header_read_timeout: Duration::from_secs(30),
            tunnel_idle_timeout: Duration::from_secs(300),
            shutdown_grace: Duration::from_secs(5),
        }
    }
}

/// One granted credential slot.
pub struct SlotConfig {
    /// The client's policy for the slot (from its signed grant). Its mode must match
    /// `source`; in relayed mode its `offline` says how long a call waits for the client.
    pub policy: CredentialPolicy,
    /// Where the secret comes from (sealed or relayed).
    pub source: SecretSource,
    /// Calls already counted against the budget (restored after a restart).
    pub requests_used: u64,
}

/// Everything the node provides when a hire starts.
pub struct EgressConfig {
    /// The hire id (for logs only).
    pub hire: String,
    /// The agent's proxy password.
    pub proxy_token: ProxyToken,
    /// The manifest's `hosts` (lowercase `host` or `host:port`, port omitted when 443):
    /// reachable with `CONNECT` or plain HTTP, without a credential.
    pub hosts: Vec<String>,
    /// Granted credential slots; their hosts are reachable with plain HTTP only.
    pub slots: Vec<SlotConfig>,
    /// How to reach upstreams.
    pub upstream: UpstreamConfig,
    /// Resource bounds.
    pub limits: Limits,
    /// Time source for grant expiry.
    pub clock: Clock,
}

pub(crate) struct SlotState {
    pub(crate) grant: Grant,
    pub(crate) source: SecretSource,
    pub(crate) placeholder: String,
}

/// A hire's validated egress state, shared by every connection of its proxy.
pub struct HireEgress {
    pub(crate) hire: String,
    pub(crate) token: ProxyToken,
    pub(crate) hosts: Vec<String>,
    pub(crate) slots: Vec<SlotState>,
    pub(crate) upstream: Upstream,
    pub(crate) limits: Limits,
    pub(crate) clock: Clock,
    pub(crate) in_flight: Arc<Semaphore>,
}

impl std::fmt::Debug for HireEgress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HireEgress")
            .field("hire", &self.hire)
            .field("hosts", &self.hosts)
            .field(
                "slots",
                &self
                    .slots
                    .iter()
                    .map(|s| s.grant.slot())
                    .collect::<Vec<_>>(),
            )
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl HireEgress {
    /// Validates `config` and builds the TLS client.
    pub fn new(config: EgressConfig) -> Result<HireEgress, ConfigError> {
        let l = &config.limits;
        if l.max_connections == 0 {
            return Err(ConfigError::Limit("max_connections"));
        }
        if l.max_in_flight == 0 {
            return Err(ConfigError::Limit("max_in_flight"));
        }
        let mut hosts: Vec<String> = Vec::with_capacity(config.hosts.len());
        for h in &config.hosts {
            if !is_valid_host(h) || h.ends_with(":443") {
                return Err(ConfigError::Host(h.clone()));
            }
            if !hosts.contains(h) {
                hosts.push(h.clone());
            }
        }
        let mut slots: Vec<SlotState> = Vec::with_capacity(config.slots.len());
        for s in config.slots {
            let grant = Grant::new(s.policy, s.requests_used)?;
            let policy = grant.policy();
            if slots.iter().any(|o| o.grant.slot() == grant.slot()) {
                return Err(ConfigError::DuplicateSlot(grant.slot().to_owned()));
            }
            if slots
                .first()
                .is_some_and(|o| o.grant.policy().hire_id != policy.hire_id)
            {
                return Err(ConfigError::MixedHires(grant.slot().to_owned()));
            }
            match (&s.source, policy.mode) {
                (SecretSource::Sealed(_), CredentialMode::Sealed)
                | (SecretSource::Relayed(_), CredentialMode::Relayed { .. }) => {}
                (source, mode) => {
                    return Err(ConfigError::ModeMismatch {
                        slot: grant.slot().to_owned(),
                        policy: mode.as_str(),
                        source_mode: source.call_mode().as_str(),
                    });
                }
            }
            if let Some(h) = policy
                .hosts
                .iter()
                .find(|h| slots.iter().any(|o| o.grant.policy().hosts.contains(h)))
            {
                return Err(ConfigError::HostInTwoSlots(h.clone()));
            }
            let placeholder = placeholder(grant.slot());
            slots.push(SlotState {
                grant,
                source: s.source,
                placeholder,
            });
        }
        let upstream = Upstream::new(config.upstream)?;
        let in_flight = Arc::new(Semaphore::new(config.limits.max_in_flight));
        Ok(HireEgress {
            hire: config.hire,
            token: config.proxy_token,
            hosts,
            slots,
            upstream,
            limits: config.limits,
            clock: config.clock,
            in_flight,
        })
    }

    /// The hire id given at creation.
    pub fn hire(&self) -> &str {
        &self.hire
    }

    /// Calls of `slot` that reached the upstream with the credential so far (`None` for an
    /// unknown slot). In relayed mode, calls the client's node performed.
    pub fn requests_used(&self, slot: &str) -> Option<u64> {
        self.slots
            .iter()
            .find(|s| s.grant.slot() == slot)
            .map(|s| s.grant.requests_used())
    }

    /// The slot whose grant lists `host`.
    pub(crate) fn slot_for(&self, host: &HostKey) -> Option<&SlotState> {
        self.slots.iter().find(|s| s.grant.covers(host))
    }

    /// Whether `host` is listed in the manifest's hosts (compared in the manifest's spelling).
    pub(crate) fn is_listed(&self, host: &HostKey) -> bool {
        let h = host.to_string();
        self.hosts.contains(&h)
    }

    /// A scrubber for the placeholders of every slot except `except`.
    pub(crate) fn placeholder_scrubber(&self, except: Option<&str>) -> Scrubber {
        let needles: Vec<&[u8]> = self
            .slots
            .iter()
            .filter(|s| Some(s.grant.slot()) != except)
            .map(|s| s.placeholder.as_bytes())
            .collect();
        Scrubber::new(&needles)
    }
}

#[cfg(test)]
mod tests {
    use souk_protocol::credential::OfflineBehaviour;
    use souk_protocol::hash::Hash;
    use souk_protocol::manifest::Injection;

    use super::*;
    use crate::relay::{Relay, RelayError, RelayFuture, RelayedRequest};
    use crate::secret::SecretError;

    struct NoRelay;

    impl Relay for NoRelay {
        fn relay(&self, _req: RelayedRequest) -> RelayFuture<'_> {
            Box::pin(async { Err(RelayError::Offline) })
        }
    }

    fn policy(slot: &str, host: &str) -> CredentialPolicy {
        CredentialPolicy {
            hire_id: Hash::digest(b"hire"),
            slot: slot.into(),
            hosts: vec![host.into()],
            methods: vec![],
            path_prefixes: vec![],
            injection: Injection::Basic,
            expires_at: 1_000,
            max_requests: 1,
            mode: CredentialMode::Sealed,
        }
    }

    fn sealed() -> SecretSource {
        SecretSource::Sealed(Arc::new(|| Err(SecretError::Missing)))
    }

    fn config(hosts: &[&str], slots: Vec<SlotConfig>) -> EgressConfig {
        EgressConfig {
            hire: "h".into(),
            proxy_token: ProxyToken::generate().unwrap_or_else(|e| panic!("{e}")),
            hosts: hosts.iter().map(|h| h.to_string()).collect(),
            slots,
            upstream: UpstreamConfig::default(),
            limits: Limits::default(),
            clock: system_clock(),
        }
    }

    fn slot(policy: CredentialPolicy, source: SecretSource) -> SlotConfig {
        SlotConfig {
            policy,
            source,
            requests_used: 0,
        }
    }

    #[test]
    fn slots_and_hosts_are_checked() {
        let relayed = |mut p: CredentialPolicy| {
            p.mode = CredentialMode::Relayed {
                offline: OfflineBehaviour::Fail,
            };
            p
        };
        let no_relay = || SecretSource::Relayed(Arc::new(NoRelay));
        let other_hire = {
            let mut p = policy("b", "b.test");
            p.hire_id = Hash::digest(b"other");
            p
        };
        let bad_method = {
            let mut p = policy("a", "a.test");
            p.methods = vec!["get".into()];
            p
        };
        let cases: Vec<(EgressConfig, ConfigError)> = vec![
            (
                config(&["API.test"], vec![]),
                ConfigError::Host("API.test".into()),
            ),
            (
                config(&["a.test:443"], vec![]),
                ConfigError::Host("a.test:443".into()),
            ),
            (
                config(&["[::1]:80"], vec![]),
                ConfigError::Host("[::1]:80".into()),
            ),
            (
                config(&[], vec![slot(bad_method, sealed())]),
                ConfigError::Policy {
                    slot: "a".into(),
                    source: PolicyError::InvalidMethod("get".into()),
                },
            ),
            (
                config(&[], vec![slot(policy("a", "a.test"), no_relay())]),
                ConfigError::ModeMismatch {
                    slot: "a".into(),
                    policy: "sealed",
                    source_mode: "relayed",
                },
            ),
            (
                config(&[], vec![slot(relayed(policy("a", "a.test")), sealed())]),
                ConfigError::ModeMismatch {
                    slot: "a".into(),
                    policy: "relayed",
                    source_mode: "sealed",
                },
            ),
            (
                config(
                    &[],
                    vec![
                        slot(policy("a", "a.test"), sealed()),
                        slot(other_hire, sealed()),
                    ],
                ),
                ConfigError::MixedHires("b".into()),
            ),
            (
                config(
                    &[],
                    vec![
                        slot(policy("a", "x.test"), sealed()),
                        slot(policy("b", "x.test"), sealed()),
                    ],
                ),
                ConfigError::HostInTwoSlots("x.test".into()),
            ),
            (
                config(
                    &[],
                    vec![
                        slot(policy("a", "a.test"), sealed()),
                        slot(policy("a", "b.test"), sealed()),
                    ],
                ),
                ConfigError::DuplicateSlot("a".into()),
            ),
        ];
        for (cfg, want) in cases {
            assert_eq!(HireEgress::new(cfg).err(), Some(want));
        }
        let ok = config(
            &["pypi.org", "files.example:8443"],
            vec![
                slot(policy("a", "a.test"), sealed()),
                slot(relayed(policy("b", "b.test")), no_relay()),
            ],
        );
        let egress = HireEgress::new(ok).unwrap_or_else(|e| panic!("{e}"));
        let key = |s: &str| HostKey::parse(s).unwrap_or_else(|| panic!("{s}"));
        assert!(egress.is_listed(&key("PyPI.org.:443")));
        assert!(egress.is_listed(&key("files.example:8443")));
        assert!(!egress.is_listed(&key("files.example")));
        assert_eq!(
            egress.slot_for(&key("B.test")).map(|s| s.grant.slot()),
            Some("b")
        );
    }

    #[test]
    fn token_round_trip() {
        let t = ProxyToken::generate().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(t.expose().len(), 64);
        let header = format!("Basic {}", STANDARD.encode(format!("souk:{}", t.expose())));
        assert!(t.matches(header.as_bytes()));
        assert!(t.matches(header.replacen("Basic", "basic", 1).as_bytes()));
        let wrong = format!("Basic {}", STANDARD.encode("souk:nope"));
        assert!(!t.matches(wrong.as_bytes()));
        assert!(!t.matches(b"Bearer x"));
        assert!(!t.matches(b"Basic !!!"));
        let url = t.proxy_url("127.0.0.1:3128");
        assert_eq!(
            url.as_str(),
            format!("http://souk:{}@127.0.0.1:3128", t.expose())
        );
        assert!(ProxyToken::from_string(Zeroizing::new("short".into())).is_err());
        assert!(ProxyToken::from_string(Zeroizing::new("a:bcdefghijklmnopq".into())).is_err());
    }
}
