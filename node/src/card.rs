//! The agent card: a verified manifest decoded for people and API clients (`GET
//! /v1/manifests/{id}`, `souk agent show`), with its schemas as JSON values and its envelope
//! kept as hex so anyone can re-verify the signed bytes, plus the agent's reputation: figures
//! the node computed from outcome records it verified itself (spec/reputation.md), never a
//! number a peer reported, and whether its provider is flagged for equivocating.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use souk_protocol::equivocation::Equivocation;
use souk_protocol::manifest::{Injection, Manifest};
use souk_protocol::outcome::Outcome;
use souk_protocol::signed::Signed;
use souk_reputation::Figures;

/// A manifest as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentCard {
    /// Manifest id (64 hex digits).
    pub id: String,
    /// The agent's handle, `<provider node id>/<name>`: names the agent across versions.
    pub handle: String,
    /// Provider node id (`souk…`).
    pub provider: String,
    /// Agent name.
    pub name: String,
    /// Manifest seq.
    pub seq: u64,
    /// Description.
    pub description: String,
    /// Capability tags.
    pub capabilities: Vec<String>,
    /// JSON Schema of the job input (the manifest's JSON text, parsed).
    pub input_schema: Value,
    /// JSON Schema of the result.
    pub output_schema: Value,
    /// Tools the agent may call.
    pub tools: Vec<CardTool>,
    /// Network hosts the agent may reach.
    pub hosts: Vec<String>,
    /// Credentials the agent needs from the client.
    pub credentials: Vec<CardCredential>,
    /// What a hire costs (advisory: the contract's agreed price is what counts).
    pub pricing: CardPricing,
    /// Per-hire limits the provider enforces.
    pub limits: CardLimits,
    /// BLAKE3 of the agent's runtime package (hex).
    pub runtime_digest: String,
    /// When the provider signed this manifest (ms since the Unix epoch): it re-signs at every
    /// re-announcement, so this is when it was last heard of alive.
    pub issued_at: u64,
    /// When the manifest stops being valid (ms): the agent is offered until then.
    pub expires_at: u64,
    /// Reputation of the agent (its handle) from the outcome records this node verified;
    /// `null` when the node could not get them (a light node whose full peers did not
    /// answer).
    pub reputation: Option<CardReputation>,
    /// Set when the provider is flagged: a verified equivocation proof against it is held.
    pub flagged: Option<CardFlag>,
    /// The signed manifest envelope, canonical CBOR in hex.
    pub envelope: String,
}

/// Reputation figures of an agent and of its provider, and the agent's latest outcomes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CardReputation {
    /// The agent's figures (spec/reputation.md): `settled`, `accepted`, `rejected`,
    /// `distinct_clients`, `success_lower_bound`, ...
    #[serde(flatten)]
    pub figures: Figures,
    /// The provider's figures, over all its agents.
    pub provider: Figures,
    /// The agent's latest outcomes, latest first.
    pub last: Vec<CardOutcome>,
}

/// One verified outcome record, as the card shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardOutcome {
    /// Hire id (hex).
    pub hire_id: String,
    /// Record id (hex): fetch, verify or cite the record by it.
    pub record_id: String,
    /// Client node id.
    pub client: String,
    /// How the hire ended (`completed`, `failed (agent-crashed)`, ...).
    pub end: String,
    /// The client's verdict (`accepted` or `disputed`).
    pub verdict: String,
    /// The client's reason (expected for disputes; may be empty).
    pub reason: String,
    /// When the client settled (ms since the Unix epoch).
    pub settled_at: u64,
    /// Receipt entries in the chain.
    pub entries: u64,
    /// Agreed price (micro-units) and its currency.
    pub price: u64,
    /// Currency.
    pub currency: String,
}

impl From<&Outcome> for CardOutcome {
    fn from(o: &Outcome) -> Self {
        CardOutcome {
            hire_id: o.hire_id.to_hex(),
            record_id: o.record_id.to_hex(),
            client: o.client.to_string(),
            end: o.end.to_string(),
            verdict: o.verdict.as_str().into(),
            reason: o.reason.clone(),
            settled_at: o.settled_at,
            entries: o.entries,
            price: o.price.amount,
            currency: o.price.currency.clone(),
        }
    }
}

/// Why a provider is flagged: what its verified equivocation proof shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardFlag {
    /// For people.
    pub reason: String,
    /// The hire in which the provider signed two different entries.
    pub hire_id: String,
    /// The contested seq.
    pub seq: u64,
    /// The two entry ids (hex).
    pub entries: [String; 2],
}

