//! Agent cards (A2A 0.3 `AgentCard`) built from what the node verified: one card per Souk
//! agent, from its signed manifest and verified reputation, and the gateway's own card whose
//! skills are the agents it can hire. The mapping is documented in docs/a2a.md.

use serde_json::{Value, json};

use crate::agent_file::format_amount;
use crate::card::AgentCard;
use crate::service::search::SearchHit;

/// The A2A protocol version the gateway speaks.
pub(super) const PROTOCOL_VERSION: &str = "0.3.0";
/// The extension whose `params` carry the signed manifest's facts and the reputation.
pub(super) const MANIFEST_EXTENSION: &str = "https://souk.dev/a2a/ext/manifest/v1";

/// Input modes: a hire input is JSON; plain text is read as JSON or as a JSON string.
const INPUT_MODES: [&str; 2] = ["application/json", "text/plain"];
/// Output modes: the output is JSON (the receipt bundle is an `application/cbor` file).
const OUTPUT_MODES: [&str; 1] = ["application/json"];

fn security() -> (Value, Value) {
    (
        json!({"souk": {"type": "http", "scheme": "bearer",
            "description": "the content of the node's DATA_DIR/a2a-token"}}),
        json!([{"souk": []}]),
    )
}

/// The path of an agent's JSON-RPC endpoint, from its handle `<provider>/<name>`.
pub(super) fn agent_path(handle: &str) -> String {
    format!("/agents/{handle}")
}

/// The card of one Souk agent.
pub(super) fn agent_card(base: &str, c: &AgentCard) -> Value {
    let (schemes, security) = security();
    let skills: Vec<Value> = if c.capabilities.is_empty() {
        vec![json!({"id": c.name, "name": c.name, "description": c.description, "tags": [c.name]})]
    } else {
        c.capabilities
            .iter()
            .map(|cap| {
                json!({"id": cap, "name": cap, "description": c.description, "tags": [cap],
                    "inputModes": INPUT_MODES, "outputModes": OUTPUT_MODES})
            })
            .collect()
    };
    let reputation = c.reputation.as_ref().map(|r| {
        json!({
            "settled": r.figures.settled,
            "accepted": r.figures.accepted,
            "rejected": r.figures.rejected,
            "distinct_clients": r.figures.distinct_clients,
            "success_lower_bound": r.figures.success_lower_bound,
        })
    });
    json!({
        "protocolVersion": PROTOCOL_VERSION,
        "name": c.name,
        "description": c.description,
        "url": format!("{base}{}", agent_path(&c.handle)),
        "preferredTransport": "JSONRPC",
        "version": c.seq.to_string(),
        "provider": {"organization": c.provider, "url": base},
        "capabilities": {
            "streaming": true,
            "pushNotifications": false,
            "stateTransitionHistory": false,
            "extensions": [{
                "uri": MANIFEST_EXTENSION,
                "description": "The agent's signed Souk manifest and its verified reputation",
                "required": false,
                "params": {
                    "handle": c.handle,
                    "manifest_id": c.id,
                    "provider": c.provider,
                    "price": format_amount(c.pricing.per_hire),
                    "price_per_hour": format_amount(c.pricing.per_hour),
                    "currency": c.pricing.currency,
                    "max_duration_ms": c.limits.max_duration_ms,
                    "hosts": c.hosts,
                    "input_schema": c.input_schema,
                    "output_schema": c.output_schema,
                    "runtime_digest": c.runtime_digest,
                    "expires_at": c.expires_at,
                    "reputation": reputation,
                },
            }],
        },
        "defaultInputModes": INPUT_MODES,
        "defaultOutputModes": OUTPUT_MODES,
        "skills": skills,
        "securitySchemes": schemes,
        "security": security,
    })
}

/// The gateway's card: one skill per agent it can hire (id = the agent's handle).
pub(super) fn gateway_card(base: &str, hits: &[SearchHit]) -> Value {
    let (schemes, security) = security();
    let skills: Vec<Value> = hits
        .iter()
        .map(|h| {
            let mut tags = h.capabilities.clone();
            tags.push("souk".into());
            json!({
                "id": h.handle,
                "name": h.name,
                "description": format!(
                    "{} ({} {} per hire; its own card: {base}{}/.well-known/agent-card.json)",
                    h.description,
                    format_amount(h.per_hire),
                    h.currency,
                    agent_path(&h.handle)
                ),
                "tags": tags,
                "inputModes": INPUT_MODES,
                "outputModes": OUTPUT_MODES,
            })
        })
        .collect();
    json!({
        "protocolVersion": PROTOCOL_VERSION,
        "name": "Souk gateway",
        "description": "Hire agents of the Souk network. Name the agent (a skill id) in the message's metadata.souk.agent, or use the agent's own card. Every task is a Souk hire with signed, verifiable receipts.",
        "url": format!("{base}/"),
        "preferredTransport": "JSONRPC",
        "version": env!("CARGO_PKG_VERSION"),
        "provider": {"organization": "Souk", "url": base},
        "capabilities": {"streaming": true, "pushNotifications": false, "stateTransitionHistory": false},
        "defaultInputModes": INPUT_MODES,
        "defaultOutputModes": OUTPUT_MODES,
        "skills": skills,
        "securitySchemes": schemes,
        "security": security,
    })
}
