//! `souk-testnet run` on the shipped scenarios, CI-sized: `smoke` (every manifest delivered,
//! every hire completed and verified, the report written with its plots),
//! `crash-durability-ci` (at least 20 `kill -9` of providers and clients while hires run;
//! every hire still ends with a verified chain equal to the uninterrupted reference) and
//! `partition-heal` (latency then a partition through the nodes' testnet gate: slowed,
//! isolated, converged), `hostile` (invalid gossip at two nodes: cut off, contained; a
//! forking provider: its hires closed, flagged everywhere, refused after) and `long-hire`
//! (days of deadlines, absences and restarts on a 10 000x node clock), `churn-ci` (full
//! nodes stop and return while manifests spread) and `load-ci` (twice the provider's slots
//! asked at once; declined for capacity, retried, all completed). A scenario whose
//! assertion cannot hold exits 1 and says so in its report.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use serde_json::Value;

/// A hang guard, not a timing target (the crash scenario runs for about 30 s).
const SCENARIO_TIMEOUT: Duration = Duration::from_secs(420);

fn scenario(name: &str) -> String {
    workspace()
        .join("testnet/scenarios")
        .join(name)
        .display()
        .to_string()
}

/// Runs the shipped scenario `file` into `out`, with `extra` arguments.
fn run_shipped(file: &str, out: &Path, extra: &[&str]) -> std::process::Output {
    let (scenario, out) = (scenario(file), out.display().to_string());
    let mut args = vec!["run", scenario.as_str(), "--out", out.as_str()];
    args.extend_from_slice(extra);
    testnet_for(&args, SCENARIO_TIMEOUT)
}

fn report(out: &Path) -> Value {
    let text = std::fs::read_to_string(out.join("report.json"))
        .unwrap_or_else(|e| panic!("no report.json: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("bad report.json: {e}"))
}

#[test]
fn smoke_delivers_everything_and_writes_its_report() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let out = tmp.path().join("smoke");
    let run = run_shipped("smoke.toml", &out, &["--json"]);
    let said = assert_ok("run smoke", &run);
    let printed: Value = serde_json::from_str(said.trim())
        .unwrap_or_else(|e| panic!("run --json printed no JSON ({e}): {said}"));
    assert_eq!(printed["passed"], true, "{printed}");
    let r = report(&out);
    let run_data = &r["run"];
    assert_eq!(run_data["scenario"], "smoke");
    let manifests = run_data["manifests"].as_array().map_or(0, Vec::len);
    assert!(
        manifests >= 4,
        "initial and republished manifests: {manifests}"
    );
    let hires = run_data["hires"].as_array().cloned().unwrap_or_default();
    assert_eq!(hires.len(), 6, "{hires:?}");
    assert!(
        hires
            .iter()
            .all(|h| h["outcome"] == "completed" && h["verified"] == true),
        "{hires:?}"
    );
    assert!(
        run_data["samples"]
            .as_array()
            .is_some_and(|s| !s.is_empty()),
        "resource samples"
    );
    let md = std::fs::read_to_string(out.join("report.md"))
        .unwrap_or_else(|e| panic!("no report.md: {e}"));
    assert!(md.contains("**PASS**"), "{md}");
    for svg in [
        "propagation-cdf.svg",
        "deliveries.svg",
        "hires.svg",
        "peers.svg",
        "resources.svg",
    ] {
        assert!(md.contains(svg), "report.md links {svg}");
        let body =
            std::fs::read_to_string(out.join(svg)).unwrap_or_else(|e| panic!("no {svg}: {e}"));
        assert!(body.contains("<svg"), "{svg} is an SVG");
    }
    // Every exported bundle is on disk and verifies again, offline.
    let bundles: Vec<_> = std::fs::read_dir(out.join("bundles"))
        .unwrap_or_else(|e| panic!("no bundles: {e}"))
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(bundles.len(), 7, "six hires and the reference");
    let verdict = std::process::Command::new(souk_bin())
        .arg("verify")
        .arg(&bundles[0])
        .output()
        .unwrap_or_else(|e| panic!("souk verify: {e}"));
    assert!(verdict.status.success(), "{verdict:?}");
}

#[test]
fn crash_durability_ci_survives_twenty_kills_without_losing_a_step() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let out = tmp.path().join("crash");
    let run = run_shipped("crash-durability-ci.toml", &out, &[]);
    let said = assert_ok("run crash-durability-ci", &run);
    assert!(said.contains("PASS"), "{said}");
    let r = report(&out);
    let faults = r["run"]["faults"].as_array().cloned().unwrap_or_default();
    let kills = faults.iter().filter(|f| f["kind"] == "kill").count();
    assert!(kills >= 20, "{kills} kills");
    let hit: std::collections::HashSet<&str> = faults
        .iter()
        .filter(|f| f["kind"] == "kill")
        .filter_map(|f| f["target"].as_str())
        .collect();
    assert!(
        hit.iter().any(|t| t.starts_with("node-")) && hit.iter().any(|t| t.starts_with("light-")),
        "providers and clients were killed: {hit:?}"
    );
    let hires = r["run"]["hires"].as_array().cloned().unwrap_or_default();
    assert_eq!(hires.len(), 10, "{hires:?}");
    assert!(
        hires
            .iter()
            .all(|h| h["outcome"] == "completed" && h["verified"] == true),
        "{hires:?}"
    );
    let assertions = r["run"]["assertions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let steps = assertions
        .iter()
        .find(|a| a["name"] == "steps_match_reference")
        .unwrap_or_else(|| panic!("{assertions:?}"));
    assert_eq!(steps["passed"], true, "{steps}");
}

#[test]
fn long_hire_waits_days_for_its_client_on_a_fast_clock() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let out = tmp.path().join("long");
    let run = run_shipped("long-hire.toml", &out, &[]);
    let said = assert_ok("run long-hire", &run);
    assert!(said.contains("PASS"), "{said}");
    let r = report(&out);
    let mut outcomes: Vec<String> = r["run"]["hires"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|h| format!("{}:{}", h["client"], h["outcome"]).replace('"', ""))
        .collect();
    outcomes.sort();
    // light-0's 3-day hire completed after its 2-day absence; light-1's 20-hour one expired.
    assert_eq!(outcomes, ["light-0:completed", "light-1:expired"]);
    let assertions = r["run"]["assertions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for name in ["question_waited", "expired_within", "every_chain_verifies"] {
        let a = assertions
            .iter()
            .find(|a| a["name"] == name)
            .unwrap_or_else(|| panic!("no {name}: {assertions:?}"));
        assert_eq!(a["passed"], true, "{a}");
    }
    // The nodes really ran on the clock: receipt times span days while the run took seconds.
    let notes = r["run"]["notes"].to_string();
    assert!(notes.contains("10000x real time"), "{notes}");
}

