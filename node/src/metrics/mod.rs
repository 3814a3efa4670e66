//! What a node counts and measures, lock-free: the counters read by the local API
//! (`GET /v1/metrics`, as [`MetricsSnapshot`] JSON) and by tests, and the gauges and
//! histograms of the Prometheus endpoint. One [`Metrics`] per node, shared in an `Arc` by the
//! node's loop, the storage worker and the hire tasks; updating it never blocks and never
//! does I/O.
//!
//! [`prometheus`] holds the Prometheus-only metrics and names every metric (`souk_*`);
//! [`endpoint`] serves them on `GET /metrics` when the operator asks for it. Every metric is
//! listed in `docs/metrics.md`.

pub mod endpoint;
pub mod prometheus;

pub use prometheus::RunOutcome;

use std::net::SocketAddr;
use std::sync::OnceLock;

use serde::Serialize;

/// One counter (shared with the Prometheus registry: both read the same value).
#[derive(Debug, Default)]
pub struct Counter(prometheus_client::metrics::counter::Counter);

impl Counter {
    /// Adds one.
    pub fn inc(&self) {
        self.0.inc();
    }
    /// The current value.
    pub fn get(&self) -> u64 {
        self.0.get()
    }
    /// A handle on the same value, for the registry.
    fn shared(&self) -> prometheus_client::metrics::counter::Counter {
        self.0.clone()
    }
}

/// Every counter of a node.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Gossip messages received on the manifest topic.
    pub gossip_received: Counter,
    /// Gossip messages accepted (valid, new, forwarded).
    pub gossip_accepted: Counter,
    /// Gossip messages ignored (duplicates).
    pub gossip_ignored: Counter,
    /// Gossip messages rejected (invalid: not forwarded, sender penalised).
    pub gossip_rejected: Counter,
    /// Manifests received through sync.
    pub sync_received: Counter,
    /// Manifests from sync or search responses that were invalid.
    pub sync_rejected: Counter,
    /// Sync requests served.
    pub sync_served: Counter,
    /// Search requests served.
    pub search_served: Counter,
    /// Manifests this node published (including re-announcements).
    pub published: Counter,
    /// Manifests removed because they expired.
    pub expired: Counter,
    /// Peers banned for repeated invalid input.
    pub peers_banned: Counter,
    /// Surplus peers disconnected by the peer manager.
    pub peers_pruned: Counter,
    /// Store writes dropped because the storage queue was full (re-fetched by sync later).
    pub store_dropped: Counter,
    /// Store operations that failed.
    pub store_errors: Counter,
    /// Outcome records admitted (gossip, sync, fetch or published here).
    pub outcomes_admitted: Counter,
    /// Outcome records and equivocation proofs refused as invalid (gossip, sync or fetch).
    pub outcomes_rejected: Counter,
    /// Equivocation proofs admitted.
    pub proofs_admitted: Counter,
    /// Providers newly flagged by an admitted proof.
    pub providers_flagged: Counter,
    /// Provider: offers and counters made (each holds a slot until accepted or lapsed).
    pub hires_offered: Counter,
    /// Provider: requests declined because every slot of the agent was taken.
    pub hires_declined_capacity: Counter,
    /// Provider: calls answered `busy` (a full inbox, or an acceptance without a slot).
    pub hire_calls_busy: Counter,
    /// Gauges and histograms only the Prometheus endpoint shows.
    detail: prometheus::Detail,
    /// Where the Prometheus endpoint listens, once it does.
    endpoint: OnceLock<SocketAddr>,
}

/// A point-in-time copy of [`Metrics`], for JSON.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct MetricsSnapshot {
    /// See [`Metrics::gossip_received`].
    pub gossip_received: u64,
    /// See [`Metrics::gossip_accepted`].
    pub gossip_accepted: u64,
    /// See [`Metrics::gossip_ignored`].
    pub gossip_ignored: u64,
    /// See [`Metrics::gossip_rejected`].
    pub gossip_rejected: u64,
    /// See [`Metrics::sync_received`].
    pub sync_received: u64,
    /// See [`Metrics::sync_rejected`].
    pub sync_rejected: u64,
    /// See [`Metrics::sync_served`].
    pub sync_served: u64,
    /// See [`Metrics::search_served`].
    pub search_served: u64,
    /// See [`Metrics::published`].
    pub published: u64,
    /// See [`Metrics::expired`].
    pub expired: u64,
    /// See [`Metrics::peers_banned`].
    pub peers_banned: u64,
    /// See [`Metrics::peers_pruned`].
    #[serde(default)]
    pub peers_pruned: u64,
    /// See [`Metrics::store_dropped`].
    pub store_dropped: u64,
    /// See [`Metrics::store_errors`].
    pub store_errors: u64,
    /// See [`Metrics::outcomes_admitted`].
    #[serde(default)]
    pub outcomes_admitted: u64,
    /// See [`Metrics::outcomes_rejected`].
    #[serde(default)]
    pub outcomes_rejected: u64,
    /// See [`Metrics::proofs_admitted`].
    #[serde(default)]
    pub proofs_admitted: u64,
    /// See [`Metrics::providers_flagged`].
    #[serde(default)]
    pub providers_flagged: u64,
    /// See [`Metrics::hires_offered`].
    #[serde(default)]
    pub hires_offered: u64,
    /// See [`Metrics::hires_declined_capacity`].
    #[serde(default)]
    pub hires_declined_capacity: u64,
    /// See [`Metrics::hire_calls_busy`].
    #[serde(default)]
    pub hire_calls_busy: u64,
}