impl From<&Equivocation> for CardFlag {
    fn from(e: &Equivocation) -> Self {
        CardFlag {
            reason: format!(
                "the provider signed two different receipt entries at seq {} of hire {} (a verified equivocation proof): nothing it signs can be trusted",
                e.seq,
                e.hire_id.short()
            ),
            hire_id: e.hire_id.to_hex(),
            seq: e.seq,
            entries: [e.ids[0].to_hex(), e.ids[1].to_hex()],
        }
    }
}

/// A tool the agent may call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardTool {
    /// Name.
    pub name: String,
    /// What it does.
    pub description: String,
}

/// A credential slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardCredential {
    /// Slot name.
    pub name: String,
    /// The https hosts the secret may be sent to.
    pub hosts: Vec<String>,
    /// How the provider's egress proxy injects it: `header NAME`, `basic` or `query PARAM`.
    pub injection: String,
}

/// Pricing, in micro-units of `currency`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardPricing {
    /// Currency code.
    pub currency: String,
    /// Price per hire (micro-units).
    pub per_hire: u64,
    /// Price per started hour (micro-units).
    pub per_hour: u64,
}

/// Per-hire limits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardLimits {
    /// Longest a hire may run (ms).
    pub max_duration_ms: u64,
    /// Hires run at once.
    pub max_concurrency: u32,
    /// Largest input (bytes).
    pub max_input_bytes: u64,
    /// Memory per hire (bytes; 0: no limit).
    pub memory_bytes: u64,
    /// Processes per hire (0: no limit).
    pub max_processes: u64,
    /// `none` or `sandbox`.
    pub isolation: String,
}

/// A schema field as JSON: parsed (manifests are admitted only with JSON-object schemas),
/// or the raw text as a JSON string should it not parse.
fn schema_value(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
}

impl AgentCard {
    /// The card of a verified manifest.
    pub fn from_manifest(m: &Signed<Manifest>) -> Self {
        let b = m.body();
        AgentCard {
            id: m.id().to_hex(),
            handle: crate::agent_ref::handle_of(b),
            provider: b.provider.to_string(),
            name: b.name.clone(),
            seq: b.seq,
            description: b.description.clone(),
            capabilities: b.capabilities.clone(),
            input_schema: schema_value(&b.input_schema),
            output_schema: schema_value(&b.output_schema),
            tools: b
                .tools
                .iter()
                .map(|t| CardTool {
                    name: t.name.clone(),
                    description: t.description.clone(),
                })
                .collect(),
            hosts: b.hosts.clone(),
            credentials: b
                .credentials
                .iter()
                .map(|c| CardCredential {
                    name: c.name.clone(),
                    hosts: c.hosts.clone(),
                    injection: match &c.injection {
                        Injection::Header { name, .. } => format!("header {name}"),
                        Injection::Basic => "basic".into(),
                        Injection::Query { param } => format!("query {param}"),
                    },
                })
                .collect(),
            pricing: CardPricing {
                currency: b.pricing.currency.clone(),
                per_hire: b.pricing.per_hire,
                per_hour: b.pricing.per_hour,
            },
            limits: CardLimits {
                max_duration_ms: b.limits.max_duration_ms,
                max_concurrency: b.limits.max_concurrency,
                max_input_bytes: b.limits.max_input_bytes,
                memory_bytes: b.limits.memory_bytes,
                max_processes: b.limits.max_processes,
                isolation: b.limits.isolation.as_str().into(),
            },
            runtime_digest: b.runtime_digest.to_hex(),
            issued_at: b.issued_at,
            expires_at: b.expires_at,
            reputation: None,
            flagged: None,
            envelope: hex::encode(m.to_bytes()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use souk_protocol::vectors::{manifest_body, provider_key};

    #[test]
    fn card_shows_the_signed_fields() {
        let k = provider_key();
        let m = Signed::sign(manifest_body(&k), &k);
        let card = AgentCard::from_manifest(&m);
        let b = m.body();
        assert_eq!(card.id, m.id().to_hex());
        assert_eq!(card.provider, b.provider.to_string());
        assert_eq!(
            card.input_schema,
            serde_json::from_str::<Value>(&b.input_schema).unwrap_or_default()
        );
        assert!(card.input_schema.is_object());
        assert_eq!(card.credentials.len(), b.credentials.len());
        assert_eq!(card.pricing.per_hire, b.pricing.per_hire);
        assert_eq!(card.reputation, None);
        assert_eq!(hex::decode(&card.envelope).ok(), Some(m.to_bytes()));
        let json = serde_json::to_value(&card).unwrap_or_default();
        assert_eq!(json["reputation"], Value::Null);
        assert_eq!(
            serde_json::from_value::<AgentCard>(json).ok().as_ref(),
            Some(&card)
        );
    }
}
