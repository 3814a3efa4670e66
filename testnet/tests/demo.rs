//! End to end: `souk-testnet demo` (and `up` / `status` / `down`) with the workspace's own
//! `souk` binary, real processes on loopback.
//!
//! The `souk` binary sits next to `souk-testnet` in the target directory. `cargo test
//! --workspace` builds it (souk-node's own tests need it); when it is missing or older than
//! the node's sources (e.g. `cargo test -p souk-testnet` after an edit), the test builds it with
//! `cargo build -p souk-node -p souk-agent-summarizer` first. The text-summarizer agent is
//! published only if its release binary exists; the demo hires csv-analyst (Python 3).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime};

/// A run that takes longer than this is stuck: it is stopped and the test fails (a hang guard,
/// not a timing target: the demo takes seconds).
const TIMEOUT: Duration = Duration::from_secs(60);

fn testnet_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_souk-testnet"))
}

fn workspace() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent()
        .unwrap_or_else(|| panic!("{} has no parent", here.display()))
        .to_path_buf()
}

fn modified(p: &Path) -> Option<SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

/// The newest modification time of the sources `souk` is built from.
fn newest_source(dir: &Path, newest: &mut SystemTime) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        let name = e.file_name();
        if name == "target" || name.to_string_lossy().starts_with('.') {
            continue;
        }
        if p.is_dir() {
            newest_source(&p, newest);
        } else if p
            .extension()
            .is_some_and(|x| x == "rs" || x == "toml" || x == "lock")
            && let Some(t) = modified(&p)
        {
            *newest = (*newest).max(t);
        }
    }
}

/// The `souk` binary next to souk-testnet, built first if missing or stale.
fn souk_bin() -> PathBuf {
    static SOUK: OnceLock<PathBuf> = OnceLock::new();
    SOUK.get_or_init(|| {
        let target = testnet_bin()
            .parent()
            .unwrap_or_else(|| panic!("souk-testnet has no directory"))
            .to_path_buf();
        let souk = target.join(format!("souk{}", std::env::consts::EXE_SUFFIX));
        let root = workspace();
        let mut newest = SystemTime::UNIX_EPOCH;
        for d in ["node", "protocol", "crates"] {
            newest_source(&root.join(d), &mut newest);
        }
        if let Some(t) = modified(&root.join("Cargo.lock")) {
            newest = newest.max(t);
        }
        let fresh = modified(&souk).is_some_and(|t| t >= newest);
        if !fresh {
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let mut cmd = Command::new(cargo);
            cmd.current_dir(&root).args([
                "build",
                "-p",
                "souk-node",
                "-p",
                "souk-agent-summarizer",
            ]);
            if target.file_name().is_some_and(|n| n == "release") {
                cmd.arg("--release");
            }
            // Not the variables cargo set for this test (CARGO_PKG_NAME, CARGO_MANIFEST_DIR,
            // ...): build scripts rerun when they change, so the nested build would rebuild
            // crates such as ring, and the next ordinary build would rebuild them again.
            for (key, _) in std::env::vars_os() {
                let k = key.to_string_lossy();
                if k.starts_with("CARGO_PKG_")
                    || k.starts_with("CARGO_MANIFEST_")
                    || k.starts_with("CARGO_BIN_")
                    || [
                        "CARGO_CRATE_NAME",
                        "CARGO_PRIMARY_PACKAGE",
                        "CARGO_TARGET_TMPDIR",
                    ]
                    .contains(&k.as_ref())
                    || k == "CARGO_RUSTC_CURRENT_DIR"
                    || k == "OUT_DIR"
                {
                    cmd.env_remove(&key);
                }
            }
            let status = cmd
                .status()
                .unwrap_or_else(|e| panic!("cannot run cargo build: {e}"));
            assert!(status.success(), "cargo build of souk failed: {status}");
        }
        assert!(souk.is_file(), "no souk binary at {}", souk.display());
        souk
    })
    .clone()
}

