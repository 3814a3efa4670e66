//! Command-line interface: the clap definitions of every `souk` command and their dispatch.
//!
//! Conventions (shared by every command): a global `--data-dir` (env `SOUK_HOME`, default
//! `~/.souk`) and a global `--json` (data as JSON on stdout, errors as JSON on stderr), short
//! human output, hints that print commands which work as they are ([`Ctx::cmd`]), and exit
//! status 0 on success, 1 when the operation failed or was refused (an invalid bundle, a
//! declined hire, an error answered by the node), 2 on usage, configuration or local I/O
//! errors, 3 when the node cannot be reached ([`error`]).
//! Commands other than `init`, `node run` and `verify` talk to the running node through its
//! local API.

/// Prints a line on stdout; a closed stdout (e.g. `souk hires | head -1`) ends the process
/// quietly, as for any Unix filter, instead of panicking.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::write_line(format_args!($($arg)*))
    };
}

mod a2a;
mod a2a_offer;
mod agent;
mod agent_run;
mod completions;
mod config;
mod ctx;
pub(crate) mod error;
mod events;
mod follow;
mod hire;
mod init;
mod interrupt;
mod mcp;
mod node;
mod receipts;
mod scaffold;
mod search;
mod trace;
mod units;
mod verify;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use souk_node::data_dir::DataDir;

pub(crate) use ctx::Ctx;
use ctx::DirSource;
pub(crate) use error::{EXIT_FAILED, EXIT_USAGE};

/// Souk: a peer-to-peer exchange where AI agents are offered, hired and audited.
#[derive(Debug, Parser)]
#[command(
    name = "souk",
    version,
    about,
    long_about = None,
    propagate_version = true,
    after_help = "Exit status:\n  \
                  0    success\n  \
                  1    the operation failed or was refused (a declined or failed hire, an \
                  invalid bundle, an error answered by the node)\n  \
                  2    usage or configuration error\n  \
                  3    the node cannot be reached (not running, or not answering)\n  \
                  130  interrupted (Ctrl-C); a hire being followed goes on\n\n\
                  With --json, data is JSON on stdout and an error is one JSON object on \
                  stderr: {\"error\": \"...\", \"code\": N}."
)]
pub(crate) struct Cli {
    /// The node's data directory (identity, config, database) [default: ~/.souk].
    #[arg(long, global = true, env = "SOUK_HOME", value_name = "DIR")]
    pub(crate) data_dir: Option<PathBuf>,

    /// Print JSON: data on stdout, an error as {"error": ..., "code": N} on stderr.
    #[arg(long, global = true)]
    pub(crate) json: bool,

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
    /// Hire an agent (`souk hire AGENT --input FILE`, AGENT a handle or manifest id), or act on a hire:
    /// status, watch, output, answer, cancel, accept, reject.
    Hire(hire::HireArgs),
    /// List this node's hires.
    Hires,
    /// Export a hire's receipts, or show them as a readable trace.
    #[command(subcommand)]
    Receipts(receipts::ReceiptsCommand),
    /// Verify a receipt bundle (.souk) offline: manifest, contract, every receipt, the
    /// client's attestation and disclosed payloads.
    Verify(verify::VerifyArgs),
    /// Show or check the node's configuration (config.toml).
    #[command(subcommand)]
    Config(config::ConfigCommand),
    /// Serve the Model Context Protocol on stdin/stdout for an LLM host (Claude Desktop, any
    /// MCP client): tools to search, hire, follow, settle and verify Souk agents through this
    /// node, which must be running.
    Mcp(mcp::McpArgs),
    /// Serve the agents this node can hire as A2A (Agent2Agent) agents: agent cards,
    /// message/send, message/stream, tasks/get, tasks/cancel (docs/a2a.md).
    #[command(subcommand)]
    A2a(a2a::A2aCommand),
    /// Print a shell completion script: `souk completions bash > /etc/bash_completion.d/souk`.
    Completions(completions::CompletionsArgs),
}

/// Parses the command line. A usage error under `--json` is reported as JSON; help and
/// version requests print and exit 0 as usual.
pub(crate) fn parse() -> Result<(Cli, Ctx), ExitCode> {
    let matches = match Cli::command().try_get_matches() {
        Ok(m) => m,
        Err(e) => return Err(parse_error(&e)),
    };
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => return Err(parse_error(&e)),
    };
    let source = match (&cli.data_dir, matches.value_source("data_dir")) {
        (Some(p), Some(clap::parser::ValueSource::EnvVariable)) => DirSource::Env(p.clone()),
        (Some(p), _) => DirSource::Flag(p.clone()),
        (None, _) => DirSource::Default,
    };
    let ctx = Ctx::new(DataDir::resolve(cli.data_dir.clone()), cli.json, source);
    Ok((cli, ctx))
}

fn parse_error(e: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    let informational = matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    );
    if !informational && std::env::args_os().any(|a| a == "--json") {
        return ExitCode::from(error::report_usage_json(e));
    }
    let _ = e.print();
    ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(EXIT_USAGE))
}

/// Runs a parsed command line.
pub(crate) fn run(cli: Cli, ctx: &Ctx) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Init(args) => init::run(ctx, &args),
        Command::Node(cmd) => node::run(ctx, cmd),
        Command::Agent(cmd) => agent::run(ctx, cmd),
        Command::Search(args) => search::run(ctx, &args),
        Command::Hire(args) => hire::run(ctx, args),
        Command::Hires => hire::run_hires(ctx),
        Command::Receipts(cmd) => receipts::run(ctx, cmd),
        Command::Verify(args) => verify::run(ctx, &args),
        Command::Config(cmd) => config::run(ctx, cmd),
        Command::Mcp(args) => mcp::run(ctx, &args),
        Command::A2a(cmd) => a2a::run(ctx, cmd),
        Command::Completions(args) => completions::run(&args),
    }
}

/// Prints `value` as one line of JSON.
pub(crate) fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    out!("{}", serde_json::to_string(value)?);
    Ok(())
}

/// Writes one line to stdout; exits quietly with status 0 when stdout is closed.
pub(crate) fn write_line(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let result = stdout
        .write_fmt(args)
        .and_then(|()| stdout.write_all(b"\n"))
        .and_then(|()| stdout.flush());
    if let Err(e) = result {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: cannot write to stdout: {e}");
        std::process::exit(i32::from(EXIT_USAGE));
    }
}
