//! The sandbox, end to end: a hostile agent hired through the runtime, resource limits,
//! process lifetime (cancel, drop, node crash, leftover kill), the environment inside, and
//! setup errors. Needs bubblewrap (`apt-get install -y bubblewrap`): without it these
//! tests fail with that message.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{copy_agent, plain, processes_with, random_hex, run_to_end, sandboxed};
use serde_json::{Value, json};
use souk_protocol::receipt::FailureCode;
use souk_runtime::sandbox::{
    ProbeConfig, ProxyForward, SandboxError, SandboxMode, SandboxRecord, SandboxUnavailable,
    kill_leftover, probe,
};
use souk_runtime::{
    AgentEvent, AgentProcess, Outcome, ResourceLimits, RunConfig, RuntimeError, SandboxSpec, Step,
};

const HIRE: &str = "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a";

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"))
}

fn output(outcome: Outcome) -> Value {
    match outcome {
        Outcome::Completed { output } => output,
        other => panic!("expected a result, got {other:?}"),
    }
}

fn failed_message(outcome: &Outcome, code: FailureCode) -> String {
    match outcome {
        Outcome::Failed { code: c, message } if *c == code => message.clone(),
        other => panic!("expected Failed({code:?}), got {other:?}"),
    }
}

/// A sandboxed config running `python3 -c SCRIPT` (python3 from the node's PATH, a
/// version-manager shim on the development machines).
fn py_cfg(dir: &Path, script: &str, spec: SandboxSpec) -> RunConfig {
    let prelude = r#"
import json, os, sys, time
def send(**m):
    sys.stdout.write(json.dumps(m) + "\n"); sys.stdout.flush()
def recv():
    line = sys.stdin.readline()
    return json.loads(line) if line else None
start = recv()
"#;
    RunConfig {
        command: vec!["python3".into(), "-c".into(), format!("{prelude}{script}")],
        workdir: dir.join("hire"),
        sandbox: Some(spec),
        kill_grace: Duration::from_millis(500),
        wall_time: Duration::from_secs(60),
        silence_timeout: Duration::from_secs(60),
        ..RunConfig::default()
    }
}

async fn spawn(cfg: &RunConfig) -> AgentProcess {
    AgentProcess::spawn(cfg, HIRE, &json!({}), None)
        .await
        .unwrap_or_else(|e| panic!("spawn: {e}"))
}

