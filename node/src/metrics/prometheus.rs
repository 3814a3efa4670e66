//! The Prometheus side of [`Metrics`]: the gauges, labelled families and histograms that only
//! the scrape endpoint shows ([`Detail`], updated through the methods on [`Metrics`] below),
//! and [`registry`], which names every metric of a node (`souk_*`, the JSON counters
//! included) with its help text, and [`encode`], the OpenMetrics text of a registry. Pure:
//! no I/O, no locks held beyond one update.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use souk_protocol::hire::HireState;

use super::Metrics;

/// Upper bounds of `souk_agent_run_seconds`: from a warm start's fraction of a second to a
/// day-long hire.
const RUN_BUCKETS: [f64; 14] = [
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 14_400.0, 86_400.0,
];

/// Upper bounds of `souk_store_op_seconds`: from a deferred write (tens of microseconds) to a
/// disk sync on a busy disk.
const STORE_BUCKETS: [f64; 14] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
    5.0,
];

/// `souk_hires{role,state}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct HireLabels {
    role: String,
    state: &'static str,
}

/// `souk_hire_transitions_total{role,to}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct TransitionLabels {
    role: String,
    to: &'static str,
}

/// `souk_agent_runs_total{outcome}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

/// `souk_egress_calls_total{verdict}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct VerdictLabels {
    verdict: &'static str,
}

/// `souk_sandboxes_ready{kind}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

/// `souk_store_op_seconds{op}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct OpLabels {
    op: &'static str,
}

/// How an agent run ended, as `souk_agent_runs_total` labels it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunOutcome {
    /// The hire reached this terminal state while the agent ran (`completed`, `failed`,
    /// `canceled`, `expired`).
    Ended(HireState),
    /// The agent could not be started.
    StartFailed,
    /// The run stopped before the hire ended: the node is stopping, or the store failed
    /// (the hire resumes later, in a new run).
    Interrupted,
}

impl RunOutcome {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            RunOutcome::Ended(state) => state.as_str(),
            RunOutcome::StartFailed => "start-failed",
            RunOutcome::Interrupted => "interrupted",
        }
    }
}

/// The metrics only the Prometheus endpoint shows.
#[derive(Debug)]
pub(super) struct Detail {
    peers_connected: Gauge,
    hires: Family<HireLabels, Gauge>,
    hire_transitions: Family<TransitionLabels, Counter>,
    agent_runs: Family<OutcomeLabels, Counter>,
    agent_run_seconds: Histogram,
    egress_calls: Family<VerdictLabels, Counter>,
    store_op_seconds: Family<OpLabels, Histogram>,
    sandboxes_ready: Family<KindLabels, Gauge>,
}

impl Default for Detail {
    fn default() -> Self {
        let egress_calls = Family::<VerdictLabels, Counter>::default();
        // Both verdicts show from the start (at 0), so a rate over them is defined.
        for verdict in ["allowed", "denied"] {
            drop(egress_calls.get_or_create(&VerdictLabels { verdict }));
        }
        let sandboxes_ready = Family::<KindLabels, Gauge>::default();
        for kind in ["warm", "prepared"] {
            drop(sandboxes_ready.get_or_create(&KindLabels { kind }));
        }
        Detail {
            peers_connected: Gauge::default(),
            hires: Family::default(),
            hire_transitions: Family::default(),
            agent_runs: Family::default(),
            agent_run_seconds: Histogram::new(RUN_BUCKETS),
            egress_calls,
            store_op_seconds: Family::new_with_constructor(|| Histogram::new(STORE_BUCKETS)),
            sandboxes_ready,
        }
    }
}

impl Metrics {
    /// A peer connected (its first connection).
    pub fn peer_connected(&self) {
        self.detail.peers_connected.inc();
    }

    /// A peer disconnected (its last connection closed).
    pub fn peer_disconnected(&self) {
        self.detail.peers_connected.dec();
    }

    /// A hire of this node in `role` (`provider` or `client`) moved from `from` (`None`: a
    /// new hire) to `to`: the `souk_hires` gauge of `from` goes down, that of `to` up, and
    /// `souk_hire_transitions_total{role,to}` counts it. `from == Some(to)` changes nothing.
    pub fn hire_transition(&self, role: &str, from: Option<HireState>, to: HireState) {
        if from == Some(to) {
            return;
        }
        let d = &self.detail;
        if let Some(from) = from {
            d.hires
                .get_or_create(&HireLabels {
                    role: role.to_owned(),
                    state: from.as_str(),
                })
                .dec();
        }
        d.hires
            .get_or_create(&HireLabels {
                role: role.to_owned(),
                state: to.as_str(),
            })
            .inc();
        d.hire_transitions
            .get_or_create(&TransitionLabels {
                role: role.to_owned(),
                to: to.as_str(),
            })
            .inc();
    }

