//! The storage worker: one thread that owns every write to the redb [`Store`], so the swarm
//! loop never waits on a disk sync.
//!
//! Manifest writes are fire-and-forget (they can always be fetched again through sync; a
//! full queue drops them and counts it). Agent writes carry a reply channel and are
//! acknowledged only once durable, so `souk agent publish` never reports a state that a
//! crash could lose.

use std::sync::Arc;

use souk_protocol::Hash;
use souk_protocol::manifest::Manifest;
use souk_protocol::signed::Signed;
use souk_store::Store;
use tokio::sync::{mpsc, oneshot};

use crate::metrics::Metrics;

/// Queue depth of the storage worker.
pub const QUEUE: usize = 4096;

/// One storage operation.
#[derive(Debug)]
pub enum StoreOp {
    /// Persist a verified manifest.
    PutManifest(Box<Signed<Manifest>>),
    /// Forget a manifest.
    RemoveManifest(Hash),
    /// Drop manifests expired at this time.
    RemoveExpired(u64),
    /// Persist a local agent record; replies once durable.
    PutAgent {
        /// Agent name.
        name: String,
        /// JSON record.
        record: Vec<u8>,
        /// Durable-or-error reply.
        done: oneshot::Sender<Result<(), String>>,
    },
    /// Remove a local agent record; replies once durable.
    RemoveAgent {
        /// Agent name.
        name: String,
        /// Reply.
        done: oneshot::Sender<Result<(), String>>,
    },
    /// Set a small node-state value (e.g. the highest seq signed for an agent).
    PutState {
        /// Key.
        key: String,
        /// Value.
        value: Vec<u8>,
    },
    /// Make everything durable, then reply (shutdown).
    Flush(oneshot::Sender<Result<(), String>>),
}

/// The worker's queue and thread.
pub type Worker = (mpsc::Sender<StoreOp>, std::thread::JoinHandle<()>);

/// Starts the worker thread; it ends when every sender is dropped.
pub fn spawn(store: Arc<Store>, metrics: Arc<Metrics>) -> std::io::Result<Worker> {
    let (tx, mut rx) = mpsc::channel::<StoreOp>(QUEUE);
    let handle = std::thread::Builder::new()
        .name("souk-store".into())
        .spawn(move || {
            while let Some(op) = rx.blocking_recv() {
                apply(&store, &metrics, op);
            }
            if let Err(e) = store.flush() {
                tracing::error!("final store flush failed: {e}");
            }
        })?;
    Ok((tx, handle))
}

fn apply(store: &Store, metrics: &Metrics, op: StoreOp) {
    let fail = |what: &str, e: &dyn std::fmt::Display| {
        metrics.store_errors.inc();
        tracing::error!("store: {what}: {e}");
    };
    match op {
        StoreOp::PutManifest(m) => {
            if let Err(e) = store.put_manifest(&m) {
                fail("put manifest", &e);
            }
        }
        StoreOp::RemoveManifest(id) => {
            if let Err(e) = store.remove_manifest(&id) {
                fail("remove manifest", &e);
            }
        }
        StoreOp::RemoveExpired(now) => {
            if let Err(e) = store.remove_expired(now) {
                fail("sweep", &e);
            }
        }
        StoreOp::PutAgent { name, record, done } => {
            let r = store.put_agent(&name, &record).map_err(|e| e.to_string());
            if let Err(e) = &r {
                fail("put agent", e);
            }
            let _ = done.send(r);
        }
        StoreOp::RemoveAgent { name, done } => {
            let r = store
                .remove_agent(&name)
                .map(|_| ())
                .map_err(|e| e.to_string());
            if let Err(e) = &r {
                fail("remove agent", e);
            }
            let _ = done.send(r);
        }
        StoreOp::PutState { key, value } => {
            if let Err(e) = store.put_state(&key, &value) {
                fail("put state", &e);
            }
        }
        StoreOp::Flush(done) => {
            let _ = done.send(store.flush().map_err(|e| e.to_string()));
        }
    }
}
