//! `souk search [QUERY]`: find agents by text (whole words, prefixes and inner parts of
//! words), capability, provider and price. Ranking is the node's (`crates/index/README.md`).

use std::process::ExitCode;

use clap::Args;
use souk_node::agent_file::parse_amount;
use souk_node::api::client::query_encode;
use souk_node::service::SearchHit;

use super::Ctx;
use super::error::usage;
use super::units::money;

#[derive(Debug, Args)]
pub(crate) struct SearchArgs {
    /// Free text over agent names and descriptions; a word also finds the words it starts
    /// or occurs in (`summar` finds "Summarizes"), ranked below exact matches.
    query: Vec<String>,
    /// Required capability tag; repeatable.
    #[arg(long = "capability", value_name = "TAG")]
    capability: Vec<String>,
    /// Only this provider: its node id, or a prefix of at least 8 characters after `souk`
    /// (the `souk` may be left out).
    #[arg(long, value_name = "NODEID")]
    provider: Option<String>,
    /// Highest price per hire (decimal, e.g. 2.50).
    #[arg(long, value_name = "N")]
    max_price: Option<String>,
    /// Most results.
    #[arg(long, default_value_t = 20)]
    limit: u32,
    /// Only agents whose verified success rate is at least this, as its lower confidence
    /// bound (0 to 1, e.g. 0.8): agents without settled hires are left out.
    #[arg(long, value_name = "RATE")]
    min_success: Option<f64>,
    /// Also show agents of providers flagged for equivocating (hidden by default).
    #[arg(long)]
    include_flagged: bool,
}

/// Fewest base32 characters of a node id prefix after `souk`.
const MIN_PROVIDER_PREFIX: usize = 8;

/// A `--provider` value as the node id prefix the node filters on: lowercased, `souk`
/// added when left out; refused unless it can be (a prefix of) a node id.
fn provider_prefix(arg: &str) -> anyhow::Result<String> {
    let lower = arg.trim().to_ascii_lowercase();
    let body = lower.strip_prefix("souk").unwrap_or(&lower);
    let node_id_chars = |c: char| matches!(c, 'a'..='z' | '2'..='7');
    if body.len() < MIN_PROVIDER_PREFIX || body.len() > 52 || !body.chars().all(node_id_chars) {
        return Err(usage!(
            "--provider {arg:?} is not a node id or a prefix of one (souk followed by at least \
             {MIN_PROVIDER_PREFIX} of its base32 characters a-z, 2-7)"
        ));
    }
    Ok(format!("souk{body}"))
}

pub(crate) fn run(ctx: &Ctx, args: &SearchArgs) -> anyhow::Result<ExitCode> {
    let mut query = format!("/v1/search?limit={}", args.limit);
    let text = args.query.join(" ");
    if !text.is_empty() {
        query.push_str(&format!("&q={}", query_encode(&text)));
    }
    if !args.capability.is_empty() {
        query.push_str(&format!(
            "&capabilities={}",
            query_encode(&args.capability.join(","))
        ));
    }
    if let Some(p) = &args.provider {
        query.push_str(&format!("&provider={}", query_encode(&provider_prefix(p)?)));
    }
    if let Some(m) = args.min_success {
        if !(0.0..=1.0).contains(&m) {
            return Err(usage!(
                "--min-success {m} is not a success rate between 0 and 1 (e.g. 0.8)"
            ));
        }
        query.push_str(&format!("&min_success={m}"));
    }
    if args.include_flagged {
        query.push_str("&include_flagged=true");
    }
    if let Some(p) = &args.max_price {
        if parse_amount(p).is_none() {
            return Err(usage!(
                "--max-price {p:?} is not a decimal amount (e.g. 2.50)"
            ));
        }
        query.push_str(&format!("&max_price={}", query_encode(p)));
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
        // A short handle (the node id cut to 12 characters after `souk`) and a 16-digit id
        // prefix: both are accepted by `souk hire` and `souk agent show`.
        let handle = format!("{}/{}", h.provider.get(..16).unwrap_or(&h.provider), h.name);
        let rep = match &h.reputation {
            Some(r) if r.settled > 0 => format!(
                "success >= {:.2} ({} settled, {} client{})",
                r.success_lower_bound,
                r.settled,
                r.distinct_clients,
                if r.distinct_clients == 1 { "" } else { "s" }
            ),
            Some(_) => "no settled hires".into(),
            None => "reputation unknown".into(),
        };
        let flag = if h.flagged {
            "  FLAGGED (equivocated)"
        } else {
            ""
        };
        out!(
            "{handle:<40} {:>12}{hourly}  {rep}  {}{flag}",
            money(h.per_hire, &h.currency),
            h.capabilities.join(",")
        );
        out!(
            "    id {}  {}",
            &h.id[..16],
            h.description.chars().take(90).collect::<String>()
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_prefixes() {
        let full = format!("souk{}", "a".repeat(52));
        assert_eq!(provider_prefix(&full).ok(), Some(full.clone()));
        assert_eq!(
            provider_prefix("ABCDEFG2").ok().as_deref(),
            Some("soukabcdefg2")
        );
        assert_eq!(
            provider_prefix("soukabcdefg2").ok().as_deref(),
            Some("soukabcdefg2")
        );
        for bad in [
            "souk",
            "soukabc",
            "abcdefg1",
            &format!("{full}a"),
            "souk abcdefgh",
        ] {
            assert!(provider_prefix(bad).is_err(), "{bad}");
        }
    }
}
