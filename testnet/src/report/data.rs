//! The raw record of one scenario run, as `souk-testnet run` collects it: the nodes, the
//! faults injected, every manifest and where it arrived, every hire, the periodic resource
//! samples and the assertion results. Written verbatim into `report.json` under `"run"`.
//!
//! Pure data: no I/O and no derived figures here (those are in `stats`). Every time is in
//! milliseconds since the start of the run unless its name ends in `_unix_ms`.

use serde::{Deserialize, Serialize};

/// Everything recorded during one run of a scenario.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct RunData {
    /// The scenario's name (from its file).
    pub(crate) scenario: String,
    /// The seed that drove every random choice of the run (random targets, workload timing).
    pub(crate) seed: u64,
    /// When the run started, in milliseconds since the Unix epoch.
    pub(crate) started_unix_ms: u64,
    /// How long the run lasted, from start to the last node stopped.
    pub(crate) duration_ms: u64,
    /// How the nodes ran: `"processes"` (one `souk` process each) or `"in-process"`.
    pub(crate) mode: String,
    /// Every node of the network, once each.
    pub(crate) nodes: Vec<NodeSummary>,
    /// The faults injected, in the order they happened.
    pub(crate) faults: Vec<FaultMark>,
    /// Every manifest published during the run and the nodes it reached.
    pub(crate) manifests: Vec<ManifestRun>,
    /// How many nodes should receive each manifest, not counting its publisher (the full
    /// nodes other than the publisher, in the usual case).
    pub(crate) expected_receivers: u32,
    /// Every hire the workload started.
    pub(crate) hires: Vec<HireRun>,
    /// Periodic measurements of each node (peers, CPU, memory).
    pub(crate) samples: Vec<Sample>,
    /// The scenario's assertions, checked at the end of the run.
    pub(crate) assertions: Vec<AssertionResult>,
    /// Facts about the run worth a line in the report (e.g. memory per node in-process).
    #[serde(default)]
    pub(crate) notes: Vec<String>,
}

/// One node of the network over the whole run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct NodeSummary {
    /// The node's name in the scenario (`n1`, `client`, …).
    pub(crate) name: String,
    /// `"full"` or `"light"`.
    pub(crate) mode: String,
    /// How many times the node was killed (`kill -9` or equivalent).
    pub(crate) kills: u32,
    /// How many times the node was started again after a kill or a stop.
    pub(crate) restarts: u32,
    /// The highest resident memory seen for the node, if it was measured.
    pub(crate) peak_rss_bytes: Option<u64>,
    /// The CPU time the node used over the run (user + system), if it was measured.
    pub(crate) cpu_seconds: Option<f64>,
}

/// One fault injected at a moment of the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct FaultMark {
    /// When the fault was injected.
    pub(crate) at_ms: u64,
    /// What was done: `kill`, `restart`, `stop`, `start`, `partition`, `heal`, `latency`, ….
    pub(crate) kind: String,
    /// What it was done to: a node name, or a description of the groups (`n1,n2|n3,n4`).
    pub(crate) target: String,
    /// Anything else worth knowing (`100ms ±20ms`, `loss 5%`), if any.
    pub(crate) detail: Option<String>,
}

/// One manifest published during the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ManifestRun {
    /// The manifest's id (hex).
    pub(crate) id: String,
    /// The node that published it.
    pub(crate) publisher: String,
    /// When the publisher published it.
    pub(crate) published_at_ms: u64,
    /// Each node that admitted it, with when (the publisher's own, if listed, is ignored by
    /// the statistics).
    pub(crate) deliveries: Vec<Delivery>,
    /// How many nodes were expected to receive it (those up while it spread), when the run
    /// knows; else the run's `expected_receivers`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) expected: Option<u32>,
}

/// A manifest admitted by one node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Delivery {
    /// The node that admitted the manifest.
    pub(crate) node: String,
    /// When it admitted it.
    pub(crate) at_ms: u64,
}

/// One hire started by the workload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct HireRun {
    /// The hire's id, once the provider accepted it (none if it never got one).
    pub(crate) id: Option<String>,
    /// The node that hired.
    pub(crate) client: String,
    /// The node that ran the agent.
    pub(crate) provider: String,
    /// The agent hired (its name or handle).
    pub(crate) agent: String,
    /// When the client asked for the hire.
    pub(crate) started_at_ms: u64,
    /// When the hire reached its end state, if it did before the run ended.
    pub(crate) ended_at_ms: Option<u64>,
    /// How it ended: `completed`, `failed`, `canceled`, `expired`, `rejected`, `closed`
    /// (ended by its client: the provider equivocated), `unfinished` (still running when the
    /// run ended) or `error` (the testnet could not follow it).
    pub(crate) outcome: String,
    /// How many receipts its chain holds.
    pub(crate) entries: u64,
    /// Whether its exported chain verified, if it was checked.
    pub(crate) verified: Option<bool>,
    /// The error or reason given, if it did not complete.
    pub(crate) error: Option<String>,
}

/// One measurement of one node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Sample {
    /// When the measurement was taken.
    pub(crate) at_ms: u64,
    /// The node measured.
    pub(crate) node: String,
    /// How many peers the node was connected to, if it answered.
    pub(crate) peers: Option<u32>,
    /// CPU use since the previous sample, in percent of one core, if measured.
    pub(crate) cpu_percent: Option<f64>,
    /// Resident memory, if measured.
    pub(crate) rss_bytes: Option<u64>,
}

/// One assertion of the scenario and whether it held.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct AssertionResult {
    /// The assertion as the scenario names it (`manifest delivery`).
    pub(crate) name: String,
    /// What was required (`>= 99%`).
    pub(crate) expected: String,
    /// What the run measured (`100.0%`).
    pub(crate) observed: String,
    /// Whether it held.
    pub(crate) passed: bool,
}
