//! The agent manifest: a provider's signed, technical description of one agent, and where a
//! manifest is verified ([`Manifest::verify`]).
//!
//! A manifest says what the agent does (capabilities, description, input and output JSON
//! schemas), what it may touch (tools, network hosts, credential slots and how each secret is
//! injected), what it costs (pricing), its limits, which runtime package it is (a BLAKE3
//! digest), the provider's X25519 sealing key for credentials, and when it expires. A higher
//! `seq` for the same provider and agent name replaces a lower one. Wire format and every
//! validation rule: `spec/manifest.md`.

use crate::Timestamp;
use crate::encoding::{Canonical, DecodeError, Encoder, Reader};
use crate::hash::{Domain, Hash};
use crate::identity::NodeId;
use crate::json;
use crate::signed::{Signed, SignedBody, SignedError};

/// Format version of the manifest body.
pub const MANIFEST_VERSION: u64 = 1;
/// Largest encoded manifest body.
pub const MAX_MANIFEST_LEN: usize = 64 * 1024;
/// Longest validity window (`expires_at - issued_at`): 7 days.
pub const MAX_MANIFEST_TTL_MS: u64 = 7 * 24 * 3600 * 1000;
/// How far in the future `issued_at` may be, to tolerate clock skew: 5 minutes.
pub const MAX_CLOCK_SKEW_MS: u64 = 5 * 60 * 1000;
/// Longest hire an agent may declare: 30 days.
pub const MAX_DURATION_MS: u64 = 30 * 24 * 3600 * 1000;

const MAX_NAME: usize = 64;
const MAX_CAPABILITIES: usize = 32;
const MAX_CAPABILITY: usize = 48;
/// Longest agent description, bytes (rule M1).
pub const MAX_DESCRIPTION: usize = 4096;
/// Longest input or output schema (compact JSON text), bytes (rule M1).
pub const MAX_SCHEMA: usize = 16 * 1024;
const MAX_TOOLS: usize = 64;
/// Longest tool description, bytes (rule M1).
pub const MAX_TOOL_DESCRIPTION: usize = 512;
const MAX_HOSTS: usize = 64;
const MAX_HOST: usize = 253 + 6;
/// Longest `host` a `network-call` entry may record (a DNS name or a bracketed IPv6 literal,
/// with a port).
pub const MAX_OBSERVED_HOST_LEN: usize = MAX_HOST;
const MAX_SLOTS: usize = 16;
const MAX_HEADER_NAME: usize = 64;
const MAX_PREFIX: usize = 32;

/// How a credential is injected into an outgoing request by the provider's egress proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Injection {
    /// `header: prefix + secret` (e.g. `authorization: Bearer <secret>`).
    Header {
        /// Header name, lowercase.
        name: String,
        /// Text placed before the secret (may be empty).
        prefix: String,
    },
    /// HTTP Basic authentication; the secret is `user:password`.
    Basic,
    /// A query parameter carrying the secret.
    Query {
        /// Parameter name.
        param: String,
    },
}

/// A credential the agent needs from the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialSlot {
    /// Slot name (same rules as the agent name).
    pub name: String,
    /// Exact https hosts the secret may be sent to (sorted, unique).
    pub hosts: Vec<String>,
    /// How the proxy injects it.
    pub injection: Injection,
}

/// A tool the agent may call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tool {
    /// Tool name (same rules as the agent name).
    pub name: String,
    /// What it does.
    pub description: String,
}

/// The price of a hire, in millionths of a currency unit (no floats anywhere).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pricing {
    /// Currency code, 3 to 12 characters `A-Z0-9` (e.g. `USD`, `CREDIT`).
    pub currency: String,
    /// Fixed price per hire, in micro-units.
    pub per_hire: u64,
    /// Price per started hour of work, in micro-units.
    pub per_hour: u64,
}

/// Limits the provider enforces for every hire of this agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Longest a hire may run, in milliseconds.
    pub max_duration_ms: u64,
    /// Hires of this agent the provider runs at once.
    pub max_concurrency: u32,
    /// Largest job input accepted, in bytes.
    pub max_input_bytes: u64,
    /// Memory of one hire (the agent and every process it starts), in bytes; 0: no limit.
    pub memory_bytes: u64,
    /// Processes and threads of one hire; 0: no limit.
    pub max_processes: u64,
    /// How the provider confines the agent's process.
    pub isolation: Isolation,
}

