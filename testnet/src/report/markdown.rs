//! `report.md`: the run's outcome for a person. Scenario and seed, PASS or FAIL, the
//! assertions, the key figures, the nodes, the faults timeline, and the plots as images.
//!
//! Text only: it takes the run data, its summary and the plots' file names, and returns
//! the Markdown; writing it is `report::write`'s job.

use std::fmt::Write as _;
use std::time::{Duration, UNIX_EPOCH};

use super::data::RunData;
use super::plot::PlotKind;
use super::stats::{self, Percentiles, Summary};

/// Tables longer than this (nodes of a large network, faults of a crash test) are cut.
const MAX_ROWS: usize = 50;

/// The Markdown report of a run, linking `report.json` and the `plots` (files in the same
/// directory).
pub(crate) fn render(run: &RunData, summary: &Summary, plots: &[PlotKind]) -> String {
    let mut md = String::new();
    // Writing into a String cannot fail.
    let _ = write_report(&mut md, run, summary, plots);
    md
}

fn write_report(
    md: &mut String,
    run: &RunData,
    summary: &Summary,
    plots: &[PlotKind],
) -> std::fmt::Result {
    writeln!(
        md,
        "# Scenario `{}`, seed {}",
        one_line(&run.scenario),
        run.seed
    )?;
    writeln!(md)?;
    let total = summary.assertions_passed + summary.assertions_failed;
    if total == 0 {
        writeln!(md, "**PASS**: the scenario has no assertions.")?;
    } else if summary.passed {
        writeln!(
            md,
            "**PASS**: {} of {total} assertions held.",
            summary.assertions_passed
        )?;
    } else {
        writeln!(
            md,
            "**FAIL**: {} of {total} assertions did not hold.",
            summary.assertions_failed
        )?;
    }
    writeln!(md)?;
    let started = UNIX_EPOCH + Duration::from_millis(run.started_unix_ms);
    let mode = if run.mode.is_empty() {
        String::new()
    } else {
        format!(" ({} mode)", one_line(&run.mode))
    };
    writeln!(
        md,
        "Started {} UTC, ran {}{mode}. Raw data and figures: [report.json](report.json).",
        humantime::format_rfc3339_seconds(started)
            .to_string()
            .trim_end_matches('Z')
            .replace('T', " "),
        format_ms(run.duration_ms),
    )?;

    writeln!(md, "\n## Assertions\n")?;
    if run.assertions.is_empty() {
        writeln!(md, "The scenario has no assertions.")?;
    } else {
        writeln!(md, "| assertion | expected | observed | held |")?;
        writeln!(md, "| --- | --- | --- | :---: |")?;
        for a in &run.assertions {
            writeln!(
                md,
                "| {} | {} | {} | {} |",
                cell(&a.name),
                cell(&a.expected),
                cell(&a.observed),
                if a.passed { "✓" } else { "✗" }
            )?;
        }
    }

    writeln!(md, "\n## Key figures\n")?;
    writeln!(md, "| figure | value |")?;
    writeln!(md, "| --- | --- |")?;
    writeln!(
        md,
        "| nodes | {} ({} full, {} light) |",
        summary.nodes, summary.full_nodes, summary.light_nodes
    )?;
    writeln!(md, "| duration | {} |", format_ms(summary.duration_ms))?;
    writeln!(
        md,
        "| kills / restarts | {} / {} |",
        summary.kills, summary.restarts
    )?;
    let faults: Vec<String> = summary
        .faults
        .iter()
        .map(|(kind, n)| format!("{} {n}", cell(kind)))
        .collect();
    writeln!(md, "| faults | {} |", list_or_none(&faults))?;
    writeln!(md, "| manifests published | {} |", summary.manifests)?;
    let ratio = match summary.delivery_ratio {
        Some(r) => format!(
            "{} ({} deliveries, {} due)",
            percent(r),
            summary.deliveries,
            summary.expected_deliveries
        ),
        None => "none due".to_string(),
    };
    writeln!(md, "| delivery ratio | {ratio} |")?;
    writeln!(
        md,
        "| propagation latency | {} |",
        percentiles(summary.propagation_ms, "deliveries")
    )?;
    let mut outcomes: Vec<(&String, &u32)> = summary.hire_outcomes.iter().collect();
    outcomes.sort_by_key(|(outcome, _)| stats::outcome_rank(outcome));
    let outcomes: Vec<String> = outcomes
        .into_iter()
        .map(|(outcome, n)| format!("{} {n}", cell(outcome)))
        .collect();
    writeln!(
        md,
        "| hires | {}: {} |",
        summary.hires,
        list_or_none(&outcomes)
    )?;
    let checked = summary.chains_verified + summary.chains_not_verified;
    writeln!(
        md,
        "| chains verified | {} of {checked} checked |",
        summary.chains_verified
    )?;
    writeln!(
        md,
        "| completed hire duration | {} |",
        percentiles(summary.completed_hire_ms, "hires")
    )?;
    if !run.notes.is_empty() {
        writeln!(md, "\n## Notes\n")?;
        for note in &run.notes {
            writeln!(md, "- {note}")?;
        }
    }

    writeln!(md, "\n## Nodes\n")?;
    if summary.node_resources.is_empty() {
        writeln!(md, "No node.")?;
    } else {
        writeln!(
            md,
            "| node | mode | kills | restarts | peak RSS | CPU time | peak CPU | max peers |"
        )?;
        writeln!(
            md,
            "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
        )?;
        for r in summary.node_resources.iter().take(MAX_ROWS) {
            let node = run.nodes.iter().find(|n| n.name == r.node);
            writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} | {} | {} |",
                cell(&r.node),
                node.map_or("?".into(), |n| cell(&n.mode)),
                node.map_or(0, |n| n.kills),
                node.map_or(0, |n| n.restarts),
                r.peak_rss_bytes.map_or("–".into(), |b| format!(
                    "{:.1} MiB",
                    b as f64 / (1024.0 * 1024.0)
                )),
                r.cpu_seconds.map_or("–".into(), |s| format!("{s:.2} s")),
                r.peak_cpu_percent
                    .map_or("–".into(), |p| format!("{p:.0}%")),
                r.max_peers.map_or("–".into(), |p| p.to_string()),
            )?;
        }
        more_rows(md, summary.node_resources.len(), "nodes")?;
    }

    writeln!(md, "\n## Faults\n")?;
    if run.faults.is_empty() {
        writeln!(md, "No fault was injected.")?;
    } else {
        writeln!(md, "| time | kind | target | detail |")?;
        writeln!(md, "| ---: | --- | --- | --- |")?;
        let mut faults: Vec<_> = run.faults.iter().collect();
        faults.sort_by_key(|f| f.at_ms);
        for f in faults.iter().take(MAX_ROWS) {
            writeln!(
                md,
                "| {:.3} s | {} | {} | {} |",
                f.at_ms as f64 / 1000.0,
                cell(&f.kind),
                cell(&f.target),
                f.detail.as_deref().map_or(String::new(), cell)
            )?;
        }
        more_rows(md, faults.len(), "faults")?;
    }

    writeln!(md, "\n## Plots\n")?;
    writeln!(
        md,
        "Faults are marked on every time axis as dashed lines, one colour per kind."
    )?;
    for plot in plots {
        writeln!(md, "\n![{}]({})", plot.name(), plot.file_name())?;
    }
    Ok(())
}

