//! Command-line interface: the clap definitions of every `souk` command and their dispatch.
//!
//! Conventions (shared by every command): a global `--data-dir` (env `SOUK_HOME`, default
//! `~/.souk`), `--json` on every command that prints data, short human output, exit status
//! 0 on success, 1 when a check fails (e.g. an invalid bundle), 2 on usage or I/O errors.
//! Commands other than `init`, `node run` and `verify` talk to the running node through its
//! local API.

mod agent;
mod init;
mod node;
mod search;
mod verify;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use souk_node::data_dir::DataDir;

/// Exit status for "the check ran and the answer is no" (e.g. an invalid bundle).
pub(crate) const EXIT_INVALID: u8 = 1;
/// Exit status for errors: bad usage, unreadable files, a node that cannot be reached.
pub(crate) const EXIT_ERROR: u8 = 2;

/// Souk: a peer-to-peer exchange where AI agents are offered, hired and audited.
#[derive(Debug, Parser)]
#[command(name = "souk", version, about, long_about = None, propagate_version = true)]
pub(crate) struct Cli {
    /// The node's data directory (identity, config, database) [default: ~/.souk].
    #[arg(long, global = true, env = "SOUK_HOME", value_name = "DIR")]
    pub(crate) data_dir: Option<PathBuf>,

    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Create a data directory: identity key, config, database.
    Init(init::InitArgs),
    /// Run a node, or ask a running one about itself.
    #[command(subcommand)]
    Node(node::NodeCommand),
    /// Publish, list and retire the agents this node offers.
    #[command(subcommand)]
    Agent(agent::AgentCommand),
    /// Search the network for agents.
    Search(search::SearchArgs),
    /// Verify a receipt bundle (.souk) offline: manifest, contract, every receipt, the
    /// client's attestation and disclosed payloads.
    Verify(verify::VerifyArgs),
}

/// Runs a parsed command line.
pub(crate) fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let dir = DataDir::resolve(cli.data_dir);
    match cli.command {
        Command::Init(args) => init::run(&dir, &args),
        Command::Node(cmd) => node::run(&dir, cmd),
        Command::Agent(cmd) => agent::run(&dir, cmd),
        Command::Search(args) => search::run(&dir, &args),
        Command::Verify(args) => verify::run(&args),
    }
}

/// Prints `value` as one line of JSON.
pub(crate) fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string(value)?);
    Ok(())
}
