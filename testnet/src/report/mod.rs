//! The report of a scenario run (`souk-testnet run … --out DIR`): `report.json` (the
//! [`Summary`] beside the raw [`RunData`]), one SVG plot per figure, and `report.md`
//! linking them.
//!
//! - `data`: the run record the scenario runner fills in (`report::data::RunData`).
//! - `stats`: figures derived from it (percentiles, delivery ratio, outcome counts, series).
//! - `plot`: the SVG plots.
//! - `markdown`: the text of `report.md`.
//!
//! This module only turns a finished run into files; it never runs, measures or changes a
//! network.

pub(crate) mod data;
mod markdown;
pub(crate) mod plot;
pub(crate) mod stats;

use std::path::{Path, PathBuf};

use serde::Serialize;

use data::RunData;
use plot::PlotKind;
use stats::Summary;

/// The name of the JSON report in the output directory.
pub(crate) const JSON_FILE: &str = "report.json";
/// The name of the Markdown report in the output directory.
pub(crate) const MARKDOWN_FILE: &str = "report.md";

/// Why a report could not be written.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReportError {
    /// A file or the directory could not be created or written.
    #[error("cannot write {}: {cause}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error (part of the message; not repeated as a source).
        cause: std::io::Error,
    },
    /// A plot could not be drawn.
    #[error("cannot draw {}: {cause}", path.display())]
    Plot {
        /// The plot's file.
        path: PathBuf,
        /// What plotters reported (part of the message; not repeated as a source).
        cause: plot::DrawError,
    },
    /// The run data could not be encoded as JSON (a float that is not finite).
    #[error("cannot encode {}: {cause}", path.display())]
    Json {
        /// The JSON file.
        path: PathBuf,
        /// The encoder's error (part of the message; not repeated as a source).
        cause: serde_json::Error,
    },
}

/// The files a report consists of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ReportFiles {
    /// `report.json`: `{ "summary": …, "run": … }`.
    pub(crate) json: PathBuf,
    /// `report.md`.
    pub(crate) markdown: PathBuf,
    /// The SVG plots, in the order of [`PlotKind::ALL`].
    pub(crate) plots: Vec<PathBuf>,
}

/// What `report.json` holds.
#[derive(Serialize)]
struct JsonReport<'a> {
    summary: &'a Summary,
    run: &'a RunData,
}

/// Writes the report of `run` into `dir` (created if missing; files of the same names are
/// replaced): `report.json`, the plots and `report.md`.
pub(crate) fn write(dir: &Path, run: &RunData) -> Result<ReportFiles, ReportError> {
    std::fs::create_dir_all(dir).map_err(|cause| ReportError::Io {
        path: dir.to_path_buf(),
        cause,
    })?;
    let summary = stats::summarize(run);

    let json = dir.join(JSON_FILE);
    let report = JsonReport {
        summary: &summary,
        run,
    };
    let mut bytes = serde_json::to_vec_pretty(&report).map_err(|cause| ReportError::Json {
        path: json.clone(),
        cause,
    })?;
    bytes.push(b'\n');
    write_file(&json, &bytes)?;

    let plots = PlotKind::ALL
        .iter()
        .map(|kind| kind.write(dir, run, &summary))
        .collect::<Result<Vec<_>, _>>()?;

    let markdown = dir.join(MARKDOWN_FILE);
    let text = markdown::render(run, &summary, &PlotKind::ALL);
    write_file(&markdown, text.as_bytes())?;

    Ok(ReportFiles {
        json,
        markdown,
        plots,
    })
}

