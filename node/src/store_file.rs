//! Opening the store of an initialized data directory (`souk node run`): a node whose identity
//! exists but whose `souk.redb` is missing or empty refuses to start ([`OpenStoreError`])
//! instead of silently starting over with a fresh store (its agents, their seq numbers and its
//! hires would be forgotten), unless told to with `--reset-store`. Never deletes a store that
//! holds data unless told to.

use std::path::{Path, PathBuf};

use souk_store::{Store, StoreConfig, StoreError};

use crate::data_dir::{DB_FILE, DataDir};

/// Why the store of an initialized data directory was not opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenStoreError {
    /// The identity exists but the store file does not.
    #[error(
        "the store {} is missing, but this data directory holds a node identity: its agents, their sequence numbers and its hires would be lost. Restore the file, or run `souk node run --reset-store` to start with an empty store if the loss is intended",
        path.display()
    )]
    Missing {
        /// The store file.
        path: PathBuf,
    },
    /// The store file is empty (0 bytes).
    #[error(
        "the store {} is empty (0 bytes), but this data directory holds a node identity: its agents, their sequence numbers and its hires would be lost. Restore the file, or run `souk node run --reset-store` to start with an empty store if the loss is intended",
        path.display()
    )]
    Empty {
        /// The store file.
        path: PathBuf,
    },
    /// Another node has the store open.
    #[error(
        "a node is already running on {}{}; stop it first or use another --data-dir",
        root.display(),
        api.map(|a| format!(" (its API is at {a})")).unwrap_or_default()
    )]
    Locked {
        /// The data directory.
        root: PathBuf,
        /// The running node's API address, if known.
        api: Option<std::net::SocketAddr>,
    },
    /// The file could not be inspected or removed.
    #[error("{}: {cause}", path.display())]
    Io {
        /// The store file.
        path: PathBuf,
        /// Why.
        cause: std::io::Error,
    },
    /// The store failed to open (damaged, newer schema, unreadable).
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Whether the store file is there and holds anything.
fn check_present(path: &Path) -> Result<(), OpenStoreError> {
    match std::fs::metadata(path) {
        Ok(m) if m.len() == 0 => Err(OpenStoreError::Empty {
            path: path.to_owned(),
        }),
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(OpenStoreError::Missing {
            path: path.to_owned(),
        }),
        Err(cause) => Err(OpenStoreError::Io {
            path: path.to_owned(),
            cause,
        }),
    }
}

/// Opens the store of `dir` (which must be initialized). With `reset`, a missing or empty
/// store is created afresh and a present one is deleted first (with a warning naming it);
/// without, a missing or empty store is an error.
pub fn open(dir: &DataDir, config: &StoreConfig, reset: bool) -> Result<Store, OpenStoreError> {
    let path = dir.path(DB_FILE);
    if reset {
        match std::fs::remove_file(&path) {
            Ok(()) => tracing::warn!(
                "--reset-store: deleted {}; starting with an empty store",
                path.display()
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(cause) => return Err(OpenStoreError::Io { path, cause }),
        }
    } else {
        check_present(&path)?;
    }
    Store::open(&path, config).map_err(|e| match e {
        StoreError::Locked { .. } => OpenStoreError::Locked {
            root: dir.root().to_owned(),
            api: dir.api_addr(),
        },
        other => OpenStoreError::Store(other),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Mode;

    fn config() -> StoreConfig {
        StoreConfig {
            cache_size: 1 << 20,
        }
    }

    #[test]
    fn a_lost_store_is_refused_unless_reset() {
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let dir = DataDir::new(tmp.path().join("node"));
        dir.init(Mode::Full).unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path(DB_FILE);
        // Deleted.
        match open(&dir, &config(), false) {
            Err(e @ OpenStoreError::Missing { .. }) => {
                let text = e.to_string();
                assert!(text.contains(&path.display().to_string()), "{text}");
                assert!(text.contains("--reset-store"), "{text}");
            }
            other => panic!("expected Missing, got {other:?}"),
        }
        assert!(!path.exists(), "nothing was created");
        // Emptied.
        std::fs::write(&path, b"").unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(
            open(&dir, &config(), false),
            Err(OpenStoreError::Empty { .. })
        ));
        // Reset on purpose, then kept across opens.
        let store = open(&dir, &config(), true).unwrap_or_else(|e| panic!("{e}"));
        store.put_state("k", b"v").unwrap_or_else(|e| panic!("{e}"));
        drop(store);
        let store = open(&dir, &config(), false).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            store
                .get_state("k")
                .unwrap_or_else(|e| panic!("{e}"))
                .as_deref(),
            Some(&b"v"[..])
        );
        // Held by another handle.
        assert!(matches!(
            open(&dir, &config(), false),
            Err(OpenStoreError::Locked { .. })
        ));
    }
}
