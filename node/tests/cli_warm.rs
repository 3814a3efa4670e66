//! Warm starts with real processes: an agent whose file asks for `warm = 1` has a sandboxed
//! process booted before any hire (it wrote its boot marker); a hire takes it (the agent
//! learns its hire from the `start` message, has no `SOUK_HIRE_ID`), the node boots a new
//! one for the next hire, and no process serves two hires. An agent with `prepared = 1` has
//! a sandbox made with no process in it; its program starts for a hire's offer, and the
//! sandbox serves that one hire.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use serde_json::Value;

/// Marks its boot, then waits for its hire and reports what it saw.
const AGENT_PY: &str = r#"import json, os, secrets, sys
open("booted", "w").close()
boot = secrets.token_hex(8)
start = json.loads(sys.stdin.readline())
out = {"hire": start["hire_id"], "env_hire": os.environ.get("SOUK_HIRE_ID"), "boot": boot,
       "input": start["input"]}
sys.stdout.write(json.dumps({"type": "result", "output": out}) + "\n")
sys.stdout.flush()
"#;

const AGENT_TOML: &str = r#"name = "warmy"
description = "Reports how it was started (warm start test agent)."
capabilities = ["testing"]
input_schema = { type = "object" }
output_schema = { type = "object" }
hosts = []

[pricing]
currency = "USD"
per_hire = "0.01"
per_hour = "0"

[limits]
max_duration_secs = 60
max_concurrency = 2
max_input_bytes = 4096

[run]
command = ["python3", "agent.py"]
warm = 1
"#;

/// Reports where it booted and when, then its hire.
const PREPARED_PY: &str = r#"import json, os, secrets, sys, time
booted_at = time.time()
open("booted", "w").close()
start = json.loads(sys.stdin.readline())
out = {"hire": start["hire_id"], "env_hire": os.environ.get("SOUK_HIRE_ID"),
       "home": os.environ.get("HOME"), "booted_at": booted_at, "boot": secrets.token_hex(8)}
sys.stdout.write(json.dumps({"type": "result", "output": out}) + "\n")
sys.stdout.flush()
"#;

/// The booted warm slots under the provider's work directory.
fn booted_slots(work: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(work.join(".warm"))
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| p.join("booted").exists())
                .collect()
        })
        .unwrap_or_default()
}

fn hire_output(client: &Path, handle: &str, input: &Path) -> (String, Value) {
    let text = ok(
        &souk(
            client,
            &["hire", handle, "--input", path_str(input), "--wait"],
        ),
        "hire --wait",
    );
    let hires = ok_json(&souk(client, &["hires", "--json"]), "hires");
    let newest = hires
        .as_array()
        .and_then(|a| a.iter().max_by_key(|h| h["created_at"].as_u64()))
        .cloned()
        .unwrap_or_default();
    let id = newest["hire_id"].as_str().unwrap_or_default().to_owned();
    assert_eq!(newest["state"], "completed", "{text}\n{newest}");
    let out = ok_json(&souk(client, &["hire", "output", &id]), "hire output");
    (id, out)
}