/// Runs souk-testnet with `args` (and `--souk`), killing it after [`TIMEOUT`].
fn testnet(args: &[&str]) -> Output {
    let souk = souk_bin();
    let mut child = Command::new(testnet_bin())
        .arg("--souk")
        .arg(&souk)
        .args(args)
        .env_remove("SOUK_HOME")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start souk-testnet: {e}"));
    let start = Instant::now();
    let out_pipe = child.stdout.take();
    let err_pipe = child.stderr.take();
    let out_reader = std::thread::spawn(move || read_all(out_pipe));
    let err_reader = std::thread::spawn(move || read_all(err_pipe));
    let status = loop {
        if let Some(s) = child
            .try_wait()
            .unwrap_or_else(|e| panic!("cannot wait for souk-testnet: {e}"))
        {
            break s;
        }
        if start.elapsed() > TIMEOUT {
            // SIGTERM first, so the testnet stops its nodes.
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
            let _ = child.wait();
            let out = out_reader.join().unwrap_or_default();
            let err = err_reader.join().unwrap_or_default();
            panic!(
                "souk-testnet {args:?} took more than {TIMEOUT:?}\n--- stdout\n{}\n--- stderr\n{}",
                String::from_utf8_lossy(&out),
                String::from_utf8_lossy(&err)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: out_reader.join().unwrap_or_default(),
        stderr: err_reader.join().unwrap_or_default(),
    }
}

fn read_all(pipe: Option<impl std::io::Read>) -> Vec<u8> {
    let mut buf = Vec::new();
    if let Some(mut p) = pipe {
        let _ = p.read_to_end(&mut buf);
    }
    buf
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn assert_ok(what: &str, out: &Output) -> String {
    let (stdout, stderr) = text(out);
    assert!(
        out.status.success(),
        "{what} failed ({})\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
    stdout
}

/// Whether `pid` is a live process (not a zombie).
fn alive(pid: u64) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
        Err(_) => Command::new("kill")
            .arg("-0")
            .arg(pid.to_string())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success()),
    }
}

fn pids(state: &serde_json::Value) -> Vec<u64> {
    state["nodes"]
        .as_array()
        .unwrap_or_else(|| panic!("no nodes in {state}"))
        .iter()
        .map(|n| n["pid"].as_u64().unwrap_or_else(|| panic!("no pid in {n}")))
        .collect()
}

fn wait_dead(pids: &[u64]) {
    let start = Instant::now();
    while pids.iter().any(|p| alive(*p)) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "node processes still running: {pids:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn demo_hires_accepts_and_verifies() {
    let out = testnet(&["demo", "--nodes", "3"]);
    let stdout = assert_ok("souk-testnet demo", &out);
    for needle in [
        "[1/9] Starting 3 full nodes",
        "node-0 signed and announced csv-analyst",
        "found csv-analyst",
        "state accepted",
        "tool-call   column-stats",
        "completed   completed",
        "verdict accepted",
        "node-0 (provider) received the countersigned verdict: accepted",
        "valid: hire",
        "verdict: accepted (countersigned by the client)",
        "PASS",
        "processes stopped cleanly",
    ] {
        assert!(stdout.contains(needle), "no {needle:?} in:\n{stdout}");
    }
    // The temporary directory is gone.
    let data = stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("data: "))
        .and_then(|l| l.split(" (").next())
        .unwrap_or_else(|| panic!("no data line in:\n{stdout}"));
    assert!(!Path::new(data).exists(), "{data} was not removed");
}

#[test]
fn demo_keep_then_status_and_down() {
    let out = testnet(&["demo", "--nodes", "2", "--keep"]);
    let stdout = assert_ok("souk-testnet demo --keep", &out);
    assert!(stdout.contains("PASS"), "{stdout}");
    let dir = stdout
        .lines()
        .find_map(|l| l.strip_prefix("The network is still running (--keep): "))
        .map(|d| PathBuf::from(d.trim()))
        .unwrap_or_else(|| panic!("no kept directory in:\n{stdout}"));
    let dir_arg = dir.display().to_string();
    let state: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("testnet.json"))
            .unwrap_or_else(|e| panic!("no testnet.json: {e}")),
    )
    .unwrap_or_else(|e| panic!("bad testnet.json: {e}"));
    let pids = pids(&state);
    assert_eq!(pids.len(), 3, "2 full nodes and a light client: {state}");
    assert!(pids.iter().all(|p| alive(*p)), "a node is not running");

    let status = testnet(&["status", "--dir", &dir_arg, "--json"]);
    let report: serde_json::Value = serde_json::from_str(&assert_ok("status", &status))
        .unwrap_or_else(|e| panic!("status --json: {e}"));
    assert_eq!(report["healthy"], true, "{report}");
    assert_eq!(report["nodes"][0]["agents"], 1, "{report}");

    let down = testnet(&["down", "--dir", &dir_arg]);
    let said = assert_ok("down", &down);
    assert!(said.contains("3 processes stopped cleanly"), "{said}");
    wait_dead(&pids);
    assert!(!dir.join("testnet.json").exists());
    assert!(dir.join("node-0").join("node.log").is_file(), "logs kept");
    let gone = testnet(&["status", "--dir", &dir_arg]);
    assert!(!gone.status.success(), "status after down must fail");
    std::fs::remove_dir_all(&dir).unwrap_or_else(|e| panic!("cannot remove {dir_arg}: {e}"));
}

