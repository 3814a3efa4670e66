//! End-to-end tests of `AgentProcess` with small scripted agents (`python3 -c`, `sh -c`).
//! No fixed sleeps on the test side: timeouts are the runtime's own and the agents block.

use std::time::Duration;

use serde_json::{Value, json};
use souk_protocol::receipt::{EntryKind, FailureCode, Usage};
use souk_runtime::{
    AgentEvent, AgentProcess, Outcome, RunConfig, RuntimeError, Step, json_hash, payload_bytes,
};

const HIRE: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// A real Python 3 interpreter: a system one if there is one (a version-manager shim would
/// add its own variables to the environment), else `python3` on `PATH`.
fn python() -> String {
    ["/usr/bin/python3", "/usr/local/bin/python3"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .unwrap_or("python3")
        .to_owned()
}

/// Python prelude for the scripted agents.
const PRELUDE: &str = r#"
import json, os, sys
def send(**m):
    sys.stdout.write(json.dumps(m) + "\n"); sys.stdout.flush()
def recv():
    line = sys.stdin.readline()
    return json.loads(line) if line else None
start = recv()
"#;

struct Fixture {
    _dir: tempfile::TempDir,
    cfg: RunConfig,
}

fn fixture(command: Vec<String>) -> Fixture {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let cfg = RunConfig {
        command,
        workdir: dir.path().join("hire"),
        kill_grace: Duration::from_millis(500),
        ..RunConfig::default()
    };
    Fixture { _dir: dir, cfg }
}

fn py(body: &str) -> Fixture {
    fixture(vec![python(), "-c".into(), format!("{PRELUDE}{body}")])
}

fn sh(script: &str) -> Fixture {
    fixture(vec!["sh".into(), "-c".into(), script.into()])
}

async fn spawn(f: &Fixture, input: &Value, checkpoint: Option<&Value>) -> AgentProcess {
    AgentProcess::spawn(&f.cfg, HIRE, input, checkpoint)
        .await
        .unwrap_or_else(|e| panic!("spawn: {e}"))
}

/// Runs to the end and closes the run (every process of it is gone), returning the events
/// and the outcome.
async fn run_to_end(agent: &mut AgentProcess) -> (Vec<AgentEvent>, Outcome) {
    let mut events = Vec::new();
    loop {
        match agent.next().await {
            Step::Event(e) => events.push(e),
            Step::Ended(o) => {
                agent.close().await;
                return (events, o);
            }
        }
    }
}

fn assert_failed(outcome: &Outcome, want: FailureCode, contains: &str) {
    match outcome {
        Outcome::Failed { code, message } => {
            assert_eq!(*code, want, "message: {message}");
            assert!(
                message.contains(contains),
                "{message:?} should contain {contains:?}"
            );
        }
        other => panic!("expected Failed({want:?}), got {other:?}"),
    }
}

fn process_gone(pid: u32) -> bool {
    !std::path::Path::new(&format!("/proc/{pid}")).exists()
}

#[tokio::test]
async fn normal_run() {
    let f = py(r#"
assert start["type"] == "start" and start["hire_id"] == os.environ["SOUK_HIRE_ID"]
assert start["checkpoint"] is None
n = start["input"]["n"]
send(type="decision", text="double it")
send(type="tool_call", tool="mul", args={"a": n, "b": 2}, result=n * 2)
print()  # a blank line is ignored
send(type="note", text="almost")
send(type="checkpoint", state={"done": True})
send(type="result", output={"value": n * 2, "cwd": os.getcwd()})
"#);
    let mut agent = spawn(&f, &json!({"n": 21}), None).await;
    assert!(agent.pid().is_some());
    let (events, outcome) = run_to_end(&mut agent).await;
    assert_eq!(
        events,
        vec![
            AgentEvent::Decision {
                text: "double it".into()
            },
            AgentEvent::ToolCall {
                tool: "mul".into(),
                args: json!({"a": 21, "b": 2}),
                result: json!(42)
            },
            AgentEvent::Note {
                text: "almost".into()
            },
            AgentEvent::Checkpoint {
                state: json!({"done": true})
            },
        ]
    );
    let workdir = std::path::absolute(&f.cfg.workdir).unwrap_or_else(|e| panic!("{e}"));
    let want = json!({"value": 42, "cwd": workdir.to_string_lossy()});
    assert_eq!(
        outcome,
        Outcome::Completed {
            output: want.clone()
        }
    );
    // Ended is sticky.
    assert_eq!(agent.next().await, Step::Ended(outcome.clone()));
    assert_eq!(agent.pid(), None);

    // Receipt mapping.
    assert_eq!(
        events[1].entry_kind(),
        EntryKind::ToolCall { tool: "mul".into() }
    );
    assert_eq!(
        payload_bytes(&events[1]),
        br#"{"args":{"a":21,"b":2},"result":42,"tool":"mul","type":"tool_call"}"#.to_vec()
    );
    assert_eq!(
        events[3].entry_kind(),
        EntryKind::Checkpoint {
            state_hash: souk_protocol::Hash(*blake3::hash(br#"{"done":true}"#).as_bytes())
        }
    );
    assert!(!events[3].has_payload());
    assert_eq!(
        outcome.entry_kind(),
        Some(EntryKind::Completed {
            output_hash: json_hash(&want),
            usage: Usage::default()
        })
    );
}

#[tokio::test]
async fn resume_passes_the_checkpoint() {
    let f = py(r#"send(type="result", output=start["checkpoint"])"#);
    let cp = json!({"step": 3});
    let mut agent = spawn(&f, &json!(null), Some(&cp)).await;
    assert_eq!(
        run_to_end(&mut agent).await.1,
        Outcome::Completed { output: cp }
    );
}

#[tokio::test]
async fn question_answer_result() {
    let f = py(r#"
send(type="question", question={"text": "which column?"})
ans = recv()
assert ans["type"] == "answer", ans
send(type="result", output={"got": ans["answer"]})
"#);
    // A short silence timeout (long enough for the interpreter to start on a loaded
    // machine): it must not fire while the question is open.
    let mut f = f;
    f.cfg.silence_timeout = Duration::from_millis(1500);
    let mut agent = spawn(&f, &json!({}), None).await;
    assert!(matches!(
        agent.answer(&json!(1)).await,
        Err(RuntimeError::NoQuestion)
    ));
    let step = agent.next().await;
    assert_eq!(
        step,
        Step::Event(AgentEvent::Question {
            question: json!({"text": "which column?"})
        })
    );
    assert!(agent.awaiting_answer());
    // Stay silent past the silence timeout while the question is open (this wait is the
    // point of the test, not a synchronization), then answer.
    tokio::time::sleep(Duration::from_millis(2000)).await;
    agent
        .answer(&json!("price"))
        .await
        .unwrap_or_else(|e| panic!("answer: {e}"));
    assert_eq!(
        agent.next().await,
        Step::Ended(Outcome::Completed {
            output: json!({"got": "price"})
        })
    );
    assert!(matches!(
        agent.answer(&json!(1)).await,
        Err(RuntimeError::Ended)
    ));
}

#[tokio::test]
async fn message_while_waiting_for_an_answer_is_a_violation() {
    let f = py(r#"
send(type="question", question="?")
send(type="decision", text="impatient")
recv()
"#);
    let mut agent = spawn(&f, &json!({}), None).await;
    let (events, outcome) = run_to_end(&mut agent).await;
    assert_eq!(events.len(), 1);
    assert_failed(
        &outcome,
        FailureCode::ProtocolViolation,
        "sent decision while waiting for an answer",
    );
}

#[tokio::test]
async fn agent_error() {
    let f = py(r#"
send(type="decision", text="trying")
send(type="error", message="no such column: price")
"#);
    let mut agent = spawn(&f, &json!({}), None).await;
    let (events, outcome) = run_to_end(&mut agent).await;
    assert_eq!(events.len(), 1);
    assert_eq!(
        outcome,
        Outcome::Failed {
            code: FailureCode::AgentError,
            message: "no such column: price".into()
        }
    );
    assert_eq!(
        outcome.entry_kind(),
        Some(EntryKind::Failed {
            code: FailureCode::AgentError,
            message: "no such column: price".into(),
            usage: Usage::default()
        })
    );
}

#[tokio::test]
async fn crash_reports_exit_status() {
    let f = sh(r#"read line; echo '{"type":"note","text":"working"}'; echo oops >&2; exit 3"#);
    let mut agent = spawn(&f, &json!({}), None).await;
    let (events, outcome) = run_to_end(&mut agent).await;
    assert_eq!(events.len(), 1);
    assert_failed(&outcome, FailureCode::AgentCrashed, "exit status: 3");
}

#[tokio::test]
async fn exit_zero_without_result_is_a_violation() {
    let f = sh("read line; exit 0");
    let mut agent = spawn(&f, &json!({}), None).await;
    assert_failed(
        &run_to_end(&mut agent).await.1,
        FailureCode::ProtocolViolation,
        "without a final message",
    );
}

#[tokio::test]
async fn bad_json_is_a_violation() {
    let f =
        sh(r#"read line; echo '{"type":"note","text":"ok"}'; echo '{"type": note}'; read line"#);
    let mut agent = spawn(&f, &json!({}), None).await;
    let pid = agent.pid().unwrap_or_else(|| panic!("no pid"));
    let (events, outcome) = run_to_end(&mut agent).await;
    assert_eq!(events.len(), 1);
    assert_failed(&outcome, FailureCode::ProtocolViolation, "malformed JSON");
    assert!(process_gone(pid), "the agent is killed after a violation");
}

#[tokio::test]
async fn unknown_type_is_a_violation() {
    let f = sh(r#"read line; echo '{"type":"shout","text":"hey"}'; read line"#);
    let mut agent = spawn(&f, &json!({}), None).await;
    assert_failed(
        &run_to_end(&mut agent).await.1,
        FailureCode::ProtocolViolation,
        "unknown message type \"shout\"",
    );
}

#[tokio::test]
async fn oversize_line_is_a_violation() {
    // A 64 MiB line against a 1 KiB limit: rejected once the limit is passed.
    let mut f = py(r#"
sys.stdout.write('{"type":"note","text":"' + "x" * (64 << 20))
sys.stdout.flush()
recv()
"#);
    f.cfg.max_line_bytes = 1024;
    let mut agent = spawn(&f, &json!({}), None).await;
    assert_failed(
        &run_to_end(&mut agent).await.1,
        FailureCode::ProtocolViolation,
        "line longer than 1024 bytes",
    );
}

/// The outcome is decided by the final message: what the agent writes after it (another
/// message, another result) and how it exits are ignored.
#[tokio::test]
async fn what_follows_the_final_message_is_ignored() {
    let f = py(r#"
send(type="result", output=1)
send(type="note", text="one more thing")
send(type="result", output=2)
sys.stdout.write("not even JSON\n"); sys.stdout.flush()
sys.exit(5)
"#);
    let mut agent = spawn(&f, &json!({}), None).await;
    let pid = agent.pid().unwrap_or_else(|| panic!("no pid"));
    let (events, outcome) = run_to_end(&mut agent).await;
    assert!(events.is_empty());
    assert_eq!(outcome, Outcome::Completed { output: json!(1) });
    assert!(process_gone(pid));
    assert_eq!(agent.next().await, Step::Ended(outcome));
}

#[tokio::test]
async fn too_many_events_is_a_violation() {
    let mut f = py(r#"
for i in range(10):
    send(type="note", text=str(i))
send(type="result", output=None)
"#);
    f.cfg.max_events = 5;
    let mut agent = spawn(&f, &json!({}), None).await;
    let (events, outcome) = run_to_end(&mut agent).await;
    assert_eq!(events.len(), 5);
    assert_failed(
        &outcome,
        FailureCode::ProtocolViolation,
        "more than 5 messages",
    );
}

#[tokio::test]
async fn silence_is_a_violation() {
    let mut f = sh(r#"read line; echo '{"type":"note","text":"thinking"}'; exec sleep 30"#);
    f.cfg.silence_timeout = Duration::from_millis(500);
    let mut agent = spawn(&f, &json!({}), None).await;
    let pid = agent.pid().unwrap_or_else(|| panic!("no pid"));
    let (events, outcome) = run_to_end(&mut agent).await;
    assert!(events.len() <= 1); // the note, unless the shell took longer than 500 ms
    assert_failed(
        &outcome,
        FailureCode::ProtocolViolation,
        "silent for more than 500ms",
    );
    assert!(process_gone(pid));
}

#[tokio::test]
async fn wall_time_exceeded() {
    // Keeps talking (so silence never fires) but never finishes.
    let mut f = py(r#"
import time
while True:
    send(type="note", text="still here")
    time.sleep(0.05)
"#);
    f.cfg.wall_time = Duration::from_millis(600);
    f.cfg.silence_timeout = Duration::from_secs(30);
    let mut agent = spawn(&f, &json!({}), None).await;
    let pid = agent.pid().unwrap_or_else(|| panic!("no pid"));
    let outcome = run_to_end(&mut agent).await.1;
    assert_eq!(outcome, Outcome::TimedOut);
    assert!(outcome.entry_kind().is_none());
    assert!(process_gone(pid));
}

#[tokio::test]
async fn cancel_kills_an_agent_that_ignores_it() {
    let f = sh(r#"read line; echo '{"type":"note","text":"busy"}'; exec sleep 30"#);
    let mut agent = spawn(&f, &json!({}), None).await;
    let pid = agent.pid().unwrap_or_else(|| panic!("no pid"));
    assert!(matches!(
        agent.next().await,
        Step::Event(AgentEvent::Note { .. })
    ));
    assert_eq!(agent.cancel("client asked").await, Outcome::Canceled);
    assert!(process_gone(pid), "process {pid} is still there");
    assert_eq!(agent.pid(), None);
    assert_eq!(agent.next().await, Step::Ended(Outcome::Canceled));
}

#[tokio::test]
async fn cancel_lets_a_cooperative_agent_exit() {
    let mut f = py(r#"
send(type="note", text="waiting")
msg = recv()
sys.stderr.write("got " + msg["type"] + ": " + msg["reason"] + "\n")
sys.exit(0 if msg == {"type": "cancel", "reason": "stop"} else 9)
"#);
    // A long grace: the test would take a minute if the runtime waited it out.
    f.cfg.kill_grace = Duration::from_secs(60);
    let mut agent = spawn(&f, &json!({}), None).await;
    assert!(matches!(
        agent.next().await,
        Step::Event(AgentEvent::Note { .. })
    ));
    let started = std::time::Instant::now();
    assert_eq!(agent.cancel("stop").await, Outcome::Canceled);
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(agent.pid(), None);
}

#[tokio::test]
async fn program_not_found_is_a_spawn_error() {
    let f = fixture(vec!["/nonexistent/souk-agent".into()]);
    match AgentProcess::spawn(&f.cfg, HIRE, &json!({}), None).await {
        Err(RuntimeError::Spawn { program, .. }) => assert_eq!(program, "/nonexistent/souk-agent"),
        other => panic!("expected a spawn error, got {other:?}"),
    }
    let f = fixture(vec![]);
    assert!(matches!(
        AgentProcess::spawn(&f.cfg, HIRE, &json!({}), None).await,
        Err(RuntimeError::EmptyCommand)
    ));
    let f = sh("true");
    assert!(matches!(
        AgentProcess::spawn(&f.cfg, "ABC", &json!({}), None).await,
        Err(RuntimeError::BadHireId(_))
    ));
}

#[tokio::test]
async fn environment_is_clean() {
    // Cargo sets CARGO_MANIFEST_DIR for the test process; the agent must not see it.
    assert!(std::env::var_os("CARGO_MANIFEST_DIR").is_some());
    let mut f = py(r#"send(type="result", output=dict(os.environ))"#);
    f.cfg.env = vec![("HTTP_PROXY".into(), "http://127.0.0.1:9".into())];
    let mut agent = spawn(&f, &json!({}), None).await;
    let outcome = run_to_end(&mut agent).await.1;
    let Outcome::Completed { output } = outcome else {
        panic!("expected a result, got {outcome:?}");
    };
    let env = output
        .as_object()
        .unwrap_or_else(|| panic!("env is not an object: {output}"));
    let mut keys: Vec<&str> = env.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["HOME", "HTTP_PROXY", "LANG", "PATH", "SOUK_HIRE_ID"],
        "{output}"
    );
    let workdir = std::path::absolute(&f.cfg.workdir).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(env["HOME"], json!(workdir.to_string_lossy()));
    assert_eq!(env["LANG"], json!("C.UTF-8"));
    assert_eq!(env["SOUK_HIRE_ID"], json!(HIRE));
    assert_eq!(env["HTTP_PROXY"], json!("http://127.0.0.1:9"));
}

#[tokio::test]
async fn output_too_large() {
    let mut f = py(r#"send(type="result", output="x" * 5000)"#);
    f.cfg.max_output_bytes = 1000;
    let mut agent = spawn(&f, &json!({}), None).await;
    assert_failed(
        &run_to_end(&mut agent).await.1,
        FailureCode::OutputTooLarge,
        "5002 bytes",
    );
}

/// The run ends at the final message, before the agent exits: the node can record the
/// outcome at once. `close` then gives the agent the rest of its grace period and kills it.
#[tokio::test]
async fn final_message_ends_the_run_before_the_agent_exits() {
    let mut f = sh(r#"read line; echo '{"type":"result","output":"done"}'; exec sleep 30"#);
    f.cfg.kill_grace = Duration::from_millis(300);
    let mut agent = spawn(&f, &json!({}), None).await;
    let pid = agent.pid().unwrap_or_else(|| panic!("no pid"));
    let done = Outcome::Completed {
        output: json!("done"),
    };
    assert_eq!(agent.next().await, Step::Ended(done.clone()));
    let ended = std::time::Instant::now();
    assert!(!process_gone(pid), "the agent is still exiting");
    assert!(matches!(
        agent.answer(&json!(1)).await,
        Err(RuntimeError::Ended)
    ));
    agent.close().await;
    assert!(process_gone(pid));
    assert!(ended.elapsed() < Duration::from_secs(20));
    assert_eq!(agent.pid(), None);
    assert_eq!(agent.next().await, Step::Ended(done.clone()));
    agent.close().await; // again: nothing to do
}

/// An `error` final message ends the run the same way; `cancel` after the end closes the
/// run and returns the outcome reached.
#[tokio::test]
async fn cancel_after_the_final_message_keeps_the_outcome() {
    let f = sh(r#"read line; echo '{"type":"error","message":"gave up"}'; exec sleep 30"#);
    let mut agent = spawn(&f, &json!({}), None).await;
    let pid = agent.pid().unwrap_or_else(|| panic!("no pid"));
    let failed = Outcome::Failed {
        code: FailureCode::AgentError,
        message: "gave up".into(),
    };
    assert_eq!(agent.next().await, Step::Ended(failed.clone()));
    assert_eq!(agent.cancel("too late").await, failed);
    assert!(process_gone(pid));
}

/// A process left running after its final message is killed once the grace is over.
#[tokio::test]
async fn final_message_then_lingering_process_is_killed_after_grace() {
    let f = sh(r#"read line; echo '{"type":"result","output":"done"}'; exec sleep 30"#);
    let mut agent = spawn(&f, &json!({}), None).await;
    let pid = agent.pid().unwrap_or_else(|| panic!("no pid"));
    assert_eq!(
        run_to_end(&mut agent).await.1,
        Outcome::Completed {
            output: json!("done")
        }
    );
    assert!(process_gone(pid));
}

#[tokio::test]
async fn exited_agent_with_stdout_held_by_a_grandchild() {
    // The agent exits 3 while a background child keeps its stdout open.
    let f = sh("read line; sleep 10 & exit 3");
    let mut agent = spawn(&f, &json!({}), None).await;
    let started = std::time::Instant::now();
    assert_failed(
        &run_to_end(&mut agent).await.1,
        FailureCode::AgentCrashed,
        "exit status: 3",
    );
    assert!(started.elapsed() < Duration::from_secs(20));
}
