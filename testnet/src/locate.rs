//! Finding (and, under cargo, building) the `souk` binary, the example agents and the Rust
//! example agent's binary.
//!
//! `souk` is looked up, in order: `--souk PATH` (env `SOUK_TESTNET_SOUK`); next to this
//! program (same target directory); on PATH. When this program runs under cargo (env `CARGO`
//! is set, as with `cargo run`) and no `--souk` is given, `demo` and `up` first run `cargo
//! build` for `souk-node` (same profile as this program) and for the summarizer agent
//! (`--release`, the path its agent.toml names); cargo makes that a no-op when nothing changed.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context;

/// The workspace this program was built from (where `cargo build` runs and where the examples
/// are).
fn workspace_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .map_or_else(|| manifest_dir.to_path_buf(), Path::to_path_buf)
}

fn exe_name(name: &str) -> String {
    format!("{name}{}", std::env::consts::EXE_SUFFIX)
}

/// The directory holding this program's executable.
fn own_dir() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    exe.parent().map(Path::to_path_buf)
}

/// Whether this program is a release build (its directory is a `release` target directory).
fn own_profile_is_release() -> bool {
    own_dir().is_some_and(|d| d.file_name().is_some_and(|n| n == "release"))
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(exe_name(name)))
        .find(|p| p.is_file())
}

/// Whether we run under cargo (`cargo run`, `cargo test`).
fn under_cargo() -> Option<std::ffi::OsString> {
    std::env::var_os("CARGO")
}

/// Removes from `cmd`'s environment the variables cargo sets for the program it runs
/// (`CARGO_PKG_NAME`, `CARGO_MANIFEST_DIR`, ...). Build scripts such as ring's declare
/// `rerun-if-env-changed` on them, so a nested `cargo build` that inherits them would rebuild
/// those crates, and the next ordinary build would rebuild them again.
pub(crate) fn scrub_cargo_env(cmd: &mut Command) {
    for (key, _) in std::env::vars_os() {
        let Some(k) = key.to_str() else { continue };
        let set_by_cargo = k.starts_with("CARGO_PKG_")
            || k.starts_with("CARGO_MANIFEST_")
            || k.starts_with("CARGO_BIN_")
            || matches!(
                k,
                "CARGO_CRATE_NAME"
                    | "CARGO_PRIMARY_PACKAGE"
                    | "CARGO_TARGET_TMPDIR"
                    | "CARGO_RUSTC_CURRENT_DIR"
                    | "OUT_DIR"
            );
        if set_by_cargo {
            cmd.env_remove(&key);
        }
    }
}

/// Runs `cargo build` for the node (this program's profile) and the summarizer (release).
fn cargo_build(cargo: &std::ffi::OsStr) -> anyhow::Result<()> {
    let root = workspace_root();
    if !root.join("Cargo.toml").is_file() {
        anyhow::bail!(
            "cannot build souk: the workspace {} is gone; pass --souk PATH",
            root.display()
        );
    }
    let release = own_profile_is_release();
    let mut builds: Vec<Vec<&str>> = Vec::new();
    if release {
        builds.push(vec![
            "build",
            "--release",
            "-p",
            "souk-node",
            "-p",
            "souk-agent-summarizer",
        ]);
    } else {
        builds.push(vec!["build", "-p", "souk-node"]);
        builds.push(vec!["build", "--release", "-p", "souk-agent-summarizer"]);
    }
    for args in builds {
        eprintln!("building: cargo {}", args.join(" "));
        let mut cmd = Command::new(cargo);
        cmd.args(&args).current_dir(&root);
        scrub_cargo_env(&mut cmd);
        let status = cmd
            .status()
            .with_context(|| format!("cannot run cargo ({})", Path::new(cargo).display()))?;
        if !status.success() {
            anyhow::bail!("`cargo {}` failed ({status})", args.join(" "));
        }
    }
    Ok(())
}

fn how_to_build() -> String {
    "build it with `cargo build --release -p souk-node -p souk-agent-summarizer` in the Souk \
     workspace (souk-testnet then finds target/release/souk next to itself), put `souk` on \
     PATH, or pass --souk PATH; `cargo run --release -p souk-testnet -- ...` builds it for you"
        .into()
}

/// The `souk` binary to run. With `build` and under cargo (and no explicit path), first
/// builds the node and the summarizer agent.
pub(crate) fn souk(explicit: Option<PathBuf>, build: bool) -> anyhow::Result<PathBuf> {
    if let Some(p) = explicit {
        if !p.is_file() {
            anyhow::bail!("--souk {}: no such file", p.display());
        }
        return absolute(&p);
    }
    let sibling = own_dir().map(|d| d.join(exe_name("souk")));
    if let Some(cargo) = under_cargo()
        && (build || !sibling.as_ref().is_some_and(|p| p.is_file()))
    {
        cargo_build(&cargo)?;
    }
    if let Some(p) = sibling.filter(|p| p.is_file()) {
        return Ok(p);
    }
    if let Some(p) = on_path("souk") {
        return Ok(p);
    }
    anyhow::bail!("cannot find the souk binary: {}", how_to_build())
}

fn absolute(p: &Path) -> anyhow::Result<PathBuf> {
    std::path::absolute(p).with_context(|| format!("cannot resolve {}", p.display()))
}

/// The examples directory: `--examples DIR`, else `./examples`, else the workspace's.
pub(crate) fn examples(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    let has_csv = |d: &Path| d.join("csv-analyst").join("agent.toml").is_file();
    if let Some(d) = explicit {
        if !has_csv(d) {
            anyhow::bail!(
                "--examples {}: no csv-analyst/agent.toml there",
                d.display()
            );
        }
        return absolute(d);
    }
    let candidates = [PathBuf::from("examples"), workspace_root().join("examples")];
    for d in candidates {
        if has_csv(&d) {
            return absolute(&d);
        }
    }
    anyhow::bail!(
        "cannot find the example agents (examples/csv-analyst/agent.toml): run from the Souk \
         workspace or pass --examples DIR"
    )
}

/// The summarizer binary that examples/text-summarizer/agent.toml runs, if it exists.
pub(crate) fn summarizer_binary(examples: &Path) -> Option<PathBuf> {
    let p = examples
        .join("text-summarizer")
        .join("../../target/release")
        .join(exe_name("souk-agent-summarizer"));
    p.is_file().then_some(p)
}

/// Whether `python3` can be run (the csv-analyst agent needs it).
pub(crate) fn have_python3() -> bool {
    Command::new("python3")
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// How to invoke this program again, for hints: the cargo form when run under cargo.
pub(crate) fn self_command() -> String {
    if under_cargo().is_some() {
        if own_profile_is_release() {
            "cargo run --release -p souk-testnet --".into()
        } else {
            "cargo run -p souk-testnet --".into()
        }
    } else {
        "souk-testnet".into()
    }
}

/// How to invoke `souk` in hints: `souk` when that is the one on PATH, else its full path.
pub(crate) fn souk_command(souk: &Path) -> String {
    match on_path("souk") {
        Some(p) if same_file(&p, souk) => "souk".into(),
        _ => souk.display().to_string(),
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}
