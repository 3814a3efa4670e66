//! `souk verify` as a user runs it: exit status, human and JSON output, on the spec vectors
//! and on a bundle with one flipped byte.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn souk(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_souk"))
        .args(args)
        .env_remove("SOUK_HOME")
        .output()
        .unwrap_or_else(|e| panic!("cannot run souk: {e}"))
}

fn vectors() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../spec/vectors/bundles")
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap_or_else(|| panic!("non-UTF-8 path"))
}

fn index() -> Vec<serde_json::Value> {
    let index: serde_json::Value = serde_json::from_slice(
        &std::fs::read(vectors().join("index.json")).unwrap_or_else(|e| panic!("{e}")),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    index.as_array().cloned().unwrap_or_default()
}

/// Every vector, in every signature-check mode (and under the older flag name `--strict`):
/// the exit status and rule the index states, and the same JSON apart from the mode's name.
#[test]
fn every_vector_gets_its_exit_status_and_rule_in_every_mode() {
    let vectors_seen = index().len();
    assert!(vectors_seen >= 40, "{vectors_seen}");
    for v in index() {
        let file = vectors().join(v["file"].as_str().unwrap_or_default());
        let mut outputs = Vec::new();
        for (flags, mode) in [
            (&[][..], "batch"),
            (&["--one-by-one"][..], "one-by-one"),
            (&["--strict"][..], "one-by-one"),
        ] {
            let mut args = vec!["verify", "--json"];
            args.extend_from_slice(flags);
            args.push(path_str(&file));
            let out = souk(&args);
            let mut json: serde_json::Value = serde_json::from_slice(&out.stdout)
                .unwrap_or_else(|e| panic!("{} {flags:?}: {e}", file.display()));
            assert_eq!(json["signatures"], mode, "{}", file.display());
            if v["valid"].as_bool() == Some(true) {
                assert_eq!(out.status.code(), Some(0), "{} {flags:?}", file.display());
                assert_eq!(json["state"], v["state"]);
                assert_eq!(json["entries"], v["entries"]);
            } else {
                assert_eq!(out.status.code(), Some(1), "{} {flags:?}", file.display());
                assert_eq!(json["rule"], v["rule"], "{} {flags:?}", file.display());
                assert_eq!(json["entry"], v["entry"], "{} {flags:?}", file.display());
            }
            json["signatures"] = serde_json::Value::Null;
            outputs.push(json);
        }
        assert!(
            outputs.windows(2).all(|w| w[0] == w[1]),
            "{}: modes disagree: {outputs:?}",
            file.display()
        );
    }
}

/// The bundle of issue #10 (two entries with a torsion component in R, which only the
/// provider could sign) is valid whichever way it is checked.
#[test]
fn torsion_signed_entries_are_valid_in_every_mode() {
    let file = vectors().join("valid-torsion-r-entries.souk");
    for flags in [&[][..], &["--one-by-one"][..]] {
        let mut args = vec!["verify"];
        args.extend_from_slice(flags);
        args.push(path_str(&file));
        let out = souk(&args);
        assert_eq!(out.status.code(), Some(0), "{flags:?}");
        assert!(String::from_utf8_lossy(&out.stdout).starts_with("valid: hire "));
    }
}

/// There is no mode that checks fewer signatures: `--head-only` is a usage error.
#[test]
fn head_only_is_not_a_mode() {
    let file = vectors().join("valid-in-progress.souk");
    let out = souk(&["verify", "--head-only", path_str(&file)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
}

#[test]
fn human_output_names_hire_state_and_verdict() {
    let file = vectors().join("valid-completed-accepted.souk");
    let out = souk(&["verify", path_str(&file)]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0));
    for want in [
        "valid: hire ",
        "provider: souk",
        "client: souk",
        "entries: 8",
        "state: completed",
        "verdict: accepted",
        "signatures: batch",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
}

#[test]
fn a_flipped_byte_fails_and_names_the_rule() {
    let src = std::fs::read(vectors().join("valid-completed-accepted.souk"))
        .unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut bad = src.clone();
    let at = bad.len() / 2;
    bad[at] ^= 0x01;
    let file = dir.path().join("tampered.souk");
    std::fs::write(&file, &bad).unwrap_or_else(|e| panic!("{e}"));
    let out = souk(&["verify", path_str(&file)]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("invalid: rule "), "{text}");
}

#[test]
fn missing_file_is_a_clear_error_with_status_2() {
    let out = souk(&["verify", "/nonexistent/run.souk"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("error: cannot read /nonexistent/run.souk"),
        "{err}"
    );
    assert!(!err.contains("panicked") && !err.contains("backtrace"));
}

#[test]
fn version_and_help() {
    let out = souk(&["--version"]);
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("souk "));
    let out = souk(&["--help"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("verify"));
}
