//! # souk-store
//!
//! The node's durable state, in a single [redb](https://docs.rs/redb) file: manifests learned
//! from the network, the agents this node provides, small node state, and hires (long-running
//! jobs that must survive restarts and crashes) with their receipt chains and blobs.
//!
//! ```no_run
//! use std::path::Path;
//! use souk_store::{Store, StoreConfig};
//!
//! # fn main() -> Result<(), souk_store::StoreError> {
//! let store = Store::open(Path::new("/var/lib/souk/store.redb"), &StoreConfig::default())?;
//! store.put_state("last_publish", b"1793491200000")?;
//! assert_eq!(store.get_state("last_publish")?.as_deref(), Some(&b"1793491200000"[..]));
//! # Ok(()) }
//! ```
//!
//! Every write is one redb write transaction committed with [`redb::Durability::Immediate`]:
//! once a method returns `Ok`, the change survives a crash. The exceptions are the `_deferred`
//! methods ([`Store::append_receipt_deferred`], [`Store::write_manifests_deferred`]; group
//! commit): durable at the next immediate commit,
//! e.g. [`Store::flush`]. Reads use read transactions and
//! see a consistent snapshot. Methods are synchronous and may block on disk I/O: call them from
//! `spawn_blocking` or a storage thread. [`Store`] is `Send + Sync`; share it with an `Arc`.
//!
//! Module map: [`config`] (tunables), [`error`] (the error type), `tables` (table definitions
//! and key layouts), `migrations` (schema version and upgrades), `manifests` (network
//! manifests and their indexes), `agents` (local agents and node state), `hires` (hire records,
//! receipt chains and their payloads, per-hire blobs), `outcomes` (outcome records, equivocation
//! proofs and the outbox of this node's own publications). The on-disk layout is specified in
//! `spec/store.md`.

mod agents;
pub mod config;
pub mod error;
mod hires;
mod manifests;
mod migrations;
mod outcomes;
mod tables;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use redb::{Builder, Database, Durability, ReadTransaction, ReadableDatabase, WriteTransaction};

use crate::error::DbContext;

pub use config::StoreConfig;
pub use error::StoreError;
pub use hires::{Appended, ReceiptItem};
pub use manifests::{ManifestWrite, PutOutcome};
pub use migrations::SCHEMA_VERSION;
pub use outcomes::{OutboxKind, ReputationWrite};

/// The node's durable state: an open redb database at the current schema version.
///
/// Cheap to share: wrap it in an `Arc`; every method takes `&self`. Dropping the last handle
/// closes the file.
pub struct Store {
    db: Database,
    /// Write transactions still to fail (tests only).
    #[cfg(feature = "fault-injection")]
    failures: std::sync::atomic::AtomicU32,
    path: PathBuf,
    /// Deferred (`Durability::None`) write transactions begun so far.
    deferred: AtomicU64,
    /// How many of them are known durable: every one begun before the last successful
    /// immediate commit.
    synced: AtomicU64,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Opens the store at `path`, creating the file if it is missing, creating every table and
    /// bringing the schema to [`SCHEMA_VERSION`] (running migrations on an older file).
    ///
    /// The file's integrity is checked on every open (redb verifies the checksum of every live
    /// page, so the open reads the whole file: tens of milliseconds for tens of MiB): redb
    /// trusts the file otherwise, and may panic on one damaged since it was written.
    ///
    /// Fails with [`StoreError::SchemaTooNew`] on a file written by a newer schema (no table is
    /// changed), with [`StoreError::Locked`] when another handle has the file open, and with
    /// [`StoreError::Open`], naming the path, on a file that is not a redb database, is damaged,
    /// or cannot be read or written.
    pub fn open(path: &Path, config: &StoreConfig) -> Result<Store, StoreError> {
        let open_error = |cause: StoreError| StoreError::Open {
            path: path.to_owned(),
            cause: Box::new(cause),
        };
        let db = match Builder::new()
            .set_cache_size(config.cache_size)
            .set_check_integrity_on_open(true)
            .create(path)
        {
            Ok(db) => db,
            Err(redb::DatabaseError::DatabaseAlreadyOpen) => {
                return Err(StoreError::Locked {
                    path: path.to_owned(),
                });
            }
            Err(e) => {
                return Err(open_error(StoreError::Db {
                    context: "opening the database file".into(),
                    cause: e.into(),
                }));
            }
        };
        let version = migrations::run(&db).map_err(|e| match e {
            StoreError::SchemaTooNew { .. } => e,
            other => open_error(other),
        })?;
        tracing::debug!(path = %path.display(), version, cache_size = config.cache_size, "store opened");
        Ok(Store {
            db,
            path: path.to_owned(),
            deferred: AtomicU64::new(0),
            synced: AtomicU64::new(0),
            #[cfg(feature = "fault-injection")]
            failures: std::sync::atomic::AtomicU32::new(0),
        })
    }

