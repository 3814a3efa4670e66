//! A hired agent is hostile: run through a real hire on a sandboxed provider node, an agent
//! that tries everything a prompt-injected agent would (`crates/runtime/tests/agents/
//! hostile.py`: the node's keys and token, other processes' environments, the provider's
//! home, the host's loopback and the node's own ports, writes outside its directory and into
//! its package, detached children) gets nothing, and when the hire ends no process of it is
//! left. Its working directory is private (0700) and outside the node's data directory.

#[path = "support/mod.rs"]
mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use souk_protocol::hire::HireState;
use support::{
    hire, new_hire, provider_and_client_with, publish_and_find, python_agent, sandboxed_settings,
    verified_bundle, wait_for, wait_for_state,
};

const HOSTILE: &str = include_str!("../crates/runtime/tests/agents/hostile.py");

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"))
}

/// 16 hex digits unique to this run (time and pid), for markers and canaries.
fn unique_hex() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    blake3::hash(format!("{nanos} {}", std::process::id()).as_bytes()).to_hex()[..16].to_owned()
}

/// The prefix of the `python3` the sandbox binds (e.g. a pyenv version under the home).
fn python_prefix() -> PathBuf {
    let out = std::process::Command::new("python3")
        .args(["-c", "import sys; print(sys.prefix)"])
        .output()
        .unwrap_or_else(|e| panic!("python3: {e}"));
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

/// Processes on the host whose environment holds `marker`.
fn processes_with(marker: &str) -> Vec<String> {
    let mut found = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return found;
    };
    for e in dir.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        if let Ok(env) = std::fs::read(e.path().join("environ"))
            && env.windows(marker.len()).any(|w| w == marker.as_bytes())
        {
            found.push(name);
        }
    }
    found
}

fn exists(path: &Path) -> bool {
    path.symlink_metadata().is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_agent_gets_nothing_and_leaves_nothing_behind() {
    let tmp = tempdir();
    let marker = format!("souk-test-marker-{}", unique_hex());
    let canary = format!("souk-canary-{}", unique_hex());
    let work = tmp.path().join("provider-work");
    let settings = sandboxed_settings().await;
    let (p, c) = provider_and_client_with(tmp.path(), 440, false, |o| {
        o.work_dir = work.clone();
        o.hires = settings;
    })
    .await;
    // The provider's data directory holds its secrets, as a real node's does.
    let data = tmp.path().join("provider");
    for f in ["identity.key", "sealing.key", "api.token"] {
        std::fs::write(data.join(f), format!("{canary} {f}")).unwrap_or_else(|e| panic!("{e}"));
    }
    // A host process with the canary in its environment, and a listener on the host's
    // loopback besides the node's own p2p port.
    let mut canary_proc = std::process::Command::new("sleep")
        .arg("120")
        .env("SOUK_TEST_CANARY", &canary)
        .spawn()
        .unwrap_or_else(|e| panic!("sleep: {e}"));
    let host = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
    host.set_nonblocking(true).unwrap_or_else(|e| panic!("{e}"));
    let host_port = host.local_addr().unwrap_or_else(|e| panic!("{e}")).port();
    let p2p_port = p
        .addr
        .iter()
        .find_map(|proto| match proto {
            libp2p::multiaddr::Protocol::Tcp(port) => Some(port),
            _ => None,
        })
        .unwrap_or_else(|| panic!("the provider listens on no TCP port"));
    let home = PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into()));
    let home_allowed: Vec<String> = python_prefix()
        .strip_prefix(&home)
        .ok()
        .and_then(|rest| rest.components().next())
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .into_iter()
        .collect();

    let package = tmp.path().join("pkg");
    let spec = python_agent(&package, "hostile", HOSTILE, 1_000_000);
    let mid = publish_and_find(&p.handle, &c.handle, spec, "hostile").await;
    let input = json!({
        "data_dir": data,
        "marker": marker,
        "canary": canary,
        "canary_pid": canary_proc.id(),
        "node_pid": std::process::id(),
        "home": home,
        "home_allowed": home_allowed,
        "host_port": host_port,
        // The node's own p2p port (its API listens nowhere in this test).
        "more_ports": [p2p_port],
        "proxy_port": 3128,
        "package_dir": package,
    });
    let id = hire(&c.handle, new_hire(&mid, input, None, None))
        .await
        .id();
    let hire_hex = id.to_hex();
    wait_for_state(&c.handle, id, HireState::InputRequired).await;
    // While it waits, its detached children are alive (the test can see them)...
    let alive = processes_with(&hire_hex);
    assert!(
        alive.len() >= 10,
        "the agent's children should be visible while it runs: {alive:?}"
    );
    // ...and its working directory is private and outside the data directory.
    let workdir = work.join(&hire_hex);
    let mode = std::fs::metadata(&workdir)
        .unwrap_or_else(|e| panic!("workdir: {e}"))
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700, "the working directory is private");
    assert!(!workdir.starts_with(&data));

    c.handle
        .hires
        .answer(id, json!("done"))
        .await
        .unwrap_or_else(|e| panic!("answer: {e}"));
    let done = wait_for_state(&c.handle, id, HireState::Completed).await;
    assert_eq!(done.error, None);
    let report: Value = support::wait_for_some("the report", || async {
        c.handle.hires.output(id).await.ok().flatten()
    })
    .await;
    let report = report
        .as_object()
        .unwrap_or_else(|| panic!("the report is an object: {report}"));
    for (attempt, outcome) in report {
        // `cargo test --test confinement -- --nocapture` shows what the agent tried.
        println!("{attempt:>24}: {outcome}");
        let outcome = outcome.as_str().unwrap_or_default();
        match attempt.as_str() {
            // Its own directory is its to write, and so is its private /tmp (checked on the
            // host below); the proxy is its one allowed route (this agent's manifest lists no
            // host, so there is none); `forked` is a count.
            "own workdir" | "write /tmp" | "proxy" | "forked" => {}
            _ => assert!(
                outcome.starts_with("blocked"),
                "{attempt}: {outcome}\nfull report: {report:?}"
            ),
        }
    }
    assert!(
        report["own workdir"]
            .as_str()
            .is_some_and(|o| o.starts_with("WORKED")),
        "{report:?}"
    );
    // Nothing was written outside, and nothing connected to the host.
    let pwned = format!("pwned-{marker}");
    for dir in [Path::new("/tmp"), &data, &package, &home, Path::new("/")] {
        assert!(!exists(&dir.join(&pwned)), "{} was written", dir.display());
    }
    assert!(host.accept().is_err(), "the host listener saw a connection");
    // Every process of the hire is gone.
    wait_for("every process of the hire to be gone", || {
        let left = processes_with(&hire_hex);
        async move { left.is_empty() }
    })
    .await;
    // The chain is the provider's ordinary, verifiable record of the run.
    let (_, report) = verified_bundle(&c.handle, id, false).await;
    assert_eq!(report.state, HireState::Completed);
    let _ = canary_proc.kill();
    let _ = canary_proc.wait();
    p.handle.shutdown().await;
    c.handle.shutdown().await;
}
