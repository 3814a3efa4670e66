//! The local API's operations on hires, as the hire actor handles them: create (negotiate),
//! list, show, follow receipts, answer, cancel, settle, export, output. Checks that need only
//! the actor's state are made at once; everything that waits on the network or the disk runs
//! in a tracked task that answers the caller.

use std::time::Duration;

use souk_protocol::Hash;
use souk_protocol::hire::{HireState, Verdict};
use souk_protocol::hiring::{HireCall, HireReply};
use souk_protocol::receipt::{Canceler, MAX_DISCLOSURE_LEN};

use super::ctx::{Ctx, blocking, peer_of};
use super::error::HireError;
use super::export;
use super::msg::{ApiOp, Done, JobControl, Msg, Reply};
use super::negotiate::negotiate;
use super::record::{BLOB_EQUIVOCATION, Closed, ClosedReason, HireRecord, Role};
use super::state::{Hires, Waiter};
use super::transport::TransportError;

/// Longest a receipts long-poll of the API waits.
const MAX_API_WAIT: Duration = Duration::from_secs(60);

/// Handles one API operation.
pub(super) fn on_api(hires: &mut Hires, op: ApiOp) {
    match op {
        ApiOp::Create(new, reply) => {
            let ctx = hires.ctx.clone();
            hires.spawn(async move {
                let _ = reply.send(negotiate(ctx, new).await);
            });
        }
        ApiOp::List(reply) => {
            let mut v: Vec<HireRecord> = hires.all().cloned().collect();
            v.sort_by_key(|r| std::cmp::Reverse(r.created_at));
            let _ = reply.send(v);
        }
        ApiOp::Get(id, reply) => {
            let _ = reply.send(hires.get(&id).cloned());
        }
        ApiOp::Receipts {
            id,
            from,
            wait_ms,
            reply,
        } => {
            if hires.get(&id).is_none() {
                let _ = reply.send(Err(HireError::NotFound(id)));
                return;
            }
            let wait = Duration::from_millis(wait_ms).min(MAX_API_WAIT);
            hires.poll_receipts(id, from, wait, Waiter::Api(reply));
        }
        ApiOp::Answer(id, answer, reply) => {
            let record = match client_hire(hires, &id, "the client answers its agent's questions") {
                Ok(r) => r,
                Err(e) => {
                    let _ = reply.send(Err(e));
                    return;
                }
            };
            if record.state != HireState::InputRequired {
                let _ = reply.send(Err(HireError::WrongState {
                    id,
                    state: record.state,
                    needs: "the agent has no open question",
                }));
                return;
            }
            let ctx = hires.ctx.clone();
            let question = record.question.clone();
            hires.spawn(async move {
                let sent = async {
                    let bytes = tokio::task::spawn_blocking(move || {
                        crate::schema::check_answer(question.as_ref(), &answer)?;
                        if souk_runtime::answer_payload_bytes(&answer).len() > MAX_DISCLOSURE_LEN {
                            return Err(HireError::Invalid(format!(
                                "the answer is larger than {MAX_DISCLOSURE_LEN} bytes once recorded"
                            )));
                        }
                        serde_json::to_vec(&answer)
                            .map_err(|e| HireError::Invalid(format!("the answer is not JSON: {e}")))
                    })
                    .await??;
                    call_provider(
                        &ctx,
                        &record,
                        HireCall::Answer {
                            hire_id: id,
                            answer: bytes,
                        },
                    )
                    .await
                };
                let _ = reply.send(sent.await);
            });
        }
        ApiOp::Cancel(id, reason, reply) => cancel(hires, id, reason, reply),
        ApiOp::Settle(id, verdict, reason, reply) => settle(hires, id, verdict, reason, reply),
        ApiOp::Bundle(id, disclose, reply) => {
            if hires.get(&id).is_none() {
                let _ = reply.send(Err(HireError::NotFound(id)));
                return;
            }
            let store = hires.ctx.store.clone();
            hires.spawn(async move {
                let _ = reply.send(blocking(move || export::bundle(&store, &id, disclose)).await);
            });
        }
        ApiOp::Equivocated {
            provider,
            proof,
            reply,
        } => {
            // Every unfinished client hire with this provider ends: nothing it signs can be
            // trusted, whichever hire the proof came from.
            let open: Vec<HireRecord> = hires
                .all()
                .filter(|r| {
                    r.role == Role::Client
                        && r.provider == provider
                        && r.closed.is_none()
                        && !r.state.is_terminal()
                })
                .cloned()
                .collect();
            let now = crate::now_ms();
            let ids: Vec<Hash> = open.iter().map(|r| r.hire_id).collect();
            for mut record in open {
                // Closed in memory at once (no later operation sees it open), then on disk.
                record.closed = Some(Closed {
                    reason: ClosedReason::ProviderEquivocated,
                    at: now,
                });
                record.error = Some(EQUIVOCATED.into());
                record.updated_at = now;
                hires.update(record);
            }
            let ctx = hires.ctx.clone();
            hires.spawn(async move {
                let mut ended = 0;
                for id in ids {
                    match close_equivocated(ctx.clone(), id, proof.clone(), now).await {
                        Ok(()) => ended += 1,
                        Err(e) => {
                            let _ = reply.send(Err(e));
                            return;
                        }
                    }
                }
                let _ = reply.send(Ok(ended));
            });
        }
        ApiOp::Workdir(id, reply) => {
            let answer = match hires.get(&id) {
                None => Err(HireError::NotFound(id)),
                Some(r) if r.role != Role::Provider => Err(HireError::WrongRole {
                    id,
                    role: r.role,
                    needs: "the working directory is on the provider's node",
                }),
                Some(_) => {
                    let path = hires.workdir(&id);
                    hires.spawn(async move {
                        let view = tokio::task::spawn_blocking(move || super::view::WorkdirView {
                            exists: path.is_dir(),
                            path: path.display().to_string(),
                        })
                        .await
                        .map_err(HireError::from);
                        let _ = reply.send(view);
                    });
                    return;
                }
            };
            let _ = reply.send(answer);
        }
        ApiOp::Output(id, reply) => {
            if hires.get(&id).is_none() {
                let _ = reply.send(Err(HireError::NotFound(id)));
                return;
            }
            let store = hires.ctx.store.clone();
            hires.spawn(async move {
                let _ = reply.send(blocking(move || export::output(&store, &id)).await);
            });
        }
    }
}

