//! `souk completions SHELL`: the shell completion script of every command and flag, from the
//! same clap definitions the parser uses (so it cannot drift).

use std::process::ExitCode;

use clap::{Args, CommandFactory};
use clap_complete::Shell;

#[derive(Debug, Args)]
pub(crate) struct CompletionsArgs {
    /// The shell: bash, zsh, fish, elvish or powershell.
    shell: Shell,
}

pub(crate) fn run(args: &CompletionsArgs) -> anyhow::Result<ExitCode> {
    let mut cmd = super::Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "souk", &mut out);
    let text = String::from_utf8_lossy(&out);
    out!("{}", text.trim_end());
    Ok(ExitCode::SUCCESS)
}
