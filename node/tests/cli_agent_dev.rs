//! The agent author's local loop, as a new provider uses it: `souk agent new` writes a
//! skeleton, `souk agent check` validates it, `souk agent run` runs it exactly as a hire
//! would (sandboxed, this node's key) with no network and no client, answers its question
//! from `--answer`, and writes a bundle that `souk verify` accepts.

mod common;

use common::*;

#[test]
fn new_check_run_and_verify_a_python_agent() {
    let tmp = tempdir();
    let home = tmp.path().join("home");
    init(&home, false);
    let agent = tmp.path().join("wc");
    let out = souk(
        &home,
        &["agent", "new", "wc", "--dir", path_str(&agent), "--json"],
    );
    let made = ok_json(&out, "agent new");
    assert!(
        made["files"].as_array().is_some_and(|f| f.len() > 5),
        "{made}"
    );
    let toml = agent.join("agent.toml");
    let example = agent.join("example.json");

    let checked = ok_json(
        &souk(&home, &["agent", "check", path_str(&toml), "--json"]),
        "agent check",
    );
    assert_eq!(checked["name"], "wc");
    assert_eq!(checked["runtime_digest"].as_str().map(str::len), Some(64));

    // Runs as a hire: steps on stderr, the output on stdout, the bundle verifies.
    let bundle = tmp.path().join("run.souk");
    let out = souk(
        &home,
        &[
            "agent",
            "run",
            path_str(&toml),
            "--input",
            path_str(&example),
            "-o",
            path_str(&bundle),
        ],
    );
    let output: serde_json::Value = serde_json::from_str(&ok(&out, "agent run"))
        .unwrap_or_else(|e| panic!("the output is not JSON: {e}"));
    assert_eq!(output["words"], 8, "{output}");
    assert!(stderr(&out).contains("word-count"), "{}", stderr(&out));
    let verified = ok_json(
        &souk(&home, &["verify", path_str(&bundle), "--json"]),
        "verify",
    );
    assert_eq!(verified["valid"], true, "{verified}");
    assert_eq!(verified["state"], "completed", "{verified}");

    // No text: the agent asks. Without an answer the run fails and says how to give one;
    // with one it completes.
    let empty = tmp.path().join("empty.json");
    std::fs::write(&empty, "{}").unwrap_or_else(|e| panic!("{e}"));
    let out = souk(
        &home,
        &["agent", "run", path_str(&toml), "--input", path_str(&empty)],
    );
    assert_failure(&out, 1, &["What text should I work on?", "--answer"]);
    let out = souk(
        &home,
        &[
            "agent",
            "run",
            path_str(&toml),
            "--input",
            path_str(&empty),
            "--answer",
            "\"one two three\"",
        ],
    );
    let output: serde_json::Value = serde_json::from_str(&ok(&out, "agent run --answer"))
        .unwrap_or_else(|e| panic!("the output is not JSON: {e}"));
    assert_eq!(output["words"], 3, "{output}");

    // An input that breaks the schema is refused before the agent starts.
    let bad = tmp.path().join("bad.json");
    std::fs::write(&bad, r#"{"text": 3}"#).unwrap_or_else(|e| panic!("{e}"));
    let out = souk(
        &home,
        &["agent", "run", path_str(&toml), "--input", path_str(&bad)],
    );
    assert_failure(&out, 1, &["/text"]);
}

#[test]
fn new_refuses_bad_names_and_existing_dirs_and_check_names_the_problem() {
    let tmp = tempdir();
    let home = tmp.path().join("home");
    init(&home, false);
    let out = souk(&home, &["agent", "new", "Bad Name"]);
    assert_failure(&out, 2, &["not a valid agent name"]);
    let dir = tmp.path().join("taken");
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.join("x"), "x").unwrap_or_else(|e| panic!("{e}"));
    let out = souk(&home, &["agent", "new", "ok", "--dir", path_str(&dir)]);
    assert_failure(&out, 2, &["not empty"]);

    // A Rust skeleton checks once it is built; before, check says what is missing.
    let rs = tmp.path().join("rs");
    ok(
        &souk(
            &home,
            &[
                "agent",
                "new",
                "rs",
                "--lang",
                "rust",
                "--dir",
                path_str(&rs),
            ],
        ),
        "agent new --lang rust",
    );
    for file in [
        "Cargo.toml",
        "src/main.rs",
        "agent.toml",
        "schema/input.json",
    ] {
        assert!(rs.join(file).is_file(), "{file} missing");
    }
    let out = souk(&home, &["agent", "check", path_str(&rs.join("agent.toml"))]);
    assert_failure(&out, 1, &["does not exist"]);
}
