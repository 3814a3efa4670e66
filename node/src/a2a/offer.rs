//! The other direction: an existing A2A agent offered on Souk. From the agent's card (A2A 0.3,
//! or a 1.x card with a 0.3 JSON-RPC interface) this builds the package the provider's node
//! runs: an agent file whose only host is the A2A agent's, and the souk-agent SDK's A2A
//! bridge (`souk_agent.a2a_bridge`) as the program. The bridge runs in the hire's sandbox and
//! reaches the agent through the egress proxy, so every message, status and artifact is a
//! signed receipt and every HTTP call a `network-call` entry. The card is untrusted input: every
//! field is checked or rewritten to the manifest rules, and the file is serialized by `toml`.

use serde_json::{Value, json};
use souk_protocol::manifest::{is_valid_capability, is_valid_host, is_valid_name};

/// Why a card cannot be offered.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CardError {
    /// Not an agent card.
    #[error("not an A2A agent card: {0}")]
    NotACard(String),
    /// The card offers no JSON-RPC endpoint of protocol 0.3.
    #[error(
        "the card offers no A2A 0.3 JSON-RPC endpoint (the bridge speaks A2A 0.3 over JSON-RPC)"
    )]
    NoEndpoint,
    /// The endpoint is not `https://`: the egress proxy speaks TLS to every host.
    #[error(
        "the agent's URL {0} is not https://: the node's egress proxy opens TLS to every host, so the A2A agent must serve HTTPS"
    )]
    NotHttps(String),
    /// The endpoint's host cannot be a manifest host.
    #[error(
        "the agent's URL {0} has no usable host name (a lowercase DNS name or IP address, optional port)"
    )]
    BadHost(String),
    /// No valid agent name could be made.
    #[error("cannot make an agent name from {0:?}: pass --name (a-z, 0-9 and '-')")]
    BadName(String),
}

/// What a provider offers for an A2A agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct A2aOffer {
    /// The Souk agent name.
    pub name: String,
    /// The description (the card's, with where it runs).
    pub description: String,
    /// Capability tags (from the card's skills).
    pub capabilities: Vec<String>,
    /// The JSON-RPC endpoint (`https://...`).
    pub endpoint: String,
    /// The manifest host (`host` or `host:port`, port omitted when 443).
    pub host: String,
}

/// A string field of the card, bounded.
fn text(card: &Value, key: &str, max: usize) -> Option<String> {
    card.get(key)
        .and_then(Value::as_str)
        .map(|s| s.chars().filter(|c| !c.is_control()).take(max).collect())
}

/// `Some Name!` -> `some-name`.
fn slug(s: &str, max: usize) -> String {
    let mut out = String::new();
    for c in s.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    let mut out: String = out.chars().take(max).collect();
    while out.ends_with('-') {
        out.pop();
    }
    out
}

/// The card's A2A 0.3 JSON-RPC endpoint.
fn endpoint(card: &Value) -> Option<String> {
    let v03 = |v: Option<&str>| v.is_none_or(|v| v == "0.3" || v.starts_with("0.3."));
    if let Some(url) = card.get("url").and_then(Value::as_str) {
        let transport = card
            .get("preferredTransport")
            .and_then(Value::as_str)
            .unwrap_or("JSONRPC");
        if transport == "JSONRPC" && v03(card.get("protocolVersion").and_then(Value::as_str)) {
            return Some(url.to_owned());
        }
        for i in card
            .get("additionalInterfaces")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if i.get("transport").and_then(Value::as_str) == Some("JSONRPC")
                && v03(card.get("protocolVersion").and_then(Value::as_str))
            {
                return i.get("url").and_then(Value::as_str).map(str::to_owned);
            }
        }
    }
    card.get("supportedInterfaces")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|i| {
            i.get("protocolBinding").and_then(Value::as_str) == Some("JSONRPC")
                && i.get("protocolVersion")
                    .and_then(Value::as_str)
                    .is_some_and(|v| v03(Some(v)))
        })
        .and_then(|i| i.get("url").and_then(Value::as_str).map(str::to_owned))
}

