//! `souk agent new NAME --lang python|rust`: writes a working agent skeleton (agent.toml,
//! schemas, an example input, the program) that `souk agent check`, `souk agent run` and
//! `souk agent publish` accept as it is (a Rust one once built: `cargo build --release
//! --target-dir .target`, the hidden directory the runtime digest skips). A Python skeleton carries its own copy of the
//! souk-agent SDK (`souk_agent/`, embedded in this binary from `sdk/python`), so the
//! package is self-contained wherever it is created, and the SDK is hashed with it.

use std::path::{Path, PathBuf};

use anyhow::Context;

/// The languages a skeleton can be written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Lang {
    /// Python 3 on the souk-agent SDK (standard library only).
    Python,
    /// Rust, speaking the protocol with serde_json.
    Rust,
}

const AGENT_TOML: &str = include_str!("scaffold/agent.toml.tmpl");
const INPUT_SCHEMA: &str = include_str!("scaffold/input.schema.json");
const OUTPUT_SCHEMA: &str = include_str!("scaffold/output.schema.json");
const EXAMPLE_INPUT: &str = "{\"text\": \"Souk hires agents and proves what they did.\"}\n";
const AGENT_PY: &str = include_str!("scaffold/agent.py.tmpl");
const CARGO_TOML: &str = include_str!("scaffold/Cargo.toml.tmpl");
const MAIN_RS: &str = include_str!("scaffold/main.rs.tmpl");
/// Cargo builds into a hidden directory: the runtime digest skips hidden entries, so the
/// build output does not change the package's digest (its sources do).
const CARGO_CONFIG: &str = "[build]\ntarget-dir = \".target\"\n";

/// The souk-agent SDK, file by file (`sdk/python/src/souk_agent`).
pub(super) const SDK: &[(&str, &str)] = &[
    (
        "__init__.py",
        include_str!("../../../sdk/python/src/souk_agent/__init__.py"),
    ),
    (
        "a2a_bridge.py",
        include_str!("../../../sdk/python/src/souk_agent/a2a_bridge.py"),
    ),
    (
        "channel.py",
        include_str!("../../../sdk/python/src/souk_agent/channel.py"),
    ),
    (
        "context.py",
        include_str!("../../../sdk/python/src/souk_agent/context.py"),
    ),
    (
        "errors.py",
        include_str!("../../../sdk/python/src/souk_agent/errors.py"),
    ),
    (
        "runner.py",
        include_str!("../../../sdk/python/src/souk_agent/runner.py"),
    ),
    (
        "tools.py",
        include_str!("../../../sdk/python/src/souk_agent/tools.py"),
    ),
    (
        "wire.py",
        include_str!("../../../sdk/python/src/souk_agent/wire.py"),
    ),
    ("py.typed", ""),
];

/// What was written: the directory, and the command to try the agent with.
pub(crate) struct Written {
    pub(crate) dir: PathBuf,
    pub(crate) files: Vec<PathBuf>,
}

/// Writes the skeleton of agent `name` into `dir` (created; it must not exist or be empty).
pub(crate) fn write(dir: &Path, name: &str, lang: Lang) -> anyhow::Result<Written> {
    if dir.exists()
        && std::fs::read_dir(dir)
            .with_context(|| format!("cannot read {}", dir.display()))?
            .next()
            .is_some()
    {
        anyhow::bail!(
            "{} already exists and is not empty: choose another name or --dir",
            dir.display()
        );
    }
    let command = match lang {
        Lang::Python => r#"["python3", "agent.py"]"#.to_owned(),
        Lang::Rust => r#"["./.target/release/agent"]"#.to_owned(),
    };
    let mut files: Vec<(PathBuf, String)> = vec![
        (
            "agent.toml".into(),
            AGENT_TOML
                .replace("{name}", name)
                .replace("{command}", &command),
        ),
        ("schema/input.json".into(), INPUT_SCHEMA.to_owned()),
        ("schema/output.json".into(), OUTPUT_SCHEMA.to_owned()),
        ("example.json".into(), EXAMPLE_INPUT.to_owned()),
    ];
    match lang {
        Lang::Python => {
            files.push(("agent.py".into(), AGENT_PY.replace("{name}", name)));
            for (file, text) in SDK {
                files.push((Path::new("souk_agent").join(file), (*text).to_owned()));
            }
        }
        Lang::Rust => {
            files.push(("Cargo.toml".into(), CARGO_TOML.to_owned()));
            files.push(("src/main.rs".into(), MAIN_RS.replace("{name}", name)));
            files.push((".cargo/config.toml".into(), CARGO_CONFIG.to_owned()));
        }
    }
    let mut written = Vec::with_capacity(files.len());
    for (rel, text) in files {
        let path = dir.join(&rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
        written.push(rel);
    }
    Ok(Written {
        dir: dir.to_owned(),
        files: written,
    })
}
