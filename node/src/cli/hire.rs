//! `souk hire` and `souk hires`: hire an agent, follow it, answer it, cancel it, settle it,
//! and print its output. Prices are advisory: Souk records the agreed price in the contract
//! and receipts, and moves no money.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use serde_json::{Value, json};
use souk_node::agent_file::parse_amount;
use souk_node::api::client::{ApiClient, ClientError};
use souk_node::hire::HireRecord;
use souk_node::hire::credentials::{CredentialRequest, GrantMode, Secret};
use souk_node::hire::{NewHire, WorkdirView};
use souk_protocol::Hash;
use souk_protocol::hire::HireState;
use zeroize::Zeroizing;

use super::Ctx;
use super::error::{failed, usage};
use super::follow::{self, Show, short};
use super::units::{format_duration_ms, money, parse_duration_ms};

/// Shown under `souk hire --help`.
const PRICE_NOTE: &str = "Prices are advisory: the agreed price is signed into the contract, \
    and the final receipt records it with the hire's metered usage (wall time, steps, network \
    calls), so a bill can be computed from a verified chain; but Souk itself moves no money \
    and charges nothing.";

#[derive(Debug, Args)]
#[command(
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    after_help = PRICE_NOTE
)]
pub(crate) struct HireArgs {
    #[command(subcommand)]
    command: Option<HireCommand>,
    #[command(flatten)]
    new: NewHireArgs,
}

#[derive(Debug, Args)]
pub(crate) struct NewHireArgs {
    /// The agent to hire: its handle `<node id>/<name>` (the node id may be a prefix of at
    /// least 8 characters after `souk`), its manifest id, or a unique prefix of the id of at
    /// least 8 hex digits (as `souk search` prints).
    #[arg(value_name = "AGENT", required = true)]
    manifest: Option<String>,
    /// The job input: a JSON file, or `-` for stdin.
    #[arg(long, value_name = "FILE", required = true)]
    input: Option<PathBuf>,
    /// Highest price you accept, in the agent's currency (decimal, e.g. 2.50) [default: what
    /// the agent's pricing charges for the deadline window]. Advisory: no money moves.
    #[arg(long, value_name = "N")]
    max_price: Option<String>,
    /// How long the work may take: 90s, 90m, 3600s, 2h, 2d, "1h 30m" [default: the agent's
    /// maximum]. More than the agent's maximum is refused.
    #[arg(long, value_name = "DUR")]
    deadline: Option<String>,
    /// Grant a credential slot of the agent: SLOT=env:VAR or SLOT=file:PATH (repeatable).
    /// The agent never sees the secret: the provider's egress proxy injects it into calls
    /// to the slot's hosts only (sealed mode), or forwards those calls here (relayed mode).
    #[arg(long = "credential", value_name = "SLOT=SOURCE")]
    credentials: Vec<String>,
    /// sealed: the secret goes to the provider, encrypted to its node key; relayed: the
    /// secret never leaves this node, which makes the calls itself.
    #[arg(long, value_enum, default_value_t = CredentialModeArg::Sealed)]
    credential_mode: CredentialModeArg,
    /// Most calls each credential may be used for [default: 1000].
    #[arg(long, value_name = "N")]
    credential_budget: Option<u64>,
    /// HTTP methods the credentials may be used with, comma-separated [default: any].
    #[arg(long, value_name = "M,...", value_delimiter = ',')]
    credential_methods: Vec<String>,
    /// Path prefixes the credentials may be used under, comma-separated [default: any].
    #[arg(long, value_name = "PREFIX,...", value_delimiter = ',')]
    credential_paths: Vec<String>,
    /// Relayed mode: how long a call may wait for this node to come back online (e.g. 2m)
    /// [default: it fails at once].
    #[arg(long, value_name = "DUR")]
    offline_wait: Option<String>,
    /// If the agent is at capacity, keep asking (with backoff) for this long, e.g. 5m
    /// [default: report the decline at once].
    #[arg(long, value_name = "DUR")]
    retry_busy: Option<String>,
    /// Follow the hire until it ends, printing its steps, then its output or why it failed.
    /// Ctrl-C stops following, not the hire.
    #[arg(long)]
    wait: bool,
}

