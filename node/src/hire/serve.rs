//! The provider side of `/souk/hire/1`: how this node answers its clients' calls (request,
//! accept, fetch, answer, cancel, settle; `spec/hiring.md`). Where a provider quotes, stores
//! a contract before acting on it, serves receipts, and records a client's verdict.
//!
//! The functions here run in the hire actor and never wait: what they cannot decide from the
//! actor's state at once (signature checks, hashing a job input, store reads and writes) runs
//! in a tracked task that answers the caller itself, or reports back with a [`Done`] message.

use std::sync::Arc;
use std::time::{Duration, Instant};

use libp2p::PeerId;
use serde_json::Value;
use souk_protocol::Hash;
use souk_protocol::credential::check_grants;
use souk_protocol::hire::HireState;
use souk_protocol::hiring::{CallError, HireCall, HireReply, MAX_FETCH_WAIT_MS};
use souk_protocol::negotiation::{Contract, Counter, Decline, DeclineReason, HireRequest, Offer};
use souk_protocol::receipt::{Attestation, Canceler, MAX_DISCLOSURE_LEN, commit};
use souk_protocol::signed::Signed;
use souk_protocol::verify::check_attestation;
use souk_store::Store;
use tokio::sync::oneshot;

use super::capacity::RESERVATION_MS;
use super::credentials;
use super::ctx::{Ctx, blocking};
use super::error::HireError;
use super::export::verified_chain;
use super::job::Fresh;
use super::launch;
use super::msg::{Done, JobControl, Msg};
use super::offers::{OfferLookup, Offerable, lookup, offer};
use super::policy::{self, PROPOSAL_TTL_MS};
use super::record::{
    BLOB_ATTESTATION, BLOB_CONTRACT, BLOB_INPUT, BLOB_MANIFEST, BLOB_SALT, HireRecord, Role,
};
use super::state::{Hires, Waiter};
use super::transport::Responder;
use super::warm::WarmSlot;
use crate::now_ms;

fn error(code: CallError, message: impl Into<String>) -> HireReply {
    HireReply::Error {
        code,
        message: message.into(),
    }
}

fn busy(message: &str) -> HireReply {
    error(CallError::Busy, message)
}

/// Handles one inbound call.
pub(super) fn on_call(hires: &mut Hires, peer: PeerId, call: HireCall, reply: Responder) {
    match call {
        HireCall::Request { request } => on_request(hires, peer, &request, reply),
        HireCall::Accept {
            contract,
            input,
            salt,
            credentials,
        } => on_accept(hires, peer, &contract, input, salt, credentials, reply),
        HireCall::Fetch {
            hire_id,
            from_seq,
            wait_ms,
        } => match hires.authorize(&peer, &hire_id) {
            Err(e) => {
                let _ = reply.send(e);
            }
            Ok(_) => {
                let wait = Duration::from_millis(wait_ms.min(MAX_FETCH_WAIT_MS));
                hires.poll_receipts(hire_id, from_seq, wait, Waiter::Peer(reply));
            }
        },
        HireCall::Answer { hire_id, answer } => on_answer(hires, &peer, hire_id, answer, reply),
        HireCall::Cancel { hire_id, reason } => {
            let answer = match hires.authorize(&peer, &hire_id) {
                Err(e) => Some(e),
                Ok(r) if r.state.is_terminal() => Some(HireReply::Ok),
                Ok(_) => match hires.job(&hire_id) {
                    None => Some(busy("the job is not running; retry shortly")),
                    Some(job) => {
                        hires.spawn(async move {
                            let stop = JobControl::Cancel {
                                by: Canceler::Client,
                                reason,
                            };
                            let answer = match job.send(stop).await {
                                Ok(()) => HireReply::Ok,
                                Err(_) => busy("the job is not running; retry shortly"),
                            };
                            let _ = reply.send(answer);
                        });
                        return;
                    }
                },
            };
            if let Some(a) = answer {
                let _ = reply.send(a);
            }
        }
        HireCall::Settle { attestation } => on_settle(hires, &peer, attestation, reply),
    }
}

