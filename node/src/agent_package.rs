//! The agent package: which files a manifest's runtime digest commits to (the package
//! directory and its `run.include` directories, docs/agent-file.md "Runtime digest"), and
//! which directories a hired agent's sandbox may show it at all ([`check_run_paths`]: never
//! the node's data or work directories).

use std::path::{Path, PathBuf};

use souk_protocol::Hash;

use crate::agent_file::{AgentFileError, RunSpec};

/// Most files hashed into a runtime digest.
pub const MAX_PACKAGE_FILES: usize = 10_000;
/// Most bytes hashed into a runtime digest.
pub const MAX_PACKAGE_BYTES: u64 = 256 * 1024 * 1024;

/// Checks the directories an agent's sandbox would show it (the package and each
/// `run.include`): absolute, not `/`, free of `:` (the `SOUK_INCLUDE` separator), and neither
/// equal to, inside, nor holding any `protected` directory (the node's data and work
/// directories: keys, token, store, other hires and their proxy sockets). Paths are compared
/// canonically; a protected directory that does not exist yet is compared as given.
///
/// # Errors
///
/// What is wrong, for people.
pub fn check_run_paths(run: &RunSpec, protected: &[PathBuf]) -> Result<(), String> {
    let protected: Vec<PathBuf> = protected
        .iter()
        .map(|p| p.canonicalize().unwrap_or_else(|_| p.clone()))
        .collect();
    let shown = std::iter::once(("run.package", run.package_dir()))
        .chain(run.include.iter().map(|d| ("run.include", d.as_path())));
    for (what, dir) in shown {
        if !dir.is_absolute() {
            return Err(format!("{what} {} is not an absolute path", dir.display()));
        }
        if dir.to_string_lossy().contains(':') {
            return Err(format!("{what} {} contains ':'", dir.display()));
        }
        let real = dir
            .canonicalize()
            .map_err(|e| format!("{what} {}: {e}", dir.display()))?;
        if real.parent().is_none() {
            return Err(format!(
                "{what} is the root directory: the agent would see everything"
            ));
        }
        for p in &protected {
            if real.starts_with(p) || p.starts_with(&real) {
                return Err(format!(
                    "{what} {} overlaps {}, which holds this node's keys or other hires: agents must not see it",
                    dir.display(),
                    p.display()
                ));
            }
        }
    }
    Ok(())
}

/// BLAKE3 over a package directory: for every regular file, in byte order of its
/// '/'-separated relative path, `u64le(len(path)) || path || u64le(len(data)) || data`.
/// Hidden entries (names starting with '.') and `__pycache__` are skipped.
pub fn package_digest(root: &Path) -> Result<Hash, AgentFileError> {
    runtime_digest(root, &[])
}

