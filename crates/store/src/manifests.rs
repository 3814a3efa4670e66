//! Manifests learned from the network, from any provider: the `manifests`, `manifest_latest`
//! and `manifest_expiry` tables, kept consistent with each other in every write transaction.
//!
//! Only the highest `seq` per `(provider, name)` is kept: storing a newer manifest deletes the
//! one it replaces, with its index rows. Removal (by id, or by expiry) deletes the
//! `manifest_latest` row too, so a `(provider, name)` whose manifests are all gone has no
//! recorded seq. The store does not verify signatures: callers store only manifests they have
//! verified.

use std::ops::Bound;

use redb::{Durability, ReadableTable, ReadableTableMetadata, Table, WriteTransaction};
use souk_protocol::manifest::Manifest;
use souk_protocol::{Hash, Signed};

use crate::error::{DbContext, StoreError};
use crate::tables::{self, Latest};
use crate::{Finish, Store};

/// What [`Store::put_manifest`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PutOutcome {
    /// The manifest was stored. `replaced` is the id of the lower-seq manifest of the same
    /// `(provider, name)` that was deleted to make room, if there was one.
    Inserted {
        /// The deleted predecessor.
        replaced: Option<Hash>,
    },
    /// A manifest with this id is already stored; nothing changed.
    Duplicate,
    /// A manifest of the same `(provider, name)` with an equal or higher seq is stored; nothing
    /// changed.
    Stale {
        /// The seq of the stored manifest.
        current_seq: u64,
    },
}

/// One change in [`Store::write_manifests_deferred`].
#[derive(Clone, Debug)]
pub enum ManifestWrite {
    /// Store a verified manifest (as [`Store::put_manifest`]).
    Put(Box<Signed<Manifest>>),
    /// Delete a manifest (as [`Store::remove_manifest`]).
    Remove(Hash),
}

/// The three manifest tables, open in one write transaction.
struct ManifestTables<'txn> {
    manifests: Table<'txn, &'static [u8], &'static [u8]>,
    latest: Table<'txn, &'static [u8], &'static [u8]>,
    expiry: Table<'txn, &'static [u8], &'static [u8]>,
}

impl<'txn> ManifestTables<'txn> {
    /// Opens the three tables.
    fn open(txn: &'txn WriteTransaction) -> Result<Self, StoreError> {
        Ok(ManifestTables {
            manifests: txn
                .open_table(tables::MANIFESTS)
                .ctx("opening table manifests")?,
            latest: txn
                .open_table(tables::MANIFEST_LATEST)
                .ctx("opening table manifest_latest")?,
            expiry: txn
                .open_table(tables::MANIFEST_EXPIRY)
                .ctx("opening table manifest_expiry")?,
        })
    }

    /// Inserts `manifest` unless its id is stored or a `seq` at least as high is stored for its
    /// `(provider, name)`; deletes the lower-seq manifest it replaces (see
    /// [`Store::put_manifest`]).
    fn put(&mut self, manifest: &Signed<Manifest>) -> Result<PutOutcome, StoreError> {
        let id = manifest.id();
        let body = manifest.body();
        let latest_key = tables::latest_key(body.provider.as_bytes(), &body.name);
        let bytes = manifest.to_bytes();
        // Checked inside the write transaction: a read outside it may be stale. Ids do not
        // depend on seq (a re-announcement keeps its id): the latest row decides.
        let current = self.latest_row(&latest_key)?;
        if let Some(current) = current
            && current.seq == body.seq
            && current.id == id
        {
            return Ok(PutOutcome::Duplicate);
        }
        if let Some(current) = current
            && current.seq >= body.seq
        {
            return Ok(PutOutcome::Stale {
                current_seq: current.seq,
            });
        }
        let replaced = match current {
            Some(current) => {
                if self.remove(&current.id)? {
                    Some(current.id)
                } else {
                    tracing::warn!(
                        id = %current.id,
                        "manifest_latest pointed at a missing manifest; dropping its rows"
                    );
                    self.drop_expiry_rows(&current.id)?;
                    None
                }
            }
            None => None,
        };
        self.manifests
            .insert(id.0.as_slice(), bytes.as_slice())
            .ctx("inserting into manifests")?;
        self.latest
            .insert(
                latest_key.as_slice(),
                Latest { seq: body.seq, id }.encode().as_slice(),
            )
            .ctx("inserting into manifest_latest")?;
        self.expiry
            .insert(
                tables::expiry_key(body.expires_at, &id).as_slice(),
                b"".as_slice(),
            )
            .ctx("inserting into manifest_expiry")?;
        Ok(PutOutcome::Inserted { replaced })
    }

    /// The `manifest_latest` row of a key, decoded.
    fn latest_row(&self, key: &[u8]) -> Result<Option<Latest>, StoreError> {
        match self.latest.get(key).ctx("reading manifest_latest")? {
            Some(guard) => Latest::decode(guard.value()).map(Some),
            None => Ok(None),
        }
    }

