//! Starting in-process test nodes, and waiting for conditions with a timeout.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use libp2p::Multiaddr;
use souk_protocol::Keypair;
use souk_store::{Store, StoreConfig};

use crate::service::{self, NodeHandle, NodeOptions};
use crate::swarm::SwarmSettings;

/// Generous: CI runs on 2 cores with other tests in parallel.
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// A node started in-process.
pub struct TestNode {
    pub handle: NodeHandle,
    pub task: tokio::task::JoinHandle<()>,
    /// Its dialable address (with /p2p/).
    pub addr: Multiaddr,
    pub seed: [u8; 32],
    /// Its store (weak: a test node kept after shutdown must not hold the file open).
    pub store: std::sync::Weak<Store>,
}

impl TestNode {
    /// The node's store, while the node runs.
    pub fn store(&self) -> Arc<Store> {
        self.store
            .upgrade()
            .unwrap_or_else(|| panic!("the node's store is closed"))
    }
}

/// Polls `check` every 25 ms until it returns true; panics with `what` after [`TIMEOUT`].
pub async fn wait_for<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    wait_for_some(what, || {
        let f = check();
        async move { f.await.then_some(()) }
    })
    .await
}

/// Polls `check` every 25 ms until it returns `Some`; panics with `what` after [`TIMEOUT`].
pub async fn wait_for_some<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {TIMEOUT:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The key seed of test node `n`.
pub fn seed(n: u16) -> [u8; 32] {
    *blake3::hash(format!("souk test node {n}").as_bytes()).as_bytes()
}

/// Options of a test node in `dir`: loopback TCP on a free port, fast heartbeat and
/// housekeeping, hires under `dir/hires`.
pub fn test_options(dir: &Path, light: bool, bootstrap: Vec<Multiaddr>) -> NodeOptions {
    NodeOptions {
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
        sealing_secret: Arc::new(zeroize::Zeroizing::new(
            *blake3::hash(&[b"sealing".as_slice(), dir.as_os_str().as_encoded_bytes()].concat())
                .as_bytes(),
        )),
        work_dir: dir.join("hires"),
        hires: crate::hire::HireSettings::default(),
    }
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
    std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("create {dir:?}: {e}"));
    let store = Store::open(
        &dir.join("souk.redb"),
        &StoreConfig {
            cache_size: 4 << 20,
        },
    )
    .unwrap_or_else(|e| panic!("open store: {e}"));
    let mut opts = test_options(dir, light, bootstrap);
    adjust(&mut opts);
    let store = Arc::new(store);
    let weak = Arc::downgrade(&store);
    let (handle, task) = service::start(Keypair::from_seed(&seed), store, opts)
        .await
        .unwrap_or_else(|e| panic!("start node: {e}"));
    let addr = wait_for_some("the node to listen", || {
        let handle = handle.clone();
        async move {
            let info = handle.info().await.ok()?;
            info.listen_addrs.first().cloned()
        }
    })
    .await;
    let addr: Multiaddr = format!("{addr}/p2p/{}", handle.peer_id)
        .parse()
        .unwrap_or_else(|e| panic!("{e}"));
    TestNode {
        handle,
        task,
        addr,
        seed,
        store: weak,
    }
}

/// Starts a full provider node in `root/provider` and a client node (light if
/// `light_client`) in `root/client` that dials it, with seeds `seed(base)` and
/// `seed(base + 1)`.
pub async fn provider_and_client(
    root: &Path,
    base: u16,
    light_client: bool,
) -> (TestNode, TestNode) {
    provider_and_client_with(root, base, light_client, |_| {}).await
}

/// Like [`provider_and_client`], with a chance to adjust the provider's options.
pub async fn provider_and_client_with(
    root: &Path,
    base: u16,
    light_client: bool,
    adjust_provider: impl FnOnce(&mut NodeOptions),
) -> (TestNode, TestNode) {
    let provider = start_node_with(
        &root.join("provider"),
        seed(base),
        false,
        vec![],
        adjust_provider,
    )
    .await;
    let client = start_node(
        &root.join("client"),
        seed(base + 1),
        light_client,
        vec![provider.addr.clone()],
    )
    .await;
    (provider, client)
}
