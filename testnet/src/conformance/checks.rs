//! The checks, by layer, each naming the spec rule it tests: transport and identify, gossip
//! admission (valid and invalid manifests, message ids, penalties), sync paging, search, and
//! the `/souk/hire/1` calls against a test agent (when the node's data directory is given, so
//! the kit can make the node offer one). Every check is a function of what the node sends.

use std::time::Duration;

use libp2p::Multiaddr;
use souk_protocol::Hash;
use souk_protocol::discovery::{MAX_SYNC_PAGE, SearchRequest, SyncRequest};
use souk_protocol::hire::HireState;
use souk_protocol::hire::Verdict;
use souk_protocol::hiring::{HireCall, HireReply};
use souk_protocol::manifest::Manifest;
use souk_protocol::negotiation::{
    Accept, Contract, Counter, Decline, DeclineReason, HireRequest, Offer, Price, Proposal,
};
use souk_protocol::receipt::{Attestation, EntryKind, SignedEntry, commit};
use souk_protocol::signed::Signed;
use souk_protocol::verify::{ChainContext, ChainVerifier, SignatureCheck, verify_bundle_bytes};

use super::peer::{Peer, pump_both};
use super::{Report, fixtures};

fn now_ms() -> u64 {
    souk_node::now_ms()
}

fn random_word() -> String {
    let mut b = [0u8; 6];
    let _ = getrandom::fill(&mut b);
    hex::encode(b)
}

/// Waits until `peer` sees the node subscribed to the manifest topic (publishing needs it).
pub(super) async fn subscribed(peer: &mut Peer) -> bool {
    let topic = libp2p::gossipsub::IdentTopic::new(souk_protocol::discovery::MANIFEST_TOPIC).hash();
    peer.pump(Duration::from_secs(10), |p| {
        p.swarm
            .behaviour()
            .gossipsub
            .all_peers()
            .any(|(_, topics)| topics.contains(&&topic))
    })
    .await
}

/// Waits (up to 10 s) until `peer` and the node are in each other's mesh for the manifest
/// topic: a message the node forwards before a subscriber joins its mesh goes only to the
/// mesh, and IHAVE gossip goes only to peers outside it, so a probe published earlier may
/// never reach a peer that grafts a moment later.
async fn meshed(peer: &mut Peer) -> bool {
    let topic = libp2p::gossipsub::IdentTopic::new(souk_protocol::discovery::MANIFEST_TOPIC).hash();
    let Some(node) = peer.node() else {
        return false;
    };
    let meshed = peer
        .pump(Duration::from_secs(10), |p| {
            p.swarm
                .behaviour()
                .gossipsub
                .mesh_peers(&topic)
                .any(|m| *m == node)
        })
        .await;
    // Our GRAFT may still be in flight: one node heartbeat (1 s, spec/discovery.md) for the
    // node to process it.
    let _ = peer.pump(Duration::from_millis(1100), |_| false).await;
    meshed
}

