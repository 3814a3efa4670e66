//! Outcome records and equivocation proofs in the node's loop: gossip intake on
//! `souk/outcomes/1` and `souk/equivocations/1` (admitted by [`crate::outcomes::Outcomes`]
//! before gossipsub may forward them), `/souk/outcome-sync/1` (serving, a joining full node's
//! catch-up, a light node's fetch of one provider's records and of the proof against it),
//! this node's own publications (durable first, then gossiped, kept in the outbox until a
//! peer took them), and the reputation queries of [`super::NodeHandle`] (a hire's check of its
//! provider is `HireNetwork::check_provider`, in `super::calls`).
//!
//! Nothing here blocks: writes go to the storage worker, durable acknowledgements come back as
//! pending futures.

use libp2p::request_response;
use libp2p::{PeerId, gossipsub};
use souk_protocol::discovery::MAX_RESPONSE_LEN;
use souk_protocol::equivocation::{EquivocationProof, MAX_PROOF_LEN};
use souk_protocol::outcome::Outcome;
use souk_protocol::outcome_sync::{
    MAX_OUTCOME_PAGE, OutcomeSyncRequest, OutcomeSyncResponse, SyncKind,
};
use souk_protocol::{Hash, NodeId};
use souk_store::{OutboxKind, ReputationWrite};
use tokio::sync::oneshot;

use super::events::{NodeEvent, Via};
use super::handle::{NodeError, Reply};
use super::{MAX_SYNC_PAGES, Node, Pending, STORE_BATCH};
use crate::now_ms;
use crate::outcomes::{ItemRejection, ProofAdmission, RecordAdmission, proof_cursor};

/// Bytes of items a served page may carry: well under the response limit.
const PAGE_BUDGET: usize = MAX_RESPONSE_LEN - 64 * 1024;

/// An outcome-sync request this node sent and is waiting on.
pub(super) enum OutcomeRequest {
    /// Catch-up of every record (kind 0) or every proof (kind 1) from a full peer.
    Sync {
        /// What was asked.
        kind: SyncKind,
        /// The cursor sent.
        after: Option<Hash>,
        /// Pages fetched in this session so far.
        pages: u32,
    },
    /// A lookup of one provider's records (kind 2), answered once the last page is in.
    Fetch {
        /// The provider.
        provider: NodeId,
        /// The cursor sent.
        after: Option<Hash>,
        /// Pages fetched so far.
        pages: u32,
        /// Who asked.
        reply: Reply<Result<Vec<Outcome>, NodeError>>,
    },
    /// The end of a light node's lookup, once the provider's records are in: one proof
    /// (kind 1) from just below the provider's key, which is the proof against the provider
    /// when the peer holds one.
    FetchProof {
        /// The provider.
        provider: NodeId,
        /// Who asked.
        reply: Reply<Result<Vec<Outcome>, NodeError>>,
    },
}

impl OutcomeRequest {
    /// What is asked on the wire: kind, cursor and page size.
    fn wire(&self) -> (SyncKind, Option<Hash>, u32) {
        match self {
            OutcomeRequest::Sync { kind, after, .. } => (*kind, *after, MAX_OUTCOME_PAGE),
            OutcomeRequest::Fetch {
                provider, after, ..
            } => (SyncKind::Provider(*provider), *after, MAX_OUTCOME_PAGE),
            OutcomeRequest::FetchProof { provider, .. } => {
                (SyncKind::Proofs, proof_cursor(provider.as_bytes()), 1)
            }
        }
    }
}

/// An item this node publishes, kept until gossipsub has handed it to a peer.
#[derive(Debug, Clone)]
pub(super) struct Outgoing {
    pub(super) kind: OutboxKind,
    pub(super) key: [u8; 32],
    pub(super) bytes: Vec<u8>,
}

