//! The client side of negotiation, as one task per new hire: request -> offer | counter |
//! decline -> accept, with the contract stored durably before the acceptance is sent. Where
//! a client forms a contract.

use std::time::Duration;

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
use super::transport::TransportError;
use super::view::NewHire;
use crate::now_ms;

/// How often an acceptance that got no reply is sent.
const ACCEPT_ATTEMPTS: u32 = 3;

/// Negotiates `new` and, if the terms are acceptable, forms and stores the contract, delivers
/// the acceptance, and hands the hire to the actor to follow.
pub(crate) async fn negotiate(ctx: Ctx, new: NewHire) -> Result<HireRecord, HireError> {
    let manifest_id = Hash::from_hex(&new.manifest_id)
        .ok_or_else(|| HireError::Invalid("a manifest id is 64 hex digits".into()))?;
    let manifest = ctx
        .net
        .lookup_manifest(manifest_id)
        .await
        .map_err(|_| HireError::Stopped)?
        .ok_or(HireError::UnknownManifest(manifest_id))?;
    let m = manifest.body();
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
    let reply = ctx
        .net
        .call(
            provider,
            HireCall::Request {
                request: request.to_bytes(),
            },
        )
        .await
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
        .verify(&manifest)
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
    let mut record = HireRecord::new(Role::Client, &contract, &manifest, now_ms());
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
                contracted(&ctx, &record).await;
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
            contracted(&ctx, &record).await;
            Ok(record)
        }
        Some(why) => {
            // The provider refused: record why, so the hire does not look alive.
            record.set_state(HireState::Failed, now_ms());
            record.error = Some(why.to_string());
            let store = ctx.store.clone();
            let rec = record.to_bytes();
            if let Err(e) = blocking(move || Ok(store.put_hire(&id, &rec)?)).await {
                tracing::error!(hire = %id.short(), "cannot record the refused contract: {e}");
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