/// How a provider confines an agent's process (what a client can rely on; see
/// `spec/agent-protocol.md`, "Starting the agent").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    /// No sandbox: the agent runs with the provider node's user and network.
    None,
    /// A sandbox: its own user, pid, ipc, uts and network namespaces; the system read-only;
    /// only its package (read-only) and working directory; network only through the egress
    /// proxy to the hosts listed in the manifest.
    Sandbox,
}

impl Isolation {
    /// `none` or `sandbox`.
    pub fn as_str(self) -> &'static str {
        match self {
            Isolation::None => "none",
            Isolation::Sandbox => "sandbox",
        }
    }
}

/// A provider's description of one agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// The provider node, which signs the manifest.
    pub provider: NodeId,
    /// Agent name, unique per provider: `[a-z0-9-]`, 1..=64, no leading or trailing `-`.
    pub name: String,
    /// Sequence number; a higher one replaces a lower one for the same (provider, name).
    pub seq: u64,
    /// Capability tags, sorted and unique.
    pub capabilities: Vec<String>,
    /// Free-text description.
    pub description: String,
    /// JSON Schema of the job input: a JSON text of the profile of [`crate::json`], an object.
    pub input_schema: String,
    /// JSON Schema of the result: a JSON text of the profile of [`crate::json`], an object.
    pub output_schema: String,
    /// Tools the agent may call, sorted by name, unique.
    pub tools: Vec<Tool>,
    /// Network hosts the agent may reach (`host` or `host:port`), sorted and unique.
    pub hosts: Vec<String>,
    /// Credentials the agent needs, sorted by name, unique.
    pub credentials: Vec<CredentialSlot>,
    /// What a hire costs.
    pub pricing: Pricing,
    /// Per-hire limits.
    pub limits: Limits,
    /// BLAKE3 digest of the agent's runtime package.
    pub runtime_digest: Hash,
    /// The provider node's X25519 public key for sealing credentials.
    pub sealing_key: [u8; 32],
    /// When the manifest was signed (ms since the Unix epoch).
    pub issued_at: Timestamp,
    /// When it stops being valid (ms since the Unix epoch).
    pub expires_at: Timestamp,
}

/// Why a manifest was rejected (rules M1 and M2 of `spec/manifest.md`, or freshness).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    /// Envelope or body not canonical, or signature invalid (rule M1).
    #[error(transparent)]
    Signed(#[from] SignedError),
    /// A field breaks a content rule (rule M2).
    #[error("manifest {id}: {field}: {reason}")]
    Invalid {
        /// Short manifest id.
        id: String,
        /// Which field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The validity window has passed (freshness, checked by nodes).
    #[error("manifest {id}: expired at {expires_at} (now {now})")]
    Expired {
        /// Short manifest id.
        id: String,
        /// Its expiry.
        expires_at: Timestamp,
        /// The time it was checked at.
        now: Timestamp,
    },
    /// Issued in the future beyond the allowed clock skew (freshness, checked by nodes).
    #[error("manifest {id}: issued at {issued_at}, in the future (now {now})")]
    NotYetValid {
        /// Short manifest id.
        id: String,
        /// Its issue time.
        issued_at: Timestamp,
        /// The time it was checked at.
        now: Timestamp,
    },
}

/// Checks a name: `[a-z0-9-]`, 1..=max, no leading or trailing `-`.
pub fn is_valid_name(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && !s.starts_with('-')
        && !s.ends_with('-')
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Checks a capability tag: `[a-z0-9-.:/]`, 1..=48, starting with a letter or digit.
pub fn is_valid_capability(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_CAPABILITY
        && s.as_bytes()[0].is_ascii_alphanumeric()
        && s.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'.' | b':' | b'/')
        })
}

