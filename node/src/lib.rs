//! # souk-node
//!
//! The Souk node: a libp2p swarm that gossips, syncs and searches signed agent manifests,
//! a redb store, an in-memory search index, the provider's publisher, and the local HTTP
//! API the `souk` CLI drives it through. The binary (`src/main.rs`, `src/cli/`) is a thin
//! layer over this library; tests start nodes in-process through [`service::start`].
//!
//! Map: [`config`] (config.toml), [`data_dir`] (on-disk layout, keys, token), [`agent_file`]
//! (agent.toml -> manifest fields), [`agent_package`] (what the runtime digest covers, what a
//! sandbox may show), [`swarm`] (libp2p behaviours and codecs), [`discovery`]
//! (where inbound manifests are admitted or rejected), [`outcomes`] (where outcome records and
//! equivocation proofs are admitted, and the reputation ledger), [`peer_score`] (penalties and bans),
//! [`connections`] (how many peers to keep, which surplus ones to drop),
//! [`publisher`] (signing and re-announcing local agents), [`storage`] (the store worker
//! thread), [`store_file`] (opening a data directory's store, refusing a lost one), [`service`] (the event loop and its handle), [`hire`] (the hire actor: both sides
//! of every hire), [`api`] (local HTTP API and client), [`fd_limit`] (the descriptor budget),
//! [`metrics`] (counters, gauges, histograms, the Prometheus endpoint); `testkit` (feature
//! `test-utils`) is the harness shared by tests and benches.

pub mod a2a;
pub mod agent_file;
pub mod agent_package;
pub mod agent_ref;
pub mod api;
pub mod card;
pub mod clock;
pub mod config;
pub mod connections;
pub mod data_dir;
pub mod discovery;
pub mod fd_limit;
pub mod hire;
pub mod local_run;
pub mod mcp;
pub mod metrics;
pub mod outcomes;
pub mod peer_score;
pub mod publisher;
pub mod schema;
pub mod service;
pub mod storage;
pub mod store_file;
pub mod swarm;
#[cfg(any(test, feature = "test-utils"))]
pub mod testkit;

/// The node's time: milliseconds since the Unix epoch on its [`clock`] (the system clock
/// unless a testnet gave the node a faster one).
pub fn now_ms() -> u64 {
    clock::now_ms()
}