/// `request`: an offer, a counter or a signed decline (spec/hiring.md, "Request"). A free
/// slot is reserved here, before the answer is made, so that a burst of requests gets as
/// many offers as there are free slots and capacity declines for the rest
/// ([`super::capacity`]); the task gives the slot back if its answer is not an offer.
fn on_request(hires: &mut Hires, peer: PeerId, raw: &[u8], reply: Responder) {
    // Decoding is cheap; the signature is checked in the task.
    let request = match Signed::<HireRequest>::decode_bytes(raw) {
        Ok(r) => r,
        Err(e) => {
            let _ = reply.send(error(
                CallError::BadCall,
                format!("invalid hire request: {e}"),
            ));
            return;
        }
    };
    let now = now_ms();
    let request_id = request.id();
    let (offer, superseded) = match lookup(&hires.ctx.offers, &request.body().manifest_id) {
        OfferLookup::Current(o) => (Some(*o), None),
        OfferLookup::Superseded(current) => (None, Some(current)),
        OfferLookup::Unknown => (None, None),
    };
    let (in_use, reserved) = match &offer {
        None => (0, false),
        Some(o) => {
            let m = o.manifest.body();
            let in_use = hires.slots_in_use(&m.name, now);
            let free = in_use < m.limits.max_concurrency;
            if free && hires.reservations.reserve(request_id, &m.name, peer, now) {
                (in_use, true)
            } else {
                // No slot for this peer: the policy sees the agent full.
                (in_use.max(m.limits.max_concurrency), false)
            }
        }
    };
    let ctx = hires.ctx.clone();
    let manifest_id = offer.as_ref().map(|o| o.manifest.id());
    hires.spawn(async move {
        let (answer, outcome) = answer_request(&ctx.key, request, offer, superseded, in_use, now);
        // An offer that holds a slot: a prepared sandbox starts its program now, before the
        // offer leaves (so that an acceptance finds it), and its interpreter boots while the
        // client accepts. It gets no hire data until the contract is stored; if no acceptance
        // comes while the slot is reserved, it is stopped. Bounded like the reservations: one
        // per offer that holds a slot (a request sent again gets none), and a peer that lets
        // offers lapse gets no more of them (`capacity.rs`). Never a warm process: the offer
        // may not be accepted.
        if reserved
            && outcome == Answered::Proposed
            && let Some(manifest) = manifest_id
            && !ctx.warm.is_parked(&request_id)
            && let Some(slot) = start_ahead(&ctx, &manifest, request_id, true).await
        {
            let until = Instant::now() + Duration::from_millis(RESERVATION_MS);
            ctx.warm.park(request_id, manifest, slot, until);
        }
        let _ = reply.send(answer);
        match outcome {
            Answered::Proposed => ctx.metrics.hires_offered.inc(),
            Answered::Declined(DeclineReason::Capacity) => {
                ctx.metrics.hires_declined_capacity.inc()
            }
            Answered::Declined(_) | Answered::Invalid => {}
        }
        if reserved && !matches!(outcome, Answered::Proposed) {
            let _ = ctx.inbox.send(Msg::Done(Done::Unreserve(request_id))).await;
        }
    });
}

/// What [`answer_request`] answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answered {
    /// An offer or a counter.
    Proposed,
    /// A signed decline.
    Declined(DeclineReason),
    /// An error (the request is invalid).
    Invalid,
}

