//! The messages of the hire actor: what reaches its inbox ([`Msg`]: inbound calls, API
//! operations, progress of jobs and followers, results of its tasks) and what it sends to a
//! running job ([`JobControl`]). Plain data: every other hire module speaks through these.

use libp2p::PeerId;
use serde_json::Value;
use souk_protocol::Hash;
use souk_protocol::hire::Verdict;
use souk_protocol::hiring::HireCall;
use souk_protocol::receipt::Canceler;
use tokio::sync::oneshot;

use super::error::HireError;
use super::record::HireRecord;
use super::transport::Responder;
use super::view::{NewHire, ReceiptsView, WorkdirView};

/// Where an API operation's answer goes.
pub type Reply<T> = oneshot::Sender<T>;

/// The actor's inbox.
pub(crate) enum Msg {
    /// A hire call from a peer.
    Inbound {
        /// The caller (authenticated by the connection).
        peer: PeerId,
        /// The call.
        call: HireCall,
        /// Where the reply goes.
        reply: Responder,
    },
    /// A relayed call from the provider of one of our hires (`/souk/relay/1`).
    Relay {
        /// The caller (authenticated by the connection).
        peer: PeerId,
        /// The request.
        request: Box<souk_protocol::credential::RelayRequest>,
        /// Where the answer goes.
        reply: super::transport::RelayResponder,
    },
    /// A local API operation.
    Api(ApiOp),
    /// A job's progress.
    Job(JobUpdate),
    /// A follower's progress.
    Follow(FollowUpdate),
    /// A task finished work that changes the actor's state.
    Done(Done),
    /// Stop every job and follower, wait for the tasks, then stop.
    Shutdown(oneshot::Sender<()>),
}

/// A local API operation.
pub(crate) enum ApiOp {
    Create(NewHire, Reply<Result<HireRecord, HireError>>),
    List(Reply<Vec<HireRecord>>),
    Get(Hash, Reply<Option<HireRecord>>),
    Receipts {
        id: Hash,
        from: u64,
        wait_ms: u64,
        reply: Reply<Result<ReceiptsView, HireError>>,
    },
    Answer(Hash, Value, Reply<Result<(), HireError>>),
    Cancel(Hash, String, Reply<Result<(), HireError>>),
    Settle(Hash, Verdict, String, Reply<Result<HireRecord, HireError>>),
    Bundle(Hash, bool, Reply<Result<Vec<u8>, HireError>>),
    Output(Hash, Reply<Result<Option<Value>, HireError>>),
    Workdir(Hash, Reply<Result<WorkdirView, HireError>>),
    /// The node admitted an equivocation proof (canonical bytes) against `provider`: end
    /// every unfinished client hire with it. Answers how many were ended.
    Equivocated {
        provider: souk_protocol::NodeId,
        proof: Vec<u8>,
        reply: Reply<Result<usize, HireError>>,
    },
}

/// What a running job is told.
#[derive(Debug)]
pub enum JobControl {
    /// The client's answer to the agent's question (JSON bytes); `done` is told once the
    /// answer is durable (recorded, or kept for a resumed agent) or was dropped.
    Answer {
        /// The answer.
        answer: Vec<u8>,
        /// `Ok` once durable; `Err` if the job could not keep it.
        done: oneshot::Sender<Result<(), HireError>>,
    },
    /// Stop: who asked, and why.
    Cancel {
        /// The client (through a hire call) or the provider (through its own API).
        by: Canceler,
        /// Why.
        reason: String,
    },
}

/// What a job tells the actor.
#[derive(Debug, Clone)]
pub enum JobUpdate {
    /// An entry was appended durably (or group-committed, see `job.rs`).
    Appended {
        /// The hire.
        hire_id: Hash,
        /// The record after the append.
        record: Box<HireRecord>,
    },
    /// The job task ended (terminal entry appended, node stopping, or it could not start).
    Ended {
        /// The hire.
        hire_id: Hash,
    },
}

/// What a follower tells the actor.
#[derive(Debug, Clone)]
pub enum FollowUpdate {
    /// New entries (or the output) were stored; the record after them.
    Progress(Box<HireRecord>),
    /// The follower stopped (chain finished, stream broken, or node stopping).
    Stopped(Hash),
}

/// Results of the actor's tasks that change its state.
pub(crate) enum Done {
    /// Provider: an accepted contract was checked and stored (or failed to be).
    AcceptStored {
        /// The hire.
        id: Hash,
        /// The stored record and what the job starts from, or why the contract was not
        /// stored.
        result: Result<
            (HireRecord, Box<super::job::Fresh>),
            (souk_protocol::hiring::CallError, String),
        >,
    },
    /// Provider: the client's attestation was checked and stored.
    SettledByClient {
        /// The hire.
        id: Hash,
        /// The verdict recorded.
        verdict: Verdict,
        /// The record after it.
        record: Box<HireRecord>,
    },
    /// Provider: the answer to this request was not an offer; give back its slot.
    Unreserve(Hash),
    /// Provider: settling ended without a change (refused, or a redelivery).
    SettleFinished(Hash),
    /// Client: a contract was stored; follow the hire.
    Contracted(Box<HireRecord>),
    /// Client: the settlement was stored (or failed); `reply` gets the outcome.
    Settled {
        /// The hire.
        id: Hash,
        /// The stored record, or why not.
        result: Result<HireRecord, HireError>,
        /// The API caller.
        reply: Reply<Result<HireRecord, HireError>>,
    },
    /// Client: a delivery attempt of the attestation ended; `record` if it reached the
    /// provider (and the record was updated).
    Delivered {
        /// The hire.
        id: Hash,
        /// The record after delivery, if delivered.
        record: Option<Box<HireRecord>>,
    },
}
