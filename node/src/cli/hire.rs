//! `souk hire`, `souk hires` and `souk receipts export`: hire an agent, follow it, answer
//! it, cancel it, settle it, and export its verifiable receipts.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use serde_json::{Value, json};
use souk_node::agent_file::{format_amount, parse_amount};
use souk_node::api::client::ApiClient;
use souk_node::data_dir::DataDir;
use souk_node::hire::HireRecord;
use souk_node::hire::credentials::{CredentialRequest, GrantMode, Secret};
use souk_node::hire::{NewHire, ReceiptsView, StepView, WorkdirView};
use souk_protocol::Hash;
use souk_protocol::hire::HireState;
use zeroize::Zeroizing;

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub(crate) struct HireArgs {
    #[command(subcommand)]
    command: Option<HireCommand>,
    #[command(flatten)]
    new: NewHireArgs,
}

#[derive(Debug, Args)]
pub(crate) struct NewHireArgs {
    /// The manifest id to hire (from `souk search`).
    #[arg(value_name = "MANIFEST_ID", required = true)]
    manifest: Option<String>,
    /// The job input: a JSON file, or `-` for stdin.
    #[arg(long, value_name = "FILE", required = true)]
    input: Option<PathBuf>,
    /// Highest price you accept (decimal, e.g. 2.50) [default: what the agent's pricing charges for the deadline window].
    #[arg(long, value_name = "N")]
    max_price: Option<String>,
    /// How long the work may take: 90s, 10m, 2h, 1d [default: the agent's maximum].
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
    /// Follow the hire until it ends, printing its steps.
    #[arg(long)]
    wait: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
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
    let (slot, source) = arg.split_once('=').with_context(|| {
        format!("--credential {arg:?}: expected SLOT=env:VAR or SLOT=file:PATH")
    })?;
    let secret = if let Some(var) = source.strip_prefix("env:") {
        Zeroizing::new(std::env::var(var).with_context(|| {
            format!("--credential {slot}: the environment variable {var} is not set")
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
        anyhow::bail!(
            "--credential {slot}: the source must be env:VAR or file:PATH (never the secret itself on the command line)"
        );
    };
    if secret.is_empty() {
        anyhow::bail!("--credential {slot}: the secret is empty");
    }
    Ok((slot.to_owned(), secret))
}

#[derive(Debug, Subcommand)]
pub(crate) enum HireCommand {
    /// Show a hire's state.
    Status {
        /// Hire id (or a unique prefix).
        hire: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Follow a hire's steps live until it ends.
    Watch {
        /// Hire id (or a unique prefix).
        hire: String,
        /// One JSON object per step.
        #[arg(long)]
        json: bool,
    },
    /// Answer the agent's question (input-required).
    Answer {
        /// Hire id (or a unique prefix).
        hire: String,
        /// The answer: JSON text, or plain text (sent as a JSON string).
        answer: String,
    },
    /// Cancel a running hire.
    Cancel {
        /// Hire id (or a unique prefix).
        hire: String,
        /// Why.
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Accept a finished hire: countersign its receipts with verdict "accepted".
    Accept {
        /// Hire id (or a unique prefix).
        hire: String,
        /// A note for the record.
        #[arg(long, default_value = "")]
        reason: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Dispute a finished hire: countersign its receipts with verdict "disputed".
    Reject {
        /// Hire id (or a unique prefix).
        hire: String,
        /// Why (required for a dispute).
        #[arg(long)]
        reason: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show where a hire's agent ran (provider node): its working directory, kept for a
    /// while after the hire ended (config `workdir_retention_secs`).
    Workdir {
        /// Hire id (or a unique prefix).
        hire: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum ReceiptsCommand {
    /// Write a hire's receipt bundle (the file `souk verify` reads).
    Export {
        /// Hire id (or a unique prefix).
        hire: String,
        /// Output file [default: stdout].
        #[arg(short = 'o', long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// Also disclose every private payload this node holds.
        #[arg(long)]
        disclose: bool,
    },
}

/// Parses `90s`, `10m`, `2h`, `1d`, or plain seconds, into milliseconds.
pub(crate) fn parse_duration(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num.parse().ok()?;
    let mult = match unit {
        "" | "s" => 1_000,
        "ms" => 1,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    n.checked_mul(mult).filter(|v| *v > 0)
}

/// Resolves a hire id or unique prefix (at least 6 hex digits).
fn resolve(client: &ApiClient, prefix: &str) -> anyhow::Result<Hash> {
    let p = prefix.to_ascii_lowercase();
    if let Some(id) = Hash::from_hex(&p) {
        return Ok(id);
    }
    if p.len() < 6 || !p.bytes().all(|b| b.is_ascii_hexdigit()) {
        anyhow::bail!(
            "{prefix:?} is not a hire id (64 hex digits, or a unique prefix of at least 6)"
        );
    }
    let all: Vec<HireRecord> = client.get("/v1/hires")?;
    let matches: Vec<&HireRecord> = all
        .iter()
        .filter(|h| h.hire_id.to_hex().starts_with(&p))
        .collect();
    match matches.as_slice() {
        [one] => Ok(one.hire_id),
        [] => anyhow::bail!("no hire starts with {prefix}; see `souk hires`"),
        _ => anyhow::bail!("{prefix} matches {} hires; give more digits", matches.len()),
    }
}

fn short(id: &Hash) -> String {
    id.to_hex()[..12].to_owned()
}

fn print_record(r: &HireRecord) {
    out!("hire      {}", r.hire_id);
    out!("agent     {} (manifest {})", r.agent, short(&r.manifest_id));
    out!(
        "role      {}",
        if r.role == souk_node::hire::Role::Client {
            "client"
        } else {
            "provider"
        }
    );
    out!("state     {}", r.state);
    out!(
        "price     {} {}{}",
        format_amount(r.price),
        r.currency,
        if r.countered { " (counter-offer)" } else { "" }
    );
    out!("receipts  {}", r.entries);
    if let Some(q) = &r.question {
        out!("question  {q}");
        out!(
            "          answer with: souk hire answer {} '<answer>'",
            short(&r.hire_id)
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

fn print_step(s: &StepView) {
    let mut summary = s.summary.replace('\n', " ");
    if summary.chars().count() > 110 {
        summary = summary.chars().take(107).collect::<String>() + "...";
    }
    out!("  #{:<4} {:<16} {summary}", s.seq, s.kind);
}

/// Follows a hire's receipts until it ends; returns the final record.
fn follow(
    client: &ApiClient,
    id: &Hash,
    json_lines: bool,
    quiet: bool,
) -> anyhow::Result<HireRecord> {
    let mut from = 0u64;
    let mut asked = false;
    loop {
        let view: ReceiptsView = client.get(&format!(
            "/v1/hires/{id}/receipts?from={from}&wait_ms=20000"
        ))?;
        for s in &view.steps {
            if json_lines {
                out!("{}", serde_json::to_string(s)?);
            } else if !quiet {
                print_step(s);
            }
            from = s.seq + 1;
        }
        std::io::stdout().flush().ok();
        let r = view.hire;
        if r.state == HireState::InputRequired && !asked && !json_lines && !quiet {
            asked = true;
            if let Some(q) = &r.question {
                eprintln!("the agent asks: {q}");
            }
            eprintln!(
                "answer with: souk hire answer {} '<answer>'",
                short(&r.hire_id)
            );
        }
        if r.state != HireState::InputRequired {
            asked = false;
        }
        if let (Some(e), false) = (&r.error, r.state.is_terminal()) {
            anyhow::bail!("following stopped: {e}");
        }
        if r.state.is_terminal() && from >= r.entries {
            return Ok(r);
        }
    }
}

pub(crate) fn run(dir: &DataDir, args: HireArgs) -> anyhow::Result<ExitCode> {
    let client = ApiClient::connect(dir)?;
    match args.command {
        None => create(&client, args.new),
        Some(HireCommand::Status { hire, json }) => {
            let id = resolve(&client, &hire)?;
            let r: HireRecord = client.get(&format!("/v1/hires/{id}"))?;
            if json {
                super::print_json(&r)?;
            } else {
                print_record(&r);
            }
            Ok(ExitCode::SUCCESS)
        }
        Some(HireCommand::Watch { hire, json }) => {
            let id = resolve(&client, &hire)?;
            let r = follow(&client, &id, json, false)?;
            if !json {
                finished(&client, &r)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Some(HireCommand::Answer { hire, answer }) => {
            let id = resolve(&client, &hire)?;
            let value: Value = serde_json::from_str(&answer).unwrap_or(Value::String(answer));
            let _: Value = client.post(
                &format!("/v1/hires/{id}/answer"),
                &json!({ "answer": value }),
            )?;
            eprintln!("answer sent");
            Ok(ExitCode::SUCCESS)
        }
        Some(HireCommand::Cancel { hire, reason }) => {
            let id = resolve(&client, &hire)?;
            let _: Value = client.post(
                &format!("/v1/hires/{id}/cancel"),
                &json!({ "reason": reason }),
            )?;
            eprintln!(
                "cancel requested; `souk hire watch {}` shows when it stops",
                short(&id)
            );
            Ok(ExitCode::SUCCESS)
        }
        Some(HireCommand::Workdir { hire, json }) => {
            let id = resolve(&client, &hire)?;
            let w: WorkdirView = client.get(&format!("/v1/hires/{id}/workdir"))?;
            if json {
                super::print_json(&w)?;
            } else if w.exists {
                out!("{}", w.path);
            } else {
                out!("{}", w.path);
                eprintln!("(removed: the hire ended more than the retention period ago)");
            }
            Ok(ExitCode::SUCCESS)
        }
        Some(HireCommand::Accept { hire, reason, json }) => {
            settle(&client, &hire, "accept", &reason, json)
        }
        Some(HireCommand::Reject { hire, reason, json }) => {
            settle(&client, &hire, "reject", &reason, json)
        }
    }
}

fn settle(
    client: &ApiClient,
    hire: &str,
    how: &str,
    reason: &str,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let id = resolve(client, hire)?;
    let r: HireRecord = client.post(
        &format!("/v1/hires/{id}/{how}"),
        &json!({ "reason": reason }),
    )?;
    if json {
        super::print_json(&r)?;
    } else {
        eprintln!(
            "{} hire {}: receipts countersigned; export them with `souk receipts export {}`",
            if how == "accept" {
                "accepted"
            } else {
                "disputed"
            },
            short(&id),
            short(&id)
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn finished(client: &ApiClient, r: &HireRecord) -> anyhow::Result<()> {
    out!(
        "{} {}",
        if r.state == HireState::Completed {
            "completed:"
        } else {
            "ended:"
        },
        r.state
    );
    if r.state == HireState::Completed {
        // The output arrives with (or just after) the completed entry.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            match client.get::<Value>(&format!("/v1/hires/{}/output", r.hire_id)) {
                Ok(out) => {
                    out!("output: {}", serde_json::to_string_pretty(&out)?);
                    break;
                }
                Err(_) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
                Err(e) => {
                    eprintln!("the output has not arrived yet ({e}); see `souk hire status`");
                    break;
                }
            }
        }
        eprintln!(
            "settle it with `souk hire accept {0}` or `souk hire reject {0} --reason ...`",
            short(&r.hire_id)
        );
    }
    if let Some(e) = &r.error {
        out!("reason: {e}");
    }
    Ok(())
}

fn create(client: &ApiClient, a: NewHireArgs) -> anyhow::Result<ExitCode> {
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
        .with_context(|| format!("{} is not JSON", input_path.display()))?;
    let max_price =
        match &a.max_price {
            Some(p) => Some(parse_amount(p).with_context(|| {
                format!("--max-price {p:?} is not a decimal amount (e.g. 2.50)")
            })?),
            None => None,
        };
    let deadline_ms = match &a.deadline {
        Some(d) => Some(parse_duration(d).with_context(|| {
            format!("--deadline {d:?} is not a duration (e.g. 90s, 10m, 2h, 1d)")
        })?),
        None => None,
    };
    let retry_busy_ms = match &a.retry_busy {
        Some(d) => Some(
            parse_duration(d)
                .with_context(|| format!("--retry-busy {d:?} is not a duration (e.g. 30s, 5m)"))?,
        ),
        None => None,
    };
    let offline_wait_ms =
        match &a.offline_wait {
            Some(d) => Some(parse_duration(d).with_context(|| {
                format!("--offline-wait {d:?} is not a duration (e.g. 30s, 5m)")
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
    let body = NewHire {
        manifest_id: manifest.to_ascii_lowercase(),
        input,
        max_price,
        deadline_ms,
        credentials,
        retry_busy_ms,
    };
    let r: HireRecord = client.post("/v1/hires", &body)?;
    if !a.wait {
        if a.json {
            super::print_json(&r)?;
        } else {
            out!("{}", r.hire_id);
            eprintln!(
                "hired {} for {} {}{}; follow it with `souk hire watch {}`",
                r.agent,
                format_amount(r.price),
                r.currency,
                if r.countered {
                    " (counter-offer accepted)"
                } else {
                    ""
                },
                short(&r.hire_id)
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    if !a.json {
        eprintln!(
            "hired {} ({}) for {} {}; following its receipts:",
            r.agent,
            short(&r.hire_id),
            format_amount(r.price),
            r.currency
        );
    }
    let done = follow(client, &r.hire_id, false, a.json)?;
    if a.json {
        let output = client
            .get::<Value>(&format!("/v1/hires/{}/output", done.hire_id))
            .ok();
        super::print_json(&json!({ "hire": done, "output": output }))?;
    } else {
        finished(client, &done)?;
    }
    // Completed with a verified chain and output: success; anything else is a failed hire.
    let ok = done.state == HireState::Completed && done.error.is_none();
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(super::EXIT_INVALID)
    })
}

pub(crate) fn run_hires(dir: &DataDir, json: bool) -> anyhow::Result<ExitCode> {
    let client = ApiClient::connect(dir)?;
    let all: Vec<HireRecord> = client.get("/v1/hires")?;
    if json {
        super::print_json(&all)?;
    } else if all.is_empty() {
        eprintln!("no hires yet; find an agent with `souk search` and hire it with `souk hire`");
    } else {
        for r in all {
            out!(
                "{}  {:<8} {:<15} {:<20} {:>8} {}",
                short(&r.hire_id),
                if r.role == souk_node::hire::Role::Client {
                    "client"
                } else {
                    "provider"
                },
                r.state,
                r.agent,
                format_amount(r.price),
                r.verdict.map_or("", |v| v.as_str())
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn run_receipts(dir: &DataDir, cmd: ReceiptsCommand) -> anyhow::Result<ExitCode> {
    let client = ApiClient::connect(dir)?;
    match cmd {
        ReceiptsCommand::Export {
            hire,
            output,
            disclose,
        } => {
            let id = resolve(&client, &hire)?;
            let bytes = client.get_bytes(&format!("/v1/hires/{id}/bundle?disclose={disclose}"))?;
            match output {
                Some(path) => {
                    std::fs::write(&path, &bytes)
                        .with_context(|| format!("cannot write {}", path.display()))?;
                    eprintln!(
                        "wrote {} ({} bytes); check it with `souk verify {}`",
                        path.display(),
                        bytes.len(),
                        path.display()
                    );
                }
                None => {
                    std::io::stdout()
                        .write_all(&bytes)
                        .context("cannot write to stdout")?;
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Some(90_000));
        assert_eq!(parse_duration("10m"), Some(600_000));
        assert_eq!(parse_duration("2h"), Some(7_200_000));
        assert_eq!(parse_duration("1d"), Some(86_400_000));
        assert_eq!(parse_duration("15"), Some(15_000));
        for bad in ["", "h", "1x", "-1s", "0s"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }
}