/// After a table cut at [`MAX_ROWS`], says how many rows were left out.
fn more_rows(md: &mut String, rows: usize, what: &str) -> std::fmt::Result {
    if rows > MAX_ROWS {
        writeln!(
            md,
            "\nThe first {MAX_ROWS} of {rows} {what}; all are in report.json."
        )?;
    }
    Ok(())
}

/// Text made safe for a table cell: no line breaks, pipes escaped.
fn cell(text: &str) -> String {
    one_line(text).replace('|', "\\|")
}

fn one_line(text: &str) -> String {
    text.replace(['\r', '\n'], " ")
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_string()
    } else {
        items.join(", ")
    }
}

fn percent(ratio: f64) -> String {
    format!("{:.1}%", ratio * 100.0)
}

fn percentiles(p: Option<Percentiles>, of: &str) -> String {
    match p {
        Some(p) => format!(
            "p50 {} ms, p90 {} ms, p99 {} ms, max {} ms ({} {of}; nearest rank)",
            p.p50, p.p90, p.p99, p.max, p.count
        ),
        None => "–".to_string(),
    }
}

/// A duration for people: `850 ms`, `62.4 s`, `12 min 5 s`.
fn format_ms(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms < 600_000 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else {
        format!("{} min {} s", ms / 60_000, (ms % 60_000) / 1000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_and_durations() {
        assert_eq!(cell("a|b\nc"), "a\\|b c");
        assert_eq!(format_ms(850), "850 ms");
        assert_eq!(format_ms(62_400), "62.4 s");
        assert_eq!(format_ms(725_000), "12 min 5 s");
        assert_eq!(percent(0.995), "99.5%");
    }
}
