//! `GET /v1/events` on real nodes: a full client's stream shows the provider's manifest
//! arriving by gossip (with its gossipsub message id and sender), then its hire's
//! transitions and verified receipts as they happen, in order; the provider's own stream
//! shows the receipts it appended and the client's verdict. Filters and bad parameters.

#[path = "support/mod.rs"]
mod support;

use std::io::BufRead;
use std::time::Duration;

use serde_json::{Value, json};
use souk_node::api::client::ApiClient;
use souk_protocol::hire::{HireState, Verdict};
use support::{hire, new_hire, provider_and_client, script_agent, serve_api, wait_for_state};
use tokio::sync::mpsc;
use zeroize::Zeroizing;

/// Reads `client`'s event stream (filtered by `types`) on a thread; the events come out of
/// the channel. Returns once the stream is live (its `subscribed` line was read).
async fn stream(client: ApiClient, types: Option<&'static str>) -> mpsc::UnboundedReceiver<Value> {
    let (tx, mut rx) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        let reader = client
            .events(types)
            .unwrap_or_else(|e| panic!("events: {e}"));
        for line in reader.lines() {
            let Ok(line) = line else { return };
            let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line}: {e}"));
            if tx.send(v).is_err() {
                return;
            }
        }
    });
    let first = tokio::time::timeout(Duration::from_secs(20), rx.recv())
        .await
        .unwrap_or_else(|_| panic!("no subscribed line"))
        .unwrap_or_else(|| panic!("stream closed"));
    assert_eq!(first["type"], "subscribed", "{first}");
    rx
}

/// The next event matching `want`, skipping others (a hang guard of 60 s, not a timing
/// target).
async fn next_matching(
    rx: &mut mpsc::UnboundedReceiver<Value>,
    what: &str,
    want: impl Fn(&Value) -> bool,
) -> Value {
    let wait = async {
        loop {
            match rx.recv().await {
                Some(v) if want(&v) => return v,
                Some(_) => {}
                None => panic!("the stream ended before {what}"),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), wait)
        .await
        .unwrap_or_else(|_| panic!("no event: {what}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clients_stream_shows_gossip_then_its_hire_as_it_happens() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (p, c) = provider_and_client(tmp.path(), 640, false).await;
    let client_api = serve_api(&c.handle).await;
    let provider_api = serve_api(&p.handle).await;
    let mut all = stream(client_api, None).await;
    let mut provider = stream(provider_api, Some("receipt_appended,hire_settled")).await;

    let spec = script_agent(
        &tmp.path().join("pkg"),
        "evented",
        r#"
for i in range(3):
    send("decision", text="step %d" % i)
send("result", output={"steps": 3})
"#,
        1_000,
    );
    let published = p
        .handle
        .publish(spec)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mid = published.manifest_id.clone();
    let admitted = next_matching(&mut all, "the manifest by gossip", |v| {
        v["type"] == "manifest_admitted" && v["id"] == json!(mid)
    })
    .await;
    assert_eq!(admitted["via"], "gossip", "{admitted}");
    assert_eq!(
        admitted["from"],
        json!(p.handle.peer_id.to_base58()),
        "{admitted}"
    );
    let msg_id = admitted["message_id"].as_str().unwrap_or_default();
    assert!(
        msg_id.len() >= 16 && msg_id.bytes().all(|b| b.is_ascii_hexdigit()),
        "{admitted}"
    );
    assert!(admitted["at_ms"].as_u64().is_some_and(|t| t > 0));

    let created = hire(&c.handle, new_hire(&mid, json!({}), None, None)).await;
    let id = created.id();
    let done = wait_for_state(&c.handle, id, HireState::Completed).await;
    let hex = id.to_hex();
    // Transitions in order, from the contract to completed, with verified receipts between.
    let mut states = Vec::new();
    let mut verified = 0;
    loop {
        let v = next_matching(&mut all, "the hire's events", |v| {
            v["hire_id"] == json!(hex)
                && (v["type"] == "hire_transition" || v["type"] == "receipt_verified")
        })
        .await;
        if v["type"] == "receipt_verified" {
            let n = v["entries"].as_u64().unwrap_or(0);
            assert!(n > verified, "entries only grow: {v}");
            verified = n;
            continue;
        }
        assert_eq!(v["role"], "client", "{v}");
        assert_eq!(v["agent"], "evented", "{v}");
        states.push(v["to"].as_str().unwrap_or_default().to_owned());
        if v["to"] == "completed" {
            break;
        }
    }
    assert_eq!(
        states.first().map(String::as_str),
        Some("accepted"),
        "{states:?}"
    );
    assert_eq!(states.last().map(String::as_str), Some("completed"));
    let mut sorted = states.clone();
    sorted.dedup();
    assert_eq!(sorted, states, "each transition once: {states:?}");

    // The provider appended what the client verified, and sees the verdict.
    let mut appended = 0;
    while appended < done.entries {
        let v = next_matching(&mut provider, "appended receipts", |v| {
            v["type"] == "receipt_appended" && v["hire_id"] == json!(hex)
        })
        .await;
        appended = v["entries"].as_u64().unwrap_or(0);
    }
    c.handle
        .hires
        .settle(id, Verdict::Accepted, String::new())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let settled = next_matching(&mut provider, "the verdict", |v| {
        v["type"] == "hire_settled"
    })
    .await;
    assert_eq!(settled["verdict"], "accepted", "{settled}");
    assert_eq!(settled["role"], "provider", "{settled}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_are_checked_and_the_token_is_required() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (p, _c) = provider_and_client(tmp.path(), 650, true).await;
    let api = serve_api(&p.handle).await;
    let err = tokio::task::spawn_blocking(move || api.events(Some("manifest_admitted,nope")).err())
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("an unknown type was accepted"));
    assert_eq!(err.code(), Some("invalid"), "{err}");
    assert!(err.to_string().contains("nope"), "{err}");
    let wrong = ApiClient::new(
        serve_api(&p.handle).await.addr(),
        Zeroizing::new("00".repeat(32)),
    );
    let err = tokio::task::spawn_blocking(move || wrong.events(None).err())
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("a wrong token was accepted"));
    assert!(
        matches!(
            err,
            souk_node::api::client::ClientError::Api { status: 401, .. }
        ),
        "{err}"
    );
}

/// A reader of the event stream must not hold a stopping node up: the stream ends when the
/// node stops, although the API (which holds a handle to the node) is still serving. Before,
/// a graceful stop waited out the API's whole shutdown grace for such a reader.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_ends_when_its_node_stops() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (p, _c) = provider_and_client(tmp.path(), 651, true).await;
    let api = serve_api(&p.handle).await;
    let mut rx = stream(api, None).await;
    p.handle.shutdown().await;
    let ended = async { while rx.recv().await.is_some() {} };
    tokio::time::timeout(Duration::from_secs(60), ended)
        .await
        .unwrap_or_else(|_| panic!("the event stream outlived its node"));
}