/// Transport and identify; returns whether the node is a full node.
pub(super) async fn transport(r: &mut Report, a: &mut Peer, addr: &Multiaddr) -> Option<bool> {
    let layer = "transport";
    match a.connect(addr).await {
        Ok(p) => r.pass(
            layer,
            "T1",
            "discovery.md#transport",
            "TCP + noise + yamux connection",
            p.to_string(),
        ),
        Err(e) => {
            r.fail(
                layer,
                "T1",
                "discovery.md#transport",
                "TCP + noise + yamux connection",
                e.to_string(),
            );
            return None;
        }
    }
    if !a
        .pump(Duration::from_secs(10), |p| p.identify.is_some())
        .await
    {
        r.fail(
            layer,
            "T2",
            "discovery.md#protocols",
            "identify answered",
            "no identify answer within 10 s".into(),
        );
        return None;
    }
    let info = a.identify.clone()?;
    let protocols: Vec<String> = info.protocols.iter().map(ToString::to_string).collect();
    r.check(
        layer,
        "T2",
        "discovery.md#protocols (identify)",
        "identify: protocol version /souk/1.0.0",
        (info.protocol_version == "/souk/1.0.0")
            .then(|| format!("{} ({})", info.protocol_version, info.agent_version))
            .ok_or_else(|| format!("protocol version {:?}", info.protocol_version)),
    );
    let full = protocols.iter().any(|p| p == "/souk/manifest-sync/1");
    let must: &[&str] = if full {
        &[
            "/ipfs/id/1.0.0",
            "/meshsub/1.1.0",
            "/souk/kad/1.0.0",
            "/souk/manifest-sync/1",
            "/souk/search/1",
            "/souk/outcome-sync/1",
            "/souk/hire/1",
        ]
    } else {
        &["/ipfs/id/1.0.0", "/souk/hire/1"]
    };
    let missing: Vec<&&str> = must
        .iter()
        .filter(|m| !protocols.iter().any(|p| p == **m))
        .collect();
    r.check(
        layer,
        "T3",
        "discovery.md#protocols (MUST per role)",
        if full {
            "a full node lists every protocol a full node MUST serve"
        } else {
            "a light node lists /souk/hire/1"
        },
        if missing.is_empty() {
            Ok(format!("{} protocols", protocols.len()))
        } else {
            Err(format!("missing {missing:?}"))
        },
    );
    if !full {
        r.check(
            layer,
            "T3b",
            "discovery.md#kademlia (light nodes: client mode)",
            "a light node does not list /souk/kad/1.0.0",
            if protocols.iter().any(|p| p == "/souk/kad/1.0.0") {
                Err("listed".into())
            } else {
                Ok("not listed".into())
            },
        );
    }
    let should = ["/ipfs/ping/1.0.0", "/meshsub/1.2.0"];
    let absent: Vec<&&str> = should
        .iter()
        .filter(|m| !protocols.iter().any(|p| p == **m))
        .collect();
    r.check(
        layer,
        "T4",
        "discovery.md#protocols (SHOULD)",
        "lists /ipfs/ping/1.0.0 and /meshsub/1.2.0",
        if absent.is_empty() {
            Ok("listed".into())
        } else {
            Err(format!("missing {absent:?}"))
        },
    );
    let pinged = a.pump(Duration::from_secs(10), |p| p.rtt.is_some()).await;
    r.check(
        layer,
        "T5",
        "discovery.md#protocols (/ipfs/ping/1.0.0)",
        "answers ping",
        a.rtt
            .map(|t| format!("{} µs", t.as_micros()))
            .filter(|_| pinged)
            .ok_or_else(|| "no pong within 10 s".into()),
    );
    Some(full)
}

