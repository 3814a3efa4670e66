//! After a run: what happened, as figures (delivery to the full nodes that were up while a
//! manifest spread, hire outcomes, steps against the reference hire) and as the verdict of
//! each `[assert]` key.

use std::collections::HashMap;

use super::file::Assertions;
use super::observe::Seen;
use super::workload::{Ended, Publication};
use crate::report::data::AssertionResult;

/// How long after its publication a manifest is expected at every full node that stays up.
pub(crate) const SPREAD_WINDOW_MS: u64 = 10_000;

/// Per manifest: the full nodes expected to receive it and when each did (Unix ms).
#[derive(Debug, Clone)]
pub(crate) struct Spread {
    pub(crate) publication: Publication,
    pub(crate) expected: Vec<String>,
    pub(crate) delivered: Vec<(String, u64)>,
}

/// Whether `intervals` (up from, up until) cover `[from, to]` entirely.
fn up_throughout(intervals: &[(u64, Option<u64>)], from: u64, to: u64) -> bool {
    intervals
        .iter()
        .any(|(a, b)| *a <= from && b.is_none_or(|b| b >= to))
}

/// Who received each publication: a full node other than the publisher is expected when it
/// was up (with its event stream open) from the publication until [`SPREAD_WINDOW_MS`]
/// later (or the end of the run); any `manifest_admitted` of the id on it counts. The
/// publication time is the publisher's own `manifest_admitted` (via `local`) when seen.
pub(crate) fn spreads(
    pubs: &[Publication],
    full: &[String],
    up: &HashMap<String, Vec<(u64, Option<u64>)>>,
    events: &[Seen],
    end_ms: u64,
) -> Vec<Spread> {
    // A manifest's id is stable across its versions: a publication is (id, seq).
    let mut admitted: HashMap<(&str, &str, u64), u64> = HashMap::new();
    for s in events {
        if s.event["type"] == "manifest_admitted"
            && let (Some(id), Some(seq), Some(at)) = (
                s.event["id"].as_str(),
                s.event["seq"].as_u64(),
                s.event["at_ms"].as_u64(),
            )
        {
            admitted.entry((s.node.as_str(), id, seq)).or_insert(at);
        }
    }
    pubs.iter()
        .map(|p| {
            // The publisher's own admission is the moment it was published (the CLI's return
            // comes later).
            let mut p = p.clone();
            let own = admitted
                .get(&(p.node.as_str(), p.id.as_str(), p.seq))
                .copied();
            if let Some(at) = own {
                p.at_ms = at;
            }
            let to = (p.at_ms + SPREAD_WINDOW_MS).min(end_ms);
            let expected: Vec<String> = full
                .iter()
                .filter(|n| **n != p.node)
                .filter(|n| up.get(*n).is_some_and(|iv| up_throughout(iv, p.at_ms, to)))
                .cloned()
                .collect();
            let delivered = full
                .iter()
                .filter(|n| **n != p.node)
                .filter_map(|n| {
                    admitted
                        .get(&(n.as_str(), p.id.as_str(), p.seq))
                        .map(|at| (n.clone(), *at))
                })
                .collect();
            Spread {
                publication: p,
                expected,
                delivered,
            }
        })
        .collect()
}

/// Delivered / expected over every spread (1 when nothing was expected).
pub(crate) fn delivery_ratio(spreads: &[Spread]) -> (u64, u64) {
    let mut got = 0;
    let mut want = 0;
    for s in spreads {
        want += s.expected.len() as u64;
        got += s
            .expected
            .iter()
            .filter(|n| s.delivered.iter().any(|(d, _)| d == *n))
            .count() as u64;
    }
    (got, want)
}

/// An agent's steps with the replays the spec allows collapsed (spec/agent-protocol.md,
/// "Resuming from a checkpoint": after a restart the agent redoes, and the chain records
/// again, the steps since its last checkpoint). Within each stretch between two
/// `checkpoint` entries an entry equal to an earlier one of the same stretch is a replay.
/// Returns the steps (entries other than `started` and the terminal one, whose summaries
/// carry times) and how many replays were dropped.
pub(crate) fn logical_steps(steps: &[(String, String)]) -> (Vec<(String, String)>, usize) {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut stretch_start = 0;
    let mut replays = 0;
    for (kind, summary) in steps {
        if matches!(
            kind.as_str(),
            "started" | "completed" | "failed" | "canceled" | "expired"
        ) {
            continue;
        }
        let step = (kind.clone(), summary.clone());
        if out[stretch_start..].contains(&step) {
            replays += 1;
            continue;
        }
        out.push(step);
        if kind == "checkpoint" {
            stretch_start = out.len();
        }
    }
    (out, replays)
}

