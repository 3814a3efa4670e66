//! `kill -9` of a provider while its sandboxed agent runs: the agent dies with the node (no
//! orphan keeps working), and the restarted node resumes the hire from its checkpoint with
//! exactly one copy of the agent running; the hire completes with a chain that verifies.
//! Real `souk` processes (a full provider, a light client), a real sandbox.
#![cfg(unix)]

mod common;

use std::path::Path;

use common::*;
use serde_json::Value;

/// Counts to 25 with a checkpoint per step (0.2 s each); records every start in its
/// working directory, which survives the provider's restarts.
const AGENT: &str = r#"import json, os, sys, time

def send(kind, **fields):
    fields["type"] = kind
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()

start = json.loads(sys.stdin.readline())
state = start.get("checkpoint") or {"i": 0}
with open("runs.log", "a") as f:
    f.write("run from %d\n" % state["i"])
for i in range(state["i"], 25):
    send("decision", text="step %d" % i)
    send("checkpoint", state={"i": i + 1})
    time.sleep(0.2)
send("result", output={"steps": 25})
"#;

const AGENT_TOML: &str = r#"name = "crashy"
description = "Counts slowly, with checkpoints (crash test agent)."
capabilities = ["testing"]
input_schema = { type = "object" }
output_schema = { type = "object" }
hosts = []

[pricing]
currency = "USD"
per_hire = "1"
per_hour = "0"

[limits]
max_duration_secs = 300
max_concurrency = 2
max_input_bytes = 4096

[run]
command = ["python3", "agent.py"]
"#;

/// The agent processes of hire `hire` on this host: Python running `agent.py` with the
/// hire's `SOUK_HIRE_ID` (the sandbox's own processes also carry both in their arguments
/// and environment, but are not Python).
fn agents_of(hire: &str) -> Vec<u32> {
    let mut found = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return found;
    };
    for e in dir.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let env = std::fs::read(e.path().join("environ")).unwrap_or_default();
        let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        let comm = std::fs::read(e.path().join("comm")).unwrap_or_default();
        let has = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
        if comm.starts_with(b"python") && has(&env, hire.as_bytes()) && has(&cmd, b"agent.py") {
            found.push(pid);
        }
    }
    found
}

fn status(client: &Path, hire: &str) -> Value {
    ok_json(
        &souk(client, &["hire", "status", hire, "--json"]),
        "hire status",
    )
}

#[test]
fn a_provider_killed_mid_hire_resumes_it_with_exactly_one_agent() {
    let tmp = tempdir();
    let listen = format!("/ip4/127.0.0.1/tcp/{}", free_port());
    let (mut provider, info, mut client) = provider_and_light_client(tmp.path(), &listen);
    let (pdir, cdir) = (provider.dir.clone(), tmp.path().join("client"));
    let plog = provider.log.clone();
    assert_ne!(
        info["sandbox"].as_str(),
        Some("none"),
        "the provider must run its agents sandboxed: {info}"
    );
    let mid = publish_found(tmp.path(), &pdir, &cdir, (AGENT, AGENT_TOML), "crashy");
    let input = tmp.path().join("input.json");
    std::fs::write(&input, "{}").unwrap_or_else(|e| panic!("{e}"));
    let hired = ok_json(
        &souk(
            &cdir,
            &["hire", &mid, "--input", path_str(&input), "--json"],
        ),
        "hire",
    );
    let hire = hired["hire_id"]
        .as_str()
        .unwrap_or_else(|| panic!("no hire id: {hired}"))
        .to_owned();

    // Some steps in, the provider dies without a chance to clean up.
    wait_for("a few steps", || {
        (status(&cdir, &hire)["entries"].as_u64().unwrap_or(0) >= 6).then_some(())
    });
    assert_eq!(agents_of(&hire).len(), 1, "one agent while the hire runs");
    provider
        .child
        .kill()
        .unwrap_or_else(|e| panic!("kill -9: {e}"));
    let _ = provider.child.wait();
    // The agent does not outlive its node.
    wait_for("the orphaned agent to die", || {
        agents_of(&hire).is_empty().then_some(())
    });

    // The restarted provider resumes the hire: one agent at a time, from its checkpoint.
    let mut provider = NodeProc::start("provider again", &pdir, &plog, &["--listen", &listen]);
    provider.wait_ready();
    let mut most = 0;
    let done = wait_for("the hire to complete", || {
        most = most.max(agents_of(&hire).len());
        let s = status(&cdir, &hire);
        (s["state"] == "completed").then_some(s)
    });
    assert!(most <= 1, "{most} copies of the agent ran at once");
    assert_eq!(done["error"], Value::Null, "{done}");
    let mut work = pdir.clone().into_os_string();
    work.push("-work");
    let runs = std::fs::read_to_string(Path::new(&work).join(&hire).join("runs.log"))
        .unwrap_or_else(|e| panic!("runs.log: {e}"));
    assert_eq!(runs.lines().count(), 2, "two runs: {runs}");
    assert!(
        runs.lines().nth(1).is_some_and(|l| l != "run from 0"),
        "the second run resumed from a checkpoint: {runs}"
    );

    let bundle = tmp.path().join("run.souk");
    ok(
        &souk(
            &cdir,
            &["receipts", "export", &hire, "-o", path_str(&bundle)],
        ),
        "export",
    );
    let verdict = ok_json(
        &souk(&cdir, &["verify", path_str(&bundle), "--json"]),
        "verify",
    );
    assert_eq!(verdict["valid"], true, "{verdict}");
    assert_eq!(verdict["state"], "completed", "{verdict}");
    provider.terminate();
    client.terminate();
}
