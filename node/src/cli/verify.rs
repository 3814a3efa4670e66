//! `souk verify FILE`: offline verification of a receipt bundle.
//!
//! Prints the hire, provider, client, entry count, final state and verdict of a valid bundle,
//! or the rule that failed and the entry where it failed. Exit status 0 only when valid. The
//! signature-check mode changes speed only, never the verdict (`spec/bundle.md`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use serde_json::json;
use souk_protocol::bundle::MAX_BUNDLE_LEN;
use souk_protocol::rules::{Rule, Violation};
use souk_protocol::verify::{BundleReport, SignatureCheck, verify_bundle_bytes};

use super::{Ctx, EXIT_FAILED};

#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    /// The bundle file, as written by `souk receipts export`.
    file: PathBuf,
    /// Check the entry signatures one at a time instead of in batches: slower, same verdict
    /// (`--strict` is an older name for it).
    #[arg(long = "one-by-one", alias = "strict")]
    one_by_one: bool,
}

/// A bundle file's bytes (empty when it is too large to be one) and the verdict on it: its
/// report when valid, the first rule it breaks when not. The only place a bundle file is
/// judged (`souk verify` and `souk receipts show` both ask it); `Err` only when the file
/// cannot be read.
pub(crate) type Judged = (Vec<u8>, Result<BundleReport, Violation>);

/// Reads and judges a bundle file (see [`Judged`]).
pub(crate) fn judge_file(path: &Path, check: SignatureCheck) -> anyhow::Result<Judged> {
    let len = std::fs::metadata(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .len();
    // A readable file that is too large is an invalid bundle (B1), not an I/O error.
    if len > MAX_BUNDLE_LEN as u64 {
        let too_large = Violation::new(
            Rule::B1,
            format!("the file is {len} bytes; a bundle is at most {MAX_BUNDLE_LEN} bytes"),
        );
        return Ok((Vec::new(), Err(too_large)));
    }
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let verdict = verdict(&bytes, check);
    Ok((bytes, verdict))
}

/// The verdict on a bundle's bytes (see [`judge_file`]).
pub(crate) fn verdict(bytes: &[u8], check: SignatureCheck) -> Result<BundleReport, Violation> {
    if bytes.len() > MAX_BUNDLE_LEN {
        return Err(Violation::new(
            Rule::B1,
            format!(
                "the bundle is {} bytes; a bundle is at most {MAX_BUNDLE_LEN} bytes",
                bytes.len()
            ),
        ));
    }
    verify_bundle_bytes(bytes, check)
}

pub(crate) fn run(ctx: &Ctx, args: &VerifyArgs) -> anyhow::Result<ExitCode> {
    let check = if args.one_by_one {
        SignatureCheck::OneByOne
    } else {
        SignatureCheck::Batch
    };
    let (_, outcome) = judge_file(&args.file, check)?;
    let mode = check.as_str();
    match outcome {
        Ok(report) => {
            if ctx.json {
                out!("{}", report_json(&report, mode));
            } else {
                print_report(&report, check);
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(v) => {
            if ctx.json {
                let out = json!({
                    "valid": false,
                    "signatures": mode,
                    "rule": v.rule.code(),
                    "entry": v.entry,
                    "detail": v.detail,
                });
                out!("{out}");
            } else {
                out!("invalid: {v}");
            }
            Ok(ExitCode::from(EXIT_FAILED))
        }
    }
}

/// The JSON report of `spec/bundle.md`.
pub(crate) fn report_json(r: &BundleReport, mode: &str) -> serde_json::Value {
    json!({
        "valid": true,
        "signatures": mode,
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

/// The text report of `spec/bundle.md`: one `key: value` line each.
fn print_report(r: &BundleReport, check: SignatureCheck) {
    out!("valid: hire {}", r.hire_id);
    out!("agent: {} (manifest {})", r.agent, r.manifest_id.short());
    out!("provider: {}", r.provider);
    out!("client: {}", r.client);
    out!("entries: {}", r.entries);
    let running = if r.state.is_terminal() {
        ""
    } else {
        " (chain not finished)"
    };
    out!("state: {}{running}", r.state);
    if let Some(head) = r.head {
        out!("head: {}", head.short());
    }
    match r.verdict {
        Some(v) => out!("verdict: {v} (countersigned by the client)"),
        None => out!("verdict: none (not settled)"),
    }
    out!("disclosures: {}", r.disclosures);
    out!(
        "signatures: {}",
        match check {
            SignatureCheck::Batch => "batch (all entries)",
            SignatureCheck::OneByOne => "one-by-one (all entries)",
        }
    );
}