impl Node {
    fn topic_of(&self, kind: OutboxKind) -> gossipsub::IdentTopic {
        match kind {
            OutboxKind::Outcome => self.outcome_topic.clone(),
            OutboxKind::Proof => self.proof_topic.clone(),
        }
    }

    /// Queues a reputation write for the next store batch.
    fn rep_write(&mut self, w: ReputationWrite) {
        self.rep_batch.push(w);
        if self.rep_batch.len() >= STORE_BATCH {
            self.write_rep_batch();
        }
    }

    /// Hands the queued reputation writes to the storage worker as one batch.
    pub(super) fn write_rep_batch(&mut self) {
        if !self.rep_batch.is_empty() {
            let batch = std::mem::take(&mut self.rep_batch);
            self.store_op(crate::storage::StoreOp::WriteReputation(batch));
        }
    }

    /// Takes an admitted record: counted, announced to observers, queued for the store.
    fn kept_record(&mut self, outcome: &Outcome, via: Via) {
        self.metrics.outcomes_admitted.inc();
        self.unranked
            .insert((outcome.provider, outcome.agent.name.clone()));
        self.events.send(NodeEvent::OutcomeAdmitted {
            hire_id: outcome.hire_id,
            record_id: outcome.record_id,
            via,
        });
        if via != Via::Local
            && let Some(bytes) = self.outcomes.record_bytes(&outcome.hire_id)
        {
            let w = ReputationWrite::Put {
                kind: OutboxKind::Outcome,
                key: outcome.hire_id.0,
                bytes: bytes.to_vec(),
            };
            self.rep_write(w);
        }
    }

    fn kept_proof(&mut self, signer: NodeId, newly_flagged: bool, via: Via) {
        self.metrics.proofs_admitted.inc();
        if newly_flagged {
            self.on_provider_flagged(signer);
            self.metrics.providers_flagged.inc();
            tracing::warn!(provider = %signer, "provider flagged: verified equivocation proof");
            self.events.send(NodeEvent::ProviderFlagged {
                provider: signer,
                via,
            });
        }
        if via != Via::Local
            && let Some(bytes) = self.outcomes.proof_bytes(signer.as_bytes())
        {
            let w = ReputationWrite::Put {
                kind: OutboxKind::Proof,
                key: *signer.as_bytes(),
                bytes: bytes.to_vec(),
            };
            self.rep_write(w);
        }
    }

    /// Admits one record from the network; `Some(rejection)` when it is invalid.
    fn take_record(&mut self, bytes: &[u8], via: Via) -> Result<bool, ItemRejection> {
        match self.outcomes.admit_record(bytes, now_ms()) {
            RecordAdmission::Accepted { outcome, .. } => {
                self.kept_record(&outcome, via);
                Ok(true)
            }
            RecordAdmission::Duplicate | RecordAdmission::Superseded => Ok(false),
            RecordAdmission::Rejected(why) => {
                self.metrics.outcomes_rejected.inc();
                Err(why)
            }
        }
    }

    fn take_proof(&mut self, bytes: &[u8], via: Via) -> Result<bool, ItemRejection> {
        match self.outcomes.admit_proof(bytes) {
            ProofAdmission::Accepted {
                equivocation,
                newly_flagged,
            } => {
                self.kept_proof(equivocation.signer, newly_flagged, via);
                Ok(true)
            }
            ProofAdmission::Duplicate | ProofAdmission::Superseded => Ok(false),
            ProofAdmission::Rejected(why) => {
                self.metrics.outcomes_rejected.inc();
                Err(why)
            }
        }
    }

