//! `souk-testnet`: local networks of real `souk` processes on loopback.
//!
//! - `demo`: start a network, publish the example agents, hire one from a light client,
//!   accept it, export and verify its receipts, narrating every step; then stop everything.
//! - `up`, `status`, `down`: a network left running in the background, described by
//!   `DIR/testnet.json`, to use with the normal `souk` CLI.
//!
//! Every node is a `souk node run` process with its own data directory; every action is the
//! `souk` command a person would type. See testnet/README.md.

mod conformance;
mod demo;
mod locate;
mod manage;
mod network;
mod procs;
mod souk;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Local Souk networks on loopback: real `souk` processes, one data directory each.
#[derive(Debug, Parser)]
#[command(name = "souk-testnet", version, about, long_about = None, propagate_version = true)]
struct Cli {
    /// The `souk` binary to run [default: next to souk-testnet, else on PATH].
    #[arg(long, global = true, env = "SOUK_TESTNET_SOUK", value_name = "PATH")]
    souk: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the end-to-end demo: N full nodes and a light client hire an agent, accept its
    /// work and verify the receipts offline. Exit status 0 only if every step succeeded.
    Demo(demo::DemoArgs),
    /// Start a network in the background and leave it running (see `status`, `down`).
    Up(manage::UpArgs),
    /// Show the nodes of a running network: mode, peers, manifests, agents, alive.
    Status(manage::StatusArgs),
    /// Stop a network started with `up`: SIGTERM, then SIGKILL after 5 s. Keeps the logs.
    Down(manage::DownArgs),
    /// Check a node over the wire against spec/ (transport, gossip admission, sync, search,
    /// and with --data-dir the hire protocol) and print a table naming each spec rule.
    /// Exit status 0 only if no check failed.
    Conformance(conformance::ConformanceArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo(args) => demo::run(cli.souk, &args),
        Command::Up(args) => manage::up(cli.souk, &args),
        Command::Status(args) => manage::status(cli.souk, &args),
        Command::Down(args) => manage::down(&args),
        Command::Conformance(args) => conformance::run(&args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            if procs::interrupted() {
                // The signal handler is stopping the network and will end the process.
                procs::wait_for_exit();
            }
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
