//! Outcome records and equivocation proofs learned from the network (or published by this
//! node): the `outcomes`, `equivocations` and `outbox` tables (schema v3).
//!
//! One record per hire (`outcomes`: hire id -> record bytes) and one proof per provider
//! (`equivocations`: provider key -> proof bytes). A put replaces what the key held: which
//! record or proof wins is the node's decision, taken before it writes (`spec/discovery.md`:
//! between two records of one hire the one of higher precedence under `spec/reputation.md`,
//! then the lower record id; between two proofs against one provider the lower proof id). `outbox` marks the rows this node published itself and has not yet
//! handed to gossip, so a restart retries them. The store verifies nothing: callers store
//! only records and proofs they have verified.

use std::ops::Bound;

use redb::{Durability, ReadableTable, ReadableTableMetadata, WriteTransaction};
use souk_protocol::Hash;

use crate::error::{DbContext, StoreError};
use crate::tables::{self, Bytes};
use crate::{Finish, Store};

/// What a row of the `outbox` table points at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OutboxKind {
    /// An outcome record (the key is its hire id).
    Outcome,
    /// An equivocation proof (the key is the provider's node id).
    Proof,
}

impl OutboxKind {
    /// The key prefix byte of `outbox` rows of this kind.
    fn byte(self) -> u8 {
        match self {
            OutboxKind::Outcome => 0,
            OutboxKind::Proof => 1,
        }
    }

    fn table(self) -> (Bytes, &'static str) {
        match self {
            OutboxKind::Outcome => (tables::OUTCOMES, "outcomes"),
            OutboxKind::Proof => (tables::EQUIVOCATIONS, "equivocations"),
        }
    }
}

/// One change in [`Store::write_reputation_deferred`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReputationWrite {
    /// Store (or replace) the verified record or proof under `key` (hire id, or provider).
    Put {
        /// Outcome record or equivocation proof.
        kind: OutboxKind,
        /// Hire id or provider key.
        key: [u8; 32],
        /// The canonical bytes.
        bytes: Vec<u8>,
    },
    /// Delete the row under `key` (and its outbox mark).
    Remove {
        /// Outcome record or equivocation proof.
        kind: OutboxKind,
        /// Hire id or provider key.
        key: [u8; 32],
    },
    /// The row under `key` was handed to gossip: drop its outbox mark (the row stays).
    Published {
        /// Outcome record or equivocation proof.
        kind: OutboxKind,
        /// Hire id or provider key.
        key: [u8; 32],
    },
}

fn outbox_key(kind: OutboxKind, key: &[u8; 32]) -> [u8; 33] {
    let mut out = [0u8; 33];
    out[0] = kind.byte();
    out[1..].copy_from_slice(key);
    out
}

/// Applies one write inside `txn`; returns whether it changed something.
fn apply(txn: &WriteTransaction, w: &ReputationWrite) -> Result<bool, StoreError> {
    let mut outbox = txn.open_table(tables::OUTBOX).ctx("opening table outbox")?;
    match w {
        ReputationWrite::Put { kind, key, bytes } => {
            let (def, name) = kind.table();
            let mut t = txn
                .open_table(def)
                .with_ctx(|| format!("opening table {name}"))?;
            let old = t
                .insert(key.as_slice(), bytes.as_slice())
                .with_ctx(|| format!("inserting into {name}"))?;
            Ok(old.is_none_or(|g| g.value() != bytes.as_slice()))
        }
        ReputationWrite::Remove { kind, key } => {
            let (def, name) = kind.table();
            let mut t = txn
                .open_table(def)
                .with_ctx(|| format!("opening table {name}"))?;
            let gone = t
                .remove(key.as_slice())
                .with_ctx(|| format!("removing from {name}"))?
                .is_some();
            outbox
                .remove(outbox_key(*kind, key).as_slice())
                .ctx("removing from outbox")?;
            Ok(gone)
        }
        ReputationWrite::Published { kind, key } => Ok(outbox
            .remove(outbox_key(*kind, key).as_slice())
            .ctx("removing from outbox")?
            .is_some()),
    }
}

