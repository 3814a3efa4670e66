//! `souk mcp` driven by the official MCP Python SDK (`mcp` on PyPI) as an LLM host would
//! drive it: a provider running the example csv-analyst agent and a light client, both real
//! `souk` processes; the SDK's stdio client starts `souk mcp` on the client's data directory
//! and lists tools, searches, shows, hires (with progress), answers a question, settles,
//! verifies and reads a receipts resource (`tests/mcp/client.py`).

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::*;

#[test]
fn an_mcp_host_finds_hires_settles_and_verifies_an_agent() {
    let probe = Command::new("python3")
        .args(["-c", "import mcp"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run python3 ({e}): install Python 3"));
    assert!(
        probe.status.success(),
        "the MCP Python SDK is not installed: run `python3 -m pip install mcp`; .ci/run does \
         this itself"
    );
    let tmp = tempdir();
    let listen = format!("/ip4/127.0.0.1/tcp/{}", free_port());
    let (_provider, _info, _client) = provider_and_light_client(tmp.path(), &listen);
    let pdir = tmp.path().join("provider");
    let cdir = tmp.path().join("client");
    ok(
        &souk(&pdir, &["agent", "publish", path_str(&example_agent())]),
        "agent publish",
    );
    wait_for("the client to find the agent", || {
        let out = souk(&cdir, &["search", "csv", "--json"]);
        stdout(&out).contains("csv-analyst").then_some(())
    });
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mcp/client.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(env!("CARGO_BIN_EXE_souk"))
        .arg(&cdir)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    let report = stdout(&out);
    assert!(
        out.status.success() && report.contains(r#""check": "done""#),
        "the MCP client failed:\n{report}\n{}",
        stderr(&out)
    );
    for check in [
        "list_tools",
        "search_agents",
        "show_agent",
        "hire_agent_refused",
        "hire_agent",
        "hire_status",
        "accept_hire",
        "verify_receipts",
        "answer_question",
        "reject_hire",
        "read_resource",
        "list_hires",
        "unknown_hire",
    ] {
        assert!(
            report.contains(&format!(r#""check": "{check}""#)),
            "{check} missing:\n{report}"
        );
    }

    // The same server over Streamable HTTP, with its bearer token.
    let mut child = souk_cmd()
        .arg("--data-dir")
        .arg(&cdir)
        .args(["mcp", "--http", "127.0.0.1:0", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start souk mcp --http: {e}"));
    let first = child.stdout.take().map(|o| {
        let mut line = String::new();
        let _ = BufReader::new(o).read_line(&mut line);
        line
    });
    let started: serde_json::Value = serde_json::from_str(first.as_deref().unwrap_or(""))
        .unwrap_or_else(|e| panic!("souk mcp --http printed {first:?}: {e}"));
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mcp/http_client.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(started["url"].as_str().unwrap_or_default())
        .arg(started["token_file"].as_str().unwrap_or_default())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    let _ = child.kill();
    let _ = child.wait();
    let report = stdout(&out);
    assert!(
        out.status.success() && report.contains(r#""check": "done""#),
        "the MCP HTTP client failed:\n{report}\n{}",
        stderr(&out)
    );
}