    /// The database file this store was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The schema version recorded in the file (equal to [`SCHEMA_VERSION`] once opened).
    pub fn schema_version(&self) -> Result<u32, StoreError> {
        self.read(|txn| {
            let meta = txn.open_table(tables::META).ctx("opening table meta")?;
            let stored = meta
                .get(tables::SCHEMA_VERSION_KEY)
                .ctx("reading meta.schema_version")?;
            match stored {
                Some(guard) => tables::decode_version(guard.value()),
                None => Err(StoreError::corrupt("meta.schema_version is missing")),
            }
        })
    }

    /// Makes every earlier commit durable with an empty [`Durability::Immediate`] commit: the
    /// sync point of group-committed receipts, and the node's last call at shutdown. When
    /// every deferred commit made so far is already durable (an immediate commit followed
    /// it), there is nothing to sync and it returns at once; so it does when an immediate
    /// commit that was in progress while it waited for the writer lock covered them.
    pub fn flush(&self) -> Result<(), StoreError> {
        if !self.has_unsynced() {
            return Ok(());
        }
        // Holding the writer lock, no commit is in progress and none can be counted.
        self.write_or_abort("flush", |_| {
            Ok(if self.has_unsynced() {
                Finish::Commit(())
            } else {
                Finish::Abort(())
            })
        })
    }

    /// Whether a deferred commit may not be durable yet (no immediate commit has followed
    /// it): what [`Store::flush`] would sync.
    pub fn has_unsynced(&self) -> bool {
        self.synced.load(Ordering::SeqCst) < self.deferred.load(Ordering::SeqCst)
    }

    /// Runs `f` in a write transaction and commits it with [`Durability::Immediate`]; rolls
    /// back if `f` fails. `f` must drop every table it opens (it does by returning).
    pub(crate) fn write<T>(
        &self,
        what: &str,
        f: impl FnOnce(&WriteTransaction) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.write_or_abort(what, |txn| f(txn).map(Finish::Commit))
    }

    /// Like [`Store::write`], but `f` may decide to roll back instead (when it changed nothing),
    /// which saves the commit's fdatasync.
    pub(crate) fn write_or_abort<T>(
        &self,
        what: &str,
        f: impl FnOnce(&WriteTransaction) -> Result<Finish<T>, StoreError>,
    ) -> Result<T, StoreError> {
        self.write_with(what, Durability::Immediate, f)
    }

    /// Like [`Store::write_or_abort`] with an explicit durability: `Durability::None` commits
    /// become durable with the next immediate commit (e.g. [`Store::flush`]).
    pub(crate) fn write_with<T>(
        &self,
        what: &str,
        durability: Durability,
        f: impl FnOnce(&WriteTransaction) -> Result<Finish<T>, StoreError>,
    ) -> Result<T, StoreError> {
        #[cfg(feature = "fault-injection")]
        {
            use std::sync::atomic::Ordering;
            let take = |n: u32| n.checked_sub(1);
            if self
                .failures
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, take)
                .is_ok()
            {
                return Err(StoreError::Injected {
                    context: what.to_owned(),
                });
            }
        }
        let mut txn = self
            .db
            .begin_write()
            .with_ctx(|| format!("{what}: beginning a write transaction"))?;
        txn.set_durability(durability)
            .with_ctx(|| format!("{what}: setting durability"))?;
        match f(&txn)? {
            Finish::Commit(out) => {
                // Write transactions run one at a time (redb's writer lock, held from
                // `begin_write` to the end of the commit). A deferred commit is counted before
                // it becomes visible, so whoever sees its rows sees it counted; an immediate
                // commit makes durable every deferred one counted before it.
                let deferred = matches!(durability, Durability::None);
                let covered = if deferred {
                    self.deferred.fetch_add(1, Ordering::SeqCst) + 1
                } else {
                    self.deferred.load(Ordering::SeqCst)
                };
                txn.commit().with_ctx(|| format!("{what}: committing"))?;
                if !deferred {
                    self.synced.fetch_max(covered, Ordering::SeqCst);
                }
                Ok(out)
            }
            Finish::Abort(out) => {
                txn.abort().with_ctx(|| format!("{what}: rolling back"))?;
                Ok(out)
            }
        }
    }

    /// Makes the next `n` write transactions fail with [`StoreError::Injected`] before they
    /// begin (nothing is written), to test how callers handle a failing disk.
    #[cfg(feature = "fault-injection")]
    pub fn inject_write_failures(&self, n: u32) {
        self.failures.store(n, std::sync::atomic::Ordering::SeqCst);
    }

    /// Runs `f` in a read transaction.
    pub(crate) fn read<T>(
        &self,
        f: impl FnOnce(&ReadTransaction) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let txn = self.db.begin_read().ctx("beginning a read transaction")?;
        f(&txn)
    }
}

/// How a write transaction run by [`Store::write_or_abort`] ends.
pub(crate) enum Finish<T> {
    /// Commit the changes, then return the value.
    Commit(T),
    /// Nothing changed: roll back, then return the value.
    Abort(T),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_is_send_sync() {
        fn check<T: Send + Sync + 'static>() {}
        check::<Store>();
        check::<StoreError>();
    }
}
