//! `souk agent publish|list|retire`: the agents this node offers.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use souk_node::agent_file::{AgentSpec, format_amount};
use souk_node::api::AgentSummary;
use souk_node::api::client::ApiClient;
use souk_node::data_dir::DataDir;
use souk_node::service::Published;

#[derive(Debug, Subcommand)]
pub(crate) enum AgentCommand {
    /// Sign an agent's manifest from its agent.toml and announce it. Republishing bumps seq.
    Publish {
        /// The agent file (see examples/csv-analyst/agent.toml).
        file: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List the agents this node publishes.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Stop offering an agent: announce a final, short-lived manifest and forget it.
    Retire {
        /// Agent name.
        name: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

pub(crate) fn run(dir: &DataDir, cmd: AgentCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        AgentCommand::Publish { file, json } => {
            let spec = AgentSpec::load(&file).context("cannot publish the agent")?;
            let client = ApiClient::connect(dir)?;
            let p: Published = client.post("/v1/agents", &spec)?;
            if json {
                super::print_json(&p)?;
            } else {
                out!("{}", p.manifest_id);
                eprintln!("published {} (seq {})", p.name, p.seq);
            }
        }
        AgentCommand::List { json } => {
            let agents: Vec<AgentSummary> = ApiClient::connect(dir)?.get("/v1/agents")?;
            if json {
                super::print_json(&agents)?;
            } else if agents.is_empty() {
                eprintln!("no agents published; see `souk agent publish --help`");
            } else {
                for a in agents {
                    out!(
                        "{:<24} seq {:<5} {} {:<8} {}  {}",
                        a.name,
                        a.seq,
                        format_amount(a.per_hire),
                        a.currency,
                        &a.manifest_id[..16],
                        a.capabilities.join(",")
                    );
                }
            }
        }
        AgentCommand::Retire { name, json } => {
            souk_node::agent_file::check_agent_name(&name).map_err(anyhow::Error::msg)?;
            let out: serde_json::Value =
                ApiClient::connect(dir)?.delete(&format!("/v1/agents/{name}"))?;
            if json {
                super::print_json(&out)?;
            } else {
                eprintln!("retired {name}: it leaves other nodes' search within a minute");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
