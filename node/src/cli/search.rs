//! `souk search [QUERY]`: find agents by capability, text and price.

use std::process::ExitCode;

use clap::Args;
use souk_node::agent_file::parse_amount;
use souk_node::service::SearchHit;

use super::Ctx;
use super::error::usage;
use super::units::money;

#[derive(Debug, Args)]
pub(crate) struct SearchArgs {
    /// Free text over agent names and descriptions.
    query: Vec<String>,
    /// Required capability tag; repeatable.
    #[arg(long = "capability", value_name = "TAG")]
    capability: Vec<String>,
    /// Highest price per hire (decimal, e.g. 2.50).
    #[arg(long, value_name = "N")]
    max_price: Option<String>,
    /// Most results.
    #[arg(long, default_value_t = 20)]
    limit: u32,
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub(crate) fn run(ctx: &Ctx, args: &SearchArgs) -> anyhow::Result<ExitCode> {
    let mut query = format!("/v1/search?limit={}", args.limit);
    let text = args.query.join(" ");
    if !text.is_empty() {
        query.push_str(&format!("&q={}", encode(&text)));
    }
    if !args.capability.is_empty() {
        query.push_str(&format!(
            "&capabilities={}",
            encode(&args.capability.join(","))
        ));
    }
    if let Some(p) = &args.max_price {
        if parse_amount(p).is_none() {
            return Err(usage!(
                "--max-price {p:?} is not a decimal amount (e.g. 2.50)"
            ));
        }
        query.push_str(&format!("&max_price={}", encode(p)));
    }
    let hits: Vec<SearchHit> = ctx.connect()?.get(&query)?;
    if ctx.json {
        super::print_json(&hits)?;
        return Ok(ExitCode::SUCCESS);
    }
    if hits.is_empty() {
        eprintln!("no agents found");
    }
    for h in &hits {
        let hourly = if h.per_hour > 0 {
            format!(" + {}/h", money(h.per_hour, &h.currency))
        } else {
            String::new()
        };
        out!(
            "{}  {:<24} {:>12}{hourly}  {}",
            &h.id[..16],
            h.name,
            money(h.per_hire, &h.currency),
            h.capabilities.join(",")
        );
        out!(
            "    {}",
            h.description.chars().take(100).collect::<String>()
        );
    }
    Ok(ExitCode::SUCCESS)
}
