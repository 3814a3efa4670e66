//! What the kit sends: fresh manifests signed by its own keys (a node admits only fresh
//! ones, so the fixed vectors of spec/vectors cannot be replayed for admission), one invalid
//! variant per admission rule of spec/discovery.md, and the test agent a node under test
//! offers for the hire checks.

use souk_node::agent_file::AgentSpec;
use souk_protocol::identity::Keypair;
use souk_protocol::manifest::Manifest;
use souk_protocol::signed::Signed;

/// A manifest body of agent `name` by `key`, valid from `issued` to `expires` (ms).
pub(super) fn body(
    key: &Keypair,
    name: &str,
    word: &str,
    seq: u64,
    issued: u64,
    expires: u64,
) -> anyhow::Result<Manifest> {
    let spec: AgentSpec = serde_json::from_value(serde_json::json!({
        "name": name,
        "description": format!("Souk conformance kit probe {word}"),
        "capabilities": ["conformance"],
        "input_schema": "{\"type\":\"object\"}",
        "output_schema": "{\"type\":\"object\"}",
        "hosts": [],
        "tools": [],
        "credentials": [],
        "currency": "USD",
        "per_hire": 1000,
        "per_hour": 0,
        "max_duration_ms": 60_000,
        "max_concurrency": 1,
        "max_input_bytes": 4096,
        "runtime_digest": "00".repeat(32),
        "run": {"command": ["true"], "workdir": "/"},
    }))?;
    Ok(spec.to_manifest(key.id(), seq, [7; 32], issued, expires)?)
}

/// A fresh, valid manifest envelope.
pub(super) fn valid(
    key: &Keypair,
    name: &str,
    word: &str,
    seq: u64,
    now: u64,
) -> anyhow::Result<Signed<Manifest>> {
    Ok(Signed::sign(
        body(key, name, word, seq, now, now + 600_000)?,
        key,
    ))
}

/// One invalid envelope per admission rule: (what, the rule it breaks, the bytes).
pub(super) fn invalid(
    key: &Keypair,
    other: &Keypair,
    now: u64,
) -> anyhow::Result<Vec<(&'static str, &'static str, Vec<u8>)>> {
    let good = valid(key, "probe-invalid", "invalid", 1, now)?.to_bytes();
    let mut bad_sig = good.clone();
    if let Some(last) = bad_sig.last_mut() {
        *last ^= 0x01;
    }
    let expired = Signed::sign(
        body(
            key,
            "probe-expired",
            "expired",
            1,
            now - 1_200_000,
            now - 600_000,
        )?,
        key,
    )
    .to_bytes();
    let future = Signed::sign(
        body(
            key,
            "probe-future",
            "future",
            1,
            now + 3_600_000,
            now + 7_200_000,
        )?,
        key,
    )
    .to_bytes();
    // Signed by another key than the provider it names.
    let wrong_signer = Signed::sign(
        body(key, "probe-signer", "signer", 1, now, now + 600_000)?,
        other,
    )
    .to_bytes();
    let mut bad_name = body(key, "probe-name", "name", 1, now, now + 600_000)?;
    bad_name.name = "Not_A_Valid_Name".into();
    let bad_content = Signed::sign(bad_name, key).to_bytes();
    let mut truncated = good.clone();
    truncated.truncate(good.len() / 2);
    // Unique bytes per run: gossipsub drops a message id it has seen before judging it.
    let mut oversized = vec![0xa0; souk_protocol::discovery::MAX_ENVELOPE_LEN + 1];
    oversized[..32].copy_from_slice(key.id().as_bytes());
    Ok(vec![
        (
            "a flipped signature bit",
            "discovery.md admission step 3 (M1 signature)",
            bad_sig,
        ),
        (
            "signed by a key other than the provider's",
            "discovery.md admission step 3",
            wrong_signer,
        ),
        (
            "a name breaking M2",
            "discovery.md admission step 4, manifest.md M2",
            bad_content,
        ),
        (
            "expired",
            "discovery.md admission step 5 (freshness)",
            expired,
        ),
        (
            "issued an hour in the future",
            "discovery.md admission step 5 (clock skew 300 s)",
            future,
        ),
        (
            "truncated CBOR",
            "discovery.md admission step 2 (M1 decoding)",
            truncated,
        ),
        (
            "over MAX_ENVELOPE_LEN",
            "discovery.md admission step 1 (65 664 bytes)",
            oversized,
        ),
    ])
}

/// The test agent's program: echoes its input, asks nothing.
pub(super) const AGENT_PY: &str = r#"import json, sys
start = json.loads(sys.stdin.readline())
sys.stdout.write(json.dumps({"type": "decision", "text": "echo"}) + "\n")
sys.stdout.write(json.dumps({"type": "result", "output": {"echo": start["input"]}}) + "\n")
sys.stdout.flush()
"#;

/// The test agent's file.
pub(super) const AGENT_TOML: &str = r#"name = "conformance-echo"
description = "Echoes its input (the Souk conformance kit's test agent)."
capabilities = ["conformance"]
input_schema = { type = "object" }
output_schema = { type = "object" }
hosts = []

[pricing]
currency = "USD"
per_hire = "0.01"
per_hour = "0"

[limits]
max_duration_secs = 60
max_concurrency = 4
max_input_bytes = 4096

[run]
command = ["python3", "agent.py"]
"#;
