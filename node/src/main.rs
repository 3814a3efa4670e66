//! `souk`: the Souk node and its command-line interface.
//!
//! This file only parses arguments, runs the chosen command and turns its outcome into an
//! exit status. Commands live in [`cli`]; errors reach the user as one readable line (or one
//! JSON object under `--json`), never a backtrace, with an exit status chosen by the error's
//! type ([`cli::error`]).

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    // The sandbox helper (`souk sandbox-helper …`) runs inside and around a hired agent's
    // sandbox; it replaces itself with other programs, so it starts before anything else.
    let mut raw = std::env::args_os();
    if raw.nth(1).as_deref() == Some(std::ffi::OsStr::new("sandbox-helper")) {
        return souk_runtime::sandbox::helper::main(raw);
    }
    let (args, ctx) = match cli::parse() {
        Ok(parsed) => parsed,
        Err(code) => return code,
    };
    match cli::run(args, &ctx) {
        Ok(code) => code,
        Err(err) => ExitCode::from(cli::error::report(&err, ctx.json)),
    }
}
