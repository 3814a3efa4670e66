//! Writes `spec/vectors/` from the deterministic generator in `souk_protocol::vectors`.
//!
//! Usage: `cargo run -p souk-protocol --features vectors --example gen-vectors [DIR]`
//! (default: the workspace's `spec/vectors`). Files the generator no longer produces are
//! removed, so the directory always equals the generator's output.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn main() -> std::io::Result<()> {
    let dir = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../spec/vectors"));
    let files = souk_protocol::vectors::generate();
    let mut wanted = BTreeSet::new();
    for f in &files {
        let path = dir.join(&f.path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, &f.contents)?;
        wanted.insert(path);
    }
    for sub in [dir.clone(), dir.join("bundles")] {
        for entry in std::fs::read_dir(&sub)? {
            let path = entry?.path();
            if path.is_file()
                && !wanted.contains(&path)
                && path.file_name().is_some_and(|n| n != "README.md")
            {
                std::fs::remove_file(&path)?;
                println!("removed stale {}", path.display());
            }
        }
    }
    println!("wrote {} files to {}", files.len(), dir.display());
    Ok(())
}
