//! Bringing a scenario's network up: full nodes (each bootstraps to `node-0` and its
//! predecessor), light nodes (two full nodes each), then the agents published and seen by
//! every full node.

use std::path::{Path, PathBuf};

use anyhow::Context;

use super::file::Scenario;
use crate::network::{self, Network};
use crate::souk::{Published, short};

/// One agent publication of the setup (also what the republisher repeats).
#[derive(Debug, Clone)]
pub(crate) struct Offer {
    pub(crate) node: String,
    pub(crate) file: PathBuf,
    pub(crate) name: String,
}

/// Starts every node of `s` in `net` and waits until each has a peer.
pub(crate) fn start_nodes(net: &mut Network, s: &Scenario) -> anyhow::Result<()> {
    let (full, light) = s.node_names();
    let port = network::free_port()?;
    eprintln!(
        "starting {} full node(s) and {} light node(s)",
        full.len(),
        light.len()
    );
    net.spawn(&full[0], false, port, &[])?;
    net.wait_ready(&full[0])?;
    let boot0 = net
        .node(&full[0])?
        .addrs
        .first()
        .cloned()
        .context("node-0 has no address")?;
    for (i, name) in full.iter().enumerate().skip(1) {
        let mut boots = vec![boot0.clone()];
        if i > 1
            && let Some(a) = net.node(&full[i - 1])?.addrs.first()
        {
            boots.push(a.clone());
        }
        net.spawn(name, false, 0, &boots)?;
        net.wait_ready(name)?;
    }
    net.start_light_and_connect(&full, &light)?;
    eprintln!("all {} nodes up and connected", full.len() + light.len());
    Ok(())
}

/// The agent publications `s` asks for (`all-full` expanded), with their names.
pub(crate) fn offers(s: &Scenario) -> anyhow::Result<Vec<Offer>> {
    let (full, _) = s.node_names();
    let mut out = Vec::new();
    for a in &s.agents {
        let file = absolute(&s.base.join(&a.path))?;
        let name = agent_name(&file)?;
        let nodes = if a.node == "all-full" {
            full.clone()
        } else {
            vec![a.node.clone()]
        };
        for node in nodes {
            out.push(Offer {
                node,
                file: file.clone(),
                name: name.clone(),
            });
        }
    }
    Ok(out)
}

fn absolute(p: &Path) -> anyhow::Result<PathBuf> {
    std::fs::canonicalize(p).with_context(|| format!("agent file {} not found", p.display()))
}

/// The `name` of an agent file.
fn agent_name(file: &Path) -> anyhow::Result<String> {
    #[derive(serde::Deserialize)]
    struct Named {
        name: String,
    }
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let n: Named =
        toml::from_str(&text).with_context(|| format!("{} has no agent name", file.display()))?;
    Ok(n.name)
}

/// Publishes `offer` on its node; returns the manifest id and seq.
pub(crate) fn publish(net: &Network, offer: &Offer) -> anyhow::Result<(String, u64)> {
    let dir = net.node(&offer.node)?.data_dir.clone();
    let arg = offer.file.display().to_string();
    let p: Published = net
        .souk
        .json(Some(&dir), &["agent", "publish", "--json", &arg])
        .with_context(|| format!("{} could not publish {arg}", offer.node))?;
    eprintln!(
        "{} published {} (manifest {}, seq {})",
        offer.node,
        p.name,
        short(&p.manifest_id, 12),
        p.seq
    );
    Ok((p.manifest_id, p.seq))
}
