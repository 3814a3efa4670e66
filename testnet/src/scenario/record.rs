//! Turning what a run observed into the report's records: when each hire ended (its
//! client's last transition to an end state) and the resource samples with each node's
//! peer count at that moment.

use std::collections::HashMap;

use super::observe::{Seen, Usage};
use super::workload;
use crate::report::data::Sample;

/// When each hire reached an end state on its client (the last `hire_transition` to one).
pub(super) fn hire_end_times(events: &[Seen]) -> HashMap<String, u64> {
    let mut out = HashMap::new();
    for e in events {
        if e.event["type"] == "hire_transition"
            && e.event["role"] == "client"
            && e.event["to"].as_str().is_some_and(workload::is_terminal)
            && let (Some(id), Some(at)) = (e.event["hire_id"].as_str(), e.event["at_ms"].as_u64())
        {
            out.insert(id.to_owned(), at);
        }
    }
    out
}

/// A change of a node's peer count.
enum PeerChange {
    /// One more or one fewer.
    Delta(i64),
    /// A new incarnation's stream opened with this many peers.
    Baseline(i64),
}

/// Resource samples with each node's peer count at that moment (from its peer events, from
/// the count `souk node info` gave when its event stream opened).
pub(super) fn samples(usage: &[Usage], events: &[Seen], t0: u64) -> Vec<Sample> {
    let mut by_node: HashMap<&str, Vec<(u64, PeerChange)>> = HashMap::new();
    for e in events {
        let change = match e.event["type"].as_str() {
            Some("peer_connected") => PeerChange::Delta(1),
            Some("peer_disconnected") => PeerChange::Delta(-1),
            Some("peers_baseline") => PeerChange::Baseline(e.event["count"].as_i64().unwrap_or(0)),
            _ => continue,
        };
        let at = e.event["at_ms"].as_u64().unwrap_or(0);
        by_node.entry(&e.node).or_default().push((at, change));
    }
    usage
        .iter()
        .map(|u| {
            let peers = by_node.get(u.node.as_str()).map(|v| {
                let mut n: i64 = 0;
                for (at, c) in v {
                    if *at > u.at_ms {
                        break;
                    }
                    n = match c {
                        PeerChange::Delta(d) => (n + d).max(0),
                        PeerChange::Baseline(b) => *b,
                    };
                }
                u32::try_from(n).unwrap_or(0)
            });
            Sample {
                at_ms: u.at_ms.saturating_sub(t0),
                node: u.node.clone(),
                peers,
                cpu_percent: Some(u.cpu_percent),
                rss_bytes: Some(u.rss_bytes),
            }
        })
        .collect()
}