/// Gossip admission: a fresh valid manifest is forwarded with the content-addressed message
/// id; every invalid variant is dropped (not forwarded) and charged; three within a minute ban
/// their sender. Returns the admitted manifest.
pub(super) async fn gossip(
    r: &mut Report,
    a: &mut Peer,
    b: &mut Peer,
    addr: &Multiaddr,
    metrics: &mut dyn FnMut() -> Option<u64>,
) -> Option<Signed<Manifest>> {
    let layer = "gossip";
    if let Err(e) = b.connect(addr).await {
        r.fail(
            layer,
            "G0",
            "discovery.md#transport",
            "a second kit peer connects",
            e.to_string(),
        );
        return None;
    }
    if !(subscribed(a).await && subscribed(b).await && meshed(a).await && meshed(b).await) {
        r.fail(
            layer,
            "G0",
            "discovery.md#topic-and-messages",
            "the node subscribes to souk/manifests/1",
            "not within 10 s".into(),
        );
        return None;
    }
    let word = random_word();
    let m = match fixtures::valid(&a.key, &format!("probe-{word}"), &word, 1, now_ms()) {
        Ok(m) => m,
        Err(e) => {
            r.fail(
                layer,
                "G1",
                "manifest.md",
                "make a probe manifest",
                e.to_string(),
            );
            return None;
        }
    };
    let data = m.to_bytes();
    let expected_id = blake3::hash(&data).as_bytes()[..20].to_vec();
    if let Err(e) = a.publish(data.clone()) {
        r.fail(
            layer,
            "G1",
            "discovery.md#admission-pipeline",
            "a valid fresh manifest is forwarded",
            format!("publish: {e}"),
        );
        return None;
    }
    let got = pump_both(a, b, Duration::from_secs(10), |_, b| {
        b.gossip.iter().any(|(_, d)| *d == data)
    })
    .await;
    r.check(
        layer,
        "G1",
        "discovery.md#admission-pipeline (step 8) and #verdicts (accept: forwarded)",
        "a valid fresh manifest from one peer reaches another through the node",
        if got {
            Ok(format!("manifest {}", m.id().short()))
        } else {
            Err("not forwarded within 10 s".into())
        },
    );
    let ids: Vec<Vec<u8>> = b
        .gossip
        .iter()
        .filter(|(_, d)| *d == data)
        .map(|(id, _)| id.clone())
        .collect();
    r.check(
        layer,
        "G2",
        "discovery.md#topic-and-messages (message id = BLAKE3(data)[0..20])",
        "the forwarded message carries the content-addressed id",
        if ids.iter().all(|id| *id == expected_id) && !ids.is_empty() {
            Ok(hex::encode(&expected_id))
        } else {
            Err(format!(
                "ids {:?}",
                ids.iter().map(hex::encode).collect::<Vec<_>>()
            ))
        },
    );

    // Invalid variants, each from a fresh peer (three penalties in a minute would ban it).
    let other = Peer::new().ok()?;
    let before = metrics();
    let variants = match fixtures::invalid(&a.key, &other.key, now_ms()) {
        Ok(v) => v,
        Err(e) => {
            r.fail(
                layer,
                "G3",
                "manifest.md",
                "make invalid manifests",
                e.to_string(),
            );
            return Some(m);
        }
    };
    let mut sent = 0u64;
    let mut invalid_data = Vec::new();
    for (i, (what, rule, bytes)) in variants.iter().enumerate() {
        let id = format!("G3.{}", i + 1);
        let mut p = match Peer::new() {
            Ok(p) => p,
            Err(e) => {
                r.fail(layer, "G3", rule, what, e.to_string());
                continue;
            }
        };
        if let Err(e) = p.connect(addr).await {
            r.fail(layer, "G3", rule, what, format!("connect: {e}"));
            continue;
        }
        if !subscribed(&mut p).await {
            r.fail(layer, "G3", rule, what, "no subscription seen".into());
            continue;
        }
        match p.publish(bytes.clone()) {
            Ok(_) => {
                sent += 1;
                invalid_data.push((id, *what, *rule, bytes.clone()));
            }
            Err(e) => r.fail(layer, "G3", rule, what, format!("publish: {e}")),
        }
        // Let the message leave before the peer is dropped.
        let _ = p.pump(Duration::from_millis(300), |_| false).await;
    }
    // A valid sentinel after them: once B has it, the node has judged the invalid ones.
    let sentinel = fixtures::valid(&a.key, &format!("probe-{word}-s"), &word, 1, now_ms()).ok()?;
    let sdata = sentinel.to_bytes();
    let _ = a.publish(sdata.clone());
    let got = pump_both(a, b, Duration::from_secs(10), |_, b| {
        b.gossip.iter().any(|(_, d)| *d == sdata)
    })
    .await;
    let _ = pump_both(a, b, Duration::from_millis(500), |_, _| false).await;
    for (id, what, rule, bytes) in &invalid_data {
        let forwarded = b.gossip.iter().any(|(_, d)| d == bytes);
        r.check(
            layer,
            id,
            rule,
            &format!("an invalid manifest ({what}) is not forwarded"),
            if !got {
                Err("the sentinel did not arrive: cannot tell".into())
            } else if forwarded {
                Err("forwarded".into())
            } else {
                Ok("dropped".into())
            },
        );
    }
    match (before, metrics()) {
        (Some(x), Some(y)) => r.check(
            layer,
            "G4",
            "discovery.md#verdicts (reject: the source is charged)",
            "every invalid manifest is counted as rejected",
            if y.saturating_sub(x) >= sent {
                Ok(format!("{} rejected", y - x))
            } else {
                Err(format!("{} rejected of {sent}", y.saturating_sub(x)))
            },
        ),
        _ => r.skip(
            layer,
            "G4",
            "discovery.md#verdicts",
            "every invalid manifest is counted as rejected",
            "needs --data-dir (the node's metrics)",
        ),
    }
    // Three penalties within a minute ban the sender (fresh bytes: gossipsub drops a message
    // id it has seen before judging it).
    let mut p = Peer::new().ok()?;
    let fresh = fixtures::invalid(&p.key, &other.key, now_ms()).ok()?;
    let banned = async {
        p.connect(addr).await.map_err(|e| e.to_string())?;
        if !subscribed(&mut p).await {
            return Err("no subscription seen".to_owned());
        }
        for (_, _, bytes) in fresh.iter().take(3) {
            p.publish(bytes.clone())
                .map_err(|e| format!("publish: {e}"))?;
            let _ = p.pump(Duration::from_millis(200), |_| false).await;
        }
        let closed = p
            .pump(Duration::from_secs(10), |p| {
                p.swarm.connected_peers().next().is_none()
            })
            .await;
        if !closed {
            return Err("still connected 10 s after three invalid manifests".into());
        }
        // A new connection is refused (closed at once) while banned.
        let again = p.connect(addr).await;
        let refused = again.is_err()
            || p.pump(Duration::from_secs(3), |p| {
                p.swarm.connected_peers().next().is_none()
            })
            .await;
        if refused {
            Ok("disconnected and refused".to_owned())
        } else {
            Err("reconnected while banned".into())
        }
    }
    .await;
    r.check(
        layer,
        "G5",
        "discovery.md#peer-penalties (3 penalties in a minute: ban)",
        "a peer sending three invalid manifests is banned",
        banned,
    );
    Some(m)
}

