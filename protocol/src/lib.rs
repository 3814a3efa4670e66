//! # souk-protocol
//!
//! The pure core of Souk, a peer-to-peer exchange where AI agents are offered, hired and
//! audited: identities, canonical CBOR, signed manifests, negotiation messages and contracts,
//! the hire state machine, hash-chained receipts, attestations, equivocation proofs, and their
//! offline verification. No I/O, no async runtime, no networking: everything here is a
//! deterministic function of its inputs, specified byte for byte in `spec/`.
//!
//! ```no_run
//! use souk_protocol::verify::{verify_bundle_bytes, SignatureCheck};
//!
//! let bytes = std::fs::read("run.souk").unwrap();
//! match verify_bundle_bytes(&bytes, SignatureCheck::Batch) {
//!     Ok(report) => println!("hire {} ended {} ({} entries)", report.hire_id, report.state, report.entries),
//!     Err(violation) => println!("invalid: {violation}"),
//! }
//! ```
//!
//! Module map: [`encoding`] (canonical CBOR), [`hash`] (ids and domain tags), [`identity`]
//! (keys and node ids), [`signature`] (the one definition of a valid signature, single and
//! batched), [`signed`] (the signed envelope), [`manifest`] (with [`json`], the JSON profile
//! of its schema fields), [`negotiation`], [`hire`] (lifecycle state machine), [`receipt`]
//! (entries, commitments, attestations), [`verify`] (chain and bundle verification),
//! [`equivocation`], [`bundle`] (the `.souk` file), [`rules`] (the numbered rules),
//! [`credential`] (credential policies, sealed grants, the relay protocol, denials),
//! [`outcome`] (outcome records: the compact proof of how a settled hire ended),
//! [`outcome_sync`] (the gossip topics and sync protocol that carry records and proofs).

pub mod bundle;
pub mod credential;
pub mod discovery;
pub mod encoding;
pub mod equivocation;
pub mod hash;
pub mod hire;
pub mod hiring;
pub mod identity;
pub mod json;
pub mod manifest;
pub mod negotiation;
pub mod outcome;
pub mod outcome_sync;
pub mod receipt;
pub mod rules;
#[cfg(feature = "serde")]
mod serde_impls;
pub mod signature;
pub mod signed;
pub mod verify;

#[cfg(feature = "vectors")]
pub mod vectors;

/// Milliseconds since the Unix epoch (UTC). Every timestamp in Souk is one.
pub type Timestamp = u64;

pub use hash::{Domain, Hash};
pub use identity::{Keypair, NodeId};
pub use rules::{Rule, Violation};
pub use signed::Signed;