/// Checks a host: lowercase DNS name (labels `[a-z0-9-]`, 1..=63) with an optional `:port`.
pub fn is_valid_host(s: &str) -> bool {
    let (name, port) = match s.rsplit_once(':') {
        Some((n, p)) => (n, Some(p)),
        None => (s, None),
    };
    if let Some(p) = port {
        match p.parse::<u16>() {
            Ok(n) if n > 0 && p == n.to_string() => {}
            _ => return false,
        }
    }
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

fn is_valid_currency(s: &str) -> bool {
    (3..=12).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

fn strictly_sorted<T: AsRef<str>>(items: &[T]) -> bool {
    items.windows(2).all(|w| w[0].as_ref() < w[1].as_ref())
}

impl Manifest {
    /// Checks every content rule (M2 in `spec/manifest.md`) with a precise error.
    pub fn validate(&self, id: &Hash) -> Result<(), ManifestError> {
        let bad = |field: &'static str, reason: String| ManifestError::Invalid {
            id: id.short(),
            field,
            reason,
        };
        if !is_valid_name(&self.name, MAX_NAME) {
            return Err(bad(
                "name",
                format!(
                    "{:?} is not [a-z0-9-]{{1,64}} without a leading or trailing '-'",
                    self.name
                ),
            ));
        }
        if self.capabilities.is_empty() {
            return Err(bad(
                "capabilities",
                "at least one capability tag is required".into(),
            ));
        }
        if let Some(c) = self.capabilities.iter().find(|c| !is_valid_capability(c)) {
            return Err(bad(
                "capabilities",
                format!("{c:?} is not a valid tag ([a-z0-9-.:/], 1..=48)"),
            ));
        }
        if !strictly_sorted(&self.capabilities) {
            return Err(bad("capabilities", "tags must be sorted and unique".into()));
        }
        if self.description.trim().is_empty() {
            return Err(bad("description", "must not be empty".into()));
        }
        for (field, text) in [
            ("input_schema", &self.input_schema),
            ("output_schema", &self.output_schema),
        ] {
            json::check_object(text.as_bytes()).map_err(|e| {
                bad(
                    field,
                    format!("not a JSON object of the manifest profile: {e}"),
                )
            })?;
        }
        let tool_names: Vec<&str> = self.tools.iter().map(|t| t.name.as_str()).collect();
        if let Some(t) = self
            .tools
            .iter()
            .find(|t| !is_valid_name(&t.name, MAX_NAME))
        {
            return Err(bad("tools", format!("tool name {:?} is invalid", t.name)));
        }
        if !strictly_sorted(&tool_names) {
            return Err(bad(
                "tools",
                "tools must be sorted by name and unique".into(),
            ));
        }
        if let Some(h) = self.hosts.iter().find(|h| !is_valid_host(h)) {
            return Err(bad(
                "hosts",
                format!("{h:?} is not a lowercase host[:port]"),
            ));
        }
        if !strictly_sorted(&self.hosts) {
            return Err(bad("hosts", "hosts must be sorted and unique".into()));
        }
        let slot_names: Vec<&str> = self.credentials.iter().map(|s| s.name.as_str()).collect();
        if !strictly_sorted(&slot_names) {
            return Err(bad(
                "credentials",
                "slots must be sorted by name and unique".into(),
            ));
        }
        for slot in &self.credentials {
            if !is_valid_name(&slot.name, MAX_NAME) {
                return Err(bad(
                    "credentials",
                    format!("slot name {:?} is invalid", slot.name),
                ));
            }
            if slot.hosts.is_empty() {
                return Err(bad(
                    "credentials",
                    format!("slot {:?} names no host", slot.name),
                ));
            }
            if let Some(h) = slot.hosts.iter().find(|h| !is_valid_host(h)) {
                return Err(bad(
                    "credentials",
                    format!("slot {:?}: host {h:?} is invalid", slot.name),
                ));
            }
            if !strictly_sorted(&slot.hosts) {
                return Err(bad(
                    "credentials",
                    format!("slot {:?}: hosts must be sorted and unique", slot.name),
                ));
            }
            match &slot.injection {
                Injection::Header { name, prefix } => {
                    if !prefix.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
                        return Err(bad(
                            "credentials",
                            format!(
                                "slot {:?}: header prefix must be printable ASCII",
                                slot.name
                            ),
                        ));
                    }
                    let ok = !name.is_empty()
                        && name
                            .bytes()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
                    if !ok {
                        return Err(bad(
                            "credentials",
                            format!("slot {:?}: header name {name:?} is invalid", slot.name),
                        ));
                    }
                }
                Injection::Basic => {}
                Injection::Query { param } => {
                    let ok = !param.is_empty()
                        && param
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
                    if !ok {
                        return Err(bad(
                            "credentials",
                            format!("slot {:?}: query parameter {param:?} is invalid", slot.name),
                        ));
                    }
                }
            }
        }
        if !is_valid_currency(&self.pricing.currency) {
            return Err(bad(
                "pricing",
                format!(
                    "currency {:?} is not 3..=12 of A-Z0-9",
                    self.pricing.currency
                ),
            ));
        }
        let l = &self.limits;
        if l.max_duration_ms == 0 || l.max_duration_ms > MAX_DURATION_MS {
            return Err(bad(
                "limits",
                format!(
                    "max_duration_ms {} is outside 1..={MAX_DURATION_MS}",
                    l.max_duration_ms
                ),
            ));
        }
        if l.max_concurrency == 0 {
            return Err(bad("limits", "max_concurrency must be at least 1".into()));
        }
        if l.max_input_bytes == 0 {
            return Err(bad("limits", "max_input_bytes must be at least 1".into()));
        }
        if self.expires_at <= self.issued_at {
            return Err(bad("expires_at", "must be after issued_at".into()));
        }
        if self.expires_at - self.issued_at > MAX_MANIFEST_TTL_MS {
            return Err(bad(
                "expires_at",
                format!("validity window exceeds {MAX_MANIFEST_TTL_MS} ms"),
            ));
        }
        Ok(())
    }

    /// Checks the validity window against `now` (freshness; `spec/manifest.md`).
    pub fn check_fresh(&self, id: &Hash, now: Timestamp) -> Result<(), ManifestError> {
        if now >= self.expires_at {
            return Err(ManifestError::Expired {
                id: id.short(),
                expires_at: self.expires_at,
                now,
            });
        }
        if self.issued_at > now.saturating_add(MAX_CLOCK_SKEW_MS) {
            return Err(ManifestError::NotYetValid {
                id: id.short(),
                issued_at: self.issued_at,
                now,
            });
        }
        Ok(())
    }

    /// Decodes and fully verifies a signed manifest: canonical bytes, the provider's
    /// signature, every content rule, and freshness at `now` (M1, M2, freshness).
    pub fn verify(bytes: &[u8], now: Timestamp) -> Result<Signed<Manifest>, ManifestError> {
        let signed = Self::verify_offline(bytes)?;
        signed.body().check_fresh(&signed.id(), now)?;
        Ok(signed)
    }

    /// Like [`Manifest::verify`] without the freshness check (rules M1, M2), for archived
    /// manifests such as the one inside a receipt bundle.
    pub fn verify_offline(bytes: &[u8]) -> Result<Signed<Manifest>, ManifestError> {
        let signed = Signed::<Manifest>::open(bytes)?;
        signed.body().validate(&signed.id())?;
        Ok(signed)
    }
}

