//! Hires (long-running jobs that must survive restarts and crashes): the `hires`, `receipts`,
//! `receipt_payloads` and `hire_blobs` tables (schema v2).
//!
//! Everything here is opaque bytes to the store: the hire record (JSON today), the signed
//! receipt entry envelopes, their private payloads (salt ++ payload today) and the per-hire
//! blobs. The store enforces one thing about them, the shape of each receipt chain: the entries
//! stored for a hire are exactly those at seq `0..n`, each written once and never changed. It
//! does not verify signatures or hash links: callers append only entries they have checked
//! (with `souk_protocol::verify::ChainVerifier`) or signed themselves.

use std::ops::Bound;

use redb::{ReadableTable, WriteTransaction};
use souk_protocol::Hash;

use crate::error::{DbContext, StoreError};
use crate::tables;
use crate::{Finish, Store};

/// One entry for [`Store::append_receipts`]: `(seq, signed entry envelope, private payload)`.
pub type ReceiptItem<'a> = (u64, &'a [u8], Option<&'a [u8]>);

/// What [`Store::append_receipt`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Appended {
    /// The entry was stored (with its payload and hire record, if given).
    New,
    /// The identical entry was already stored at this seq (a redelivery); nothing was written.
    Duplicate,
}

/// The number of entries stored for `hire` in `receipts`, which is also the next seq of its chain:
/// one more than the highest stored seq (the entries are exactly `0..n`), found with one
/// backwards step of a range scan instead of a count.
fn chain_len(
    receipts: &impl ReadableTable<&'static [u8], &'static [u8]>,
    hire: &Hash,
) -> Result<u64, StoreError> {
    let lo = tables::receipt_key(hire, 0);
    let hi = tables::receipt_key(hire, u64::MAX);
    let last = receipts
        .range::<&[u8]>(lo.as_slice()..=hi.as_slice())
        .with_ctx(|| format!("scanning receipts of hire {}", hire.short()))?
        .next_back();
    match last {
        None => Ok(0),
        Some(row) => {
            let (key, _) =
                row.with_ctx(|| format!("scanning receipts of hire {}", hire.short()))?;
            let seq = tables::decode_receipt_seq(key.value(), hire, "receipts")?;
            seq.checked_add(1).ok_or_else(|| {
                StoreError::corrupt(format!(
                    "receipts: hire {} has an entry at seq u64::MAX",
                    hire.short()
                ))
            })
        }
    }
}

/// Up to `limit` rows of `hire` from a table keyed by `hire ++ seq`, from `from_seq` on, in seq
/// order.
fn scan_chain(
    table: &impl ReadableTable<&'static [u8], &'static [u8]>,
    table_name: &str,
    hire: &Hash,
    from_seq: u64,
    limit: usize,
) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
    let lo = tables::receipt_key(hire, from_seq);
    let hi = tables::receipt_key(hire, u64::MAX);
    let context = || format!("scanning {table_name} of hire {}", hire.short());
    let range = table
        .range::<&[u8]>((
            Bound::Included(lo.as_slice()),
            Bound::Included(hi.as_slice()),
        ))
        .with_ctx(context)?;
    let mut rows = Vec::with_capacity(limit.min(1024));
    for row in range.take(limit) {
        let (key, value) = row.with_ctx(context)?;
        rows.push((
            tables::decode_receipt_seq(key.value(), hire, table_name)?,
            value.value().to_vec(),
        ));
    }
    Ok(rows)
}

/// Inserts `hire -> record` into `hires` within `txn`.
fn insert_hire(txn: &WriteTransaction, hire: &Hash, record: &[u8]) -> Result<(), StoreError> {
    let mut hires = txn.open_table(tables::HIRES).ctx("opening table hires")?;
    hires
        .insert(hire.0.as_slice(), record)
        .with_ctx(|| format!("writing hire {}", hire.short()))?;
    Ok(())
}

/// Inserts every `(name, bytes)` of `blobs` for `hire` into `hire_blobs` within `txn`.
fn insert_blobs(
    txn: &WriteTransaction,
    hire: &Hash,
    blobs: &[(&str, &[u8])],
) -> Result<(), StoreError> {
    let mut table = txn
        .open_table(tables::HIRE_BLOBS)
        .ctx("opening table hire_blobs")?;
    for (name, bytes) in blobs {
        table
            .insert(tables::blob_key(hire, name).as_slice(), *bytes)
            .with_ctx(|| format!("writing blob {name:?} of hire {}", hire.short()))?;
    }
    Ok(())
}