    /// A gossip message on the outcome or equivocation topic: validated before gossipsub may
    /// forward it (Accept), dropped (Ignore) or refused and charged to the sender (Reject).
    pub(super) fn on_item_gossip(
        &mut self,
        kind: OutboxKind,
        source: PeerId,
        id: gossipsub::MessageId,
        data: &[u8],
    ) {
        let r = match kind {
            OutboxKind::Outcome => self.take_record(data, Via::Gossip),
            OutboxKind::Proof => self.take_proof(data, Via::Gossip),
        };
        let acceptance = match r {
            Ok(true) => gossipsub::MessageAcceptance::Accept,
            Ok(false) => gossipsub::MessageAcceptance::Ignore,
            Err(why) => {
                self.penalize(source, &format!("{kind:?} on gossip: {why}"));
                gossipsub::MessageAcceptance::Reject
            }
        };
        self.swarm
            .behaviour_mut()
            .gossipsub
            .report_message_validation_result(&id, &source, acceptance);
    }

    /// Starts the catch-up of records and proofs from a full peer (with its manifest sync).
    pub(super) fn start_outcome_sync(&mut self, peer: PeerId) {
        for kind in [SyncKind::Outcomes, SyncKind::Proofs] {
            self.send_outcome_request(
                peer,
                OutcomeRequest::Sync {
                    kind,
                    after: None,
                    pages: 1,
                },
            );
        }
    }

    fn send_outcome_request(&mut self, peer: PeerId, req: OutcomeRequest) {
        let (kind, after, limit) = req.wire();
        let id = self
            .swarm
            .behaviour_mut()
            .outcome_sync
            .send_request(&peer, OutcomeSyncRequest { kind, after, limit });
        self.outcome_requests.insert(id, req);
    }

