//! `souk node events`: the running node's event stream (`GET /v1/events`), one line per
//! event: raw JSON with `--json`, else a short readable line with the UTC time of day.

use std::io::{BufRead, Write};
use std::process::ExitCode;

use anyhow::Context;
use serde_json::Value;

use super::ctx::Ctx;

pub(crate) fn run(ctx: &Ctx, types: &Option<String>, json: bool) -> anyhow::Result<ExitCode> {
    let client = ctx.connect()?;
    let reader = client.events(types.as_deref())?;
    let stdout = std::io::stdout();
    for line in reader.lines() {
        let line = line.context("the node's event stream broke off")?;
        if line.trim().is_empty() {
            continue;
        }
        let mut out = stdout.lock();
        let written = if json {
            writeln!(out, "{line}")
        } else {
            match serde_json::from_str::<Value>(&line) {
                Ok(v) if v["type"] == "heartbeat" => continue,
                Ok(v) => writeln!(out, "{}", human(&v)),
                Err(_) => writeln!(out, "{line}"),
            }
        };
        // A closed pipe (`| head`) ends the command quietly.
        if written.and_then(|()| out.flush()).is_err() {
            return Ok(ExitCode::SUCCESS);
        }
    }
    if !json {
        eprintln!("the node stopped");
    }
    Ok(ExitCode::SUCCESS)
}

/// `12:04:05.123  manifest_admitted  9f3c4e1a via gossip from 12D3KooW…`
fn human(v: &Value) -> String {
    let at = v["at_ms"].as_u64().unwrap_or(0);
    let day_ms = at % 86_400_000;
    let time = format!(
        "{:02}:{:02}:{:02}.{:03}",
        day_ms / 3_600_000,
        day_ms / 60_000 % 60,
        day_ms / 1000 % 60,
        day_ms % 1000
    );
    let s = |k: &str| v[k].as_str().unwrap_or("").to_owned();
    let short = |k: &str| {
        let full = s(k);
        full.chars().take(12).collect::<String>()
    };
    let kind = s("type");
    let detail = match kind.as_str() {
        "subscribed" => format!("to node {}", s("node_id")),
        "manifest_admitted" => format!("{} via {}", short("id"), s("via")),
        "manifest_rejected" => format!("via {} from {}: {}", s("via"), short("from"), s("reason")),
        "peer_connected" => format!("{} at {}", short("peer"), s("address")),
        "peer_disconnected" | "peer_pruned" | "peer_banned" => short("peer"),
        "hire_transition" => format!(
            "{} ({} of {}) {}{} ({} entries)",
            short("hire_id"),
            s("role"),
            s("agent"),
            v["from"]
                .as_str()
                .map_or_else(String::new, |f| format!("{f} -> ")),
            s("to"),
            v["entries"].as_u64().unwrap_or(0)
        ),
        "receipt_appended" | "receipt_verified" => format!(
            "{} now {} entries",
            short("hire_id"),
            v["entries"].as_u64().unwrap_or(0)
        ),
        "hire_settled" => format!("{} ({}) {}", short("hire_id"), s("role"), s("verdict")),
        "outcome_admitted" => format!("hire {} via {}", short("hire_id"), s("via")),
        "provider_flagged" => format!("{} via {}", s("provider"), s("via")),
        "lagged" => format!(
            "missed {} events (reading too slowly)",
            v["missed"].as_u64().unwrap_or(0)
        ),
        _ => String::new(),
    };
    format!("{time}  {kind:<18} {detail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transition_reads_as_one_short_line() {
        let v = serde_json::json!({
            "at_ms": 3_723_004u64, "type": "hire_transition", "hire_id": "ab12cd34ef56aa77",
            "role": "client", "agent": "csv", "from": "working", "to": "completed", "entries": 9
        });
        assert_eq!(
            human(&v),
            "01:02:03.004  hire_transition    ab12cd34ef56 (client of csv) working -> completed (9 entries)"
        );
    }
}
