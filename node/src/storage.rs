//! The storage worker: one thread that owns every write to the redb [`Store`], so the swarm
//! loop never waits on a disk sync.
//!
//! Manifest writes are fire-and-forget and group-committed: the node batches them and sends
//! one [`StoreOp::WriteManifests`] every few seconds, followed by a [`StoreOp::Checkpoint`];
//! the batch is committed without a disk sync and becomes durable at that checkpoint (or any
//! earlier durable write). A crash loses at most those last seconds of network manifests,
//! which peers serve again through sync; a full queue drops them and counts it.
//! Agent writes carry a reply channel and are acknowledged only once durable, so
//! `souk agent publish` never reports a state that a crash could lose.
//! Each operation's time is measured into `souk_store_op_seconds{op}` ([`StoreOp::name`]).

use std::sync::Arc;
use std::time::Instant;

use souk_store::{ManifestWrite, OutboxKind, ReputationWrite, Store, StoreError};
use tokio::sync::{mpsc, oneshot};

use crate::metrics::Metrics;

/// Whether an operation may be dropped when the worker's queue is full: network manifests
/// and outcome records (peers serve them again through sync, and a dropped outbox-clearing
/// mark only repeats a publication after a restart), periodic sweeps and checkpoints.
/// Everything else is kept, in order, until the queue has room; so is a reputation batch
/// with any proof write in it: a proof is the only evidence that flags a provider, a full
/// node that lost one would stop serving it, and a light node never syncs proofs.
pub fn droppable(op: &StoreOp) -> bool {
    match op {
        StoreOp::WriteReputation(writes) => !carries_proof(writes),
        StoreOp::WriteManifests(_) | StoreOp::RemoveExpired(_) | StoreOp::Checkpoint => true,
        _ => false,
    }
}

/// Whether any write of a reputation batch touches an equivocation proof.
pub fn carries_proof(writes: &[ReputationWrite]) -> bool {
    writes.iter().any(|w| {
        let kind = match w {
            ReputationWrite::Put { kind, .. }
            | ReputationWrite::Remove { kind, .. }
            | ReputationWrite::Published { kind, .. } => kind,
        };
        *kind == OutboxKind::Proof
    })
}

/// Queue depth of the storage worker.
pub const QUEUE: usize = 4096;

/// One storage operation.
#[derive(Debug)]
pub enum StoreOp {
    /// Persist a batch of manifest changes (verified manifests to keep, ids to forget), in
    /// order, in one transaction without a disk sync.
    WriteManifests(Vec<ManifestWrite>),
    /// Persist a batch of outcome-record and proof changes learned from the network (and
    /// outbox marks to clear), in one transaction without a disk sync. Droppable under
    /// backpressure only when it carries no proof write (see [`droppable`]).
    WriteReputation(Vec<ReputationWrite>),
    /// Persist a record or proof this node publishes, marked for (re)publication; replies
    /// once durable.
    PutOutgoing {
        /// Record or proof.
        kind: OutboxKind,
        /// Hire id or provider key.
        key: [u8; 32],
        /// Its bytes.
        bytes: Vec<u8>,
        /// Durable-or-error reply.
        done: oneshot::Sender<Result<(), StoreError>>,
    },
    /// Drop manifests expired at this time.
    RemoveExpired(u64),
    /// Persist a local agent record; replies once durable.
    PutAgent {
        /// Agent name.
        name: String,
        /// JSON record.
        record: Vec<u8>,
        /// Durable-or-error reply.
        done: oneshot::Sender<Result<(), StoreError>>,
    },
    /// Remove a local agent record; replies once durable.
    RemoveAgent {
        /// Agent name.
        name: String,
        /// Reply.
        done: oneshot::Sender<Result<(), StoreError>>,
    },
    /// Set a small node-state value (e.g. the highest seq signed for an agent).
    PutState {
        /// Key.
        key: String,
        /// Value.
        value: Vec<u8>,
    },
    /// Make deferred writes durable if there are any (sent periodically).
    Checkpoint,
    /// Make everything durable, then reply (shutdown).
    Flush(oneshot::Sender<Result<(), StoreError>>),
}

impl StoreOp {
    /// The operation's `op` label in `souk_store_op_seconds` (`checkpoint` times the disk
    /// sync a [`StoreOp::Checkpoint`] makes, when it makes one).
    pub fn name(&self) -> &'static str {
        match self {
            StoreOp::WriteManifests(_) => "write_manifests",
            StoreOp::WriteReputation(_) => "write_reputation",
            StoreOp::PutOutgoing { .. } => "put_outgoing",
            StoreOp::RemoveExpired(_) => "remove_expired",
            StoreOp::PutAgent { .. } => "put_agent",
            StoreOp::RemoveAgent { .. } => "remove_agent",
            StoreOp::PutState { .. } => "put_state",
            StoreOp::Checkpoint => "checkpoint",
            StoreOp::Flush(_) => "flush",
        }
    }
}

