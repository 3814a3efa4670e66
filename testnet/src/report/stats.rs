//! Figures derived from a [`RunData`]: propagation latencies and their percentiles, the
//! delivery ratio, hire outcome counts, per-node resource peaks (the [`Summary`] that goes
//! into `report.json`), and the time series the plots draw.
//!
//! Pure functions of the run data: no I/O, no drawing. Percentiles use the nearest-rank
//! method (the value at rank ⌈p/100 · n⌉ of the sorted data), so every percentile is a
//! value that was really observed.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use super::data::{ManifestRun, RunData};

/// The order hire outcomes are listed in (anything else follows, sorted by name).
pub(crate) const OUTCOME_ORDER: [&str; 7] = [
    "completed",
    "failed",
    "canceled",
    "expired",
    "rejected",
    "unfinished",
    "error",
];

/// The headline figures of a run, written into `report.json` beside the run data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Summary {
    /// Every assertion held (true when the scenario has none).
    pub(crate) passed: bool,
    /// How many assertions held.
    pub(crate) assertions_passed: u32,
    /// How many assertions did not hold.
    pub(crate) assertions_failed: u32,
    /// How many nodes the network had.
    pub(crate) nodes: u32,
    /// How many of them were full nodes.
    pub(crate) full_nodes: u32,
    /// How many of them were light nodes.
    pub(crate) light_nodes: u32,
    /// How long the run lasted, in milliseconds.
    pub(crate) duration_ms: u64,
    /// Kills over all nodes.
    pub(crate) kills: u32,
    /// Restarts over all nodes.
    pub(crate) restarts: u32,
    /// How many faults of each kind were injected.
    pub(crate) faults: BTreeMap<String, u32>,
    /// How many manifests were published.
    pub(crate) manifests: u32,
    /// Distinct (manifest, node) deliveries, the publisher's own not counted.
    pub(crate) deliveries: u64,
    /// Deliveries expected: manifests × expected receivers.
    pub(crate) expected_deliveries: u64,
    /// Deliveries that count towards the expected ones, over the expected ones, 0..=1 (a
    /// manifest counts for at most `expected_receivers` deliveries); none when no delivery
    /// was expected.
    pub(crate) delivery_ratio: Option<f64>,
    /// Propagation latency (delivery time − publication time) of every delivery counted
    /// in `deliveries`, in milliseconds; none without deliveries.
    pub(crate) propagation_ms: Option<Percentiles>,
    /// How many hires were started.
    pub(crate) hires: u32,
    /// How many hires ended each way (`completed`, `failed`, …).
    pub(crate) hire_outcomes: BTreeMap<String, u32>,
    /// Hires whose exported chain verified.
    pub(crate) chains_verified: u32,
    /// Hires whose exported chain was checked and did not verify.
    pub(crate) chains_not_verified: u32,
    /// Duration of the completed hires (end − start), in milliseconds; none without any.
    pub(crate) completed_hire_ms: Option<Percentiles>,
    /// Peak memory, CPU and peers of each node, in the order of the run's nodes.
    pub(crate) node_resources: Vec<NodeResources>,
}

/// Nearest-rank percentiles of a set of values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Percentiles {
    /// How many values there were.
    pub(crate) count: u64,
    /// Median (nearest rank).
    pub(crate) p50: u64,
    /// 90th percentile (nearest rank).
    pub(crate) p90: u64,
    /// 99th percentile (nearest rank).
    pub(crate) p99: u64,
    /// The largest value.
    pub(crate) max: u64,
}

/// The resource peaks of one node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct NodeResources {
    /// The node's name.
    pub(crate) node: String,
    /// The highest resident memory seen, from the node's summary or its samples.
    pub(crate) peak_rss_bytes: Option<u64>,
    /// CPU time used over the run, in seconds.
    pub(crate) cpu_seconds: Option<f64>,
    /// The highest CPU use sampled, in percent of one core.
    pub(crate) peak_cpu_percent: Option<f64>,
    /// The most peers sampled at once.
    pub(crate) max_peers: Option<u32>,
}

