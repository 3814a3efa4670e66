//! Sandboxed test nodes: the sandbox helper next to the test executable, and hire settings
//! probed with it (as `souk node run` probes at start).

use std::ffi::OsString;
use std::path::PathBuf;

use souk_runtime::sandbox::{ProbeConfig, SandboxMode, probe};

use crate::hire::HireSettings;

/// The sandbox helper for tests: a binary built beside the test executable that runs
/// `souk_runtime::sandbox::helper::main` (`souk-tests-sandbox-helper` of the `souk-tests`
/// package, `souk-sandbox-helper` of `souk-runtime`, or `souk` itself with `sandbox-helper`).
pub fn sandbox_helper() -> Vec<OsString> {
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("current exe: {e}"));
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Some(d) = exe.parent() {
        dirs.push(d.to_path_buf());
        if let Some(p) = d.parent() {
            dirs.push(p.to_path_buf());
        }
    }
    for dir in &dirs {
        for (name, args) in [
            ("souk-tests-sandbox-helper", &[][..]),
            ("souk-sandbox-helper", &[][..]),
            ("souk", &["sandbox-helper"][..]),
        ] {
            let path = dir.join(name);
            if path.is_file() {
                let mut v = vec![path.into_os_string()];
                v.extend(args.iter().map(OsString::from));
                return v;
            }
        }
    }
    panic!(
        "no sandbox helper next to {}: build it with `cargo build -p souk-tests --bins`",
        exe.display()
    )
}

/// Hire settings with the sandbox required, probed now (fails the test, with what is
/// missing, where bubblewrap or user namespaces are not available: CI installs them).
pub async fn sandboxed_settings() -> HireSettings {
    let support = probe(&ProbeConfig {
        mode: SandboxMode::Required,
        helper: sandbox_helper(),
        bwrap: None,
        cgroup_parent: None,
        extra_ro_paths: Vec::new(),
    })
    .await
    .unwrap_or_else(|e| panic!("the sandbox is not available ({e}); install bubblewrap"));
    HireSettings {
        sandbox: Some(support),
        ..HireSettings::default()
    }
}
