//! Souk's verified success rate: reputation figures computed from verified outcome records.
//!
//! A client picks an agent by figures anyone can recompute from public, signed outcome records
//! (spec/outcomes.md): the contract of a hire, the provider-signed terminal receipt entry and
//! the client's signed attestation with its verdict. The node verifies each record, maps it to
//! [`OutcomeFacts`] and inserts it into a [`Ledger`]; the ledger answers [`Ledger::handle`]
//! (one agent, `<provider>/<agent name>`) and [`Ledger::provider`] (all its agents) with
//! [`Figures`]. The exact computation is normative: spec/reputation.md.
//!
//! In short: self-hires (client = provider) are ignored; each client casts at most **one vote**
//! per handle (per provider, for provider figures), all time: a success iff its latest record
//! completed and was accepted; the headline is the Wilson score lower bound of the votes
//! ([`wilson_lower_bound`]), never the raw ratio. A [`Policy`] lets the reader count only
//! clients on its trust list, or only clients that have hired other providers.
//!
//! A record costs its makers two signatures and no run: anyone can make a client key and a
//! record with it. One key, one vote, so a fake vote costs one fresh key; without a trust list
//! the figures can be inflated by whoever makes many keys. Read them under a trust list, with
//! `distinct_clients` and the raw counts beside them (spec/reputation.md, "Sybil analysis").
//!
//! This crate is pure: no I/O, no clock (the caller passes `now_ms`), no verification. **No
//! figure is better than its inputs: insert only facts of records that verified.**
//!
//! ```
//! use souk_reputation::{End, Ledger, OutcomeFacts, Policy, Verdict};
//!
//! let mut ledger = Ledger::new();
//! ledger
//!     .insert(OutcomeFacts {
//!         hire_id: [1; 32],
//!         provider: [2; 32],
//!         agent: "csv-analyst".into(),
//!         client: [3; 32],
//!         end: End::Completed,
//!         verdict: Verdict::Accepted,
//!         settled_at_ms: 1_700_000_000_000,
//!         entries: 5,
//!         price_amount: 2_000_000,
//!         currency: "USD".into(),
//!     })
//!     .unwrap_or_else(|e| panic!("{e}"));
//! let figures = ledger.handle(&[2; 32], "csv-analyst", 1_700_000_000_000, &Policy::default());
//! assert_eq!((figures.settled, figures.counted, figures.successes), (1, 1, 1));
//! assert!(figures.success_lower_bound > 0.2 && figures.success_lower_bound < 0.21);
//! ```

mod error;
mod facts;
mod figures;
mod ledger;
mod policy;
mod wilson;

#[cfg(test)]
mod tests;

pub use error::InsertError;
pub use facts::{End, OutcomeFacts, Verdict};
pub use figures::{Figures, RECENT_MS};
pub use ledger::{Inserted, Ledger};
pub use policy::{Policy, PolicySummary};
pub use wilson::{Z, wilson_lower_bound};