impl Metrics {
    /// Where the Prometheus endpoint of this node listens (`None`: it is off).
    pub fn endpoint(&self) -> Option<SocketAddr> {
        self.endpoint.get().copied()
    }

    /// Every counter of the JSON snapshot with its Prometheus name (without `_total`) and
    /// help text.
    fn counters(&self) -> [(&'static str, &'static str, &Counter); 21] {
        [
            (
                "souk_gossip_received",
                "Gossip messages received on the manifest topic",
                &self.gossip_received,
            ),
            (
                "souk_gossip_accepted",
                "Gossip messages accepted (valid, new, forwarded)",
                &self.gossip_accepted,
            ),
            (
                "souk_gossip_ignored",
                "Gossip messages ignored (duplicates)",
                &self.gossip_ignored,
            ),
            (
                "souk_gossip_rejected",
                "Gossip messages rejected (invalid: not forwarded, sender penalised)",
                &self.gossip_rejected,
            ),
            (
                "souk_sync_received",
                "Manifests received through sync",
                &self.sync_received,
            ),
            (
                "souk_sync_rejected",
                "Manifests from sync or search responses that were invalid",
                &self.sync_rejected,
            ),
            (
                "souk_sync_served",
                "Sync requests served",
                &self.sync_served,
            ),
            (
                "souk_search_served",
                "Search requests served",
                &self.search_served,
            ),
            (
                "souk_manifests_published",
                "Manifests this node published (including re-announcements)",
                &self.published,
            ),
            (
                "souk_manifests_expired",
                "Manifests removed because they expired",
                &self.expired,
            ),
            (
                "souk_peers_banned",
                "Peers banned for repeated invalid input",
                &self.peers_banned,
            ),
            (
                "souk_peers_pruned",
                "Surplus peers disconnected by the peer manager",
                &self.peers_pruned,
            ),
            (
                "souk_store_dropped",
                "Store writes dropped because the storage queue was full",
                &self.store_dropped,
            ),
            (
                "souk_store_errors",
                "Store operations that failed",
                &self.store_errors,
            ),
            (
                "souk_outcomes_admitted",
                "Outcome records admitted (gossip, sync, fetch or published here)",
                &self.outcomes_admitted,
            ),
            (
                "souk_outcomes_rejected",
                "Outcome records and equivocation proofs refused as invalid",
                &self.outcomes_rejected,
            ),
            (
                "souk_proofs_admitted",
                "Equivocation proofs admitted",
                &self.proofs_admitted,
            ),
            (
                "souk_providers_flagged",
                "Providers newly flagged by an admitted equivocation proof",
                &self.providers_flagged,
            ),
            (
                "souk_hires_offered",
                "Provider: offers and counters made",
                &self.hires_offered,
            ),
            (
                "souk_hires_declined_capacity",
                "Provider: hire requests declined because every slot of the agent was taken",
                &self.hires_declined_capacity,
            ),
            (
                "souk_hire_calls_busy",
                "Provider: hire calls answered busy",
                &self.hire_calls_busy,
            ),
        ]
    }

    /// Copies every counter.
    pub fn snapshot(&self) -> MetricsSnapshot {
        MetricsSnapshot {
            gossip_received: self.gossip_received.get(),
            gossip_accepted: self.gossip_accepted.get(),
            gossip_ignored: self.gossip_ignored.get(),
            gossip_rejected: self.gossip_rejected.get(),
            sync_received: self.sync_received.get(),
            sync_rejected: self.sync_rejected.get(),
            sync_served: self.sync_served.get(),
            search_served: self.search_served.get(),
            published: self.published.get(),
            expired: self.expired.get(),
            peers_banned: self.peers_banned.get(),
            peers_pruned: self.peers_pruned.get(),
            store_dropped: self.store_dropped.get(),
            store_errors: self.store_errors.get(),
            outcomes_admitted: self.outcomes_admitted.get(),
            outcomes_rejected: self.outcomes_rejected.get(),
            proofs_admitted: self.proofs_admitted.get(),
            providers_flagged: self.providers_flagged.get(),
            hires_offered: self.hires_offered.get(),
            hires_declined_capacity: self.hires_declined_capacity.get(),
            hire_calls_busy: self.hire_calls_busy.get(),
        }
    }
}