/// What applying one operation did to durability.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Effect {
    /// Nothing new to sync.
    Clean,
    /// Committed without a disk sync.
    Deferred,
    /// Everything committed so far is durable.
    Synced,
}

/// The worker's queue and thread.
pub type Worker = (mpsc::Sender<StoreOp>, std::thread::JoinHandle<()>);

/// Starts the worker thread; it ends when every sender is dropped.
pub fn spawn(store: Arc<Store>, metrics: Arc<Metrics>) -> std::io::Result<Worker> {
    let (tx, mut rx) = mpsc::channel::<StoreOp>(QUEUE);
    let handle = std::thread::Builder::new()
        .name("souk-store".into())
        .spawn(move || {
            let mut dirty = false;
            while let Some(op) = rx.blocking_recv() {
                let checkpoint = matches!(op, StoreOp::Checkpoint);
                let (name, started) = (op.name(), Instant::now());
                let effect = apply(&store, &metrics, op);
                if !checkpoint {
                    metrics.store_op(name, started.elapsed());
                }
                match effect {
                    Effect::Clean => {}
                    Effect::Deferred => dirty = true,
                    Effect::Synced => dirty = false,
                }
                if dirty && checkpoint {
                    let started = Instant::now();
                    let flushed = store.flush();
                    metrics.store_op(name, started.elapsed());
                    match flushed {
                        Ok(()) => dirty = false,
                        Err(e) => {
                            metrics.store_errors.inc();
                            tracing::error!("store: syncing deferred writes: {e}");
                        }
                    }
                }
            }
            if let Err(e) = store.flush() {
                tracing::error!("final store flush failed: {e}");
            }
        })?;
    Ok((tx, handle))
}

fn apply(store: &Store, metrics: &Metrics, op: StoreOp) -> Effect {
    let fail = |what: &str, e: &dyn std::fmt::Display| {
        metrics.store_errors.inc();
        tracing::error!("store: {what}: {e}");
    };
    match op {
        StoreOp::WriteManifests(writes) => match store.write_manifests_deferred(&writes) {
            Ok(0) => Effect::Clean,
            Ok(_) => Effect::Deferred,
            Err(e) => {
                fail("write manifests", &e);
                Effect::Clean
            }
        },
        StoreOp::WriteReputation(writes) => match store.write_reputation_deferred(&writes) {
            Ok(0) => Effect::Clean,
            Ok(_) => Effect::Deferred,
            Err(e) => {
                fail("write outcome records", &e);
                Effect::Clean
            }
        },
        StoreOp::PutOutgoing {
            kind,
            key,
            bytes,
            done,
        } => {
            let r = store.put_outgoing(kind, &key, &bytes);
            if let Err(e) = &r {
                fail("put outgoing record", e);
            }
            let ok = r.is_ok();
            let _ = done.send(r);
            if ok { Effect::Synced } else { Effect::Clean }
        }
        StoreOp::RemoveExpired(now) => {
            if let Err(e) = store.remove_expired(now) {
                fail("sweep", &e);
            }
            Effect::Clean
        }
        StoreOp::PutAgent { name, record, done } => {
            let r = store.put_agent(&name, &record);
            if let Err(e) = &r {
                fail("put agent", e);
            }
            let ok = r.is_ok();
            let _ = done.send(r);
            if ok { Effect::Synced } else { Effect::Clean }
        }
        StoreOp::RemoveAgent { name, done } => {
            let r = store.remove_agent(&name).map(|_| ());
            if let Err(e) = &r {
                fail("remove agent", e);
            }
            let ok = r.is_ok();
            let _ = done.send(r);
            if ok { Effect::Synced } else { Effect::Clean }
        }
        StoreOp::PutState { key, value } => match store.put_state(&key, &value) {
            Ok(()) => Effect::Synced,
            Err(e) => {
                fail("put state", &e);
                Effect::Clean
            }
        },
        StoreOp::Checkpoint => Effect::Clean,
        StoreOp::Flush(done) => {
            let r = store.flush();
            let ok = r.is_ok();
            let _ = done.send(r);
            if ok { Effect::Synced } else { Effect::Clean }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(kind: OutboxKind) -> ReputationWrite {
        ReputationWrite::Put {
            kind,
            key: [1; 32],
            bytes: vec![1],
        }
    }

    #[test]
    fn proof_writes_are_never_dropped() {
        let records = vec![put(OutboxKind::Outcome); 3];
        assert!(droppable(&StoreOp::WriteReputation(records.clone())));
        let mut mixed = records;
        mixed.push(put(OutboxKind::Proof));
        assert!(!droppable(&StoreOp::WriteReputation(mixed)));
        assert!(!droppable(&StoreOp::WriteReputation(vec![
            ReputationWrite::Remove {
                kind: OutboxKind::Proof,
                key: [2; 32],
            }
        ])));
        assert!(droppable(&StoreOp::WriteManifests(Vec::new())));
        assert!(droppable(&StoreOp::Checkpoint));
        assert!(!droppable(&StoreOp::PutState {
            key: "k".into(),
            value: Vec::new(),
        }));
    }
}
