//! Relayed credentials, client side: the provider's egress proxy asks this node (the hire's
//! client) to make one call with a secret that never left it (`/souk/relay/1`,
//! spec/credentials.md). The node checks the request against its own copy of the policy it
//! granted, counts it durably against the budget (and refuses a repeated request id), opens
//! the secret it keeps sealed to its own key, performs the HTTPS call through the same code
//! the proxy uses ([`souk_egress::perform`]), and answers with the scrubbed response and its
//! signed record of the exchange, which the provider puts into the receipt chain.

use libp2p::PeerId;
use souk_egress::{Grant, RelayedRequest, Secret, Upstream, perform};
use souk_protocol::Hash;
use souk_protocol::credential::{
    CredentialMode, DenialCode, Header, RelayRecord, RelayReply, RelayRequest, SignedGrant,
};
use souk_protocol::signed::Signed;
use souk_store::Store;

use super::credentials::{BLOB_GRANTS, open_relayed, stored_grants};
use super::ctx::{Ctx, blocking, peer_of};
use super::error::HireError;
use super::record::Role;
use super::state::Hires;
use super::transport::RelayResponder;
use crate::now_ms;

/// Blob prefix: `relay-used/<slot>`, the request ids of every relayed call counted against
/// the slot's budget (16 bytes each, in order).
pub(super) const BLOB_RELAY_USED: &str = "relay-used/";

fn denied(code: DenialCode, message: impl Into<String>) -> RelayReply {
    RelayReply::Denied {
        code,
        message: message.into(),
        retry: code.retry(),
    }
}

/// Handles one relay request from `peer`.
pub(super) fn on_relay(
    hires: &mut Hires,
    peer: PeerId,
    request: RelayRequest,
    reply: RelayResponder,
) {
    let id = request.hire_id;
    let refusal = match hires.get(&id) {
        None => Some(denied(
            DenialCode::CredentialUnavailable,
            "this node has no such hire",
        )),
        Some(r) if r.role != Role::Client || peer_of(&r.provider) != peer => Some(denied(
            DenialCode::CredentialUnavailable,
            "only the hire's provider may relay its calls",
        )),
        Some(r) if r.state.is_terminal() => Some(denied(
            DenialCode::CredentialExpired,
            format!("the hire has ended ({})", r.state),
        )),
        Some(_) => request.validate().err().map(|e| {
            denied(
                DenialCode::BadRequest,
                format!("malformed relay request: {e}"),
            )
        }),
    };
    if let Some(r) = refusal {
        let _ = reply.send(r);
        return;
    }
    let ctx = hires.ctx.clone();
    let upstream = hires.relay_upstream();
    hires.spawn(async move {
        let answer = match upstream {
            Ok(upstream) => perform_relayed(&ctx, &upstream, request).await,
            Err(e) => {
                tracing::error!("cannot set up relayed calls: {e}");
                denied(
                    DenialCode::UpstreamError,
                    "the client cannot make calls now",
                )
            }
        };
        let _ = reply.send(answer);
    });
}

async fn perform_relayed(ctx: &Ctx, upstream: &Upstream, request: RelayRequest) -> RelayReply {
    let id = request.hire_id;
    let slot = request.slot.clone();
    let store = ctx.store.clone();
    let sealing = ctx.sealing.clone();
    let request_id = request.request_id;
    // Policy, budget (counted durably before the call) and the secret, from our own store.
    let prepared = blocking(move || prepare(&store, &id, &slot, &request_id, &sealing)).await;
    let (grant, secret) = match prepared {
        Ok(Ok(p)) => p,
        Ok(Err(refusal)) => return refusal,
        Err(e) => {
            tracing::error!(hire = %id.short(), "cannot prepare a relayed call: {e}");
            return denied(
                DenialCode::CredentialUnavailable,
                "the credential is unavailable",
            );
        }
    };
    let started = now_ms();
    let call = RelayedRequest {
        slot: request.slot.clone(),
        method: request.method.clone(),
        host: request.host.clone(),
        path: request.target.clone(),
        headers: request
            .headers
            .iter()
            .map(|h| (h.name.clone(), h.value.clone()))
            .collect(),
        body: request.body.clone(),
    };
    let performed = perform(call, &grant, &secret, upstream, started).await;
    drop(secret);
    match performed.result {
        Ok(response) => {
            let record = Signed::sign(
                RelayRecord::for_exchange(
                    &request,
                    response.status,
                    &response.body,
                    started,
                    now_ms().saturating_sub(started),
                ),
                &ctx.key,
            );
            RelayReply::Response {
                status: response.status,
                headers: response
                    .headers
                    .into_iter()
                    .map(|(name, value)| Header { name, value })
                    .collect(),
                body: response.body,
                record: record.to_bytes(),
            }
        }
        Err(denial) => denied(denial.code, denial.message),
    }
}

/// The grant (with the budget already used, this call included) and the secret for one
/// relayed call; a refusal when the policy, the budget or a repeated request id says no.
fn prepare(
    store: &Store,
    id: &Hash,
    slot: &str,
    request_id: &[u8; 16],
    sealing: &[u8; 32],
) -> Result<Result<(Grant, Secret), RelayReply>, HireError> {
    let Some(grant) = stored_grants(store, id)?
        .into_iter()
        .filter_map(|b| SignedGrant::decode_bytes(&b).ok())
        .find(|g| g.body().policy.slot == slot)
    else {
        return Ok(Err(denied(
            DenialCode::CredentialUnavailable,
            format!("no credential was granted for slot {slot}"),
        )));
    };
    let policy = grant.body().policy.clone();
    if !matches!(policy.mode, CredentialMode::Relayed { .. }) {
        return Ok(Err(denied(
            DenialCode::CredentialUnavailable,
            format!("slot {slot} was granted sealed, not relayed"),
        )));
    }
    let name = format!("{BLOB_RELAY_USED}{slot}");
    let mut used = store.get_hire_blob(id, &name)?.unwrap_or_default();
    if used.len() % 16 != 0 {
        return Err(HireError::corrupt(
            *id,
            BLOB_RELAY_USED,
            "not a list of request ids",
        ));
    }
    if used.chunks(16).any(|c| c == request_id) {
        return Ok(Err(denied(DenialCode::BadRequest, "a repeated request id")));
    }
    let count = (used.len() / 16) as u64;
    if count >= policy.max_requests {
        return Ok(Err(denied(
            DenialCode::BudgetExhausted,
            format!(
                "slot {slot} allows {} requests; all are used",
                policy.max_requests
            ),
        )));
    }
    let Some(secret) = open_relayed(store, id, slot, sealing)? else {
        return Ok(Err(denied(
            DenialCode::CredentialUnavailable,
            "the secret is no longer kept",
        )));
    };
    // Counted before the call: a crash after this point costs one request of the budget,
    // never lets one through uncounted.
    used.extend_from_slice(request_id);
    store.put_hire_blob(id, &name, &used)?;
    let grant = Grant::new(policy, count).map_err(|e| HireError::corrupt(*id, BLOB_GRANTS, e))?;
    Ok(Ok((grant, Secret::new(secret))))
}
