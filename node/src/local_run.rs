//! `souk agent run`: an agent run exactly as a hire runs it, with no network and no client.
//!
//! Two nodes start in this process, on loopback, in a private temporary directory: a full
//! node with this node's key as the provider, and a light node with a throwaway key as the
//! client. The provider publishes the agent file (signed with this node's key), the client
//! negotiates and hires it, and the agent then runs through the same hire actor, runtime,
//! sandbox, egress proxy and limits as any hire. Its receipts are a real chain: the client
//! can settle it and export a bundle that `souk verify` accepts. Nothing is announced
//! beyond the two nodes: neither dials anything but the other.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use libp2p::Multiaddr;
use serde_json::Value;
use souk_protocol::discovery::SearchRequest;
use souk_protocol::identity::Keypair;
use souk_store::{Store, StoreConfig};
use tokio::task::JoinHandle;

use crate::agent_file::AgentSpec;
use crate::hire::{HireError, HireRecord, HireSettings, NewHire};
use crate::service::{self, NodeError, NodeHandle, NodeOptions, StartError};
use crate::swarm::SwarmSettings;

/// How long the client may take to find the published agent on the provider.
const FIND_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a local run could not be set up or started.
#[derive(Debug, thiserror::Error)]
pub enum LocalRunError {
    /// The temporary directory or a store could not be created.
    #[error("cannot prepare the run's temporary directory: {0}")]
    Io(#[from] std::io::Error),
    /// A store could not be opened.
    #[error("cannot open the run's store: {0}")]
    Store(#[from] souk_store::StoreError),
    /// A node could not start.
    #[error("cannot start the run's nodes: {0}")]
    Start(#[from] StartError),
    /// A node refused an operation.
    #[error(transparent)]
    Node(#[from] NodeError),
    /// The hire was refused (input schema, limits, ...).
    #[error(transparent)]
    Hire(#[from] HireError),
    /// The provider reported no listening address.
    #[error("the run's provider is not listening on loopback")]
    NotListening,
    /// The client did not find the agent on the provider in time.
    #[error("the run's client did not find the agent on the provider within {0:?} ({1})")]
    NotFound(Duration, String),
}

/// What a local run needs from the node it stands for.
pub struct RunOptions {
    /// The provider's key: this node's identity.
    pub key: Keypair,
    /// How the agent runs: this node's sandbox, ceilings and egress settings.
    pub hires: HireSettings,
    /// Where the temporary directory goes (a directory that holds no keys).
    pub temp_root: PathBuf,
}

/// A provider and a client in this process, ready to hire.
pub struct LocalRun {
    provider: NodeHandle,
    client: NodeHandle,
    tasks: Vec<JoinHandle<()>>,
    // Removed on drop, after the nodes stopped.
    _dir: tempfile::TempDir,
}

impl LocalRun {
    /// Starts both nodes and connects the client to the provider.
    ///
    /// # Errors
    ///
    /// When the directory, a store or a node cannot be set up.
    pub async fn start(opts: RunOptions) -> Result<Self, LocalRunError> {
        std::fs::create_dir_all(&opts.temp_root)?;
        let dir = tempfile::Builder::new()
            .prefix("souk-agent-run-")
            .tempdir_in(&opts.temp_root)?;
        let (provider, ptask) =
            node(dir.path(), "provider", opts.key, false, vec![], opts.hires).await?;
        match client_for(&provider, dir.path()).await {
            Ok((client, ctask)) => Ok(Self {
                provider,
                client,
                tasks: vec![ptask, ctask],
                _dir: dir,
            }),
            Err(e) => {
                // Nothing may outlive a failed start.
                provider.shutdown().await;
                let _ = ptask.await;
                Err(e)
            }
        }
    }

    /// The client node (follow, answer, settle and export the hire through it).
    pub fn client(&self) -> &NodeHandle {
        &self.client
    }

    /// Publishes `spec` on the provider, waits until the client finds it, and hires it with
    /// `input`; returns the client's record of the new hire.
    ///
    /// # Errors
    ///
    /// When publishing fails, the client cannot find the agent, or the hire is refused.
    pub async fn hire(
        &self,
        spec: AgentSpec,
        input: Value,
        deadline_ms: Option<u64>,
    ) -> Result<HireRecord, LocalRunError> {
        let name = spec.name.clone();
        let id = self.provider.publish(spec).await?.manifest_id;
        let search = SearchRequest {
            text: name,
            limit: 50,
            ..Default::default()
        };
        let mut last = String::from("no search answered yet");
        let found = tokio::time::timeout(FIND_TIMEOUT, async {
            let mut pause = Duration::from_millis(10);
            loop {
                match self.client.search(search.clone()).await {
                    Ok(hits) if hits.iter().any(|h| h.id == id) => return,
                    Ok(hits) => last = format!("the search returned {} other agents", hits.len()),
                    Err(e) => last = e.to_string(),
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(250));
            }
        })
        .await;
        if found.is_err() {
            return Err(LocalRunError::NotFound(FIND_TIMEOUT, last));
        }
        let record = self
            .client
            .hires
            .create(NewHire {
                manifest_id: id,
                input,
                max_price: None,
                deadline_ms,
                credentials: Vec::new(),
                retry_busy_ms: None,
            })
            .await?;
        Ok(record)
    }

    /// Stops both nodes (the agent of an unfinished hire is stopped with them) and removes
    /// the temporary directory.
    pub async fn stop(self) {
        self.client.shutdown().await;
        self.provider.shutdown().await;
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// Starts the run's client once the provider listens, bootstrapped to it.
async fn client_for(
    provider: &NodeHandle,
    root: &Path,
) -> Result<(NodeHandle, JoinHandle<()>), LocalRunError> {
    // The listener is reported a moment after start: the client dials what it reports.
    let listening = tokio::time::timeout(FIND_TIMEOUT, async {
        let mut pause = Duration::from_millis(1);
        loop {
            let info = provider.info().await?;
            if !info.listen_addrs.is_empty() {
                return Ok::<_, NodeError>(info.listen_addrs);
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(100));
        }
    })
    .await
    .map_err(|_| LocalRunError::NotListening)??;
    let bootstrap = listening
        .iter()
        .filter_map(|a| format!("{a}/p2p/{}", provider.peer_id).parse().ok())
        .collect();
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| std::io::Error::other(e.to_string()))?;
    let client_key = Keypair::from_seed(&seed);
    let (client, ctask) = node(
        root,
        "client",
        client_key,
        true,
        bootstrap,
        HireSettings::default(),
    )
    .await?;
    Ok((client, ctask))
}

/// Starts one node of the run in `root/name`, listening on a loopback port.
async fn node(
    root: &Path,
    name: &str,
    key: Keypair,
    light: bool,
    bootstrap: Vec<Multiaddr>,
    hires: HireSettings,
) -> Result<(NodeHandle, JoinHandle<()>), LocalRunError> {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir)?;
    let store = Store::open(
        &dir.join("souk.redb"),
        &StoreConfig {
            cache_size: 4 << 20,
        },
    )?;
    let mut sealing = zeroize::Zeroizing::new([0u8; 32]);
    getrandom::fill(sealing.as_mut()).map_err(|e| std::io::Error::other(e.to_string()))?;
    let opts = NodeOptions {
        light,
        listen: vec![
            "/ip4/127.0.0.1/tcp/0"
                .parse()
                .map_err(|e: libp2p::multiaddr::Error| std::io::Error::other(e.to_string()))?,
        ],
        bootstrap,
        swarm: SwarmSettings {
            light,
            heartbeat: Duration::from_millis(200),
            ..SwarmSettings::default()
        },
        // Short-lived: the run's manifest is signed with this node's key but never announced
        // beyond the run; a copy taken from a bundle expires soon.
        manifest_ttl_ms: 600_000,
        tick: Duration::from_secs(30),
        sealing_secret: Arc::new(sealing),
        work_dir: dir.join("hires"),
        hires,
    };
    Ok(service::start(key, Arc::new(store), opts).await?)
}
