//! The client's settlement of a finished hire: countersign the head of the verified chain
//! with a verdict (the attestation), store it, then deliver it to the provider until it
//! arrives. The provider's side of settling is in `serve.rs`.

use souk_protocol::hire::Verdict;
use souk_protocol::hiring::{HireCall, HireReply};
use souk_protocol::receipt::{Attestation, MAX_ENTRY_TEXT};
use souk_protocol::signed::Signed;

use super::ctx::{Ctx, blocking, peer_of};
use super::error::HireError;
use super::export::{blob, verified_chain};
use super::record::{BLOB_ATTESTATION, HireRecord};
use crate::now_ms;

/// Checks that `record` (a client hire the actor says may be settled) has ended according to
/// its verified stored chain, signs the attestation and stores it with the verdict. Returns
/// the stored record (settlement still to be delivered).
pub(crate) async fn settle(
    ctx: Ctx,
    mut record: HireRecord,
    verdict: Verdict,
    reason: String,
) -> Result<HireRecord, HireError> {
    if reason.len() > MAX_ENTRY_TEXT {
        return Err(HireError::Invalid(format!(
            "the reason is longer than {MAX_ENTRY_TEXT} bytes"
        )));
    }
    let id = record.hire_id;
    let store = ctx.store.clone();
    let chain = blocking(move || verified_chain(&store, &id)).await?;
    let head = chain.head().ok_or(HireError::WrongState {
        id,
        state: chain.state(),
        needs: "the chain is empty: there is nothing to settle",
    })?;
    // The record follows the chain; settling goes by the chain itself.
    record.state = chain.state();
    record
        .settle(verdict, now_ms())
        .map_err(|source| HireError::Settle { id, source })?;
    let att = Signed::sign(
        Attestation {
            hire_id: id,
            head_seq: head.body().seq,
            head_id: head.id(),
            verdict,
            reason,
            created_at: now_ms(),
        },
        &ctx.key,
    );
    record.settle_pending = true;
    let store = ctx.store.clone();
    let rec = record.to_bytes();
    let bytes = att.to_bytes();
    blocking(move || Ok(store.put_hire_with_blobs(&id, &rec, &[(BLOB_ATTESTATION, &bytes)])?))
        .await?;
    Ok(record)
}

/// Publishes the outcome record of `record`'s hire and sends the stored attestation to its
/// provider; on success, clears `settle_pending` in the store and returns the updated
/// record. `None`: not delivered (the
/// provider is unreachable or refused; the actor tries again later).
pub(crate) async fn deliver(ctx: Ctx, record: HireRecord) -> Option<HireRecord> {
    let id = record.hire_id;
    // The outcome record goes to the node first (it keeps it and gossips it until a peer
    // has it): settlement is done only once both the provider and the network have it.
    match super::outcome::publish(&ctx, id).await {
        Ok(()) => {}
        Err(HireError::Stopped) => return None,
        // A record the node refuses will not become valid by retrying: the provider still
        // gets its attestation.
        Err(e) => tracing::error!(hire = %id.short(), "outcome record not published: {e}"),
    }
    let store = ctx.store.clone();
    let att = match blocking(move || blob(&store, &id, BLOB_ATTESTATION)).await {
        Ok(a) => a,
        Err(e) => {
            tracing::error!(hire = %id.short(), "cannot read the attestation to deliver: {e}");
            return None;
        }
    };
    match ctx
        .net
        .call(
            peer_of(&record.provider),
            HireCall::Settle { attestation: att },
        )
        .await
    {
        Ok(HireReply::Ok) => {}
        Ok(HireReply::Error { code, message }) => {
            tracing::warn!(hire = %id.short(), "the provider refused the attestation ({code}): {message}");
            return None;
        }
        Ok(other) => {
            tracing::warn!(hire = %id.short(), "unexpected reply to the attestation: {other:?}");
            return None;
        }
        Err(e) => {
            tracing::debug!(hire = %id.short(), "attestation not delivered yet: {e}");
            return None;
        }
    }
    let store = ctx.store.clone();
    let updated = blocking(move || {
        let mut r = match store.get_hire(&id)? {
            Some(b) => HireRecord::from_bytes(&b)?,
            None => return Err(HireError::NotFound(id)),
        };
        r.settle_pending = false;
        store.put_hire(&id, &r.to_bytes())?;
        Ok(r)
    })
    .await;
    match updated {
        Ok(r) => Some(r),
        Err(e) => {
            // Delivered, but not recorded: the next attempt delivers it again (idempotent).
            tracing::warn!(hire = %id.short(), "attestation delivered but not recorded: {e}");
            None
        }
    }
}