/// Computes the summary of a run.
pub(crate) fn summarize(run: &RunData) -> Summary {
    let assertions_passed = count(run.assertions.iter().filter(|a| a.passed));
    let assertions_failed = count(run.assertions.iter().filter(|a| !a.passed));
    let mut faults = BTreeMap::new();
    for fault in &run.faults {
        *faults.entry(fault.kind.clone()).or_insert(0) += 1;
    }
    let mut hire_outcomes = BTreeMap::new();
    for hire in &run.hires {
        *hire_outcomes.entry(hire.outcome.clone()).or_insert(0) += 1;
    }
    let completed: Vec<u64> = run
        .hires
        .iter()
        .filter(|h| h.outcome == "completed")
        .filter_map(|h| h.ended_at_ms.map(|end| end.saturating_sub(h.started_at_ms)))
        .collect();
    let counts = delivery_counts(run);
    Summary {
        passed: assertions_failed == 0,
        assertions_passed,
        assertions_failed,
        nodes: count(run.nodes.iter()),
        full_nodes: count(run.nodes.iter().filter(|n| n.mode == "full")),
        light_nodes: count(run.nodes.iter().filter(|n| n.mode == "light")),
        duration_ms: run.duration_ms,
        kills: run.nodes.iter().map(|n| n.kills).sum(),
        restarts: run.nodes.iter().map(|n| n.restarts).sum(),
        faults,
        manifests: count(run.manifests.iter()),
        deliveries: counts.all,
        expected_deliveries: counts.expected,
        delivery_ratio: counts.ratio(),
        propagation_ms: percentiles(&propagation_latencies(run)),
        hires: count(run.hires.iter()),
        hire_outcomes,
        chains_verified: count(run.hires.iter().filter(|h| h.verified == Some(true))),
        chains_not_verified: count(run.hires.iter().filter(|h| h.verified == Some(false))),
        completed_hire_ms: percentiles(&completed),
        node_resources: node_resources(run),
    }
}

fn count<T>(items: impl Iterator<Item = T>) -> u32 {
    u32::try_from(items.count()).unwrap_or(u32::MAX)
}

/// Nearest-rank percentiles of `values` (in any order); none when it is empty.
pub(crate) fn percentiles(values: &[u64]) -> Option<Percentiles> {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    Some(Percentiles {
        count: sorted.len() as u64,
        p50: nearest_rank(&sorted, 50)?,
        p90: nearest_rank(&sorted, 90)?,
        p99: nearest_rank(&sorted, 99)?,
        max: *sorted.last()?,
    })
}

/// The `p`th percentile (0..=100) of sorted values by nearest rank: the value at rank
/// ⌈p/100 · n⌉ (rank 1 for p = 0); none when there are no values.
pub(crate) fn nearest_rank(sorted: &[u64], p: u32) -> Option<u64> {
    let n = sorted.len();
    let rank = (p.min(100) as usize * n).div_ceil(100).max(1);
    sorted.get(rank - 1).copied()
}

/// The first delivery of each manifest to each node other than its publisher, as
/// (publication time, delivery time), in the order of the run's manifests.
fn first_deliveries(run: &RunData) -> Vec<Vec<(u64, u64)>> {
    run.manifests
        .iter()
        .map(|manifest| {
            let mut first: HashMap<&str, u64> = HashMap::new();
            for delivery in &manifest.deliveries {
                if delivery.node == manifest.publisher {
                    continue;
                }
                let at = first
                    .entry(delivery.node.as_str())
                    .or_insert(delivery.at_ms);
                *at = (*at).min(delivery.at_ms);
            }
            let mut times: Vec<(u64, u64)> = first
                .into_values()
                .map(|at| (manifest.published_at_ms, at))
                .collect();
            times.sort_unstable();
            times
        })
        .collect()
}

/// Propagation latency of every delivery (first per manifest and node, the publisher's own
/// excluded), sorted ascending, in milliseconds. A delivery stamped before its publication
/// (clock skew between processes) counts as 0.
pub(crate) fn propagation_latencies(run: &RunData) -> Vec<u64> {
    let mut latencies: Vec<u64> = first_deliveries(run)
        .into_iter()
        .flatten()
        .map(|(published, at)| at.saturating_sub(published))
        .collect();
    latencies.sort_unstable();
    latencies
}

/// Delivery counts of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DeliveryCounts {
    /// Distinct (manifest, node) deliveries, publisher excluded.
    pub(crate) all: u64,
    /// The same, counting at most `expected_receivers` per manifest.
    pub(crate) counted: u64,
    /// Manifests × expected receivers.
    pub(crate) expected: u64,
}

impl DeliveryCounts {
    /// `counted / expected`, none when nothing was expected.
    pub(crate) fn ratio(&self) -> Option<f64> {
        (self.expected > 0).then(|| self.counted as f64 / self.expected as f64)
    }
}