    /// Deletes manifest `id` with its `manifest_latest` row (if it points at `id`) and its
    /// `manifest_expiry` row. Returns whether the manifest was stored.
    fn remove(&mut self, id: &Hash) -> Result<bool, StoreError> {
        let bytes = match self
            .manifests
            .remove(id.0.as_slice())
            .with_ctx(|| format!("removing manifest {}", id.short()))?
        {
            Some(guard) => guard.value().to_vec(),
            None => return Ok(false),
        };
        match Signed::<Manifest>::decode_bytes(&bytes) {
            Ok(manifest) => {
                let body = manifest.body();
                let key = tables::latest_key(body.provider.as_bytes(), &body.name);
                if self
                    .latest_row(&key)?
                    .is_some_and(|latest| latest.id == *id)
                {
                    self.latest
                        .remove(key.as_slice())
                        .ctx("removing a manifest_latest row")?;
                }
                self.expiry
                    .remove(tables::expiry_key(body.expires_at, id).as_slice())
                    .ctx("removing a manifest_expiry row")?;
            }
            Err(error) => {
                // Only if the stored bytes no longer decode (damage, or a stricter decoder in a
                // later protocol version): find the index rows by id instead.
                tracing::warn!(
                    id = %id,
                    %error,
                    "stored manifest does not decode; scanning the indexes for its rows"
                );
                self.latest
                    .retain(|_, value| !tables::ends_with_id(value, id))
                    .ctx("scanning manifest_latest")?;
                self.drop_expiry_rows(id)?;
            }
        }
        Ok(true)
    }

    /// Deletes every `manifest_expiry` row of `id` by a scan (repair path only).
    fn drop_expiry_rows(&mut self, id: &Hash) -> Result<(), StoreError> {
        self.expiry
            .retain(|key, _| !tables::ends_with_id(key, id))
            .ctx("scanning manifest_expiry")
    }
}

impl Store {
    /// Stores a manifest learned from the network, keeping only the highest seq per
    /// `(provider, name)`. The decision and every change happen in one write transaction
    /// (duplicates and stale copies are answered from a read transaction first, without taking
    /// the write lock):
    ///
    /// - the same id with the same seq is stored: [`PutOutcome::Duplicate`] (ids do not depend
    ///   on seq: a re-announcement of an unchanged agent keeps its id and replaces the stored
    ///   manifest like any higher seq);
    /// - a manifest of the same `(provider, name)` with `seq >=` this one's is stored:
    ///   [`PutOutcome::Stale`];
    /// - otherwise the manifest is inserted and the lower-seq one it replaces is deleted with
    ///   its index rows: [`PutOutcome::Inserted`].
    ///
    /// The signature is not checked here: verify before storing.
    pub fn put_manifest(&self, manifest: &Signed<Manifest>) -> Result<PutOutcome, StoreError> {
        let id = manifest.id();
        let body = manifest.body();
        let latest_key = tables::latest_key(body.provider.as_bytes(), &body.name);

        // Gossip repeats itself: answer duplicates and stale copies from a read transaction,
        // without queueing for the write lock or paying for a commit.
        let early = self.read(|txn| {
            let latest = txn
                .open_table(tables::MANIFEST_LATEST)
                .ctx("opening table manifest_latest")?;
            let current = match latest
                .get(latest_key.as_slice())
                .ctx("reading manifest_latest")?
            {
                Some(guard) => Some(Latest::decode(guard.value())?),
                None => None,
            };
            Ok(current
                .filter(|current| current.seq >= body.seq)
                .map(|current| {
                    if current.seq == body.seq && current.id == id {
                        PutOutcome::Duplicate
                    } else {
                        PutOutcome::Stale {
                            current_seq: current.seq,
                        }
                    }
                }))
        })?;
        if let Some(outcome) = early {
            return Ok(outcome);
        }

        let outcome = self.write_or_abort("put_manifest", |txn| {
            let mut t = ManifestTables::open(txn)?;
            Ok(match t.put(manifest)? {
                inserted @ PutOutcome::Inserted { .. } => Finish::Commit(inserted),
                unchanged => Finish::Abort(unchanged),
            })
        })?;
        tracing::trace!(id = %id.short(), ?outcome, "put_manifest");
        Ok(outcome)
    }

    /// The signed envelope bytes of manifest `id`, if stored.
    pub fn get_manifest(&self, id: &Hash) -> Result<Option<Vec<u8>>, StoreError> {
        self.read(|txn| {
            let manifests = txn
                .open_table(tables::MANIFESTS)
                .ctx("opening table manifests")?;
            let found = manifests
                .get(id.0.as_slice())
                .with_ctx(|| format!("reading manifest {}", id.short()))?;
            Ok(found.map(|guard| guard.value().to_vec()))
        })
    }

    /// The highest seq stored for `(provider, name)`, with that manifest's id.
    pub fn latest_seq(
        &self,
        provider: &[u8; 32],
        name: &str,
    ) -> Result<Option<(u64, Hash)>, StoreError> {
        let key = tables::latest_key(provider, name);
        self.read(|txn| {
            let latest = txn
                .open_table(tables::MANIFEST_LATEST)
                .ctx("opening table manifest_latest")?;
            match latest.get(key.as_slice()).ctx("reading manifest_latest")? {
                Some(guard) => {
                    let latest = Latest::decode(guard.value())?;
                    Ok(Some((latest.seq, latest.id)))
                }
                None => Ok(None),
            }
        })
    }

