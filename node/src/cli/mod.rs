//! Command-line interface: the clap definitions of every `souk` command and their dispatch.
//!
//! Conventions (shared by every command): a global `--data-dir` (env `SOUK_HOME`, default
//! `~/.souk`), `--json` on every command that prints data, short human output, and exit
//! status 0 on success, 1 when the operation failed or was refused (an invalid bundle, a
//! declined hire, an error answered by the node), 2 on usage, configuration or local I/O
//! errors, 3 when the node cannot be reached ([`exit_code`]).
//! Commands other than `init`, `node run` and `verify` talk to the running node through its
//! local API.

/// Prints a line on stdout; a closed stdout (e.g. `souk hires | head -1`) ends the process
/// quietly, as for any Unix filter, instead of panicking.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::write_line(format_args!($($arg)*))
    };
}

mod agent;
mod hire;
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
/// Exit status for errors: bad usage or configuration, unreadable files.
pub(crate) const EXIT_ERROR: u8 = 2;
/// Exit status when the node's API cannot be reached (not running, or not answering).
pub(crate) const EXIT_UNREACHABLE: u8 = 3;

/// The exit status of a failed command, chosen by the kind of error (never by its text).
pub(crate) fn exit_code(err: &anyhow::Error) -> u8 {
    use souk_node::api::client::ClientError;
    match err.chain().find_map(|e| e.downcast_ref::<ClientError>()) {
        Some(e) if e.is_unreachable() => EXIT_UNREACHABLE,
        Some(ClientError::Api { .. }) => EXIT_INVALID,
        _ => EXIT_ERROR,
    }
}

/// Souk: a peer-to-peer exchange where AI agents are offered, hired and audited.
#[derive(Debug, Parser)]
#[command(
    name = "souk",
    version,
    about,
    long_about = None,
    propagate_version = true,
    after_help = "Exit status: 0 success; 1 the operation failed or was refused (declined, \
                  invalid bundle, an error from the node); 2 usage or configuration error; \
                  3 the node cannot be reached."
)]
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
    /// Hire an agent (`souk hire MANIFEST_ID --input FILE`), or act on a hire:
    /// status, watch, answer, cancel, accept, reject.
    Hire(hire::HireArgs),
    /// List this node's hires.
    Hires {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Export a hire's receipts.
    #[command(subcommand)]
    Receipts(hire::ReceiptsCommand),
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
        Command::Hire(args) => hire::run(&dir, args),
        Command::Hires { json } => hire::run_hires(&dir, json),
        Command::Receipts(cmd) => hire::run_receipts(&dir, cmd),
        Command::Verify(args) => verify::run(&args),
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
        std::process::exit(i32::from(EXIT_ERROR));
    }
}
