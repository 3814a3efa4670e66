//! `souk`: the Souk node and its command-line interface.
//!
//! This file only parses arguments, runs the chosen command and turns its outcome into an
//! exit status. Commands live in [`cli`]; errors reach the user as one readable line (never a
//! backtrace) and a non-zero exit status.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // The sandbox helper (`souk sandbox-helper …`) runs inside and around a hired agent's
    // sandbox; it replaces itself with other programs, so it starts before anything else.
    let mut raw = std::env::args_os();
    if raw.nth(1).as_deref() == Some(std::ffi::OsStr::new("sandbox-helper")) {
        return souk_runtime::sandbox::helper::main(raw);
    }
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
