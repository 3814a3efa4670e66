//! The Python SDK for agent authors (`sdk/python`, package `souk-agent`) and the example
//! agents written on it are tested with pytest as part of the test command: these tests run
//! their suites and fail with pytest's own report. pytest is the one thing they need beyond
//! Python 3 (`.ci/run` installs it).

use std::path::Path;
use std::process::Command;

#[test]
fn the_python_sdk_suite_passes() {
    pytest("sdk/python");
}

#[test]
fn the_research_agent_suite_passes() {
    pytest("examples/research-agent");
}

/// Runs pytest on `dir` (relative to the repository) and fails with its report.
fn pytest(dir: &str) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let suite = root.join(dir);
    let probe = Command::new("python3")
        .args(["-c", "import pytest"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run python3 ({e}): install Python 3"));
    assert!(
        probe.status.success(),
        "pytest is not installed for python3: run `python3 -m pip install pytest` (or \
         `apt-get install python3-pytest`); .ci/run does this itself"
    );
    let out = Command::new("python3")
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
        .arg(&suite)
        .current_dir(&suite)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .unwrap_or_else(|e| panic!("cannot run pytest: {e}"));
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "the pytest suite of {dir} failed:\n{report}"
    );
    assert!(report.contains(" passed"), "pytest ran no test:\n{report}");
}