/// Counts the deliveries of a run against the expected ones.
pub(crate) fn delivery_counts(run: &RunData) -> DeliveryCounts {
    let per_manifest = first_deliveries(run);
    let receivers = |m: &ManifestRun| u64::from(m.expected.unwrap_or(run.expected_receivers));
    DeliveryCounts {
        all: per_manifest.iter().map(|d| d.len() as u64).sum(),
        counted: per_manifest
            .iter()
            .zip(&run.manifests)
            .map(|(d, m)| (d.len() as u64).min(receivers(m)))
            .sum(),
        expected: run.manifests.iter().map(receivers).sum(),
    }
}

/// The delivery ratio of a run: deliveries / (manifests × expected receivers), publisher
/// excluded, at most `expected_receivers` per manifest; none when nothing was expected.
#[cfg(test)]
pub(crate) fn delivery_ratio(run: &RunData) -> Option<f64> {
    delivery_counts(run).ratio()
}

/// The node names of a run: its nodes in order, then any other name seen in its samples.
pub(crate) fn node_names(run: &RunData) -> Vec<String> {
    let mut seen = BTreeSet::new();
    let mut names = Vec::new();
    let listed = run.nodes.iter().map(|n| n.name.as_str());
    for name in listed.chain(run.samples.iter().map(|s| s.node.as_str())) {
        if seen.insert(name) {
            names.push(name.to_string());
        }
    }
    names
}

fn node_resources(run: &RunData) -> Vec<NodeResources> {
    node_names(run)
        .into_iter()
        .map(|name| {
            let summary = run.nodes.iter().find(|n| n.name == name);
            let samples = run.samples.iter().filter(|s| s.node == name);
            let sampled_rss = samples.clone().filter_map(|s| s.rss_bytes).max();
            let peak_rss_bytes = summary
                .and_then(|n| n.peak_rss_bytes)
                .into_iter()
                .chain(sampled_rss)
                .max();
            NodeResources {
                peak_rss_bytes,
                cpu_seconds: summary.and_then(|n| n.cpu_seconds),
                peak_cpu_percent: samples
                    .clone()
                    .filter_map(|s| s.cpu_percent)
                    .fold(None, |peak: Option<f64>, v| {
                        Some(peak.map_or(v, |p| p.max(v)))
                    }),
                max_peers: samples.filter_map(|s| s.peers).max(),
                node: name,
            }
        })
        .collect()
}

/// A step curve counting events over time: starts at (0, 0), rises by one at each event
/// time and ends at (`end_ms`, total), `end_ms` being raised to the last event if earlier.
pub(crate) fn cumulative(times: impl IntoIterator<Item = u64>, end_ms: u64) -> Vec<(u64, u64)> {
    let mut times: Vec<u64> = times.into_iter().collect();
    times.sort_unstable();
    let mut points = vec![(0, 0)];
    for (i, at) in times.iter().enumerate() {
        let n = i as u64;
        points.push((*at, n));
        points.push((*at, n + 1));
    }
    let total = times.len() as u64;
    let end = times.last().map_or(end_ms, |last| end_ms.max(*last));
    points.push((end, total));
    points
}

/// When each delivery counted in the summary happened (first per manifest and node,
/// publisher excluded), in milliseconds since the start.
pub(crate) fn delivery_times(run: &RunData) -> Vec<u64> {
    first_deliveries(run)
        .into_iter()
        .flatten()
        .map(|(_, at)| at)
        .collect()
}

/// The moments deliveries became due: each manifest's publication, once per expected
/// receiver.
pub(crate) fn expected_delivery_times(run: &RunData) -> Vec<u64> {
    run.manifests
        .iter()
        .flat_map(|m| std::iter::repeat_n(m.published_at_ms, run.expected_receivers as usize))
        .collect()
}

/// The sort key that lists outcomes in [`OUTCOME_ORDER`], then others by name.
pub(crate) fn outcome_rank(outcome: &str) -> (usize, &str) {
    let rank = OUTCOME_ORDER
        .iter()
        .position(|known| *known == outcome)
        .unwrap_or(OUTCOME_ORDER.len());
    (rank, outcome)
}

