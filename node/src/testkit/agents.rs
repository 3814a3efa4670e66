//! Agent fixtures: specs that pass every manifest rule, and Python test agents.

use std::path::Path;

use crate::agent_file::{AgentSpec, RunSpec, package_digest};

/// An agent spec that passes every manifest rule (it runs `true`: for discovery tests).
pub fn agent(name: &str, capabilities: &[&str], description: &str, per_hire: u64) -> AgentSpec {
    let mut caps: Vec<String> = capabilities.iter().map(|s| s.to_string()).collect();
    caps.sort();
    AgentSpec {
        name: name.into(),
        description: description.into(),
        capabilities: caps,
        input_schema: r#"{"type":"object"}"#.into(),
        output_schema: r#"{"type":"object"}"#.into(),
        hosts: vec![],
        tools: vec![],
        credentials: vec![],
        currency: "USD".into(),
        per_hire,
        per_hour: 0,
        max_duration_ms: 600_000,
        max_concurrency: 2,
        max_input_bytes: 1 << 20,
        memory_bytes: None,
        max_processes: None,
        runtime_digest: blake3::hash(name.as_bytes()).to_hex().to_string(),
        run: RunSpec {
            command: vec!["true".into()],
            workdir: "/".into(),
            ..Default::default()
        },
    }
}

/// Python (stdlib only) that every scripted test agent starts with. It reads the `start`
/// message into `job` (the input) and `checkpoint`, writes its pid to `job["pidfile"]` when
/// given, and runs a stdin reader thread that queues node messages on `inbox` and exits on
/// `cancel` (unless `job["ignore_cancel"]`, so that the node has to kill it). `send(type,
/// **fields)` writes one protocol message and flushes it.
pub const AGENT_PRELUDE: &str = r#"import json, os, queue, sys, threading, time

inbox = queue.Queue()


def send(kind, **fields):
    fields["type"] = kind
    sys.stdout.write(json.dumps(fields, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def _read():
    for line in sys.stdin:
        if not line.strip():
            continue
        msg = json.loads(line)
        if msg.get("type") == "cancel" and not job.get("ignore_cancel"):
            os._exit(0)
        inbox.put(msg)
    inbox.put(None)


start = json.loads(sys.stdin.readline())
job = start.get("input") or {}
checkpoint = start.get("checkpoint")
if job.get("pidfile"):
    with open(job["pidfile"], "w") as f:
        f.write(str(os.getpid()))
threading.Thread(target=_read, daemon=True).start()
"#;

/// Writes [`AGENT_PRELUDE`] followed by `body` as `agent.py` into the package directory
/// `package` (created; it must hold nothing else that changes, since the provider checks
/// its digest before every run) and returns a spec that runs it with `python3`: price
/// `per_hire` (USD micro-units), no hourly price, 10 min maximum, 2 slots, and the
/// package's real digest. The description contains "hiring test agent" and the name.
pub fn script_agent(package: &Path, name: &str, body: &str, per_hire: u64) -> AgentSpec {
    python_agent(
        package,
        name,
        &format!("{AGENT_PRELUDE}\n{body}\n"),
        per_hire,
    )
}

/// Like [`script_agent`], with `script` as the whole `agent.py` (no prelude).
pub fn python_agent(package: &Path, name: &str, script: &str, per_hire: u64) -> AgentSpec {
    std::fs::create_dir_all(package).unwrap_or_else(|e| panic!("create {package:?}: {e}"));
    std::fs::write(package.join("agent.py"), script)
        .unwrap_or_else(|e| panic!("write the agent script: {e}"));
    let mut spec = agent(
        name,
        &["testing"],
        &format!("hiring test agent {name}"),
        per_hire,
    );
    spec.runtime_digest = package_digest(package)
        .unwrap_or_else(|e| panic!("package digest: {e}"))
        .to_hex();
    spec.run = RunSpec {
        command: vec!["python3".into(), "agent.py".into()],
        workdir: package.to_path_buf(),
        ..Default::default()
    };
    spec
}

/// An agent package in `dir` emitting `steps` decisions, then a result; with `steps == 0`,
/// a shell one-liner that answers at once (negotiation rounds then measure the network and
/// the stores, not interpreter start-up). Unlimited concurrency, 1 USD per hire.
pub fn steps_agent(dir: &Path, name: &str, steps: usize) -> AgentSpec {
    std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("create {dir:?}: {e}"));
    let script = format!(
        "import sys, json\nsys.stdin.readline()\nout = sys.stdout\nfor i in range({steps}):\n    out.write(json.dumps({{\"type\": \"decision\", \"text\": \"step %d\" % i}}) + \"\\n\")\nout.write(json.dumps({{\"type\": \"result\", \"output\": {{\"steps\": {steps}}}}}) + \"\\n\")\nout.flush()\n"
    );
    std::fs::write(dir.join("agent.py"), script).unwrap_or_else(|e| panic!("write agent: {e}"));
    let mut spec = agent(
        name,
        &["bench"],
        &format!("benchmark agent emitting {steps} steps"),
        1_000_000,
    );
    spec.max_concurrency = 10_000;
    spec.runtime_digest = package_digest(dir)
        .unwrap_or_else(|e| panic!("package digest: {e}"))
        .to_hex();
    spec.run = RunSpec {
        command: if steps == 0 {
            vec![
                "sh".into(),
                "-c".into(),
                r#"read line; echo '{"type":"result","output":{}}'"#.into(),
            ]
        } else {
            vec!["python3".into(), "agent.py".into()]
        },
        workdir: dir.to_path_buf(),
        ..Default::default()
    };
    spec
}