impl Store {
    /// Stores (or replaces) a record or proof this node publishes itself, marked in `outbox`
    /// until [`ReputationWrite::Published`] clears the mark, in one durable transaction:
    /// when this returns, a restart will find it and publish it again if need be.
    pub fn put_outgoing(
        &self,
        kind: OutboxKind,
        key: &[u8; 32],
        bytes: &[u8],
    ) -> Result<(), StoreError> {
        self.write("put_outgoing", |txn| {
            apply(
                txn,
                &ReputationWrite::Put {
                    kind,
                    key: *key,
                    bytes: bytes.to_vec(),
                },
            )?;
            let mut outbox = txn.open_table(tables::OUTBOX).ctx("opening table outbox")?;
            outbox
                .insert(outbox_key(kind, key).as_slice(), b"".as_slice())
                .ctx("inserting into outbox")?;
            Ok(())
        })
    }

    /// Applies changes in order in one transaction committed without a disk sync (durable at
    /// the next immediate commit, e.g. [`Store::flush`]): the group commit for records and
    /// proofs learned from the network, which peers serve again through sync. Returns how
    /// many writes changed something (nothing is committed when none did).
    pub fn write_reputation_deferred(
        &self,
        writes: &[ReputationWrite],
    ) -> Result<usize, StoreError> {
        if writes.is_empty() {
            return Ok(0);
        }
        self.write_with("write_reputation", Durability::None, |txn| {
            let mut changed = 0;
            for w in writes {
                changed += usize::from(apply(txn, w)?);
            }
            Ok(if changed > 0 {
                Finish::Commit(changed)
            } else {
                Finish::Abort(0)
            })
        })
    }

    /// The bytes stored under `key` (a hire id for outcomes, a provider for proofs).
    pub fn get_reputation_item(
        &self,
        kind: OutboxKind,
        key: &[u8; 32],
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let (def, name) = kind.table();
        self.read(|txn| {
            let t = txn
                .open_table(def)
                .with_ctx(|| format!("opening table {name}"))?;
            let found = t
                .get(key.as_slice())
                .with_ctx(|| format!("reading {name}"))?;
            Ok(found.map(|g| g.value().to_vec()))
        })
    }

