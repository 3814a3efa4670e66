//! The verdict of each `[assert]` key of a scenario, from the run's [`Facts`].

use super::file::Assertions;
use super::fork::ForkFacts;
use super::outcome::Isolation;
use super::steps::{Reference, differs, logical_steps};
use super::workload::Ended;
use crate::report::data::AssertionResult;

/// What the assertions look at.
#[derive(Default)]
pub(crate) struct Facts<'a> {
    pub(crate) delivery: (u64, u64),
    pub(crate) asked: u32,
    pub(crate) contracted_never: u32,
    pub(crate) ended: &'a [Ended],
    pub(crate) reference: Option<&'a Reference>,
    pub(crate) kills: u32,
    /// Clean stops (SIGTERM).
    pub(crate) stops: u32,
    /// Hire requests the providers declined for capacity (their counters, summed).
    pub(crate) declined_capacity: u64,
    /// Hires whose provider or client was killed or stopped while they ran.
    pub(crate) interrupted: u32,
    /// Partitions: manifests published inside one and deliveries across it before its end.
    pub(crate) isolation: Isolation,
    /// Latency windows: median cross-group propagation (ms) and the delay added, if any
    /// manifest crossed.
    pub(crate) latency: Option<(u64, u64, usize)>,
    /// Full nodes that do not hold the latest version of some agent at the end.
    pub(crate) stale: Vec<String>,
    /// Full nodes in all.
    pub(crate) full_nodes: usize,
    /// Expected deliveries a newer version superseded.
    pub(crate) superseded: usize,
    /// Hostile peers: (target, peer id, sent, cut off, invalid manifests the target
    /// rejected from it).
    pub(crate) hostiles: Vec<(String, String, u32, bool, usize)>,
    /// Invalid manifests seen by nodes no hostile peer attacked (none if contained).
    pub(crate) rejected_elsewhere: usize,
    /// Forking providers: what became of their hires, flags and later hires.
    pub(crate) forks: Vec<ForkFacts>,
}

impl Facts<'_> {
    /// Nothing observed yet (fields are set by the caller).
    pub(crate) fn empty() -> Self {
        Self::default()
    }
}

