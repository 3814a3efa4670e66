//! The Python SDK for agent authors (`sdk/python`, package `souk-agent`) is tested with
//! pytest as part of the test command: this test runs its suite and fails with pytest's own
//! report. pytest is the one thing it needs beyond Python 3 (`.ci/run` installs it).

use std::path::Path;
use std::process::Command;

#[test]
fn the_python_sdk_suite_passes() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let sdk = root.join("sdk/python");
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
        .arg(&sdk)
        .current_dir(&sdk)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .unwrap_or_else(|e| panic!("cannot run pytest: {e}"));
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "the SDK's pytest suite failed:\n{report}");
    assert!(report.contains(" passed"), "pytest ran no test:\n{report}");
}
