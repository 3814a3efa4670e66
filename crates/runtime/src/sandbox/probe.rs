//! [`probe`]: at node start, finds out whether agents can be sandboxed here, by creating a
//! throwaway sandbox (bubblewrap alone, then the whole helper pipeline running a tiny
//! agent), and says exactly what is missing and how to fix it.
//!
//! Decides the [`SandboxSpec`] hires use; never changes the system (it only creates and
//! removes a probe cgroup and a temporary directory).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde_json::json;

use super::bwrap::{self, BwrapVersion, SANDBOX_UID, parse_version};
use super::cgroup::CgroupParent;
use super::limits::ResourceLimits;
use super::{Bubblewrap, SandboxSpec};
use crate::{AgentProcess, Outcome, RunConfig, Step};

/// How long each trial may take.
const TRIAL_TIMEOUT: Duration = Duration::from_secs(30);

/// The `sandbox` setting of the node.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum SandboxMode {
    /// Agents run sandboxed; the node does not start if it cannot sandbox them.
    #[default]
    Required,
    /// Sandboxed when possible, else without namespaces, with a loud warning.
    Auto,
    /// No namespaces (limits, cgroup and a new session still apply).
    Off,
}

impl SandboxMode {
    /// `required`, `auto` or `off`.
    pub fn as_str(self) -> &'static str {
        match self {
            SandboxMode::Required => "required",
            SandboxMode::Auto => "auto",
            SandboxMode::Off => "off",
        }
    }
}

impl std::fmt::Display for SandboxMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SandboxMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "required" => Ok(SandboxMode::Required),
            "auto" => Ok(SandboxMode::Auto),
            "off" => Ok(SandboxMode::Off),
            other => Err(format!(
                "sandbox must be \"required\", \"auto\" or \"off\", not {other:?}"
            )),
        }
    }
}

/// What [`probe`] checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeConfig {
    /// The configured mode.
    pub mode: SandboxMode,
    /// The helper: program and leading arguments (e.g. the node's own executable and
    /// `sandbox-helper`).
    pub helper: Vec<OsString>,
    /// Bubblewrap's path; `None`: `bwrap` on `PATH`, else `/usr/bin/bwrap`.
    pub bwrap: Option<PathBuf>,
    /// A cgroup v2 directory delegated to the node for hires; `None`: detect.
    pub cgroup_parent: Option<PathBuf>,
    /// More host paths every sandbox binds read-only.
    pub extra_ro_paths: Vec<PathBuf>,
}

/// What the node can do, per [`probe`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxSupport {
    /// The configured mode.
    pub mode: SandboxMode,
    /// The spec for hires (without a proxy: set [`SandboxSpec::proxy`] per hire).
    pub spec: SandboxSpec,
    /// What is degraded, one sentence each, to log loudly at start (empty when everything
    /// works).
    pub warnings: Vec<String>,
}

impl SandboxSupport {
    /// True if agents run in namespaces.
    pub fn is_isolated(&self) -> bool {
        self.spec.is_isolated()
    }

    /// For `souk node info` and the manifest: `bubblewrap 0.8.0, cgroup v1 (pids, memory)`,
    /// or `none` when agents are not sandboxed.
    pub fn summary(&self) -> String {
        let cg = self
            .spec
            .cgroups
            .as_ref()
            .map_or("rlimits only".to_owned(), CgroupParent::describe);
        match &self.spec.bwrap {
            Some(b) => {
                let (x, y, z) = b.version;
                format!("bubblewrap {x}.{y}.{z}, {cg}")
            }
            None => "none".into(),
        }
    }
}

/// Why agents cannot be sandboxed (in mode `required`), with the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SandboxUnavailable {
    /// The helper program is missing.
    #[error("the sandbox helper {} cannot be run: {detail}", path.display())]
    Helper {
        /// The helper program.
        path: PathBuf,
        /// Why.
        detail: String,
    },
    /// Bubblewrap is not installed.
    #[error(
        "bubblewrap (bwrap) is not installed: install it (Debian/Ubuntu: `apt-get install -y bubblewrap`, Fedora: `dnf install bubblewrap`), or set sandbox = \"auto\" or \"off\""
    )]
    BwrapMissing,
    /// The kernel does not allow user namespaces.
    #[error("user namespaces are disabled ({setting}): {fix}")]
    UserNamespaces {
        /// The sysctl that disables them, with its value.
        setting: String,
        /// How to enable them.
        fix: String,
    },
    /// Bubblewrap fails here for another reason.
    #[error("bubblewrap cannot create a sandbox: {detail}")]
    Bwrap {
        /// Its error output, and a hint.
        detail: String,
    },
    /// A sandbox came up but the trial agent did not run in it.
    #[error("a trial agent did not run in the sandbox: {detail}")]
    Trial {
        /// What happened.
        detail: String,
    },
}

