//! The read side of a hire: its stored contract and manifest, its chain re-verified from the
//! store, receipts as the API shows them, its output, and the receipt bundle that
//! `souk verify` reads, and the receipts page a provider serves to its client. Every function
//! here but [`receipts_page`] is synchronous store work: callers run it through
//! [`super::ctx::blocking`].

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;
use souk_protocol::Hash;
use souk_protocol::bundle::Bundle;
use souk_protocol::hiring::{CallError, HireReply, MAX_FETCH_ENTRIES};
use souk_protocol::manifest::Manifest;
use souk_protocol::negotiation::Contract;
use souk_protocol::receipt::{Disclosure, EntryKind, SignedEntry};
use souk_protocol::signed::Signed;
use souk_protocol::verify::{ChainContext, ChainVerifier};
use souk_store::Store;

use super::ctx::blocking;
use super::error::HireError;
use super::record::{BLOB_ATTESTATION, BLOB_CONTRACT, BLOB_MANIFEST, BLOB_OUTPUT, HireRecord};
use super::view::{ReceiptsView, StepView, summarize};

/// Entries and disclosures of one `receipts` reply stay within this many bytes (at least one
/// entry always goes), well under the wire limit whatever the payloads weigh.
const REPLY_BUDGET: usize = 8 * 1024 * 1024;

/// Most steps in one API page.
pub(crate) const VIEW_PAGE: usize = 1024;

/// A blob that must exist.
pub(crate) fn blob(store: &Store, id: &Hash, name: &'static str) -> Result<Vec<u8>, HireError> {
    store
        .get_hire_blob(id, name)?
        .ok_or_else(|| HireError::corrupt(*id, name, "missing"))
}

/// The hire's contract and the manifest it hired.
pub(crate) fn contract_and_manifest(
    store: &Store,
    id: &Hash,
) -> Result<(Contract, Signed<Manifest>), HireError> {
    let contract = Contract::decode_bytes(&blob(store, id, BLOB_CONTRACT)?)
        .map_err(|e| HireError::corrupt(*id, BLOB_CONTRACT, e))?;
    let manifest = Signed::<Manifest>::decode_bytes(&blob(store, id, BLOB_MANIFEST)?)
        .map_err(|e| HireError::corrupt(*id, BLOB_MANIFEST, e))?;
    Ok((contract, manifest))
}

/// The stored chain, every entry verified again (the store is not trusted blindly).
pub(crate) fn verified_chain(store: &Store, id: &Hash) -> Result<ChainVerifier, HireError> {
    let (contract, manifest) = contract_and_manifest(store, id)?;
    let mut v = ChainVerifier::new(ChainContext::new(&contract, manifest.body()));
    let mut from = 0u64;
    loop {
        let page = store.receipts(id, from, VIEW_PAGE)?;
        if page.is_empty() {
            return Ok(v);
        }
        for (seq, raw) in &page {
            let e = SignedEntry::decode_bytes(raw)
                .map_err(|e| HireError::corrupt(*id, "receipt", format!("seq {seq}: {e}")))?;
            v.push(e).map_err(|e| {
                HireError::corrupt(*id, "receipt", format!("seq {seq} no longer verifies: {e}"))
            })?;
        }
        from += page.len() as u64;
    }
}

/// Splits a stored payload (32-byte salt, then the payload) into a disclosure.
pub(crate) fn disclosure(seq: u64, stored: &[u8]) -> Option<Disclosure> {
    let (salt, payload) = stored.split_first_chunk::<32>()?;
    Some(Disclosure {
        seq,
        salt: *salt,
        payload: payload.to_vec(),
    })
}

