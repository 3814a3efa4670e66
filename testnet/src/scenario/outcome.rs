//! After a run, the network's figures from the nodes' events: which full nodes were due each
//! manifest version and got it (or a newer one first), who converged, what crossed a
//! partition, how slow a slowed link was.

use std::collections::HashMap;

use super::observe::Seen;
use super::workload::Publication;

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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

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