impl SignedBody for Manifest {
    const DOMAIN: Domain = Domain::Manifest;
    const MAX_BODY_LEN: usize = MAX_MANIFEST_LEN;
    fn named_signer(&self) -> Option<NodeId> {
        Some(self.provider)
    }
    /// The stable id (`spec/manifest.md`, "Manifest id"): it depends on the provider, the
    /// name and the terms, never on `seq`, `issued-at` or `expires-at`.
    fn object_id(&self, _body_bytes: &[u8]) -> Hash {
        self.reference().id()
    }
}

impl Canonical for NodeId {
    fn encode(&self, enc: &mut Encoder) {
        enc.bytes(self.as_bytes());
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let start = r.offset();
        let raw = r.array_bytes::<32>()?;
        NodeId::from_bytes(&raw).map_err(|_| DecodeError {
            offset: start,
            kind: crate::encoding::DecodeErrorKind::InvalidKey,
        })
    }
}

impl Canonical for Tool {
    fn encode(&self, enc: &mut Encoder) {
        enc.array(2);
        enc.text(&self.name);
        enc.text(&self.description);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.array_of(2)?;
        let t = Tool {
            name: r.text_max(MAX_NAME, "tool name")?,
            description: r.text_max(MAX_TOOL_DESCRIPTION, "tool description")?,
        };
        r.leave();
        Ok(t)
    }
}

