//! Hires: negotiation, running the agent (provider side), following and settling (client
//! side). Where a hire's lifecycle is driven; the states themselves are the pure
//! [`souk_protocol::hire`] machine.
//!
//! - [`actor`]: the task that owns every hire; its loop only moves messages and state.
//! - `state`: the actor's state (records, running jobs, followers, parked long-polls, tasks).
//! - `serve`: the provider's answers to `/souk/hire/1` calls (quote, contract, receipts,
//!   answers, cancels, the client's verdict).
//! - `api`: the local API's operations (create, answer, cancel, settle, export).
//! - `negotiate`: the client's request -> offer | counter | decline -> accept.
//! - `job`: the provider's job: runs the agent, turns its steps into entries; `launch`:
//!   what it needs around the agent's process (dirs, limits, leftovers of a crash).
//! - `ahead`: records of sandboxes started ahead of any hire (standbys, warm processes).
//! - `chain`: the provider's chain of a hire: where a receipt is appended.
//! - `follow`: the client's follower: where a received receipt is verified and stored.
//! - `settle`: the client's attestation and its delivery.
//! - `export`: the read side (verified chain, receipts view, output, bundle).
//! - [`handle`] ([`HireOps`]), [`msg`], [`error`] ([`HireError`]), [`record`]
//!   ([`HireRecord`]), [`view`], [`transport`] ([`HireNetwork`]), [`policy`] (pure
//!   negotiation policy), `ctx` (what tasks share).

pub mod actor;
mod ahead;
mod api;
mod capacity;
mod chain;
pub mod credentials;
mod ctx;
mod egress;
pub mod error;
mod export;
mod follow;
pub mod handle;
mod job;
mod launch;
pub mod msg;
mod negotiate;
pub mod offers;
mod outcome;
pub mod policy;
pub mod record;
mod relay;
mod serve;
pub mod settings;
mod settle;
mod state;
#[cfg(test)]
mod tests;
pub mod transport;
pub mod view;
mod warm;

pub use actor::{HireActor, HireDeps, InboundSender};
pub use error::HireError;
pub use handle::HireOps;
pub(crate) use offers::offer;
pub use offers::{OfferBook, OfferLookup, Offerable, Offers};
pub use record::{HireRecord, Role};
pub use settings::{EgressSettings, HireSettings};
pub use transport::{HireNetwork, PublicRecord, Responder, TransportError};
pub use view::{NewHire, ReceiptsView, StepView, WorkdirView, summarize};
pub use warm::{MAX_PREPARED, MAX_WARM, PREPARED_SANDBOXES, STANDBY_SANDBOXES};
