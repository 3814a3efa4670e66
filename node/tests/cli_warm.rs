//! Warm starts with real processes: an agent whose file asks for `warm = 1` has a sandboxed
//! process booted before any hire (it wrote its boot marker); a hire takes it (the agent
//! learns its hire from the `start` message, has no `SOUK_HIRE_ID`), the node boots a new
//! one for the next hire, and no process serves two hires.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use serde_json::Value;

/// Marks its boot, then waits for its hire and reports what it saw.
const AGENT_PY: &str = r#"import json, os, secrets, sys
open("booted", "w").close()
boot = secrets.token_hex(8)
start = json.loads(sys.stdin.readline())
out = {"hire": start["hire_id"], "env_hire": os.environ.get("SOUK_HIRE_ID"), "boot": boot,
       "input": start["input"]}
sys.stdout.write(json.dumps({"type": "result", "output": out}) + "\n")
sys.stdout.flush()
"#;

const AGENT_TOML: &str = r#"name = "warmy"
description = "Reports how it was started (warm start test agent)."
capabilities = ["testing"]
input_schema = { type = "object" }
output_schema = { type = "object" }
hosts = []

[pricing]
currency = "USD"
per_hire = "0.01"
per_hour = "0"

[limits]
max_duration_secs = 60
max_concurrency = 2
max_input_bytes = 4096

[run]
command = ["python3", "agent.py"]
warm = 1
"#;

/// The booted warm slots under the provider's work directory.
fn booted_slots(work: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(work.join(".warm"))
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| p.join("booted").exists())
                .collect()
        })
        .unwrap_or_default()
}

fn hire_output(client: &Path, handle: &str, input: &Path) -> (String, Value) {
    let text = ok(
        &souk(
            client,
            &["hire", handle, "--input", path_str(input), "--wait"],
        ),
        "hire --wait",
    );
    let hires = ok_json(&souk(client, &["hires", "--json"]), "hires");
    let newest = hires
        .as_array()
        .and_then(|a| a.iter().max_by_key(|h| h["created_at"].as_u64()))
        .cloned()
        .unwrap_or_default();
    let id = newest["hire_id"].as_str().unwrap_or_default().to_owned();
    assert_eq!(newest["state"], "completed", "{text}\n{newest}");
    let out = ok_json(&souk(client, &["hire", "output", &id]), "hire output");
    (id, out)
}

#[test]
fn a_warm_process_serves_one_hire_and_is_replaced() {
    let tmp = tempdir();
    let listen = format!("/ip4/127.0.0.1/tcp/{}", free_port());
    let (provider, info, _client) = provider_and_light_client(tmp.path(), &listen);
    let pdir = tmp.path().join("provider");
    let cdir = tmp.path().join("client");
    let work = PathBuf::from(format!("{}-work", pdir.display()));
    publish_found(tmp.path(), &pdir, &cdir, (AGENT_PY, AGENT_TOML), "warm");
    let handle = format!("{}/warmy", info["node_id"].as_str().unwrap_or_default());
    let input = tmp.path().join("in.json");
    std::fs::write(&input, r#"{"n": 1}"#).unwrap_or_else(|e| panic!("{e}"));

    let first_slot = wait_for("a warm process to boot", || {
        booted_slots(&work).into_iter().next()
    });
    let (id1, out1) = hire_output(&cdir, &handle, &input);
    assert_eq!(out1["hire"], id1.as_str(), "{out1}");
    assert_eq!(
        out1["env_hire"],
        Value::Null,
        "a warm process has no SOUK_HIRE_ID: {out1}"
    );
    assert_eq!(out1["input"]["n"], 1);
    // It became the hire's working directory (its boot marker moved with it).
    assert!(!first_slot.exists());
    assert!(work.join(&id1).join("booted").exists());

    // A new process boots for the next hire; the used one is never used again.
    wait_for("another warm process to boot", || {
        booted_slots(&work).into_iter().next()
    });
    let (id2, out2) = hire_output(&cdir, &handle, &input);
    assert_ne!(id1, id2);
    assert_eq!(out2["hire"], id2.as_str());
    assert_ne!(out1["boot"], out2["boot"], "one process served two hires");
    assert!(work.join(&id2).join("booted").exists());
    drop(provider);
}
