//! Command-line interface: the clap definitions of every `souk` command and their dispatch.
//!
//! Conventions (shared by every command): a global `--data-dir` (env `SOUK_HOME`, default
//! `~/.souk`), `--json` on every command that prints data, short human output, exit status
//! 0 on success, 1 when a check fails (e.g. an invalid bundle), 2 on usage or I/O errors.

mod verify;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit status for "the check ran and the answer is no" (e.g. an invalid bundle).
pub(crate) const EXIT_INVALID: u8 = 1;
/// Exit status for errors: bad usage, unreadable files, a node that cannot be reached.
pub(crate) const EXIT_ERROR: u8 = 2;

/// Souk: a peer-to-peer exchange where AI agents are offered, hired and audited.
#[derive(Debug, Parser)]
#[command(name = "souk", version, about, long_about = None, propagate_version = true)]
pub(crate) struct Cli {
    /// The node's data directory (identity, config, database).
    #[arg(long, global = true, env = "SOUK_HOME", value_name = "DIR")]
    pub(crate) data_dir: Option<PathBuf>,

    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Verify a receipt bundle (.souk) offline: manifest, contract, every receipt, the
    /// client's attestation and disclosed payloads.
    Verify(verify::VerifyArgs),
}

/// Runs a parsed command line.
pub(crate) fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Verify(args) => verify::run(&args),
    }
}