    /// Up to `limit` rows (key and bytes) in increasing key order, strictly after `after`
    /// (from the first when `None`).
    pub fn reputation_page(
        &self,
        kind: OutboxKind,
        after: Option<&[u8; 32]>,
        limit: usize,
    ) -> Result<Vec<(Hash, Vec<u8>)>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let (def, name) = kind.table();
        self.read(|txn| {
            let t = txn
                .open_table(def)
                .with_ctx(|| format!("opening table {name}"))?;
            let lower = match after {
                Some(after) => Bound::Excluded(after.as_slice()),
                None => Bound::Unbounded,
            };
            let mut page = Vec::with_capacity(limit.min(1024));
            for row in t
                .range::<&[u8]>((lower, Bound::Unbounded))
                .with_ctx(|| format!("scanning {name}"))?
                .take(limit)
            {
                let (k, v) = row.with_ctx(|| format!("scanning {name}"))?;
                page.push((tables::decode_id(k.value(), name)?, v.value().to_vec()));
            }
            Ok(page)
        })
    }

    /// How many outcome records, or proofs, are stored.
    pub fn reputation_count(&self, kind: OutboxKind) -> Result<u64, StoreError> {
        let (def, name) = kind.table();
        self.read(|txn| {
            let t = txn
                .open_table(def)
                .with_ctx(|| format!("opening table {name}"))?;
            t.len().with_ctx(|| format!("counting {name}"))
        })
    }

    /// The rows marked in `outbox`: published by this node, not yet handed to gossip.
    pub fn outbox(&self) -> Result<Vec<(OutboxKind, Hash)>, StoreError> {
        self.read(|txn| {
            let t = txn.open_table(tables::OUTBOX).ctx("opening table outbox")?;
            let mut out = Vec::new();
            for row in t.iter().ctx("scanning outbox")? {
                let (k, _) = row.ctx("scanning outbox")?;
                let k = k.value();
                let kind = match k.first() {
                    Some(0) => OutboxKind::Outcome,
                    Some(1) => OutboxKind::Proof,
                    _ => {
                        return Err(StoreError::corrupt(format!(
                            "outbox: key of {} bytes with an unknown kind",
                            k.len()
                        )));
                    }
                };
                out.push((kind, tables::decode_id(&k[1..], "outbox")?));
            }
            Ok(out)
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::StoreConfig;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(
            &dir.path().join("s.redb"),
            &StoreConfig {
                cache_size: 1 << 20,
            },
        )
        .unwrap();
        (dir, s)
    }

    fn put(kind: OutboxKind, k: u8, bytes: &[u8]) -> ReputationWrite {
        ReputationWrite::Put {
            kind,
            key: [k; 32],
            bytes: bytes.to_vec(),
        }
    }

    #[test]
    fn put_replace_remove_and_page() {
        let (_d, s) = store();
        let writes: Vec<_> = (0..10u8)
            .map(|i| put(OutboxKind::Outcome, i, &[i]))
            .collect();
        assert_eq!(s.write_reputation_deferred(&writes).unwrap(), 10);
        // The same bytes again change nothing; other bytes replace.
        assert_eq!(s.write_reputation_deferred(&writes[..2]).unwrap(), 0);
        assert_eq!(
            s.write_reputation_deferred(&[put(OutboxKind::Outcome, 1, b"new")])
                .unwrap(),
            1
        );
        let kind = OutboxKind::Outcome;
        assert_eq!(
            s.get_reputation_item(kind, &[1; 32]).unwrap(),
            Some(b"new".to_vec())
        );
        assert_eq!(s.reputation_count(kind).unwrap(), 10);
        assert_eq!(s.reputation_count(OutboxKind::Proof).unwrap(), 0);
        let page = s.reputation_page(kind, None, 4).unwrap();
        assert_eq!(
            page.iter().map(|(k, _)| k.0[0]).collect::<Vec<_>>(),
            [0, 1, 2, 3]
        );
        let page = s.reputation_page(kind, Some(&[3; 32]), 100).unwrap();
        assert_eq!(page.len(), 6);
        assert_eq!(page[0].0, Hash([4; 32]));
        assert_eq!(
            s.write_reputation_deferred(&[ReputationWrite::Remove { kind, key: [4; 32] }])
                .unwrap(),
            1
        );
        assert_eq!(s.get_reputation_item(kind, &[4; 32]).unwrap(), None);
        assert_eq!(s.reputation_count(kind).unwrap(), 9);
    }

    #[test]
    fn outbox_marks_survive_reopen_until_published() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.redb");
        let cfg = StoreConfig {
            cache_size: 1 << 20,
        };
        {
            let s = Store::open(&path, &cfg).unwrap();
            s.put_outgoing(OutboxKind::Outcome, &[7; 32], b"rec")
                .unwrap();
            s.put_outgoing(OutboxKind::Proof, &[9; 32], b"proof")
                .unwrap();
        }
        let s = Store::open(&path, &cfg).unwrap();
        assert_eq!(
            s.outbox().unwrap(),
            vec![
                (OutboxKind::Outcome, Hash([7; 32])),
                (OutboxKind::Proof, Hash([9; 32]))
            ]
        );
        s.write_reputation_deferred(&[ReputationWrite::Published {
            kind: OutboxKind::Outcome,
            key: [7; 32],
        }])
        .unwrap();
        assert_eq!(
            s.outbox().unwrap(),
            vec![(OutboxKind::Proof, Hash([9; 32]))]
        );
        assert_eq!(
            s.get_reputation_item(OutboxKind::Outcome, &[7; 32])
                .unwrap(),
            Some(b"rec".to_vec())
        );
        assert_eq!(
            s.get_reputation_item(OutboxKind::Proof, &[9; 32]).unwrap(),
            Some(b"proof".to_vec())
        );
    }
}
