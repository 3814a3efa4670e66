//! Hires: negotiation, running the agent (provider side), following and settling (client
//! side). Where a hire's lifecycle is driven; the states themselves are the pure
//! [`souk_protocol::hire`] machine.
//!
//! - [`policy`]: how a provider answers a request and what a client accepts (pure).
//! - [`record`]: the durable per-hire record and the blobs stored beside it.
//! - [`provider`]: the job task that runs an agent and appends signed receipts.
//! - [`client`]: the follower that pulls, verifies and stores receipts.
//! - [`manager`]: owns every hire, answers hire calls, and serves the local API.

pub mod client;
pub mod manager;
pub mod policy;
pub mod provider;
pub mod record;

pub use manager::{HireManager, HireOps, NewHire};
pub use record::{HireRecord, Role};
