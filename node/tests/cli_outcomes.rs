//! What a client sees at the end of each command: exit statuses (0 success, 1 failed or
//! refused, 2 usage, 3 node unreachable, 130 Ctrl-C), errors as JSON under `--json`, hints
//! that repeat the `--data-dir` or `SOUK_HOME` given, `hire --wait` ending with the output or
//! the reason, `hire output`, `receipts show`, `receipts export` refusing a terminal, settling
//! refused for hires that did not complete, deadlines beyond the agent's limit refused,
//! completions and `config show|check`.
//!
//! Real `souk` processes: a full provider running the example csv-analyst agent sandboxed, a
//! light client. Every wait polls a condition with a deadline.
#![cfg(unix)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;

use common::*;
use serde_json::Value;

/// The one JSON object a failed command printed on stderr under `--json`.
fn json_error(out: &Output, code: i32) -> Value {
    assert_eq!(out.status.code(), Some(code), "{}", stderr(out));
    let err = stderr(out);
    let line = err.lines().last().unwrap_or_default();
    let v: Value = serde_json::from_str(line)
        .unwrap_or_else(|e| panic!("stderr is not one JSON object ({e}): {err:?}"));
    assert_eq!(v["code"], code, "{v}");
    assert!(v["error"].as_str().is_some_and(|s| !s.is_empty()), "{v}");
    v
}