/// The comparison of one hire's steps with the reference: `None` if equal.
pub(crate) fn differs(reference: &[(String, String)], got: &[(String, String)]) -> Option<String> {
    if reference == got {
        return None;
    }
    let i = reference
        .iter()
        .zip(got)
        .position(|(a, b)| a != b)
        .unwrap_or(reference.len().min(got.len()));
    Some(format!(
        "{} steps against {} in the reference; first difference at step {i}: {:?} vs {:?}",
        got.len(),
        reference.len(),
        got.get(i).map(|s| &s.1),
        reference.get(i).map(|s| &s.1)
    ))
}

/// The uninterrupted reference hire: its steps (replays collapsed) and its output.
pub(crate) type Reference = (Vec<(String, String)>, Option<serde_json::Value>);

/// What the assertions look at.
pub(crate) struct Facts<'a> {
    pub(crate) delivery: (u64, u64),
    pub(crate) asked: u32,
    pub(crate) contracted_never: u32,
    pub(crate) ended: &'a [Ended],
    pub(crate) reference: Option<&'a Reference>,
    pub(crate) kills: u32,
    /// Hires whose provider or client was killed or stopped while they ran.
    pub(crate) interrupted: u32,
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
            format!("{ratio:.4} ({got} of {want})"),
            ratio >= min && want > 0,
        );
    }
    let open: Vec<&Ended> = f
        .ended
        .iter()
        .filter(|e| !super::workload::is_terminal(&e.record.state))
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn s(kind: &str, summary: &str) -> (String, String) {
        (kind.to_owned(), summary.to_owned())
    }

    #[test]
    fn replays_after_a_restart_collapse_and_real_differences_show() {
        let clean = vec![
            s("started", "t=1"),
            s("decision", "count 0"),
            s("checkpoint", "c1"),
            s("decision", "count 1"),
            s("checkpoint", "c2"),
            s("result", "r"),
            s("completed", "wall 3"),
        ];
        // Killed after "count 1" was recorded, before its checkpoint: redone once.
        let replayed = vec![
            s("started", "t=9"),
            s("decision", "count 0"),
            s("checkpoint", "c1"),
            s("decision", "count 1"),
            s("decision", "count 1"),
            s("checkpoint", "c2"),
            s("result", "r"),
            s("completed", "wall 7"),
        ];
        let (a, ra) = logical_steps(&clean);
        let (b, rb) = logical_steps(&replayed);
        assert_eq!((ra, rb), (0, 1));
        assert_eq!(differs(&a, &b), None);
        // A lost step is not a replay.
        let lost = vec![
            s("decision", "count 0"),
            s("checkpoint", "c1"),
            s("checkpoint", "c2"),
            s("result", "r"),
        ];
        let (c, _) = logical_steps(&lost);
        assert!(
            differs(&a, &c)
                .unwrap()
                .contains("first difference at step 2")
        );
        // A step repeated across a checkpoint is a duplicate, not a replay.
        let dup = vec![
            s("decision", "count 0"),
            s("checkpoint", "c1"),
            s("decision", "count 0"),
            s("decision", "count 1"),
            s("checkpoint", "c2"),
            s("result", "r"),
        ];
        let (d, rd) = logical_steps(&dup);
        assert_eq!(rd, 0);
        assert!(differs(&a, &d).is_some());
    }

    #[test]
    fn only_nodes_up_while_a_manifest_spread_are_expected_to_get_it() {
        let full = vec!["node-0".to_owned(), "node-1".into(), "node-2".into()];
        let mut up = HashMap::new();
        up.insert("node-0".to_owned(), vec![(0, None)]);
        up.insert("node-1".to_owned(), vec![(0, None)]);
        // node-2 was down from 20 s to 23 s.
        up.insert("node-2".to_owned(), vec![(0, Some(20_000)), (23_000, None)]);
        let p = |id: &str, at| Publication {
            id: id.into(),
            seq: 1,
            node: "node-0".into(),
            at_ms: at,
        };
        let ev = |node: &str, id: &str, at: u64| Seen {
            node: node.into(),
            event: serde_json::json!({"type": "manifest_admitted", "id": id, "seq": 1, "at_ms": at}),
        };
        let events = vec![ev("node-1", "a", 100), ev("node-1", "b", 15_100)];
        let sp = spreads(&[p("a", 50), p("b", 15_000)], &full, &up, &events, 60_000);
        assert_eq!(sp[0].expected, vec!["node-1", "node-2"]);
        assert_eq!(sp[1].expected, vec!["node-1"]);
        assert_eq!(delivery_ratio(&sp), (2, 3));
    }
}
