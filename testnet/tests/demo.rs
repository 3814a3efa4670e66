//! End to end: `souk-testnet demo` (and `up` / `status` / `down`) with the workspace's own
//! `souk` binary, real processes on loopback.
//!
//! The `souk` binary sits next to `souk-testnet` in the target directory. `cargo test
//! --workspace` builds it (souk-node's own tests need it); when it is missing or older than
//! the node's sources (e.g. `cargo test -p souk-testnet` after an edit), the test builds it with
//! `cargo build -p souk-node -p souk-agent-summarizer` first. The text-summarizer agent is
//! published only if its release binary exists; the demo hires csv-analyst (Python 3).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

#[test]
fn demo_hires_accepts_and_verifies() {
    let out = testnet(&["demo", "--nodes", "3"]);
    let stdout = assert_ok("souk-testnet demo", &out);
    for needle in [
        "[1/9] Starting 3 full nodes",
        "node-0 signed and announced csv-analyst",
        "found csv-analyst",
        "state accepted",
        "tool-call   column-stats",
        "completed   completed",
        "verdict accepted",
        "node-0 (provider) received the countersigned verdict: accepted",
        "valid: hire",
        "verdict: accepted (countersigned by the client)",
        "PASS",
        "processes stopped cleanly",
    ] {
        assert!(stdout.contains(needle), "no {needle:?} in:\n{stdout}");
    }
    // The temporary directory is gone.
    let data = stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("data: "))
        .and_then(|l| l.split(" (").next())
        .unwrap_or_else(|| panic!("no data line in:\n{stdout}"));
    assert!(!Path::new(data).exists(), "{data} was not removed");
}

#[test]
fn demo_keep_then_status_and_down() {
    let out = testnet(&["demo", "--nodes", "2", "--keep"]);
    let stdout = assert_ok("souk-testnet demo --keep", &out);
    assert!(stdout.contains("PASS"), "{stdout}");
    let dir = stdout
        .lines()
        .find_map(|l| l.strip_prefix("The network is still running (--keep): "))
        .map(|d| PathBuf::from(d.trim()))
        .unwrap_or_else(|| panic!("no kept directory in:\n{stdout}"));
    let dir_arg = dir.display().to_string();
    let state: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("testnet.json"))
            .unwrap_or_else(|e| panic!("no testnet.json: {e}")),
    )
    .unwrap_or_else(|e| panic!("bad testnet.json: {e}"));
    let pids = pids(&state);
    assert_eq!(pids.len(), 3, "2 full nodes and a light client: {state}");
    assert!(pids.iter().all(|p| alive(*p)), "a node is not running");

    let status = testnet(&["status", "--dir", &dir_arg, "--json"]);
    let report: serde_json::Value = serde_json::from_str(&assert_ok("status", &status))
        .unwrap_or_else(|e| panic!("status --json: {e}"));
    assert_eq!(report["healthy"], true, "{report}");
    assert_eq!(report["nodes"][0]["agents"], 1, "{report}");

    let down = testnet(&["down", "--dir", &dir_arg]);
    let said = assert_ok("down", &down);
    assert!(said.contains("3 processes stopped cleanly"), "{said}");
    wait_dead(&pids);
    assert!(!dir.join("testnet.json").exists());
    assert!(dir.join("node-0").join("node.log").is_file(), "logs kept");
    let gone = testnet(&["status", "--dir", &dir_arg]);
    assert!(!gone.status.success(), "status after down must fail");
    std::fs::remove_dir_all(&dir).unwrap_or_else(|e| panic!("cannot remove {dir_arg}: {e}"));
}

