//! What a provider's job needs around its agent's process, as free functions over the store
//! and the settings: whether the package may run, the agent's environment and run config, the
//! private working directories, the record of the running sandbox (so a restarted node stops
//! what a crash left before resuming: a hire never runs twice at once), the hire's resource
//! limits, and the credential budget already used. Cold starts (`job.rs`) and warm ones
//! (`warm.rs`) start agents the same way through these.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use souk_protocol::Hash;
use souk_protocol::manifest::Manifest;
use souk_runtime::sandbox::{ProxyForward, kill_leftover};
use souk_runtime::{ResourceLimits, RunConfig, SandboxRecord};

use crate::agent_file::RunSpec;

use super::ctx::{Ctx, blocking};
use super::egress::requests_used;
use super::error::HireError;
use super::record::BLOB_SANDBOX;

/// Where the proxies' unix sockets live (inside the work base, never inside a hire's own
/// directory, which its agent can write).
pub(super) fn sockets_dir(work_base: &Path) -> PathBuf {
    work_base.join(".proxy")
}

/// The hire's resource limits: what its manifest states (0: none), within the node's
/// ceilings.
pub(super) fn limits(manifest: &Manifest, ceilings: &ResourceLimits) -> ResourceLimits {
    let l = &manifest.limits;
    let stated = |v: u64| (v > 0).then_some(v);
    ResourceLimits {
        memory_bytes: stated(l.memory_bytes),
        max_processes: stated(l.max_processes),
        ..ResourceLimits::NONE
    }
    .clamp(ceilings)
}

/// Per slot, the credentialed calls already in hire `id`'s chain (the budget used so far).
pub(super) async fn budget_used(ctx: &Ctx, id: Hash) -> Result<HashMap<String, u64>, HireError> {
    let store = ctx.store.clone();
    let entries = blocking(move || {
        Ok(store
            .receipts(&id, 0, usize::MAX)?
            .into_iter()
            .map(|(_, raw)| raw)
            .collect::<Vec<_>>())
    })
    .await?;
    Ok(requests_used(&entries))
}

/// Creates the work base, the proxies' socket directory and the hire's working directory,
/// private to this user (0700).
pub(super) async fn prepare_dirs(work_base: &Path, workdir: &Path) -> std::io::Result<()> {
    let dirs = [
        work_base.to_path_buf(),
        sockets_dir(work_base),
        workdir.to_path_buf(),
    ];
    tokio::task::spawn_blocking(move || {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        for d in dirs {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&d)?;
            std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700))?;
        }
        Ok(())
    })
    .await
    .unwrap_or_else(|e| Err(std::io::Error::other(e)))
}

/// Stops what an earlier run of hire `id` left (a crash of this node), if anything.
pub(super) async fn stop_leftover(ctx: &Ctx, id: Hash) -> Result<(), HireError> {
    let store = ctx.store.clone();
    let Some(raw) = blocking(move || Ok(store.get_hire_blob(&id, BLOB_SANDBOX)?)).await? else {
        return Ok(());
    };
    if raw.is_empty() {
        return Ok(());
    }
    let record: SandboxRecord =
        serde_json::from_slice(&raw).map_err(|e| HireError::corrupt(id, BLOB_SANDBOX, e))?;
    let killed = tokio::task::spawn_blocking(move || kill_leftover(&record)).await?;
    match killed {
        Ok(true) => {
            tracing::warn!(hire = %id.short(), "stopped the agent of an earlier run before resuming")
        }
        Ok(false) => {}
        Err(e) => return Err(HireError::corrupt(id, BLOB_SANDBOX, e)),
    }
    keep_sandbox_record(ctx, id, None, false).await
}

