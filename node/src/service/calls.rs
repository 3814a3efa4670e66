//! The hire protocol at the swarm: outbound calls for the hire actor ([`Caller`], its
//! [`HireNetwork`]) and inbound calls handed to the actor, whose replies come back through
//! the loop's pending futures. A full actor inbox is answered `busy` at once.
//!
//! Outbound hire calls to one peer are bounded ([`HIRE_CALLS_PER_PEER`]): libp2p drops a
//! stream beyond a connection's limit without an answer, which a burst of hires from one
//! client would otherwise hit; calls beyond the bound wait for a free slot instead.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use libp2p::PeerId;
use libp2p::request_response::{self, ResponseChannel};
use souk_protocol::credential::{DenialCode, RelayReply, RelayRequest};
use souk_protocol::hiring::{CallError, HireCall, HireReply};
use souk_protocol::manifest::Manifest;
use souk_protocol::signed::Signed;
use souk_protocol::{Hash, NodeId};
use tokio::sync::{Semaphore, mpsc, oneshot};

use super::handle::{Command, NodeError};
use super::{Node, Pending};
use crate::hire::transport::BoxFuture;
use crate::hire::{HireNetwork, PublicRecord, TransportError};
use crate::swarm::HIRE_CALLS_PER_PEER;

/// Sends hire calls to peers through the swarm loop.
#[derive(Clone, Debug)]
pub struct Caller {
    tx: mpsc::Sender<Command>,
    /// A light node asks a full peer about a provider before it hires.
    light: bool,
    in_flight: Arc<Mutex<HashMap<PeerId, Arc<Semaphore>>>>,
}

impl Caller {
    /// A caller sending through the swarm loop's command queue.
    pub(super) fn new(tx: mpsc::Sender<Command>, light: bool) -> Self {
        Caller {
            tx,
            light,
            in_flight: Arc::default(),
        }
    }

    /// The bound on calls in flight to `peer` (made on first use; bounds of peers with no
    /// call in flight are dropped when the table grows).
    fn limit_of(&self, peer: PeerId) -> Arc<Semaphore> {
        let mut map = self
            .in_flight
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.len() >= 1024 {
            map.retain(|_, s| Arc::strong_count(s) > 1);
        }
        map.entry(peer)
            .or_insert_with(|| Arc::new(Semaphore::new(HIRE_CALLS_PER_PEER)))
            .clone()
    }
}

impl HireNetwork for Caller {
    fn call(&self, peer: PeerId, call: HireCall) -> BoxFuture<Result<HireReply, TransportError>> {
        let tx = self.tx.clone();
        let limit = self.limit_of(peer);
        Box::pin(async move {
            let _permit = limit
                .acquire_owned()
                .await
                .map_err(|_| TransportError::Stopped)?;
            let (reply, rx) = oneshot::channel();
            tx.send(Command::HireCall {
                peer,
                call: Box::new(call),
                reply,
            })
            .await
            .map_err(|_| TransportError::Stopped)?;
            rx.await.map_err(|_| TransportError::Stopped)?
        })
    }

    fn relay(
        &self,
        peer: PeerId,
        request: RelayRequest,
    ) -> BoxFuture<Result<RelayReply, TransportError>> {
        let tx = self.tx.clone();
        Box::pin(async move {
            let (reply, rx) = oneshot::channel();
            tx.send(Command::RelayCall {
                peer,
                request: Box::new(request),
                reply,
            })
            .await
            .map_err(|_| TransportError::Stopped)?;
            rx.await.map_err(|_| TransportError::Stopped)?
        })
    }

    fn publish(&self, record: PublicRecord) -> BoxFuture<Result<(), TransportError>> {
        let tx = self.tx.clone();
        Box::pin(async move {
            let (reply, rx) = oneshot::channel();
            tx.send(Command::PublishRecord(record, reply))
                .await
                .map_err(|_| TransportError::Stopped)?;
            rx.await
                .map_err(|_| TransportError::Stopped)?
                .or_else(|e| match e {
                    // The network keeps a record it prefers for this hire (or provider):
                    // nothing more to publish.
                    NodeError::Superseded => Ok(()),
                    NodeError::Stopped => Err(TransportError::Stopped),
                    other => Err(TransportError::NoReply(other.to_string())),
                })
        })
    }

    fn successor(&self, id: Hash) -> BoxFuture<Result<Option<Hash>, TransportError>> {
        let tx = self.tx.clone();
        Box::pin(async move {
            let (reply, rx) = oneshot::channel();
            tx.send(Command::Successor(id, reply))
                .await
                .map_err(|_| TransportError::Stopped)?;
            rx.await.map_err(|_| TransportError::Stopped)
        })
    }

    fn is_flagged(&self, provider: NodeId) -> BoxFuture<Result<bool, TransportError>> {
        let tx = self.tx.clone();
        Box::pin(async move {
            let (reply, rx) = oneshot::channel();
            tx.send(Command::IsFlagged(provider, reply))
                .await
                .map_err(|_| TransportError::Stopped)?;
            rx.await.map_err(|_| TransportError::Stopped)
        })
    }