#[test]
fn churn_ci_keeps_delivering_while_nodes_leave_and_return() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let out = tmp.path().join("churn");
    let run = run_shipped("churn-ci.toml", &out, &[]);
    let said = assert_ok("run churn-ci", &run);
    assert!(said.contains("PASS"), "{said}");
    let r = report(&out);
    let faults = r["run"]["faults"].as_array().cloned().unwrap_or_default();
    let stops = faults.iter().filter(|f| f["kind"] == "stop").count();
    let starts = faults.iter().filter(|f| f["kind"] == "start").count();
    assert!(stops >= 3 && starts >= 3, "{faults:?}");
    let hires = r["run"]["hires"].as_array().cloned().unwrap_or_default();
    assert!(
        !hires.is_empty() && hires.iter().all(|h| h["verified"] == true),
        "{hires:?}"
    );
}

#[test]
fn load_ci_fills_the_providers_slots_and_every_hire_still_completes() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let out = tmp.path().join("load");
    let run = run_shipped("load-ci.toml", &out, &[]);
    let said = assert_ok("run load-ci", &run);
    assert!(said.contains("PASS"), "{said}");
    let r = report(&out);
    let hires = r["run"]["hires"].as_array().cloned().unwrap_or_default();
    assert_eq!(hires.len(), 16, "{hires:?}");
    assert!(
        hires
            .iter()
            .all(|h| h["outcome"] == "completed" && h["verified"] == true),
        "{hires:?}"
    );
    let assertions = r["run"]["assertions"].to_string();
    assert!(assertions.contains("declined for capacity"), "{assertions}");
}