/// Writes a whole file, naming it in the error.
fn write_file(path: &Path, contents: &[u8]) -> Result<(), ReportError> {
    std::fs::write(path, contents).map_err(|cause| ReportError::Io {
        path: path.to_path_buf(),
        cause,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::report::data::{
        AssertionResult, Delivery, FaultMark, HireRun, ManifestRun, NodeSummary, Sample,
    };

    /// A deterministic pseudo-random sequence (xorshift64*), for realistic test data.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n.max(1)
        }
    }

    fn node(name: &str, mode: &str, kills: u32) -> NodeSummary {
        NodeSummary {
            name: name.into(),
            mode: mode.into(),
            kills,
            restarts: kills,
            peak_rss_bytes: Some(60 << 20),
            cpu_seconds: Some(1.5),
        }
    }

    fn fault(at_ms: u64, kind: &str, target: &str) -> FaultMark {
        FaultMark {
            at_ms,
            kind: kind.into(),
            target: target.into(),
            detail: None,
        }
    }

    fn hire(i: u64, outcome: &str, ended: Option<u64>) -> HireRun {
        HireRun {
            id: Some(format!("h{i}")),
            client: "c".into(),
            provider: "n1".into(),
            agent: "csv-analyst".into(),
            started_at_ms: 1000 * i,
            ended_at_ms: ended,
            outcome: outcome.into(),
            entries: 7,
            verified: (outcome == "completed").then_some(true),
            error: None,
        }
    }

    /// The small run of the brief: 3 nodes, 2 faults, 5 manifests, 4 hires, samples, and a
    /// failed assertion.
    fn small_run() -> RunData {
        let nodes = ["n1", "n2", "c"];
        let manifests = (0..5u64)
            .map(|i| ManifestRun {
                id: format!("m{i}"),
                publisher: "n1".into(),
                published_at_ms: 1000 + 1000 * i,
                deliveries: ["n1", "n2", "c"]
                    .iter()
                    .enumerate()
                    .map(|(k, node)| Delivery {
                        node: (*node).into(),
                        at_ms: 1000 + 1000 * i + 20 * k as u64 + i,
                    })
                    .collect(),
                expected: None,
            })
            .collect();
        let samples = (0..10u64)
            .flat_map(|t| {
                nodes.iter().map(move |node| Sample {
                    at_ms: t * 1000,
                    node: (*node).into(),
                    peers: Some(u32::try_from(t.min(2)).unwrap()),
                    cpu_percent: Some(5.0 + t as f64),
                    rss_bytes: Some((40 + t) << 20),
                })
            })
            .collect();
        RunData {
            scenario: "smoke".into(),
            seed: 7,
            started_unix_ms: 1_764_000_000_000,
            duration_ms: 10_000,
            mode: "processes".into(),
            nodes: vec![
                node("n1", "full", 1),
                node("n2", "full", 0),
                node("c", "light", 0),
            ],
            faults: vec![fault(3000, "kill", "n1"), fault(4500, "restart", "n1")],
            manifests,
            expected_receivers: 2,
            hires: vec![
                hire(1, "completed", Some(2500)),
                hire(2, "completed", Some(6000)),
                hire(3, "failed", Some(3100)),
                hire(4, "unfinished", None),
            ],
            samples,
            assertions: vec![
                AssertionResult {
                    name: "manifest delivery".into(),
                    expected: ">= 99%".into(),
                    observed: "100.0%".into(),
                    passed: true,
                },
                AssertionResult {
                    name: "every hire ends".into(),
                    expected: "0 unfinished".into(),
                    observed: "1 unfinished".into(),
                    passed: false,
                },
            ],
            notes: vec!["a note".into()],
        }
    }

    /// A larger run with `kills` kills and restarts, a partition, added latency and
    /// realistic-looking noise.
    fn realistic_run(full: usize, light: usize, kills: u64, seed: u64) -> RunData {
        let mut rng = Rng(seed | 1);
        let duration_ms = 120_000;
        let mut nodes: Vec<NodeSummary> = (1..=full)
            .map(|i| node(&format!("n{i}"), "full", 0))
            .chain((1..=light).map(|i| node(&format!("light{i}"), "light", 0)))
            .collect();
        let mut faults = Vec::new();
        let mut down: Vec<(usize, u64, u64)> = Vec::new(); // node, from, to
        let spacing = 90_000 / kills.max(1);
        for k in 0..kills {
            let victim = usize::try_from(rng.below(full as u64)).unwrap();
            let at = 10_000 + k * spacing + rng.below(spacing / 2);
            let back = at + 4000 + rng.below(3000);
            nodes[victim].kills += 1;
            nodes[victim].restarts += 1;
            faults.push(fault(at, "kill", &nodes[victim].name));
            faults.push(fault(back, "restart", &nodes[victim].name));
            down.push((victim, at, back));
        }
        faults.push(FaultMark {
            at_ms: 70_000,
            kind: "partition".into(),
            target: "n1..n3|rest".into(),
            detail: Some("two groups".into()),
        });
        faults.push(fault(85_000, "heal", "all"));
        faults.push(FaultMark {
            at_ms: 95_000,
            kind: "latency".into(),
            target: "n2".into(),
            detail: Some("80ms ±20ms".into()),
        });
        faults.sort_by_key(|f| f.at_ms);
        let is_down = |n: usize, t: u64| down.iter().any(|(v, a, b)| *v == n && t >= *a && t < *b);
        let partitioned = |n: usize, t: u64| (70_000..85_000).contains(&t) && n < 3;

        let mut manifests = Vec::new();
        let mut t = 2000;
        while t < duration_ms - 5000 {
            let publisher = usize::try_from(rng.below(full as u64)).unwrap();
            if !is_down(publisher, t) {
                let mut deliveries = Vec::new();
                for (n, receiver) in nodes.iter().enumerate().take(full) {
                    if n == publisher || is_down(n, t) {
                        continue;
                    }
                    if partitioned(n, t) != partitioned(publisher, t) {
                        continue;
                    }
                    let mut latency = 8 + rng.below(20) + rng.below(30) * rng.below(2);
                    if n == 1 && t >= 95_000 {
                        latency += 80 + rng.below(40);
                    }
                    deliveries.push(Delivery {
                        node: receiver.name.clone(),
                        at_ms: t + latency,
                    });
                }
                manifests.push(ManifestRun {
                    id: format!("{:016x}", rng.next()),
                    publisher: nodes[publisher].name.clone(),
                    published_at_ms: t,
                    deliveries,
                    expected: None,
                });
            }
            t += 500 + rng.below(1500);
        }

        let outcomes = [
            "completed",
            "completed",
            "completed",
            "completed",
            "failed",
            "canceled",
        ];
        let mut hires = Vec::new();
        let mut t = 3000;
        let mut k = 0;
        while t < duration_ms {
            let outcome = outcomes[usize::try_from(rng.below(outcomes.len() as u64)).unwrap()];
            let end = t + 3000 + rng.below(9000);
            let (outcome, ended) = if end > duration_ms {
                ("unfinished", None)
            } else {
                (outcome, Some(end))
            };
            let mut h = hire(k, outcome, ended);
            h.started_at_ms = t;
            h.client = format!("light{}", 1 + rng.below(light.max(1) as u64));
            h.provider = format!("n{}", 1 + rng.below(full as u64));
            hires.push(h);
            k += 1;
            t += 2000 + rng.below(4000);
        }

        let mut samples = Vec::new();
        for (n, summary) in nodes.iter().enumerate() {
            let mut rss = 45.0 + rng.below(10) as f64;
            let mut cpu = 3.0 + rng.below(30) as f64 / 10.0;
            let mut at = rng.below(300);
            while at < duration_ms {
                if is_down(n, at) {
                    rss = 45.0;
                } else {
                    rss += rng.below(60) as f64 / 100.0;
                    cpu = (cpu + (rng.below(21) as f64 - 10.0) / 10.0).clamp(1.0, 15.0);
                    let mut peers = if summary.mode == "light" {
                        2
                    } else {
                        (full - 1).min(8)
                    };
                    if partitioned(n, at) {
                        peers = 2;
                    }
                    let dip = usize::from(rng.below(15) == 0);
                    samples.push(Sample {
                        at_ms: at,
                        node: summary.name.clone(),
                        peers: Some(u32::try_from(peers - dip).unwrap()),
                        cpu_percent: Some(cpu),
                        rss_bytes: Some((rss * 1024.0 * 1024.0) as u64),
                    });
                }
                at += 1000;
            }
        }
        samples.sort_by_key(|s| s.at_ms);

        let mut run = RunData {
            scenario: "churn".into(),
            seed,
            started_unix_ms: 1_764_000_000_000,
            duration_ms,
            mode: "processes".into(),
            nodes,
            faults,
            manifests,
            expected_receivers: u32::try_from(full - 1).unwrap(),
            hires,
            samples,
            assertions: Vec::new(),
            notes: Vec::new(),
        };
        let ratio = stats::delivery_ratio(&run).unwrap();
        run.assertions = vec![
            AssertionResult {
                name: "manifest delivery".into(),
                expected: ">= 90%".into(),
                observed: format!("{:.1}%", ratio * 100.0),
                passed: ratio >= 0.9,
            },
            AssertionResult {
                name: "every exported chain verifies".into(),
                expected: "all".into(),
                observed: "all".into(),
                passed: true,
            },
        ];
        run
    }

    fn read(path: &Path) -> String {
        std::fs::read_to_string(path).unwrap()
    }

    /// Whether an SVG has a `<text>` element of exactly `text` (plotters writes the text
    /// on a line of its own).
    fn has_text(svg: &str, text: &str) -> bool {
        svg.contains(&format!(">\n{text}\n</text>"))
    }

    #[test]
    fn writes_every_file_of_a_small_run() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let run = small_run();
        let files = write(&out, &run).unwrap();

        assert_eq!(files.json, out.join("report.json"));
        assert_eq!(files.markdown, out.join("report.md"));
        let names: Vec<&str> = files
            .plots
            .iter()
            .map(|p| p.file_name().unwrap().to_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "propagation-cdf.svg",
                "deliveries.svg",
                "hires.svg",
                "peers.svg",
                "resources.svg"
            ]
        );
        for plot in &files.plots {
            let svg = read(plot);
            assert!(svg.starts_with("<svg"), "{}", plot.display());
            assert!(svg.trim_end().ends_with("</svg>"), "{}", plot.display());
            assert!(!svg.contains("no data"), "{}", plot.display());
        }
        // Every time axis marks both faults, labelled with kind and target.
        for plot in &files.plots[1..] {
            let svg = read(plot);
            assert!(has_text(&svg, "kill n1"), "{}", plot.display());
            assert!(has_text(&svg, "restart n1"), "{}", plot.display());
        }
        let cdf = read(&files.plots[0]);
        assert!(cdf.contains("p50 24 ms, p99 44 ms"), "{cdf}");

        // report.json: the summary beside the run, which reads back unchanged.
        let json: serde_json::Value = serde_json::from_str(&read(&files.json)).unwrap();
        let back: RunData = serde_json::from_value(json["run"].clone()).unwrap();
        assert_eq!(back, run);
        assert_eq!(json["summary"]["passed"], false);
        assert_eq!(json["summary"]["delivery_ratio"], 1.0);
        assert_eq!(json["summary"]["deliveries"], 10);
        assert_eq!(json["summary"]["hire_outcomes"]["completed"], 2);
        assert_eq!(json["summary"]["propagation_ms"]["max"], 44);

        let md = read(&files.markdown);
        assert!(md.starts_with("# Scenario `smoke`, seed 7\n"), "{md}");
        assert!(
            md.contains("**FAIL**: 1 of 2 assertions did not hold."),
            "{md}"
        );
        assert!(
            md.contains("| every hire ends | 0 unfinished | 1 unfinished | ✗ |"),
            "{md}"
        );
        assert!(
            md.contains("| manifest delivery | >= 99% | 100.0% | ✓ |"),
            "{md}"
        );
        assert!(
            md.contains("| delivery ratio | 100.0% (10 deliveries, 10 due) |"),
            "{md}"
        );
        assert!(md.contains("| 3.000 s | kill | n1 |  |"), "{md}");
        for kind in PlotKind::ALL {
            let link = format!("![{}]({})", kind.name(), kind.file_name());
            assert!(md.contains(&link), "{link} missing from:\n{md}");
        }
        assert!(md.contains("[report.json](report.json)"), "{md}");
    }

    #[test]
    fn a_passing_run_says_pass() {
        let dir = tempfile::tempdir().unwrap();
        let mut run = small_run();
        run.assertions.retain(|a| a.passed);
        let files = write(dir.path(), &run).unwrap();
        let md = read(&files.markdown);
        assert!(md.contains("**PASS**: 1 of 1 assertions held."), "{md}");
        assert!(!md.contains("FAIL"), "{md}");
    }

    #[test]
    fn an_empty_run_writes_no_data_plots() {
        let dir = tempfile::tempdir().unwrap();
        let files = write(dir.path(), &RunData::default()).unwrap();
        for plot in &files.plots {
            let svg = read(plot);
            assert!(svg.starts_with("<svg"), "{}", plot.display());
            assert!(svg.contains("no data"), "{}", plot.display());
        }
        let md = read(&files.markdown);
        assert!(md.contains("The scenario has no assertions."), "{md}");
        assert!(md.contains("No fault was injected."), "{md}");
    }

    #[test]
    fn a_large_run_draws_the_spread_over_nodes() {
        let dir = tempfile::tempdir().unwrap();
        let run = realistic_run(30, 4, 3, 11);
        let files = write(dir.path(), &run).unwrap();
        let peers = read(&dir.path().join("peers.svg"));
        assert!(has_text(&peers, "median of 34 nodes"), "no spread drawn");
        assert!(!has_text(&peers, "n17"), "one line per node drawn");
        let resources = read(&files.plots[4]);
        assert!(
            has_text(&resources, "median of 34 nodes"),
            "no spread drawn"
        );
        assert!(
            has_text(&resources, "partition n1..n3|rest"),
            "fault not labelled"
        );
    }

    #[test]
    fn odd_runs_still_write() {
        let dir = tempfile::tempdir().unwrap();
        // A run of no length with a fault at 0, one sample per node, a value that is not a
        // number, a delivery stamped before its publication and only light nodes' CPU.
        let mut run = small_run();
        run.duration_ms = 0;
        run.faults = vec![fault(0, "kill", "n1"), fault(0, "kill", "n2")];
        run.samples.truncate(3);
        run.samples[0].cpu_percent = Some(f64::NAN);
        run.samples[1].rss_bytes = None;
        run.samples[2].peers = None;
        run.manifests[0].deliveries[1].at_ms = 0;
        write(&dir.path().join("a"), &run).unwrap();
        // Many nodes, one sample each, every value zero.
        let run = RunData {
            samples: (0..40)
                .map(|n| Sample {
                    at_ms: 5,
                    node: format!("n{n}"),
                    peers: Some(0),
                    cpu_percent: Some(0.0),
                    rss_bytes: Some(0),
                })
                .collect(),
            ..RunData::default()
        };
        let files = write(&dir.path().join("b"), &run).unwrap();
        assert!(has_text(&read(&files.plots[3]), "median of 40 nodes"));
    }

    #[test]
    fn a_missing_directory_is_created_and_an_unwritable_one_named() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, b"").unwrap();
        let err = write(&blocker.join("out"), &small_run()).unwrap_err();
        assert!(matches!(err, ReportError::Io { ref path, .. } if path == &blocker.join("out")));
        assert!(err.to_string().contains("file/out"), "{err}");
    }

    /// Writes example reports (5 full nodes and 3 kills, 30 and 3, 8 and 100, empty) into
    /// `$SOUK_REPORT_SAMPLE_DIR` to look at:
    /// `cargo test -p souk-testnet report::tests::sample -- --ignored`.
    #[test]
    #[ignore = "writes example reports to look at"]
    fn sample() {
        let root = std::env::var_os("SOUK_REPORT_SAMPLE_DIR").expect("SOUK_REPORT_SAMPLE_DIR");
        let root = PathBuf::from(root);
        write(&root.join("small"), &realistic_run(5, 2, 3, 42)).unwrap();
        write(&root.join("large"), &realistic_run(30, 4, 3, 42)).unwrap();
        write(&root.join("crash"), &realistic_run(8, 2, 100, 42)).unwrap();
        write(&root.join("empty"), &RunData::default()).unwrap();
    }
}
