//! The data directory: what a node keeps on disk and with which permissions.
//!
//! ```text
//! DIR/                 0700
//!   identity.key       0600  32-byte ed25519 seed (the node id and libp2p key)
//!   sealing.key        0600  32-byte X25519 secret (credentials are sealed to its public key)
//!   api.token          0600  bearer token of the local API (64 hex digits)
//!   a2a-token          0600  bearer token of `souk a2a serve` (made on its first start)
//!   mcp-token          0600  bearer token of `souk mcp --http` (made on its first start)
//!   config.toml        0644  settings, see `config.rs`
//!   souk.redb                the store (`crates/store`, `spec/store.md`)
//!   api.addr                 ip:port of the running node's API (removed at clean shutdown)
//!   node.pid                 process id of the running node (removed at clean shutdown)
//! ```
//! Secrets are read into zeroizing buffers and never logged.

use std::io::Write;
use std::path::{Path, PathBuf};

use souk_protocol::identity::Keypair;
use zeroize::Zeroizing;

use crate::config::{Config, ConfigError, Mode};

/// File names inside the data directory.
pub const IDENTITY_FILE: &str = "identity.key";
/// X25519 sealing secret.
pub const SEALING_FILE: &str = "sealing.key";
/// API bearer token.
pub const TOKEN_FILE: &str = "api.token";
/// Bearer token of the A2A gateway (`souk a2a serve`); not the API token, which it never
/// hands to A2A clients.
pub const A2A_TOKEN_FILE: &str = "a2a-token";
/// Bearer token of `souk mcp --http`.
pub const MCP_TOKEN_FILE: &str = "mcp-token";
/// Config.
pub const CONFIG_FILE: &str = "config.toml";
/// Database.
pub const DB_FILE: &str = "souk.redb";
/// Address of the running API.
pub const API_ADDR_FILE: &str = "api.addr";
/// The running node's process id (removed at clean shutdown).
pub const PID_FILE: &str = "node.pid";

