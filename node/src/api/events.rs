//! `GET /v1/events`: the node's events as they happen (see [`crate::service::NodeEvent`]),
//! as newline-delimited JSON (default) or server-sent events (`Accept: text/event-stream` or
//! `?format=sse`), optionally filtered by type (`?types=manifest_admitted,hire_transition`).
//!
//! The first item is `{"type":"subscribed",...}`: events from then on are delivered. A
//! client that reads too slowly is not waited for: it gets `{"type":"lagged","missed":N}`
//! in place of the events it missed. A quiet stream carries a `heartbeat` every 15 s.

use std::collections::HashSet;
use std::convert::Infallible;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use futures::Stream;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;

use super::ApiState;
use super::error::error_with_code;
use super::server::LongLived;
use crate::clock::system_ms as now_ms;
use crate::service::Stamped;

/// Between two heartbeats of a quiet stream.
const HEARTBEAT: Duration = Duration::from_secs(15);

/// Every event type a filter may name.
pub(super) const EVENT_TYPES: &[&str] = &[
    "manifest_admitted",
    "manifest_rejected",
    "peer_connected",
    "peer_disconnected",
    "peer_pruned",
    "peer_banned",
    "hire_transition",
    "receipt_appended",
    "receipt_verified",
    "hire_settled",
    "outcome_admitted",
    "provider_flagged",
];

/// Query string of `GET /v1/events`.
#[derive(Debug, Default, Deserialize)]
pub(super) struct EventParams {
    /// Comma-separated event types to send (default: all).
    types: Option<String>,
    /// `ndjson` (default) or `sse`.
    format: Option<String>,
}

pub(super) async fn stream(
    State(s): State<ApiState>,
    headers: HeaderMap,
    params: Result<Query<EventParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Query(p) = match params {
        Ok(p) => p,
        Err(e) => {
            return error_with_code(
                StatusCode::BAD_REQUEST,
                "invalid",
                format!("invalid event parameters: {e}"),
            );
        }
    };
    let filter = match p.types.as_deref().map(parse_types).transpose() {
        Ok(f) => f,
        Err(unknown) => {
            return error_with_code(
                StatusCode::BAD_REQUEST,
                "invalid",
                format!(
                    "unknown event type {unknown:?}; the types are: {}",
                    EVENT_TYPES.join(", ")
                ),
            );
        }
    };
    let sse = match p.format.as_deref() {
        None => headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("text/event-stream")),
        Some("sse") => true,
        Some("ndjson") => false,
        Some(other) => {
            return error_with_code(
                StatusCode::BAD_REQUEST,
                "invalid",
                format!("unknown format {other:?}: use ndjson or sse"),
            );
        }
    };
    let rx = s.node.subscribe();
    let node = s.node.clone();
    let stopped: StopFuture = Box::pin(async move { node.stopped().await });
    let first = json!({
        "type": "subscribed",
        "at_ms": now_ms(),
        "node_id": s.node.node_id.to_string(),
    });
    let items = items(first, rx, filter, stopped);
    let mut resp = if sse {
        Sse::new(futures::StreamExt::map(items, |v| {
            Ok::<_, Infallible>(Event::default().data(v.to_string()))
        }))
        .into_response()
    } else {
        let lines = futures::StreamExt::map(items, |v| {
            let mut line = v.to_string();
            line.push('\n');
            Ok::<_, Infallible>(line)
        });
        let mut r = Body::from_stream(lines).into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("application/x-ndjson"),
        );
        r
    };
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    resp.extensions_mut().insert(LongLived);
    resp
}

/// The names in a `types` filter, or the first unknown one.
fn parse_types(list: &str) -> Result<HashSet<String>, String> {
    let mut out = HashSet::new();
    for t in list.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        if !EVENT_TYPES.contains(&t) {
            return Err(t.to_owned());
        }
        out.insert(t.to_owned());
    }
    Ok(out)
}