/// The manifest host of an `https://` URL.
fn host_of(url: &str) -> Result<String, CardError> {
    let rest = url
        .strip_prefix("https://")
        .ok_or_else(|| CardError::NotHttps(url.to_owned()))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.contains('@') {
        return Err(CardError::BadHost(url.to_owned()));
    }
    let host = authority.to_ascii_lowercase();
    let host = host.strip_suffix(":443").unwrap_or(&host).to_owned();
    if is_valid_host(&host) {
        Ok(host)
    } else {
        Err(CardError::BadHost(url.to_owned()))
    }
}

impl A2aOffer {
    /// Reads an agent card; `name` overrides the name made from the card's.
    ///
    /// # Errors
    ///
    /// When the card is not one, has no A2A 0.3 JSON-RPC endpoint over HTTPS, or no name can be
    /// made.
    pub fn from_card(card: &Value, name: Option<&str>) -> Result<Self, CardError> {
        if !card.is_object() {
            return Err(CardError::NotACard("not a JSON object".into()));
        }
        let card_name =
            text(card, "name", 200).ok_or_else(|| CardError::NotACard("no name".into()))?;
        let name = match name {
            Some(n) => n.to_owned(),
            None => slug(&card_name, 64),
        };
        if !is_valid_name(&name, 64) {
            return Err(CardError::BadName(name));
        }
        let endpoint = endpoint(card).ok_or(CardError::NoEndpoint)?;
        if endpoint.len() > 2048 {
            return Err(CardError::BadHost(endpoint.chars().take(64).collect()));
        }
        let host = host_of(&endpoint)?;
        let mut capabilities = vec!["a2a".to_owned()];
        for skill in card
            .get("skills")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let tags = skill
                .get("tags")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str);
            for t in skill
                .get("id")
                .and_then(Value::as_str)
                .into_iter()
                .chain(tags)
            {
                let tag = slug(t, 48);
                if is_valid_capability(&tag) && !capabilities.contains(&tag) {
                    capabilities.push(tag);
                }
            }
            if capabilities.len() >= 16 {
                break;
            }
        }
        capabilities.truncate(16);
        let about = text(card, "description", 1500).unwrap_or_default();
        let description = format!(
            "{card_name}: {about} (an A2A agent at {endpoint}, offered through Souk: every message and artifact is a signed receipt)"
        );
        Ok(Self {
            name,
            description,
            capabilities,
            endpoint,
            host,
        })
    }

    /// The agent file (TOML) of the offer, its program `bridge.py` and price.
    pub fn agent_toml(&self, per_hire: &str, currency: &str, max_duration_secs: u64) -> String {
        let file = json!({
            "name": self.name,
            "description": self.description,
            "capabilities": self.capabilities,
            "input_schema": "schema/input.json",
            "output_schema": "schema/output.json",
            "hosts": [self.host],
            "tools": [
                {"name": "a2a-message-send", "description": "message/send to the A2A agent"},
                {"name": "a2a-tasks-get", "description": "tasks/get on the A2A agent"},
                {"name": "a2a-tasks-cancel", "description": "tasks/cancel on the A2A agent"},
            ],
            "pricing": {"currency": currency, "per_hire": per_hire, "per_hour": "0"},
            "limits": {"max_duration_secs": max_duration_secs, "max_concurrency": 4,
                "max_input_bytes": 1_048_576},
            "run": {"command": ["python3", "bridge.py", self.endpoint], "workdir": "."},
        });
        let header = "# Made by `souk agent publish --a2a`: an A2A agent offered on Souk through the\n\
                      # souk-agent SDK's A2A bridge (docs/a2a.md). Edit and republish with\n\
                      # `souk agent publish agent.toml`.\n";
        match toml::to_string(&file) {
            Ok(body) => format!("{header}{body}"),
            // A JSON object of strings, numbers and arrays always serializes.
            Err(e) => format!("{header}# cannot serialize: {e}\n"),
        }
    }
}

/// The input schema of an offered A2A agent: any JSON (an object is sent as a data part, a
/// string as a text part, any other value as a text part holding its JSON).
pub const INPUT_SCHEMA: &str = r#"{
  "description": "Sent to the A2A agent as one message part: an object as data, a string as text, any other JSON value as text holding its JSON."
}
"#;