/// A problem with the data directory.
#[derive(Debug, thiserror::Error)]
pub enum DataDirError {
    /// `souk init` on a directory that already has an identity.
    #[error("{0} already holds a node identity; refusing to overwrite it (use another --data-dir)")]
    AlreadyInitialized(String),
    /// The directory has no identity yet.
    #[error("{0} is not initialized: run `souk init` first (or pass --data-dir)")]
    NotInitialized(String),
    /// A key file is readable by group or others.
    #[error("{path} is readable by other users (mode {mode:o}); run `chmod 600 {path}`")]
    Permissions {
        /// The file.
        path: String,
        /// Its mode bits.
        mode: u32,
    },
    /// A key file is malformed.
    #[error("{path} is corrupt: {reason}")]
    Corrupt {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// The config is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// An I/O failure.
    #[error("{path}: {cause}")]
    Io {
        /// The path.
        path: String,
        /// The error.
        cause: std::io::Error,
    },
    /// No randomness available.
    #[error("the operating system's random number generator failed: {0}")]
    Random(String),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> DataDirError + '_ {
    move |cause| DataDirError::Io {
        path: path.display().to_string(),
        cause,
    }
}

/// 32 random bytes from the OS.
pub fn random_32() -> Result<Zeroizing<[u8; 32]>, DataDirError> {
    let mut b = Zeroizing::new([0u8; 32]);
    getrandom::fill(b.as_mut()).map_err(|e| DataDirError::Random(e.to_string()))?;
    Ok(b)
}

/// A node's data directory.
#[derive(Debug, Clone)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    /// `--data-dir`, else `$SOUK_HOME` (handled by clap), else `~/.souk`.
    pub fn resolve(explicit: Option<PathBuf>) -> Self {
        let root = explicit.unwrap_or_else(|| {
            std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("."))
                .join(".souk")
        });
        Self { root }
    }

    /// A data directory at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A file inside it.
    pub fn path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// Whether `souk init` has run here.
    pub fn is_initialized(&self) -> bool {
        self.path(IDENTITY_FILE).exists()
    }

    /// Creates the directory, keys, token and a documented config. Refuses to overwrite an
    /// existing identity. Returns the new node's key pair.
    pub fn init(&self, mode: Mode) -> Result<Keypair, DataDirError> {
        if self.is_initialized() {
            return Err(DataDirError::AlreadyInitialized(
                self.root.display().to_string(),
            ));
        }
        std::fs::create_dir_all(&self.root).map_err(io_err(&self.root))?;
        set_mode(&self.root, 0o700)?;
        // No identity means no completed init: leftovers of an interrupted one are replaced.
        for stale in [SEALING_FILE, TOKEN_FILE] {
            let p = self.path(stale);
            if p.exists() {
                std::fs::remove_file(&p).map_err(io_err(&p))?;
            }
        }
        let seed = random_32()?;
        let sealing = random_32()?;
        let token = random_32()?;
        write_secret(&self.path(SEALING_FILE), sealing.as_ref())?;
        write_secret(
            &self.path(TOKEN_FILE),
            hex::encode(token.as_ref()).as_bytes(),
        )?;
        let config = self.path(CONFIG_FILE);
        if !config.exists() {
            std::fs::write(&config, Config::documented_default(mode)).map_err(io_err(&config))?;
        }
        // The identity goes last: its presence marks a complete init.
        write_secret(&self.path(IDENTITY_FILE), seed.as_ref())?;
        Ok(Keypair::from_seed(&seed))
    }

    fn read_secret_32(&self, name: &str) -> Result<Zeroizing<[u8; 32]>, DataDirError> {
        let path = self.path(name);
        if !path.exists() {
            return Err(DataDirError::NotInitialized(
                self.root.display().to_string(),
            ));
        }
        check_private(&path)?;
        let raw = Zeroizing::new(std::fs::read(&path).map_err(io_err(&path))?);
        let mut out = Zeroizing::new([0u8; 32]);
        if raw.len() != 32 {
            return Err(DataDirError::Corrupt {
                path: path.display().to_string(),
                reason: format!("expected 32 bytes, found {}", raw.len()),
            });
        }
        out.copy_from_slice(&raw);
        Ok(out)
    }

    /// The node's signing key.
    pub fn identity(&self) -> Result<Keypair, DataDirError> {
        let seed = self.read_secret_32(IDENTITY_FILE)?;
        Ok(Keypair::from_seed(&seed))
    }

    /// The X25519 public key derived from `sealing.key` (published in manifests).
    pub fn sealing_public(&self) -> Result<[u8; 32], DataDirError> {
        let secret = self.read_secret_32(SEALING_FILE)?;
        Ok(souk_protocol::credential::sealing_public_key(&secret))
    }

    /// The X25519 sealing secret (`sealing.key`): opens credentials sealed to this node.
    pub fn sealing_secret(&self) -> Result<Zeroizing<[u8; 32]>, DataDirError> {
        self.read_secret_32(SEALING_FILE)
    }

    /// The API token.
    pub fn api_token(&self) -> Result<Zeroizing<String>, DataDirError> {
        self.read_token(TOKEN_FILE)
    }

    /// The A2A gateway's bearer token, made (0600) the first time.
    pub fn a2a_token(&self) -> Result<Zeroizing<String>, DataDirError> {
        self.made_token(A2A_TOKEN_FILE)
    }

    /// The bearer token of `souk mcp --http`, made (0600) the first time.
    pub fn mcp_token(&self) -> Result<Zeroizing<String>, DataDirError> {
        self.made_token(MCP_TOKEN_FILE)
    }

    /// The token in file `name`, made the first time.
    fn made_token(&self, name: &str) -> Result<Zeroizing<String>, DataDirError> {
        let path = self.path(name);
        if !path.exists() {
            if !self.is_initialized() {
                return Err(DataDirError::NotInitialized(
                    self.root.display().to_string(),
                ));
            }
            let token = random_32()?;
            write_secret(&path, hex::encode(token.as_ref()).as_bytes())?;
        }
        self.read_token(name)
    }

    fn read_token(&self, name: &str) -> Result<Zeroizing<String>, DataDirError> {
        let path = self.path(name);
        if !path.exists() {
            return Err(DataDirError::NotInitialized(
                self.root.display().to_string(),
            ));
        }
        check_private(&path)?;
        let text = Zeroizing::new(std::fs::read_to_string(&path).map_err(io_err(&path))?);
        let token = text.trim();
        if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(DataDirError::Corrupt {
                path: path.display().to_string(),
                reason: "expected 64 hex digits".into(),
            });
        }
        Ok(Zeroizing::new(token.to_owned()))
    }

    /// The config (full-node defaults when the file is missing).
    pub fn config(&self) -> Result<Config, DataDirError> {
        let path = self.path(CONFIG_FILE);
        if !path.exists() {
            return Ok(Config::default());
        }
        Ok(Config::load(&path)?)
    }

    /// Records the running API's address.
    pub fn write_api_addr(&self, addr: std::net::SocketAddr) -> Result<(), DataDirError> {
        let path = self.path(API_ADDR_FILE);
        std::fs::write(&path, format!("{addr}\n")).map_err(io_err(&path))
    }

    /// The running API's address, if a node runs here.
    pub fn api_addr(&self) -> Option<std::net::SocketAddr> {
        std::fs::read_to_string(self.path(API_ADDR_FILE))
            .ok()
            .and_then(|s| s.trim().parse().ok())
    }

    /// Removes `api.addr` and `node.pid` (clean shutdown).
    pub fn clear_api_addr(&self) {
        let _ = std::fs::remove_file(self.path(API_ADDR_FILE));
        let _ = std::fs::remove_file(self.path(PID_FILE));
    }

    /// Records the running node's process id (for tools that stop or watch it).
    pub fn write_pid(&self) -> Result<(), DataDirError> {
        let path = self.path(PID_FILE);
        std::fs::write(&path, format!("{}\n", std::process::id())).map_err(io_err(&path))
    }

    /// The process id the last node started here recorded (it may have died since: a node
    /// killed without a clean shutdown leaves the file).
    pub fn pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.path(PID_FILE))
            .ok()
            .and_then(|s| s.trim().parse().ok())
    }
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> Result<(), DataDirError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(io_err(path))
}

