//! A client holds on to an agent across re-announcements and provider restarts, with the
//! real `souk` binary: the agent is hired by its short handle, by a 16-digit id prefix (as
//! `souk search` prints it), and by a full id saved before the provider re-announced and
//! before it restarted (manifest ids do not depend on liveness: spec/manifest.md). Once the
//! provider changes the agent, the saved id is declined `superseded` with the current id,
//! which the CLI shows.
//!
//! Every wait polls a condition with a deadline; background nodes are owned by [`NodeProc`].
#![cfg(unix)]

mod common;

use std::path::Path;

use common::*;
use serde_json::Value;

/// Copies the example agent to `to` (a directory), so the test may change it.
fn copy_agent(to: &Path) {
    let from = example_agent();
    let from = from.parent().unwrap_or_else(|| panic!("agent dir"));
    std::fs::create_dir_all(to.join("schema")).unwrap_or_else(|e| panic!("{e}"));
    for file in [
        "agent.toml",
        "agent.py",
        "schema/input.json",
        "schema/output.json",
    ] {
        std::fs::copy(from.join(file), to.join(file))
            .unwrap_or_else(|e| panic!("copy {file}: {e}"));
    }
    // The SDK stays where it is: name it by its absolute path.
    let toml = to.join("agent.toml");
    let sdk = from.join("../../sdk/python/src");
    let text = std::fs::read_to_string(&toml)
        .unwrap_or_else(|e| panic!("{e}"))
        .replace(
            "\"../../sdk/python/src\"",
            &format!("{:?}", sdk.display().to_string()),
        );
    assert!(text.contains(&sdk.display().to_string()), "{text}");
    std::fs::write(&toml, text).unwrap_or_else(|e| panic!("{e}"));
}

fn hire_output(client: &Path, agent: &str, input: &str) -> Value {
    let out = souk(client, &["hire", agent, "--input", input, "--wait"]);
    let text = ok(&out, &format!("hire {agent} --wait"));
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("stdout is not the output ({e}): {text:?}"))
}

#[test]
fn saved_ids_and_handles_survive_reannouncement_and_restart_until_the_agent_changes() {
    let tmp = tempdir();
    let root = tmp.path();
    let listen = format!("/ip4/127.0.0.1/tcp/{}", free_port());
    let (mut provider, info, mut client) = provider_and_light_client(root, &listen);
    let pdir = root.join("provider");
    let cdir = root.join("client");
    let agent_dir = root.join("agent");
    copy_agent(&agent_dir);
    let toml = agent_dir.join("agent.toml");
    let input = root.join("input.json");
    std::fs::write(&input, r#"{"csv": "name,price\na,3\nb,6\n"}"#)
        .unwrap_or_else(|e| panic!("{e}"));
    let input = path_str(&input).to_owned();

    let id = ok(
        &souk(&pdir, &["agent", "publish", path_str(&toml)]),
        "publish",
    )
    .trim()
    .to_owned();
    let hits = wait_for("the client to find the agent", || {
        client.assert_running();
        let hits: Value =
            serde_json::from_slice(&souk(&cdir, &["search", "csv", "--json"]).stdout).ok()?;
        hits.as_array()
            .is_some_and(|a| a.iter().any(|h| h["id"] == id.as_str()))
            .then_some(hits)
    });
    let node_id = info["node_id"].as_str().unwrap_or_default().to_owned();
    assert_eq!(hits[0]["provider"], node_id.as_str(), "{hits}");

    // The text output shows a short handle and a 16-digit id: both name the agent.
    let text = ok(&souk(&cdir, &["search", "csv"]), "search");
    let short_handle = format!("{}/csv-analyst", &node_id[..16]);
    assert!(text.contains(&short_handle), "{text}");
    assert!(text.contains(&id[..16]), "{text}");
    let card = ok_json(
        &souk(&cdir, &["agent", "show", &short_handle, "--json"]),
        "agent show by handle",
    );
    assert_eq!(card["id"], id.as_str(), "{card}");
    let card = ok_json(
        &souk(
            &cdir,
            &["agent", "show", &format!("{node_id}/csv-analyst"), "--json"],
        ),
        "agent show by the whole handle",
    );
    assert_eq!(card["id"], id.as_str(), "{card}");

    assert_eq!(hire_output(&cdir, &short_handle, &input)["rows"], 2);
    assert_eq!(hire_output(&cdir, &id[..16], &input)["rows"], 2);

    // A re-announcement (publishing the unchanged agent again) keeps the id.
    let again = ok(
        &souk(&pdir, &["agent", "publish", path_str(&toml)]),
        "publish again",
    )
    .trim()
    .to_owned();
    assert_eq!(again, id, "re-announcing an unchanged agent keeps its id");

    // A provider restart re-announces it under the same id; the saved id still hires.
    provider.terminate();
    let mut provider = NodeProc::start(
        "provider-again",
        &pdir,
        &root.join("provider-again.log"),
        &["--listen", &listen],
    );
    provider.wait_ready();
    let listed = ok_json(&souk(&pdir, &["agent", "list", "--json"]), "agent list");
    assert_eq!(listed[0]["manifest_id"], id.as_str(), "{listed}");
    let output = wait_for("the saved id to hire after the provider restarted", || {
        provider.assert_running();
        let out = souk(&cdir, &["hire", &id, "--input", &input, "--wait"]);
        out.status
            .success()
            .then(|| serde_json::from_slice::<Value>(&out.stdout).ok())
            .flatten()
    });
    assert_eq!(output["rows"], 2);

    // The provider changes the agent: a new id; the old one is declined `superseded`, and the
    // error names the current id.
    let text = std::fs::read_to_string(&toml).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        &toml,
        text.replace("Reads a CSV file", "Reads a CSV file quickly"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let changed = ok(
        &souk(&pdir, &["agent", "publish", path_str(&toml)]),
        "publish changed",
    )
    .trim()
    .to_owned();
    assert_ne!(changed, id, "a changed agent gets a new id");
    let out = souk(&cdir, &["--json", "hire", &id, "--input", &input]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    let v: Value = serde_json::from_str(err.trim()).unwrap_or_else(|e| panic!("{e}: {err}"));
    assert_eq!(v["decline_reason"], "superseded", "{v}");
    assert_eq!(v["current_manifest"], changed.as_str(), "{v}");
    let out = souk(&cdir, &["hire", &id, "--input", &input]);
    assert_failure(&out, 1, &["superseded"]);
    assert!(
        stderr(&out).contains(&format!("its current manifest is {changed}")),
        "{}",
        stderr(&out)
    );

    // The handle follows the agent to its current manifest.
    let card = wait_for("the client to see the changed agent", || {
        let out = souk(&cdir, &["search", "quickly", "--json"]);
        stdout(&out).contains(&changed).then_some(())?;
        let card: Value = serde_json::from_slice(
            &souk(&cdir, &["agent", "show", &short_handle, "--json"]).stdout,
        )
        .ok()?;
        (card["id"] == changed.as_str()).then_some(card)
    });
    assert_eq!(card["id"], changed.as_str());
    assert_eq!(hire_output(&cdir, &short_handle, &input)["rows"], 2);
    client.assert_running();
}