/// The record of `id` if this node is its client.
fn client_hire(hires: &Hires, id: &Hash, needs: &'static str) -> Result<HireRecord, HireError> {
    let r = hires.get(id).ok_or(HireError::NotFound(*id))?;
    if r.role != Role::Client {
        return Err(HireError::WrongRole {
            id: *id,
            role: r.role,
            needs,
        });
    }
    Ok(r.clone())
}

/// Sends `call` to the provider of `record`; `ok` is the only success.
async fn call_provider(ctx: &Ctx, record: &HireRecord, call: HireCall) -> Result<(), HireError> {
    match ctx.net.call(peer_of(&record.provider), call).await {
        Ok(HireReply::Ok) => Ok(()),
        Ok(HireReply::Error { code, message }) => Err(HireError::Refused { code, message }),
        Ok(other) => Err(HireError::Misbehaved(format!(
            "unexpected reply: {other:?}"
        ))),
        Err(TransportError::Stopped) => Err(HireError::Stopped),
        Err(TransportError::NoReply(reason)) => Err(HireError::Unreachable {
            provider: record.provider,
            reason,
        }),
    }
}

fn cancel(hires: &mut Hires, id: Hash, reason: String, reply: Reply<Result<(), HireError>>) {
    let Some(record) = hires.get(&id).cloned() else {
        let _ = reply.send(Err(HireError::NotFound(id)));
        return;
    };
    if record.state.is_terminal() {
        let _ = reply.send(Err(HireError::WrongState {
            id,
            state: record.state,
            needs: "only a hire that has not ended can be canceled",
        }));
        return;
    }
    let reason = if reason.trim().is_empty() {
        format!("canceled by the {}", record.role)
    } else {
        souk_runtime::truncate_entry_text(&reason)
    };
    match record.role {
        // The provider stops its own job.
        Role::Provider => {
            let Some(job) = hires.job(&id) else {
                let _ = reply.send(Err(HireError::InProgress {
                    id,
                    what: "starting or stopping the job",
                }));
                return;
            };
            hires.spawn(async move {
                let stop = JobControl::Cancel {
                    by: Canceler::Provider,
                    reason,
                };
                let sent = job.send(stop).await.map_err(|_| HireError::InProgress {
                    id,
                    what: "stopping the job",
                });
                let _ = reply.send(sent);
            });
        }
        Role::Client => {
            let ctx = hires.ctx.clone();
            hires.spawn(async move {
                let call = HireCall::Cancel {
                    hire_id: id,
                    reason,
                };
                let _ = reply.send(call_provider(&ctx, &record, call).await);
            });
        }
    }
}