/// The runtime digest of a package and its `run.include` directories (docs/agent-file.md,
/// "Runtime digest"): the package's files under their relative paths, then the files of
/// include `k` (0-based, in the order given) under `/include/k/` followed by their path
/// relative to that directory. Package paths never start with `/`, so no include file can
/// pose as a package file; without includes this is [`package_digest`]. The file and size
/// limits apply to the whole.
pub fn runtime_digest(root: &Path, include: &[PathBuf]) -> Result<Hash, AgentFileError> {
    // (name hashed, path on disk)
    let mut files: Vec<(String, PathBuf)> = Vec::new();
    let mut rels = Vec::new();
    collect(root, root, &mut rels)?;
    files.extend(rels.drain(..).map(|rel| (rel.clone(), root.join(rel))));
    for (k, dir) in include.iter().enumerate() {
        collect(dir, dir, &mut rels)?;
        files.extend(
            rels.drain(..)
                .map(|rel| (format!("/include/{k}/{rel}"), dir.join(rel))),
        );
        if files.len() > MAX_PACKAGE_FILES {
            break;
        }
    }
    files.sort();
    if files.len() > MAX_PACKAGE_FILES {
        return Err(AgentFileError::Invalid {
            path: root.display().to_string(),
            message: format!("package has more than {MAX_PACKAGE_FILES} files"),
        });
    }
    let mut h = blake3::Hasher::new();
    let mut total = 0u64;
    for (rel, path) in files {
        // Sized before it is read: one huge file must not be loaded to learn it is too big.
        let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        if total.saturating_add(len) > MAX_PACKAGE_BYTES {
            return Err(AgentFileError::Invalid {
                path: root.display().to_string(),
                message: format!("package is larger than {MAX_PACKAGE_BYTES} bytes"),
            });
        }
        let data = std::fs::read(&path).map_err(|cause| AgentFileError::Read {
            path: path.display().to_string(),
            cause,
        })?;
        total += data.len() as u64;
        if total > MAX_PACKAGE_BYTES {
            return Err(AgentFileError::Invalid {
                path: root.display().to_string(),
                message: format!("package is larger than {MAX_PACKAGE_BYTES} bytes"),
            });
        }
        h.update(&(rel.len() as u64).to_le_bytes());
        h.update(rel.as_bytes());
        h.update(&(data.len() as u64).to_le_bytes());
        h.update(&data);
    }
    Ok(Hash(*h.finalize().as_bytes()))
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<String>) -> Result<(), AgentFileError> {
    let read_err = |cause| AgentFileError::Read {
        path: dir.display().to_string(),
        cause,
    };
    for entry in std::fs::read_dir(dir).map_err(read_err)? {
        // Over the limit: the caller reports it; stop walking at once.
        if out.len() > MAX_PACKAGE_FILES {
            return Ok(());
        }
        let entry = entry.map_err(|cause| AgentFileError::Read {
            path: dir.display().to_string(),
            cause,
        })?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || name == "__pycache__" {
            continue;
        }
        let path = entry.path();
        let kind = entry.file_type().map_err(|cause| AgentFileError::Read {
            path: path.display().to_string(),
            cause,
        })?;
        if kind.is_dir() {
            collect(root, &path, out)?;
        } else if kind.is_file() {
            let rel = path
                .strip_prefix(root)
                .map(|p| {
                    p.components()
                        .map(|c| c.as_os_str().to_string_lossy())
                        .collect::<Vec<_>>()
                        .join("/")
                })
                .unwrap_or(name);
            out.push(rel);
            if out.len() > MAX_PACKAGE_FILES {
                return Ok(());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn includes_are_part_of_the_runtime_digest() {
        let w = |dir: &Path, rel: &str, text: &str| {
            let path = dir.join(rel);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("{e}"));
            }
            std::fs::write(path, text).unwrap_or_else(|e| panic!("{e}"));
        };
        let pkg = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let lib = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        w(pkg.path(), "agent.py", "import lib");
        w(lib.path(), "lib/__init__.py", "x = 1");
        let d = |inc: &[PathBuf]| runtime_digest(pkg.path(), inc).unwrap_or_else(|e| panic!("{e}"));
        let plain = package_digest(pkg.path()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(d(&[]), plain, "no include: the package digest");
        let with = d(&[lib.path().to_path_buf()]);
        assert_ne!(with, plain);
        // A change in the included code changes the digest.
        w(lib.path(), "lib/__init__.py", "x = 2");
        assert_ne!(d(&[lib.path().to_path_buf()]), with);
        // An included file cannot pose as a package file: a package holding the same bytes
        // under `include/0/...` hashes differently from the package plus the include.
        let posing = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        w(posing.path(), "agent.py", "import lib");
        w(posing.path(), "include/0/lib/__init__.py", "x = 2");
        let posed = runtime_digest(posing.path(), &[]).unwrap_or_else(|e| panic!("{e}"));
        assert_ne!(posed, d(&[lib.path().to_path_buf()]));
    }

    #[test]
    fn an_agent_never_sees_the_nodes_directories() {
        let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mk = |rel: &str| {
            let p = root.path().join(rel);
            std::fs::create_dir_all(&p).unwrap_or_else(|e| panic!("{e}"));
            p.canonicalize().unwrap_or_else(|e| panic!("{e}"))
        };
        let data = mk("home/.souk");
        let work = mk("home/.souk-work");
        let pkg = mk("home/agents/a");
        let lib = mk("home/lib");
        let protected = [data.clone(), work.clone()];
        let run = |package: &Path, include: &[&Path]| RunSpec {
            command: vec!["true".into()],
            workdir: package.to_path_buf(),
            package: None,
            include: include.iter().map(|p| p.to_path_buf()).collect(),
            warm: 0,
            prepared: 0,
        };
        assert_eq!(check_run_paths(&run(&pkg, &[&lib]), &protected), Ok(()));
        // The home directory holds the data directory: refused as package and as include.
        let home = root.path().join("home");
        for bad in [run(&home, &[]), run(&pkg, &[&home])] {
            let e = check_run_paths(&bad, &protected).err().unwrap_or_default();
            assert!(e.contains("overlaps"), "{e}");
        }
        // Inside the data or the work directory (other hires, proxy sockets): refused.
        let inside = mk("home/.souk-work/other-hire");
        let e = check_run_paths(&run(&pkg, &[&inside]), &protected)
            .err()
            .unwrap_or_default();
        assert!(e.contains("overlaps"), "{e}");
        let e = check_run_paths(&run(&data, &[]), &protected)
            .err()
            .unwrap_or_default();
        assert!(e.contains("overlaps"), "{e}");
        // The root, a relative path, a ':' (the SOUK_INCLUDE separator).
        let e = check_run_paths(&run(&pkg, &[Path::new("/")]), &protected)
            .err()
            .unwrap_or_default();
        assert!(e.contains("root"), "{e}");
        let e = check_run_paths(&run(&pkg, &[Path::new("lib")]), &protected)
            .err()
            .unwrap_or_default();
        assert!(e.contains("absolute"), "{e}");
        let colon = mk("home/a:b");
        let e = check_run_paths(&run(&pkg, &[&colon]), &protected)
            .err()
            .unwrap_or_default();
        assert!(e.contains("':'"), "{e}");
        // A symlink into the data directory is judged by where it leads.
        let link = root.path().join("home/agents/link");
        std::os::unix::fs::symlink(&data, &link).unwrap_or_else(|e| panic!("{e}"));
        let e = check_run_paths(&run(&pkg, &[&link]), &protected)
            .err()
            .unwrap_or_default();
        assert!(e.contains("overlaps"), "{e}");
    }
}