#[test]
fn up_status_down() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let dir = tmp.path().join("net");
    let dir_arg = dir.display().to_string();
    let up = testnet(&[
        "up", "--nodes", "2", "--light", "1", "--agents", "examples", "--dir", &dir_arg, "--json",
    ]);
    let said = assert_ok("up", &up);
    let printed: serde_json::Value = serde_json::from_str(said.trim())
        .unwrap_or_else(|e| panic!("`up --json` printed no JSON ({e}): {said}"));
    let state: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("testnet.json"))
            .unwrap_or_else(|e| panic!("no testnet.json: {e}")),
    )
    .unwrap_or_else(|e| panic!("bad testnet.json: {e}"));
    assert_eq!(
        printed, state,
        "`up --json` prints the network's description"
    );
    let pids = pids(&state);
    assert_eq!(pids.len(), 3);
    assert_eq!(state["nodes"][0]["agents"][0], "csv-analyst", "{state}");

    // A second `up` on the same directory refuses.
    let again = testnet(&["up", "--dir", &dir_arg]);
    assert!(!again.status.success());
    assert!(
        text(&again).1.contains("already running"),
        "{:?}",
        text(&again)
    );

    let status = testnet(&["status", "--dir", &dir_arg]);
    let table = assert_ok("status", &status);
    assert!(
        table.contains("node-0") && table.contains("light-0"),
        "{table}"
    );

    // One node at a time: kill, seen down; start, seen up with a new pid; its log.
    assert_ok(
        "kill node-1",
        &testnet(&["kill", "node-1", "--dir", &dir_arg]),
    );
    wait_dead(&pids[1..2]);
    let st = node_status(&dir_arg, "node-1");
    assert_eq!(st["alive"], false, "{st}");
    assert_ok(
        "start node-1",
        &testnet(&["start", "node-1", "--dir", &dir_arg]),
    );
    let st = node_status(&dir_arg, "node-1");
    assert_eq!(st["alive"], true, "{st}");
    let restarted = st["pid"].as_u64().unwrap_or_default();
    assert_ne!(restarted, pids[1], "a new process");
    let logs = assert_ok(
        "logs",
        &testnet(&["logs", "node-1", "--dir", &dir_arg, "-n", "50"]),
    );
    assert!(logs.contains("running; API on"), "{logs}");

    // Restarted by hand, outside the testnet: status and down still find it (node.pid).
    assert_ok(
        "stop light-0",
        &testnet(&["stop", "light-0", "--dir", &dir_arg]),
    );
    wait_dead(&pids[2..3]);
    let mut by_hand = Command::new(souk_bin())
        .arg("--data-dir")
        .arg(dir.join("light-0"))
        .args(["node", "run", "--light", "--api", "127.0.0.1:0"])
        .args(["--listen", "/ip4/127.0.0.1/tcp/0"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start light-0 by hand: {e}"));
    let hand_pid = u64::from(by_hand.id());
    let start = Instant::now();
    loop {
        let st = node_status(&dir_arg, "light-0");
        if st["alive"] == true && st["pid"].as_u64() == Some(hand_pid) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "status never saw light-0 restarted by hand: {st}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let pids = vec![pids[0], restarted, hand_pid];

    let down = testnet(&["down", "--dir", &dir_arg, "--json"]);
    let said = assert_ok("down", &down);
    let report: serde_json::Value = serde_json::from_str(said.trim())
        .unwrap_or_else(|e| panic!("`down --json` printed no JSON ({e}): {said}"));
    let stopped = ["clean", "already", "killed"]
        .iter()
        .map(|k| report["stopped"][k].as_array().map_or(0, Vec::len))
        .sum::<usize>();
    assert_eq!(stopped, 3, "{report}");
    wait_dead(&pids);
    let _ = by_hand.wait();
}

/// One node's row of `status --json`.
fn node_status(dir: &str, name: &str) -> serde_json::Value {
    let out = testnet(&["status", "--dir", dir, "--json"]);
    let (stdout, _) = text(&out);
    let v: serde_json::Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("status --json printed no JSON ({e}): {stdout}"));
    v["nodes"]
        .as_array()
        .and_then(|n| n.iter().find(|n| n["name"] == name))
        .cloned()
        .unwrap_or_else(|| panic!("no {name} in {v}"))
}

/// The conformance kit against our own nodes (`up` with a full and a light node): every
/// check passes, on both roles, and each row names a spec rule.
#[test]
fn conformance_kit_passes_against_the_reference_node() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let dir = tmp.path().join("net");
    let dir_arg = dir.display().to_string();
    let up = testnet(&[
        "up", "--nodes", "1", "--light", "1", "--dir", &dir_arg, "--json",
    ]);
    let state: serde_json::Value = serde_json::from_str(assert_ok("up", &up).trim())
        .unwrap_or_else(|e| panic!("`up --json` printed no JSON: {e}"));
    let mut results = Vec::new();
    for node in state["nodes"].as_array().cloned().unwrap_or_default() {
        let addr = node["addrs"][0].as_str().unwrap_or_default().to_owned();
        let data = node["data_dir"].as_str().unwrap_or_default().to_owned();
        let out = testnet(&[
            "conformance",
            "--node",
            &addr,
            "--data-dir",
            &data,
            "--json",
        ]);
        let said = assert_ok("conformance", &out);
        let report: serde_json::Value = serde_json::from_str(&said)
            .unwrap_or_else(|e| panic!("conformance printed no JSON ({e}): {said}"));
        let rows = report["rows"].as_array().cloned().unwrap_or_default();
        assert!(
            rows.iter()
                .all(|r| r["result"] != "fail"
                    && r["rule"].as_str().is_some_and(|s| s.contains(".md"))),
            "{report}"
        );
        results.push((node["mode"].as_str().unwrap_or_default().to_owned(), rows));
    }
    let down = testnet(&["down", "--dir", &dir_arg]);
    assert_ok("down", &down);
    let passed = |mode: &str| {
        results
            .iter()
            .filter(|(m, _)| m == mode)
            .flat_map(|(_, rows)| rows.iter())
            .filter(|r| r["result"] == "pass")
            .count()
    };
    // Full: transport 5, gossip 11, sync 4, search 2, hire 8; light: transport 6, hire 8.
    assert!(passed("full") >= 30, "{results:?}");
    assert!(passed("light") >= 14, "{results:?}");
}
