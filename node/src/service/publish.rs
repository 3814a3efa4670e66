//! The node's own agents and its writes: publishing, re-announcing and retiring agents
//! (signed by [`crate::publisher`], made durable before they are announced), gossiping them,
//! and the ordered queue of operations for the storage worker.

use souk_protocol::Hash;
use souk_protocol::manifest::Manifest;
use souk_protocol::signed::Signed;
use souk_store::ManifestWrite;
use tokio::sync::{mpsc, oneshot};

use super::events::{NodeEvent, Via};
use super::handle::{NodeError, Published, Reply};
use super::{Node, Pending, STORE_BATCH};
use crate::discovery::Admission;
use crate::hire::Offerable;
use crate::now_ms;
use crate::publisher::{AgentRecord, seq_state_key};
use crate::storage::{StoreOp, droppable};

impl Node {
    /// Keeps an admitted manifest: queues it for the next store batch and tells observers.
    /// (It is in the catalog already: searchable and served by sync from now on.)
    pub(super) fn keep(
        &mut self,
        manifest: Box<Signed<Manifest>>,
        replaced: Option<Hash>,
        via: Via,
        message_id: Option<String>,
        from: Option<libp2p::PeerId>,
    ) {
        // The same id replaced (a re-announcement of an unchanged agent): the put replaces it.
        if let Some(old) = replaced.filter(|old| *old != manifest.id()) {
            self.store_batch.push(ManifestWrite::Remove(old));
        }
        self.events.send(NodeEvent::ManifestAdmitted {
            id: manifest.id(),
            seq: manifest.body().seq,
            via,
            message_id,
            from: from.map(|p| p.to_base58()),
        });
        self.store_batch.push(ManifestWrite::Put(manifest));
        if self.store_batch.len() >= STORE_BATCH {
            self.write_store_batch();
        }
    }

    /// Hands the queued manifest writes to the storage worker as one batch.
    pub(super) fn write_store_batch(&mut self) {
        if !self.store_batch.is_empty() {
            let batch = std::mem::take(&mut self.store_batch);
            self.store_op(StoreOp::WriteManifests(batch));
        }
    }