/// Stores the record of hire `id`'s running sandbox, durably (`None` clears it). A
/// sandbox started ahead of the hire (`ahead`: its record is in node state,
/// [`super::ahead`]) moves from there in the same commit, and that commit is not synced on
/// its own: until a later one is, the node state row names the same process.
pub(super) async fn keep_sandbox_record(
    ctx: &Ctx,
    id: Hash,
    record: Option<&SandboxRecord>,
    ahead: bool,
) -> Result<(), HireError> {
    let store = ctx.store.clone();
    match record {
        Some(r) if ahead => {
            let (bytes, key) = (super::ahead::encode(r), super::ahead::key(r));
            blocking(move || {
                Ok(store.put_hire_blob_taking_state(&id, BLOB_SANDBOX, &bytes, &key, false)?)
            })
            .await
        }
        Some(r) => {
            let bytes = super::ahead::encode(r);
            blocking(move || Ok(store.put_hire_blob(&id, BLOB_SANDBOX, &bytes)?)).await
        }
        // Cleared without a sync of its own: a stale record names processes that are gone
        // (a resumed hire's check finds nothing), and a finished hire never reads it.
        None => blocking(move || Ok(store.put_hire_blob_deferred(&id, BLOB_SANDBOX, &[])?)).await,
    }
}

/// Whether `run` may run here for `manifest`: its package and includes keep clear of the
/// node's data and work directories, and the package on disk is the one the manifest signed.
/// The error is for the provider's log.
pub(super) async fn check_runnable(
    ctx: &Ctx,
    run: &RunSpec,
    manifest: &Manifest,
) -> Result<(), String> {
    let mut protected = ctx.settings.protected.clone();
    protected.push(ctx.workdir.clone());
    crate::agent_file::check_run_paths(run, &protected)?;
    let digest = {
        let run = run.clone();
        tokio::task::spawn_blocking(move || run.digest())
            .await
            .map_err(|e| e.to_string())?
    };
    match digest {
        Err(e) => Err(format!(
            "cannot read the agent package {}: {e}",
            run.package_dir().display()
        )),
        Ok(d) if d != manifest.runtime_digest => {
            Err("the agent package changed since its manifest was signed; republish it".into())
        }
        Ok(_) => Ok(()),
    }
}

/// The variables every agent of `run` gets besides the runtime's own: `SOUK_PACKAGE_DIR`,
/// and `SOUK_INCLUDE` with its `run.include` directories.
pub(super) fn agent_env(run: &RunSpec) -> Vec<(String, String)> {
    let mut env = vec![(
        "SOUK_PACKAGE_DIR".to_owned(),
        run.package_dir().to_string_lossy().into_owned(),
    )];
    if !run.include.is_empty() {
        // Where the `run.include` directories are (e.g. for Python's `sys.path`).
        let dirs: Vec<_> = run.include.iter().map(|d| d.as_os_str()).collect();
        env.push((
            "SOUK_INCLUDE".to_owned(),
            std::env::join_paths(dirs)
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default(),
        ));
    }
    env
}

/// How the agent of `run` is started for a hire (or a warm slot): in `workdir`, with `env`,
/// the node's sandbox with the proxy `forward` and `run.include` bound read-only, the
/// manifest's limits within the node's ceilings, and `wall` as its wall time.
pub(super) fn run_config(
    ctx: &Ctx,
    manifest: &Manifest,
    run: &RunSpec,
    workdir: PathBuf,
    env: Vec<(String, String)>,
    forward: Option<ProxyForward>,
    wall: Duration,
) -> RunConfig {
    let package = run.package_dir().to_path_buf();
    let sandbox = ctx.settings.sandbox.clone();
    RunConfig {
        command: souk_runtime::resolve_command(&run.command, &package),
        workdir,
        env,
        wall_time: wall,
        // A committed payload must fit a disclosure (1 MiB) with room for its framing.
        max_line_bytes: 512 * 1024,
        package_dir: Some(package),
        limits: match &sandbox {
            Some(_) => limits(manifest, &ctx.settings.ceilings),
            None => ResourceLimits::NONE,
        },
        sandbox: sandbox.map(|s| {
            let mut spec = s.spec;
            spec.proxy = forward;
            // `run.include`: hashed into the digest checked before, read-only inside.
            spec.extra_ro_paths.extend(run.include.iter().cloned());
            spec
        }),
        standby: ctx.standby.clone(),
        ..RunConfig::default()
    }
}