/// The output schema of an offered A2A agent (the bridge's result).
pub const OUTPUT_SCHEMA: &str = r#"{
  "type": "object",
  "required": ["a2a_task", "state", "data", "text", "artifacts"],
  "properties": {
    "a2a_task": {"type": ["string", "null"], "description": "the A2A task id (null: the agent answered with a message)"},
    "state": {"const": "completed"},
    "data": {"description": "the first data part of the artifacts, or null"},
    "text": {"type": "string", "description": "all text parts, joined by newlines"},
    "artifacts": {"type": "array"}
  }
}
"#;

/// The program: the SDK's bridge, pointed at the agent.
pub const BRIDGE_PY: &str = r#"#!/usr/bin/env python3
"""An A2A agent offered on Souk: the souk-agent SDK's A2A bridge (souk_agent/a2a_bridge.py),
pointed at the URL given as the first argument (agent.toml's run.command)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from souk_agent.a2a_bridge import main  # noqa: E402

if __name__ == "__main__":
    main(sys.argv[1])
"#;

#[cfg(test)]
mod tests {
    use super::*;

    fn card(url: &str) -> Value {
        json!({"protocolVersion": "0.3.0", "name": "Echo Agent!", "description": "echoes",
            "url": url, "preferredTransport": "JSONRPC",
            "skills": [{"id": "echo", "name": "Echo", "description": "d", "tags": ["Echo", "Text Tools"]}]})
    }

    #[test]
    fn a_card_becomes_an_offer_with_one_host() {
        let o = A2aOffer::from_card(&card("https://A2A.example.test:8443/rpc"), None);
        let o = o.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(o.name, "echo-agent");
        assert_eq!(o.host, "a2a.example.test:8443");
        assert_eq!(o.capabilities, vec!["a2a", "echo", "text-tools"]);
        let std = A2aOffer::from_card(&card("https://a2a.example.test:443/"), Some("mine"));
        assert_eq!(
            std.map(|o| (o.name, o.host)),
            Ok(("mine".into(), "a2a.example.test".into()))
        );
        let toml_text = o.agent_toml("0.25", "USD", 600);
        let parsed: toml::Value = toml::from_str(&toml_text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(parsed["hosts"][0].as_str(), Some("a2a.example.test:8443"));
        assert_eq!(
            parsed["run"]["command"][2].as_str(),
            Some("https://A2A.example.test:8443/rpc")
        );
    }

    #[test]
    fn cards_that_cannot_be_offered_are_refused_with_the_reason() {
        assert!(matches!(
            A2aOffer::from_card(&card("http://127.0.0.1:9/"), None),
            Err(CardError::NotHttps(_))
        ));
        assert!(matches!(
            A2aOffer::from_card(&card("https://user@evil.test/"), None),
            Err(CardError::BadHost(_))
        ));
        assert!(matches!(
            A2aOffer::from_card(&card("https://ex ample/"), None),
            Err(CardError::BadHost(_))
        ));
        let mut v1 = card("https://a.test/");
        v1["protocolVersion"] = json!("1.0");
        assert_eq!(A2aOffer::from_card(&v1, None), Err(CardError::NoEndpoint));
        let v1_with_03 = json!({"name": "x", "supportedInterfaces": [
            {"url": "https://a.test/v1", "protocolBinding": "JSONRPC", "protocolVersion": "1.0"},
            {"url": "https://a.test/v03", "protocolBinding": "JSONRPC", "protocolVersion": "0.3"}]});
        assert_eq!(
            A2aOffer::from_card(&v1_with_03, None).map(|o| o.endpoint),
            Ok("https://a.test/v03".into())
        );
        assert!(matches!(
            A2aOffer::from_card(&json!({"name": "!!!", "url": "https://a.test/"}), None),
            Err(CardError::BadName(_))
        ));
        assert!(matches!(
            A2aOffer::from_card(&json!([]), None),
            Err(CardError::NotACard(_))
        ));
    }
}