/// How granted credentials reach the agent's calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum CredentialModeArg {
    /// Sealed to the provider's node; its proxy injects the secret.
    Sealed,
    /// Kept here; the provider's proxy relays calls to this node.
    Relayed,
}

/// Reads `SLOT=env:VAR` or `SLOT=file:PATH` into a slot name and its secret.
fn credential_source(arg: &str) -> anyhow::Result<(String, Zeroizing<String>)> {
    let (slot, source) = arg
        .split_once('=')
        .ok_or_else(|| usage!("--credential {arg:?}: expected SLOT=env:VAR or SLOT=file:PATH"))?;
    let secret = if let Some(var) = source.strip_prefix("env:") {
        Zeroizing::new(std::env::var(var).map_err(|_| {
            usage!("--credential {slot}: the environment variable {var} is not set")
        })?)
    } else if let Some(path) = source.strip_prefix("file:") {
        let mut text = Zeroizing::new(
            std::fs::read_to_string(path)
                .with_context(|| format!("--credential {slot}: cannot read {path}"))?,
        );
        while text.ends_with('\n') || text.ends_with('\r') {
            text.pop();
        }
        text
    } else {
        return Err(usage!(
            "--credential {slot}: the source must be env:VAR or file:PATH (never the secret itself on the command line)"
        ));
    };
    if secret.is_empty() {
        return Err(usage!("--credential {slot}: the secret is empty"));
    }
    Ok((slot.to_owned(), secret))
}