/// Sync: the admitted manifest is served; pages are in ascending id order, of at most
/// `clamp(limit, 1, 256)` envelopes, chained by `next`.
pub(super) async fn sync(r: &mut Report, a: &mut Peer, probe: Option<&Signed<Manifest>>) {
    let layer = "sync";
    let all = a
        .sync(SyncRequest {
            after: None,
            limit: MAX_SYNC_PAGE,
        })
        .await;
    let first = match all {
        Ok(p) => p,
        Err(e) => {
            r.fail(
                layer,
                "S1",
                "discovery.md#serving-a-page",
                "answers a sync request",
                e,
            );
            return;
        }
    };
    let ids: Vec<Hash> = first
        .manifests
        .iter()
        .filter_map(|e| Signed::<Manifest>::decode_bytes(e).ok().map(|m| m.id()))
        .collect();
    r.check(
        layer,
        "S1",
        "discovery.md#serving-a-page (envelopes decode, ascending ids)",
        "a page holds valid envelopes in ascending id order",
        if ids.len() == first.manifests.len() && ids.windows(2).all(|w| w[0] < w[1]) {
            Ok(format!("{} manifests", ids.len()))
        } else {
            Err(format!(
                "{} of {} decode, order {:?}",
                ids.len(),
                first.manifests.len(),
                ids.windows(2).all(|w| w[0] < w[1])
            ))
        },
    );
    if let Some(m) = probe {
        let mut found = ids.contains(&m.id());
        let mut after = first.next;
        let mut pages = 0;
        while !found && after.is_some() && pages < 1000 {
            pages += 1;
            match a
                .sync(SyncRequest {
                    after,
                    limit: MAX_SYNC_PAGE,
                })
                .await
            {
                Ok(p) => {
                    found = p.manifests.iter().any(|e| *e == m.to_bytes());
                    after = p.next;
                }
                Err(_) => break,
            }
        }
        r.check(
            layer,
            "S2",
            "discovery.md#serving-a-page (the catalog)",
            "the admitted probe manifest is served by sync",
            if found {
                Ok("served".into())
            } else {
                Err("not served".into())
            },
        );
    }
    // Paging one by one: `next` chains pages, each at most one envelope, ids ascending.
    let mut after = None;
    let mut seen = Vec::new();
    let mut bad = None;
    for _ in 0..(ids.len() + 2).min(300) {
        match a.sync(SyncRequest { after, limit: 1 }).await {
            Ok(p) => {
                if p.manifests.len() > 1 {
                    bad = Some(format!("{} envelopes for limit 1", p.manifests.len()));
                    break;
                }
                let page_ids: Vec<Hash> = p
                    .manifests
                    .iter()
                    .filter_map(|e| Signed::<Manifest>::decode_bytes(e).ok().map(|m| m.id()))
                    .collect();
                if let (Some(n), Some(last)) = (p.next, page_ids.last())
                    && n != *last
                {
                    bad = Some("next is not the id of the page's last envelope".into());
                    break;
                }
                seen.extend(page_ids);
                after = p.next;
                if after.is_none() {
                    break;
                }
            }
            Err(e) => {
                bad = Some(e);
                break;
            }
        }
    }
    let prefix_ok = seen.len() >= ids.len().min(seen.len()) && seen.windows(2).all(|w| w[0] < w[1]);
    r.check(
        layer,
        "S3",
        "discovery.md#serving-a-page (n = clamp(limit, 1, 256); next = last id when more follow)",
        "paging with limit 1 walks the catalog in order",
        match bad {
            Some(e) => Err(e),
            None if prefix_ok => Ok(format!("{} pages", seen.len())),
            None => Err("pages out of order".into()),
        },
    );
    let zero = a
        .sync(SyncRequest {
            after: None,
            limit: 0,
        })
        .await;
    r.check(
        layer,
        "S4",
        "discovery.md#serving-a-page (limit 0 is clamped to 1)",
        "a page asked with limit 0 holds one envelope when the catalog is not empty",
        match zero {
            Ok(p) if ids.is_empty() || p.manifests.len() == 1 => {
                Ok(format!("{} envelope", p.manifests.len()))
            }
            Ok(p) => Err(format!("{} envelopes", p.manifests.len())),
            Err(e) => Err(e),
        },
    );
}