impl Canonical for Injection {
    fn encode(&self, enc: &mut Encoder) {
        match self {
            Injection::Header { name, prefix } => {
                enc.array(3);
                enc.u64(0);
                enc.text(name);
                enc.text(prefix);
            }
            Injection::Basic => {
                enc.array(1);
                enc.u64(1);
            }
            Injection::Query { param } => {
                enc.array(2);
                enc.u64(2);
                enc.text(param);
            }
        }
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let start = r.offset();
        let len = r.array()?;
        let code_at = r.offset();
        let code = r.u64()?;
        let out = match (code, len) {
            (0, 3) => Injection::Header {
                name: r.text_max(MAX_HEADER_NAME, "header name")?,
                prefix: r.text_max(MAX_PREFIX, "header prefix")?,
            },
            (1, 1) => Injection::Basic,
            (2, 2) => Injection::Query {
                param: r.text_max(MAX_HEADER_NAME, "query parameter")?,
            },
            (0..=2, _) => {
                return Err(DecodeError {
                    offset: start,
                    kind: crate::encoding::DecodeErrorKind::WrongArity {
                        expected: [3, 1, 2][code as usize],
                        found: len as u64,
                    },
                });
            }
            _ => return Err(Reader::unknown_code(code_at, "injection", code)),
        };
        r.leave();
        Ok(out)
    }
}

impl Canonical for CredentialSlot {
    fn encode(&self, enc: &mut Encoder) {
        enc.array(3);
        enc.text(&self.name);
        enc.text_list(&self.hosts);
        self.injection.encode(enc);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.array_of(3)?;
        let s = CredentialSlot {
            name: r.text_max(MAX_NAME, "slot name")?,
            hosts: r.text_list(MAX_HOSTS, MAX_HOST, "slot hosts")?,
            injection: Injection::decode(r)?,
        };
        r.leave();
        Ok(s)
    }
}

impl Canonical for Pricing {
    fn encode(&self, enc: &mut Encoder) {
        enc.array(3);
        enc.text(&self.currency);
        enc.u64(self.per_hire);
        enc.u64(self.per_hour);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.array_of(3)?;
        let p = Pricing {
            currency: r.text_max(12, "currency")?,
            per_hire: r.u64()?,
            per_hour: r.u64()?,
        };
        r.leave();
        Ok(p)
    }
}

impl Canonical for Limits {
    fn encode(&self, enc: &mut Encoder) {
        enc.array(6);
        enc.u64(self.max_duration_ms);
        enc.u64(u64::from(self.max_concurrency));
        enc.u64(self.max_input_bytes);
        enc.u64(self.memory_bytes);
        enc.u64(self.max_processes);
        enc.u64(match self.isolation {
            Isolation::None => 0,
            Isolation::Sandbox => 1,
        });
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.array_of(6)?;
        let max_duration_ms = r.u64()?;
        let max_concurrency = r.u32()?;
        let max_input_bytes = r.u64()?;
        let memory_bytes = r.u64()?;
        let max_processes = r.u64()?;
        let at = r.offset();
        let isolation = match r.u64()? {
            0 => Isolation::None,
            1 => Isolation::Sandbox,
            other => return Err(Reader::unknown_code(at, "isolation", other)),
        };
        r.leave();
        Ok(Limits {
            max_duration_ms,
            max_concurrency,
            max_input_bytes,
            memory_bytes,
            max_processes,
            isolation,
        })
    }
}

impl Manifest {
    /// Writes the body's fields after `seq` and before `issued-at`.
    fn encode_terms_tail(&self, enc: &mut Encoder) {
        enc.text_list(&self.capabilities);
        enc.text(&self.description);
        enc.text(&self.input_schema);
        enc.text(&self.output_schema);
        enc.list(&self.tools);
        enc.text_list(&self.hosts);
        enc.list(&self.credentials);
        self.pricing.encode(enc);
        self.limits.encode(enc);
        self.runtime_digest.encode(enc);
        enc.bytes(&self.sealing_key);
    }

