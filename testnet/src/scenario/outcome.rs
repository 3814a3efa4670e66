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
    /// Expected nodes that never admitted this version because a newer one of the same
    /// agent reached them first (gossip then refuses the older as stale, as it must).
    pub(crate) superseded: Vec<String>,
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
    // Per (node, id): every version admitted, when.
    let mut versions: HashMap<(&str, &str), Vec<(u64, u64)>> = HashMap::new();
    for s in events {
        if s.event["type"] == "manifest_admitted"
            && let (Some(id), Some(seq), Some(at)) = (
                s.event["id"].as_str(),
                s.event["seq"].as_u64(),
                s.event["at_ms"].as_u64(),
            )
        {
            versions
                .entry((s.node.as_str(), id))
                .or_default()
                .push((seq, at));
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
                .collect::<Vec<(String, u64)>>();
            let superseded = expected
                .iter()
                .filter(|n| !delivered.iter().any(|(d, _)| d == *n))
                .filter(|n| {
                    versions
                        .get(&(n.as_str(), p.id.as_str()))
                        .is_some_and(|v| v.iter().any(|(seq, _)| *seq > p.seq))
                })
                .cloned()
                .collect();
            Spread {
                publication: p,
                expected,
                delivered,
                superseded,
            }
        })
        .collect()
}

/// Delivered (or superseded by a newer version) / expected over every spread.
pub(crate) fn delivery_ratio(spreads: &[Spread]) -> (u64, u64) {
    let mut got = 0;
    let mut want = 0;
    for s in spreads {
        want += s.expected.len() as u64;
        got += s
            .expected
            .iter()
            .filter(|n| s.delivered.iter().any(|(d, _)| d == *n) || s.superseded.contains(n))
            .count() as u64;
    }
    (got, want)
}

/// Expected deliveries that a newer version superseded, over every spread.
pub(crate) fn superseded(spreads: &[Spread]) -> usize {
    spreads.iter().map(|s| s.superseded.len()).sum()
}

/// An agent's work with the replays the spec allows collapsed (spec/agent-protocol.md,
/// "Resuming from a checkpoint"): after a restart the agent redoes, and the chain records
/// again, the steps since its last checkpoint; and a checkpoint whose state was stored but
/// whose entry a crash lost is missing from the chain while the agent resumes after it.
/// So `checkpoint` entries only bound stretches (they are not compared), and within a
/// stretch an entry equal to an earlier one is a replay. `started` and the terminal entry
/// (whose summaries carry times) are left out. Returns the steps and the replays dropped.
pub(crate) fn logical_steps(steps: &[(String, String)]) -> (Vec<(String, String)>, usize) {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut stretch_start = 0;
    let mut replays = 0;
    for (kind, summary) in steps {
        match kind.as_str() {
            "started" | "completed" | "failed" | "canceled" | "expired" => continue,
            "checkpoint" => {
                stretch_start = out.len();
                continue;
            }
            _ => {}
        }
        let step = (kind.clone(), summary.clone());
        if out[stretch_start..].contains(&step) {
            replays += 1;
            continue;
        }
        out.push(step);
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
#[derive(Default)]
pub(crate) struct Facts<'a> {
    pub(crate) delivery: (u64, u64),
    pub(crate) asked: u32,
    pub(crate) contracted_never: u32,
    pub(crate) ended: &'a [Ended],
    pub(crate) reference: Option<&'a Reference>,
    pub(crate) kills: u32,
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
}

/// The full nodes that at the end hold an older version of a published manifest than the
/// latest (from their `manifest_admitted` events), with what they miss.
pub(crate) fn stale_nodes(pubs: &[Publication], full: &[String], events: &[Seen]) -> Vec<String> {
    let mut latest: HashMap<&str, u64> = HashMap::new();
    for p in pubs {
        let e = latest.entry(p.id.as_str()).or_insert(0);
        *e = (*e).max(p.seq);
    }
    let mut held: HashMap<(&str, &str), u64> = HashMap::new();
    for s in events {
        if s.event["type"] == "manifest_admitted"
            && let (Some(id), Some(seq)) = (s.event["id"].as_str(), s.event["seq"].as_u64())
        {
            let e = held.entry((s.node.as_str(), id)).or_insert(0);
            *e = (*e).max(seq);
        }
    }
    let mut out = Vec::new();
    for n in full {
        for (id, seq) in &latest {
            let has = held.get(&(n.as_str(), *id)).copied().unwrap_or(0);
            if has < *seq {
                out.push(format!(
                    "{n} holds {} at seq {has}, not {seq}",
                    &id[..12.min(id.len())]
                ));
            }
        }
    }
    out.sort();
    out
}

impl Facts<'_> {
    /// Nothing observed yet (fields are set by the caller).
    pub(crate) fn empty() -> Self {
        Self::default()
    }
}