/// Search: the admitted probe is found by a word of its description and by capability and
/// provider; results respect the limit.
pub(super) async fn search(r: &mut Report, a: &mut Peer, probe: Option<&Signed<Manifest>>) {
    let layer = "search";
    let Some(m) = probe else {
        r.skip(
            layer,
            "Q1",
            "discovery.md#serving-a-search",
            "search finds an admitted manifest",
            "no probe manifest was admitted",
        );
        return;
    };
    let word = m
        .body()
        .description
        .rsplit(' ')
        .next()
        .unwrap_or_default()
        .to_owned();
    let by_text = a
        .search(SearchRequest {
            text: word.clone(),
            limit: 10,
            ..SearchRequest::default()
        })
        .await;
    r.check(
        layer,
        "Q1",
        "discovery.md#serving-a-search (text)",
        "a word of the description finds the manifest",
        match by_text {
            Ok(res) if res.manifests.iter().any(|e| *e == m.to_bytes()) => {
                Ok(format!("{} results", res.manifests.len()))
            }
            Ok(res) => Err(format!("not among {} results", res.manifests.len())),
            Err(e) => Err(e),
        },
    );
    let by_cap = a
        .search(SearchRequest {
            capabilities: vec!["conformance".into()],
            provider: Some(m.body().provider.to_string()),
            limit: 1,
            ..SearchRequest::default()
        })
        .await;
    r.check(
        layer,
        "Q2",
        "discovery.md#serving-a-search (capabilities, provider, limit)",
        "capability and provider filters find it, within the limit",
        match by_cap {
            Ok(res)
                if res.manifests.len() <= 1
                    && res.manifests.iter().all(|e| {
                        Signed::<Manifest>::decode_bytes(e)
                            .is_ok_and(|x| x.body().provider == m.body().provider)
                    })
                    && !res.manifests.is_empty() =>
            {
                Ok("1 result".into())
            }
            Ok(res) => Err(format!("{} results", res.manifests.len())),
            Err(e) => Err(e),
        },
    );
}

fn sign_request(
    a: &Peer,
    m: &Signed<Manifest>,
    input: &[u8],
    salt: &[u8; 32],
    amount: u64,
) -> Signed<HireRequest> {
    let mut nonce = [0u8; 16];
    let _ = getrandom::fill(&mut nonce);
    let now = now_ms();
    Signed::sign(
        HireRequest {
            manifest_id: m.id(),
            client: a.key.id(),
            input_commitment: commit(salt, input),
            input_size: input.len() as u64,
            budget: Price {
                currency: m.body().pricing.currency.clone(),
                amount,
            },
            deadline: now + m.body().limits.max_duration_ms,
            nonce,
            created_at: now,
        },
        &a.key,
    )
}

