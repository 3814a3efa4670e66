//! The hire protocol implemented from spec/ alone: the JavaScript client in
//! `examples/js-client` (js-libp2p, its own canonical CBOR, @noble crypto) checks itself against
//! the spec's vectors (`npm test`), then hires csv-analyst from a real `souk` provider over
//! `/souk/hire/1`, verifies every receipt and the output, settles, and writes a bundle that
//! the Rust verifier (`souk verify`) accepts.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

fn npm(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new("npm")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run npm ({e}): install Node.js 20 or later with npm"))
}

#[test]
fn a_client_written_from_the_spec_in_javascript_hires_verifies_and_settles() {
    let js = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/js-client");
    if !js.join("node_modules").is_dir() {
        let out = npm(&js, &["ci", "--no-audit", "--no-fund"]);
        assert!(out.status.success(), "npm ci: {}", stderr(&out));
    }
    let out = npm(&js, &["test"]);
    assert!(
        out.status.success(),
        "npm test (the JS client against the spec's vectors):\n{}\n{}",
        stdout(&out),
        stderr(&out)
    );

    let tmp = tempdir();
    let pdir = tmp.path().join("provider");
    init(&pdir, false);
    let listen = format!("/ip4/127.0.0.1/tcp/{}", free_port());
    let mut provider = NodeProc::start(
        "provider",
        &pdir,
        &tmp.path().join("p.log"),
        &["--listen", &listen],
    );
    let info = provider.wait_ready();
    let mid = ok(
        &souk(&pdir, &["agent", "publish", path_str(&example_agent())]),
        "agent publish",
    )
    .trim()
    .to_owned();
    let addr = format!(
        "{listen}/p2p/{}",
        info["peer_id"].as_str().unwrap_or_default()
    );
    let input = tmp.path().join("input.json");
    std::fs::write(&input, r#"{"csv": "name,price\na,3\nb,6\n"}"#)
        .unwrap_or_else(|e| panic!("{e}"));
    let bundle = tmp.path().join("hire.souk");
    let state = tmp.path().join("js-state");
    let out = Command::new("node")
        .arg(js.join("hire.mjs"))
        .args(["--provider", &addr, "--manifest", &mid, "--quiet"])
        .arg("--input")
        .arg(&input)
        .arg("--bundle")
        .arg(&bundle)
        .arg("--state-dir")
        .arg(&state)
        .output()
        .unwrap_or_else(|e| panic!("cannot run node ({e}): install Node.js 20 or later"));
    let text = stdout(&out);
    assert!(
        out.status.success(),
        "the JS client failed:\n{text}\n{}",
        stderr(&out)
    );
    let report: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("report is not JSON ({e}): {text}"));
    assert_eq!(report["output"]["rows"], 2, "{report}");
    assert!(
        report["entries_verified"].as_u64().unwrap_or(0) >= 4,
        "{report}"
    );
    let states: Vec<&str> = report["states"]
        .as_array()
        .map(|a| a.iter().filter_map(|s| s.as_str()).collect())
        .unwrap_or_default();
    assert!(states.contains(&"completed"), "{report}");

    // The Rust verifier accepts what the JS client verified; the provider saw it settled.
    let v = ok_json(
        &souk(&pdir, &["verify", path_str(&bundle), "--json"]),
        "souk verify",
    );
    assert_eq!(v["valid"], true, "{v}");
    let hire = report["hire_id"].as_str().unwrap_or_default().to_owned();
    let seen = wait_for("the provider to record the client's verdict", || {
        let r = ok_json(
            &souk(&pdir, &["hire", "status", &hire, "--json"]),
            "hire status",
        );
        (r["verdict"] == "accepted").then_some(r)
    });
    assert_eq!(seen["state"], "completed", "{seen}");
}