/// The `sys.base_prefix` of `python3` on the node's PATH.
fn python_prefix() -> PathBuf {
    let out = std::process::Command::new("python3")
        .args(["-c", "import sys; print(sys.base_prefix)"])
        .output()
        .unwrap_or_else(|e| panic!("python3: {e}"));
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

/// Waits (bounded) until no host process carries `marker`.
fn wait_gone(marker: &str) -> Vec<u32> {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let left = processes_with(marker);
        if left.is_empty() || std::time::Instant::now() > deadline {
            return left;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits (bounded) until the record's cgroups are removed (they are removed in the
/// background once empty).
fn cgroups_removed(rec: &SandboxRecord) -> bool {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while rec.cgroups.iter().any(|c| c.exists()) {
        if std::time::Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

#[tokio::test]
async fn hostile_agent_is_contained() {
    let dir = tempdir();
    let marker = format!("souk-test-marker-{}", random_hex());
    let canary = format!("souk-canary-{}", random_hex());

    // A fake node data dir with its secrets; the hire's working dir inside it, two levels
    // below them (today's layout, the worst case).
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap_or_else(|e| panic!("{e}"));
    for f in ["identity.key", "sealing.key", "api.token"] {
        std::fs::write(data.join(f), format!("{canary} {f}")).unwrap_or_else(|e| panic!("{e}"));
    }
    let workdir = data.join("hires").join(HIRE);
    let package = dir.path().join("pkg");
    copy_agent("hostile.py", &package);

    // A host process with the canary in its environment (standing in for the node's).
    let mut canary_proc = std::process::Command::new("sleep")
        .arg("60")
        .env("SOUK_TEST_CANARY", &canary)
        .spawn()
        .unwrap_or_else(|e| panic!("sleep: {e}"));
    // A listener on the host's loopback (standing in for the node's API and p2p ports).
    let host = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
    host.set_nonblocking(true).unwrap_or_else(|e| panic!("{e}"));
    let host_port = host.local_addr().unwrap_or_else(|e| panic!("{e}")).port();
    // The egress proxy's socket: answers what it got.
    let sock = dir.path().join("proxy.sock");
    let proxy = UnixListener::bind(&sock).unwrap_or_else(|e| panic!("{e}"));
    let proxy_thread = std::thread::spawn(move || {
        let (mut s, _) = proxy.accept().unwrap_or_else(|e| panic!("{e}"));
        let mut got = String::new();
        s.read_to_string(&mut got).unwrap_or_else(|e| panic!("{e}"));
        s.write_all(format!("proxy saw: {got}").as_bytes())
            .unwrap_or_else(|e| panic!("{e}"));
    });

    let home = PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into()));
    // Entries of the real home the sandbox may show: the path down to a bound interpreter.
    let prefix = python_prefix();
    let home_allowed: Vec<String> = prefix
        .strip_prefix(&home)
        .ok()
        .and_then(|rest| rest.components().next())
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .into_iter()
        .collect();
    let real_entries: Vec<String> = std::fs::read_dir(&home)
        .unwrap_or_else(|e| panic!("{}: {e}", home.display()))
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|e| !home_allowed.contains(e))
        .collect();
    assert!(
        !real_entries.is_empty(),
        "the real home has nothing to hide: the test would prove nothing"
    );

    let mut spec = sandboxed();
    spec.proxy = Some(ProxyForward {
        socket: sock.clone(),
        port: 3128,
    });
    let cfg = RunConfig {
        command: souk_runtime::resolve_command(
            &["python3".to_owned(), "hostile.py".to_owned()],
            &package,
        ),
        workdir: workdir.clone(),
        package_dir: Some(package.clone()),
        env: vec![("SOUK_TEST_MARKER".into(), marker.clone())],
        sandbox: Some(spec),
        limits: ResourceLimits {
            max_processes: Some(64),
            memory_bytes: Some(256 << 20),
            ..ResourceLimits::NONE
        },
        wall_time: Duration::from_secs(120),
        silence_timeout: Duration::from_secs(60),
        ..RunConfig::default()
    };
    let input = json!({
        "marker": marker,
        "canary": canary,
        "canary_pid": canary_proc.id(),
        "node_pid": std::process::id(),
        "data_dir": data,
        "package_dir": package,
        "home": home,
        "home_allowed": home_allowed,
        "host_port": host_port,
        "proxy_port": 3128,
    });
    let launched = AgentProcess::launch(&cfg, HIRE)
        .await
        .unwrap_or_else(|e| panic!("launch: {e}"));
    let record = launched.record().clone();
    let mut agent = launched.start(&input, None);

    // The agent asks its question once its detached children are running: they exist now.
    match agent.next().await {
        Step::Event(AgentEvent::Question { .. }) => {}
        other => panic!("expected the question, got {other:?}"),
    }
    let alive = processes_with(&marker);
    assert!(
        alive.len() >= 11,
        "the agent and its 10 detached children should be running: {alive:?}"
    );
    agent
        .answer(&json!("done"))
        .await
        .unwrap_or_else(|e| panic!("answer: {e}"));
    let (_, outcome) = run_to_end(&mut agent).await;
    let report = output(outcome);
    eprintln!(
        "hostile agent report: {}",
        serde_json::to_string_pretty(&report).unwrap_or_default()
    );
    let report = report
        .as_object()
        .unwrap_or_else(|| panic!("report: {report}"));

    // What the agent saw from inside.
    let allowed = [
        // Private views: they "work" inside; the host checks below show nothing happened.
        "write data dir",
        "write /tmp",
        "own workdir",
        "proxy",
        "forked",
    ];
    for (name, result) in report {
        if allowed.contains(&name.as_str()) {
            continue;
        }
        let text = result.as_str().unwrap_or_default();
        assert!(text.starts_with("blocked"), "{name}: {text}");
    }
    assert_eq!(
        report["proxy"],
        json!("WORKED: 'proxy saw: hello proxy'"),
        "{report:?}"
    );
    assert!(
        report["own workdir"]
            .as_str()
            .is_some_and(|s| s.starts_with("WORKED")),
        "{report:?}"
    );

    // The host side.
    let pwned = format!("pwned-{marker}");
    for path in [
        data.join(&pwned),
        Path::new("/tmp").join(&pwned),
        package.join(&pwned),
        home.join(&pwned),
    ] {
        assert!(!path.exists(), "{} was written", path.display());
    }
    assert_eq!(
        std::fs::read_to_string(workdir.join("own.txt")).unwrap_or_default(),
        format!("pwned by {marker}")
    );
    assert!(
        host.accept().is_err(),
        "the host listener accepted a connection"
    );
    proxy_thread
        .join()
        .unwrap_or_else(|_| panic!("proxy thread"));

    // Every process of the hire is gone, and its cgroup too.
    assert_eq!(processes_with(&marker), Vec::<u32>::new());
    assert!(cgroups_removed(&record), "cgroups left behind: {record:?}");
    let _ = canary_proc.kill();
    let _ = canary_proc.wait();
}

#[tokio::test]
async fn memory_hog_is_stopped_by_the_memory_limit() {
    let dir = tempdir();
    let mut cfg = py_cfg(
        dir.path(),
        r#"
hog = []
for _ in range(256):
    hog.append(bytearray(8 << 20))
send(type="result", output=len(hog))
"#,
        sandboxed(),
    );
    cfg.limits.memory_bytes = Some(64 << 20);
    let mut agent = spawn(&cfg).await;
    let (_, outcome) = run_to_end(&mut agent).await;
    let msg = failed_message(&outcome, FailureCode::AgentCrashed);
    let has_memory_cgroup = common::support()
        .spec
        .cgroups
        .as_ref()
        .is_some_and(|c| c.has_memory());
    if has_memory_cgroup {
        assert!(msg.contains("memory limit of 64 MiB reached"), "{msg}");
    } else {
        // RLIMIT_AS: Python raises MemoryError and exits 1.
        assert!(msg.contains("exit status: 1"), "{msg}");
    }
}

#[tokio::test]
async fn fork_bomb_is_stopped_by_the_process_limit() {
    let dir = tempdir();
    let marker = format!("souk-test-marker-{}", random_hex());
    let mut cfg = py_cfg(
        dir.path(),
        r#"
children = 0
while children < 200:
    if os.fork() == 0:
        time.sleep(600)
        os._exit(0)
    children += 1
send(type="result", output=children)
"#,
        sandboxed(),
    );
    cfg.limits.max_processes = Some(16);
    cfg.env.push(("SOUK_TEST_MARKER".into(), marker.clone()));
    let mut agent = spawn(&cfg).await;
    let (_, outcome) = run_to_end(&mut agent).await;
    let msg = failed_message(&outcome, FailureCode::AgentCrashed);
    assert!(msg.contains("process limit of 16 reached"), "{msg}");
    assert_eq!(processes_with(&marker), Vec::<u32>::new());
}

#[tokio::test]
async fn open_file_and_file_size_limits() {
    let dir = tempdir();
    let mut cfg = py_cfg(
        dir.path(),
        r#"
opened = []
try:
    for i in range(1000):
        opened.append(open("/dev/null"))
except OSError as e:
    nofile = str(e)
count = len(opened)
for f in opened:
    f.close()
try:
    with open("big", "wb") as f:
        f.write(b"x" * (2 << 20))
    fsize = "wrote 2 MiB"
except OSError as e:
    fsize = str(e)
send(type="result", output={"opened": count, "nofile": nofile, "fsize": fsize})
"#,
        sandboxed(),
    );
    cfg.limits.max_open_files = Some(32);
    cfg.limits.max_file_bytes = Some(1 << 20);
    let mut agent = spawn(&cfg).await;
    let out = output(run_to_end(&mut agent).await.1);
    let opened = out["opened"].as_u64().unwrap_or(u64::MAX);
    assert!(opened < 32, "{out}");
    assert!(
        out["nofile"]
            .as_str()
            .unwrap_or_default()
            .contains("Too many open files"),
        "{out}"
    );
    assert!(
        out["fsize"]
            .as_str()
            .unwrap_or_default()
            .contains("File too large"),
        "{out}"
    );
    let size = std::fs::metadata(cfg.workdir.join("big"))
        .map(|m| m.len())
        .unwrap_or(0);
    assert_eq!(size, 1 << 20);
}

#[tokio::test]
async fn cpu_limit_stops_a_busy_loop() {
    let dir = tempdir();
    let mut cfg = py_cfg(dir.path(), "while True:\n    pass\n", sandboxed());
    cfg.limits.cpu_secs = Some(1);
    let mut agent = spawn(&cfg).await;
    let (_, outcome) = run_to_end(&mut agent).await;
    let msg = failed_message(&outcome, FailureCode::AgentCrashed);
    assert!(
        msg.contains("killed by SIGXCPU; CPU time limit of 1 s reached"),
        "{msg}"
    );
}

#[tokio::test]
async fn inside_view_environment_and_identity() {
    let dir = tempdir();
    let package = dir.path().join("pkg");
    std::fs::create_dir_all(&package).unwrap_or_else(|e| panic!("{e}"));
    let mut cfg = py_cfg(
        dir.path(),
        r#"
import socket
send(type="result", output={
    "env": dict(os.environ),
    "cwd": os.getcwd(),
    "uid": os.getuid(),
    "pid": os.getpid(),
    "ppid": os.getppid(),
    "hostname": socket.gethostname(),
    "passwd": open("/etc/passwd").read(),
    "root": sorted(os.listdir("/")),
    "etc": sorted(os.listdir("/etc")),
    "procs": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
    "proxy_socket": os.path.exists("/run/souk/proxy.sock"),
    "nnp": [l for l in open("/proc/self/status") if l.startswith("NoNewPrivs")][0].split()[1],
})
"#,
        sandboxed(),
    );
    cfg.package_dir = Some(package.clone());
    cfg.env = vec![("HTTP_PROXY".into(), "http://127.0.0.1:3128".into())];
    let mut agent = spawn(&cfg).await;
    let out = output(run_to_end(&mut agent).await.1);
    let workdir = cfg.workdir.to_string_lossy().into_owned();
    let env = out["env"].as_object().unwrap_or_else(|| panic!("{out}"));
    let mut keys: Vec<&str> = env.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["HOME", "HTTP_PROXY", "LANG", "PATH", "PWD", "SOUK_HIRE_ID"],
        "{out}"
    );
    assert_eq!(env["HOME"], json!(workdir));
    assert_eq!(env["PWD"], json!(workdir));
    assert!(
        env["PATH"]
            .as_str()
            .unwrap_or_default()
            .ends_with("/usr/local/bin:/usr/bin:/bin"),
        "{out}"
    );
    assert_eq!(out["cwd"], json!(workdir));
    assert_eq!(out["uid"], json!(1000));
    assert_eq!(out["hostname"], json!("souk-sandbox"));
    // The helper is pid 1 and the agent's parent; nothing else runs.
    assert_eq!(out["ppid"], json!(1));
    assert_eq!(out["procs"], json!([1, out["pid"]]));
    assert!(
        out["passwd"]
            .as_str()
            .unwrap_or_default()
            .starts_with("agent:x:1000:1000:")
    );
    assert_eq!(out["proxy_socket"], json!(false));
    assert_eq!(out["nnp"], json!("1"));
    for unexpected in ["home", "root", "var", "srv", "opt", "mnt", "media", "boot"] {
        let root = out["root"].as_array().unwrap_or_else(|| panic!("{out}"));
        // `root` appears only as the path to a bound interpreter under /root.
        if unexpected == "root" && python_prefix().starts_with("/root") {
            continue;
        }
        assert!(
            !root.contains(&json!(unexpected)),
            "/{unexpected} is visible: {out}"
        );
    }
    let etc = out["etc"].as_array().unwrap_or_else(|| panic!("{out}"));
    for secret in ["shadow", "ssh", "sudoers", "machine-id", "resolv.conf"] {
        assert!(
            !etc.contains(&json!(secret)),
            "/etc/{secret} is visible: {out}"
        );
    }
}

#[tokio::test]
async fn cancel_and_drop_leave_no_process() {
    for isolated in [true, false] {
        let dir = tempdir();
        let marker = format!("souk-test-marker-{}", random_hex());
        let spec = if isolated { sandboxed() } else { plain() };
        let script = r#"
for _ in range(3):
    if os.fork() == 0:
        os.setsid()
        time.sleep(600)
        os._exit(0)
send(type="note", text="children started")
time.sleep(600)
"#;
        let mut cfg = py_cfg(dir.path(), script, spec.clone());
        cfg.env.push(("SOUK_TEST_MARKER".into(), marker.clone()));
        cfg.limits.max_processes = Some(32);

        // Cancel.
        let mut agent = spawn(&cfg).await;
        assert!(matches!(
            agent.next().await,
            Step::Event(AgentEvent::Note { .. })
        ));
        assert!(processes_with(&marker).len() >= 4, "isolated={isolated}");
        assert_eq!(agent.cancel("stop").await, Outcome::Canceled);
        assert_eq!(
            processes_with(&marker),
            Vec::<u32>::new(),
            "isolated={isolated}"
        );

        // Drop while running.
        let mut agent = spawn(&cfg).await;
        assert!(matches!(
            agent.next().await,
            Step::Event(AgentEvent::Note { .. })
        ));
        assert!(processes_with(&marker).len() >= 4, "isolated={isolated}");
        drop(agent);
        assert_eq!(wait_gone(&marker), Vec::<u32>::new(), "isolated={isolated}");

        // Drop before the agent starts.
        let launched = AgentProcess::launch(&cfg, HIRE)
            .await
            .unwrap_or_else(|e| panic!("launch: {e}"));
        let rec = launched.record().clone();
        drop(launched);
        assert_eq!(wait_gone(&marker), Vec::<u32>::new(), "isolated={isolated}");
        assert!(cgroups_removed(&rec), "{rec:?}");
    }
}

#[tokio::test]
async fn agent_exit_leaves_no_process_and_reports_status() {
    for isolated in [true, false] {
        let dir = tempdir();
        let marker = format!("souk-test-marker-{}", random_hex());
        let spec = if isolated { sandboxed() } else { plain() };
        let mut cfg = py_cfg(
            dir.path(),
            r#"
if os.fork() == 0:
    os.setsid()
    time.sleep(600)
send(type="note", text="bye")
sys.exit(3)
"#,
            spec,
        );
        cfg.env.push(("SOUK_TEST_MARKER".into(), marker.clone()));
        let launched = AgentProcess::launch(&cfg, HIRE)
            .await
            .unwrap_or_else(|e| panic!("launch: {e}"));
        let rec = launched.record().clone();
        let mut agent = launched.start(&json!({}), None);
        let (_, outcome) = run_to_end(&mut agent).await;
        let msg = failed_message(&outcome, FailureCode::AgentCrashed);
        assert!(msg.contains("exit status: 3"), "{msg}");
        assert_eq!(
            processes_with(&marker),
            Vec::<u32>::new(),
            "isolated={isolated}"
        );
        // The hire's processes are gone when the run ends; its cgroups are removed in the
        // background right after.
        assert!(cgroups_removed(&rec), "{rec:?}");
        assert_eq!(rec.init.is_some(), isolated);
    }
}

/// Run in a child process by `leftovers_after_a_node_crash`: launches a hire, prints its
/// record, and blocks until killed.
#[tokio::test]
#[ignore = "run by leftovers_after_a_node_crash in a child process"]
async fn crash_launcher_child() {
    let Ok(spec_kind) = std::env::var("SOUK_TEST_CRASH_LAUNCHER") else {
        return;
    };
    let marker = std::env::var("SOUK_TEST_CRASH_MARKER").unwrap_or_default();
    let dir = PathBuf::from(std::env::var("SOUK_TEST_CRASH_DIR").unwrap_or_default());
    let spec = if spec_kind == "isolated" {
        sandboxed()
    } else {
        plain()
    };
    let mut cfg = py_cfg(
        &dir,
        r#"
if os.fork() == 0:
    os.setsid()
    time.sleep(600)
    os._exit(0)
send(type="note", text="detached child started")
time.sleep(600)
"#,
        spec,
    );
    cfg.env.push(("SOUK_TEST_MARKER".into(), marker));
    let launched = AgentProcess::launch(&cfg, HIRE)
        .await
        .unwrap_or_else(|e| panic!("launch: {e}"));
    let rec = serde_json::to_string(launched.record()).unwrap_or_else(|e| panic!("{e}"));
    let mut agent = launched.start(&json!({}), None);
    assert!(matches!(
        agent.next().await,
        Step::Event(AgentEvent::Note { .. })
    ));
    println!("RECORD {rec}");
    std::future::pending::<()>().await;
}

#[tokio::test]
async fn leftovers_after_a_node_crash() {
    for kind in ["plain", "isolated"] {
        let dir = tempdir();
        let marker = format!("souk-test-marker-{}", random_hex());
        let mut child = std::process::Command::new(std::env::current_exe().unwrap_or_default())
            .args([
                "--exact",
                "crash_launcher_child",
                "--ignored",
                "--nocapture",
            ])
            .env("SOUK_TEST_CRASH_LAUNCHER", kind)
            .env("SOUK_TEST_CRASH_MARKER", &marker)
            .env("SOUK_TEST_CRASH_DIR", dir.path())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("launcher: {e}"));
        let stdout = child.stdout.take().unwrap_or_else(|| panic!("stdout"));
        let line = BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .find(|l| l.starts_with("RECORD "))
            .unwrap_or_else(|| panic!("{kind}: the launcher exited without a record"));
        let rec: SandboxRecord = serde_json::from_str(&line["RECORD ".len()..])
            .unwrap_or_else(|e| panic!("record {line}: {e}"));
        assert!(
            processes_with(&marker).len() >= 2,
            "{kind}: the hire should be running"
        );
        // The node crashes.
        child.kill().unwrap_or_else(|e| panic!("{e}"));
        let _ = child.wait();
        if kind == "plain" {
            // Without namespaces the helper dies with the node, but the agent and its
            // detached child survive: exactly what kill_leftover is for.
            assert!(
                !processes_with(&marker).is_empty(),
                "plain: nothing survived the crash"
            );
        }
        let found = tokio::task::spawn_blocking(move || {
            let r = kill_leftover(&rec);
            (r, rec)
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
        let (found, rec) = found;
        let found = found.unwrap_or_else(|e| panic!("{kind}: kill_leftover: {e}"));
        if kind == "plain" {
            assert!(found, "plain: leftovers were not reported");
        }
        assert_eq!(processes_with(&marker), Vec::<u32>::new(), "{kind}");
        assert!(
            !Path::new(&format!("/proc/{}", rec.pid)).exists() || {
                let st =
                    std::fs::read_to_string(format!("/proc/{}/stat", rec.pid)).unwrap_or_default();
                st.contains(") Z ")
            }
        );
        assert!(rec.cgroups.iter().all(|c| !c.exists()), "{kind}: {rec:?}");
        // A second call finds nothing.
        assert!(!kill_leftover(&rec).unwrap_or_else(|e| panic!("{e}")));
    }
}

#[tokio::test]
async fn kill_leftover_kills_a_lost_sandbox_and_spares_reused_pids() {
    let dir = tempdir();
    let marker = format!("souk-test-marker-{}", random_hex());
    let mut cfg = py_cfg(
        dir.path(),
        "send(type=\"note\", text=\"up\")\ntime.sleep(600)\n",
        sandboxed(),
    );
    cfg.env.push(("SOUK_TEST_MARKER".into(), marker.clone()));
    let launched = AgentProcess::launch(&cfg, HIRE)
        .await
        .unwrap_or_else(|e| panic!("launch: {e}"));
    let rec = launched.record().clone();
    let mut agent = launched.start(&json!({}), None);
    assert!(matches!(
        agent.next().await,
        Step::Event(AgentEvent::Note { .. })
    ));
    // The node loses track of it (no kill on drop): only the record is left.
    std::mem::forget(agent);
    assert!(!processes_with(&marker).is_empty());

    // A record naming a live process with another start time (a reused pid) is not
    // touched, and neither is one from another boot.
    let mut bystander = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let reused = SandboxRecord {
        pid: bystander.id(),
        start_time: rec.start_time,
        init: None,
        boot_id: rec.boot_id.clone(),
        cgroups: Vec::new(),
    };
    assert!(!kill_leftover(&reused).unwrap_or_else(|e| panic!("{e}")));
    // A record naming a cgroup the runtime never creates (a whole hierarchy) is refused.
    let foreign = SandboxRecord {
        cgroups: vec!["/sys/fs/cgroup/pids".into()],
        ..reused.clone()
    };
    assert!(matches!(
        kill_leftover(&foreign),
        Err(SandboxError::BadRecord { .. })
    ));
    let other_boot = SandboxRecord {
        boot_id: "00000000-0000-0000-0000-000000000000".into(),
        ..rec.clone()
    };
    assert!(!kill_leftover(&other_boot).unwrap_or_else(|e| panic!("{e}")));
    assert!(
        bystander
            .try_wait()
            .unwrap_or_else(|e| panic!("{e}"))
            .is_none()
    );
    assert!(!processes_with(&marker).is_empty());

    let rec2 = rec.clone();
    let found = tokio::task::spawn_blocking(move || kill_leftover(&rec2))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|e| panic!("kill_leftover: {e}"));
    assert!(found);
    assert_eq!(processes_with(&marker), Vec::<u32>::new());
    assert!(rec.cgroups.iter().all(|c| !c.exists()));
    let _ = bystander.kill();
    let _ = bystander.wait();
}

#[tokio::test]
async fn scripts_and_lone_binaries_outside_the_system_dirs_run() {
    let dir = tempdir();
    let package = dir.path().join("pkg");
    std::fs::create_dir_all(&package).unwrap_or_else(|e| panic!("{e}"));
    // A script whose interpreter is found through `env` on the node's PATH.
    let script = package.join("agent.py");
    std::fs::write(
        &script,
        "#!/usr/bin/env python3\nimport json, sys\nsys.stdin.readline()\nprint(json.dumps({'type': 'result', 'output': sys.executable}), flush=True)\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .unwrap_or_else(|e| panic!("{e}"));
    let mut cfg = py_cfg(dir.path(), "", sandboxed());
    cfg.command = souk_runtime::resolve_command(&["./agent.py".to_owned()], &package);
    cfg.package_dir = Some(package.clone());
    let out = output(run_to_end(&mut spawn(&cfg).await).await.1);
    let exe = out.as_str().unwrap_or_default();
    assert!(
        exe.starts_with(&python_prefix().to_string_lossy().into_owned()),
        "{exe} is not the node's python3"
    );

    // A lone binary outside the package (like `../../target/release/agent`), bound alone.
    let bin_dir = dir.path().join("target/release");
    std::fs::create_dir_all(&bin_dir).unwrap_or_else(|e| panic!("{e}"));
    std::fs::copy("/bin/sh", bin_dir.join("agent")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.path().join("target/secret"), "not for agents")
        .unwrap_or_else(|e| panic!("{e}"));
    let mut cfg = py_cfg(dir.path(), "", sandboxed());
    cfg.command = souk_runtime::resolve_command(
        &[
            "../target/release/agent".to_owned(),
            "-c".to_owned(),
            r#"read -r l; if [ -e ../target/secret ] || [ -e "$0/../../secret" ]; then s=visible; else s=hidden; fi; echo "{\"type\":\"result\",\"output\":\"$s\"}""#.to_owned(),
        ],
        &package,
    );
    cfg.package_dir = Some(package.clone());
    let out = output(run_to_end(&mut spawn(&cfg).await).await.1);
    assert_eq!(out, json!("hidden"));
}

#[tokio::test]
async fn setup_and_resolution_errors_are_typed_and_public_messages_have_no_paths() {
    let dir = tempdir();
    // A program that does not exist.
    let mut cfg = py_cfg(dir.path(), "", sandboxed());
    cfg.command = vec!["souk-no-such-program".into()];
    match AgentProcess::spawn(&cfg, HIRE, &json!({}), None).await {
        Err(e @ RuntimeError::Sandbox(SandboxError::Resolve { .. })) => {
            assert_eq!(e.public_message(), "the agent program was not found");
        }
        other => panic!("expected a resolve error, got {other:?}"),
    }
    // A bind source that does not exist: bubblewrap refuses, with its message.
    let mut spec = sandboxed();
    spec.extra_ro_paths = vec![dir.path().join("missing-dir")];
    let cfg = py_cfg(dir.path(), "", spec);
    match AgentProcess::spawn(&cfg, HIRE, &json!({}), None).await {
        Err(e @ RuntimeError::Sandbox(SandboxError::Setup { .. })) => {
            assert!(e.to_string().contains("missing-dir"), "{e}");
            let public = e.public_message();
            assert!(!public.contains('/'), "{public}");
        }
        other => panic!("expected a setup error, got {other:?}"),
    }
    // A spawn error (EMFILE-like OS errors) names no path publicly.
    let e = RuntimeError::Spawn {
        program: "/srv/secret/agent".into(),
        source: std::io::Error::from_raw_os_error(24),
    };
    assert!(e.to_string().contains("/srv/secret"));
    assert_eq!(
        e.public_message(),
        "the agent program could not be started (Too many open files (os error 24))"
    );
    // Limits without a sandbox are refused rather than ignored.
    let mut cfg = py_cfg(dir.path(), "", sandboxed());
    cfg.sandbox = None;
    cfg.limits.max_open_files = Some(8);
    assert!(matches!(
        AgentProcess::spawn(&cfg, HIRE, &json!({}), None).await,
        Err(RuntimeError::Sandbox(SandboxError::LimitsNeedSandbox))
    ));
}

#[tokio::test]
async fn probe_modes() {
    let support = common::support();
    assert!(support.is_isolated());
    assert!(
        support.summary().starts_with("bubblewrap "),
        "{}",
        support.summary()
    );
    let missing = Some(PathBuf::from("/nonexistent/bwrap"));
    let cfg = |mode| ProbeConfig {
        mode,
        helper: common::helper(),
        bwrap: missing.clone(),
        cgroup_parent: None,
        extra_ro_paths: Vec::new(),
    };
    assert_eq!(
        probe(&cfg(SandboxMode::Required)).await,
        Err(SandboxUnavailable::BwrapMissing)
    );
    assert!(
        SandboxUnavailable::BwrapMissing
            .to_string()
            .contains("apt-get install -y bubblewrap")
    );
    let auto = probe(&cfg(SandboxMode::Auto))
        .await
        .unwrap_or_else(|e| panic!("auto: {e}"));
    assert!(!auto.is_isolated());
    assert_eq!(auto.summary(), "none");
    assert!(
        auto.warnings
            .iter()
            .any(|w| w.contains("WITHOUT A SANDBOX") && w.contains("bubblewrap")),
        "{:?}",
        auto.warnings
    );
    let off = probe(&cfg(SandboxMode::Off))
        .await
        .unwrap_or_else(|e| panic!("off: {e}"));
    assert!(!off.is_isolated());
    let no_helper = ProbeConfig {
        helper: vec!["/nonexistent/souk".into()],
        ..cfg(SandboxMode::Off)
    };
    assert!(matches!(
        probe(&no_helper).await,
        Err(SandboxUnavailable::Helper { .. })
    ));
}

/// A warm start: the sandbox and the agent's program start before there is a hire (the
/// program boots and waits for its `start` line, without `SOUK_HIRE_ID`); the hire then
/// arrives with its own id, input and wall time, and the process serves that hire only.
#[tokio::test]
async fn a_warm_process_boots_before_its_hire_and_serves_one_hire() {
    let dir = tempdir();
    let booted = dir.path().join("hire").join("booted");
    let script = r#"
send(type="result", output={
    "hire": start["hire_id"],
    "input": start["input"],
    "env_hire": os.environ.get("SOUK_HIRE_ID"),
    "booted_before_start": os.path.exists("booted"),
})
"#;
    // The prelude reads the start line; the boot marker is written before it.
    let mut cfg = py_cfg(dir.path(), script, sandboxed());
    if let Some(c) = cfg.command.get_mut(2) {
        *c = format!("open('booted', 'w').close()\n{c}");
    }
    cfg.warm = true;
    let slot = "7e".repeat(32);
    let mut launched = AgentProcess::launch(&cfg, &slot)
        .await
        .unwrap_or_else(|e| panic!("launch: {e}"));
    launched
        .ignite()
        .await
        .unwrap_or_else(|e| panic!("ignite: {e}"));
    // The program runs before the hire: it writes its marker and waits.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !booted.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the warm agent did not boot"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(launched.is_alive());
    let mut agent = launched.start_for(HIRE, Duration::from_secs(30), &json!({"n": 7}), None);
    let out = output(run_to_end(&mut agent).await.1);
    assert_eq!(out["hire"], HIRE);
    assert_eq!(out["input"], json!({"n": 7}));
    assert_eq!(
        out["env_hire"],
        Value::Null,
        "a warm process has no SOUK_HIRE_ID"
    );
    assert_eq!(out["booted_before_start"], true);
}

/// Whether process `pid` exists and has not exited (a zombie has).
fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|st| {
            let state = st.rsplit_once(')')?.1.trim_start().chars().next()?;
            Some(state != 'Z' && state != 'X')
        })
        .unwrap_or(false)
}