/// Hire outcomes over time: for each outcome seen (in [`OUTCOME_ORDER`], then by name),
/// the cumulative count of hires that ended that way, a hire with no end time counting at
/// the end of the run.
pub(crate) fn hire_outcome_series(run: &RunData) -> Vec<(String, Vec<(u64, u64)>)> {
    let mut outcomes: Vec<&str> = run.hires.iter().map(|h| h.outcome.as_str()).collect();
    outcomes.sort_unstable_by_key(|o| outcome_rank(o));
    outcomes.dedup();
    outcomes
        .into_iter()
        .map(|outcome| {
            let ends = run
                .hires
                .iter()
                .filter(|h| h.outcome == outcome)
                .map(|h| h.ended_at_ms.unwrap_or(run.duration_ms));
            (outcome.to_string(), cumulative(ends, run.duration_ms))
        })
        .collect()
}

/// One node's values of one sampled quantity over time.
pub(crate) type NodeSeries = (String, Vec<(u64, f64)>);

/// Each node's values of one sampled quantity (`value` picks it from a sample; samples
/// without it, or with a value that is not finite, are skipped), in the order of [`node_names`]; nodes with no value are left
/// out.
pub(crate) fn node_series(
    run: &RunData,
    value: impl Fn(&super::data::Sample) -> Option<f64>,
) -> Vec<NodeSeries> {
    node_names(run)
        .into_iter()
        .filter_map(|name| {
            let mut points: Vec<(u64, f64)> = run
                .samples
                .iter()
                .filter(|s| s.node == name)
                .filter_map(|s| value(s).filter(|v| v.is_finite()).map(|v| (s.at_ms, v)))
                .collect();
            points.sort_by_key(|p| p.0);
            (!points.is_empty()).then_some((name, points))
        })
        .collect()
}

/// Splits one node's series where samples are missing: at every gap longer than two and
/// a half times its typical (median) sampling interval, as when the node was down.
pub(crate) fn split_at_gaps(points: &[(u64, f64)]) -> Vec<&[(u64, f64)]> {
    let mut gaps: Vec<u64> = points
        .windows(2)
        .map(|w| w[1].0.saturating_sub(w[0].0))
        .collect();
    gaps.sort_unstable();
    let Some(typical) = nearest_rank(&gaps, 50) else {
        return vec![points];
    };
    let limit = typical.max(1) * 5 / 2;
    let mut segments = Vec::new();
    let mut start = 0;
    for i in 1..points.len() {
        if points[i].0.saturating_sub(points[i - 1].0) > limit {
            segments.push(&points[start..i]);
            start = i;
        }
    }
    segments.push(&points[start..]);
    segments
}

/// The spread over nodes of a sampled quantity at one moment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Spread {
    /// The moment (the latest sample in its time bucket).
    pub(crate) at_ms: u64,
    /// The lowest value among the nodes sampled.
    pub(crate) min: f64,
    /// The median (nearest rank) among the nodes sampled.
    pub(crate) median: f64,
    /// The highest value among the nodes sampled.
    pub(crate) max: f64,
}

