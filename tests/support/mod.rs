//! Shared harness for the end-to-end tests: in-process nodes on loopback TCP with their own
//! temporary stores, event-driven waits with timeouts (never fixed sleeps), and fixtures.
#![allow(dead_code, unreachable_pub)]

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use libp2p::Multiaddr;
use souk_node::agent_file::{AgentSpec, RunSpec};
use souk_node::service::{self, NodeHandle, NodeOptions};
use souk_node::swarm::SwarmSettings;
use souk_protocol::Keypair;
use souk_store::{Store, StoreConfig};

/// Generous: CI runs on 2 cores with other tests in parallel.
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// A node started in-process.
pub struct TestNode {
    pub handle: NodeHandle,
    pub task: tokio::task::JoinHandle<()>,
    /// Its dialable address (with /p2p/).
    pub addr: Multiaddr,
    pub seed: [u8; 32],
}

/// Polls `check` every 25 ms until it returns true; panics with `what` after [`TIMEOUT`].
pub async fn wait_for<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        if check().await {
            return;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {TIMEOUT:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

pub fn seed(n: u16) -> [u8; 32] {
    *blake3::hash(format!("souk test node {n}").as_bytes()).as_bytes()
}

/// Starts a node whose store lives in `dir`.
pub async fn start_node(
    dir: &Path,
    seed: [u8; 32],
    light: bool,
    bootstrap: Vec<Multiaddr>,
) -> TestNode {
    start_node_with(dir, seed, light, bootstrap, |_| {}).await
}

/// Like [`start_node`], with a chance to adjust the options.
pub async fn start_node_with(
    dir: &Path,
    seed: [u8; 32],
    light: bool,
    bootstrap: Vec<Multiaddr>,
    adjust: impl FnOnce(&mut NodeOptions),
) -> TestNode {
    let store = Store::open(
        &dir.join("souk.redb"),
        &StoreConfig {
            cache_size: 4 << 20,
        },
    )
    .unwrap_or_else(|e| panic!("open store: {e}"));
    let opts = NodeOptions {
        light,
        listen: vec![
            "/ip4/127.0.0.1/tcp/0"
                .parse()
                .unwrap_or_else(|e| panic!("{e}")),
        ],
        bootstrap,
        swarm: SwarmSettings {
            light,
            heartbeat: Duration::from_millis(200),
            mesh_n: 4,
            ..SwarmSettings::default()
        },
        manifest_ttl_ms: 3_600_000,
        tick: Duration::from_millis(500),
        sealing_public: [7; 32],
        work_dir: dir.join("hires"),
    };
    let mut opts = opts;
    adjust(&mut opts);
    let (handle, task) = service::start(Keypair::from_seed(&seed), Arc::new(store), opts)
        .await
        .unwrap_or_else(|e| panic!("start node: {e}"));
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    let addr = loop {
        let info = handle.info().await.unwrap_or_else(|e| panic!("{e}"));
        if let Some(a) = info.listen_addrs.first() {
            break a.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the node never started listening"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let addr: Multiaddr = format!("{addr}/p2p/{}", handle.peer_id)
        .parse()
        .unwrap_or_else(|e| panic!("{e}"));
    TestNode {
        handle,
        task,
        addr,
        seed,
    }
}

/// An agent spec that passes every manifest rule.
pub fn agent(name: &str, capabilities: &[&str], description: &str, per_hire: u64) -> AgentSpec {
    let mut caps: Vec<String> = capabilities.iter().map(|s| s.to_string()).collect();
    caps.sort();
    AgentSpec {
        name: name.into(),
        description: description.into(),
        capabilities: caps,
        input_schema: r#"{"type":"object"}"#.into(),
        output_schema: r#"{"type":"object"}"#.into(),
        hosts: vec![],
        tools: vec![],
        credentials: vec![],
        currency: "USD".into(),
        per_hire,
        per_hour: 0,
        max_duration_ms: 600_000,
        max_concurrency: 2,
        max_input_bytes: 1 << 20,
        runtime_digest: blake3::hash(name.as_bytes()).to_hex().to_string(),
        run: RunSpec {
            command: vec!["true".into()],
            workdir: "/".into(),
        },
    }
}

/// Whether `node`'s search for `text` returns manifest `id`.
pub async fn finds(node: &NodeHandle, text: &str, id: &str) -> bool {
    let req = souk_protocol::discovery::SearchRequest {
        text: text.into(),
        limit: 50,
        ..Default::default()
    };
    node.search(req)
        .await
        .map(|hits| hits.iter().any(|h| h.id == id))
        .unwrap_or(false)
}
