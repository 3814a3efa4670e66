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

// ---- hiring ---------------------------------------------------------------------------------

/// Python (stdlib only) that every scripted test agent starts with. It reads the `start`
/// message into `job` (the input) and `checkpoint`, writes its pid to `job["pidfile"]` when
/// given, and runs a stdin reader thread that queues node messages on `inbox` and exits on
/// `cancel` (unless `job["ignore_cancel"]`, so that the node has to kill it). `send(type,
/// **fields)` writes one protocol message and flushes it.
pub const AGENT_PRELUDE: &str = r#"import json, os, queue, sys, threading, time

inbox = queue.Queue()


def send(kind, **fields):
    fields["type"] = kind
    sys.stdout.write(json.dumps(fields, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def _read():
    for line in sys.stdin:
        if not line.strip():
            continue
        msg = json.loads(line)
        if msg.get("type") == "cancel" and not job.get("ignore_cancel"):
            os._exit(0)
        inbox.put(msg)
    inbox.put(None)


start = json.loads(sys.stdin.readline())
job = start.get("input") or {}
checkpoint = start.get("checkpoint")
if job.get("pidfile"):
    with open(job["pidfile"], "w") as f:
        f.write(str(os.getpid()))
threading.Thread(target=_read, daemon=True).start()
"#;

/// Writes [`AGENT_PRELUDE`] followed by `body` as `agent.py` into the package directory
/// `package` (created; it must hold nothing else that changes, since the provider checks
/// its digest before every run) and returns a spec that runs it with `python3`: price
/// `per_hire` (USD micro-units), no hourly price, 10 min maximum, 2 slots, and the
/// package's real digest. The description contains "hiring test agent" and the name.
pub fn script_agent(package: &Path, name: &str, body: &str, per_hire: u64) -> AgentSpec {
    std::fs::create_dir_all(package).unwrap_or_else(|e| panic!("create {package:?}: {e}"));
    std::fs::write(
        package.join("agent.py"),
        format!("{AGENT_PRELUDE}\n{body}\n"),
    )
    .unwrap_or_else(|e| panic!("write the agent script: {e}"));
    let digest = souk_node::agent_file::package_digest(package)
        .unwrap_or_else(|e| panic!("package digest: {e}"));
    let mut spec = agent(
        name,
        &["testing"],
        &format!("hiring test agent {name}"),
        per_hire,
    );
    spec.runtime_digest = digest.to_hex();
    spec.run = RunSpec {
        command: vec!["python3".into(), "agent.py".into()],
        workdir: package.to_path_buf(),
    };
    spec
}

/// Starts a full provider node in `root/provider` and a client node (light if
/// `light_client`) in `root/client` that dials it, with seeds `seed(base)` and
/// `seed(base + 1)`.
pub async fn provider_and_client(
    root: &Path,
    base: u16,
    light_client: bool,
) -> (TestNode, TestNode) {
    let pdir = root.join("provider");
    let cdir = root.join("client");
    for d in [&pdir, &cdir] {
        std::fs::create_dir_all(d).unwrap_or_else(|e| panic!("create {d:?}: {e}"));
    }
    let provider = start_node(&pdir, seed(base), false, vec![]).await;
    let client = start_node(
        &cdir,
        seed(base + 1),
        light_client,
        vec![provider.addr.clone()],
    )
    .await;
    (provider, client)
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
) -> souk_node::hire::NewHire {
    souk_node::hire::NewHire {
        manifest_id: manifest_id.into(),
        input,
        max_price,
        deadline_ms,
    }
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

/// The hire's record on `node`; panics if the node does not know the hire.
pub async fn hire_record(
    node: &NodeHandle,
    id: souk_protocol::Hash,
) -> souk_node::hire::HireRecord {
    node.hires
        .get(id)
        .await
        .unwrap_or_else(|e| panic!("get hire {}: {e}", id.short()))
        .unwrap_or_else(|| panic!("no hire {} on this node", id.short()))
}

/// Waits until `node`'s record of hire `id` satisfies `ok`; returns that record.
pub async fn wait_for_record(
    node: &NodeHandle,
    id: souk_protocol::Hash,
    what: &str,
    ok: impl Fn(&souk_node::hire::HireRecord) -> bool,
) -> souk_node::hire::HireRecord {
    let ok = &ok;
    wait_for_some(what, || async move {
        node.hires.get(id).await.ok().flatten().filter(ok)
    })
    .await
}

/// Waits until `node`'s record of hire `id` is in `state` (`working`, `completed`, ...).
/// Fails at once, showing the record, if the hire ends in another state.
pub async fn wait_for_state(
    node: &NodeHandle,
    id: souk_protocol::Hash,
    state: &str,
) -> souk_node::hire::HireRecord {
    wait_for_some(
        &format!("hire {} to be {state}", id.short()),
        || async move {
            let r = node.hires.get(id).await.ok().flatten()?;
            if r.state == state {
                return Some(r);
            }
            assert!(
                !r.state().is_terminal(),
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
pub async fn all_steps(
    node: &NodeHandle,
    id: souk_protocol::Hash,
) -> Vec<souk_node::hire::manager::StepView> {
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
    id: souk_protocol::Hash,
    disclose: bool,
) -> (Vec<u8>, souk_protocol::verify::BundleReport) {
    let bytes = node
        .hires
        .bundle(id, disclose)
        .await
        .unwrap_or_else(|e| panic!("bundle of {}: {e}", id.short()));
    let report = souk_protocol::verify::verify_bundle_bytes(
        &bytes,
        souk_protocol::verify::SignatureCheck::OneByOne,
    )
    .unwrap_or_else(|v| panic!("the bundle of {} does not verify: {v}", id.short()));
    (bytes, report)
}
