//! Shared by the sandbox tests: the helper binary, the probed sandbox (bubblewrap is
//! required: these tests fail, not skip, without it; CI installs it with
//! `apt-get install -y bubblewrap`), and small utilities.

#![allow(dead_code, unreachable_pub)]

use std::ffi::OsString;
use std::path::Path;
use std::sync::OnceLock;

use souk_runtime::sandbox::{ProbeConfig, SandboxMode, SandboxSpec, SandboxSupport, probe};
use souk_runtime::{AgentEvent, AgentProcess, Outcome, Step};

/// The helper, as this crate's `souk-sandbox-helper` binary.
pub fn helper() -> Vec<OsString> {
    vec![env!("CARGO_BIN_EXE_souk-sandbox-helper").into()]
}

/// The node's sandbox, probed once per test binary in mode `required`.
pub fn support() -> &'static SandboxSupport {
    static SUPPORT: OnceLock<SandboxSupport> = OnceLock::new();
    SUPPORT.get_or_init(|| {
        // `probe` is async; run it on its own runtime, off any test's runtime.
        let probed = std::thread::spawn(|| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap_or_else(|e| panic!("runtime: {e}"));
            rt.block_on(probe(&ProbeConfig {
                mode: SandboxMode::Required,
                helper: helper(),
                bwrap: None,
                cgroup_parent: None,
                extra_ro_paths: Vec::new(),
            }))
        })
        .join()
        .unwrap_or_else(|_| panic!("probe panicked"));
        probed.unwrap_or_else(|e| {
            panic!(
                "these tests need a working bubblewrap sandbox (CI installs it with \
                 `apt-get install -y bubblewrap`): {e}"
            )
        })
    })
}

/// The sandboxed spec (namespaces, cgroup when available).
pub fn sandboxed() -> SandboxSpec {
    support().spec.clone()
}

/// The same without namespaces (`sandbox = "off"`).
pub fn plain() -> SandboxSpec {
    SandboxSpec {
        bwrap: None,
        ..sandboxed()
    }
}

/// Runs to the end and closes the run (every process of it is gone), returning the events
/// and the outcome.
pub async fn run_to_end(agent: &mut AgentProcess) -> (Vec<AgentEvent>, Outcome) {
    let mut events = Vec::new();
    loop {
        match agent.next().await {
            Step::Event(e) => events.push(e),
            Step::Ended(o) => {
                agent.close().await;
                return (events, o);
            }
        }
    }
}

/// 16 random hex digits.
pub fn random_hex() -> String {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).unwrap_or_else(|e| panic!("getrandom: {e}"));
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Host processes whose environment contains `marker` (every process of a hire carries
/// the hire's environment).
pub fn processes_with(marker: &str) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.windows(marker.len()).any(|w| w == marker.as_bytes()))
        })
        .filter(|pid| {
            // Zombies are dead; their parent has not reaped them yet.
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| {
                    s.rsplit_once(')')
                        .and_then(|(_, r)| r.split_whitespace().next().map(str::to_owned))
                })
                .is_some_and(|state| state != "Z")
        })
        .collect()
}

/// Copies the test agent `name` (from `tests/agents/`) into `dir`.
pub fn copy_agent(name: &str, dir: &Path) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/agents")
        .join(name);
    std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("{e}"));
    std::fs::copy(&src, dir.join(name)).unwrap_or_else(|e| panic!("copy {}: {e}", src.display()));
}
