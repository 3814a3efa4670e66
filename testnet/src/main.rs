//! `souk-testnet`: local networks of real `souk` processes on loopback.
//!
//! - `demo`: start a network, publish the example agents, hire one from a light client,
//!   accept it, export and verify its receipts, narrating every step; then stop everything.
//! - `up`, `status`, `down`: a network left running in the background, described by
//!   `DIR/testnet.json`, to use with the normal `souk` CLI.
//! - `run SCENARIO.toml`: a scenario with a workload, faults on a timeline and assertions,
//!   measured from the nodes' event streams; writes a report with plots.
//!
//! Every node is a `souk node run` process with its own data directory; every action is the
//! `souk` command a person would type. See testnet/README.md.

mod conformance;
mod demo;
mod inprocess;
mod locate;
mod manage;
mod network;
mod nodes;
mod procs;
mod report;
mod scenario;
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
    /// Stop one node of a network started with `up` (SIGTERM, then SIGKILL after 5 s).
    Stop(nodes::NodeArgs),
    /// Kill one node of a network started with `up` with SIGKILL (no clean shutdown).
    Kill(nodes::NodeArgs),
    /// Start a stopped or killed node of a network started with `up` again (same data,
    /// port and bootstrap peers).
    Start(nodes::NodeArgs),
    /// Print a node's log; with -f keep printing what it writes.
    Logs(nodes::LogsArgs),
    /// Run a scenario (network, workload, faults on a timeline, assertions) on real
    /// processes and write its report (report.json, plots, report.md). Exit status 0 only
    /// if every assertion held. Scenarios: testnet/scenarios/.
    Run(scenario::RunArgs),
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
        Command::Run(args) => scenario::run(cli.souk, &args),
        Command::Stop(args) => nodes::stop(&args, false),
        Command::Kill(args) => nodes::stop(&args, true),
        Command::Start(args) => nodes::start(cli.souk, &args),
        Command::Logs(args) => nodes::logs(&args),
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