/// Resolves when the node stops.
type StopFuture = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// The stream's items: `first`, then each event (filtered), `lagged` and `heartbeat` items,
/// until the node stops (`stopped`).
fn items(
    first: Value,
    rx: tokio::sync::broadcast::Receiver<Stamped>,
    filter: Option<HashSet<String>>,
    stopped: StopFuture,
) -> impl Stream<Item = Value> {
    struct St {
        first: Option<Value>,
        rx: tokio::sync::broadcast::Receiver<Stamped>,
        filter: Option<HashSet<String>>,
        stopped: StopFuture,
    }
    let st = St {
        first: Some(first),
        rx,
        filter,
        stopped,
    };
    futures::stream::unfold(st, |mut st| async move {
        if let Some(v) = st.first.take() {
            return Some((v, st));
        }
        loop {
            let got = tokio::select! {
                got = tokio::time::timeout(HEARTBEAT, st.rx.recv()) => got,
                // The node stopped: end the stream (and let the API's shutdown finish).
                () = &mut st.stopped => return None,
            };
            let item = match got {
                Err(_) => json!({"type": "heartbeat", "at_ms": now_ms()}),
                Ok(Ok(e)) => {
                    let Ok(v) = serde_json::to_value(&e) else {
                        continue;
                    };
                    let wanted = st.filter.as_ref().is_none_or(|f| {
                        v.get("type")
                            .and_then(Value::as_str)
                            .is_some_and(|t| f.contains(t))
                    });
                    if !wanted {
                        continue;
                    }
                    v
                }
                Ok(Err(RecvError::Lagged(n))) => {
                    json!({"type": "lagged", "missed": n, "at_ms": now_ms()})
                }
                // The node stopped: end the stream.
                Ok(Err(RecvError::Closed)) => return None,
            };
            return Some((item, st));
        }
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::service::{NodeEvent, Via};

    #[test]
    fn every_event_type_can_be_named_in_a_filter() {
        let h = souk_protocol::Hash([3; 32]);
        let samples = [
            NodeEvent::ManifestAdmitted {
                id: h,
                seq: 1,
                via: Via::Local,
                message_id: None,
                from: None,
            },
            NodeEvent::ManifestRejected {
                via: Via::Gossip,
                message_id: None,
                from: "p".into(),
                reason: "r".into(),
            },
            NodeEvent::PeerConnected {
                peer: "p".into(),
                address: "a".into(),
            },
            NodeEvent::PeerDisconnected { peer: "p".into() },
            NodeEvent::PeerPruned { peer: "p".into() },
            NodeEvent::PeerBanned { peer: "p".into() },
            NodeEvent::HireTransition {
                hire_id: h,
                role: crate::hire::Role::Provider,
                agent: "a".into(),
                from: None,
                to: souk_protocol::hire::HireState::Working,
                entries: 0,
            },
            NodeEvent::ReceiptAppended {
                hire_id: h,
                entries: 1,
            },
            NodeEvent::ReceiptVerified {
                hire_id: h,
                entries: 1,
            },
            NodeEvent::HireSettled {
                hire_id: h,
                role: crate::hire::Role::Client,
                verdict: souk_protocol::hire::Verdict::Accepted,
            },
            NodeEvent::OutcomeAdmitted {
                hire_id: h,
                record_id: h,
                via: Via::Sync,
            },
        ];
        for e in samples {
            let v = serde_json::to_value(&e).unwrap();
            let t = v["type"].as_str().unwrap();
            assert!(EVENT_TYPES.contains(&t), "{t} is not listed");
        }
        assert_eq!(parse_types("hire_transition, bogus"), Err("bogus".into()));
        assert_eq!(parse_types("peer_pruned,,").unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_slow_reader_is_told_what_it_missed_and_filters_apply() {
        let tx = crate::service::EventSender::new();
        let rx = tx.subscribe();
        for _ in 0..(crate::service::events::EVENT_BACKLOG + 10) {
            tx.send(NodeEvent::PeerPruned { peer: "p".into() });
        }
        tx.send(NodeEvent::PeerBanned { peer: "b".into() });
        let filter = Some(parse_types("peer_banned").unwrap());
        let never: StopFuture = Box::pin(std::future::pending());
        let mut s = Box::pin(items(json!({"type": "subscribed"}), rx, filter, never));
        use futures::StreamExt;
        assert_eq!(s.next().await.unwrap()["type"], "subscribed");
        let lagged = s.next().await.unwrap();
        assert_eq!(lagged["type"], "lagged");
        assert_eq!(lagged["missed"], 11);
        let banned = s.next().await.unwrap();
        assert_eq!(banned["type"], "peer_banned");
        assert_eq!(banned["peer"], "b");
        drop(tx);
        assert!(s.next().await.is_none());
    }

    #[tokio::test]
    async fn the_stream_ends_when_the_node_stops_though_events_could_still_come() {
        let tx = crate::service::EventSender::new();
        let rx = tx.subscribe();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let stopped: StopFuture = Box::pin(async move {
            let _ = stop_rx.await;
        });
        let mut s = Box::pin(items(json!({"type": "subscribed"}), rx, None, stopped));
        use futures::StreamExt;
        assert_eq!(s.next().await.unwrap()["type"], "subscribed");
        tx.send(NodeEvent::PeerBanned { peer: "b".into() });
        assert_eq!(s.next().await.unwrap()["type"], "peer_banned");
        drop(stop_tx);
        // The sender is alive (an API handle holds it), yet the stream ends.
        assert!(s.next().await.is_none());
        drop(tx);
    }
}