fn vector(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../spec/vectors/bundles")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

#[test]
fn exit_statuses_and_json_errors_without_a_node() {
    let tmp = tempdir();
    let dir = tmp.path().join("node");
    init(&dir, true);

    // Documented in --help.
    let help = ok(
        &souk_cmd()
            .arg("--help")
            .output()
            .unwrap_or_else(|e| panic!("{e}")),
        "help",
    );
    for want in [
        "Exit status",
        "1    the operation failed",
        "3    the node cannot",
    ] {
        assert!(help.contains(want), "{want:?} missing from --help:\n{help}");
    }

    // 3: no node; under --json the error is JSON on stderr and stdout is empty.
    let out = souk(&dir, &["hires", "--json"]);
    let v = json_error(&out, 3);
    assert!(stdout(&out).is_empty());
    assert!(
        v["error"]
            .as_str()
            .is_some_and(|e| e.contains(&format!("souk --data-dir {} node run", path_str(&dir)))),
        "{v}"
    );
    // ... and the hint repeats SOUK_HOME when that is how the directory was given.
    let out = souk_cmd()
        .env("SOUK_HOME", &dir)
        .args(["hire", "status", "abcdef"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_failure(
        &out,
        3,
        &[&format!("SOUK_HOME={} souk node run", path_str(&dir))],
    );

    // 2: usage, in both forms, including clap's own errors.
    let out = souk(&dir, &["--json", "hire", "--input", "x.json"]);
    json_error(&out, 2);
    let out = souk(&dir, &["search", "--max-price", "cheap", "--json"]);
    json_error(&out, 2);
    let out = souk(&dir, &["hire", "m", "--input", "/no/such/input.json"]);
    assert_clean_error(&out, &["/no/such/input.json"]);

    // receipts export --json needs -o; without -o a terminal is refused (checked before any
    // node is asked: this directory has none running).
    let out = souk(&dir, &["receipts", "export", "abcdef", "--json"]);
    assert!(
        json_error(&out, 2)["error"]
            .as_str()
            .is_some_and(|e| e.contains("-o FILE"))
    );
    let cmd = format!(
        "{} --data-dir {} receipts export abcdef",
        env!("CARGO_BIN_EXE_souk"),
        path_str(&dir)
    );
    // `script` runs the command on a pseudo-terminal and exits with its status.
    let out = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run script(1) (util-linux): {e}"));
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains("refusing to write it to a terminal"),
        "{text}"
    );
    assert!(text.contains("-o FILE"), "{text}");

    // receipts show on bundle files: the trace, the verdict, exit 1 when invalid.
    let out = souk(
        &dir,
        &["receipts", "show", &vector("valid-failed-disputed.souk")],
    );
    let text = ok(&out, "receipts show (failed hire)");
    assert!(text.contains("outcome   FAILED at #4"), "{text}");
    assert!(text.contains("the last step before it: #3"), "{text}");
    assert!(text.contains("verified  valid"), "{text}");
    assert!(text.contains("2 USD"), "{text}");
    let out = souk(
        &dir,
        &["receipts", "show", &vector("invalid-r6-entry-prev.souk")],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("verification fails here: R6"), "{text}");
    let out = souk(
        &dir,
        &[
            "receipts",
            "show",
            "--json",
            &vector("valid-completed-accepted.souk"),
        ],
    );
    let v = ok_json(&out, "receipts show --json");
    assert_eq!(v["verification"]["valid"], true, "{v}");
    assert_eq!(v["state"], "completed", "{v}");
    assert!(
        v["steps"]
            .as_array()
            .is_some_and(|s| s.iter().any(|s| s["parent"].is_u64())),
        "no tree: {v}"
    );
    let out = souk(&dir, &["receipts", "show", "/no/such/file.souk"]);
    assert_clean_error(&out, &["/no/such/file.souk"]);

    // Completions for the shells people use.
    for shell in ["bash", "zsh", "fish"] {
        let out = souk_cmd()
            .args(["completions", shell])
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        let text = ok(&out, shell);
        assert!(
            text.contains("souk") && text.contains("receipts"),
            "{shell}: {text}"
        );
    }

    // config show | check.
    let v = ok_json(&souk(&dir, &["config", "show", "--json"]), "config show");
    assert_eq!(v["config"]["mode"], "light", "{v}");
    let text = ok(&souk(&dir, &["config", "show"]), "config show");
    assert!(text.contains("mode = \"light\""), "{text}");
    ok(&souk(&dir, &["config", "check"]), "config check");
    let config = dir.join("config.toml");
    let good = std::fs::read_to_string(&config).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(&config, good.replace("mesh_n = 4", "mesh_n = 99"))
        .unwrap_or_else(|e| panic!("{e}"));
    let out = souk(&dir, &["config", "check"]);
    assert_clean_error(&out, &["mesh_n", path_str(&config)]);
    let out = souk(&dir, &["config", "check", "--json"]);
    assert!(
        json_error(&out, 2)["error"]
            .as_str()
            .is_some_and(|e| e.contains("mesh_n"))
    );
}

/// A running provider and light client with the csv-analyst agent published and found.
struct Market {
    _tmp: tempfile::TempDir,
    provider: NodeProc,
    client: NodeProc,
    cdir: std::path::PathBuf,
    manifest: String,
    inputs: std::path::PathBuf,
}

impl Market {
    fn start() -> Self {
        let tmp = tempdir();
        let pdir = tmp.path().join("provider");
        let cdir = tmp.path().join("client dir");
        init(&pdir, false);
        init(&cdir, true);
        let mut provider = NodeProc::start(
            "provider",
            &pdir,
            &tmp.path().join("provider.log"),
            &["--listen", LISTEN],
        );
        let info = provider.wait_ready();
        let paddr = format!(
            "{}/p2p/{}",
            info["listen_addrs"][0].as_str().unwrap_or_default(),
            info["peer_id"].as_str().unwrap_or_default()
        );
        let mut client = NodeProc::start(
            "client",
            &cdir,
            &tmp.path().join("client.log"),
            &["--light", "--listen", LISTEN, "--bootstrap", &paddr],
        );
        client.wait_ready();
        let manifest = ok(
            &souk(&pdir, &["agent", "publish", path_str(&example_agent())]),
            "agent publish",
        )
        .trim()
        .to_owned();
        wait_for("the client to find the agent", || {
            let out = souk(&cdir, &["search", "csv", "--json"]);
            stdout(&out).contains(&manifest).then_some(())
        });
        let inputs = tmp.path().join("inputs");
        std::fs::create_dir(&inputs).unwrap_or_else(|e| panic!("{e}"));
        for (name, text) in [
            ("good.json", r#"{"csv": "name,price\na,3\nb,6\n"}"#),
            ("empty.json", "{}"),
            // Matches the input schema, but the agent cannot analyse it.
            ("bad.json", r#"{"csv": "a,a\n1,2\n"}"#),
        ] {
            std::fs::write(inputs.join(name), text).unwrap_or_else(|e| panic!("{e}"));
        }
        Self {
            _tmp: tmp,
            provider,
            client,
            cdir,
            manifest,
            inputs,
        }
    }

    fn input(&self, name: &str) -> String {
        path_str(&self.inputs.join(name)).to_owned()
    }

    fn souk(&self, args: &[&str]) -> Output {
        souk(&self.cdir, args)
    }

    fn state(&self, hire: &str) -> String {
        let v = ok_json(&self.souk(&["hire", "status", hire, "--json"]), "status");
        v["state"].as_str().unwrap_or_default().to_owned()
    }

    fn hire_in_state(&self, state: &str) -> String {
        wait_for(&format!("a hire in state {state}"), || {
            let all = ok_json(&self.souk(&["hires", "--json"]), "hires");
            all.as_array()?
                .iter()
                .find(|h| h["state"] == state)
                .and_then(|h| h["hire_id"].as_str().map(str::to_owned))
        })
    }
}

#[test]
fn hires_end_with_their_output_or_their_reason() {
    let mut m = Market::start();
    let dir_flag = format!("souk --data-dir '{}'", path_str(&m.cdir));

    // --wait: the output on stdout, a settle hint with the data directory on stderr.
    let out = m.souk(&[
        "hire",
        &m.manifest,
        "--input",
        &m.input("good.json"),
        "--wait",
    ]);
    let text = ok(&out, "hire --wait");
    let output: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("stdout is not the output ({e}): {text:?}"));
    assert_eq!(output["rows"], 2, "{output}");
    assert!(!text.contains("completed:"), "{text}");
    let err = stderr(&out);
    assert!(err.contains("0.5 USD"), "{err}");
    assert!(err.contains(&format!("{dir_flag} hire accept")), "{err}");
    let done = m.hire_in_state("completed");

    // hire output: by the short ids the CLI prints, to stdout or a file.
    let out = m.souk(&["hire", "output", &done[..12]]);
    let again: Value = serde_json::from_str(&ok(&out, "hire output")).unwrap_or_default();
    assert_eq!(again, output);
    let file = m.inputs.join("output.json");
    ok(
        &m.souk(&["hire", "output", &done[..8], "-o", path_str(&file)]),
        "hire output -o",
    );
    let written: Value =
        serde_json::from_slice(&std::fs::read(&file).unwrap_or_default()).unwrap_or_default();
    assert_eq!(written, output);

    // receipts show by hire id: every payload this node holds, as a tree, verified.
    let text = ok(&m.souk(&["receipts", "show", &done[..12]]), "receipts show");
    for want in [
        "├─ tool-call       column-stats {",
        "└─ checkpoint",
        "verified  valid",
        "outcome   completed",
    ] {
        assert!(text.contains(want), "{want:?} missing:\n{text}");
    }
    let bundle = m.inputs.join("run.souk");
    let v = ok_json(
        &m.souk(&[
            "receipts",
            "export",
            &done,
            "-o",
            path_str(&bundle),
            "--json",
        ]),
        "export --json",
    );
    assert_eq!(v["hire_id"], done.as_str());
    assert!(v["bytes"].as_u64().is_some_and(|b| b > 0), "{v}");

    // Prices in currency units in lists.
    let text = ok(&m.souk(&["hires"]), "hires");
    assert!(text.contains("0.5 USD"), "{text}");

    // A deadline beyond the agent's limit (600 s) is refused with the limit.
    let out = m.souk(&[
        "hire",
        &m.manifest,
        "--input",
        &m.input("good.json"),
        "--deadline",
        "2d",
    ]);
    assert_failure(&out, 1, &["10m", "2days"]);
    let out = m.souk(&[
        "hire",
        &m.manifest,
        "--input",
        &m.input("good.json"),
        "--deadline",
        "soon",
    ]);
    assert_clean_error(&out, &["--deadline", "soon"]);

    // A hire that fails: --wait ends with the reason and where to look (exit 1); it cannot be
    // accepted, only disputed.
    let out = m.souk(&[
        "hire",
        &m.manifest,
        "--input",
        &m.input("bad.json"),
        "--wait",
    ]);
    let msg = assert_failure_keeping_stdout(
        &out,
        1,
        &["failed", "column names must be non-empty and unique"],
    );
    assert!(msg.contains(&format!("{dir_flag} receipts show")), "{msg}");
    let failed = m.hire_in_state("failed");
    let out = m.souk(&["hire", "accept", &failed[..12]]);
    assert_failure(
        &out,
        1,
        &["failed", "only a completed hire can be accepted"],
    );
    let out = m.souk(&["hire", "output", &failed[..12]]);
    assert_failure(
        &out,
        1,
        &["no output", "column names must be non-empty and unique"],
    );

    // Ctrl-C during --wait: following stops (130), the hire goes on, the hint says how to
    // watch or cancel it on this data directory.
    let mut child = souk_cmd()
        .arg("--data-dir")
        .arg(&m.cdir)
        .args([
            "hire",
            &m.manifest,
            "--input",
            &m.input("empty.json"),
            "--wait",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let (tx, rx) = mpsc::channel();
    let err = child.stderr.take().unwrap_or_else(|| panic!("no stderr"));
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            all.push_str(&line);
            all.push('\n');
            let _ = tx.send(line);
        }
        all
    });
    loop {
        let line = rx
            .recv_timeout(DEADLINE)
            .unwrap_or_else(|e| panic!("no question from the agent: {e}"));
        if line.starts_with("answer with:") {
            assert!(line.contains(&dir_flag), "{line}");
            break;
        }
    }
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(sent.success());
    let status = wait_for("hire --wait to stop", || {
        child.try_wait().unwrap_or_else(|e| panic!("{e}"))
    });
    let err = reader.join().unwrap_or_default();
    assert_eq!(status.code(), Some(130), "{err}");
    assert!(err.contains("the hire goes on"), "{err}");
    assert!(err.contains(&format!("{dir_flag} hire cancel")), "{err}");
    let asking = m.hire_in_state("input-required");

    // answer and cancel print JSON under --json.
    let v = ok_json(
        &m.souk(&["hire", "answer", &asking[..12], r#"{"csv": ""}"#, "--json"]),
        "answer --json",
    );
    assert_eq!(v["answered"], true, "{v}");
    assert_eq!(v["hire_id"], asking.as_str());
    wait_for("the second question", || {
        (m.state(&asking) == "input-required").then_some(())
    });
    let v = ok_json(
        &m.souk(&[
            "hire",
            "cancel",
            &asking[..12],
            "--reason",
            "enough",
            "--json",
        ]),
        "cancel --json",
    );
    assert_eq!(v["canceling"], true, "{v}");
    wait_for("the hire to be canceled", || {
        (m.state(&asking) == "canceled").then_some(())
    });
    let out = m.souk(&["--json", "hire", "accept", &asking[..12]]);
    let v = json_error(&out, 1);
    assert_eq!(v["api_code"], "wrong-state", "{v}");
    assert!(
        v["error"].as_str().is_some_and(|e| e.contains("canceled")),
        "{v}"
    );
    let text = ok(
        &m.souk(&["receipts", "show", &asking[..12]]),
        "receipts show canceled",
    );
    assert!(text.contains("outcome   CANCELED at"), "{text}");
    assert!(text.contains("(answered at #"), "{text}");
    ok(
        &m.souk(&["hire", "reject", &asking[..12], "--reason", "canceled"]),
        "reject",
    );

    // Ids: a prefix that matches nothing is a refusal (1), one that is no id a usage error (2).
    assert_failure(
        &m.souk(&["hire", "status", "000000"]),
        1,
        &["no hire starts with"],
    );
    assert_clean_error(&m.souk(&["hire", "status", "xyz"]), &["not a hire id"]);

    m.client.terminate();
    m.provider.terminate();
}

/// Like `assert_failure`, for commands that may also have printed steps on stdout.
fn assert_failure_keeping_stdout(out: &Output, code: i32, wants: &[&str]) -> String {
    let stripped = Output {
        status: out.status,
        stdout: Vec::new(),
        stderr: out.stderr.clone(),
    };
    assert_failure(&stripped, code, wants)
}