/// Receipts of `hire` from `from` (at most [`VIEW_PAGE`]), with the payloads this node holds.
pub(crate) fn view(store: &Store, hire: HireRecord, from: u64) -> Result<ReceiptsView, HireError> {
    let id = hire.hire_id;
    let entries = store.receipts(&id, from, VIEW_PAGE)?;
    let payloads: HashMap<u64, Vec<u8>> = store
        .receipt_payloads(&id, from, VIEW_PAGE)?
        .into_iter()
        .collect();
    let mut steps = Vec::with_capacity(entries.len());
    for (seq, raw) in entries {
        let e = SignedEntry::decode_bytes(&raw)
            .map_err(|e| HireError::corrupt(id, "receipt", format!("seq {seq}: {e}")))?;
        let payload = payloads
            .get(&seq)
            .and_then(|b| disclosure(seq, b))
            .and_then(|d| serde_json::from_slice::<Value>(&d.payload).ok());
        steps.push(StepView {
            seq,
            id: e.id().to_hex(),
            time: e.body().time,
            kind: e.body().kind.name().into(),
            summary: summarize(&e.body().kind, payload.as_ref()),
            payload,
        });
    }
    Ok(ReceiptsView { hire, steps })
}

/// The job output, once completed.
pub(crate) fn output(store: &Store, id: &Hash) -> Result<Option<Value>, HireError> {
    match store.get_hire_blob(id, BLOB_OUTPUT)? {
        None => Ok(None),
        Some(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|e| HireError::corrupt(*id, BLOB_OUTPUT, e)),
    }
}

/// The receipt bundle (`spec/bundle.md`); `disclose` opens every payload this node holds.
pub(crate) fn bundle(store: &Store, id: &Hash, disclose: bool) -> Result<Vec<u8>, HireError> {
    let manifest = blob(store, id, BLOB_MANIFEST)?;
    let contract = blob(store, id, BLOB_CONTRACT)?;
    let entries: Vec<Vec<u8>> = store
        .receipts(id, 0, usize::MAX)?
        .into_iter()
        .map(|(_, b)| b)
        .collect();
    let attestation = store.get_hire_blob(id, BLOB_ATTESTATION)?;
    let disclosures = if disclose {
        store
            .receipt_payloads(id, 0, usize::MAX)?
            .into_iter()
            .filter_map(|(seq, b)| disclosure(seq, &b))
            .collect()
    } else {
        Vec::new()
    };
    Ok(Bundle {
        manifest,
        contract,
        entries,
        attestation,
        disclosures,
    }
    .to_bytes())
}

/// A `receipts` reply from `from`: only entries made durable by this call's sync are served,
/// so nothing a client sees can be lost by a provider crash (group commit; `job.rs`).
pub(crate) async fn receipts_page(store: Arc<Store>, id: Hash, from: u64) -> HireReply {
    let page = blocking(move || {
        let durable = store.receipt_count(&id)?;
        store.flush()?;
        let limit = (durable.saturating_sub(from) as usize).min(MAX_FETCH_ENTRIES);
        let entries = store.receipts(&id, from, limit)?;
        let mut payloads: HashMap<u64, Vec<u8>> = store
            .receipt_payloads(&id, from, limit)?
            .into_iter()
            .collect();
        let mut used = 0usize;
        let mut out_entries = Vec::new();
        let mut disclosures = Vec::new();
        let mut completed = false;
        for (seq, raw) in entries {
            let opening = payloads.remove(&seq).and_then(|b| disclosure(seq, &b));
            let cost = raw.len() + opening.as_ref().map_or(0, |d| d.payload.len() + 48);
            if !out_entries.is_empty() && used + cost > REPLY_BUDGET {
                break;
            }
            used += cost;
            completed |= SignedEntry::decode_bytes(&raw)
                .is_ok_and(|e| matches!(e.body().kind, EntryKind::Completed { .. }));
            out_entries.push(raw);
            disclosures.extend(opening);
        }
        let output = if completed {
            store.get_hire_blob(&id, BLOB_OUTPUT)?
        } else {
            None
        };
        Ok(HireReply::Receipts {
            entries: out_entries,
            disclosures,
            output,
        })
    })
    .await;
    page.unwrap_or_else(|e| {
        tracing::error!(hire = %id.short(), "cannot serve receipts: {e}");
        HireReply::Error {
            code: CallError::Internal,
            message: "cannot read the receipts".into(),
        }
    })
}