    /// Queues `op` for the storage worker without waiting. When its queue is full, droppable
    /// operations are dropped (and counted); the others wait in order in the backlog, which
    /// the loop drains as the queue frees up (never a task per operation).
    pub(super) fn store_op(&mut self, op: StoreOp) {
        if !self.store_backlog.is_empty() {
            if droppable(&op) {
                self.metrics.store_dropped.inc();
            } else {
                self.store_backlog.push_back(op);
            }
            return;
        }
        match self.store_tx.try_send(op) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(op)) if droppable(&op) => {
                self.metrics.store_dropped.inc();
            }
            Err(mpsc::error::TrySendError::Full(op)) => self.store_backlog.push_back(op),
            Err(mpsc::error::TrySendError::Closed(_)) => self.metrics.store_errors.inc(),
        }
    }

    pub(super) fn reannounce(&mut self, name: &str) {
        match self.publisher.reannounce(name, &self.key, now_ms()) {
            Ok((manifest, record)) => self.persist_and_announce(manifest, record, None),
            Err(e) => tracing::error!("cannot re-announce {name}: {e}"),
        }
    }

    fn persist_seq(&mut self, name: &str) {
        let seq = self.publisher.highest_seq(name);
        self.store_op(StoreOp::PutState {
            key: seq_state_key(name),
            value: seq.to_be_bytes().to_vec(),
        });
    }

    /// Signs and (once durable) announces a new manifest of agent `spec`.
    pub(super) fn publish(
        &mut self,
        spec: crate::agent_file::AgentSpec,
        floor: u64,
        reply: Reply<Result<Published, NodeError>>,
    ) {
        match self.publisher.publish(spec, &self.key, now_ms(), floor) {
            Ok((manifest, record)) => self.persist_and_announce(manifest, record, Some(reply)),
            Err(e) => {
                let _ = reply.send(Err(e.into()));
            }
        }
    }

    /// Announces a retiring manifest of agent `name` and forgets the agent.
    pub(super) fn retire(&mut self, name: String, reply: Reply<Result<String, NodeError>>) {
        match self.publisher.retire(&name, &self.key, now_ms()) {
            Ok(manifest) => {
                let id = manifest.id().to_hex();
                self.persist_seq(&name);
                // No longer offered: its current and former ids stop naming an offer at once
                // (the retiring manifest keeps the id, so the book must not keep serving it).
                crate::hire::offers::with_book(&self.offers, |book| book.retire(&name));
                let (done, _) = oneshot::channel();
                self.store_op(StoreOp::RemoveAgent { name, done });
                self.announce(manifest, None);
                let _ = reply.send(Ok(id));
            }
            Err(e) => {
                let _ = reply.send(Err(e.into()));
            }
        }
    }

    /// Persists the agent record; once it is durable, [`Node::on_committed`] indexes and
    /// gossips the manifest.
    fn persist_and_announce(
        &mut self,
        manifest: Signed<Manifest>,
        record: AgentRecord,
        reply: Option<Reply<Result<Published, NodeError>>>,
    ) {
        // An agent record is plain data (strings, numbers, lists): it always serializes.
        let raw = serde_json::to_vec(&record)
            .unwrap_or_else(|e| unreachable!("agent record to JSON: {e}"));
        self.persist_seq(&record.spec.name);
        let (done, durable) = oneshot::channel();
        self.store_op(StoreOp::PutAgent {
            name: record.spec.name.clone(),
            record: raw,
            done,
        });
        self.pending.push(Box::pin(async move {
            let durable = match durable.await {
                Ok(r) => r.map_err(NodeError::Store),
                Err(_) => Err(NodeError::Stopped),
            };
            Pending::Committed {
                manifest: Box::new(manifest),
                record: Box::new(record),
                reply,
                durable,
            }
        }));
    }

    pub(super) fn on_committed(
        &mut self,
        manifest: Signed<Manifest>,
        record: AgentRecord,
        reply: Option<Reply<Result<Published, NodeError>>>,
        durable: Result<(), NodeError>,
    ) {
        if let Err(e) = durable {
            tracing::error!("agent record not stored: {e}");
            if let Some(reply) = reply {
                let _ = reply.send(Err(e));
            }
            return;
        }
        let published = Published {
            name: record.spec.name.clone(),
            manifest_id: record.manifest_id.clone(),
            seq: record.seq,
            expires_at: record.expires_at,
        };
        let run = record.spec.run.clone();
        let name = record.spec.name.clone();
        if self.publisher.commit(record) {
            self.announce(manifest, Some(run));
        } else {
            // Retired while this announcement was being stored: undo the store write.
            let (done, _) = oneshot::channel();
            self.store_op(StoreOp::RemoveAgent { name, done });
        }
        if let Some(reply) = reply {
            let _ = reply.send(Ok(published));
        }
    }

    fn announce(&mut self, manifest: Signed<Manifest>, run: Option<crate::agent_file::RunSpec>) {
        let bytes = manifest.to_bytes();
        if let Some(run) = run {
            let offer = Offerable {
                manifest: manifest.clone(),
                run,
            };
            let previous: Vec<Hash> = self
                .publisher
                .get(&manifest.body().name)
                .map(|r| {
                    r.previous_ids
                        .iter()
                        .filter_map(|h| Hash::from_hex(h))
                        .collect()
                })
                .unwrap_or_default();
            crate::hire::offers::with_book(&self.offers, |book| book.insert(offer, &previous));
        }
        if self.light {
            self.remember(&manifest);
        } else if let Admission::Accepted { manifest, replaced } =
            self.catalog.insert_verified(manifest)
        {
            self.keep(manifest, replaced, Via::Local, None, None);
        }
        self.metrics.published.inc();
        self.gossip(bytes);
    }

    pub(super) fn gossip(&mut self, bytes: Vec<u8>) {
        let topic = self.topic.clone();
        match self
            .swarm
            .behaviour_mut()
            .gossipsub
            .publish(topic, bytes.clone())
        {
            Ok(_) | Err(libp2p::gossipsub::PublishError::Duplicate) => {}
            Err(e) => {
                tracing::debug!("gossip deferred: {e}");
                self.pending_publish.push(bytes);
            }
        }
    }

    pub(super) fn flush_pending_publish(&mut self) {
        let pending = std::mem::take(&mut self.pending_publish);
        for bytes in pending {
            self.gossip(bytes);
        }
    }
}
