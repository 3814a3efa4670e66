//! Runs the built binary as the node would: a `start` line on stdin, protocol lines out.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

fn run(start: &Value) -> (Vec<Value>, bool) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_souk-agent-summarizer"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn: {e}"));
    let mut stdin = child.stdin.take().unwrap_or_else(|| panic!("no stdin"));
    writeln!(stdin, "{start}").unwrap_or_else(|e| panic!("write: {e}"));
    drop(stdin);
    let out = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("wait: {e}"));
    let text = String::from_utf8(out.stdout).unwrap_or_else(|e| panic!("utf-8: {e}"));
    let lines = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    (lines, out.status.success())
}

const HIRE: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

#[test]
fn speaks_the_protocol() {
    let text = "Solar panels turn sunlight into electricity. Solar panels on roofs cut bills. \
                The cat sat on the mat. Solar power and solar panels keep getting cheaper.";
    let (lines, ok) = run(&json!({
        "type": "start", "hire_id": HIRE, "input": {"text": text, "sentences": 2}, "checkpoint": null
    }));
    assert!(ok);
    let types: Vec<&str> = lines
        .iter()
        .map(|l| l["type"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        types,
        [
            "decision",
            "tool_call",
            "decision",
            "tool_call",
            "checkpoint",
            "result"
        ]
    );
    assert_eq!(lines[1]["tool"], "keywords");
    assert_eq!(lines[3]["tool"], "rank-sentences");
    let output = &lines[5]["output"];
    assert_eq!(
        output["summary"],
        "Solar panels on roofs cut bills. Solar power and solar panels keep getting cheaper."
    );
    assert_eq!(output["keywords"][0], "solar");
    assert_eq!(output["keywords"][1], "panels");
}

#[test]
fn bad_input_is_an_error_message() {
    let (lines, ok) = run(&json!({
        "type": "start", "hire_id": HIRE, "input": {"words": 3}, "checkpoint": null
    }));
    assert!(ok);
    assert_eq!(
        lines,
        [json!({"type": "error", "message": "input.text must be a non-empty string"})]
    );
}

#[test]
fn malformed_start_exits_nonzero() {
    let (lines, ok) = run(&json!({"type": "answer", "answer": 1}));
    assert!(!ok);
    assert!(lines.is_empty());
}