/// Removes from `table` (keyed by `hire ++ suffix`) every row of `hire`; returns how many.
fn remove_prefixed(
    txn: &WriteTransaction,
    table: tables::Bytes,
    table_name: &str,
    hire: &Hash,
) -> Result<usize, StoreError> {
    let mut t = txn
        .open_table(table)
        .with_ctx(|| format!("opening table {table_name}"))?;
    let context = || format!("deleting {table_name} of hire {}", hire.short());
    let mut keys = Vec::new();
    for row in t.range::<&[u8]>(hire.0.as_slice()..).with_ctx(context)? {
        let (key, _) = row.with_ctx(context)?;
        if !key.value().starts_with(&hire.0) {
            break;
        }
        keys.push(key.value().to_vec());
    }
    for key in &keys {
        t.remove(key.as_slice()).with_ctx(context)?;
    }
    Ok(keys.len())
}

impl Store {
    /// Stores (or replaces) the record of hire `hire_id`. The record is opaque to the store;
    /// the node keeps JSON in it.
    pub fn put_hire(&self, hire_id: &Hash, record: &[u8]) -> Result<(), StoreError> {
        self.write("put_hire", |txn| insert_hire(txn, hire_id, record))
    }

    /// The record of hire `hire_id`, if stored.
    pub fn get_hire(&self, hire_id: &Hash) -> Result<Option<Vec<u8>>, StoreError> {
        self.read(|txn| {
            let hires = txn.open_table(tables::HIRES).ctx("opening table hires")?;
            let found = hires
                .get(hire_id.0.as_slice())
                .with_ctx(|| format!("reading hire {}", hire_id.short()))?;
            Ok(found.map(|guard| guard.value().to_vec()))
        })
    }

    /// Every stored hire with its record, in increasing hire id order (byte order).
    pub fn list_hires(&self) -> Result<Vec<(Hash, Vec<u8>)>, StoreError> {
        self.read(|txn| {
            let hires = txn.open_table(tables::HIRES).ctx("opening table hires")?;
            let mut all = Vec::new();
            for row in hires.iter().ctx("scanning hires")? {
                let (key, value) = row.ctx("scanning hires")?;
                all.push((
                    tables::decode_id(key.value(), "hires")?,
                    value.value().to_vec(),
                ));
            }
            Ok(all)
        })
    }

    /// Appends receipt entry `seq` (its signed envelope bytes, `entry`) to the chain of hire
    /// `hire_id`, with the entry's private `payload` if it has one, and replaces the hire's
    /// record with `hire_record` if given. Everything is decided and written in one write
    /// transaction committed with [`Durability::Immediate`](redb::Durability::Immediate) (one
    /// fsync), so the entry, its payload and the record are durable together or not at all:
    ///
    /// - an entry with identical bytes is stored at `seq`: [`Appended::Duplicate`], nothing is
    ///   written (neither `payload` nor `hire_record`, which were written with the original) and
    ///   nothing is synced;
    /// - a different entry is stored at `seq`: [`StoreError::ReceiptConflict`], nothing written;
    /// - `seq` is not the number of entries stored for the hire (the next seq of its chain):
    ///   [`StoreError::ReceiptGap`], nothing written;
    /// - otherwise the entry (and payload, and record) is stored: [`Appended::New`].
    ///
    /// The store checks only the chain's shape (seq `0..n`, each written once): verify
    /// signatures and hash links before appending.
    pub fn append_receipt(
        &self,
        hire_id: &Hash,
        seq: u64,
        entry: &[u8],
        payload: Option<&[u8]>,
        hire_record: Option<&[u8]>,
    ) -> Result<Appended, StoreError> {
        self.append_receipt_with(
            hire_id,
            seq,
            entry,
            payload,
            hire_record,
            redb::Durability::Immediate,
        )
    }

    /// [`Store::append_receipt`] without the disk sync: the entry is committed (visible,
    /// consistent) but becomes durable only with the next immediate commit, e.g.
    /// [`Store::flush`]. For group commit: append each step as it happens, then flush once
    /// before anyone is told about the steps. A crash before that flush loses only entries
    /// that nobody has seen.
    pub fn append_receipt_deferred(
        &self,
        hire_id: &Hash,
        seq: u64,
        entry: &[u8],
        payload: Option<&[u8]>,
        hire_record: Option<&[u8]>,
    ) -> Result<Appended, StoreError> {
        self.append_receipt_with(
            hire_id,
            seq,
            entry,
            payload,
            hire_record,
            redb::Durability::None,
        )
    }

    fn append_receipt_with(
        &self,
        hire_id: &Hash,
        seq: u64,
        entry: &[u8],
        payload: Option<&[u8]>,
        hire_record: Option<&[u8]>,
        durability: redb::Durability,
    ) -> Result<Appended, StoreError> {
        let added =
            self.append_receipts_with(hire_id, &[(seq, entry, payload)], hire_record, durability)?;
        let outcome = if added == 1 {
            Appended::New
        } else {
            Appended::Duplicate
        };
        tracing::trace!(hire = %hire_id.short(), seq, ?outcome, "append_receipt");
        Ok(outcome)
    }