/// What the partitions let through.
#[derive(Debug, Clone, Default)]
pub(crate) struct Isolation {
    /// Manifests published inside a partition by a node of one of its groups.
    pub(crate) published_inside: usize,
    /// Deliveries to another group before the partition ended.
    pub(crate) leaks: Vec<String>,
    /// Deliveries to another group after the heal (healed, then spread).
    pub(crate) crossed_after: usize,
}

fn group_of<'a>(groups: &'a [Vec<String>], node: &str) -> Option<&'a Vec<String>> {
    groups.iter().find(|g| g.iter().any(|n| n == node))
}

/// Checks every publication made inside a partition window.
pub(crate) fn isolation(spreads: &[Spread], windows: &[super::live::FaultWindow]) -> Isolation {
    let mut out = Isolation::default();
    for w in windows {
        for sp in spreads {
            let p = &sp.publication;
            if p.at_ms < w.from || w.until.is_some_and(|u| p.at_ms >= u) {
                continue;
            }
            let Some(mine) = group_of(&w.groups, &p.node) else {
                continue;
            };
            out.published_inside += 1;
            for (node, at) in &sp.delivered {
                let across = group_of(&w.groups, node).is_some_and(|g| g != mine);
                if !across {
                    continue;
                }
                if w.until.is_none_or(|u| *at < u) {
                    out.leaks
                        .push(format!("{} seq {} reached {node}", &p.id[..12], p.seq));
                } else {
                    out.crossed_after += 1;
                }
            }
        }
    }
    out
}

/// Median propagation (ms) of manifests published in a latency window to the other
/// groups, the delay of the window, and how many deliveries that is.
pub(crate) fn cross_latency(
    spreads: &[Spread],
    windows: &[super::live::FaultWindow],
) -> Option<(u64, u64, usize)> {
    let mut lat = Vec::new();
    let mut delay = 0;
    for w in windows {
        delay = w.delay_ms;
        for sp in spreads {
            let p = &sp.publication;
            if p.at_ms < w.from || w.until.is_some_and(|u| p.at_ms >= u) {
                continue;
            }
            let Some(mine) = group_of(&w.groups, &p.node) else {
                continue;
            };
            for (node, at) in &sp.delivered {
                if group_of(&w.groups, node).is_some_and(|g| g != mine) {
                    lat.push(at.saturating_sub(p.at_ms));
                }
            }
        }
    }
    if lat.is_empty() {
        return None;
    }
    lat.sort_unstable();
    Some((lat[lat.len() / 2], delay, lat.len()))
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
    fn replays_and_lost_checkpoint_entries_are_allowed_and_real_differences_show() {
        let clean = vec![
            s("started", "t=1"),
            s("decision", "count 0"),
            s("checkpoint", "c1"),
            s("decision", "count 1"),
            s("checkpoint", "c2"),
            s("decision", "count 2"),
            s("checkpoint", "c3"),
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
            s("decision", "count 2"),
            s("checkpoint", "c3"),
            s("result", "r"),
            s("completed", "wall 7"),
        ];
        // Killed after c2's state was stored, before its entry: resumed after it.
        let lost_entry = vec![
            s("decision", "count 0"),
            s("checkpoint", "c1"),
            s("decision", "count 1"),
            s("decision", "count 2"),
            s("checkpoint", "c3"),
            s("result", "r"),
        ];
        let (a, ra) = logical_steps(&clean);
        let (b, rb) = logical_steps(&replayed);
        let (c, rc) = logical_steps(&lost_entry);
        assert_eq!((ra, rb, rc), (0, 1, 0));
        assert_eq!(differs(&a, &b), None);
        assert_eq!(differs(&a, &c), None);
        // A lost step is a difference.
        let lost = vec![
            s("decision", "count 0"),
            s("checkpoint", "c1"),
            s("checkpoint", "c2"),
            s("decision", "count 2"),
            s("result", "r"),
        ];
        let (d, _) = logical_steps(&lost);
        assert!(
            differs(&a, &d)
                .unwrap()
                .contains("first difference at step 1")
        );
        // A step repeated across a checkpoint is a duplicate, not a replay.
        let dup = vec![
            s("decision", "count 0"),
            s("checkpoint", "c1"),
            s("decision", "count 0"),
            s("decision", "count 1"),
            s("checkpoint", "c2"),
            s("decision", "count 2"),
            s("result", "r"),
        ];
        let (e, re) = logical_steps(&dup);
        assert_eq!(re, 0);
        assert!(differs(&a, &e).is_some());
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
