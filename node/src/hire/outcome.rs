//! A settled hire's outcome record (spec/outcomes.md): built from what the hire stored (the
//! contract, the manifest's reference, the verified chain's head and the client's
//! attestation) and handed to the node, which keeps it and gossips it to every node. Both
//! sides publish it: the client when it delivers its attestation, the provider when it
//! receives it, so a record spreads whichever of them is online. The same bytes are one
//! record everywhere (its id is their hash), so publishing twice is harmless.
//!
//! Also hands the node an equivocation proof a client caught.

use souk_protocol::Hash;
use souk_protocol::outcome::OutcomeRecord;
use souk_protocol::receipt::Attestation;
use souk_protocol::signed::Signed;
use souk_store::Store;

use super::ctx::{Ctx, blocking};
use super::error::HireError;
use super::export::{blob, contract_and_manifest, verified_chain};
use super::record::{BLOB_ATTESTATION, BLOB_CONTRACT, BLOB_EQUIVOCATION};
use super::transport::{PublicRecord, TransportError};

/// The outcome record of settled hire `id`, from its stored parts. The record is checked
/// like any received one (spec/outcomes.md) before it is returned: a hire whose parts do
/// not make a valid record is a local fault, reported, never published.
pub(crate) fn build(store: &Store, id: &Hash) -> Result<Vec<u8>, HireError> {
    let (_, manifest) = contract_and_manifest(store, id)?;
    let contract = blob(store, id, BLOB_CONTRACT)?;
    let attestation = Signed::<Attestation>::decode_bytes(&blob(store, id, BLOB_ATTESTATION)?)
        .map_err(|e| HireError::corrupt(*id, BLOB_ATTESTATION, e))?;
    let chain = verified_chain(store, id)?;
    let head = chain
        .head()
        .ok_or_else(|| HireError::corrupt(*id, "receipts", "a settled hire has no entries"))?;
    let record = OutcomeRecord::build(manifest.body().reference(), &contract, head, &attestation);
    record
        .verify()
        .map_err(|v| HireError::corrupt(*id, "outcome", v))?;
    Ok(record.to_bytes())
}

/// Builds and publishes the outcome record of settled hire `id`.
pub(crate) async fn publish(ctx: &Ctx, id: Hash) -> Result<(), HireError> {
    let store = ctx.store.clone();
    let bytes = blocking(move || build(&store, &id)).await?;
    ctx.net
        .publish(PublicRecord::Outcome(bytes))
        .await
        .map_err(|e| match e {
            TransportError::Stopped => HireError::Stopped,
            TransportError::NoReply(why) => {
                HireError::corrupt(id, "outcome", format!("the node refused it: {why}"))
            }
        })
}

/// Publishes the equivocation proof stored for hire `id`.
pub(crate) async fn publish_proof(ctx: &Ctx, id: Hash) -> Result<(), HireError> {
    let store = ctx.store.clone();
    let bytes = blocking(move || blob(&store, &id, BLOB_EQUIVOCATION)).await?;
    ctx.net
        .publish(PublicRecord::Equivocation(bytes))
        .await
        .map_err(|e| match e {
            TransportError::Stopped => HireError::Stopped,
            TransportError::NoReply(why) => {
                HireError::corrupt(id, BLOB_EQUIVOCATION, format!("the node refused it: {why}"))
            }
        })
}