fn find_bwrap(explicit: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = explicit {
        return p.is_file().then(|| p.to_owned());
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .filter(|d| d.is_absolute())
        .map(|d| d.join("bwrap"))
        .chain([PathBuf::from("/usr/bin/bwrap")])
        .find(|p| p.is_file())
}

fn read_sysctl(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_owned())
}

/// Turns bubblewrap's failure into the precise missing piece.
fn diagnose(stderr: &str) -> SandboxUnavailable {
    let root = rustix::process::geteuid().is_root();
    if read_sysctl("/proc/sys/user/max_user_namespaces").as_deref() == Some("0") {
        return SandboxUnavailable::UserNamespaces {
            setting: "user.max_user_namespaces = 0".into(),
            fix:
                "run `sysctl -w user.max_user_namespaces=15000` (and persist it in /etc/sysctl.d/)"
                    .into(),
        };
    }
    if !root && read_sysctl("/proc/sys/kernel/unprivileged_userns_clone").as_deref() == Some("0") {
        return SandboxUnavailable::UserNamespaces {
            setting: "kernel.unprivileged_userns_clone = 0".into(),
            fix: "run `sysctl -w kernel.unprivileged_userns_clone=1` (and persist it in /etc/sysctl.d/), or run the node as root".into(),
        };
    }
    if !root
        && read_sysctl("/proc/sys/kernel/apparmor_restrict_unprivileged_userns").as_deref()
            == Some("1")
    {
        return SandboxUnavailable::UserNamespaces {
            setting: "kernel.apparmor_restrict_unprivileged_userns = 1".into(),
            fix: "give bwrap an AppArmor profile allowing user namespaces (Ubuntu: `apt-get install apparmor-profiles` provides bwrap-userns-restrict), or run `sysctl -w kernel.apparmor_restrict_unprivileged_userns=0`".into(),
        };
    }
    let mut detail = stderr.trim().to_owned();
    if detail.is_empty() {
        detail = "it failed without a message".into();
    }
    if Path::new("/.dockerenv").exists() || Path::new("/run/.containerenv").exists() {
        detail.push_str(
            "; inside a container, namespaces need e.g. `--security-opt seccomp=unconfined --security-opt apparmor=unconfined` (or `--privileged`)",
        );
    }
    SandboxUnavailable::Bwrap { detail }
}

/// Runs `bwrap --version` and a minimal sandbox (`/usr/bin/true` in new namespaces).
async fn check_bwrap(bwrap: &Path) -> Result<BwrapVersion, SandboxUnavailable> {
    let run = |args: Vec<OsString>| {
        let mut cmd = tokio::process::Command::new(bwrap);
        cmd.args(args)
            .env_clear()
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true);
        async move { tokio::time::timeout(TRIAL_TIMEOUT, cmd.output()).await }
    };
    let version = match run(vec!["--version".into()]).await {
        Ok(Ok(out)) if out.status.success() => parse_version(&String::from_utf8_lossy(&out.stdout)),
        _ => None,
    }
    .ok_or_else(|| SandboxUnavailable::Bwrap {
        detail: format!("`{} --version` failed", bwrap.display()),
    })?;
    let uid = SANDBOX_UID.to_string();
    let mut args: Vec<OsString> = [
        "--unshare-user",
        "--uid",
        &uid,
        "--gid",
        &uid,
        "--unshare-pid",
        "--unshare-net",
        "--unshare-ipc",
        "--unshare-uts",
        "--die-with-parent",
        "--new-session",
        "--proc",
        "/proc",
        "--dev",
        "/dev",
    ]
    .map(OsString::from)
    .to_vec();
    for dir in bwrap::SYSTEM_DIRS {
        let path = Path::new(dir);
        match std::fs::read_link(path) {
            Ok(target) => args.extend(["--symlink".into(), target.into(), dir.into()]),
            Err(_) if path.is_dir() => args.extend(["--ro-bind".into(), dir.into(), dir.into()]),
            Err(_) => {}
        }
    }
    args.extend(["--".into(), "/usr/bin/true".into()]);
    match run(args).await {
        Ok(Ok(out)) if out.status.success() => Ok(version),
        Ok(Ok(out)) => Err(diagnose(&String::from_utf8_lossy(&out.stderr))),
        Ok(Err(e)) => Err(SandboxUnavailable::Bwrap {
            detail: format!("cannot run {}: {e}", bwrap.display()),
        }),
        Err(_) => Err(SandboxUnavailable::Bwrap {
            detail: format!(
                "a minimal sandbox took more than {} s",
                TRIAL_TIMEOUT.as_secs()
            ),
        }),
    }
}

