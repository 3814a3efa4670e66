//! `souk a2a serve`: the node's hireable agents as A2A (Agent2Agent protocol 0.3.0) agents,
//! so any A2A client can hire a Souk agent and get its output and its verifiable receipts.
//!
//! The gateway holds no hire state: like `souk mcp` it drives the running node through its
//! local API, so every A2A task is an ordinary hire of the node (it survives the gateway,
//! `souk hire status` shows it) and the task id is the hire id. The contract is docs/a2a.md.
//!
//! - [`server`]: the HTTP listener (loopback only), routes, bearer-token check, limits.
//! - [`rpc`]: JSON-RPC 2.0 envelopes and the A2A error codes.
//! - [`card`]: agent cards built from signed manifests, and the gateway's card.
//! - [`task`]: hire -> task (states, status messages, artifacts), message parts -> input.
//! - [`methods`]: `message/send`, `tasks/get`, `tasks/cancel`, and hiring or answering.
//! - [`stream`]: `message/stream`, receipts as server-sent status and artifact updates.
//! - [`offer`]: the other direction, an A2A agent offered on Souk (`souk agent publish --a2a`).

mod card;
mod methods;
pub mod offer;
mod rpc;
mod server;
mod stream;
mod task;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use souk_protocol::Hash;
use zeroize::Zeroizing;

pub use server::serve;

use crate::api::async_client::AsyncApi;

/// Why the gateway could not run.
#[derive(Debug, thiserror::Error)]
pub enum A2aError {
    /// The listen address is not a loopback address.
    #[error(
        "{0} is not a loopback address: the gateway hires with this node's key and money, so it listens on 127.0.0.1 or ::1 only"
    )]
    NotLoopback(SocketAddr),
    /// The listener could not be bound or failed.
    #[error("cannot listen on {addr}: {cause}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        cause: std::io::Error,
    },
}

/// The gateway's settings.
pub struct Settings {
    /// Where to listen (loopback).
    pub listen: SocketAddr,
    /// The bearer token A2A clients must send.
    pub token: Zeroizing<String>,
    /// Longest a blocking `message/send` waits before it answers with a working task.
    pub max_wait: Duration,
}

/// What every request shares.
pub(crate) struct Gateway {
    api: AsyncApi,
    token: Zeroizing<String>,
    /// `http://<listen address>`: the base of every URL in the cards.
    base: String,
    max_wait: Duration,
    /// Context ids clients chose for their tasks (a task's context is its hire id otherwise;
    /// kept in memory: after a restart of the gateway it falls back to the hire id).
    contexts: Mutex<HashMap<Hash, String>>,
}

impl Gateway {
    fn new(api: AsyncApi, settings: &Settings, bound: SocketAddr) -> Arc<Self> {
        Arc::new(Self {
            api,
            token: settings.token.clone(),
            base: format!("http://{bound}"),
            max_wait: settings.max_wait,
            contexts: Mutex::new(HashMap::new()),
        })
    }

    /// The context id of task `id`.
    fn context_of(&self, id: Hash) -> String {
        self.contexts
            .lock()
            .ok()
            .and_then(|m| m.get(&id).cloned())
            .unwrap_or_else(|| id.to_hex())
    }

    /// Remembers the context a client chose for task `id` (at most 100 000 are kept).
    fn set_context(&self, id: Hash, context: String) {
        if let Ok(mut m) = self.contexts.lock() {
            if m.len() >= 100_000 {
                m.clear();
            }
            m.insert(id, context);
        }
    }
}
