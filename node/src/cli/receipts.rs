//! `souk receipts export|show`: a hire's receipt bundle as a file (what `souk verify`
//! reads), or as a readable trace of what the agent did ([`super::trace`]).

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use serde_json::json;
use souk_protocol::verify::SignatureCheck;

use super::error::{EXIT_FAILED, usage};
use super::follow::short;
use super::hire::resolve;
use super::trace::Trace;
use super::{Ctx, verify};

#[derive(Debug, Subcommand)]
pub(crate) enum ReceiptsCommand {
    /// Write a hire's receipt bundle (the file `souk verify` reads).
    Export {
        /// Hire id (or a unique prefix of at least 6 digits).
        hire: String,
        /// Output file [default: stdout, which must not be a terminal: the bundle is binary].
        #[arg(short = 'o', long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// Also disclose every private payload this node holds.
        #[arg(long)]
        disclose: bool,
    },
    /// Show a hire as a readable trace: each step with its time, kind and payload, questions
    /// and answers, decisions as a tree of the calls they led to, where it failed, and whether
    /// the receipts verify. Exit status 1 when they do not.
    Show {
        /// A bundle file (from `souk receipts export`), or a hire id of this node (or a unique
        /// prefix): then every payload this node holds is shown.
        target: String,
    },
}

pub(crate) fn run(ctx: &Ctx, cmd: ReceiptsCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        ReceiptsCommand::Export {
            hire,
            output,
            disclose,
        } => export(ctx, &hire, output.as_deref(), disclose),
        ReceiptsCommand::Show { target } => show(ctx, &target),
    }
}

fn export(
    ctx: &Ctx,
    hire: &str,
    output: Option<&Path>,
    disclose: bool,
) -> anyhow::Result<ExitCode> {
    // Refuse before asking the node: nothing is fetched that cannot be written.
    if output.is_none() {
        if ctx.json {
            return Err(usage!(
                "--json prints where the bundle was written: give -o FILE"
            ));
        }
        if std::io::stdout().is_terminal() {
            return Err(usage!(
                "the bundle is binary: refusing to write it to a terminal; use `-o FILE` or redirect stdout (`{} > run.souk`)",
                ctx.cmd(&format!("receipts export {hire}"))
            ));
        }
    }
    let client = ctx.connect()?;
    let id = resolve(ctx, &client, hire)?;
    let bytes = client.get_bytes(&format!("/v1/hires/{id}/bundle?disclose={disclose}"))?;
    match output {
        Some(path) => {
            std::fs::write(path, &bytes)
                .with_context(|| format!("cannot write {}", path.display()))?;
            if ctx.json {
                super::print_json(&json!({
                    "hire_id": id.to_hex(),
                    "file": path.display().to_string(),
                    "bytes": bytes.len(),
                    "disclosed": disclose,
                }))?;
            } else {
                eprintln!(
                    "wrote {} ({} bytes); check it with `souk verify {}`",
                    path.display(),
                    bytes.len(),
                    super::ctx::shell_quote(path)
                );
            }
        }
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(&bytes)
                .and_then(|()| stdout.flush())
                .context("cannot write to stdout")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn show(ctx: &Ctx, target: &str) -> anyhow::Result<ExitCode> {
    let path = Path::new(target);
    let check = SignatureCheck::Batch;
    let (bytes, verdict) = if path.exists() {
        verify::judge_file(path, check)?
    } else if target.contains('/') || target.ends_with(".souk") {
        return Err(usage!("cannot read {target}: no such file"));
    } else {
        let client = ctx.connect()?;
        let id = resolve(ctx, &client, target)?;
        let bytes = client.get_bytes(&format!("/v1/hires/{id}/bundle?disclose=true"))?;
        let verdict = verify::verdict(&bytes, check);
        if !ctx.json {
            eprintln!(
                "hire {} as this node holds it, every payload it has disclosed",
                short(&id)
            );
        }
        (bytes, verdict)
    };
    let trace = Trace::build(&bytes, &verdict);
    if ctx.json {
        super::print_json(&trace)?;
    } else {
        for line in trace.render() {
            out!("{line}");
        }
    }
    Ok(if trace.verification.valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FAILED)
    })
}
