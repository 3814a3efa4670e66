//! The client side of negotiation, as one task per new hire: request -> offer | counter |
//! decline -> accept, with the contract stored durably before the acceptance is sent. Where
//! a client forms a contract.
//!
//! A provider at capacity answers a signed `capacity` decline (or `busy` to an acceptance);
//! with [`NewHire::retry_busy_ms`] the client asks again, with a fresh request and jittered
//! exponential backoff, until that much time has passed. A contract the provider refuses is
//! deleted again: a hire that never got a contract is not a hire.

use std::time::Duration;

use tokio::time::Instant;

use souk_protocol::Hash;
use souk_protocol::hire::HireState;
use souk_protocol::hiring::{HireCall, HireReply};
use souk_protocol::negotiation::{
    Accept, Contract, Counter, Decline, HireRequest, Offer, Price, Proposal,
};
use souk_protocol::receipt::commit;
use souk_protocol::signed::Signed;

use super::credentials;
use super::ctx::{Ctx, blocking, peer_of};
use super::error::HireError;
use super::msg::{Done, FollowUpdate, Msg};
use super::policy;
use super::record::{BLOB_CONTRACT, BLOB_INPUT, BLOB_MANIFEST, BLOB_SALT, HireRecord, Role};
use super::transport::{BoxFuture, TransportError};
use super::view::NewHire;
use crate::now_ms;

/// How often an acceptance that got no reply is sent.
const ACCEPT_ATTEMPTS: u32 = 3;
/// First wait before asking a busy provider again.
const BUSY_BACKOFF_MIN: Duration = Duration::from_millis(200);
/// Longest wait between two asks of a busy provider.
const BUSY_BACKOFF_MAX: Duration = Duration::from_secs(10);

/// Negotiates `new` and, if the terms are acceptable, forms and stores the contract, delivers
/// the acceptance, and hands the hire to the actor to follow. While the provider says it is
/// at capacity, asks again for up to `new.retry_busy_ms`.
pub(crate) async fn negotiate(ctx: Ctx, new: NewHire) -> Result<HireRecord, HireError> {
    let manifest_id = Hash::from_hex(&new.manifest_id)
        .ok_or_else(|| HireError::Invalid("a manifest id is 64 hex digits".into()))?;
    let Some(manifest) = ctx
        .net
        .lookup_manifest(manifest_id)
        .await
        .map_err(|_| HireError::Stopped)?
    else {
        // A saved id of an agent that has changed since: the client's catalog already holds
        // the new version, so say so with its id rather than "unknown" (the provider would
        // decline `superseded` the same way).
        return Err(
            match ctx
                .net
                .successor(manifest_id)
                .await
                .map_err(|_| HireError::Stopped)?
            {
                Some(current) => HireError::Declined {
                    reason: souk_protocol::negotiation::DeclineReason::Superseded,
                    message: format!(
                        "the agent of manifest {} has changed since (known to this node); hire \
                         its current manifest {}",
                        manifest_id.short(),
                        current.short()
                    ),
                    current: Some(current),
                },
                None => HireError::UnknownManifest(manifest_id),
            },
        );
    };
    // Nothing a provider with a verified equivocation proof against it signs can be trusted.
    let provider = manifest.body().provider;
    if ctx
        .net
        .is_flagged(provider)
        .await
        .map_err(|_| HireError::Stopped)?
    {
        return Err(HireError::Flagged(provider));
    }
    // The input must match the agent's input schema before anything is asked of the provider.
    let schema = manifest.body().input_schema.clone();
    let input = new.input.clone();
    blocking(move || Ok(crate::schema::check_input(&schema, &input)?)).await?;
    let give_up = new
        .retry_busy_ms
        .map(|ms| Instant::now() + Duration::from_millis(ms));
    let mut backoff = BUSY_BACKOFF_MIN;
    // A light node asks a full peer about the provider while its first request travels: the
    // answer is in before anything is accepted, without a round trip of its own.
    let mut check = Some(ctx.net.check_provider(provider));
    loop {
        let err = match attempt(&ctx, &new, &manifest, &mut check).await {
            Err(e) if e.is_busy() => e,
            done => return done,
        };
        let left = give_up.map_or(Duration::ZERO, |t| {
            t.saturating_duration_since(Instant::now())
        });
        if left.is_zero() {
            return Err(err);
        }
        let wait = jitter(backoff).min(left);
        tracing::debug!(manifest = %manifest_id.short(), "provider busy; asking again in {wait:?}");
        tokio::time::sleep(wait).await;
        backoff = (backoff * 2).min(BUSY_BACKOFF_MAX);
    }
}