    pub(super) fn on_outcome_sync(
        &mut self,
        ev: request_response::Event<OutcomeSyncRequest, OutcomeSyncResponse>,
    ) {
        match ev {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => {
                    self.metrics.sync_served.inc();
                    let page = self.outcomes.sync_page(&request, PAGE_BUDGET);
                    let _ = self
                        .swarm
                        .behaviour_mut()
                        .outcome_sync
                        .send_response(channel, page);
                }
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    if let Some(req) = self.outcome_requests.remove(&request_id) {
                        self.on_outcome_page(peer, req, response);
                    }
                }
            },
            request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                tracing::debug!(%peer, "outcome sync request failed: {error}");
                if let Some(
                    OutcomeRequest::Fetch { reply, .. } | OutcomeRequest::FetchProof { reply, .. },
                ) = self.outcome_requests.remove(&request_id)
                {
                    let _ = reply.send(Err(NodeError::Fetch(error.to_string())));
                }
            }
            _ => {}
        }
    }

    /// One page of records or proofs from `peer`: every item goes through admission (not
    /// re-gossiped); an invalid item costs the responder one penalty per page.
    fn on_outcome_page(&mut self, peer: PeerId, req: OutcomeRequest, page: OutcomeSyncResponse) {
        let (kind, after, _) = req.wire();
        // A proof probe asked for one item: only the first counts.
        let (items, probe) = match &req {
            OutcomeRequest::FetchProof { provider, .. } => {
                (&page.items[..page.items.len().min(1)], Some(*provider))
            }
            _ => (&page.items[..], None),
        };
        let mut bad: Option<String> = None;
        for item in items {
            self.metrics.sync_received.inc();
            let r = match kind {
                SyncKind::Proofs => match probe {
                    Some(provider) => self.take_probed_proof(provider, item),
                    None => self.take_proof(item, Via::Sync).map(|_| ()),
                },
                SyncKind::Outcomes => self.take_record(item, Via::Sync).map(|_| ()),
                SyncKind::Provider(p) => {
                    // Only that provider's records were asked for: anything else is a lie.
                    // (A valid record's reference names its contract's provider.)
                    match souk_protocol::outcome::OutcomeRecord::decode_bytes(item) {
                        Ok(r) if r.agent.provider != p => {
                            self.metrics.outcomes_rejected.inc();
                            Err(ItemRejection::Invalid(souk_protocol::Violation::new(
                                souk_protocol::Rule::O1,
                                "a record of another provider",
                            )))
                        }
                        _ => self.take_record(item, Via::Sync).map(|_| ()),
                    }
                }
            };
            match r {
                Ok(()) | Err(ItemRejection::NotYetValid) => {}
                Err(why) => bad = Some(why.to_string()),
            }
        }
        if let Some(why) = bad {
            self.penalize(
                peer,
                &format!("invalid item in an outcome sync page: {why}"),
            );
        }
        // The cursor must move forward, past every item of the page.
        let next = page
            .next
            .filter(|n| !page.items.is_empty() && after.is_none_or(|a| *n > a));
        if page.next.is_some() && next.is_none() {
            self.penalize(peer, "an outcome sync cursor that does not advance");
        }
        match req {
            OutcomeRequest::Sync { kind, pages, .. } => {
                if let Some(next) = next
                    && pages < MAX_SYNC_PAGES
                {
                    self.send_outcome_request(
                        peer,
                        OutcomeRequest::Sync {
                            kind,
                            after: Some(next),
                            pages: pages + 1,
                        },
                    );
                }
            }
            OutcomeRequest::Fetch {
                provider,
                pages,
                reply,
                ..
            } => match next {
                Some(next) if pages < MAX_SYNC_PAGES => {
                    self.send_outcome_request(
                        peer,
                        OutcomeRequest::Fetch {
                            provider,
                            after: Some(next),
                            pages: pages + 1,
                            reply,
                        },
                    );
                }
                // The records are in: ask for the proof against the provider.
                _ => {
                    self.send_outcome_request(peer, OutcomeRequest::FetchProof { provider, reply })
                }
            },
            OutcomeRequest::FetchProof { provider, reply } => {
                let _ = reply.send(Ok(self.outcomes.provider_outcomes(&provider)));
            }
        }
    }

    /// The item of a proof probe for `provider`: admitted when it is a proof against the
    /// provider; the proof of the next provider in key order (none is held against this one)
    /// is ignored unverified; bytes that are not a proof at all are the responder's fault.
    fn take_probed_proof(&mut self, provider: NodeId, item: &[u8]) -> Result<(), ItemRejection> {
        if item.len() > MAX_PROOF_LEN {
            self.metrics.outcomes_rejected.inc();
            return Err(ItemRejection::Oversized(item.len()));
        }
        let proof: EquivocationProof = match souk_protocol::encoding::decode(item, MAX_PROOF_LEN) {
            Ok(p) => p,
            Err(e) => {
                self.metrics.outcomes_rejected.inc();
                return Err(ItemRejection::Invalid(souk_protocol::Violation::new(
                    souk_protocol::Rule::E1,
                    e.to_string(),
                )));
            }
        };
        if proof.entries().0.signer_bytes() != provider.as_bytes() {
            return Ok(());
        }
        self.take_proof(item, Via::Sync).map(|_| ())
    }

    /// A light node's lookup of one provider's records, then of the proof against it,
    /// through a full peer; a full node answers from what it holds.
    pub(super) fn fetch_outcomes(
        &mut self,
        provider: NodeId,
        reply: Reply<Result<Vec<Outcome>, NodeError>>,
    ) {
        if !self.light {
            let _ = reply.send(Ok(self.outcomes.provider_outcomes(&provider)));
            return;
        }
        let connected: Vec<PeerId> = {
            let mut v: Vec<PeerId> = self
                .full_peers
                .keys()
                .filter(|p| self.swarm.is_connected(p))
                .copied()
                .collect();
            v.sort();
            v
        };
        let Some(peer) = connected.first().copied() else {
            let _ = reply.send(Err(NodeError::NoFullPeer));
            return;
        };
        self.send_outcome_request(
            peer,
            OutcomeRequest::Fetch {
                provider,
                after: None,
                pages: 1,
                reply,
            },
        );
    }

    /// Publishes a record or proof of this node's: admitted locally (it must be valid), made
    /// durable with an outbox mark, then gossiped (see [`Node::on_outgoing_stored`]).
    pub(super) fn publish_item(
        &mut self,
        kind: OutboxKind,
        bytes: Vec<u8>,
        reply: Reply<Result<(), NodeError>>,
    ) {
        let key = match kind {
            OutboxKind::Outcome => match self.outcomes.admit_record(&bytes, now_ms()) {
                RecordAdmission::Accepted { outcome, .. } => {
                    self.kept_record(&outcome, Via::Local);
                    outcome.hire_id.0
                }
                RecordAdmission::Duplicate => {
                    match souk_protocol::outcome::OutcomeRecord::decode_bytes(&bytes) {
                        Ok(r) => r.hire_id().0,
                        Err(e) => {
                            let _ = reply.send(Err(NodeError::Invalid(e.to_string())));
                            return;
                        }
                    }
                }
                RecordAdmission::Superseded => {
                    let _ = reply.send(Err(NodeError::Superseded));
                    return;
                }
                RecordAdmission::Rejected(why) => {
                    let _ = reply.send(Err(NodeError::Invalid(why.to_string())));
                    return;
                }
            },
            OutboxKind::Proof => match crate::outcomes::verify_proof(&bytes) {
                Ok(e) => {
                    let signer = e.signer;
                    match self.outcomes.insert_verified_proof(bytes.clone(), e) {
                        ProofAdmission::Accepted { newly_flagged, .. } => {
                            self.kept_proof(signer, newly_flagged, Via::Local)
                        }
                        ProofAdmission::Duplicate => {}
                        ProofAdmission::Superseded | ProofAdmission::Rejected(_) => {
                            let _ = reply.send(Err(NodeError::Superseded));
                            return;
                        }
                    }
                    *signer.as_bytes()
                }
                Err(why) => {
                    let _ = reply.send(Err(NodeError::Invalid(why.to_string())));
                    return;
                }
            },
        };
        let (done, durable) = oneshot::channel();
        self.store_op(crate::storage::StoreOp::PutOutgoing {
            kind,
            key,
            bytes: bytes.clone(),
            done,
        });
        self.pending.push(Box::pin(async move {
            let durable = match durable.await {
                Ok(r) => r.map_err(NodeError::Store),
                Err(_) => Err(NodeError::Stopped),
            };
            Pending::Outgoing {
                item: Outgoing { kind, key, bytes },
                reply,
                durable,
            }
        }));
    }

    /// A published item is durable: gossip it now (or keep it in the outbox).
    pub(super) fn on_outgoing_stored(
        &mut self,
        item: Outgoing,
        reply: Reply<Result<(), NodeError>>,
        durable: Result<(), NodeError>,
    ) {
        match durable {
            Ok(()) => {
                self.gossip_item(item);
                let _ = reply.send(Ok(()));
            }
            Err(e) => {
                let _ = reply.send(Err(e));
            }
        }
    }

    /// Publishes an item on its topic; when no peer could take it, keeps it in the outbox for
    /// the next peer connection or housekeeping tick.
    pub(super) fn gossip_item(&mut self, item: Outgoing) {
        let topic = self.topic_of(item.kind);
        match self
            .swarm
            .behaviour_mut()
            .gossipsub
            .publish(topic, item.bytes.clone())
        {
            Ok(_) | Err(gossipsub::PublishError::Duplicate) => {
                self.rep_write(ReputationWrite::Published {
                    kind: item.kind,
                    key: item.key,
                });
            }
            Err(e) => {
                tracing::debug!("outcome gossip deferred: {e}");
                if !self
                    .outbox
                    .iter()
                    .any(|o| o.kind == item.kind && o.key == item.key)
                {
                    self.outbox.push(item);
                }
            }
        }
    }

    /// Retries every item of the outbox.
    pub(super) fn flush_outbox(&mut self) {
        for item in std::mem::take(&mut self.outbox) {
            self.gossip_item(item);
        }
    }
}
