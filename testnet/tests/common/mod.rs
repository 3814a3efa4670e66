//! Shared by the testnet's end-to-end tests: the `souk` binary (built first when stale),
//! running `souk-testnet` with a hang guard, and process checks.
#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime};

/// A run that takes longer than this is stuck: it is stopped and the test fails (a hang guard,
/// not a timing target: the demo takes seconds).
pub const TIMEOUT: Duration = Duration::from_secs(60);

pub fn testnet_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_souk-testnet"))
}

pub fn workspace() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent()
        .unwrap_or_else(|| panic!("{} has no parent", here.display()))
        .to_path_buf()
}

pub fn modified(p: &Path) -> Option<SystemTime> {
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
pub fn souk_bin() -> PathBuf {
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
pub fn testnet(args: &[&str]) -> Output {
    testnet_for(args, TIMEOUT)
}

/// Runs souk-testnet with `args` (and `--souk`), stopping it after `timeout` (a hang guard).
pub fn testnet_for(args: &[&str], timeout: Duration) -> Output {
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
        if start.elapsed() > timeout {
            // SIGTERM first, so the testnet stops its nodes.
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
            let _ = child.wait();
            let out = out_reader.join().unwrap_or_default();
            let err = err_reader.join().unwrap_or_default();
            panic!(
                "souk-testnet {args:?} took more than {timeout:?}\n--- stdout\n{}\n--- stderr\n{}",
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

pub fn read_all(pipe: Option<impl std::io::Read>) -> Vec<u8> {
    let mut buf = Vec::new();
    if let Some(mut p) = pipe {
        let _ = p.read_to_end(&mut buf);
    }
    buf
}

pub fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub fn assert_ok(what: &str, out: &Output) -> String {
    let (stdout, stderr) = text(out);
    assert!(
        out.status.success(),
        "{what} failed ({})\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
    stdout
}

/// Whether `pid` is a live process (not a zombie).
pub fn alive(pid: u64) -> bool {
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

pub fn pids(state: &serde_json::Value) -> Vec<u64> {
    state["nodes"]
        .as_array()
        .unwrap_or_else(|| panic!("no nodes in {state}"))
        .iter()
        .map(|n| n["pid"].as_u64().unwrap_or_else(|| panic!("no pid in {n}")))
        .collect()
}

pub fn wait_dead(pids: &[u64]) {
    let start = Instant::now();
    while pids.iter().any(|p| alive(*p)) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "node processes still running: {pids:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