/// Min, median and max over nodes of per-node series, for networks too large to draw one
/// line per node. Time is cut into buckets of one and a half typical sampling intervals
/// (at least 1/150 of the span), so that each node usually has a sample in each bucket;
/// each node contributes its last value in the bucket.
pub(crate) fn spread(series: &[NodeSeries]) -> Vec<Spread> {
    let mut gaps: Vec<u64> = series
        .iter()
        .flat_map(|(_, points)| points.windows(2).map(|w| w[1].0.saturating_sub(w[0].0)))
        .filter(|gap| *gap > 0)
        .collect();
    gaps.sort_unstable();
    let typical = nearest_rank(&gaps, 50).unwrap_or(1);
    let span = series
        .iter()
        .flat_map(|(_, points)| points.last().map(|p| p.0))
        .max()
        .unwrap_or(0);
    let width = (typical * 3 / 2).max(span.div_ceil(150)).max(1);
    // bucket -> (latest time, node -> last value)
    let mut buckets: BTreeMap<u64, (u64, HashMap<&str, f64>)> = BTreeMap::new();
    for (node, points) in series {
        for (at, value) in points {
            let bucket = buckets.entry(at / width).or_default();
            bucket.0 = bucket.0.max(*at);
            bucket.1.insert(node.as_str(), *value);
        }
    }
    buckets
        .into_values()
        .filter_map(|(at_ms, values)| {
            let mut values: Vec<f64> = values.into_values().collect();
            values.sort_by(f64::total_cmp);
            let median_rank = values.len().div_ceil(2).max(1);
            Some(Spread {
                at_ms,
                min: *values.first()?,
                median: *values.get(median_rank - 1)?,
                max: *values.last()?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::data::Delivery;

    fn manifest(publisher: &str, at: u64, deliveries: &[(&str, u64)]) -> ManifestRun {
        ManifestRun {
            id: format!("m{at}"),
            publisher: publisher.into(),
            published_at_ms: at,
            deliveries: deliveries
                .iter()
                .map(|(node, at_ms)| Delivery {
                    node: (*node).into(),
                    at_ms: *at_ms,
                })
                .collect(),
            expected: None,
        }
    }

    #[test]
    fn nearest_rank_percentiles_of_known_data() {
        // 1..=100: the pth percentile by nearest rank is p itself.
        let values: Vec<u64> = (1..=100).rev().collect();
        let p = percentiles(&values);
        assert_eq!(
            p,
            Some(Percentiles {
                count: 100,
                p50: 50,
                p90: 90,
                p99: 99,
                max: 100
            })
        );
        // Ten values: p50 is rank 5, p90 rank 9, p99 rank ⌈9.9⌉ = 10.
        let ten = [10, 20, 30, 40, 50, 60, 70, 80, 90, 1000];
        let p = percentiles(&ten);
        assert_eq!(
            p.map(|p| (p.p50, p.p90, p.p99, p.max)),
            Some((50, 90, 1000, 1000))
        );
        // One value is every percentile; none is none.
        assert_eq!(percentiles(&[7]).map(|p| (p.p50, p.p99)), Some((7, 7)));
        assert_eq!(percentiles(&[]), None);
        assert_eq!(nearest_rank(&[1, 2, 3], 0), Some(1));
        assert_eq!(nearest_rank(&[1, 2, 3], 100), Some(3));
    }

    #[test]
    fn delivery_ratio_excludes_the_publisher_and_duplicates() {
        let run = RunData {
            expected_receivers: 2,
            manifests: vec![
                // Both receivers, the publisher's own delivery ignored, a duplicate ignored.
                manifest("a", 100, &[("a", 100), ("b", 130), ("c", 160), ("b", 140)]),
                // One of two.
                manifest("b", 200, &[("a", 250)]),
                // A light node beyond the expected two: counted as a delivery, capped in
                // the ratio.
                manifest("c", 300, &[("a", 310), ("b", 320), ("light", 330)]),
            ],
            ..RunData::default()
        };
        let counts = delivery_counts(&run);
        assert_eq!(
            counts,
            DeliveryCounts {
                all: 6,
                counted: 5,
                expected: 6
            }
        );
        assert_eq!(delivery_ratio(&run), Some(5.0 / 6.0));
        assert_eq!(propagation_latencies(&run), vec![10, 20, 30, 30, 50, 60]);
        assert_eq!(delivery_ratio(&RunData::default()), None);
    }

    #[test]
    fn cumulative_steps() {
        assert_eq!(
            cumulative([30, 10], 50),
            vec![(0, 0), (10, 0), (10, 1), (30, 1), (30, 2), (50, 2)]
        );
        assert_eq!(cumulative([], 50), vec![(0, 0), (50, 0)]);
        assert_eq!(cumulative([70], 50).last(), Some(&(70, 1)));
    }

    #[test]
    fn series_break_where_a_node_was_down() {
        let points: Vec<(u64, f64)> = [0, 1000, 2000, 3000, 9000, 10_000, 11_500]
            .iter()
            .map(|t| (*t, 1.0))
            .collect();
        let segments = split_at_gaps(&points);
        assert_eq!(segments.len(), 2);
        assert_eq!(segments[0].len(), 4);
        assert_eq!(segments[1], &points[4..]);
        assert_eq!(split_at_gaps(&[]), vec![&[] as &[(u64, f64)]]);
        assert_eq!(split_at_gaps(&points[..1]).len(), 1);
    }

    #[test]
    fn spread_over_nodes() {
        let series: Vec<NodeSeries> = (0..5)
            .map(|n| {
                let points = (0..10)
                    .map(|t| (t * 1000 + n * 10, (n + t) as f64))
                    .collect();
                (format!("n{n}"), points)
            })
            .collect();
        let spread = spread(&series);
        assert!(!spread.is_empty());
        // Buckets are 1.5 s wide (one and a half sampling intervals): the first holds the
        // samples of t = 0 and t = 1, and each node's last one (t = 1) counts.
        let first = spread[0];
        assert_eq!(first.at_ms, 1040);
        assert_eq!((first.min, first.median, first.max), (1.0, 3.0, 5.0));
        let last = spread[spread.len() - 1];
        assert_eq!((last.min, last.median, last.max), (9.0, 11.0, 13.0));
        assert!(super::spread(&[]).is_empty());
    }
}