    /// The canonical CBOR of the manifest's terms: the 14-element array of the body without
    /// `seq`, `issued-at` and `expires-at` (`spec/manifest.md`, "Manifest id").
    pub fn terms_bytes(&self) -> Vec<u8> {
        let mut enc = Encoder::new();
        enc.array(14);
        enc.u64(MANIFEST_VERSION);
        self.provider.encode(&mut enc);
        enc.text(&self.name);
        self.encode_terms_tail(&mut enc);
        enc.into_bytes()
    }

    /// `BLAKE3("souk/v1/manifest-terms" || 0x00 || terms)`: what the agent offers, whatever
    /// the announcement that carries it.
    pub fn terms_digest(&self) -> Hash {
        Domain::ManifestTerms.hash(&self.terms_bytes())
    }

    /// The manifest's reference `[provider, name, terms-digest]`, from which anyone recomputes
    /// its id.
    pub fn reference(&self) -> ManifestRef {
        ManifestRef::new(self.provider, self.name.clone(), self.terms_digest())
    }
}

/// A manifest reference: `[provider, name, terms-digest]`. It names one version of one agent
/// without carrying the manifest: its [`ManifestRef::id`] is the manifest id, and its
/// [`ManifestRef::handle_string`] the agent's handle `<provider node id>/<name>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ManifestRef {
    /// The provider node.
    pub provider: NodeId,
    /// The agent name.
    pub name: String,
    /// [`Manifest::terms_digest`] of the manifest referred to.
    pub terms_digest: Hash,
}

impl ManifestRef {
    /// A reference from its parts.
    pub fn new(provider: NodeId, name: String, terms_digest: Hash) -> Self {
        Self {
            provider,
            name,
            terms_digest,
        }
    }

    /// The manifest id: `BLAKE3("souk/v1/manifest-id" || 0x00 || canonical reference)`.
    pub fn id(&self) -> Hash {
        Domain::ManifestId.hash(&crate::encoding::encode(self))
    }

    /// The agent's handle, `<provider node id>/<name>`: stable for as long as the provider
    /// keeps its key and the agent its name.
    pub fn handle_string(&self) -> String {
        format!("{}/{}", self.provider, self.name)
    }
}

impl Canonical for ManifestRef {
    fn encode(&self, enc: &mut Encoder) {
        enc.array(3);
        self.provider.encode(enc);
        enc.text(&self.name);
        self.terms_digest.encode(enc);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.array_of(3)?;
        let v = ManifestRef {
            provider: NodeId::decode(r)?,
            name: r.text_max(MAX_NAME, "agent name")?,
            terms_digest: Hash::decode(r)?,
        };
        r.leave();
        Ok(v)
    }
}

impl Canonical for Manifest {
    fn encode(&self, enc: &mut Encoder) {
        enc.array(17);
        enc.u64(MANIFEST_VERSION);
        self.provider.encode(enc);
        enc.text(&self.name);
        enc.u64(self.seq);
        self.encode_terms_tail(enc);
        enc.u64(self.issued_at);
        enc.u64(self.expires_at);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.array_of(17)?;
        r.version(MANIFEST_VERSION)?;
        let m = Manifest {
            provider: NodeId::decode(r)?,
            name: r.text_max(MAX_NAME, "agent name")?,
            seq: r.u64()?,
            capabilities: r.text_list(MAX_CAPABILITIES, MAX_CAPABILITY, "capabilities")?,
            description: r.text_max(MAX_DESCRIPTION, "description")?,
            input_schema: r.text_max(MAX_SCHEMA, "input schema")?,
            output_schema: r.text_max(MAX_SCHEMA, "output schema")?,
            tools: r.list(MAX_TOOLS, "tools")?,
            hosts: r.text_list(MAX_HOSTS, MAX_HOST, "hosts")?,
            credentials: r.list(MAX_SLOTS, "credential slots")?,
            pricing: Pricing::decode(r)?,
            limits: Limits::decode(r)?,
            runtime_digest: Hash::decode(r)?,
            sealing_key: r.array_bytes()?,
            issued_at: r.u64()?,
            expires_at: r.u64()?,
        };
        r.leave();
        Ok(m)
    }
}