    /// A hire in `role` and `state` loaded from the store at start: counted in `souk_hires`
    /// only (it made no transition).
    pub fn hires_loaded(&self, role: &str, state: HireState) {
        self.detail
            .hires
            .get_or_create(&HireLabels {
                role: role.to_owned(),
                state: state.as_str(),
            })
            .inc();
    }

    /// An agent run (one start of the agent's process for a hire, up to its end) ended.
    pub fn agent_run(&self, outcome: RunOutcome, took: Duration) {
        self.detail
            .agent_runs
            .get_or_create(&OutcomeLabels {
                outcome: outcome.as_str(),
            })
            .inc();
        self.detail.agent_run_seconds.observe(took.as_secs_f64());
    }

    /// A hire's egress proxy saw a call, let through (`denied == false`) or refused.
    pub fn egress_call(&self, denied: bool) {
        let verdict = if denied { "denied" } else { "allowed" };
        self.detail
            .egress_calls
            .get_or_create(&VerdictLabels { verdict })
            .inc();
    }

    /// A store operation `op` took `took`.
    pub fn store_op(&self, op: &'static str, took: Duration) {
        self.detail
            .store_op_seconds
            .get_or_create(&OpLabels { op })
            .observe(took.as_secs_f64());
    }

    /// Provider: sandboxes made ahead of any hire and ready now, warm processes (`booted`) or
    /// prepared sandboxes.
    pub fn sandboxes_ready(&self, booted: bool, n: usize) {
        let kind = if booted { "warm" } else { "prepared" };
        self.detail
            .sandboxes_ready
            .get_or_create(&KindLabels { kind })
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// Connected peers, as `souk_peers_connected` shows them.
    pub fn peers_connected(&self) -> i64 {
        self.detail.peers_connected.get()
    }
}

/// Every metric of `metrics` under its `souk_*` name, with help text. Built once per
/// endpoint; the registry shares the values (it reads what the node updates).
pub fn registry(metrics: &Metrics) -> Registry {
    let mut r = Registry::default();
    for (name, help, counter) in metrics.counters() {
        r.register(name, help, counter.shared());
    }
    let d = &metrics.detail;
    r.register(
        "souk_peers_connected",
        "Peers connected now",
        d.peers_connected.clone(),
    );
    r.register(
        "souk_hires",
        "Hires of this node by role (provider, client) and state, including ended ones",
        d.hires.clone(),
    );
    r.register(
        "souk_hire_transitions",
        "Hire state transitions by role and state entered",
        d.hire_transitions.clone(),
    );
    r.register(
        "souk_agent_runs",
        "Agent runs (one start of an agent's process for a hire) by how they ended",
        d.agent_runs.clone(),
    );
    r.register_with_unit(
        "souk_agent_run",
        "Duration of agent runs, from the start of the agent's process to the end of its run",
        Unit::Seconds,
        d.agent_run_seconds.clone(),
    );
    r.register(
        "souk_egress_calls",
        "Network calls of hired agents seen by their egress proxies, allowed or denied",
        d.egress_calls.clone(),
    );
    r.register(
        "souk_sandboxes_ready",
        "Provider: sandboxes made ahead of any hire and ready now, by kind (warm: its process started; prepared: no process yet)",
        d.sandboxes_ready.clone(),
    );
    r.register_with_unit(
        "souk_store_op",
        "Duration of store operations by kind",
        Unit::Seconds,
        d.store_op_seconds.clone(),
    );
    r
}

/// The OpenMetrics text of `registry` (ends with `# EOF`).
pub fn encode(registry: &Registry) -> String {
    let mut text = String::with_capacity(8 * 1024);
    // Writing to a String cannot fail; an encoder error would be a bug in a metric.
    if let Err(e) = prometheus_client::encoding::text::encode(&mut text, registry) {
        tracing::error!("cannot encode the metrics: {e}");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(m: &Metrics) -> String {
        encode(&registry(m))
    }

    /// The value of the sample line `series` (name with labels), if present.
    fn sample(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    }

    #[test]
    fn counters_show_with_help_and_follow_increments() {
        let m = Metrics::default();
        let t = text(&m);
        assert!(
            t.contains(
                "# HELP souk_gossip_received Gossip messages received on the manifest topic."
            ),
            "{t}"
        );
        assert!(t.contains("# TYPE souk_gossip_received counter"), "{t}");
        assert_eq!(sample(&t, "souk_gossip_received_total"), Some(0.0), "{t}");
        m.gossip_received.inc();
        m.gossip_received.inc();
        m.published.inc();
        let t = text(&m);
        assert_eq!(sample(&t, "souk_gossip_received_total"), Some(2.0), "{t}");
        assert_eq!(
            sample(&t, "souk_manifests_published_total"),
            Some(1.0),
            "{t}"
        );
        // The JSON snapshot reads the same values.
        assert_eq!(m.snapshot().gossip_received, 2);
        assert!(t.ends_with("# EOF\n"), "{t}");
    }

    #[test]
    fn every_json_counter_is_exported_once() {
        let m = Metrics::default();
        let t = text(&m);
        let json = serde_json::to_value(m.snapshot()).unwrap_or_default();
        let fields = json.as_object().map_or(0, |o| o.len());
        let names = m.counters().map(|(n, _, _)| n);
        assert_eq!(
            names.len(),
            fields,
            "a JSON counter is missing from the registry"
        );
        for name in names {
            assert_eq!(
                t.matches(&format!("# TYPE {name} counter\n")).count(),
                1,
                "{name}"
            );
            assert_eq!(sample(&t, &format!("{name}_total")), Some(0.0), "{name}");
        }
    }

    #[test]
    fn hire_transitions_move_the_gauges() {
        let m = Metrics::default();
        m.hire_transition("provider", None, HireState::Requested);
        m.hire_transition(
            "provider",
            Some(HireState::Requested),
            HireState::Negotiating,
        );
        m.hire_transition("client", None, HireState::Requested);
        m.hires_loaded("provider", HireState::Completed);
        // Not a transition.
        m.hire_transition(
            "provider",
            Some(HireState::Negotiating),
            HireState::Negotiating,
        );
        let t = text(&m);
        let hires = |role: &str, state: &str| {
            sample(
                &t,
                &format!("souk_hires{{role=\"{role}\",state=\"{state}\"}}"),
            )
        };
        assert_eq!(hires("provider", "requested"), Some(0.0), "{t}");
        assert_eq!(hires("provider", "negotiating"), Some(1.0), "{t}");
        assert_eq!(hires("provider", "completed"), Some(1.0), "{t}");
        assert_eq!(hires("client", "requested"), Some(1.0), "{t}");
        let moved = |role: &str, to: &str| {
            sample(
                &t,
                &format!("souk_hire_transitions_total{{role=\"{role}\",to=\"{to}\"}}"),
            )
        };
        assert_eq!(moved("provider", "requested"), Some(1.0), "{t}");
        assert_eq!(moved("provider", "negotiating"), Some(1.0), "{t}");
        // Loading is no transition.
        assert_eq!(moved("provider", "completed"), None, "{t}");
        assert!(t.contains("# TYPE souk_hires gauge"), "{t}");
    }

    #[test]
    fn peers_runs_calls_and_store_ops_render_with_labels() {
        let m = Metrics::default();
        m.peer_connected();
        m.peer_connected();
        m.peer_disconnected();
        m.agent_run(
            RunOutcome::Ended(HireState::Completed),
            Duration::from_millis(700),
        );
        m.agent_run(RunOutcome::StartFailed, Duration::from_millis(20));
        m.egress_call(true);
        m.store_op("put_agent", Duration::from_micros(300));
        let t = text(&m);
        assert_eq!(m.peers_connected(), 1);
        assert_eq!(sample(&t, "souk_peers_connected"), Some(1.0), "{t}");
        assert_eq!(
            sample(&t, "souk_agent_runs_total{outcome=\"completed\"}"),
            Some(1.0),
            "{t}"
        );
        assert_eq!(
            sample(&t, "souk_agent_runs_total{outcome=\"start-failed\"}"),
            Some(1.0),
            "{t}"
        );
        assert!(t.contains("# UNIT souk_agent_run_seconds seconds"), "{t}");
        assert_eq!(sample(&t, "souk_agent_run_seconds_count"), Some(2.0), "{t}");
        assert_eq!(
            sample(&t, "souk_agent_run_seconds_bucket{le=\"1.0\"}"),
            Some(2.0),
            "{t}"
        );
        assert_eq!(
            sample(&t, "souk_agent_run_seconds_bucket{le=\"0.5\"}"),
            Some(1.0),
            "{t}"
        );
        assert_eq!(
            sample(&t, "souk_egress_calls_total{verdict=\"denied\"}"),
            Some(1.0),
            "{t}"
        );
        assert_eq!(
            sample(&t, "souk_egress_calls_total{verdict=\"allowed\"}"),
            Some(0.0),
            "{t}"
        );
        assert_eq!(
            sample(&t, "souk_store_op_seconds_count{op=\"put_agent\"}"),
            Some(1.0),
            "{t}"
        );
        assert_eq!(
            sample(
                &t,
                "souk_store_op_seconds_bucket{le=\"0.0005\",op=\"put_agent\"}"
            ),
            Some(1.0),
            "{t}"
        );
    }

    #[test]
    fn every_sample_line_is_name_labels_value() {
        let m = Metrics::default();
        m.hire_transition("client", None, HireState::InputRequired);
        m.store_op("flush", Duration::from_millis(3));
        for line in text(&m).lines().filter(|l| !l.starts_with('#')) {
            let (series, value) = line
                .rsplit_once(' ')
                .unwrap_or_else(|| panic!("no value: {line:?}"));
            assert!(value.parse::<f64>().is_ok(), "{line:?}");
            let name = series.split('{').next().unwrap_or_default();
            assert!(name.starts_with("souk_"), "{line:?}");
            assert!(
                name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
                "{line:?}"
            );
        }
    }
}