    /// How many manifests are stored.
    pub fn manifest_count(&self) -> Result<u64, StoreError> {
        self.read(|txn| {
            let manifests = txn
                .open_table(tables::MANIFESTS)
                .ctx("opening table manifests")?;
            manifests.len().ctx("counting manifests")
        })
    }

    /// Up to `limit` manifests (id and envelope bytes) in increasing id order, starting strictly
    /// after `after` (from the first when `None`). Pass the last id of a page to get the next.
    pub fn manifests_page(
        &self,
        after: Option<&Hash>,
        limit: usize,
    ) -> Result<Vec<(Hash, Vec<u8>)>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        self.read(|txn| {
            let manifests = txn
                .open_table(tables::MANIFESTS)
                .ctx("opening table manifests")?;
            let lower = match after {
                Some(after) => Bound::Excluded(after.0.as_slice()),
                None => Bound::Unbounded,
            };
            let range = manifests
                .range::<&[u8]>((lower, Bound::Unbounded))
                .ctx("scanning manifests")?;
            let mut page = Vec::with_capacity(limit.min(1024));
            for row in range.take(limit) {
                let (key, value) = row.ctx("scanning manifests")?;
                page.push((
                    tables::decode_id(key.value(), "manifests")?,
                    value.value().to_vec(),
                ));
            }
            Ok(page)
        })
    }

    /// The envelope bytes of every stored manifest, in id order.
    pub fn all_manifests(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        self.read(|txn| {
            let manifests = txn
                .open_table(tables::MANIFESTS)
                .ctx("opening table manifests")?;
            let mut all = Vec::new();
            for row in manifests.iter().ctx("scanning manifests")? {
                let (_, value) = row.ctx("scanning manifests")?;
                all.push(value.value().to_vec());
            }
            Ok(all)
        })
    }

    /// Deletes manifest `id` with its `manifest_latest` and `manifest_expiry` rows. Returns
    /// whether it was stored.
    pub fn remove_manifest(&self, id: &Hash) -> Result<bool, StoreError> {
        self.write_or_abort("remove_manifest", |txn| {
            let mut t = ManifestTables::open(txn)?;
            Ok(if t.remove(id)? {
                Finish::Commit(true)
            } else {
                Finish::Abort(false)
            })
        })
    }

    /// Applies manifest changes in order, in one write transaction committed without a disk
    /// sync: durable at the next immediate commit (e.g. [`Store::flush`]). This is the group
    /// commit for manifests learned from the network, which a crash may lose because peers
    /// serve them again. Each put follows the rules of [`Store::put_manifest`]; returns how
    /// many writes changed something (nothing is committed when none did).
    pub fn write_manifests_deferred(&self, writes: &[ManifestWrite]) -> Result<usize, StoreError> {
        if writes.is_empty() {
            return Ok(0);
        }
        let changed = self.write_with("write_manifests", Durability::None, |txn| {
            let mut t = ManifestTables::open(txn)?;
            let mut changed = 0;
            for w in writes {
                let did = match w {
                    ManifestWrite::Put(m) => {
                        matches!(t.put(m)?, PutOutcome::Inserted { .. })
                    }
                    ManifestWrite::Remove(id) => t.remove(id)?,
                };
                changed += usize::from(did);
            }
            Ok(if changed > 0 {
                Finish::Commit(changed)
            } else {
                Finish::Abort(0)
            })
        })?;
        tracing::trace!(writes = writes.len(), changed, "write_manifests_deferred");
        Ok(changed)
    }

    /// Deletes every manifest with `expires_at <= now_ms`, with its index rows, in one write
    /// transaction. Returns their ids, in expiry order.
    pub fn remove_expired(&self, now_ms: u64) -> Result<Vec<Hash>, StoreError> {
        let upper = tables::expiry_key(now_ms, &Hash([0xff; 32]));
        self.write_or_abort("remove_expired", |txn| {
            let mut t = ManifestTables::open(txn)?;
            let mut due = Vec::new();
            for row in t
                .expiry
                .range::<&[u8]>(..=upper.as_slice())
                .ctx("scanning manifest_expiry")?
            {
                let (key, _) = row.ctx("scanning manifest_expiry")?;
                due.push(tables::decode_expiry_key(key.value())?);
            }
            if due.is_empty() {
                return Ok(Finish::Abort(Vec::new()));
            }
            let mut removed = Vec::with_capacity(due.len());
            for (expires_at, id) in due {
                if t.remove(&id)? {
                    removed.push(id);
                } else {
                    tracing::warn!(id = %id, "manifest_expiry row without its manifest; dropping it");
                }
                // Gone already unless the row and the manifest disagreed on expires_at.
                t.expiry
                    .remove(tables::expiry_key(expires_at, &id).as_slice())
                    .ctx("removing a manifest_expiry row")?;
            }
            if !removed.is_empty() {
                tracing::debug!(count = removed.len(), now_ms, "expired manifests removed");
            }
            Ok(Finish::Commit(removed))
        })
    }
}
