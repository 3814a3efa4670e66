//! Hiring helpers: publish and find, hire records and states, receipts and bundles.

use souk_protocol::Hash;
use souk_protocol::discovery::SearchRequest;
use souk_protocol::hire::HireState;
use souk_protocol::verify::{BundleReport, SignatureCheck, verify_bundle_bytes};

use super::node::{wait_for, wait_for_some};
use crate::agent_file::AgentSpec;
use crate::hire::{HireRecord, NewHire, StepView};
use crate::service::NodeHandle;

/// Whether `node`'s search for `text` returns manifest `id`.
pub async fn finds(node: &NodeHandle, text: &str, id: &str) -> bool {
    let req = SearchRequest {
        text: text.into(),
        limit: 50,
        ..Default::default()
    };
    node.search(req)
        .await
        .map(|hits| hits.iter().any(|h| h.id == id))
        .unwrap_or(false)
}

/// Publishes `spec` on `provider` and waits until `client`'s search for `text` finds the
/// manifest (so the client can hire it); returns the manifest id (hex).
pub async fn publish_and_find(
    provider: &NodeHandle,
    client: &NodeHandle,
    spec: AgentSpec,
    text: &str,
) -> String {
    let name = spec.name.clone();
    let id = provider
        .publish(spec)
        .await
        .unwrap_or_else(|e| panic!("publish {name}: {e}"))
        .manifest_id;
    wait_for(&format!("the client to find {name}"), || {
        finds(client, text, &id)
    })
    .await;
    id
}

/// A hire request for `manifest_id`.
pub fn new_hire(
    manifest_id: &str,
    input: serde_json::Value,
    max_price: Option<u64>,
    deadline_ms: Option<u64>,
) -> NewHire {
    NewHire {
        manifest_id: manifest_id.into(),
        input,
        max_price,
        deadline_ms,
        credentials: Vec::new(),
        retry_busy_ms: None,
    }
}

/// Hires through `node` (negotiation, contract, following); panics if it is refused.
pub async fn hire(node: &NodeHandle, new: NewHire) -> HireRecord {
    let manifest = new.manifest_id.clone();
    node.hires
        .create(new)
        .await
        .unwrap_or_else(|e| panic!("hire {manifest}: {e}"))
}

/// The hire's record on `node`; panics if the node does not know the hire.
pub async fn hire_record(node: &NodeHandle, id: Hash) -> HireRecord {
    node.hires
        .get(id)
        .await
        .unwrap_or_else(|e| panic!("get hire {}: {e}", id.short()))
        .unwrap_or_else(|| panic!("no hire {} on this node", id.short()))
}

/// Waits until `node`'s record of hire `id` satisfies `ok`; returns that record.
pub async fn wait_for_record(
    node: &NodeHandle,
    id: Hash,
    what: &str,
    ok: impl Fn(&HireRecord) -> bool,
) -> HireRecord {
    let ok = &ok;
    wait_for_some(what, || async move {
        node.hires.get(id).await.ok().flatten().filter(ok)
    })
    .await
}

/// Waits until `node`'s record of hire `id` is in `state`. Fails at once, showing the
/// record, if the hire ends in another state.
pub async fn wait_for_state(node: &NodeHandle, id: Hash, state: HireState) -> HireRecord {
    wait_for_some(
        &format!("hire {} to be {state}", id.short()),
        || async move {
            let r = node.hires.get(id).await.ok().flatten()?;
            if r.state == state {
                return Some(r);
            }
            assert!(
                !r.state.is_terminal(),
                "hire {} ended {} instead of {state}: {r:?}",
                id.short(),
                r.state
            );
            None
        },
    )
    .await
}

/// Every receipt step of hire `id` that `node` holds, with decoded payloads.
pub async fn all_steps(node: &NodeHandle, id: Hash) -> Vec<StepView> {
    node.hires
        .receipts(id, 0, 0)
        .await
        .unwrap_or_else(|e| panic!("receipts of {}: {e}", id.short()))
        .steps
}

/// Exports hire `id`'s bundle from `node` and verifies it strictly (every signature one by
/// one); returns the bytes and the report.
pub async fn verified_bundle(
    node: &NodeHandle,
    id: Hash,
    disclose: bool,
) -> (Vec<u8>, BundleReport) {
    let bytes = node
        .hires
        .bundle(id, disclose)
        .await
        .unwrap_or_else(|e| panic!("bundle of {}: {e}", id.short()));
    let report = verify_bundle_bytes(&bytes, SignatureCheck::OneByOne)
        .unwrap_or_else(|v| panic!("the bundle of {}: does not verify: {v}", id.short()));
    (bytes, report)
}