/// Waits (bounded) until `pool` has `n` standbys ready.
async fn standbys_ready(pool: &souk_runtime::sandbox::StandbyPool, n: usize) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while pool.ready() < n {
        if tokio::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    true
}

#[tokio::test]
async fn a_cold_start_takes_a_standby_sandbox_in_its_cgroup_with_the_limits() {
    use std::sync::{Arc, Mutex};

    use souk_runtime::sandbox::{SANDBOX_TASKS, StandbyPool, StandbyRecorder};
    let spec = sandboxed();
    let recorded: Arc<Mutex<Vec<SandboxRecord>>> = Arc::default();
    let recorder: StandbyRecorder = {
        let recorded = recorded.clone();
        Arc::new(move |rec| {
            if let Ok(mut v) = recorded.lock() {
                v.push(rec);
            }
            Box::pin(async { true })
        })
    };
    let Some(pool) = StandbyPool::new(&spec, 1, Some(recorder)) else {
        // Only where hires get no cgroup (none writable here): then there is nothing to join.
        assert!(
            spec.cgroups.is_none(),
            "no standby pool although hires get cgroups: {:?}",
            spec.cgroups
        );
        return;
    };
    pool.fill();
    assert!(standbys_ready(&pool, 1).await, "no standby came up");
    let standby_dirs = pool.cgroup_dirs();
    assert!(!standby_dirs.is_empty());
    // It was recorded (its cgroups, a live process) before it was handed out.
    let first = recorded.lock().map(|v| v.clone()).unwrap_or_default();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].cgroups, standby_dirs);
    assert!(running(first[0].pid), "{:?}", first[0]);
    let dir = tempdir();
    let mut cfg = py_cfg(
        dir.path(),
        r#"
send(type="result", output={"cwd": os.getcwd(), "hire": os.environ.get("SOUK_HIRE_ID"),
     "x": os.environ.get("SOUK_TEST_X"), "home": os.environ.get("HOME")})
"#,
        spec,
    );
    cfg.limits.max_processes = Some(16);
    cfg.env.push(("SOUK_TEST_X".into(), "a b\nc=d".into()));
    cfg.standby = Some(pool.clone());
    let launched = AgentProcess::launch(&cfg, HIRE)
        .await
        .unwrap_or_else(|e| panic!("launch: {e}"));
    let record = launched.record().clone();
    // The hire runs in the standby's cgroup, which got the hire's limits.
    assert_eq!(record.cgroups, standby_dirs);
    if let Some(pids) = record.cgroups.iter().find(|d| d.join("pids.max").is_file()) {
        let max = std::fs::read_to_string(pids.join("pids.max")).unwrap_or_default();
        assert_eq!(max.trim(), (16 + SANDBOX_TASKS).to_string());
    }
    let mut agent = launched.start(&json!({}), None);
    let (_, outcome) = run_to_end(&mut agent).await;
    let out = output(outcome);
    // The same working directory and environment as a cold start without a standby.
    let workdir = std::path::absolute(dir.path().join("hire")).unwrap_or_default();
    assert_eq!(out["cwd"], json!(workdir.to_string_lossy()));
    assert_eq!(out["home"], json!(workdir.to_string_lossy()));
    assert_eq!(out["hire"], json!(HIRE));
    assert_eq!(out["x"], json!("a b\nc=d"));
    assert!(cgroups_removed(&record), "cgroups left behind: {record:?}");
    // The taken standby was replaced, in a cgroup of its own, and recorded.
    assert!(standbys_ready(&pool, 1).await, "no successor came up");
    let next = pool.cgroup_dirs();
    assert_ne!(next, standby_dirs);
    let second = recorded
        .lock()
        .map(|v| v.last().cloned())
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("the successor was not recorded"));
    assert_eq!(second.cgroups, next);
    // After a crash of the node, its record is what stops it and removes its cgroup.
    let rec = second.clone();
    tokio::task::spawn_blocking(move || kill_leftover(&rec))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|e| panic!("kill_leftover: {e}"));
    assert!(!running(second.pid), "{second:?}");
    assert!(next.iter().all(|d| !d.exists()), "{next:?}");
    // Clearing the pool (a clean stop) leaves nothing either.
    let p = pool.clone();
    tokio::task::spawn_blocking(move || p.clear())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(pool.ready(), 0);
}
