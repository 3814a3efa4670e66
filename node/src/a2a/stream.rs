//! `message/stream`: the task first, then every new receipt as a `working` status update,
//! then at the end the artifacts and the final status (`final: true`), or at a question the
//! `input-required` status (`final: true`; the client answers with a new `message/stream`).
//! Each event is a JSON-RPC response carrying the event, sent as server-sent events.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::Stream;
use serde_json::Value;
use souk_protocol::hire::HireState;
use tokio::sync::mpsc;

use super::Gateway;
use super::methods::Endpoint;
use super::rpc::{self, RpcError};
use super::task;

/// Events buffered for a slow client before the follower waits for it.
const BUFFER: usize = 64;
/// One long-poll of the receipts while streaming.
const POLL: Duration = Duration::from_secs(20);

/// The response of a `message/stream` request.
pub(super) async fn respond(
    gw: Arc<Gateway>,
    endpoint: Endpoint,
    id: Value,
    params: Value,
) -> Response {
    let (tx, rx) = mpsc::channel::<Value>(BUFFER);
    tokio::spawn(async move {
        let result = follow(&gw, &endpoint, &id, &params, &tx).await;
        if let Err(e) = result {
            // Closed: the client went away, nothing to tell.
            let _ = tx.send(rpc::error(&id, &e)).await;
        }
    });
    Sse::new(events(rx))
        .keep_alive(KeepAlive::default())
        .into_response()
}

fn events(mut rx: mpsc::Receiver<Value>) -> impl Stream<Item = Result<Event, Infallible>> {
    let values = futures::stream::poll_fn(move |cx| rx.poll_recv(cx));
    futures::StreamExt::map(values, |v| Ok(Event::default().data(v.to_string())))
}

/// Starts or answers, then sends the task's events until it ends or asks a question.
async fn follow(
    gw: &Gateway,
    endpoint: &Endpoint,
    id: &Value,
    params: &Value,
    tx: &mpsc::Sender<Value>,
) -> Result<(), RpcError> {
    let started = gw.start(endpoint, params).await?;
    let hid = started.hire.hire_id;
    let context = gw.context_of(hid);
    let send = |event: Value| async move { tx.send(rpc::result(id, event)).await.is_ok() };
    if !send(task::task(&started.hire, &context, Vec::new())).await {
        return Ok(());
    }
    let mut from = started.from;
    loop {
        let view = gw.page(hid, from, POLL).await?;
        let r = view.hire;
        for s in &view.steps {
            from = s.seq + 1;
            if !send(task::step_update(&r, &context, s)).await {
                return Ok(());
            }
        }
        if r.follow_done(from) {
            for a in gw.artifacts(&r).await {
                if !send(task::artifact_update(&r, &context, a)).await {
                    return Ok(());
                }
            }
            // The stream ends here: `final` whatever the state (a hire broken off with an
            // error is still `working`, and `tasks/get` follows it).
            send(task::status_update(&r, &context, true)).await;
            return Ok(());
        }
        if r.state == HireState::InputRequired && from >= r.entries {
            send(task::status_update(&r, &context, true)).await;
            return Ok(());
        }
        if tx.is_closed() {
            return Ok(());
        }
    }
}
