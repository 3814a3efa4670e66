//! Sandboxes started ahead of any hire (standby sandboxes, warm processes): the node records
//! each one durably in node state (`sandbox-ahead/<pid>-<start time>`, a JSON
//! [`SandboxRecord`]) before it is used, so that after a crash the restarted node stops what
//! they name and removes their cgroups ([`stop_all`]) before any hire resumes. When a hire
//! takes one, its record moves to the hire (`launch::keep_sandbox_record`) in one commit,
//! which then need not be synced at once: until it is durable the row here still names the
//! process.

use std::sync::Arc;

use souk_runtime::SandboxRecord;
use souk_runtime::sandbox::{StandbyRecorder, kill_leftover};
use souk_store::Store;

use super::ctx::blocking;
use super::error::HireError;

/// The node state key prefix of these records.
pub(crate) const PREFIX: &str = "sandbox-ahead/";

/// The node state key of `rec`.
pub(crate) fn key(rec: &SandboxRecord) -> String {
    format!("{PREFIX}{}-{}", rec.pid, rec.start_time)
}

/// `rec` as stored (JSON, as a hire's `sandbox` blob).
pub(crate) fn encode(rec: &SandboxRecord) -> Vec<u8> {
    // A struct of numbers, strings and paths: serializing it cannot fail.
    serde_json::to_vec(rec).unwrap_or_default()
}

/// Stores `rec` durably.
pub(super) async fn record(store: Arc<Store>, rec: &SandboxRecord) -> Result<(), HireError> {
    let key = key(rec);
    let bytes = encode(rec);
    blocking(move || Ok(store.put_state(&key, &bytes)?)).await
}

/// What the standby pool calls for each standby before handing it out.
pub(super) fn recorder(store: Arc<Store>) -> StandbyRecorder {
    Arc::new(move |rec: SandboxRecord| {
        let store = store.clone();
        Box::pin(async move {
            match record(store, &rec).await {
                Ok(()) => true,
                Err(e) => {
                    tracing::warn!("cannot record a standby sandbox: {e}");
                    false
                }
            }
        })
    })
}

/// Deletes `rec`'s row (its processes are gone); a failure only leaves a row the next start
/// clears.
pub(super) fn forget(store: Arc<Store>, rec: &SandboxRecord) {
    let key = key(rec);
    tokio::task::spawn_blocking(move || {
        if let Err(e) = store.remove_state(&key) {
            tracing::debug!("cannot forget {key}: {e}");
        }
    });
}

/// What [`stop_all`] found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Stopped {
    /// Records handled (their cgroups removed, their rows deleted).
    pub(super) records: usize,
    /// Of those, sandboxes that still had a process to kill.
    pub(super) alive: usize,
}

/// Stops every sandbox recorded here (what a crash or a stop left), removes its cgroups and
/// deletes the rows. Blocking work runs off the async threads.
pub(super) async fn stop_all(store: Arc<Store>) -> Stopped {
    let stopped = blocking(move || {
        let mut n = Stopped::default();
        for (key, raw) in store.states_with_prefix(PREFIX)? {
            n.records += 1;
            match serde_json::from_slice::<SandboxRecord>(&raw) {
                Ok(rec) => match kill_leftover(&rec) {
                    Ok(true) => n.alive += 1,
                    Ok(false) => {}
                    Err(e) => {
                        // Kept: the next start tries again.
                        tracing::warn!("cannot stop the sandbox of {key}: {e}");
                        continue;
                    }
                },
                Err(e) => tracing::warn!("unreadable {key} ({e}); deleting it"),
            }
            store.remove_state(&key)?;
        }
        Ok(n)
    })
    .await;
    match stopped {
        Ok(n) => n,
        Err(e) => {
            tracing::error!("cannot stop the sandboxes started ahead of hires: {e}");
            Stopped::default()
        }
    }
}