/// The hire calls against the node's test agent `m`: decline (unknown manifest, price),
/// offer, accept, fetch with every entry verified, settle; then the bundle the node exports.
pub(super) async fn hire(
    r: &mut Report,
    a: &mut Peer,
    m: &Signed<Manifest>,
    bundle: &mut dyn FnMut(Hash) -> Option<Vec<u8>>,
) {
    let layer = "hire";
    let provider = m.body().provider;
    let input = br#"{"n":1}"#.to_vec();
    let mut salt = [0u8; 32];
    let _ = getrandom::fill(&mut salt);
    // An unknown manifest: a signed decline, reason unknown-manifest.
    let mut unknown = m.body().clone();
    unknown.description.push_str(" (not offered)");
    let ghost = Signed::sign(unknown, &a.key);
    let req = sign_request(a, &ghost, &input, &salt, m.body().pricing.per_hire);
    let reply = a
        .hire(HireCall::Request {
            request: req.to_bytes(),
        })
        .await;
    r.check(
        layer,
        "H1",
        "negotiation.md (decline unknown-manifest) / hiring.md#provider",
        "a request for a manifest the node does not offer is declined, signed",
        match reply {
            Ok(HireReply::Decline(b)) => match Signed::<Decline>::decode_bytes(&b) {
                Ok(d)
                    if d.verify(&provider).is_ok()
                        && d.body().reason == DeclineReason::UnknownManifest =>
                {
                    Ok("declined unknown-manifest".into())
                }
                Ok(d) => Err(format!(
                    "decline {:?} (signature ok: {})",
                    d.body().reason,
                    d.verify(&provider).is_ok()
                )),
                Err(e) => Err(format!("decline does not decode: {e}")),
            },
            Ok(other) => Err(format!("{other:?}")),
            Err(e) => Err(e),
        },
    );
    // A budget below the price: a signed decline (price) or a counter.
    let low = sign_request(a, m, &input, &salt, m.body().pricing.per_hire / 2);
    let reply = a
        .hire(HireCall::Request {
            request: low.to_bytes(),
        })
        .await;
    r.check(
        layer,
        "H2",
        "hiring.md#provider (budget below the price: decline price, or counter)",
        "a request below the price is declined (price) or countered, signed",
        match reply {
            Ok(HireReply::Decline(b)) => Signed::<Decline>::decode_bytes(&b)
                .map_err(|e| e.to_string())
                .and_then(|d| {
                    d.verify(&provider)
                        .map(|()| format!("declined {:?}", d.body().reason))
                        .map_err(|e| e.to_string())
                }),
            Ok(HireReply::Counter(b)) => Signed::<Counter>::decode_bytes(&b)
                .map_err(|e| e.to_string())
                .and_then(|c| {
                    c.verify(&provider)
                        .map(|()| "countered".to_owned())
                        .map_err(|e| e.to_string())
                }),
            Ok(other) => Err(format!("{other:?}")),
            Err(e) => Err(e),
        },
    );
    // An offer, accepted.
    let request = sign_request(a, m, &input, &salt, m.body().pricing.per_hire);
    let proposal = match a
        .hire(HireCall::Request {
            request: request.to_bytes(),
        })
        .await
    {
        Ok(HireReply::Offer(b)) => Signed::<Offer>::decode_bytes(&b)
            .map_err(|e| e.to_string())
            .and_then(|o| {
                o.verify(&provider)
                    .map(|()| Proposal::Offer(o))
                    .map_err(|e| e.to_string())
            }),
        Ok(HireReply::Counter(b)) => Signed::<Counter>::decode_bytes(&b)
            .map_err(|e| e.to_string())
            .and_then(|c| {
                c.verify(&provider)
                    .map(|()| Proposal::Counter(c))
                    .map_err(|e| e.to_string())
            }),
        Ok(other) => Err(format!("{other:?}")),
        Err(e) => Err(e),
    };
    let proposal = match proposal {
        Ok(p) if p.request_id() == request.id() => {
            r.pass(
                layer,
                "H3",
                "hiring.md#provider / negotiation.md (offer)",
                "a request at the price gets a signed offer for that request",
                "offer".into(),
            );
            p
        }
        Ok(_) => {
            return r.fail(
                layer,
                "H3",
                "negotiation.md",
                "the offer names the request",
                "another request id".into(),
            );
        }
        Err(e) => {
            return r.fail(
                layer,
                "H3",
                "hiring.md#provider",
                "a request at the price gets a signed offer",
                e,
            );
        }
    };
    let accept = Signed::sign(
        Accept {
            request_id: request.id(),
            proposal_id: proposal.id(),
            client: a.key.id(),
            created_at: now_ms(),
        },
        &a.key,
    );
    let contract = Contract {
        request,
        proposal,
        accept,
    };
    if let Err(v) = contract.verify(m) {
        return r.fail(
            layer,
            "H4",
            "negotiation.md (contract)",
            "the contract verifies",
            v.to_string(),
        );
    }
    let id = contract.hire_id();
    let reply = a
        .hire(HireCall::Accept {
            contract: contract.to_bytes(),
            input: input.clone(),
            salt,
            credentials: Vec::new(),
        })
        .await;
    match reply {
        Ok(HireReply::Accepted { hire_id }) if hire_id == id => r.pass(
            layer,
            "H4",
            "hiring.md#contract-accept",
            "accept returns the hire id",
            id.short(),
        ),
        other => {
            return r.fail(
                layer,
                "H4",
                "hiring.md#contract-accept",
                "accept returns the hire id",
                format!("{other:?}"),
            );
        }
    }
    // Fetch until the end, verifying every entry.
    let mut verifier = ChainVerifier::new(ChainContext::new(&contract, m.body()));
    let mut output = None;
    let mut problem = None;
    let until = std::time::Instant::now() + Duration::from_secs(60);
    while !verifier.state().is_terminal() && std::time::Instant::now() < until {
        let from = verifier.next_seq();
        match a
            .hire(HireCall::Fetch {
                hire_id: id,
                from_seq: from,
                wait_ms: 5_000,
            })
            .await
        {
            Ok(HireReply::Receipts {
                entries,
                output: out,
                ..
            }) => {
                for raw in entries {
                    match SignedEntry::decode_bytes(&raw)
                        .map_err(|e| e.to_string())
                        .and_then(|e| verifier.push(e).map_err(|e| e.to_string()))
                    {
                        Ok(_) => {}
                        Err(e) => {
                            problem = Some(e);
                            break;
                        }
                    }
                }
                if out.is_some() {
                    output = out;
                }
                if problem.is_some() {
                    break;
                }
            }
            other => {
                problem = Some(format!("{other:?}"));
                break;
            }
        }
    }
    let completed_hash = match verifier.head().map(|h| &h.body().kind) {
        Some(EntryKind::Completed { output_hash, .. }) => Some(*output_hash),
        _ => None,
    };
    r.check(
        layer,
        "H5",
        "hiring.md#fetch-receipts, receipts.md R1-R10",
        "fetch returns a chain that verifies entry by entry, ending completed",
        match (&problem, verifier.state()) {
            (Some(p), _) => Err(p.clone()),
            (None, HireState::Completed) => Ok(format!("{} entries", verifier.next_seq())),
            (None, s) => Err(format!("ended {s:?}")),
        },
    );
    // The output may come with a later fetch of the head.
    if output.is_none()
        && completed_hash.is_some()
        && let Ok(HireReply::Receipts { output: out, .. }) = a
            .hire(HireCall::Fetch {
                hire_id: id,
                from_seq: verifier.next_seq().saturating_sub(1),
                wait_ms: 0,
            })
            .await
    {
        output = out;
    }
    r.check(
        layer,
        "H6",
        "hiring.md#fetch-receipts (output matches output-hash)",
        "the output matches the completed entry's hash",
        match (output, completed_hash) {
            (Some(o), Some(h)) if Hash::digest(&o) == h => Ok(format!("{} bytes", o.len())),
            (Some(_), Some(_)) => Err("hash mismatch".into()),
            _ => Err("no output".into()),
        },
    );
    let Some(head) = verifier.head() else { return };
    let att = Signed::sign(
        Attestation {
            hire_id: id,
            head_seq: head.body().seq,
            head_id: head.id(),
            verdict: Verdict::Accepted,
            reason: String::new(),
            created_at: now_ms(),
        },
        &a.key,
    );
    let reply = a
        .hire(HireCall::Settle {
            attestation: att.to_bytes(),
        })
        .await;
    r.check(
        layer,
        "H7",
        "hiring.md#settle",
        "the provider takes the attestation",
        match reply {
            Ok(HireReply::Ok) => Ok("ok".into()),
            other => Err(format!("{other:?}")),
        },
    );
    match bundle(id) {
        Some(bytes) => r.check(
            layer,
            "H8",
            "bundle.md (the node's export verifies offline)",
            "the bundle the node exports verifies",
            verify_bundle_bytes(&bytes, SignatureCheck::OneByOne)
                .map(|rep| format!("{} entries", rep.entries))
                .map_err(|v| v.to_string()),
        ),
        None => r.skip(
            layer,
            "H8",
            "bundle.md",
            "the bundle the node exports verifies",
            "needs --data-dir",
        ),
    }
}