/// Runs a tiny agent through the whole pipeline (helper, bubblewrap if any, cgroup,
/// rlimits) in a temporary working directory.
async fn trial(spec: &SandboxSpec) -> Result<(), String> {
    let mut name = [0u8; 8];
    getrandom::fill(&mut name).map_err(|e| e.to_string())?;
    let hex: String = name.iter().map(|b| format!("{b:02x}")).collect();
    let dir = std::env::temp_dir().join(format!("souk-sandbox-probe-{hex}"));
    let cfg = RunConfig {
        command: vec![
            "/bin/sh".into(),
            "-c".into(),
            r#"read -r line; echo '{"type":"result","output":"ok"}'"#.into(),
        ],
        workdir: dir.clone(),
        sandbox: Some(spec.clone()),
        limits: ResourceLimits {
            max_open_files: Some(64),
            max_processes: Some(16),
            ..ResourceLimits::NONE
        },
        wall_time: TRIAL_TIMEOUT,
        silence_timeout: TRIAL_TIMEOUT,
        ..RunConfig::default()
    };
    let hire = "0".repeat(64);
    let result = async {
        let mut agent = AgentProcess::spawn(&cfg, &hire, &json!(null), None)
            .await
            .map_err(|e| e.to_string())?;
        loop {
            match agent.next().await {
                Step::Event(_) => {}
                Step::Ended(outcome) => {
                    agent.close().await;
                    return match outcome {
                        Outcome::Completed { output } if output == json!("ok") => Ok(()),
                        other => Err(format!("{other:?}")),
                    };
                }
            }
        }
    }
    .await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// Checks what confinement this machine offers for `cfg.mode`: the helper runs, bubblewrap
/// is installed and can create namespaces (unless `off`), cgroups can be created (else
/// limits fall back to rlimits, with a warning), and a trial agent runs in the result.
///
/// `required` fails with exactly what is missing; `auto` falls back to no namespaces with
/// a warning; `off` skips bubblewrap (with a warning too).
pub async fn probe(cfg: &ProbeConfig) -> Result<SandboxSupport, SandboxUnavailable> {
    let helper_path = cfg.helper.first().map(PathBuf::from).unwrap_or_default();
    let helper_ok = std::fs::metadata(&helper_path).is_ok_and(|m| m.is_file());
    if !helper_ok {
        return Err(SandboxUnavailable::Helper {
            path: helper_path,
            detail: "not found".into(),
        });
    }
    let mut warnings = Vec::new();
    let cgroups = match CgroupParent::detect(cfg.cgroup_parent.as_deref()) {
        Ok(p) => {
            if !p.has_memory() {
                warnings.push("no memory cgroup for hires: the memory limit falls back to RLIMIT_AS (per process, address space)".to_owned());
            }
            if !p.has_pids() {
                warnings.push("no pids cgroup for hires: the process limit falls back to RLIMIT_NPROC, which is not enforced when the node runs as root".to_owned());
            }
            Some(p)
        }
        Err(why) => {
            warnings.push(format!(
                "no cgroup for hires ({why}): the memory limit falls back to RLIMIT_AS (per process), the process limit to RLIMIT_NPROC (not enforced when the node runs as root), and leftovers of a crashed node are found by pid only"
            ));
            None
        }
    };
    let mut spec = SandboxSpec {
        helper: cfg.helper.clone(),
        bwrap: None,
        cgroups,
        proxy: None,
        extra_ro_paths: cfg.extra_ro_paths.clone(),
    };
    let unavailable = if cfg.mode == SandboxMode::Off {
        None
    } else {
        let checked = match find_bwrap(cfg.bwrap.as_deref()) {
            None => Err(SandboxUnavailable::BwrapMissing),
            Some(path) => check_bwrap(&path)
                .await
                .map(|version| Bubblewrap { path, version }),
        };
        match checked {
            Ok(bw) => {
                spec.bwrap = Some(bw);
                match trial(&spec).await {
                    Ok(()) => {
                        return Ok(SandboxSupport {
                            mode: cfg.mode,
                            spec,
                            warnings,
                        });
                    }
                    Err(detail) => Some(SandboxUnavailable::Trial { detail }),
                }
            }
            Err(e) => Some(e),
        }
    };
    match (cfg.mode, unavailable) {
        (SandboxMode::Required, Some(e)) => return Err(e),
        (_, Some(e)) => warnings.push(format!(
            "AGENTS RUN WITHOUT A SANDBOX (sandbox = \"auto\"): {e}. They can read whatever the node's user can read and reach the network directly."
        )),
        (_, None) => warnings.push(
            "AGENTS RUN WITHOUT A SANDBOX (sandbox = \"off\"): they can read whatever the node's user can read and reach the network directly.".to_owned(),
        ),
    }
    spec.bwrap = None;
    trial(&spec)
        .await
        .map_err(|detail| SandboxUnavailable::Trial { detail })?;
    Ok(SandboxSupport {
        mode: cfg.mode,
        spec,
        warnings,
    })
}
