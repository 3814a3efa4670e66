//! Shared helpers of the `souk` process tests: running the binary, waiting with deadlines,
//! and [`NodeProc`], a background `souk node run` that is killed if a test fails.
#![allow(dead_code, unreachable_pub)]

use std::fs::File;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Generous: the machine has 2 cores shared with other builds and tests.
pub const DEADLINE: Duration = Duration::from_secs(60);
/// Between two polls.
pub const POLL: Duration = Duration::from_millis(25);
/// Loopback, any free port: never the default 0.0.0.0:4710.
pub const LISTEN: &str = "/ip4/127.0.0.1/tcp/0";

pub fn example_agent() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/csv-analyst/agent.toml")
}

pub fn path_str(p: &Path) -> &str {
    p.to_str()
        .unwrap_or_else(|| panic!("non-UTF-8 path {}", p.display()))
}

pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap_or_else(|e| panic!("cannot create a temporary directory: {e}"))
}

/// `souk` with a clean environment: no `SOUK_HOME` or `RUST_LOG` from the caller, and
/// backtraces on so that a panic could not go unnoticed.
pub fn souk_cmd() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_souk"));
    c.env_remove("SOUK_HOME")
        .env_remove("RUST_LOG")
        .env("RUST_BACKTRACE", "1")
        .stdin(Stdio::null());
    c
}

/// Runs `souk --data-dir DIR ARGS...` to completion.
pub fn souk(dir: &Path, args: &[&str]) -> Output {
    souk_cmd()
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run souk {args:?}: {e}"))
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts success and returns stdout.
pub fn ok(out: &Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed ({}): stdout {:?} stderr {:?}",
        out.status,
        stdout(out),
        stderr(out)
    );
    stdout(out)
}

/// Asserts success and parses stdout as JSON.
pub fn ok_json(out: &Output, what: &str) -> Value {
    let text = ok(out, what);
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{what}: stdout is not JSON ({e}): {text:?}"))
}

/// Asserts the conventions of a failed command: exit status 2 (usage or configuration),
/// nothing on stdout, one `error: ...` line on stderr containing every `want`, and no panic
/// or backtrace. Returns the message (without `error: `).
pub fn assert_clean_error(out: &Output, wants: &[&str]) -> String {
    assert_failure(out, 2, wants)
}

/// Like [`assert_clean_error`] with exit status `code` (1 refused, 3 node unreachable).
pub fn assert_failure(out: &Output, code: i32, wants: &[&str]) -> String {
    let err = stderr(out);
    assert_eq!(
        out.status.code(),
        Some(code),
        "want exit status {code}, got {}; stderr {err:?}",
        out.status
    );
    assert!(
        !err.contains("panicked") && !err.contains("backtrace") && !err.contains("RUST_BACKTRACE"),
        "panic: {err}"
    );
    let line = err
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("no `error: ` line on stderr: {err:?}"));
    assert_eq!(
        err.lines().filter(|l| l.starts_with("error: ")).count(),
        1,
        "{err}"
    );
    for want in wants {
        assert!(line.contains(want), "missing {want:?} in {line:?}");
    }
    assert!(stdout(out).is_empty(), "stdout: {:?}", stdout(out));
    line["error: ".len()..].to_owned()
}

pub fn mode_of(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

pub fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

/// Polls `check` every [`POLL`] until it returns `Some`; panics with `what` after [`DEADLINE`].
pub fn wait_for<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "timed out after {DEADLINE:?} waiting for {what}"
        );
        std::thread::sleep(POLL);
    }
}

/// `souk init [--light]` in a fresh directory; returns the node id it printed.
pub fn init(dir: &Path, light: bool) -> String {
    let mut args = vec!["init"];
    if light {
        args.push("--light");
    }
    let id = ok(&souk(dir, &args), "souk init").trim().to_owned();
    assert!(id.starts_with("souk"), "{id}");
    id
}

/// A `souk node run` child process. Dropping it kills the process (so a failed assertion
/// never leaves a node behind) and, during a panic, prints the node's log.
pub struct NodeProc {
    pub child: Child,
    pub dir: PathBuf,
    pub log: PathBuf,
    pub name: String,
}

