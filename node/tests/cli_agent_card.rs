//! A light client finding, inspecting and (not) hiring an agent published on a full node, with
//! the real `souk` binary: search by a word prefix and by provider, `souk agent show` by an
//! id prefix (text and `--json`), and a hire refused locally because its input breaks the
//! agent's input schema, with the offending field named.
//!
//! Every wait polls a condition with a deadline; background nodes are owned by [`NodeProc`].
#![cfg(unix)]

mod common;

use common::*;
use serde_json::Value;

#[test]
fn a_light_client_finds_shows_and_checks_input_before_hiring() {
    let tmp = tempdir();
    let full_dir = tmp.path().join("full");
    let light_dir = tmp.path().join("light");
    let provider = init(&full_dir, false);
    init(&light_dir, true);

    let mut full = NodeProc::start(
        "full",
        &full_dir,
        &tmp.path().join("full.log"),
        &["--listen", LISTEN],
    );
    let info = full.wait_ready();
    let listen = info["listen_addrs"][0].as_str().unwrap_or_default();
    let peer_id = info["peer_id"].as_str().unwrap_or_default();
    let bootstrap = format!("{listen}/p2p/{peer_id}");
    let published = ok(
        &souk(&full_dir, &["agent", "publish", path_str(&example_agent())]),
        "agent publish",
    )
    .trim()
    .to_owned();
    let mut light = NodeProc::start(
        "light",
        &light_dir,
        &tmp.path().join("light.log"),
        &["--light", "--bootstrap", &bootstrap],
    );
    light.wait_ready();

    // `analys` is no word of csv-analyst's manifest, only the start of "analyst": a prefix
    // search on the light client finds the agent on the full node.
    let hits = wait_for("the light client to find csv-analyst by a prefix", || {
        light.assert_running();
        let out = souk(&light_dir, &["search", "--json", "ANALYS"]);
        let hits: Value = serde_json::from_slice(&out.stdout).ok()?;
        (out.status.success() && hits.as_array().is_some_and(|a| a.len() == 1)).then_some(hits)
    });
    assert_eq!(hits[0]["id"], published.as_str(), "{hits}");
    assert_eq!(hits[0]["provider"], provider.trim(), "{hits}");
    // An inner part of a word ("statistics") finds it too.
    let hits = ok_json(
        &souk(&light_dir, &["search", "--json", "tatist"]),
        "search by an inner part of a word",
    );
    assert_eq!(hits[0]["id"], published.as_str(), "{hits}");

    // --provider: the provider's id prefix keeps it, another provider's drops it, and a
    // prefix too short to mean anything is a usage error.
    let own = &provider.trim()[..16];
    let hits = ok_json(
        &souk(&light_dir, &["search", "--json", "--provider", own, "csv"]),
        "search --provider (own)",
    );
    assert_eq!(hits[0]["id"], published.as_str(), "{hits}");
    let other = if own.ends_with('a') {
        "soukbbbbbbbbbbbb"
    } else {
        "soukaaaaaaaaaaaa"
    };
    let hits = ok_json(
        &souk(
            &light_dir,
            &["search", "--json", "--provider", other, "csv"],
        ),
        "search --provider (other)",
    );
    assert_eq!(hits, serde_json::json!([]));
    assert_failure(
        &souk(&light_dir, &["search", "--provider", "souk12", "csv"]),
        2,
        &["--provider"],
    );

    // The agent card, by the 16-digit id prefix search prints.
    let short = &published[..16];
    let card = ok(&souk(&light_dir, &["agent", "show", short]), "agent show");
    for want in [
        "csv-analyst",
        &published,
        provider.trim(),
        "Reads a CSV file",
        "analytics, csv, report",
        "0.5 USD per hire",
        "advisory",
        "input schema:",
        "\"maxLength\": 1,",
        "output schema:",
        "offered until",
        "reputation    no settled hires yet",
    ] {
        assert!(card.contains(want), "agent show lacks {want:?}:\n{card}");
    }
    let card = ok_json(
        &souk(&light_dir, &["agent", "show", "--json", short]),
        "agent show --json",
    );
    assert_eq!(card["id"], published.as_str());
    assert_eq!(card["input_schema"]["properties"]["csv"]["type"], "string");
    assert_eq!(card["pricing"]["per_hire"], 500_000);
    // Figures the light client computed from records it fetched and verified: none yet.
    assert_eq!(card["reputation"]["settled"], 0, "{card}");
    assert_eq!(card["reputation"]["success_lower_bound"], 0.0, "{card}");
    assert_eq!(card["flagged"], Value::Null, "{card}");
    assert!(
        card["handle"]
            .as_str()
            .is_some_and(|h| h.ends_with("/csv-analyst") && h.starts_with(provider.trim())),
        "{card}"
    );
    assert!(card["envelope"].as_str().is_some_and(|e| e.len() > 100));
    assert_failure(
        &souk(&light_dir, &["agent", "show", "abc"]),
        2,
        &["manifest id"],
    );
    assert_failure(
        &souk(&light_dir, &["agent", "show", "0000000000000000"]),
        1,
        &["no agent"],
    );

    // A hire whose input breaks the input schema is refused before the provider is asked.
    let bad = tmp.path().join("bad.json");
    std::fs::write(&bad, r#"{"csv": 42, "delimiter": ";;"}"#)
        .unwrap_or_else(|e| panic!("write input: {e}"));
    let out = souk(&light_dir, &["hire", &published, "--input", path_str(&bad)]);
    let msg = assert_failure(&out, 1, &["the input does not match its schema"]);
    for want in [
        "at /csv:",
        "(schema rule /properties/csv/type)",
        "at /delimiter:",
        "(schema rule /properties/delimiter/maxLength)",
    ] {
        assert!(msg.contains(want), "{want:?} not in {msg}");
    }
    let out = souk(
        &light_dir,
        &["hire", "--json", &published, "--input", path_str(&bad)],
    );
    assert_eq!(out.status.code(), Some(1));
    let err: Value = serde_json::from_str(stderr(&out).trim())
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", stderr(&out)));
    assert_eq!(err["api_code"], "schema-mismatch", "{err}");
    // Nothing reached the provider: it holds no hire.
    let hires = ok_json(&souk(&full_dir, &["hires", "--json"]), "provider hires");
    assert_eq!(hires, serde_json::json!([]), "{hires}");

    for node in [&mut light, &mut full] {
        let status = node.terminate();
        assert!(
            status.success(),
            "{}: {status}; log:\n{}",
            node.name,
            node.log()
        );
    }
}
