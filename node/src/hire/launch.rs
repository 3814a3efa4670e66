//! What a provider's job needs around its agent's process, as free functions over the store
//! and the settings: the private working directories, the record of the running sandbox (so a
//! restarted node stops what a crash left before resuming: a hire never runs twice at once),
//! the hire's resource limits, and the credential budget already used.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use souk_protocol::Hash;
use souk_protocol::manifest::Manifest;
use souk_runtime::sandbox::kill_leftover;
use souk_runtime::{ResourceLimits, SandboxRecord};

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
    keep_sandbox_record(ctx, id, None).await
}

/// Stores (or, with `None`, clears) the record of hire `id`'s running sandbox, durably.
pub(super) async fn keep_sandbox_record(
    ctx: &Ctx,
    id: Hash,
    record: Option<&SandboxRecord>,
) -> Result<(), HireError> {
    let bytes = match record {
        Some(r) => serde_json::to_vec(r).map_err(|e| HireError::corrupt(id, BLOB_SANDBOX, e))?,
        None => Vec::new(),
    };
    let store = ctx.store.clone();
    blocking(move || Ok(store.put_hire_blob(&id, BLOB_SANDBOX, &bytes)?)).await
}