impl NodeProc {
    /// Starts `souk --data-dir DIR node run ARGS...`, its stderr going to `log`.
    pub fn start(name: &str, dir: &Path, log: &Path, args: &[&str]) -> Self {
        let err = File::create(log).unwrap_or_else(|e| panic!("{}: {e}", log.display()));
        let child = souk_cmd()
            .arg("--data-dir")
            .arg(dir)
            .args(["node", "run"])
            .args(args)
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start node {name}: {e}"));
        Self {
            child,
            dir: dir.to_owned(),
            log: log.to_owned(),
            name: name.to_owned(),
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Fails the test if the node has exited.
    pub fn assert_running(&mut self) {
        match self.child.try_wait() {
            Ok(None) => {}
            Ok(Some(status)) => panic!(
                "node {} exited early ({status}); log:\n{}",
                self.name,
                self.log()
            ),
            Err(e) => panic!("node {}: {e}", self.name),
        }
    }

    /// Waits until `api.addr` is written and `node info --json` answers with at least one
    /// listen address; returns that answer.
    pub fn wait_ready(&mut self) -> Value {
        let addr_file = self.dir.join("api.addr");
        wait_for(&format!("node {} to write api.addr", self.name), || {
            self.assert_running();
            std::fs::read_to_string(&addr_file)
                .ok()
                .and_then(|s| s.trim().parse::<std::net::SocketAddr>().ok())
        });
        let dir = self.dir.clone();
        wait_for(&format!("node {} to answer node info", self.name), || {
            self.assert_running();
            let out = souk(&dir, &["node", "info", "--json"]);
            if !out.status.success() {
                return None;
            }
            let info: Value = serde_json::from_slice(&out.stdout).ok()?;
            let listening = info["listen_addrs"]
                .as_array()
                .is_some_and(|a| !a.is_empty());
            listening.then_some(info)
        })
    }

    /// Sends SIGTERM and waits for the process to end; returns its exit status.
    pub fn terminate(&mut self) -> ExitStatus {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap_or_else(|e| panic!("cannot run kill: {e}"));
        assert!(sent.success(), "kill -TERM {pid}: {sent}");
        let child = &mut self.child;
        let name = &self.name;
        wait_for(&format!("node {name} to exit after SIGTERM"), || {
            child
                .try_wait()
                .unwrap_or_else(|e| panic!("node {name}: {e}"))
        })
    }
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            eprintln!("--- log of node {} ---\n{}", self.name, self.log());
        }
    }
}

/// Runs a `souk node run` that is expected to fail at once. Should it start instead, it is
/// killed after [`DEADLINE`] and the test fails.
pub fn node_run_expecting_failure(dir: &Path, args: &[&str]) -> Output {
    let tmp = tempdir();
    let log = tmp.path().join("stderr");
    let mut node = NodeProc::start("expected-to-fail", dir, &log, args);
    let status = wait_for("`souk node run` to fail", || {
        node.child
            .try_wait()
            .unwrap_or_else(|e| panic!("node: {e}"))
    });
    Output {
        status,
        stdout: Vec::new(),
        stderr: node.log().into_bytes(),
    }
}

/// A free TCP port on loopback (for a node that must come back on the same address).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("free port: {e}"))
}

/// A provider (a full node listening on `listen`, data dir `root/provider`, log
/// `root/provider.log`) and a light client bootstrapped to it (`root/client`), both
/// initialized and running; returns them with the provider's `node info`.
pub fn provider_and_light_client(root: &Path, listen: &str) -> (NodeProc, Value, NodeProc) {
    init(&root.join("provider"), false);
    init(&root.join("client"), true);
    start_provider_and_light_client(root, listen, &[])
}

/// [`provider_and_light_client`] on data directories `root/provider` and `root/client`
/// already made (and configured); the provider also gets `provider_args`.
pub fn start_provider_and_light_client(
    root: &Path,
    listen: &str,
    provider_args: &[&str],
) -> (NodeProc, Value, NodeProc) {
    let pdir = root.join("provider");
    let cdir = root.join("client");
    let mut args = vec!["--listen", listen];
    args.extend_from_slice(provider_args);
    let mut provider = NodeProc::start("provider", &pdir, &root.join("provider.log"), &args);
    let info = provider.wait_ready();
    let paddr = format!(
        "{listen}/p2p/{}",
        info["peer_id"].as_str().unwrap_or_default()
    );
    let mut client = NodeProc::start(
        "client",
        &cdir,
        &root.join("client.log"),
        &["--light", "--listen", LISTEN, "--bootstrap", &paddr],
    );
    client.wait_ready();
    (provider, info, client)
}

/// Writes an agent package (`agent.py`, `agent.toml`) to `root/pkg`, publishes it on the
/// `provider` node and waits until `client` finds it searching for `word`; returns the
/// manifest id.
pub fn publish_found(
    root: &Path,
    provider: &Path,
    client: &Path,
    (agent_py, agent_toml): (&str, &str),
    word: &str,
) -> String {
    let pkg = root.join("pkg");
    std::fs::create_dir_all(&pkg).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(pkg.join("agent.py"), agent_py).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(pkg.join("agent.toml"), agent_toml).unwrap_or_else(|e| panic!("{e}"));
    let mid = ok(
        &souk(
            provider,
            &["agent", "publish", path_str(&pkg.join("agent.toml"))],
        ),
        "agent publish",
    )
    .trim()
    .to_owned();
    wait_for("the client to find the agent", || {
        let out = souk(client, &["search", word, "--json"]);
        stdout(&out).contains(&mid).then_some(())
    });
    mid
}