/// Each `[assert]` key given, checked against `f`.
pub(crate) fn assertions(a: &Assertions, f: &Facts<'_>) -> Vec<AssertionResult> {
    let mut out = Vec::new();
    let mut push = |name: &str, expected: String, observed: String, passed: bool| {
        out.push(AssertionResult {
            name: name.to_owned(),
            expected,
            observed,
            passed,
        })
    };
    if let Some(min) = a.manifest_delivery {
        let (got, want) = f.delivery;
        let ratio = if want == 0 {
            1.0
        } else {
            got as f64 / want as f64
        };
        push(
            "manifest_delivery",
            format!(">= {min}"),
            format!(
                "{ratio:.4} ({got} of {want}; {} of them superseded by a newer version first)",
                f.superseded
            ),
            ratio >= min && want > 0,
        );
    }
    let open: Vec<&Ended> = f
        .ended
        .iter()
        .filter(|e| !super::workload::has_ended(&e.record))
        .collect();
    if a.every_hire_ended {
        push(
            "every_hire_ended",
            "every contracted hire in an end state".into(),
            if open.is_empty() {
                format!(
                    "{} of {} ended ({} had their provider or client killed or stopped while running)",
                    f.ended.len(),
                    f.ended.len(),
                    f.interrupted
                )
            } else {
                format!(
                    "{} of {} still open: {}",
                    open.len(),
                    f.ended.len(),
                    open.iter()
                        .map(|e| format!("{} ({})", &e.record.hire_id[..12], e.record.state))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            },
            open.is_empty() && f.contracted_never == 0,
        );
    }
    let completed: Vec<&Ended> = f
        .ended
        .iter()
        .filter(|e| e.record.state == "completed")
        .collect();
    if let Some(min) = a.hires_completed {
        let ratio = if f.asked == 0 {
            1.0
        } else {
            completed.len() as f64 / f64::from(f.asked)
        };
        push(
            "hires_completed",
            format!(">= {min} of the {} asked", f.asked),
            format!(
                "{} completed ({} contracted, {} never contracted)",
                completed.len(),
                f.ended.len(),
                f.contracted_never
            ),
            ratio >= min,
        );
    }
    if a.every_chain_verifies {
        let bad: Vec<String> = completed
            .iter()
            .filter(|e| e.verified != Some(true))
            .map(|e| {
                format!(
                    "{}: {}",
                    &e.record.hire_id[..12],
                    e.error
                        .clone()
                        .or(e.verify_detail.clone())
                        .unwrap_or_else(|| "not valid".into())
                )
            })
            .collect();
        push(
            "every_chain_verifies",
            "every completed hire accepted, exported, valid under souk verify".into(),
            if bad.is_empty() {
                format!("{} of {} verified", completed.len(), completed.len())
            } else {
                bad.join("; ")
            },
            bad.is_empty() && !completed.is_empty(),
        );
    }
    if a.steps_match_reference {
        let (observed, passed) = match f.reference {
            None => ("no reference hire".to_owned(), false),
            Some((reference, ref_output)) => {
                let mut bad = Vec::new();
                let mut replays = 0;
                for e in &completed {
                    let Some(steps) = &e.steps else {
                        bad.push(format!("{}: steps not read", &e.record.hire_id[..12]));
                        continue;
                    };
                    let (steps, r) = logical_steps(steps);
                    replays += r;
                    if let Some(d) = differs(reference, &steps) {
                        bad.push(format!("{}: {d}", &e.record.hire_id[..12]));
                    } else if e.output != *ref_output {
                        bad.push(format!("{}: another output", &e.record.hire_id[..12]));
                    }
                }
                if bad.is_empty() {
                    (
                        format!(
                            "{} of {} equal to the reference ({} steps); {replays} replayed step(s) after restarts collapsed",
                            completed.len(),
                            completed.len(),
                            reference.len()
                        ),
                        !completed.is_empty(),
                    )
                } else {
                    (bad.join("; "), false)
                }
            }
        };
        push(
            "steps_match_reference",
            "same steps and output as the uninterrupted reference hire".into(),
            observed,
            passed,
        );
    }
    if a.partition_isolates {
        let i = &f.isolation;
        push(
            "partition_isolates",
            "nothing published inside a partition crosses it before the heal".into(),
            if i.leaks.is_empty() {
                format!(
                    "{} manifest(s) published inside; 0 crossed before the heal, {} deliveries across after it",
                    i.published_inside, i.crossed_after
                )
            } else {
                format!("leaked: {}", i.leaks.join("; "))
            },
            i.leaks.is_empty() && i.published_inside > 0,
        );
    }
    if a.converged {
        push(
            "converged",
            "every full node holds the latest version of every agent".into(),
            if f.stale.is_empty() {
                format!("{} of {} full nodes up to date", f.full_nodes, f.full_nodes)
            } else {
                f.stale.join("; ")
            },
            f.stale.is_empty(),
        );
    }
    if a.hostile_contained {
        let bad: Vec<String> = f
            .hostiles
            .iter()
            .filter(|(_, _, _, cut, rejected)| !*cut || *rejected == 0)
            .map(|(t, p, sent, cut, rejected)| {
                format!(
                    "{t}: {sent} sent by {}, {rejected} rejected, {}",
                    &p[p.len().saturating_sub(8)..],
                    if *cut { "cut off" } else { "still connected" }
                )
            })
            .collect();
        let sent: u32 = f.hostiles.iter().map(|h| h.2).sum();
        let rejected: usize = f.hostiles.iter().map(|h| h.4).sum();
        push(
            "hostile_contained",
            "each hostile peer cut off by its target; no other node sees an invalid manifest"
                .into(),
            if bad.is_empty() {
                format!(
                    "{} hostile peer(s): {sent} invalid manifests sent, {rejected} rejected by their targets, every peer cut off; {} invalid manifests seen elsewhere",
                    f.hostiles.len(),
                    f.rejected_elsewhere
                )
            } else {
                bad.join("; ")
            },
            bad.is_empty() && !f.hostiles.is_empty() && f.rejected_elsewhere == 0,
        );
    }
    if a.fork_contained {
        push(
            "fork_contained",
            "every hire of the forked agent closed provider-equivocated; every full node flags \
             the provider; a later hire is refused `flagged`"
                .into(),
            if f.forks.is_empty() {
                "no forking provider ran".into()
            } else {
                f.forks
                    .iter()
                    .map(ForkFacts::describe)
                    .collect::<Vec<_>>()
                    .join("; ")
            },
            !f.forks.is_empty() && f.forks.iter().all(ForkFacts::contained),
        );
    }
    if a.latency_applies {
        let (observed, passed) = match f.latency {
            Some((median, delay, n)) => (
                format!("median {median} ms across groups over {n} deliveries (delay {delay} ms)"),
                median >= delay,
            ),
            None => ("no manifest crossed a slowed link".into(), false),
        };
        push(
            "latency_applies",
            "cross-group propagation at least the added delay".into(),
            observed,
            passed,
        );
    }
    if let Some(min) = a.hires_expired {
        let expired = f
            .ended
            .iter()
            .filter(|e| e.record.state == "expired")
            .count();
        let ratio = if f.asked == 0 {
            0.0
        } else {
            expired as f64 / f64::from(f.asked)
        };
        push(
            "hires_expired",
            format!(">= {min} of the {} asked", f.asked),
            format!("{expired} expired"),
            ratio >= min,
        );
    }
    if let Some(within) = a.expired_within {
        let (observed, passed) = expired_in_time(f.ended, within);
        push(
            "expired_within",
            format!(
                "each expired hire's expired entry dated between its deadline and {} after",
                node_time(within.as_millis() as u64)
            ),
            observed,
            passed,
        );
    }
    if let Some(min) = a.question_waited {
        let waits = question_waits(&completed);
        let longest = waits.iter().map(|w| w.1).max();
        push(
            "question_waited",
            format!(
                "a completed hire whose question waited >= {}",
                node_time(min.as_millis() as u64)
            ),
            if waits.is_empty() {
                "no completed hire asked a question".into()
            } else {
                waits
                    .iter()
                    .map(|(id, w)| format!("{id}: answered after {}", node_time(*w)))
                    .collect::<Vec<_>>()
                    .join("; ")
            },
            longest.is_some_and(|l| l >= min.as_millis() as u64),
        );
    }
    if let Some(min) = a.min_stops {
        push(
            "min_stops",
            format!(">= {min} clean stops"),
            format!("{}", f.stops),
            f.stops >= min,
        );
    }
    if a.capacity_declined {
        push(
            "capacity_declined",
            "providers declined requests for capacity (and the hires still went through)".into(),
            format!("{} request(s) declined for capacity", f.declined_capacity),
            f.declined_capacity > 0,
        );
    }
    if let Some(min) = a.min_kills {
        push(
            "min_kills",
            format!(">= {min} kill -9"),
            format!("{}", f.kills),
            f.kills >= min,
        );
    }
    out
}

/// A span of the nodes' time for people (`2d 3h`, `41m`, `850 ms`).
pub(crate) fn node_time(ms: u64) -> String {
    let (d, h, m) = (ms / 86_400_000, ms / 3_600_000 % 24, ms / 60_000 % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{} s", ms as f64 / 1000.0),
        (0, 0, m) => format!("{m}m"),
        (0, h, m) => format!("{h}h {m}m"),
        (d, h, _) => format!("{d}d {h}h"),
    }
}

/// Whether each expired hire's `expired` entry lies in `[deadline, deadline + within]`.
fn expired_in_time(ended: &[Ended], within: std::time::Duration) -> (String, bool) {
    let within = within.as_millis() as u64;
    let mut seen = Vec::new();
    let mut passed = true;
    for e in ended.iter().filter(|e| e.record.state == "expired") {
        let id = &e.record.hire_id[..12.min(e.record.hire_id.len())];
        let Some(at) = e
            .timeline
            .iter()
            .find(|s| s.kind == "expired")
            .map(|s| s.time)
        else {
            seen.push(format!("{id}: no expired entry read"));
            passed = false;
            continue;
        };
        let deadline = e.record.deadline;
        let ok = at >= deadline && at - deadline <= within;
        passed &= ok;
        seen.push(if at >= deadline {
            format!(
                "{id}: expired {} after its deadline ({} after it was made)",
                node_time(at - deadline),
                node_time(at.saturating_sub(e.record.created_at))
            )
        } else {
            format!(
                "{id}: expired {} BEFORE its deadline",
                node_time(deadline - at)
            )
        });
    }
    if seen.is_empty() {
        return ("no hire expired".into(), false);
    }
    (seen.join("; "), passed)
}

/// Per completed hire with a question: how long (node time) it stayed open before the
/// answer was recorded.
fn question_waits(completed: &[&Ended]) -> Vec<(String, u64)> {
    completed
        .iter()
        .filter_map(|e| {
            let asked = e.timeline.iter().find(|s| s.kind == "input-requested")?;
            let answered = e
                .timeline
                .iter()
                .find(|s| s.kind == "input-provided" && s.seq > asked.seq)?;
            Some((
                e.record.hire_id[..12.min(e.record.hire_id.len())].to_owned(),
                answered.time.saturating_sub(asked.time),
            ))
        })
        .collect()
}
