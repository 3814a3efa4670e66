//! `souk agent publish|list|retire`: the agents this node offers; `souk agent show`: the card
//! of any agent this node knows (its own catalog, or what a light node's searches returned);
//! `souk agent new|check`: write an agent skeleton, validate an agent file without a node.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use souk_node::agent_file::AgentSpec;
use souk_node::agent_ref::AgentRef;
use souk_node::api::AgentSummary;
use souk_node::service::Published;

use super::Ctx;
use super::error::{failed, usage};
use super::units::{format_duration_ms, money};
use souk_node::card::AgentCard;

#[derive(Debug, Subcommand)]
pub(crate) enum AgentCommand {
    /// Sign an agent's manifest from its agent.toml and announce it. Republishing bumps seq.
    Publish {
        /// The agent file (see examples/csv-analyst/agent.toml).
        #[arg(required_unless_present = "a2a")]
        file: Option<PathBuf>,
        /// Offer an existing A2A agent instead: its agent card (an http:// URL or a file). The
        /// package (agent.toml and the SDK's A2A bridge) is written to --dir.
        #[arg(long, value_name = "CARD", conflicts_with = "file")]
        a2a: Option<String>,
        /// With --a2a: the agent's name [default: made from the card's name].
        #[arg(long, requires = "a2a")]
        name: Option<String>,
        /// With --a2a: the price per hire (decimal).
        #[arg(long, requires = "a2a", default_value = "0")]
        price: String,
        /// With --a2a: the currency of the price.
        #[arg(long, requires = "a2a", default_value = "USD")]
        currency: String,
        /// With --a2a: where to write the package [default: ./NAME]. Outside the data dir:
        /// the agent's sandbox sees its package.
        #[arg(long, requires = "a2a", value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// List the agents this node publishes.
    List,
    /// Stop offering an agent: announce a final, short-lived manifest and forget it.
    Retire {
        /// Agent name.
        name: String,
    },
    /// Write a working agent skeleton: agent.toml, schemas, an example input and the program
    /// (Python on the souk-agent SDK, or Rust).
    New {
        /// The agent's name (lowercase letters, digits and '-').
        name: String,
        /// The language of the program.
        #[arg(long, value_enum, default_value_t = super::scaffold::Lang::Python)]
        lang: super::scaffold::Lang,
        /// Where to write it [default: ./NAME].
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Run an agent exactly as a hire would (this node's key, sandbox, proxy and limits) with
    /// no network and no client: prints its steps live and its output; `-o FILE` writes the
    /// run's receipt bundle, which `souk verify` accepts.
    Run(super::agent_run::RunArgs),
    /// Validate an agent file without a node: the TOML, the schemas, the manifest rules, the
    /// command, and the runtime digest of the package it would publish.
    Check {
        /// The agent file.
        file: PathBuf,
    },
    /// Show an agent's card: description, capabilities, schemas, pricing, limits, hosts,
    /// credential slots, provider and liveness (`--json`: the API's card).
    Show {
        /// The agent: its handle `<node id>/<name>` (the node id may be a prefix of at least 8
        /// characters after `souk`), its manifest id, or a unique prefix of the id of at least 8
        /// hex digits (as `souk search` prints).
        #[arg(value_name = "AGENT")]
        agent: String,
    },
}

pub(crate) fn run(ctx: &Ctx, cmd: AgentCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        AgentCommand::Publish {
            file,
            a2a,
            name,
            price,
            currency,
            dir,
        } => {
            let file = match (file, a2a) {
                (_, Some(card)) => super::a2a_offer::write_package(
                    &card,
                    name.as_deref(),
                    &price,
                    &currency,
                    dir.as_deref(),
                )?,
                (Some(file), None) => file,
                (None, None) => return Err(usage!("give an agent file, or --a2a CARD")),
            };
            let spec = AgentSpec::load(&file).context("cannot publish the agent")?;
            check_paths(ctx, &spec).map_err(|e| failed!("cannot publish the agent: {e}"))?;
            let client = ctx.connect()?;
            let p: Published = client.post("/v1/agents", &spec)?;
            if ctx.json {
                super::print_json(&p)?;
            } else {
                out!("{}", p.manifest_id);
                eprintln!("published {} (seq {})", p.name, p.seq);
            }
        }
        AgentCommand::List => {
            let agents: Vec<AgentSummary> = ctx.connect()?.get("/v1/agents")?;
            if ctx.json {
                super::print_json(&agents)?;
            } else if agents.is_empty() {
                eprintln!("no agents published; see `souk agent publish --help`");
            } else {
                for a in agents {
                    out!(
                        "{:<24} seq {:<5} {:<12} {}  {}",
                        a.name,
                        a.seq,
                        money(a.per_hire, &a.currency),
                        &a.manifest_id[..16],
                        a.capabilities.join(",")
                    );
                }
            }
        }
        AgentCommand::Show { agent } => {
            let path = match agent.parse::<AgentRef>() {
                Ok(AgentRef::Handle { provider, name }) => format!("/v1/agents/{provider}/{name}"),
                Ok(r) => format!("/v1/agents/{r}"),
                Err(e) => return Err(usage!("{e}")),
            };
            let card: AgentCard = ctx.connect()?.get(&path)?;
            if ctx.json {
                super::print_json(&card)?;
            } else {
                print_card(&card, souk_node::now_ms());
            }
        }
        AgentCommand::New { name, lang, dir } => {
            souk_node::agent_file::check_agent_name(&name).map_err(|e| usage!("{e}"))?;
            let dir = dir.unwrap_or_else(|| PathBuf::from(&name));
            let w = super::scaffold::write(&dir, &name, lang)?;
            let toml = w.dir.join("agent.toml");
            let build = match lang {
                super::scaffold::Lang::Python => None,
                // Cargo reads `.cargo/config.toml` from the current directory, not the
                // manifest's: name the target directory explicitly.
                super::scaffold::Lang::Rust => Some(format!(
                    "cargo build --release --manifest-path {} --target-dir {}",
                    w.dir.join("Cargo.toml").display(),
                    w.dir.join(".target").display()
                )),
            };
            let try_it = ctx.cmd(&format!(
                "agent run {} --input {}",
                toml.display(),
                w.dir.join("example.json").display()
            ));
            if ctx.json {
                super::print_json(&serde_json::json!({
                    "name": name,
                    "dir": w.dir.display().to_string(),
                    "files": w.files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>(),
                    "build": build,
                    "run": try_it,
                }))?;
            } else {
                out!("{}", w.dir.display());
                eprintln!("wrote {} ({} files)", name, w.files.len());
                if let Some(b) = &build {
                    eprintln!("  build it:   {b}");
                }
                eprintln!(
                    "  check it:   {}",
                    ctx.cmd(&format!("agent check {}", toml.display()))
                );
                eprintln!("  try it:     {try_it}");
                eprintln!(
                    "  publish it: {}",
                    ctx.cmd(&format!("agent publish {}", toml.display()))
                );
            }
        }
        AgentCommand::Run(args) => return super::agent_run::run(ctx, args),
        AgentCommand::Check { file } => {
            let spec = AgentSpec::load(&file)
                .map_err(|e| failed!("{} is not a valid agent file: {e}", file.display()))?;
            check_paths(ctx, &spec)
                .map_err(|e| failed!("{} is not a valid agent file: {e}", file.display()))?;
            if ctx.json {
                super::print_json(&serde_json::json!({
                    "valid": true,
                    "name": spec.name,
                    "runtime_digest": spec.runtime_digest,
                    "package": spec.run.package_dir().display().to_string(),
                    "include": spec.run.include.iter().map(|d| d.display().to_string()).collect::<Vec<_>>(),
                    "command": spec.run.command,
                    "capabilities": spec.capabilities,
                    "hosts": spec.hosts,
                    "credentials": spec.credentials.iter().map(|c| c.name.clone()).collect::<Vec<_>>(),
                    "price_per_hire": souk_node::agent_file::format_amount(spec.per_hire),
                    "currency": spec.currency,
                }))?;
            } else {
                out!("{} is a valid agent file", file.display());
                out!("  agent           {}", spec.name);
                out!("  runtime digest  {}", spec.runtime_digest);
                out!("  package         {}", spec.run.package_dir().display());
                for d in &spec.run.include {
                    out!("  include         {}", d.display());
                }
                out!("  command         {}", spec.run.command.join(" "));
                out!(
                    "  price           {} per hire",
                    money(spec.per_hire, &spec.currency)
                );
                if !spec.hosts.is_empty() {
                    out!("  hosts           {}", spec.hosts.join(", "));
                }
            }
        }
        AgentCommand::Retire { name } => {
            // A name that cannot be an agent's (e.g. a path) is a usage error, not a 404.
            souk_node::agent_file::check_agent_name(&name).map_err(|e| usage!("{e}"))?;
            let out: serde_json::Value = ctx.connect()?.delete(&format!("/v1/agents/{name}"))?;
            if ctx.json {
                super::print_json(&out)?;
            } else {
                eprintln!("retired {name}: it leaves other nodes' search within a minute");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The directories the agent's sandbox would show it must keep clear of this node's data
/// and work directories (the node checks again before every run).
fn check_paths(ctx: &Ctx, spec: &AgentSpec) -> Result<(), String> {
    let mut protected =
        vec![std::path::absolute(ctx.dir.root()).unwrap_or_else(|_| ctx.dir.root().to_owned())];
    if let Ok(config) = ctx.dir.config() {
        protected.push(super::node::work_dir(&ctx.dir, &config));
    }
    souk_node::agent_file::check_run_paths(&spec.run, &protected)
}

/// Bytes for people: `512 MiB`, `1 KiB`, `300 B`.
fn size(bytes: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    for (unit, name) in UNITS {
        if bytes >= unit && bytes.is_multiple_of(unit) {
            return format!("{} {name}", bytes / unit);
        }
    }
    format!("{bytes} B")
}

fn rfc3339(ms: u64) -> String {
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms))
        .to_string()
}

fn print_card(c: &AgentCard, now_ms: u64) {
    out!("agent         {} (seq {})", c.name, c.seq);
    out!("handle        {}", c.handle);
    out!("manifest      {}", c.id);
    out!("provider      {}", c.provider);
    out!("description   {}", c.description);
    out!("capabilities  {}", c.capabilities.join(", "));
    let hourly = if c.pricing.per_hour > 0 {
        format!(
            " + {} per started hour",
            money(c.pricing.per_hour, &c.pricing.currency)
        )
    } else {
        String::new()
    };
    out!(
        "price         {} per hire{hourly} (advisory: you pay the price agreed in the contract)",
        money(c.pricing.per_hire, &c.pricing.currency)
    );
    let l = &c.limits;
    let mut limits = vec![
        format!("runs at most {}", format_duration_ms(l.max_duration_ms)),
        format!("{} at once", l.max_concurrency),
        format!("input up to {}", size(l.max_input_bytes)),
    ];
    if l.memory_bytes > 0 {
        limits.push(format!("memory {}", size(l.memory_bytes)));
    }
    if l.max_processes > 0 {
        limits.push(format!("{} processes", l.max_processes));
    }
    limits.push(format!("isolation {}", l.isolation));
    out!("limits        {}", limits.join(", "));
    out!(
        "hosts         {}",
        if c.hosts.is_empty() {
            "none (no network)".to_owned()
        } else {
            c.hosts.join(", ")
        }
    );
    if c.credentials.is_empty() {
        out!("credentials   none");
    }
    for (i, cr) in c.credentials.iter().enumerate() {
        out!(
            "{}{} for {} ({})",
            if i == 0 {
                "credentials   "
            } else {
                "              "
            },
            cr.name,
            cr.hosts.join(", "),
            cr.injection
        );
    }
    for (i, t) in c.tools.iter().enumerate() {
        out!(
            "{}{}: {}",
            if i == 0 {
                "tools         "
            } else {
                "              "
            },
            t.name,
            t.description
        );
    }
    let liveness = if c.expires_at > now_ms {
        format!(
            "announced {}, offered until {} (in {})",
            rfc3339(c.issued_at),
            rfc3339(c.expires_at),
            format_duration_ms(c.expires_at - now_ms)
        )
    } else {
        format!("expired at {} (no longer offered)", rfc3339(c.expires_at))
    };
    out!("liveness      {liveness}");
    if let Some(f) = &c.flagged {
        out!("FLAGGED       {}", f.reason);
        out!(
            "              proof: entries {} and {}",
            &f.entries[0][..16],
            &f.entries[1][..16]
        );
    }
    match &c.reputation {
        None => out!("reputation    unknown (no full node answered for its outcome records)"),
        Some(r) => {
            out!("reputation    {}", reputation_line(&r.figures));
            out!("  provider    {}", reputation_line(&r.provider));
            for (i, o) in r.last.iter().enumerate() {
                let reason = if o.reason.is_empty() {
                    String::new()
                } else {
                    format!(": {}", o.reason.chars().take(60).collect::<String>())
                };
                out!(
                    "{}hire {}  {} {}, {} by {}{reason}",
                    if i == 0 {
                        "  last        "
                    } else {
                        "              "
                    },
                    &o.hire_id[..16],
                    rfc3339(o.settled_at),
                    o.end,
                    o.verdict,
                    o.client.get(..16).unwrap_or(&o.client),
                );
            }
        }
    }
    let pretty =
        |v: &serde_json::Value| serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string());
    out!("input schema:");
    for line in pretty(&c.input_schema).lines() {
        out!("  {line}");
    }
    out!("output schema:");
    for line in pretty(&c.output_schema).lines() {
        out!("  {line}");
    }
}

/// `verified success >= 0.62 (55 of 75 votes), 77 settled: 70 accepted, 7 rejected, 52
/// clients, last 2026-12-04T10:00:00Z`.
pub(crate) fn reputation_line(f: &souk_reputation::Figures) -> String {
    if f.settled == 0 {
        return "no settled hires yet".into();
    }
    let last = f
        .last_settled_at_ms
        .map(|t| format!(", last {}", rfc3339(t)))
        .unwrap_or_default();
    format!(
        "verified success >= {:.2} ({} of {} votes), {} settled: {} accepted, {} rejected, {} client{}{last}",
        f.success_lower_bound,
        f.successes,
        f.counted,
        f.settled,
        f.accepted,
        f.rejected,
        f.distinct_clients,
        if f.distinct_clients == 1 { "" } else { "s" },
    )
}

#[cfg(test)]
mod tests {
    use super::size;

    #[test]
    fn sizes() {
        assert_eq!(size(512 << 20), "512 MiB");
        assert_eq!(size(1 << 10), "1 KiB");
        assert_eq!(size(1500), "1500 B");
        assert_eq!(size(2 << 30), "2 GiB");
    }
}