/// A wait drawn uniformly from `[d/2, d]`, so clients turned away together do not come back
/// together.
fn jitter(d: Duration) -> Duration {
    let mut b = [0u8; 8];
    let r = getrandom::fill(&mut b).map_or(u64::MAX, |()| u64::from_le_bytes(b));
    let half = d / 2;
    let extra = half.as_micros() as u64;
    half + Duration::from_micros(if extra == 0 { 0 } else { r % (extra + 1) })
}

/// One request -> proposal -> acceptance round. `check` (the network's answer about the
/// provider, on the first round) is awaited together with the request, before any proposal
/// is accepted.
async fn attempt(
    ctx: &Ctx,
    new: &NewHire,
    manifest: &Signed<souk_protocol::manifest::Manifest>,
    check: &mut Option<BoxFuture<Result<bool, TransportError>>>,
) -> Result<HireRecord, HireError> {
    let m = manifest.body();
    let manifest_id = manifest.id();
    let provider_id = m.provider;
    let provider = peer_of(&provider_id);
    let unreachable = |e: TransportError| match e {
        TransportError::Stopped => HireError::Stopped,
        TransportError::NoReply(reason) => HireError::Unreachable {
            provider: provider_id,
            reason,
        },
    };
    let input = serde_json::to_vec(&new.input)
        .map_err(|e| HireError::Invalid(format!("the input is not JSON: {e}")))?;
    let random = || {
        crate::data_dir::random_32().map_err(|e| HireError::corrupt(manifest_id, "randomness", e))
    };
    let salt = random()?;
    let nonce = random()?;
    let now = now_ms();
    let window = new.deadline_ms.unwrap_or(m.limits.max_duration_ms);
    // Default ceiling: what the manifest's own pricing charges for the requested window.
    let max_price = new.max_price.unwrap_or_else(|| policy::quote(m, window));
    let deadline = now.saturating_add(window);
    let mut n16 = [0u8; 16];
    n16.copy_from_slice(&nonce[..16]);
    let request = Signed::sign(
        HireRequest {
            manifest_id,
            client: ctx.key.id(),
            input_commitment: commit(&salt, &input),
            input_size: input.len() as u64,
            budget: Price {
                currency: m.pricing.currency.clone(),
                amount: max_price.min(m.pricing.per_hire),
            },
            deadline,
            nonce: n16,
            created_at: now,
        },
        &ctx.key,
    );
    let call = ctx.net.call(
        provider,
        HireCall::Request {
            request: request.to_bytes(),
        },
    );
    let reply = match check.take() {
        Some(check) => {
            let (flagged, reply) = tokio::join!(check, call);
            match flagged {
                Ok(true) => return Err(HireError::Flagged(provider_id)),
                Ok(false) | Err(TransportError::NoReply(_)) => {}
                Err(TransportError::Stopped) => return Err(HireError::Stopped),
            }
            reply
        }
        None => call.await,
    }
    .map_err(unreachable)?;
    let misbehaved = |e: &dyn std::fmt::Display| HireError::Misbehaved(e.to_string());
    let proposal = match reply {
        HireReply::Offer(b) => {
            let s = Signed::<Offer>::decode_bytes(&b).map_err(|e| misbehaved(&e))?;
            s.verify(&m.provider).map_err(|e| misbehaved(&e))?;
            Proposal::Offer(s)
        }
        HireReply::Counter(b) => {
            let s = Signed::<Counter>::decode_bytes(&b).map_err(|e| misbehaved(&e))?;
            s.verify(&m.provider).map_err(|e| misbehaved(&e))?;
            Proposal::Counter(s)
        }
        HireReply::Decline(b) => {
            let s = Signed::<Decline>::decode_bytes(&b).map_err(|e| misbehaved(&e))?;
            s.verify(&m.provider).map_err(|e| misbehaved(&e))?;
            return Err(HireError::Declined {
                reason: s.body().reason,
                message: s.body().message.clone(),
                current: s.body().current,
            });
        }
        HireReply::Error { code, message } => return Err(HireError::Refused { code, message }),
        other => {
            return Err(HireError::Misbehaved(format!(
                "unexpected reply: {other:?}"
            )));
        }
    };
    if proposal.request_id() != request.id() {
        return Err(HireError::Misbehaved(
            "the provider answered another request".into(),
        ));
    }
    policy::acceptable(proposal.terms(), &m.pricing.currency, max_price, deadline)?;
    let accept = Signed::sign(
        Accept {
            request_id: request.id(),
            proposal_id: proposal.id(),
            client: ctx.key.id(),
            created_at: now_ms(),
        },
        &ctx.key,
    );
    let contract = Contract {
        request,
        proposal,
        accept,
    };
    contract
        .verify(manifest)
        .map_err(|v| HireError::Misbehaved(format!("the provider's proposal is invalid: {v}")))?;
    let id = contract.hire_id();
    let granted = credentials::grant(
        &contract,
        m,
        &new.credentials,
        &ctx.key,
        &ctx.sealing,
        || {
            crate::data_dir::random_32()
                .map(|r| *r)
                .map_err(|e| HireError::corrupt(id, "randomness", e))
        },
    )?;
    let record = HireRecord::new(Role::Client, &contract, manifest, now_ms());
    // Stored before anything is sent: a crash now leaves a contract we can act on later.
    {
        let store = ctx.store.clone();
        let rec = record.to_bytes();
        let mb = manifest.to_bytes();
        let cb = contract.to_bytes();
        let input = input.clone();
        let salt = *salt;
        let grants = credentials::encode_grants(&granted.envelopes);
        let kept = granted.kept;
        let has_grants = !granted.envelopes.is_empty();
        blocking(move || {
            let mut blobs: Vec<(&str, &[u8])> = vec![
                (BLOB_MANIFEST, &mb),
                (BLOB_CONTRACT, &cb),
                (BLOB_INPUT, &input),
                (BLOB_SALT, &salt),
            ];
            if has_grants {
                blobs.push((credentials::BLOB_GRANTS, &grants));
            }
            blobs.extend(kept.iter().map(|(n, b)| (n.as_str(), b.as_slice())));
            Ok(store.put_hire_with_blobs(&id, &rec, &blobs)?)
        })
        .await?;
    }
    let call = HireCall::Accept {
        contract: contract.to_bytes(),
        input,
        salt: *salt,
        credentials: granted.envelopes,
    };
    let mut refused = None;
    for attempt in 0..ACCEPT_ATTEMPTS {
        match ctx.net.call(provider, call.clone()).await {
            Ok(HireReply::Accepted { hire_id }) if hire_id == id => {
                contracted(ctx, &record).await;
                return Ok(record);
            }
            Ok(HireReply::Error { code, message }) => {
                refused = Some(HireError::Refused { code, message });
                break;
            }
            Ok(other) => {
                refused = Some(HireError::Misbehaved(format!(
                    "unexpected reply to the acceptance: {other:?}"
                )));
                break;
            }
            Err(TransportError::Stopped) => return Err(HireError::Stopped),
            Err(e) => {
                tracing::debug!("accept not delivered (attempt {}): {e}", attempt + 1);
                tokio::time::sleep(Duration::from_millis(250 << attempt)).await;
            }
        }
    }
    match refused {
        // The provider may well have stored it: follow the hire; the follower re-sends the
        // acceptance if the provider turns out not to know it.
        None => {
            contracted(ctx, &record).await;
            Ok(record)
        }
        Some(why @ HireError::Refused { .. }) => {
            // The provider refused the contract: there is no hire. Forget what was stored
            // for it (the input, the kept credentials), so it is not listed as one.
            let store = ctx.store.clone();
            if let Err(e) = blocking(move || Ok(store.delete_hire(&id)?)).await {
                tracing::error!(hire = %id.short(), "cannot delete the refused contract: {e}");
            }
            Err(why)
        }
        Some(why) => {
            // The provider broke the protocol after the contract was formed (it may hold the
            // hire): keep the record, failed with the reason, as evidence; never follow it.
            let mut record = record;
            record.set_state(HireState::Failed, now_ms());
            record.error = Some(why.to_string());
            let store = ctx.store.clone();
            let rec = record.to_bytes();
            if let Err(e) = blocking(move || Ok(store.put_hire(&id, &rec)?)).await {
                tracing::error!(hire = %id.short(), "cannot record the failed contract: {e}");
            }
            let _ = ctx
                .inbox
                .send(Msg::Follow(FollowUpdate::Progress(Box::new(record))))
                .await;
            Err(why)
        }
    }
}

async fn contracted(ctx: &Ctx, record: &HireRecord) {
    let _ = ctx
        .inbox
        .send(Msg::Done(Done::Contracted(Box::new(record.clone()))))
        .await;
}
