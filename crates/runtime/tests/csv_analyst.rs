//! Runs the example agent `examples/csv-analyst/agent.py` end to end through the runtime,
//! with the command of its `agent.toml` (`python3 agent.py`) resolved against its directory,
//! in the sandbox as a node runs it: `python3` found on the node's `PATH` (a pyenv shim on
//! the development machines, resolved to the real interpreter), the package and its
//! `run.include` (the Python SDK) read-only.
//! Needs bubblewrap (`apt-get install -y bubblewrap`).

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};
use souk_protocol::receipt::FailureCode;
use souk_runtime::{
    AgentEvent, AgentProcess, Outcome, ResourceLimits, RunConfig, Step, resolve_command,
};

const HIRE: &str = "feedfacefeedfacefeedfacefeedfacefeedfacefeedfacefeedfacefeedface";

fn package_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/csv-analyst");
    std::fs::canonicalize(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
}

/// The agent's `run.include`: the Python SDK it is written on.
fn sdk_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sdk/python/src");
    std::fs::canonicalize(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
}

async fn start(input: Value, checkpoint: Option<&Value>) -> (tempfile::TempDir, AgentProcess) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let command = vec!["python3".to_owned(), "agent.py".to_owned()];
    let package = package_dir();
    let sdk = sdk_dir();
    let mut sandbox = common::sandboxed();
    sandbox.extra_ro_paths.push(sdk.clone());
    let cfg = RunConfig {
        command: resolve_command(&command, &package),
        workdir: dir.path().join("hire"),
        package_dir: Some(package.clone()),
        env: vec![
            (
                "SOUK_PACKAGE_DIR".into(),
                package.to_string_lossy().into_owned(),
            ),
            ("SOUK_INCLUDE".into(), sdk.to_string_lossy().into_owned()),
        ],
        sandbox: Some(sandbox),
        limits: ResourceLimits {
            memory_bytes: Some(256 << 20),
            max_processes: Some(32),
            max_open_files: Some(256),
            max_file_bytes: Some(16 << 20),
            cpu_secs: Some(30),
        },
        wall_time: Duration::from_secs(60),
        silence_timeout: Duration::from_secs(30),
        ..RunConfig::default()
    };
    let agent = AgentProcess::spawn(&cfg, HIRE, &input, checkpoint)
        .await
        .unwrap_or_else(|e| panic!("spawn: {e}"));
    (dir, agent)
}

async fn run_to_end(agent: &mut AgentProcess) -> (Vec<AgentEvent>, Outcome) {
    let mut events = Vec::new();
    loop {
        match agent.next().await {
            Step::Event(e) => events.push(e),
            Step::Ended(o) => return (events, o),
        }
    }
}

fn output(outcome: Outcome) -> Value {
    match outcome {
        Outcome::Completed { output } => output,
        other => panic!("expected a result, got {other:?}"),
    }
}

const CSV: &str = "city,price,qty\nParis,3.5,2\nLyon,4,\nParis,10,7\n";

fn expected_columns() -> Value {
    json!([
        {"name": "city", "count": 3, "numeric": false, "distinct": 2, "mean": null, "min": "Lyon", "max": "Paris"},
        {"name": "price", "count": 3, "numeric": true, "distinct": 3, "mean": 5.833333, "min": 3.5, "max": 10},
        {"name": "qty", "count": 2, "numeric": true, "distinct": 2, "mean": 4.5, "min": 2, "max": 7},
    ])
}

fn tools(events: &[AgentEvent]) -> Vec<Value> {
    events
        .iter()
        .filter_map(|e| match e {
            AgentEvent::ToolCall { tool, args, .. } => {
                assert_eq!(tool, "column-stats");
                Some(args["column"].clone())
            }
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn analyses_a_csv() {
    let (_dir, mut agent) = start(json!({ "csv": CSV }), None).await;
    let (events, outcome) = run_to_end(&mut agent).await;
    assert_eq!(
        events.first(),
        Some(&AgentEvent::Decision {
            text: "3 rows, 3 columns; computing stats".into()
        })
    );
    assert_eq!(
        tools(&events),
        [json!("city"), json!("price"), json!("qty")]
    );
    let checkpoints: Vec<&Value> = events
        .iter()
        .filter_map(|e| match e {
            AgentEvent::Checkpoint { state } => Some(&state["done"]),
            _ => None,
        })
        .collect();
    assert_eq!(
        checkpoints,
        [
            &json!(["city"]),
            &json!(["city", "price"]),
            &json!(["city", "price", "qty"])
        ]
    );
    let out = output(outcome);
    assert_eq!(out["rows"], json!(3));
    assert_eq!(out["columns"], expected_columns());
    let summary = out["summary"].as_str().unwrap_or_default();
    assert!(summary.starts_with("3 rows x 3 columns."), "{summary}");
}

#[tokio::test]
async fn resumes_from_a_checkpoint() {
    // Run once, keep the first checkpoint, resume from it: only the other columns are redone
    // and the result is the same.
    let (_dir, mut agent) = start(json!({ "csv": CSV }), None).await;
    let (events, _) = run_to_end(&mut agent).await;
    let first = events
        .iter()
        .find_map(|e| match e {
            AgentEvent::Checkpoint { state } => Some(state.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no checkpoint in {events:?}"));

    let (_dir, mut agent) = start(json!({ "csv": CSV }), Some(&first)).await;
    let (events, outcome) = run_to_end(&mut agent).await;
    assert_eq!(
        events.first(),
        Some(&AgentEvent::Decision {
            text: "3 rows, 3 columns; computing stats; resuming with 1 already done".into()
        })
    );
    assert_eq!(tools(&events), [json!("price"), json!("qty")]);
    assert_eq!(output(outcome)["columns"], expected_columns());
}

#[tokio::test]
async fn asks_for_a_csv_when_there_is_none() {
    let (_dir, mut agent) = start(json!({ "csv": "" }), None).await;
    match agent.next().await {
        Step::Event(AgentEvent::Question { question }) => {
            assert!(
                question["text"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("CSV")
            );
        }
        other => panic!("expected a question, got {other:?}"),
    }
    agent
        .answer(&json!({"csv": "x;y\n1;a\n2;b\n"}))
        .await
        .unwrap_or_else(|e| panic!("answer: {e}"));
    let (events, outcome) = run_to_end(&mut agent).await;
    // The delimiter is ",", so "x;y" is one column.
    assert_eq!(tools(&events), [json!("x;y")]);
    let out = output(outcome);
    assert_eq!(out["rows"], json!(2));
    assert_eq!(out["columns"][0]["distinct"], json!(2));
}

#[tokio::test]
async fn ragged_rows_are_an_error() {
    let (_dir, mut agent) = start(json!({"csv": "a,b\n1,2\n3\n"}), None).await;
    let (events, outcome) = run_to_end(&mut agent).await;
    assert!(events.is_empty());
    assert_eq!(
        outcome,
        Outcome::Failed {
            code: FailureCode::AgentError,
            message: "row 3 has 1 fields, expected 2".into()
        }
    );
}

#[tokio::test]
async fn cancel_while_waiting_for_an_answer() {
    let (_dir, mut agent) = start(json!({}), None).await;
    assert!(matches!(
        agent.next().await,
        Step::Event(AgentEvent::Question { .. })
    ));
    assert_eq!(agent.cancel("client gave up").await, Outcome::Canceled);
    assert_eq!(agent.pid(), None);
}
