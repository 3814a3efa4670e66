//! The command line of one confined hire: resolves the program, creates the hire's cgroup,
//! and nests the stages `helper enter -- [bwrap ... --] helper init -- agent` with their
//! options and the agent's environment.
//!
//! Builds; never spawns (`process.rs` does, and `guard.rs` owns what was created).

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::bwrap::{self, PROXY_SOCKET_PATH};
use super::cgroup::HireCgroup;
use super::limits::{ResourceLimits, rlimits};
use super::resolve::{ResolveContext, ResolveError, resolve_program};
use super::{SANDBOX_PATH, SandboxError, SandboxSpec};

/// What to spawn for a confined hire.
#[derive(Debug)]
pub(crate) struct Prepared {
    /// The helper (its real path on the host).
    pub(crate) program: PathBuf,
    /// Its leading arguments, `enter`, and the options a standby was started with
    /// (`--parent`, `--cgroup`).
    pub(crate) lead: Vec<OsString>,
    /// The rest: `[--data DEST CONTENT]... -- PROGRAM ARGS...` (what a standby reads).
    pub(crate) args: Vec<OsString>,
    /// The agent's environment (the outer stages run with it too).
    pub(crate) env: Vec<(OsString, OsString)>,
    /// The hire's cgroup, created (removed by the guard).
    pub(crate) cgroup: Option<HireCgroup>,
}

/// The agent's command and the environment entries it starts with.
pub(crate) struct Agent<'a> {
    pub(crate) command: &'a [String],
    /// Absolute working directory.
    pub(crate) workdir: &'a Path,
    /// Absolute package directory, if any.
    pub(crate) package_dir: Option<&'a Path>,
    pub(crate) hire_id: &'a str,
    /// Started before its hire (a warm start): no `SOUK_HIRE_ID`.
    pub(crate) warm: bool,
    pub(crate) extra_env: &'a [(String, String)],
    pub(crate) limits: &'a ResourceLimits,
    /// The node's `PATH`.
    pub(crate) node_path: OsString,
}

/// `program` as spawned without namespaces: a relative path with a `/` is taken relative to
/// `workdir`; a bare name is looked up on the agent's `PATH`.
pub(crate) fn program_path(program: &str, workdir: &Path) -> PathBuf {
    let p = Path::new(program);
    if p.is_relative() && program.contains('/') {
        workdir.join(p)
    } else {
        p.to_path_buf()
    }
}

/// The helper's real path on the host (what is bound inside and executed outside).
fn helper_program(spec: &SandboxSpec) -> Result<PathBuf, SandboxError> {
    let first = spec
        .helper
        .first()
        .ok_or_else(|| SandboxError::NotAvailable {
            what: "no sandbox helper program is configured".into(),
        })?;
    let path = Path::new(first);
    std::fs::canonicalize(path)
        .ok()
        .filter(|p| p.is_file())
        .ok_or_else(|| SandboxError::NotAvailable {
            what: format!("the sandbox helper {} does not exist", path.display()),
        })
}

