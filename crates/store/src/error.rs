//! The store's error type, [`StoreError`], and the helper that attaches context to redb errors.
//!
//! Every failure names what the store was doing when it happened (the operation and, where it
//! helps, the key), so a log line is enough to tell an I/O problem from a damaged file.

use std::path::PathBuf;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database at `path` could not be opened, created, initialised or migrated: the file is
    /// not a redb database, is damaged, is locked by another process, or an I/O error occurred.
    #[error("cannot open store {}: {source}", path.display())]
    Open {
        /// The database file.
        path: PathBuf,
        /// What failed.
        #[source]
        source: Box<StoreError>,
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
    #[error("{context}: {source}")]
    Db {
        /// What the store was doing.
        context: String,
        /// The redb error.
        #[source]
        source: redb::Error,
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
            source: e.into(),
        })
    }
    fn with_ctx(self, context: impl FnOnce() -> String) -> Result<T, StoreError> {
        self.map_err(|e| StoreError::Db {
            context: context(),
            source: e.into(),
        })
    }
}