#[derive(Debug, Subcommand)]
pub(crate) enum HireCommand {
    /// Show a hire's state.
    Status {
        /// Hire id (or a unique prefix of at least 6 digits).
        hire: String,
    },
    /// Follow a hire's steps live until it ends, then print its output or why it failed.
    /// Ctrl-C stops watching, not the hire.
    Watch {
        /// Hire id (or a unique prefix of at least 6 digits).
        hire: String,
    },
    /// Print a completed hire's output (JSON).
    Output {
        /// Hire id (or a unique prefix of at least 6 digits).
        hire: String,
        /// Write it to FILE instead of stdout.
        #[arg(short = 'o', long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Answer the agent's question (input-required).
    Answer {
        /// Hire id (or a unique prefix of at least 6 digits).
        hire: String,
        /// The answer: JSON text, or plain text (sent as a JSON string).
        answer: String,
    },
    /// Cancel a running hire.
    Cancel {
        /// Hire id (or a unique prefix of at least 6 digits).
        hire: String,
        /// Why.
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Accept a completed hire: countersign its receipts with verdict "accepted". A failed,
    /// canceled or expired hire cannot be accepted (dispute it with `reject`).
    Accept {
        /// Hire id (or a unique prefix of at least 6 digits).
        hire: String,
        /// A note for the record.
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Dispute a finished hire: countersign its receipts with verdict "disputed".
    Reject {
        /// Hire id (or a unique prefix of at least 6 digits).
        hire: String,
        /// Why (required for a dispute).
        #[arg(long)]
        reason: String,
    },
    /// Show where a hire's agent ran (provider node): its working directory, kept for a
    /// while after the hire ended (config `workdir_retention_secs`).
    Workdir {
        /// Hire id (or a unique prefix of at least 6 digits).
        hire: String,
    },
}

/// Resolves a hire id in any form the CLI prints: the full 64 digits, or a unique prefix of
/// at least 6 (the 12-digit short form, the 8-digit form of error messages).
pub(crate) fn resolve(ctx: &Ctx, client: &ApiClient, given: &str) -> anyhow::Result<Hash> {
    let p = given.trim().to_ascii_lowercase();
    if let Some(id) = Hash::from_hex(&p) {
        return Ok(id);
    }
    if p.len() < 6 || p.len() > 64 || !p.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(usage!(
            "{given:?} is not a hire id (64 hex digits, or a unique prefix of at least 6)"
        ));
    }
    let all: Vec<HireRecord> = client.get("/v1/hires")?;
    let matches: Vec<&HireRecord> = all
        .iter()
        .filter(|h| h.hire_id.to_hex().starts_with(&p))
        .collect();
    match matches.as_slice() {
        [one] => Ok(one.hire_id),
        [] => Err(failed!(
            "no hire starts with {p}; see `{}`",
            ctx.cmd("hires")
        )),
        _ => Err(usage!(
            "{p} matches {} hires; give more digits",
            matches.len()
        )),
    }
}

fn print_record(ctx: &Ctx, r: &HireRecord) {
    out!("hire      {}", r.hire_id);
    out!("agent     {} (manifest {})", r.agent, short(&r.manifest_id));
    out!("role      {}", r.role);
    out!("state     {}", r.state);
    out!(
        "price     {}{} (advisory)",
        money(r.price, &r.currency),
        if r.countered { ", a counter-offer" } else { "" }
    );
    out!(
        "deadline  {}",
        humantime::format_rfc3339_seconds(
            std::time::UNIX_EPOCH + std::time::Duration::from_millis(r.deadline)
        )
    );
    out!("receipts  {}", r.entries);
    if let Some(q) = &r.question {
        out!("question  {q}");
        out!(
            "          answer with: {}",
            ctx.cmd(&format!("hire answer {} '<answer>'", short(&r.hire_id)))
        );
    }
    if let Some(v) = &r.verdict {
        out!(
            "verdict   {v}{}",
            if r.settle_pending {
                " (not yet delivered to the provider)"
            } else {
                ""
            }
        );
    }
    if let Some(e) = &r.error {
        out!("error     {e}");
    }
}

pub(crate) fn run(ctx: &Ctx, args: HireArgs) -> anyhow::Result<ExitCode> {
    let Some(command) = args.command else {
        // Everything local is checked before the node is asked.
        let wait = args.new.wait;
        let body = new_hire(args.new)?;
        return create(ctx, &ctx.connect()?, body, wait);
    };
    let client = ctx.connect()?;
    match command {
        HireCommand::Status { hire } => {
            let id = resolve(ctx, &client, &hire)?;
            let r: HireRecord = client.get(&format!("/v1/hires/{id}"))?;
            if ctx.json {
                super::print_json(&r)?;
            } else {
                print_record(ctx, &r);
            }
            Ok(ExitCode::SUCCESS)
        }
        HireCommand::Watch { hire } => {
            let id = resolve(ctx, &client, &hire)?;
            let _ctrl_c = follow::interrupt_guard(ctx, &id)?;
            let show = if ctx.json {
                Show::JsonLines
            } else {
                Show::Lines
            };
            let ended = follow::follow(ctx, &client, &id, show)?;
            if ctx.json {
                // The steps were the data; a hire that did not complete still fails (exit 1).
                if ended.record.state != HireState::Completed {
                    return Err(failed!(
                        "hire {} {}: {}",
                        short(&id),
                        ended.record.state,
                        follow::reason(&ended)
                    ));
                }
                return Ok(ExitCode::SUCCESS);
            }
            follow::report_outcome(ctx, &client, &ended)?;
            Ok(ExitCode::SUCCESS)
        }
        HireCommand::Output { hire, output } => print_output(ctx, &client, &hire, output),
        HireCommand::Answer { hire, answer } => {
            let id = resolve(ctx, &client, &hire)?;
            let value: Value = serde_json::from_str(&answer).unwrap_or(Value::String(answer));
            let _: Value = client.post(
                &format!("/v1/hires/{id}/answer"),
                &json!({ "answer": value }),
            )?;
            if ctx.json {
                super::print_json(&json!({ "hire_id": id.to_hex(), "answered": true }))?;
            } else {
                eprintln!(
                    "answer sent; `{}` follows the hire",
                    ctx.cmd(&format!("hire watch {}", short(&id)))
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        HireCommand::Cancel { hire, reason } => {
            let id = resolve(ctx, &client, &hire)?;
            let _: Value = client.post(
                &format!("/v1/hires/{id}/cancel"),
                &json!({ "reason": reason }),
            )?;
            if ctx.json {
                super::print_json(&json!({ "hire_id": id.to_hex(), "canceling": true }))?;
            } else {
                eprintln!(
                    "cancel requested; `{}` shows when it stops",
                    ctx.cmd(&format!("hire watch {}", short(&id)))
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        HireCommand::Workdir { hire } => {
            let id = resolve(ctx, &client, &hire)?;
            let w: WorkdirView = client.get(&format!("/v1/hires/{id}/workdir"))?;
            if ctx.json {
                super::print_json(&w)?;
            } else {
                out!("{}", w.path);
                if !w.exists {
                    eprintln!("(removed: the hire ended more than the retention period ago)");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        HireCommand::Accept { hire, reason } => {
            settle(ctx, &client, &hire, Settle::Accept, &reason)
        }
        HireCommand::Reject { hire, reason } => {
            settle(ctx, &client, &hire, Settle::Reject, &reason)
        }
    }
}

/// `souk hire output ID [-o FILE]`.
fn print_output(
    ctx: &Ctx,
    client: &ApiClient,
    hire: &str,
    file: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    let id = resolve(ctx, client, hire)?;
    let output: Value = match client.get(&format!("/v1/hires/{id}/output")) {
        Ok(v) => v,
        Err(ClientError::Api { status: 404, .. }) => {
            // Say why there is none: not finished, or finished without one.
            let r: HireRecord = client.get(&format!("/v1/hires/{id}"))?;
            let why = match (r.state, &r.error) {
                (s, Some(e)) if s.is_terminal() => format!("it {s}: {e}"),
                (s, None) if s.is_terminal() => format!("it ended {s}"),
                (s, _) => format!(
                    "it is {s}; follow it with `{}`",
                    ctx.cmd(&format!("hire watch {}", short(&id)))
                ),
            };
            return Err(failed!("hire {} has no output: {why}", short(&id)));
        }
        Err(e) => return Err(e.into()),
    };
    match file {
        Some(path) => {
            let mut text = serde_json::to_string_pretty(&output)?;
            text.push('\n');
            std::fs::write(&path, text)
                .with_context(|| format!("cannot write {}", path.display()))?;
            if ctx.json {
                super::print_json(&json!({
                    "hire_id": id.to_hex(),
                    "file": path.display().to_string(),
                }))?;
            } else {
                eprintln!(
                    "wrote the output of hire {} to {}",
                    short(&id),
                    path.display()
                );
            }
        }
        None if ctx.json => super::print_json(&output)?,
        None => out!("{}", serde_json::to_string_pretty(&output)?),
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Settle {
    Accept,
    Reject,
}

fn settle(
    ctx: &Ctx,
    client: &ApiClient,
    hire: &str,
    how: Settle,
    reason: &str,
) -> anyhow::Result<ExitCode> {
    let id = resolve(ctx, client, hire)?;
    let path = match how {
        Settle::Accept => "accept",
        Settle::Reject => "reject",
    };
    let r: HireRecord = client.post(
        &format!("/v1/hires/{id}/{path}"),
        &json!({ "reason": reason }),
    )?;
    if ctx.json {
        super::print_json(&r)?;
    } else {
        eprintln!(
            "{} hire {}: receipts countersigned; export them with `{}`",
            match how {
                Settle::Accept => "accepted",
                Settle::Reject => "disputed",
            },
            short(&id),
            ctx.cmd(&format!(
                "receipts export {} -o {}.souk",
                short(&id),
                short(&id)
            ))
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The API's body of a new hire, from the command line and the input file.
fn new_hire(a: NewHireArgs) -> anyhow::Result<NewHire> {
    let manifest = a.manifest.unwrap_or_default();
    let input_path = a.input.unwrap_or_default();
    let text = if input_path.as_os_str() == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
            .context("cannot read the input from stdin")?;
        s
    } else {
        std::fs::read_to_string(&input_path)
            .with_context(|| format!("cannot read {}", input_path.display()))?
    };
    let input: Value = serde_json::from_str(&text)
        .map_err(|e| usage!("{} is not JSON: {e}", input_path.display()))?;
    let max_price = match &a.max_price {
        Some(p) => Some(
            parse_amount(p)
                .ok_or_else(|| usage!("--max-price {p:?} is not a decimal amount (e.g. 2.50)"))?,
        ),
        None => None,
    };
    let deadline_ms = match &a.deadline {
        Some(d) => Some(parse_duration_ms(d).map_err(|e| {
            usage!("--deadline {d:?} is not a duration (e.g. 90s, 90m, 2h, 2d): {e}")
        })?),
        None => None,
    };
    let retry_busy_ms = match &a.retry_busy {
        Some(d) => Some(
            parse_duration_ms(d)
                .map_err(|e| usage!("--retry-busy {d:?} is not a duration (e.g. 30s, 5m): {e}"))?,
        ),
        None => None,
    };
    let offline_wait_ms =
        match &a.offline_wait {
            Some(d) => Some(parse_duration_ms(d).map_err(|e| {
                usage!("--offline-wait {d:?} is not a duration (e.g. 30s, 5m): {e}")
            })?),
            None => None,
        };
    let mut credentials = Vec::new();
    for arg in &a.credentials {
        let (slot, secret) = credential_source(arg)?;
        credentials.push(CredentialRequest {
            slot,
            secret: Secret::new(secret.to_string()),
            mode: match a.credential_mode {
                CredentialModeArg::Sealed => GrantMode::Sealed,
                CredentialModeArg::Relayed => GrantMode::Relayed,
            },
            methods: a.credential_methods.clone(),
            path_prefixes: a.credential_paths.clone(),
            max_requests: a.credential_budget,
            offline_wait_ms,
        });
    }
    Ok(NewHire {
        manifest_id: manifest.trim().to_owned(),
        input,
        max_price,
        deadline_ms,
        credentials,
        retry_busy_ms,
    })
}

fn create(ctx: &Ctx, client: &ApiClient, body: NewHire, wait: bool) -> anyhow::Result<ExitCode> {
    let r: HireRecord = client.post("/v1/hires", &body)?;
    let terms = format!(
        "{} (advisory){}, deadline in {}",
        money(r.price, &r.currency),
        if r.countered { ", a counter-offer" } else { "" },
        format_duration_ms(r.deadline.saturating_sub(r.created_at))
    );
    if !wait {
        if ctx.json {
            super::print_json(&r)?;
        } else {
            out!("{}", r.hire_id);
            eprintln!(
                "hired {} for {terms}; follow it with `{}`",
                r.agent,
                ctx.cmd(&format!("hire watch {}", short(&r.hire_id)))
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    let _ctrl_c = follow::interrupt_guard(ctx, &r.hire_id)?;
    let show = if ctx.json {
        Show::Nothing
    } else {
        eprintln!(
            "hired {} ({}) for {terms}; following its receipts (Ctrl-C stops following, not the hire):",
            r.agent,
            short(&r.hire_id),
        );
        Show::Progress
    };
    let ended = follow::follow(ctx, client, &r.hire_id, show)?;
    follow::report_outcome(ctx, client, &ended)?;
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn run_hires(ctx: &Ctx) -> anyhow::Result<ExitCode> {
    let client = ctx.connect()?;
    let all: Vec<HireRecord> = client.get("/v1/hires")?;
    if ctx.json {
        super::print_json(&all)?;
    } else if all.is_empty() {
        eprintln!(
            "no hires yet; find an agent with `{}` and hire it with `{}`",
            ctx.cmd("search"),
            ctx.cmd("hire")
        );
    } else {
        for r in all {
            out!(
                "{}  {:<8} {:<15} {:<20} {:>12} {}",
                short(&r.hire_id),
                r.role.as_str(),
                r.state.as_str(),
                r.agent,
                money(r.price, &r.currency),
                r.verdict.map_or("", |v| v.as_str())
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
