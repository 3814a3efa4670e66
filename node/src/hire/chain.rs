//! The provider's receipt chain of one hire, as its job extends it: where a receipt is
//! appended. Every entry is signed and stored together with its private payload and the
//! updated hire record in one store transaction, before anyone is told about it. A
//! terminal entry records the hire's usage (agreed price, wall time, steps, network calls),
//! tallied here from the chain exactly as a verifier tallies it (rule R9). The store write's
//! time goes to `souk_store_op_seconds{op="append_receipt"}` (or `_deferred`).

use souk_protocol::Hash;
use souk_protocol::Timestamp;
use souk_protocol::hire::HireState;
use souk_protocol::negotiation::Price;
use souk_protocol::receipt::{EntryKind, ReceiptEntry, SignedEntry, commit};
use souk_protocol::signed::Signed;
use souk_protocol::verify::Tally;

use super::ctx::{Ctx, blocking};
use super::error::HireError;
use super::record::HireRecord;
use crate::now_ms;

/// The tip of a hire's chain: what the next entry links to.
pub(super) struct Chain {
    next_seq: u64,
    prev: Hash,
    last_time: Timestamp,
    /// What the chain's entries add up to.
    used: Tally,
    /// The hire's state after the last entry.
    pub(super) state: HireState,
}

/// Entries read per store call while tallying a stored chain.
const TALLY_PAGE: usize = 1024;

impl Chain {
    /// The tip of hire `id`'s stored chain; `state` is the stored record's (an empty chain
    /// starts at `Accepted`).
    pub(super) async fn load(ctx: &Ctx, id: Hash, state: HireState) -> Result<Chain, HireError> {
        let store = ctx.store.clone();
        // The whole stored chain is read once (in pages) to tally its usage.
        let last = blocking(move || {
            let mut used = Tally::default();
            let mut last: Option<(u64, SignedEntry)> = None;
            let mut from = 0;
            loop {
                let page = store.receipts(&id, from, TALLY_PAGE)?;
                let Some((seq, _)) = page.last() else { break };
                from = seq + 1;
                for (seq, raw) in page {
                    let entry = SignedEntry::decode_bytes(&raw)
                        .map_err(|e| HireError::corrupt(id, "receipt", e))?;
                    used.add(&entry.body().kind, entry.body().time);
                    last = Some((seq + 1, entry));
                }
            }
            Ok((used, last))
        })
        .await?;
        Ok(match last {
            (_, None) => Chain::empty(),
            (used, Some((count, entry))) => Chain {
                next_seq: count,
                prev: entry.id(),
                last_time: entry.body().time,
                used,
                state,
            },
        })
    }

    /// The tip of a chain with no entry yet (a hire whose contract was just stored).
    pub(super) fn empty() -> Chain {
        Chain {
            next_seq: 0,
            prev: Hash::ZERO,
            last_time: 0,
            used: Tally::default(),
            state: HireState::Accepted,
        }
    }

    /// True once the chain has an entry.
    pub(super) fn started(&self) -> bool {
        self.next_seq > 0
    }

    /// Signs and appends the next entry of `record`'s hire; `payload` goes under a fresh
    /// salted commitment. Returns the updated record, stored with the entry. Fails only if
    /// the store fails (the job then stops and resumes later); the tip moves only on success.
    pub(super) async fn append(
        &mut self,
        ctx: &Ctx,
        record: &HireRecord,
        mut kind: EntryKind,
        payload: Option<Vec<u8>>,
    ) -> Result<HireRecord, HireError> {
        let hire_id = record.hire_id;
        let next_state = match kind.event() {
            Some(ev) => self.state.apply(ev).map_err(|e| {
                HireError::corrupt(hire_id, "receipt chain", format!("{e} ({})", kind.name()))
            })?,
            None => self.state,
        };
        let opened = match payload {
            Some(p) => {
                let salt = crate::data_dir::random_32()
                    .map_err(|e| HireError::corrupt(hire_id, "salt", e))?;
                Some((*salt, p))
            }
            None => None,
        };
        let now = now_ms().max(self.last_time);
        if kind.is_terminal() {
            let price = Price {
                currency: record.currency.clone(),
                amount: record.price,
            };
            kind.set_usage(self.used.usage(&price, now));
        }
        let entry = Signed::sign(
            ReceiptEntry {
                hire_id,
                seq: self.next_seq,
                prev: self.prev,
                time: now,
                kind: kind.clone(),
                commitment: opened.as_ref().map(|(s, p)| commit(s, p)),
            },
            &ctx.key,
        );
        let mut record = record.clone();
        record.set_state(next_state, now);
        record.entries = self.next_seq + 1;
        if let EntryKind::Failed { message, .. } = &kind {
            record.error = Some(message.clone());
        }
        let bytes = entry.to_bytes();
        let stored_payload = opened.map(|(s, p)| {
            let mut v = s.to_vec();
            v.extend_from_slice(&p);
            v
        });
        let store = ctx.store.clone();
        let seq = self.next_seq;
        let rec_bytes = record.to_bytes();
        // Steps are group-committed: appended without a disk sync, and made durable (one
        // sync for all of them) before any of them is streamed to the client. Terminal
        // entries and answers are synced at once (an answer's client is told "ok" after).
        let synced = kind.is_terminal() || matches!(kind, EntryKind::InputProvided);
        let metrics = ctx.metrics.clone();
        blocking(move || {
            let payload = stored_payload.as_deref();
            let started = std::time::Instant::now();
            let appended = if synced {
                store.append_receipt(&hire_id, seq, &bytes, payload, Some(&rec_bytes))
            } else {
                store.append_receipt_deferred(&hire_id, seq, &bytes, payload, Some(&rec_bytes))
            };
            let op = if synced {
                "append_receipt"
            } else {
                "append_receipt_deferred"
            };
            metrics.store_op(op, started.elapsed());
            appended?;
            Ok(())
        })
        .await?;
        self.next_seq += 1;
        self.prev = entry.id();
        self.last_time = now;
        self.used.add(&kind, now);
        self.state = next_state;
        Ok(record)
    }
}