/// The provider's signed answer to a request (pure but for the signature checks).
fn answer_request(
    key: &souk_protocol::Keypair,
    request: Signed<HireRequest>,
    offer: Option<Offerable>,
    superseded: Option<Hash>,
    running: u32,
    now: u64,
) -> (HireReply, Answered) {
    if let Err(e) = request.verify_named() {
        return (
            error(CallError::BadCall, format!("invalid hire request: {e}")),
            Answered::Invalid,
        );
    }
    let req = request.body();
    let signed = |body: Decline| {
        let reason = body.reason;
        let reply = HireReply::Decline(Signed::sign(body, key).to_bytes());
        (reply, Answered::Declined(reason))
    };
    let decline = |reason, message: String| {
        signed(Decline::new(request.id(), key.id(), reason, message, now))
    };
    let Some(offer) = offer.filter(|o| o.manifest.body().expires_at > now) else {
        if let Some(current) = superseded {
            return signed(Decline::superseded(
                request.id(),
                key.id(),
                current,
                format!(
                    "the agent of manifest {} has changed since; hire its current manifest {}",
                    req.manifest_id.short(),
                    current.short()
                ),
                now,
            ));
        }
        return decline(
            DeclineReason::UnknownManifest,
            format!(
                "manifest {} is not offered by this node (search again)",
                req.manifest_id.short()
            ),
        );
    };
    let m = offer.manifest.body();
    match policy::answer(m, req, now, running) {
        policy::Answer::Offer(terms) => (
            HireReply::Offer(
                Signed::sign(
                    Offer {
                        request_id: request.id(),
                        provider: key.id(),
                        terms,
                        valid_until: now + PROPOSAL_TTL_MS,
                        created_at: now,
                    },
                    key,
                )
                .to_bytes(),
            ),
            Answered::Proposed,
        ),
        policy::Answer::Counter(terms, reason) => (
            HireReply::Counter(
                Signed::sign(
                    Counter {
                        request_id: request.id(),
                        provider: key.id(),
                        terms,
                        valid_until: now + PROPOSAL_TTL_MS,
                        reason,
                        created_at: now,
                    },
                    key,
                )
                .to_bytes(),
            ),
            Answered::Proposed,
        ),
        policy::Answer::Decline(reason, message) => decline(reason, message),
    }
}

/// `accept`: check the contract, take its offer's slot, store everything before replying.
fn on_accept(
    hires: &mut Hires,
    peer: PeerId,
    raw: &[u8],
    input: Vec<u8>,
    salt: [u8; 32],
    grants: Vec<Vec<u8>>,
    reply: Responder,
) {
    let contract = match Contract::decode_bytes(raw) {
        Ok(c) => c,
        Err(e) => {
            let _ = reply.send(error(
                CallError::BadCall,
                format!("malformed contract: {e}"),
            ));
            return;
        }
    };
    let id = contract.hire_id();
    // Idempotent: a redelivered acceptance of a stored (or being stored) contract.
    if hires.get(&id).is_some() {
        let _ = reply.send(HireReply::Accepted { hire_id: id });
        return;
    }
    if let Some((_, waiting)) = hires.accepting.get_mut(&id) {
        waiting.push(reply);
        return;
    }
    if contract.provider() != hires.ctx.key.id() {
        let _ = reply.send(error(
            CallError::InvalidContract,
            "the proposal in this contract is not ours",
        ));
        return;
    }
    let Some(offer) = offer(&hires.ctx.offers, &contract.request.body().manifest_id) else {
        let _ = reply.send(error(
            CallError::Unavailable,
            "the manifest is no longer offered",
        ));
        return;
    };
    let m = offer.manifest.body();
    // The slot the offer reserved becomes this contract's; without one (it lapsed, or the
    // node restarted since the offer) the contract needs a free slot.
    let reserved = hires.reservations.take(&contract.request.id(), &peer);
    if !reserved && hires.slots_in_use(&m.name, now_ms()) >= m.limits.max_concurrency {
        hires.ctx.metrics.hire_calls_busy.inc();
        let _ = reply.send(busy(&format!(
            "all {} slots of {} are taken; request again later",
            m.limits.max_concurrency, m.name
        )));
        return;
    }
    hires.accepting.insert(id, (m.name.clone(), vec![reply]));
    let ctx = hires.ctx.clone();
    hires.spawn(async move {
        // The package check the job needs runs while the contract is checked and stored.
        let (manifest, run) = (offer.manifest.clone(), offer.run.clone());
        let accepted = async {
            let request_id = contract.request.id();
            let checked = check_contract(contract, offer, input, salt, grants).await?;
            // A valid contract: the sandbox whose program started with the offer, or else a
            // sandbox made ahead, its program started now, so that its interpreter boots
            // while the contract is stored. It gets the hire (its `start` line) from the job,
            // once the contract is durable.
            let ahead = match ctx.warm.claim(&request_id, id) {
                Some(slot) => Some(slot),
                None => start_ahead(&ctx, &manifest.id(), id, false).await,
            };
            match store_contract(&ctx, checked).await {
                Ok(stored) => Ok((stored, ahead)),
                Err(e) => {
                    if let Some(slot) = ahead {
                        ctx.warm.discard(slot);
                        ctx.warm.release(&id);
                    }
                    Err(e)
                }
            }
        };
        let (accepted, runnable) = tokio::join!(
            accepted,
            launch::check_runnable(&ctx, &run, manifest.body())
        );
        let result = accepted.map(|((record, input), ahead)| {
            let fresh = Fresh {
                manifest,
                run,
                input,
                runnable,
                ahead,
            };
            (record, Box::new(fresh))
        });
        let _ = ctx
            .inbox
            .send(Msg::Done(Done::AcceptStored { id, result }))
            .await;
    });
}

