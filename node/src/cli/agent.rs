//! `souk agent publish|list|retire`: the agents this node offers.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use souk_node::agent_file::AgentSpec;
use souk_node::api::AgentSummary;
use souk_node::service::Published;

use super::Ctx;
use super::error::usage;
use super::units::money;

#[derive(Debug, Subcommand)]
pub(crate) enum AgentCommand {
    /// Sign an agent's manifest from its agent.toml and announce it. Republishing bumps seq.
    Publish {
        /// The agent file (see examples/csv-analyst/agent.toml).
        file: PathBuf,
    },
    /// List the agents this node publishes.
    List,
    /// Stop offering an agent: announce a final, short-lived manifest and forget it.
    Retire {
        /// Agent name.
        name: String,
    },
}

pub(crate) fn run(ctx: &Ctx, cmd: AgentCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        AgentCommand::Publish { file } => {
            let spec = AgentSpec::load(&file).context("cannot publish the agent")?;
            let client = ctx.connect()?;
            let p: Published = client.post("/v1/agents", &spec)?;
            if ctx.json {
                super::print_json(&p)?;
            } else {
                out!("{}", p.manifest_id);
                eprintln!("published {} (seq {})", p.name, p.seq);
            }
        }
        AgentCommand::List => {
            let agents: Vec<AgentSummary> = ctx.connect()?.get("/v1/agents")?;
            if ctx.json {
                super::print_json(&agents)?;
            } else if agents.is_empty() {
                eprintln!("no agents published; see `souk agent publish --help`");
            } else {
                for a in agents {
                    out!(
                        "{:<24} seq {:<5} {:<12} {}  {}",
                        a.name,
                        a.seq,
                        money(a.per_hire, &a.currency),
                        &a.manifest_id[..16],
                        a.capabilities.join(",")
                    );
                }
            }
        }
        AgentCommand::Retire { name } => {
            // A name that cannot be an agent's (e.g. a path) is a usage error, not a 404.
            souk_node::agent_file::check_agent_name(&name).map_err(|e| usage!("{e}"))?;
            let out: serde_json::Value = ctx.connect()?.delete(&format!("/v1/agents/{name}"))?;
            if ctx.json {
                super::print_json(&out)?;
            } else {
                eprintln!("retired {name}: it leaves other nodes' search within a minute");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
