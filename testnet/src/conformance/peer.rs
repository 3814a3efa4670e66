//! The kit's own libp2p peer: a Souk swarm (TCP, noise, yamux, identify, ping, gossipsub,
//! request-response for sync, search and hire) with a fresh key, driven step by step by the
//! checks: every helper polls the swarm until what it waits for happens or its time is up,
//! keeping what else arrives (gossip messages, identify answers, pings, and hire calls made
//! to it when it plays a provider).

use std::collections::HashMap;
use std::time::Duration;

use futures::StreamExt;
use libp2p::request_response::ResponseChannel;
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, PeerId, Swarm, gossipsub, identify, ping, request_response};
use souk_node::swarm::{Behaviour, BehaviourEvent, SwarmSettings};
use souk_protocol::discovery::{
    MANIFEST_TOPIC, SearchRequest, SearchResponse, SyncRequest, SyncResponse,
};
use souk_protocol::hiring::{HireCall, HireReply};
use souk_protocol::identity::Keypair;

/// One request's answer.
enum Answer {
    Sync(SyncResponse),
    Search(SearchResponse),
    Hire(HireReply),
    Failed(String),
}

/// A kit peer.
pub(super) struct Peer {
    pub(super) key: Keypair,
    pub(super) swarm: Swarm<Behaviour>,
    pub(super) identify: Option<identify::Info>,
    pub(super) rtt: Option<Duration>,
    /// Gossip messages received: (message id, data).
    pub(super) gossip: Vec<(Vec<u8>, Vec<u8>)>,
    /// Hire calls made to this peer, not answered yet: (caller, call, where to answer).
    pub(super) calls: Vec<(PeerId, HireCall, ResponseChannel<HireReply>)>,
    answers: HashMap<request_response::OutboundRequestId, Answer>,
    connected: Option<PeerId>,
    closed: Option<String>,
}

