//! The store's error type, [`StoreError`], and the helper that attaches context to redb errors.
//!
//! Every failure names what the store was doing when it happened (the operation and, where it
//! helps, the key), so a log line is enough to tell an I/O problem from a damaged file.

use std::path::PathBuf;

use souk_protocol::Hash;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database at `path` could not be opened, created, initialised or migrated: the file is
    /// not a redb database, is damaged, is locked by another process, or an I/O error occurred.
    #[error("cannot open store {}: {cause}", path.display())]
    Open {
        /// The database file.
        path: PathBuf,
        /// What failed (part of the message; not repeated as a source).
        cause: Box<StoreError>,
    },
    /// Another process (or another handle in this one) has the database open: redb allows one
    /// writer per file. Usually a node is already running on this data directory.
    #[error("store {} is in use by another process", path.display())]
    Locked {
        /// The database file.
        path: PathBuf,
    },
    /// A failure injected by a test ([`crate::Store::inject_write_failures`], feature
    /// `fault-injection`); never produced otherwise.
    #[error("{context}: injected failure")]
    Injected {
        /// The operation that was made to fail.
        context: String,
    },
    /// The database was written by a newer version of the node, with a schema this code does not
    /// know. No table was changed.
    #[error(
        "store schema version {found} is newer than the newest this build supports ({supported}); \
         upgrade the node or use another data directory"
    )]
    SchemaTooNew {
        /// The version recorded in the file.
        found: u32,
        /// The newest version this code supports.
        supported: u32,
    },
    /// A redb operation failed (I/O, a damaged page, a transaction or commit failure).
    #[error("{context}: {cause}")]
    Db {
        /// What the store was doing.
        context: String,
        /// The redb error (part of the message; not repeated as a source).
        cause: redb::Error,
    },
    /// [`Store::append_receipt`](crate::Store::append_receipt): the hire already has a
    /// different entry at this seq (the provider signed two entries for one position, or the
    /// caller mixed up hires). Nothing was written.
    #[error("receipt conflict: hire {hire} already has a different entry at seq {seq}")]
    ReceiptConflict {
        /// The hire id.
        hire: Hash,
        /// The seq of the stored entry.
        seq: u64,
    },
    /// [`Store::append_receipt`](crate::Store::append_receipt): the entry is not the next one of
    /// its chain (entries are stored exactly at seq `0..n`, in order). Nothing was written.
    #[error(
        "receipt gap: hire {hire} has {expected} entries, so the next seq is {expected}, got {got}"
    )]
    ReceiptGap {
        /// The hire id.
        hire: Hash,
        /// The next seq of the chain: the number of entries stored for the hire.
        expected: u64,
        /// The seq that was offered.
        got: u64,
    },
    /// A stored row does not have the layout documented in `spec/store.md`.
    #[error("corrupt store: {context}")]
    Corrupt {
        /// Which row and what is wrong with it.
        context: String,
    },
}

impl StoreError {
    /// A [`StoreError::Corrupt`] with the given description.
    pub(crate) fn corrupt(context: impl Into<String>) -> Self {
        StoreError::Corrupt {
            context: context.into(),
        }
    }
}

/// Attaches a description of the operation to a redb error.
pub(crate) trait DbContext<T> {
    /// Maps the error into [`StoreError::Db`] with `context`.
    fn ctx(self, context: &str) -> Result<T, StoreError>;
    /// Like [`DbContext::ctx`], building the context only on failure.
    fn with_ctx(self, context: impl FnOnce() -> String) -> Result<T, StoreError>;
}

impl<T, E: Into<redb::Error>> DbContext<T> for Result<T, E> {
    fn ctx(self, context: &str) -> Result<T, StoreError> {
        self.map_err(|e| StoreError::Db {
            context: context.to_owned(),
            cause: e.into(),
        })
    }
    fn with_ctx(self, context: impl FnOnce() -> String) -> Result<T, StoreError> {
        self.map_err(|e| StoreError::Db {
            context: context(),
            cause: e.into(),
        })
    }
}