/// A sandbox made ahead of any hire of manifest `manifest`, taken for `hire` (a hire id, a
/// warm process first; or, `for_offer`, the request id of an offer, a prepared sandbox only),
/// with its program started. `None` if there is none ready, or it could not start (it is
/// discarded; the job then starts the agent cold).
async fn start_ahead(ctx: &Ctx, manifest: &Hash, hire: Hash, for_offer: bool) -> Option<WarmSlot> {
    let mut slot = if for_offer {
        ctx.warm.take_prepared(manifest, hire)?
    } else {
        ctx.warm.take(manifest, hire)?
    };
    if let Err(e) = slot.launched.ignite().await {
        tracing::warn!(hire = %hire.short(), "cannot start a prepared sandbox ({e}); starting cold");
        ctx.warm.discard(slot);
        ctx.warm.release(&hire);
        return None;
    }
    Some(slot)
}

/// A contract that passed [`check_contract`], ready to store.
struct Checked {
    record: HireRecord,
    input: Value,
    blobs: Vec<(&'static str, Vec<u8>)>,
}

/// Checks an accepted contract and its credential grants against our offer (spec/hiring.md,
/// "Accept", checks 1-10; spec/credentials.md, "Checks on accept").
async fn check_contract(
    contract: Contract,
    offer: Offerable,
    input: Vec<u8>,
    salt: [u8; 32],
    grants: Vec<Vec<u8>>,
) -> Result<Checked, (CallError, String)> {
    let now = now_ms();
    let checked = tokio::task::spawn_blocking(move || {
        contract
            .verify(&offer.manifest)
            .map_err(|v| (CallError::InvalidContract, v.to_string()))?;
        let req = contract.request.body();
        if now > contract.proposal.valid_until() {
            return Err((
                CallError::Unavailable,
                "the proposal lapsed; request again".into(),
            ));
        }
        if input.len() as u64 != req.input_size || commit(&salt, &input) != req.input_commitment {
            return Err((
                CallError::BadCall,
                "the input does not match the request's commitment".into(),
            ));
        }
        // Read as the answer is (hiring.md accept check 8): UTF-8 checked inside strings, no
        // lone surrogate, no number out of range, nesting of at most 127 levels.
        let Ok(value) = serde_json::from_slice::<Value>(&input) else {
            return Err((CallError::BadCall, "the job input must be JSON".into()));
        };
        crate::schema::check_input_bytes(&offer.manifest.body().input_schema, &input)
            .map_err(|e| (CallError::BadCall, e.to_string()))?;
        check_grants(&grants, &contract, offer.manifest.body(), now)
            .map_err(|e| (CallError::BadCall, format!("credential grant refused: {e}")))?;
        let record = HireRecord::new(Role::Provider, &contract, &offer.manifest, now);
        let mut blobs = vec![
            (BLOB_MANIFEST, offer.manifest.to_bytes()),
            (BLOB_CONTRACT, contract.to_bytes()),
            (BLOB_INPUT, input),
            (BLOB_SALT, salt.to_vec()),
        ];
        if !grants.is_empty() {
            // Kept as received: each secret stays sealed to our key until a proxied call.
            blobs.push((
                credentials::BLOB_GRANTS,
                credentials::encode_grants(&grants),
            ));
        }
        Ok(Checked {
            record,
            input: value,
            blobs,
        })
    })
    .await;
    match checked {
        Ok(r) => r,
        Err(_) => Err((CallError::Internal, "the node is stopping".into())),
    }
}

/// Stores a checked contract (one disk sync).
async fn store_contract(
    ctx: &Ctx,
    checked: Checked,
) -> Result<(HireRecord, Value), (CallError, String)> {
    let store = ctx.store.clone();
    let stored = tokio::task::spawn_blocking(move || {
        let Checked {
            record,
            input,
            blobs,
        } = checked;
        let id = record.hire_id;
        let blobs: Vec<(&str, &[u8])> = blobs.iter().map(|(n, b)| (*n, b.as_slice())).collect();
        store
            .put_hire_with_blobs(&id, &record.to_bytes(), &blobs)
            .map_err(|e| {
                tracing::error!(hire = %id.short(), "cannot store the contract: {e}");
                (CallError::Internal, "cannot store the contract".into())
            })?;
        Ok((record, input))
    })
    .await;
    match stored {
        Ok(r) => r,
        Err(_) => Err((CallError::Internal, "the node is stopping".into())),
    }
}

/// The end of an `accept`: answer everyone who sent it and start the job.
pub(super) fn accept_stored(
    hires: &mut Hires,
    id: Hash,
    result: Result<(HireRecord, Box<Fresh>), (CallError, String)>,
) {
    let waiting = hires
        .accepting
        .remove(&id)
        .map(|(_, w)| w)
        .unwrap_or_default();
    let reply = match result {
        Ok((record, fresh)) => {
            tracing::info!(hire = %id.short(), agent = %record.agent, "contract stored; starting the agent");
            hires.update(record);
            hires.start_job_with(id, Some(*fresh));
            HireReply::Accepted { hire_id: id }
        }
        Err((code, message)) => error(code, message),
    };
    for r in waiting {
        let _ = r.send(reply.clone());
    }
}

/// `answer`: hand it to the job, reply once the job made it durable.
fn on_answer(hires: &mut Hires, peer: &PeerId, id: Hash, answer: Vec<u8>, reply: Responder) {
    let r = match hires.authorize(peer, &id) {
        Ok(r) => r,
        Err(e) => {
            let _ = reply.send(e);
            return;
        }
    };
    if r.state != HireState::InputRequired {
        let _ = reply.send(error(CallError::WrongState, "the agent asked no question"));
        return;
    }
    let Some(job) = hires.job(&id) else {
        let _ = reply.send(busy("the job is not running; retry shortly"));
        return;
    };
    hires.spawn(async move {
        let answer = match check_answer(answer).await {
            Err(refusal) => refusal,
            Ok(answer) => {
                let (done, kept) = oneshot::channel();
                if job.send(JobControl::Answer { answer, done }).await.is_err() {
                    busy("the job is not running; retry shortly")
                } else {
                    match kept.await {
                        Ok(Ok(())) => HireReply::Ok,
                        Ok(Err(HireError::WrongState { .. })) => {
                            error(CallError::WrongState, "the agent asked no question")
                        }
                        Ok(Err(_)) | Err(_) => busy("the job stopped; retry shortly"),
                    }
                }
            }
        };
        let _ = reply.send(answer);
    });
}

/// An answer must be JSON whose recorded payload fits a disclosure.
async fn check_answer(answer: Vec<u8>) -> Result<Vec<u8>, HireReply> {
    tokio::task::spawn_blocking(move || {
        let value: Value = serde_json::from_slice(&answer)
            .map_err(|_| error(CallError::BadCall, "an answer must be JSON"))?;
        if souk_runtime::answer_payload_bytes(&value).len() > MAX_DISCLOSURE_LEN {
            return Err(error(
                CallError::BadCall,
                "the answer is too large to be recorded",
            ));
        }
        Ok(answer)
    })
    .await
    .unwrap_or_else(|_| Err(busy("the node is stopping")))
}

/// `settle`: check the client's attestation against our chain and record the verdict.
fn on_settle(hires: &mut Hires, peer: &PeerId, raw: Vec<u8>, reply: Responder) {
    let att = match Signed::<Attestation>::decode_bytes(&raw) {
        Ok(a) => a,
        Err(e) => {
            let _ = reply.send(error(CallError::BadCall, e.to_string()));
            return;
        }
    };
    let id = att.body().hire_id;
    let record = match hires.authorize(peer, &id) {
        Ok(r) => r.clone(),
        Err(e) => {
            let _ = reply.send(e);
            return;
        }
    };
    if !hires.settling.insert(id) {
        let _ = reply.send(busy("a settlement of this hire is being recorded"));
        return;
    }
    let ctx = hires.ctx.clone();
    hires.spawn(async move {
        let (answer, done) = record_settlement(&ctx.store, record, raw).await;
        let _ = reply.send(answer);
        let _ = ctx.inbox.send(Msg::Done(done)).await;
    });
}

/// Checks and stores the client's attestation (spec/hiring.md, "Settle").
async fn record_settlement(
    store: &Arc<Store>,
    mut record: HireRecord,
    raw: Vec<u8>,
) -> (HireReply, Done) {
    let id = record.hire_id;
    let store = store.clone();
    let outcome = blocking(move || {
        if record.verdict.is_some() {
            // Settled once; a redelivery of the same attestation is fine, a second verdict
            // is not.
            let same = store.get_hire_blob(&id, BLOB_ATTESTATION)?.as_deref() == Some(&raw[..]);
            return Ok(if same {
                (HireReply::Ok, None)
            } else {
                (
                    error(CallError::WrongState, "this hire is already settled"),
                    None,
                )
            });
        }
        let chain = verified_chain(&store, &id)?;
        let verdict = match check_attestation(&raw, &chain) {
            Ok(v) => v,
            Err(v) => {
                return Ok((
                    error(CallError::BadCall, format!("attestation rejected: {v}")),
                    None,
                ));
            }
        };
        record.state = chain.state();
        if let Err(e) = record.settle(verdict, now_ms()) {
            return Ok((error(CallError::WrongState, e.to_string()), None));
        }
        store.put_hire_with_blobs(&id, &record.to_bytes(), &[(BLOB_ATTESTATION, &raw)])?;
        Ok((HireReply::Ok, Some((verdict, record))))
    })
    .await;
    match outcome {
        Ok((answer, Some((verdict, record)))) => (
            answer,
            Done::SettledByClient {
                id,
                verdict,
                record: Box::new(record),
            },
        ),
        Ok((answer, None)) => (answer, Done::SettleFinished(id)),
        Err(e) => {
            tracing::error!(hire = %id.short(), "cannot record the settlement: {e}");
            (
                error(CallError::Internal, "cannot record the settlement"),
                Done::SettleFinished(id),
            )
        }
    }
}
