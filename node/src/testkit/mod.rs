//! Shared test kit (feature `test-utils`): in-process nodes on loopback TCP with their own
//! temporary stores, event-driven waits with timeouts (never fixed sleeps), agent fixtures,
//! and hiring helpers. Used by `tests/`, the node's benches and testnet tests, so that no
//! harness is copied between them.
#![allow(missing_docs)]

mod agents;
mod api;
mod hires;
mod http;
mod node;
mod outcomes;
mod sandbox;

pub use agents::{AGENT_PRELUDE, agent, python_agent, script_agent, steps_agent};
pub use api::serve_api;
pub use hires::{
    all_steps, finds, hire, hire_record, new_hire, publish_and_find, verified_bundle,
    wait_for_record, wait_for_state,
};
pub use http::read_response;
pub use node::{
    TIMEOUT, TestNode, provider_and_client, provider_and_client_with, seed, start_node,
    start_node_with, test_options, wait_for, wait_for_some,
};
pub use outcomes::{SettledHire, attest, equivocation_proof, outcome_record, settled_hire};
pub use sandbox::{sandbox_helper, sandboxed_settings};
