//! `souk agent publish --a2a CARD`: reads an A2A agent's card (an `http://` URL on any host,
//! or a file: fetch an `https://` card with any HTTP client) and writes the package that
//! offers it on Souk ([`souk_node::a2a::offer`]) to `--dir` (default `./NAME`, never inside the
//! data dir: the agent's sandbox sees its package); the caller then publishes that agent file
//! like any other. Republishing rewrites a package it wrote before, nothing else.

use std::path::{Path, PathBuf};

use anyhow::Context;
use souk_node::a2a::offer::{A2aOffer, BRIDGE_PY, INPUT_SCHEMA, OUTPUT_SCHEMA};

use super::error::failed;

/// Largest agent card read.
const MAX_CARD: u64 = 1 << 20;
/// Longest a hire of an offered A2A agent may run (the provider edits the file for more).
const MAX_DURATION_SECS: u64 = 600;

fn read_card(src: &str) -> anyhow::Result<serde_json::Value> {
    let text = if src.starts_with("http://") {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(std::time::Duration::from_secs(20)))
            .build()
            .new_agent();
        agent
            .get(src)
            .call()
            .map_err(|e| failed!("cannot fetch the agent card {src}: {e}"))?
            .into_body()
            .with_config()
            .limit(MAX_CARD)
            .read_to_string()
            .map_err(|e| failed!("cannot read the agent card {src}: {e}"))?
    } else if src.starts_with("https://") {
        return Err(failed!(
            "this build fetches agent cards over http:// only: save the card first (`curl -o card.json {src}`) and pass the file"
        ));
    } else {
        let path = Path::new(src);
        let len = std::fs::metadata(path)
            .with_context(|| format!("cannot read the agent card {src}"))?
            .len();
        if len > MAX_CARD {
            return Err(failed!("the agent card {src} is over {MAX_CARD} bytes"));
        }
        std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the agent card {src}"))?
    };
    serde_json::from_str(&text).map_err(|e| failed!("the agent card {src} is not JSON: {e}"))
}

/// Writes the package offering the A2A agent of card `src`; returns its agent file.
pub(crate) fn write_package(
    src: &str,
    name: Option<&str>,
    price: &str,
    currency: &str,
    dir: Option<&Path>,
) -> anyhow::Result<PathBuf> {
    let card = read_card(src)?;
    let offer =
        A2aOffer::from_card(&card, name).map_err(|e| failed!("cannot offer this agent: {e}"))?;
    let dir = match dir {
        Some(d) => d.to_owned(),
        None => std::env::current_dir()
            .context("cannot read the current directory")?
            .join(&offer.name),
    };
    let ours = dir.join("bridge.py").is_file() && dir.join("card.json").is_file();
    if dir.exists()
        && !ours
        && std::fs::read_dir(&dir)
            .with_context(|| format!("cannot read {}", dir.display()))?
            .next()
            .is_some()
    {
        return Err(failed!(
            "{} exists and is not a package made by `agent publish --a2a`: choose another --dir",
            dir.display()
        ));
    }
    let mut files: Vec<(PathBuf, String)> = vec![
        (
            "agent.toml".into(),
            offer.agent_toml(price, currency, MAX_DURATION_SECS),
        ),
        ("bridge.py".into(), BRIDGE_PY.to_owned()),
        ("schema/input.json".into(), INPUT_SCHEMA.to_owned()),
        ("schema/output.json".into(), OUTPUT_SCHEMA.to_owned()),
        ("card.json".into(), serde_json::to_string_pretty(&card)?),
    ];
    for (file, text) in super::scaffold::SDK {
        files.push((Path::new("souk_agent").join(file), (*text).to_owned()));
    }
    for (rel, text) in files {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    eprintln!(
        "offering the A2A agent at {} as {} (package: {}; reachable host: {})",
        offer.endpoint,
        offer.name,
        dir.display(),
        offer.host
    );
    Ok(dir.join("agent.toml"))
}