#[test]
fn up_status_down() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let dir = tmp.path().join("net");
    let dir_arg = dir.display().to_string();
    let up = testnet(&[
        "up", "--nodes", "2", "--light", "1", "--agents", "examples", "--dir", &dir_arg, "--json",
    ]);
    let said = assert_ok("up", &up);
    let printed: serde_json::Value = serde_json::from_str(said.trim())
        .unwrap_or_else(|e| panic!("`up --json` printed no JSON ({e}): {said}"));
    let state: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("testnet.json"))
            .unwrap_or_else(|e| panic!("no testnet.json: {e}")),
    )
    .unwrap_or_else(|e| panic!("bad testnet.json: {e}"));
    assert_eq!(
        printed, state,
        "`up --json` prints the network's description"
    );
    let pids = pids(&state);
    assert_eq!(pids.len(), 3);
    assert_eq!(state["nodes"][0]["agents"][0], "csv-analyst", "{state}");

    // A second `up` on the same directory refuses.
    let again = testnet(&["up", "--dir", &dir_arg]);
    assert!(!again.status.success());
    assert!(
        text(&again).1.contains("already running"),
        "{:?}",
        text(&again)
    );

    let status = testnet(&["status", "--dir", &dir_arg]);
    let table = assert_ok("status", &status);
    assert!(
        table.contains("node-0") && table.contains("light-0"),
        "{table}"
    );

    let down = testnet(&["down", "--dir", &dir_arg, "--json"]);
    let said = assert_ok("down", &down);
    let report: serde_json::Value = serde_json::from_str(said.trim())
        .unwrap_or_else(|e| panic!("`down --json` printed no JSON ({e}): {said}"));
    let stopped = ["clean", "already", "killed"]
        .iter()
        .map(|k| report["stopped"][k].as_array().map_or(0, Vec::len))
        .sum::<usize>();
    assert_eq!(stopped, 3, "{report}");
    wait_dead(&pids);
}

/// The conformance kit against our own nodes (`up` with a full and a light node): every
/// check passes, on both roles, and each row names a spec rule.
#[test]
fn conformance_kit_passes_against_the_reference_node() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let dir = tmp.path().join("net");
    let dir_arg = dir.display().to_string();
    let up = testnet(&[
        "up", "--nodes", "1", "--light", "1", "--dir", &dir_arg, "--json",
    ]);
    let state: serde_json::Value = serde_json::from_str(assert_ok("up", &up).trim())
        .unwrap_or_else(|e| panic!("`up --json` printed no JSON: {e}"));
    let mut results = Vec::new();
    for node in state["nodes"].as_array().cloned().unwrap_or_default() {
        let addr = node["addrs"][0].as_str().unwrap_or_default().to_owned();
        let data = node["data_dir"].as_str().unwrap_or_default().to_owned();
        let out = testnet(&[
            "conformance",
            "--node",
            &addr,
            "--data-dir",
            &data,
            "--json",
        ]);
        let said = assert_ok("conformance", &out);
        let report: serde_json::Value = serde_json::from_str(&said)
            .unwrap_or_else(|e| panic!("conformance printed no JSON ({e}): {said}"));
        let rows = report["rows"].as_array().cloned().unwrap_or_default();
        assert!(
            rows.iter()
                .all(|r| r["result"] != "fail"
                    && r["rule"].as_str().is_some_and(|s| s.contains(".md"))),
            "{report}"
        );
        results.push((node["mode"].as_str().unwrap_or_default().to_owned(), rows));
    }
    let down = testnet(&["down", "--dir", &dir_arg]);
    assert_ok("down", &down);
    let passed = |mode: &str| {
        results
            .iter()
            .filter(|(m, _)| m == mode)
            .flat_map(|(_, rows)| rows.iter())
            .filter(|r| r["result"] == "pass")
            .count()
    };
    // Full: transport 5, gossip 11, sync 4, search 2, hire 8; light: transport 6, hire 8.
    assert!(passed("full") >= 30, "{results:?}");
    assert!(passed("light") >= 14, "{results:?}");
}