fn settle(
    hires: &mut Hires,
    id: Hash,
    verdict: Verdict,
    reason: String,
    reply: Reply<Result<HireRecord, HireError>>,
) {
    let record = match client_hire(hires, &id, "only the client settles a hire") {
        Ok(r) => r,
        Err(e) => {
            let _ = reply.send(Err(e));
            return;
        }
    };
    // The protocol decides (ended, not settled yet); the task checks again against the
    // verified chain itself.
    if let Err(source) = record.status().settle(verdict) {
        let _ = reply.send(Err(HireError::Settle { id, source }));
        return;
    }
    // Accepting work that did not complete would countersign it as delivered (the protocol
    // allows it; this node's policy refuses it).
    if verdict == Verdict::Accepted && record.state != HireState::Completed {
        let _ = reply.send(Err(HireError::WrongState {
            id,
            state: record.state,
            needs: "only a completed hire can be accepted; dispute it with reject",
        }));
        return;
    }
    if !hires.settling.insert(id) {
        let _ = reply.send(Err(HireError::InProgress {
            id,
            what: "a settlement",
        }));
        return;
    }
    let ctx = hires.ctx.clone();
    hires.spawn(async move {
        let result = super::settle::settle(ctx.clone(), record, verdict, reason).await;
        let _ = ctx
            .inbox
            .send(Msg::Done(Done::Settled { id, result, reply }))
            .await;
    });
}

/// Why a hire whose provider equivocated ended.
const EQUIVOCATED: &str = "the provider equivocated: a verified proof that it signed two \
                           different entries reached this node; nothing it signs for this \
                           hire can be trusted";

/// Records on disk that a client hire ended because its provider equivocated (learned from
/// the network): keeps the proof with the hire (unless it caught one itself) and changes only
/// `closed`, `error` and `updated_at` of the stored record, so a follower's or a settlement's
/// concurrent write is not rolled back.
async fn close_equivocated(ctx: Ctx, id: Hash, proof: Vec<u8>, now: u64) -> Result<(), HireError> {
    let store = ctx.store.clone();
    blocking(move || {
        if store.get_hire_blob(&id, BLOB_EQUIVOCATION)?.is_none() {
            store.put_hire_blob(&id, BLOB_EQUIVOCATION, &proof)?;
        }
        let Some(bytes) = store.get_hire(&id)? else {
            return Err(HireError::NotFound(id));
        };
        let mut r = HireRecord::from_bytes(&bytes)?;
        r.closed = Some(Closed {
            reason: ClosedReason::ProviderEquivocated,
            at: now,
        });
        r.error = Some(EQUIVOCATED.into());
        r.updated_at = now;
        store.put_hire(&id, &r.to_bytes())?;
        Ok(())
    })
    .await?;
    tracing::warn!(hire = %id.short(), "hire ended: its provider equivocated");
    Ok(())
}