#[cfg(not(unix))]
fn set_mode(_: &Path, _: u32) -> Result<(), DataDirError> {
    Ok(())
}

#[cfg(unix)]
fn check_private(path: &Path) -> Result<(), DataDirError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map_err(io_err(path))?
        .permissions()
        .mode()
        & 0o777;
    if mode & 0o077 != 0 {
        return Err(DataDirError::Permissions {
            path: path.display().to_string(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_: &Path) -> Result<(), DataDirError> {
    Ok(())
}

/// Writes a secret file created with mode 0600 (never briefly world-readable).
fn write_secret(path: &Path, bytes: &[u8]) -> Result<(), DataDirError> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(io_err(path))?;
    f.write_all(bytes).map_err(io_err(path))?;
    f.sync_all().map_err(io_err(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_creates_private_files_and_refuses_to_overwrite() {
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let dir = DataDir::new(tmp.path().join("node"));
        let kp = dir.init(Mode::Full).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(dir.identity().map(|k| k.id()).ok(), Some(kp.id()));
        assert!(dir.api_token().is_ok());
        assert!(dir.sealing_public().is_ok());
        assert!(matches!(
            dir.init(Mode::Full),
            Err(DataDirError::AlreadyInitialized(_))
        ));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            for f in [IDENTITY_FILE, SEALING_FILE, TOKEN_FILE] {
                let mode = std::fs::metadata(dir.path(f))
                    .map(|m| m.permissions().mode() & 0o777)
                    .ok();
                assert_eq!(mode, Some(0o600), "{f}");
            }
            std::fs::set_permissions(
                dir.path(IDENTITY_FILE),
                std::fs::Permissions::from_mode(0o644),
            )
            .unwrap_or_else(|e| panic!("{e}"));
            assert!(matches!(
                dir.identity(),
                Err(DataDirError::Permissions { .. })
            ));
        }
    }

    #[test]
    fn missing_and_corrupt_keys_are_clear_errors() {
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let dir = DataDir::new(tmp.path());
        assert!(matches!(
            dir.identity(),
            Err(DataDirError::NotInitialized(_))
        ));
        write_secret(&dir.path(IDENTITY_FILE), b"short").unwrap_or_else(|e| panic!("{e}"));
        let err = dir
            .identity()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("corrupt") && err.contains("32 bytes"), "{err}");
    }
}