    /// Appends several consecutive entries in ONE write transaction (one disk sync): what a
    /// client does with a page of receipts it has verified. Each item is `(seq, entry,
    /// payload)`; entries already stored with identical bytes are skipped (redelivery). A
    /// conflict or a gap aborts the whole batch with nothing written. `hire_record`, if given,
    /// replaces the hire's record in the same transaction. Returns how many entries were new.
    pub fn append_receipts(
        &self,
        hire_id: &Hash,
        items: &[ReceiptItem<'_>],
        hire_record: Option<&[u8]>,
    ) -> Result<usize, StoreError> {
        self.append_receipts_with(hire_id, items, hire_record, redb::Durability::Immediate)
    }

    fn append_receipts_with(
        &self,
        hire_id: &Hash,
        items: &[ReceiptItem<'_>],
        hire_record: Option<&[u8]>,
        durability: redb::Durability,
    ) -> Result<usize, StoreError> {
        let added = self.write_with("append_receipts", durability, |txn| {
            let mut receipts = txn
                .open_table(tables::RECEIPTS)
                .ctx("opening table receipts")?;
            let mut payloads = txn
                .open_table(tables::RECEIPT_PAYLOADS)
                .ctx("opening table receipt_payloads")?;
            let mut expected = chain_len(&receipts, hire_id)?;
            let mut added = 0usize;
            for (seq, entry, payload) in items {
                let key = tables::receipt_key(hire_id, *seq);
                if let Some(stored) = receipts
                    .get(key.as_slice())
                    .with_ctx(|| format!("reading receipt {seq} of hire {}", hire_id.short()))?
                {
                    if stored.value() == *entry {
                        continue;
                    }
                    return Ok(Finish::Abort(Err(StoreError::ReceiptConflict {
                        hire: *hire_id,
                        seq: *seq,
                    })));
                }
                if *seq != expected {
                    return Ok(Finish::Abort(Err(StoreError::ReceiptGap {
                        hire: *hire_id,
                        expected,
                        got: *seq,
                    })));
                }
                receipts
                    .insert(key.as_slice(), *entry)
                    .with_ctx(|| format!("writing receipt {seq} of hire {}", hire_id.short()))?;
                if let Some(p) = payload {
                    payloads.insert(key.as_slice(), *p).with_ctx(|| {
                        format!("writing payload {seq} of hire {}", hire_id.short())
                    })?;
                }
                expected += 1;
                added += 1;
            }
            if added == 0 {
                return Ok(Finish::Abort(Ok(0)));
            }
            drop(receipts);
            drop(payloads);
            if let Some(record) = hire_record {
                insert_hire(txn, hire_id, record)?;
            }
            Ok(Finish::Commit(Ok(added)))
        })??;
        Ok(added)
    }

    /// The number of receipt entries stored for hire `hire_id`, which is also the seq the next
    /// entry must have (0 for a hire without entries, or an unknown hire).
    pub fn receipt_count(&self, hire_id: &Hash) -> Result<u64, StoreError> {
        self.read(|txn| {
            let receipts = txn
                .open_table(tables::RECEIPTS)
                .ctx("opening table receipts")?;
            chain_len(&receipts, hire_id)
        })
    }

    /// Up to `limit` receipt entries of hire `hire_id` as `(seq, envelope bytes)`, in seq order,
    /// starting at `from_seq`. For the next page, pass the last seq + 1.
    pub fn receipts(
        &self,
        hire_id: &Hash,
        from_seq: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        self.read(|txn| {
            let receipts = txn
                .open_table(tables::RECEIPTS)
                .ctx("opening table receipts")?;
            scan_chain(&receipts, "receipts", hire_id, from_seq, limit)
        })
    }

    /// Up to `limit` private payloads of hire `hire_id` as `(seq, payload bytes)`, in seq order,
    /// starting at `from_seq`. Only entries stored with a payload appear, so the seqs may skip;
    /// for the next page, pass the last seq + 1.
    pub fn receipt_payloads(
        &self,
        hire_id: &Hash,
        from_seq: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        self.read(|txn| {
            let payloads = txn
                .open_table(tables::RECEIPT_PAYLOADS)
                .ctx("opening table receipt_payloads")?;
            scan_chain(&payloads, "receipt_payloads", hire_id, from_seq, limit)
        })
    }

    /// Stores (or replaces) blob `name` of hire `hire_id`: the job's input, output, latest
    /// checkpoint, attestation, equivocation proofs and so on. `name` is any UTF-8 string; by
    /// convention a short ASCII word such as `"input"`, `"output"`, `"checkpoint"` or
    /// `"attestation"`. The store keeps no other link between a blob and the hire record.
    pub fn put_hire_blob(
        &self,
        hire_id: &Hash,
        name: &str,
        bytes: &[u8],
    ) -> Result<(), StoreError> {
        self.write("put_hire_blob", |txn| {
            insert_blobs(txn, hire_id, &[(name, bytes)])
        })
    }

    /// Stores blob `name` of hire `hire_id` and deletes node state `state_key` in one
    /// transaction: a record moves from node-wide state to the hire. With `durable` false it
    /// is committed without a disk sync, like [`Store::put_hire_blob_deferred`] (until a later
    /// immediate commit, a crash leaves the state row and not the blob).
    pub fn put_hire_blob_taking_state(
        &self,
        hire_id: &Hash,
        name: &str,
        bytes: &[u8],
        state_key: &str,
        durable: bool,
    ) -> Result<(), StoreError> {
        let durability = if durable {
            redb::Durability::Immediate
        } else {
            redb::Durability::None
        };
        self.write_with("put_hire_blob_taking_state", durability, |txn| {
            insert_blobs(txn, hire_id, &[(name, bytes)])?;
            let mut t = txn
                .open_table(tables::NODE_STATE)
                .ctx("opening table node_state")?;
            t.remove(state_key.as_bytes())
                .with_ctx(|| format!("removing node_state {state_key:?}"))?;
            Ok(Finish::Commit(()))
        })
    }

    /// Like [`Store::put_hire_blob`], but committed without a disk sync
    /// (`Durability::None`): visible at once, durable with the next immediate commit (and
    /// lost with every later deferred commit if the node crashes before one). For a blob
    /// whose durable commit follows right away, e.g. an output stored just before the
    /// `completed` entry that is appended with [`Store::append_receipt`].
    pub fn put_hire_blob_deferred(
        &self,
        hire_id: &Hash,
        name: &str,
        bytes: &[u8],
    ) -> Result<(), StoreError> {
        self.write_with("put_hire_blob_deferred", redb::Durability::None, |txn| {
            insert_blobs(txn, hire_id, &[(name, bytes)]).map(Finish::Commit)
        })
    }

    /// Blob `name` of hire `hire_id`, if stored.
    pub fn get_hire_blob(&self, hire_id: &Hash, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let key = tables::blob_key(hire_id, name);
        self.read(|txn| {
            let blobs = txn
                .open_table(tables::HIRE_BLOBS)
                .ctx("opening table hire_blobs")?;
            let found = blobs
                .get(key.as_slice())
                .with_ctx(|| format!("reading blob {name:?} of hire {}", hire_id.short()))?;
            Ok(found.map(|guard| guard.value().to_vec()))
        })
    }

    /// Stores (or replaces) the record of hire `hire_id` and each `(name, bytes)` of `blobs` in
    /// one durable write transaction: after a crash, either all of them are stored or none is
    /// (for a state transition such as "completed, with this output and attestation"). If a
    /// name appears twice in `blobs`, the last one is kept.
    pub fn put_hire_with_blobs(
        &self,
        hire_id: &Hash,
        record: &[u8],
        blobs: &[(&str, &[u8])],
    ) -> Result<(), StoreError> {
        self.write("put_hire_with_blobs", |txn| {
            insert_hire(txn, hire_id, record)?;
            if !blobs.is_empty() {
                insert_blobs(txn, hire_id, blobs)?;
            }
            Ok(())
        })
    }

    /// Deletes hire `hire_id` entirely: its record, receipts, payloads and blobs, in one
    /// durable write transaction. For a hire that never came to be (the provider refused
    /// its contract): a hire that was contracted is kept for good. Returns whether a record
    /// was stored.
    pub fn delete_hire(&self, hire_id: &Hash) -> Result<bool, StoreError> {
        self.write("delete_hire", |txn| {
            let existed = {
                let mut hires = txn.open_table(tables::HIRES).ctx("opening table hires")?;
                hires
                    .remove(hire_id.0.as_slice())
                    .with_ctx(|| format!("deleting hire {}", hire_id.short()))?
                    .is_some()
            };
            remove_prefixed(txn, tables::RECEIPTS, "receipts", hire_id)?;
            remove_prefixed(txn, tables::RECEIPT_PAYLOADS, "receipt_payloads", hire_id)?;
            remove_prefixed(txn, tables::HIRE_BLOBS, "hire_blobs", hire_id)?;
            Ok(existed)
        })
    }
}