    fn check_provider(&self, provider: NodeId) -> BoxFuture<Result<bool, TransportError>> {
        let tx = self.tx.clone();
        let light = self.light;
        let flagged = self.is_flagged(provider);
        Box::pin(async move {
            if light {
                let (reply, rx) = oneshot::channel();
                tx.send(Command::FetchOutcomes(provider, reply))
                    .await
                    .map_err(|_| TransportError::Stopped)?;
                match rx.await.map_err(|_| TransportError::Stopped)? {
                    Ok(_) => {}
                    Err(NodeError::Stopped) => return Err(TransportError::Stopped),
                    Err(e) => tracing::warn!(
                        %provider,
                        "could not check the provider for an equivocation proof: {e}"
                    ),
                }
            }
            flagged.await
        })
    }

    fn lookup_manifest(
        &self,
        id: Hash,
    ) -> BoxFuture<Result<Option<Signed<Manifest>>, TransportError>> {
        let tx = self.tx.clone();
        Box::pin(async move {
            let (reply, rx) = oneshot::channel();
            tx.send(Command::LookupManifest(id, reply))
                .await
                .map_err(|_| TransportError::Stopped)?;
            rx.await.map_err(|_| TransportError::Stopped)
        })
    }
}

impl Node {
    /// Sends the actor's reply to an inbound call; an actor that dropped the call unanswered
    /// gets `internal`.
    pub(super) fn respond(
        &mut self,
        channel: ResponseChannel<HireReply>,
        reply: Option<HireReply>,
    ) {
        let reply = reply.unwrap_or_else(|| HireReply::Error {
            code: CallError::Internal,
            message: "the provider dropped the call".into(),
        });
        if self
            .swarm
            .behaviour_mut()
            .hire
            .send_response(channel, reply)
            .is_err()
        {
            tracing::debug!("a hire caller went away before its reply");
        }
    }

    pub(super) fn on_hire(&mut self, ev: request_response::Event<HireCall, HireReply>) {
        match ev {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => {
                    let (reply, answer) = oneshot::channel();
                    if !self.hire_inbound.deliver(peer, request, reply) {
                        self.metrics.hire_calls_busy.inc();
                        let busy = HireReply::Error {
                            code: CallError::Busy,
                            message: "the provider is busy; retry shortly".into(),
                        };
                        let _ = self.swarm.behaviour_mut().hire.send_response(channel, busy);
                        return;
                    }
                    // The reply comes back through `pending`, polled by the loop.
                    self.pending.push(Box::pin(async move {
                        Pending::HireReply {
                            channel,
                            reply: answer.await.ok(),
                        }
                    }));
                }
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    if let Some(reply) = self.calls.remove(&request_id) {
                        let _ = reply.send(Ok(response));
                    }
                }
            },
            request_response::Event::OutboundFailure {
                request_id, error, ..
            } => {
                if let Some(reply) = self.calls.remove(&request_id) {
                    let _ = reply.send(Err(TransportError::NoReply(error.to_string())));
                }
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                tracing::debug!(%peer, "inbound hire call failed: {error}");
            }
            _ => {}
        }
    }

    /// Sends the actor's answer to an inbound relay request; an actor that dropped it gets a
    /// denial that may be retried.
    pub(super) fn respond_relay(
        &mut self,
        channel: ResponseChannel<RelayReply>,
        reply: Option<RelayReply>,
    ) {
        let reply = reply.unwrap_or_else(|| RelayReply::Denied {
            code: DenialCode::UpstreamError,
            message: "the client dropped the call".into(),
            retry: true,
        });
        if self
            .swarm
            .behaviour_mut()
            .relay
            .send_response(channel, reply)
            .is_err()
        {
            tracing::debug!("a relay caller went away before its reply");
        }
    }

    pub(super) fn on_relay(&mut self, ev: request_response::Event<RelayRequest, RelayReply>) {
        match ev {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => {
                    let (reply, answer) = oneshot::channel();
                    if !self.hire_inbound.deliver_relay(peer, request, reply) {
                        let busy = RelayReply::Denied {
                            code: DenialCode::UpstreamError,
                            message: "the client is busy; retry shortly".into(),
                            retry: true,
                        };
                        let _ = self
                            .swarm
                            .behaviour_mut()
                            .relay
                            .send_response(channel, busy);
                        return;
                    }
                    self.pending.push(Box::pin(async move {
                        Pending::RelayReply {
                            channel,
                            reply: answer.await.ok(),
                        }
                    }));
                }
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    if let Some(reply) = self.relay_calls.remove(&request_id) {
                        let _ = reply.send(Ok(response));
                    }
                }
            },
            request_response::Event::OutboundFailure {
                request_id, error, ..
            } => {
                if let Some(reply) = self.relay_calls.remove(&request_id) {
                    let _ = reply.send(Err(TransportError::NoReply(error.to_string())));
                }
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                tracing::debug!(%peer, "inbound relay request failed: {error}");
            }
            _ => {}
        }
    }
}