#[test]
fn an_assertion_that_does_not_hold_fails_the_run() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let file = tmp.path().join("no-kills.toml");
    std::fs::write(
        &file,
        "name = \"no-kills\"\nduration = \"1s\"\ndrain = \"5s\"\n[network]\nfull = 1\n\
         [assert]\nmin_kills = 1\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let out = tmp.path().join("out");
    let run = testnet_for(
        &[
            "run",
            &file.display().to_string(),
            "--out",
            &out.display().to_string(),
        ],
        SCENARIO_TIMEOUT,
    );
    assert_eq!(run.status.code(), Some(1), "{:?}", text(&run));
    let (stdout, _) = text(&run);
    assert!(stdout.contains("FAIL min_kills"), "{stdout}");
    let md = std::fs::read_to_string(out.join("report.md"))
        .unwrap_or_else(|e| panic!("no report.md: {e}"));
    assert!(md.contains("**FAIL**"), "{md}");
    // A broken scenario file is refused before anything starts, naming the key.
    std::fs::write(
        &file,
        "name = \"x\"\nduration = \"1s\"\n[network]\nfull = 1\nfaults = 3\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let run = testnet_for(
        &[
            "run",
            &file.display().to_string(),
            "--out",
            &out.display().to_string(),
        ],
        SCENARIO_TIMEOUT,
    );
    assert!(!run.status.success());
    assert!(text(&run).1.contains("faults"), "{:?}", text(&run));
}

#[test]
fn partition_heal_isolates_the_halves_then_converges() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let out = tmp.path().join("ph");
    let run = run_shipped("partition-heal.toml", &out, &["--json"]);
    let said = assert_ok("run partition-heal", &run);
    let printed: Value = serde_json::from_str(said.trim())
        .unwrap_or_else(|e| panic!("run --json printed no JSON ({e}): {said}"));
    assert_eq!(printed["passed"], true, "{printed}");
    let r = report(&out);
    let names: Vec<&str> = r["run"]["assertions"]
        .as_array()
        .map(|a| a.iter().filter_map(|a| a["name"].as_str()).collect())
        .unwrap_or_default();
    for want in ["latency_applies", "partition_isolates", "converged"] {
        assert!(names.contains(&want), "{names:?}");
    }
    let kinds: Vec<&str> = r["run"]["faults"]
        .as_array()
        .map(|a| a.iter().filter_map(|f| f["kind"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(kinds, ["latency", "heal", "partition", "heal"], "{kinds:?}");
}

#[test]
fn hostile_peers_are_cut_off_and_a_forking_provider_is_flagged_everywhere() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let out = tmp.path().join("hostile");
    let run = run_shipped("hostile.toml", &out, &[]);
    let said = assert_ok("run hostile", &run);
    assert!(said.contains("ok   hostile_contained"), "{said}");
    assert!(said.contains("ok   fork_contained"), "{said}");
    let r = report(&out);
    let attacks: Vec<Value> = r["run"]["faults"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|f| f["kind"] == "invalid-gossip")
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(attacks.len(), 2, "{attacks:?}");
    assert!(
        attacks
            .iter()
            .all(|f| f["detail"].as_str().is_some_and(|d| d.contains("cut off"))),
        "{attacks:?}"
    );
    // The forking provider: a hire of its agent from light-0, forked and closed by its
    // client, and one from a full node it never forked, closed on the network's proof;
    // every full node flagged it; later hires were refused, also by light-1, which never
    // hired it.
    let forked: Vec<&Value> = r["run"]["hires"]
        .as_array()
        .map(|h| h.iter().filter(|h| h["agent"] == "forked").collect())
        .unwrap_or_default();
    assert_eq!(forked.len(), 2, "{forked:?}");
    assert!(
        forked.iter().all(|h| h["outcome"] == "closed"
            && h["verified"].is_null()
            && h["error"]
                .as_str()
                .is_some_and(|e| e.contains("equivocated"))),
        "{forked:?}"
    );
    let fork = r["run"]["faults"]
        .as_array()
        .and_then(|a| a.iter().find(|f| f["kind"] == "forking-provider"))
        .unwrap_or_else(|| panic!("no forking-provider fault: {r}"));
    let detail = fork["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("1 fork(s) served") && detail.contains("2 of 2 later hire(s) refused"),
        "{detail}"
    );
    assert!(
        forked.iter().any(|h| h["client"] == "light-0")
            && forked
                .iter()
                .any(|h| h["client"].as_str().is_some_and(|c| c.starts_with("node-"))),
        "{forked:?}"
    );
    let notes = r["run"]["notes"].to_string();
    assert!(notes.contains("flagged by 4 of 4 full nodes"), "{notes}");
}