#[test]
fn a_warm_process_serves_one_hire_and_is_replaced() {
    let tmp = tempdir();
    let listen = format!("/ip4/127.0.0.1/tcp/{}", free_port());
    let (provider, info, _client) = provider_and_light_client(tmp.path(), &listen);
    let pdir = tmp.path().join("provider");
    let cdir = tmp.path().join("client");
    let work = PathBuf::from(format!("{}-work", pdir.display()));
    publish_found(tmp.path(), &pdir, &cdir, (AGENT_PY, AGENT_TOML), "warm");
    let handle = format!("{}/warmy", info["node_id"].as_str().unwrap_or_default());
    let input = tmp.path().join("in.json");
    std::fs::write(&input, r#"{"n": 1}"#).unwrap_or_else(|e| panic!("{e}"));

    let first_slot = wait_for("a warm process to boot", || {
        booted_slots(&work).into_iter().next()
    });
    let (id1, out1) = hire_output(&cdir, &handle, &input);
    assert_eq!(out1["hire"], id1.as_str(), "{out1}");
    assert_eq!(
        out1["env_hire"],
        Value::Null,
        "a warm process has no SOUK_HIRE_ID: {out1}"
    );
    assert_eq!(out1["input"]["n"], 1);
    // It became the hire's working directory (its boot marker moved with it).
    assert!(!first_slot.exists());
    assert!(work.join(&id1).join("booted").exists());

    // A new process boots for the next hire; the used one is never used again.
    wait_for("another warm process to boot", || {
        booted_slots(&work).into_iter().next()
    });
    let (id2, out2) = hire_output(&cdir, &handle, &input);
    assert_ne!(id1, id2);
    assert_eq!(out2["hire"], id2.as_str());
    assert_ne!(out1["boot"], out2["boot"], "one process served two hires");
    assert!(work.join(&id2).join("booted").exists());
    drop(provider);
}

/// `souk_sandboxes_ready{kind="KIND"}` from the metrics endpoint `url`.
fn sandboxes_ready(url: &str, kind: &str) -> Option<u64> {
    use std::io::{Read, Write};
    let addr = url.strip_prefix("http://")?.strip_suffix("/metrics")?;
    let mut conn = std::net::TcpStream::connect(addr).ok()?;
    conn.write_all(
        format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .ok()?;
    let mut text = String::new();
    conn.read_to_string(&mut text).ok()?;
    let series = format!("souk_sandboxes_ready{{kind=\"{kind}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(series.as_str()))
        .and_then(|v| v.trim().parse().ok())
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

#[test]
fn a_prepared_sandbox_starts_its_agent_for_the_offer_and_serves_one_hire() {
    let tmp = tempdir();
    let (pdir, cdir) = (tmp.path().join("provider"), tmp.path().join("client"));
    init(&pdir, false);
    init(&cdir, true);
    let listen = format!("/ip4/127.0.0.1/tcp/{}", free_port());
    let (provider, info, client) =
        start_provider_and_light_client(tmp.path(), &listen, &["--metrics", "127.0.0.1:0"]);
    let metrics = info["metrics_url"].as_str().unwrap_or_default().to_owned();
    let work = PathBuf::from(format!("{}-work", pdir.display()));
    let toml = AGENT_TOML
        .replace("name = \"warmy\"", "name = \"preppy\"")
        .replace("warm = 1", "prepared = 1");
    publish_found(tmp.path(), &pdir, &cdir, (PREPARED_PY, &toml), "warm");
    let handle = format!("{}/preppy", info["node_id"].as_str().unwrap_or_default());
    let input = tmp.path().join("in.json");
    std::fs::write(&input, r#"{"n": 1}"#).unwrap_or_else(|e| panic!("{e}"));

    let mut boots = Vec::new();
    for round in 0..2 {
        wait_for("a prepared sandbox", || {
            (sandboxes_ready(&metrics, "prepared")? >= 1).then_some(())
        });
        // Made, with no program in it: nothing has booted.
        assert!(booted_slots(&work).is_empty(), "round {round}");
        let before = unix_now();
        let (id, out) = hire_output(&cdir, &handle, &input);
        assert_eq!(out["hire"], id.as_str(), "{out}");
        assert_eq!(out["env_hire"], Value::Null, "{out}");
        // It ran in the prepared sandbox (its HOME is the slot it was made in, now the
        // hire's working directory), and its program started for this hire.
        let home = out["home"].as_str().unwrap_or_default();
        assert!(home.contains("/.warm/"), "{out}");
        assert!(!Path::new(home).exists(), "{out}");
        assert!(work.join(&id).join("booted").exists());
        assert!(
            out["booted_at"].as_f64().unwrap_or_default() >= before,
            "{out}"
        );
        boots.push(out["boot"].clone());
    }
    assert_ne!(boots[0], boots[1], "one process served two hires");
    drop(client);
    drop(provider);
}

/// The processes whose parent chain leads to `root` (not `root` itself).
fn descendants(root: u32) -> Vec<u32> {
    let ppid = |pid: u32| -> Option<u32> {
        let st = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        st.rsplit_once(')')?
            .1
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    };
    let all: Vec<u32> = std::fs::read_dir("/proc")
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    all.into_iter()
        .filter(|&pid| {
            let mut p = pid;
            for _ in 0..64 {
                match ppid(p) {
                    Some(q) if q == root => return true,
                    Some(q) if q > 1 => p = q,
                    _ => return false,
                }
            }
            false
        })
        .collect()
}

/// The per-hire (`souk-<16 hex>`) cgroup directories that process `pid` is in.
fn souk_cgroups(pid: u32) -> Vec<PathBuf> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ':');
            let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
            let name = path.rsplit('/').next()?;
            if !name.starts_with("souk-") {
                return None;
            }
            let base = PathBuf::from("/sys/fs/cgroup");
            let mount = match controllers {
                "" => base,
                c => base.join(c.split(',').find(|c| !c.starts_with("name="))?),
            };
            let dir = mount.join(path.trim_start_matches('/'));
            dir.is_dir().then_some(dir)
        })
        .collect()
}

/// Sandboxes a provider starts ahead of any hire (its standby sandboxes, a warm process) are
/// recorded first: after `kill -9` their processes die with the node but their cgroups stay;
/// the restarted node removes them before anything else runs.
#[test]
fn a_restart_after_kill_9_removes_the_cgroups_of_sandboxes_started_ahead() {
    let tmp = tempdir();
    let listen = format!("/ip4/127.0.0.1/tcp/{}", free_port());
    let (mut provider, _info, _client) = provider_and_light_client(tmp.path(), &listen);
    let pdir = tmp.path().join("provider");
    let cdir = tmp.path().join("client");
    let work = PathBuf::from(format!("{}-work", pdir.display()));
    publish_found(tmp.path(), &pdir, &cdir, (AGENT_PY, AGENT_TOML), "warm");
    wait_for("a warm process to boot", || {
        booted_slots(&work).into_iter().next()
    });
    let node_pid = provider.child.id();
    // The warm process and the standby sandboxes, each in its own cgroup (where the node
    // can make one; without cgroups there is nothing to leave behind).
    let standby = |pid: &u32| {
        std::fs::read(format!("/proc/{pid}/cmdline"))
            .is_ok_and(|c| c.split(|b| *b == 0).any(|a| a == b"--standby"))
    };
    let wait_standbys = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let (standbys, others) = loop {
        let (sb, rest): (Vec<u32>, Vec<u32>) = descendants(node_pid).into_iter().partition(standby);
        if sb.len() >= 2 || std::time::Instant::now() > wait_standbys {
            break (sb, rest);
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let dirs_of = |pids: Vec<u32>| {
        let mut dirs: Vec<PathBuf> = pids.into_iter().flat_map(souk_cgroups).collect();
        dirs.sort();
        dirs.dedup();
        dirs
    };
    let (standby_dirs, warm_dirs) = (dirs_of(standbys), dirs_of(others));
    if standby_dirs.is_empty() && warm_dirs.is_empty() {
        eprintln!("no per-hire cgroups on this machine: nothing to check");
        return;
    }
    assert!(!warm_dirs.is_empty(), "the warm process has no cgroup");
    assert!(!standby_dirs.is_empty(), "no standby sandbox");
    let _ = provider.child.kill();
    let _ = provider.child.wait();
    wait_for("the node's sandboxes to die with it", || {
        descendants(node_pid).is_empty().then_some(())
    });
    // A standby sees its node go (end of file) and removes its own cgroup; the warm process
    // dies at once (its death signal) and its cgroup stays: nobody removed it.
    wait_for("the standbys to remove their cgroups", || {
        standby_dirs.iter().all(|d| !d.exists()).then_some(())
    });
    assert!(warm_dirs.iter().all(|d| d.is_dir()), "{warm_dirs:?}");
    let dirs = warm_dirs;
    let mut restarted = NodeProc::start(
        "provider",
        &pdir,
        &tmp.path().join("provider-2.log"),
        &["--listen", &listen],
    );
    restarted.wait_ready();
    wait_for("the restarted node to remove the leftover cgroups", || {
        dirs.iter().all(|d| !d.exists()).then_some(())
    });
    assert!(
        restarted
            .log()
            .contains("sandbox(es) an earlier run started ahead of hires"),
        "{}",
        restarted.log()
    );
    drop(restarted);
}