impl Peer {
    /// A peer with a fresh key, subscribed to the manifest topic.
    pub(super) fn new() -> anyhow::Result<Self> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| anyhow::anyhow!("randomness: {e}"))?;
        let key = Keypair::from_seed(&seed);
        let p2p = libp2p::identity::Keypair::ed25519_from_bytes(&mut seed)
            .map_err(|e| anyhow::anyhow!("key: {e}"))?;
        let settings = SwarmSettings {
            light: true,
            request_timeout: Duration::from_secs(20),
            ..SwarmSettings::default()
        };
        let mut swarm = souk_node::swarm::build(p2p, &settings)?;
        swarm
            .behaviour_mut()
            .gossipsub
            .subscribe(&gossipsub::IdentTopic::new(MANIFEST_TOPIC))
            .map_err(|e| anyhow::anyhow!("subscribe: {e}"))?;
        Ok(Self {
            key,
            swarm,
            identify: None,
            rtt: None,
            gossip: Vec::new(),
            calls: Vec::new(),
            answers: HashMap::new(),
            connected: None,
            closed: None,
        })
    }

    /// The node's peer id once connected.
    pub(super) fn node(&self) -> Option<PeerId> {
        self.connected
    }

    fn on_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::ConnectionEstablished { peer_id, .. } => self.connected = Some(peer_id),
            SwarmEvent::ConnectionClosed { cause, .. } => {
                self.closed = Some(cause.map_or("closed".into(), |c| c.to_string()));
            }
            SwarmEvent::OutgoingConnectionError { error, .. } => {
                self.closed = Some(error.to_string());
            }
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received {
                info,
                ..
            })) => self.identify = Some(info),
            SwarmEvent::Behaviour(BehaviourEvent::Ping(ping::Event {
                result: Ok(rtt), ..
            })) => self.rtt = Some(rtt),
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                message_id,
                message,
                ..
            })) => self.gossip.push((message_id.0, message.data)),
            SwarmEvent::Behaviour(BehaviourEvent::Sync(request_response::Event::Message {
                message:
                    request_response::Message::Response {
                        request_id,
                        response,
                    },
                ..
            })) => {
                self.answers.insert(request_id, Answer::Sync(response));
            }
            SwarmEvent::Behaviour(BehaviourEvent::Search(request_response::Event::Message {
                message:
                    request_response::Message::Response {
                        request_id,
                        response,
                    },
                ..
            })) => {
                self.answers.insert(request_id, Answer::Search(response));
            }
            SwarmEvent::Behaviour(BehaviourEvent::Hire(request_response::Event::Message {
                peer,
                message:
                    request_response::Message::Request {
                        request, channel, ..
                    },
                ..
            })) => self.calls.push((peer, request, channel)),
            SwarmEvent::Behaviour(BehaviourEvent::Hire(request_response::Event::Message {
                message:
                    request_response::Message::Response {
                        request_id,
                        response,
                    },
                ..
            })) => {
                self.answers.insert(request_id, Answer::Hire(response));
            }
            SwarmEvent::Behaviour(
                BehaviourEvent::Sync(request_response::Event::OutboundFailure {
                    request_id,
                    error,
                    ..
                })
                | BehaviourEvent::Search(request_response::Event::OutboundFailure {
                    request_id,
                    error,
                    ..
                }),
            ) => {
                self.answers
                    .insert(request_id, Answer::Failed(error.to_string()));
            }
            SwarmEvent::Behaviour(BehaviourEvent::Hire(
                request_response::Event::OutboundFailure {
                    request_id, error, ..
                },
            )) => {
                self.answers
                    .insert(request_id, Answer::Failed(error.to_string()));
            }
            _ => {}
        }
    }

    /// Polls until `done` holds (true) or `within` passes (false).
    pub(super) async fn pump(&mut self, within: Duration, done: impl Fn(&Peer) -> bool) -> bool {
        let until = tokio::time::Instant::now() + within;
        while !done(self) {
            tokio::select! {
                e = self.swarm.select_next_some() => self.on_event(e),
                () = tokio::time::sleep_until(until) => return done(self),
            }
        }
        true
    }

    /// Dials `addr` and waits for the connection (and the node's identify answer).
    pub(super) async fn connect(&mut self, addr: &Multiaddr) -> anyhow::Result<PeerId> {
        self.swarm.dial(addr.clone())?;
        if !self
            .pump(Duration::from_secs(10), |p| {
                p.connected.is_some() || p.closed.is_some()
            })
            .await
        {
            anyhow::bail!("no connection within 10 s");
        }
        if let Some(why) = self.closed.take() {
            anyhow::bail!("{why}");
        }
        self.connected
            .ok_or_else(|| anyhow::anyhow!("no connection"))
    }

    async fn answer(
        &mut self,
        id: request_response::OutboundRequestId,
        within: Duration,
    ) -> Result<Answer, String> {
        if !self.pump(within, |p| p.answers.contains_key(&id)).await {
            return Err(format!("no answer within {} s", within.as_secs()));
        }
        self.answers
            .remove(&id)
            .ok_or_else(|| "the answer was lost".to_owned())
    }

    /// A sync page.
    pub(super) async fn sync(&mut self, req: SyncRequest) -> Result<SyncResponse, String> {
        let node = self.node().ok_or("not connected")?;
        let id = self.swarm.behaviour_mut().sync.send_request(&node, req);
        match self.answer(id, Duration::from_secs(20)).await? {
            Answer::Sync(r) => Ok(r),
            Answer::Failed(e) => Err(e),
            _ => Err("a reply of another protocol".into()),
        }
    }

    /// A search.
    pub(super) async fn search(&mut self, req: SearchRequest) -> Result<SearchResponse, String> {
        let node = self.node().ok_or("not connected")?;
        let id = self.swarm.behaviour_mut().search.send_request(&node, req);
        match self.answer(id, Duration::from_secs(20)).await? {
            Answer::Search(r) => Ok(r),
            Answer::Failed(e) => Err(e),
            _ => Err("a reply of another protocol".into()),
        }
    }

    /// A hire call.
    pub(super) async fn hire(&mut self, call: HireCall) -> Result<HireReply, String> {
        let node = self.node().ok_or("not connected")?;
        let id = self.swarm.behaviour_mut().hire.send_request(&node, call);
        match self.answer(id, Duration::from_secs(45)).await? {
            Answer::Hire(r) => Ok(r),
            Answer::Failed(e) => Err(e),
            _ => Err("a reply of another protocol".into()),
        }
    }

    /// Publishes `data` on the manifest topic; the message id gossipsub computed.
    pub(super) fn publish(&mut self, data: Vec<u8>) -> Result<Vec<u8>, String> {
        self.swarm
            .behaviour_mut()
            .gossipsub
            .publish(gossipsub::IdentTopic::new(MANIFEST_TOPIC), data)
            .map(|id| id.0)
            .map_err(|e| e.to_string())
    }
}

/// Polls two peers together until `done` holds or `within` passes.
pub(super) async fn pump_both(
    a: &mut Peer,
    b: &mut Peer,
    within: Duration,
    done: impl Fn(&Peer, &Peer) -> bool,
) -> bool {
    let until = tokio::time::Instant::now() + within;
    while !done(a, b) {
        tokio::select! {
            e = a.swarm.select_next_some() => a.on_event(e),
            e = b.swarm.select_next_some() => b.on_event(e),
            () = tokio::time::sleep_until(until) => return done(a, b),
        }
    }
    true
}