/// Builds the confined command for `agent` under `spec`; creates its cgroup unless
/// `in_standby` (a standby's cgroup exists already: the caller gives it the limits).
pub(crate) fn prepare(
    spec: &SandboxSpec,
    agent: &Agent<'_>,
    in_standby: bool,
) -> Result<Prepared, SandboxError> {
    let helper = helper_program(spec)?;
    let helper_argv = |stage: &str| -> Vec<OsString> {
        let mut v: Vec<OsString> = vec![helper.clone().into()];
        v.extend(spec.helper.iter().skip(1).cloned());
        v.push(stage.into());
        v
    };
    let Some(first) = agent.command.first() else {
        return Err(SandboxError::Resolve {
            program: String::new(),
            source: ResolveError::NotFound {
                name: String::new(),
            },
        });
    };

    // The agent's program, its arguments and PATH.
    let (agent_argv, path_env, ro_binds): (Vec<OsString>, OsString, Vec<PathBuf>) = match &spec
        .bwrap
    {
        Some(_) => {
            let mut visible = bwrap::system_visible();
            visible.extend(agent.package_dir.map(Path::to_owned));
            visible.push(agent.workdir.to_owned());
            visible.extend(spec.extra_ro_paths.iter().cloned());
            let resolved = resolve_program(
                first,
                &ResolveContext {
                    search_path: &agent.node_path,
                    relative_base: agent.workdir,
                    shim_cwd: agent.package_dir.unwrap_or(agent.workdir),
                    visible: &visible,
                },
            )
            .map_err(|source| SandboxError::Resolve {
                program: first.clone(),
                source,
            })?;
            let mut argv: Vec<OsString> = vec![resolved.program.into()];
            argv.extend(resolved.leading_args);
            argv.extend(agent.command[1..].iter().map(OsString::from));
            let mut path: Vec<PathBuf> = resolved
                .binds
                .iter()
                .map(|b| b.join("bin"))
                .filter(|b| b.is_dir())
                .collect();
            path.extend(std::env::split_paths(SANDBOX_PATH));
            let path = std::env::join_paths(path).unwrap_or_else(|_| SANDBOX_PATH.into());
            let mut binds = vec![helper.clone()];
            for b in resolved
                .binds
                .into_iter()
                .chain(spec.extra_ro_paths.iter().cloned())
            {
                if !binds.contains(&b) {
                    binds.push(b);
                }
            }
            (argv, path, binds)
        }
        None => {
            let mut argv: Vec<OsString> = vec![program_path(first, agent.workdir).into_os_string()];
            argv.extend(agent.command[1..].iter().map(OsString::from));
            (argv, agent.node_path.clone(), Vec::new())
        }
    };

    let cgroup = match &spec.cgroups {
        Some(parent) if !in_standby => Some(HireCgroup::create(parent, agent.limits).map_err(
            |e| SandboxError::Cgroup {
                path: e.path,
                source: e.source,
            },
        )?),
        _ => None,
    };
    let isolated = spec.bwrap.is_some();
    let cg_memory = spec.cgroups.as_ref().is_some_and(|c| c.has_memory());
    let cg_pids = spec.cgroups.as_ref().is_some_and(|c| c.has_pids());

    // init: pid 1 of the sandbox (or a session leader and subreaper without one); it starts
    // the agent under its rlimits.
    let mut init = helper_argv("init");
    match (&spec.proxy, isolated) {
        (Some(proxy), true) => {
            init.push("--listen".into());
            init.push(proxy.port.to_string().into());
            init.push("--socket".into());
            init.push(PROXY_SOCKET_PATH.into());
        }
        (_, false) => init.push("--plain".into()),
        (None, true) => {}
    }
    for r in rlimits(agent.limits, cg_memory, cg_pids, isolated) {
        init.push("--rlimit".into());
        init.push(r.to_arg());
    }
    init.push("--".into());
    init.extend(agent_argv);

    // enter: dies with the node, joins the cgroup, passes the /etc files to bubblewrap.
    let mut lead: Vec<OsString> = spec.helper.iter().skip(1).cloned().collect();
    lead.push("enter".into());
    lead.push("--parent".into());
    lead.push(std::process::id().to_string().into());
    if let Some(cg) = &cgroup {
        for procs in cg.procs_files() {
            lead.push("--cgroup".into());
            lead.push(procs.into());
        }
    }
    let mut args: Vec<OsString> = Vec::new();
    match &spec.bwrap {
        Some(bw) => {
            for (dest, content) in bwrap::etc_files(agent.workdir) {
                args.push("--data".into());
                args.push(dest.into());
                args.push(content.into());
            }
            args.push("--".into());
            args.push(bw.path.clone().into());
            args.extend(bwrap::args(&bwrap::Plan {
                version: bw.version,
                workdir: agent.workdir,
                package_dir: agent.package_dir,
                ro_binds: &ro_binds,
                proxy_socket: spec.proxy.as_ref().map(|p| p.socket.as_path()),
                tmp_size: agent.limits.memory_bytes,
            }));
            args.push("--".into());
        }
        None => args.push("--".into()),
    }
    args.extend(init);

    let mut env: Vec<(OsString, OsString)> = vec![
        ("PATH".into(), path_env),
        ("HOME".into(), agent.workdir.into()),
        ("LANG".into(), "C.UTF-8".into()),
    ];
    if !agent.warm {
        env.push(("SOUK_HIRE_ID".into(), agent.hire_id.into()));
    }
    env.extend(
        agent
            .extra_env
            .iter()
            .map(|(k, v)| (OsString::from(k), OsString::from(v))),
    );
    Ok(Prepared {
        program: helper,
        lead,
        args,
        env,
        cgroup,
    })
}
