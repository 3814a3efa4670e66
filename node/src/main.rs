//! `souk`: the Souk node and its command-line interface.
//!
//! This file only parses arguments, runs the chosen command and turns its outcome into an
//! exit status. Commands live in [`cli`]; errors reach the user as one readable line (never a
//! backtrace) and a non-zero exit status.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(code) => code,
        Err(err) => {
            // `{:#}` prints the whole context chain on one line: "what failed: because ...".
            eprintln!("error: {err:#}");
            ExitCode::from(cli::exit_code(&err))
        }
    }
}
