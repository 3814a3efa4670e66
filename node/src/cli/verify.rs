//! `souk verify FILE`: offline verification of a receipt bundle.
//!
//! Prints the hire, provider, client, entry count, final state and verdict of a valid bundle,
//! or the rule that failed and the entry where it failed. Exit status 0 only when valid.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use serde_json::json;
use souk_protocol::bundle::MAX_BUNDLE_LEN;
use souk_protocol::verify::{BundleReport, SignatureCheck, verify_bundle_bytes};

use super::EXIT_INVALID;

#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    /// The bundle file, as written by `souk receipts export`.
    file: PathBuf,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// Check every signature one by one (the definition of validity) instead of batched.
    #[arg(long, conflicts_with = "head_only")]
    strict: bool,
    /// Check hash links and only the head's signature: fast, but weaker than full validity.
    #[arg(long)]
    head_only: bool,
}

pub(crate) fn run(args: &VerifyArgs) -> anyhow::Result<ExitCode> {
    let path = &args.file;
    let len = std::fs::metadata(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .len();
    if len > MAX_BUNDLE_LEN as u64 {
        anyhow::bail!(
            "{} is {len} bytes; bundles are at most {MAX_BUNDLE_LEN} bytes",
            path.display()
        );
    }
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let check = if args.strict {
        SignatureCheck::Strict
    } else if args.head_only {
        SignatureCheck::HeadOnly
    } else {
        SignatureCheck::Batch
    };
    let mode = match check {
        SignatureCheck::Batch => "full",
        SignatureCheck::Strict => "full-strict",
        SignatureCheck::HeadOnly => "head-only",
    };
    match verify_bundle_bytes(&bytes, check) {
        Ok(report) => {
            if args.json {
                println!("{}", report_json(&report, mode));
            } else {
                print_report(path, &report, mode);
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(v) => {
            if args.json {
                let out = json!({
                    "valid": false,
                    "file": path.display().to_string(),
                    "check": mode,
                    "rule": v.rule.code(),
                    "entry": v.entry,
                    "detail": v.detail,
                });
                println!("{out}");
            } else {
                let at = v
                    .entry
                    .map(|e| format!(" at entry {e}"))
                    .unwrap_or_default();
                println!("INVALID  {}", path.display());
                println!("  rule {}{at}: {}", v.rule.code(), v.detail);
                println!("  (rules are numbered in spec/receipts.md)");
            }
            Ok(ExitCode::from(EXIT_INVALID))
        }
    }
}

fn report_json(r: &BundleReport, mode: &str) -> serde_json::Value {
    json!({
        "valid": true,
        "check": mode,
        "hire_id": r.hire_id.to_hex(),
        "manifest_id": r.manifest_id.to_hex(),
        "agent": r.agent,
        "provider": r.provider.to_string(),
        "client": r.client.to_string(),
        "entries": r.entries,
        "state": r.state.as_str(),
        "head": r.head.map(|h| h.to_hex()),
        "verdict": r.verdict.map(|v| v.as_str()),
        "disclosures": r.disclosures,
    })
}

fn print_report(path: &std::path::Path, r: &BundleReport, mode: &str) {
    println!("VALID  {}  ({mode} check)", path.display());
    println!("  hire      {}", r.hire_id);
    println!(
        "  agent     {} (manifest {})",
        r.agent,
        r.manifest_id.short()
    );
    println!("  provider  {}", r.provider);
    println!("  client    {}", r.client);
    println!("  entries   {}", r.entries);
    let ended = if r.state.is_terminal() {
        ""
    } else {
        " (chain not finished)"
    };
    println!("  state     {}{ended}", r.state);
    match r.verdict {
        Some(v) => println!("  verdict   {v} (countersigned by the client)"),
        None => println!("  verdict   none (not settled)"),
    }
    if r.disclosures > 0 {
        println!(
            "  disclosed {} payload(s), each opens its commitment",
            r.disclosures
        );
    }
}
