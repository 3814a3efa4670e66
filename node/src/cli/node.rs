//! `souk node run` (the node in the foreground) and `souk node info`.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use souk_node::api::{self, ApiLimits, ApiState};
use souk_node::config::{Config, Mode};
use souk_node::data_dir::DataDir;
use souk_node::fd_limit;

use super::Ctx;
use super::error::usage;
use souk_node::hire::HireSettings;
use souk_node::service::{self, NodeInfo, NodeOptions};
use souk_node::swarm::SwarmSettings;
use souk_store::StoreConfig;

#[derive(Debug, Subcommand)]
pub(crate) enum NodeCommand {
    /// Run the node in the foreground until Ctrl-C or SIGTERM.
    Run(RunArgs),
    /// Show the running node's id, mode, addresses, peers and manifest count.
    Info,
    /// Print the running node's events as they happen (manifests admitted or rejected,
    /// peers, hire transitions, receipts) until Ctrl-C or the node stops.
    Events(EventsArgs),
}

#[derive(Debug, Args)]
pub(crate) struct EventsArgs {
    /// Only these event types, comma-separated (e.g. `hire_transition,manifest_admitted`;
    /// docs/api.md lists them).
    #[arg(long, value_name = "LIST")]
    types: Option<String>,
    /// Print each event as one line of JSON (as the API sends it), the first being
    /// `subscribed`.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// Listen address (multiaddr); repeatable. Overrides `listen` in config.toml.
    #[arg(long = "listen", value_name = "ADDR")]
    listen: Vec<String>,
    /// Peer to dial at start (multiaddr with /p2p/ID); repeatable. Adds to config.toml.
    #[arg(long = "bootstrap", value_name = "ADDR")]
    bootstrap: Vec<String>,
    /// Local API address (loopback). Overrides `api` in config.toml.
    #[arg(long, value_name = "ADDR")]
    api: Option<String>,
    /// Serve Prometheus metrics on `GET http://ADDR/metrics` (no authentication: loopback
    /// recommended; port 0 picks a free port, shown by `souk node info`). Overrides `metrics`
    /// in config.toml.
    #[arg(long, value_name = "ADDR")]
    metrics: Option<String>,
    /// Run as a light node whatever config.toml says.
    #[arg(long)]
    light: bool,
    /// Start with an empty store when souk.redb is missing or empty (or delete it first):
    /// the node forgets its agents, their sequence numbers and its hires.
    #[arg(long)]
    reset_store: bool,
    /// Put a testnet's connection gate in the transport (partitions and link delays set
    /// through `POST /v1/testnet/gate`). For `souk-testnet run` only.
    #[arg(long, hide = true)]
    testnet_gate: bool,
    /// Run the node's clock RATE times faster than the system clock from the Unix time
    /// EPOCH_MS on (`RATE@EPOCH_MS`): deadlines, expiries and timestamps follow it. Every
    /// node of a testnet gets the same value. For `souk-testnet run` only.
    #[arg(long, hide = true, value_name = "RATE@EPOCH_MS")]
    testnet_clock: Option<String>,
    /// Log filter (tracing syntax), e.g. `info` or `souk_node=debug`. Env: RUST_LOG.
    #[arg(
        long,
        env = "RUST_LOG",
        default_value = "info,libp2p_kad=error,libp2p_gossipsub=warn"
    )]
    log: String,
}

pub(crate) fn run(ctx: &Ctx, cmd: NodeCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        NodeCommand::Run(args) => run_node(ctx, args),
        NodeCommand::Events(args) => super::events::run(ctx, &args.types, args.json),
        NodeCommand::Info => {
            let info: NodeInfo = ctx.connect()?.get("/v1/info")?;
            if ctx.json {
                super::print_json(&info)?;
            } else {
                out!("node      {}", info.node_id);
                out!("peer id   {}", info.peer_id);
                out!("mode      {}", info.mode);
                for a in &info.listen_addrs {
                    out!("listen    {a}");
                }
                out!("peers     {}", info.peers.len());
                out!("manifests {}", info.manifests);
                out!("agents    {}", info.agents);
                out!("sandbox   {}", info.sandbox);
                if let Some(url) = &info.metrics_url {
                    out!("metrics   {url}");
                }
                if let Some(d) = &info.descriptors {
                    let limit = d.limit.map_or("unlimited".to_owned(), |l| l.to_string());
                    let in_use = d.in_use.map_or("?".to_owned(), |n| n.to_string());
                    out!("files     {in_use} open, limit {limit}");
                    out!(
                        "api       {} of at most {} connections",
                        d.api_connections,
                        d.api_max_connections
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn run_node(ctx: &Ctx, args: RunArgs) -> anyhow::Result<ExitCode> {
    use std::io::IsTerminal;
    let dir = &ctx.dir;
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&args.log)
                .map_err(|e| usage!("invalid --log filter {:?}: {e}", args.log))?,
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    if !dir.is_initialized() {
        return Err(usage!(
            "{} is not initialized: run `{}` first",
            dir.root().display(),
            ctx.cmd(if args.light { "init --light" } else { "init" })
        ));
    }
    if let Some(c) = &args.testnet_clock {
        let clock =
            souk_node::clock::Clock::parse(c).map_err(|e| usage!("--testnet-clock: {e}"))?;
        souk_node::clock::install(clock).map_err(|e| usage!("--testnet-clock: {e}"))?;
        tracing::warn!(
            "testnet clock: the node's time runs {}x faster than the system clock",
            clock.rate
        );
    }
    let mut config = dir.config()?;
    if args.light {
        config.mode = Mode::Light;
    }
    if !args.listen.is_empty() {
        config.listen = args.listen.clone();
    }
    config.bootstrap.extend(args.bootstrap.iter().cloned());
    if let Some(api) = &args.api {
        config.api = api.clone();
    }
    if let Some(metrics) = &args.metrics {
        config.metrics = metrics.clone();
    }
    config
        .validate("command line")
        .map_err(anyhow::Error::new)?;
    let hires = hire_settings(dir, &config)?;
    let work_dir = work_dir(dir, &config);
    let key = dir.identity()?;
    let sealing_secret = std::sync::Arc::new(dir.sealing_secret()?);
    let token = dir.api_token()?;
    let light = config.mode == Mode::Light;
    let store = souk_node::store_file::open(
        dir,
        &StoreConfig {
            cache_size: (config.cache_size_mib as usize) << 20,
        },
        args.reset_store,
    )?;
    // Descriptors: raise the soft limit to the hard one, and keep the API's share small
    // enough that the swarm, the store and hired agents never starve.
    let fds = fd_limit::raise();
    let api_limits = ApiLimits {
        max_connections: fd_limit::api_connection_cap(fds.now, config.max_connections),
        ..ApiLimits::default()
    };
    tracing::info!(
        "open files limit {} (was {}); the local API holds at most {} connections",
        fds.now.map_or("unlimited".into(), |n| n.to_string()),
        fds.before.map_or("unlimited".into(), |n| n.to_string()),
        api_limits.max_connections
    );
    let opts = NodeOptions {
        light,
        listen: config
            .listen
            .iter()
            .filter_map(|a| a.parse().ok())
            .collect(),
        bootstrap: config
            .bootstrap
            .iter()
            .filter_map(|a| a.parse().ok())
            .collect(),
        swarm: SwarmSettings {
            light,
            max_connections: config.max_connections,
            target_peers: config.target_peers,
            idle_timeout: config.idle_timeout(),
            mesh_n: config.mesh_n,
            gate: args
                .testnet_gate
                .then(|| std::sync::Arc::new(souk_node::swarm::gate::Gate::default())),
            ..SwarmSettings::default()
        },
        manifest_ttl_ms: config.manifest_ttl_secs * 1000,
        tick: Duration::from_secs(config.sweep_interval_secs),
        sealing_secret,
        work_dir,
        hires,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let mut signals = StopSignals::install();
        let (node, task) = service::start(key, Arc::new(store), opts).await?;
        let stop = Arc::new(tokio::sync::Notify::new());
        let state = ApiState {
            node: node.clone(),
            token: Arc::new(token),
            shutdown: stop.clone(),
        };
        // The API server stops on its own signal, so it never takes the permit meant for
        // the main task (POST /v1/shutdown notifies `stop`).
        let (api_stop_tx, mut api_stop_rx) = tokio::sync::watch::channel(false);
        // Bound before the API, so `GET /v1/info` names it as soon as the API answers.
        let metrics_task = match config.metrics_addr() {
            Some(addr) => {
                let mut stop_rx = api_stop_rx.clone();
                let (bound, task) = souk_node::metrics::endpoint::serve(
                    addr,
                    &node.metrics,
                    async move {
                        let _ = stop_rx.wait_for(|stopped| *stopped).await;
                    },
                )
                .await
                .with_context(|| {
                    format!("cannot bind the metrics endpoint on {}", config.metrics)
                })?;
                if bound.ip().is_loopback() {
                    tracing::info!("metrics on http://{bound}/metrics");
                } else {
                    tracing::warn!(
                        "metrics on http://{bound}/metrics, beyond loopback and without authentication: anyone who reaches it reads the node's metrics"
                    );
                }
                Some(task)
            }
            None => None,
        };
        let (api_addr, api_task) =
            api::serve_with(config.api_addr(), state, api_limits, async move {
                let _ = api_stop_rx.wait_for(|stopped| *stopped).await;
            })
            .await
            .with_context(|| format!("cannot bind the local API on {}", config.api))?;
        dir.write_api_addr(api_addr)?;
        dir.write_pid()?;
        tracing::info!(
            "node {} ({}) running; API on http://{api_addr}",
            node.node_id,
            if light { "light" } else { "full" }
        );
        signals.wait(&stop).await;
        tracing::info!("shutting down");
        let _ = api_stop_tx.send(true);
        node.shutdown().await;
        let _ = task.await;
        let _ = api_task.await;
        if let Some(task) = metrics_task {
            let _ = task.await;
        }
        dir.clear_api_addr();
        tracing::info!("stopped cleanly");
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Where hires' working directories go: `work_dir` from the config, else `<data dir>-work`
/// (beside the data directory, never inside it: agents must not reach its keys).
/// Absolute: the sandbox binds hires' directories and proxy sockets by path, so a relative
/// `--data-dir` must not make them relative.
pub(crate) fn work_dir(dir: &DataDir, config: &Config) -> std::path::PathBuf {
    let path = if config.work_dir.is_empty() {
        let mut name = dir.root().as_os_str().to_owned();
        name.push("-work");
        std::path::PathBuf::from(name)
    } else {
        std::path::PathBuf::from(&config.work_dir)
    };
    std::path::absolute(&path).unwrap_or(path)
}

/// How hires run on this node: the sandbox (probed now, so a node that cannot confine its
/// agents says exactly what is missing before it starts), ceilings, egress.
pub(crate) fn hire_settings(dir: &DataDir, config: &Config) -> anyhow::Result<HireSettings> {
    let mode = config
        .sandbox_mode()
        .map_err(|m| anyhow::anyhow!("sandbox: {m}"))?;
    let exe = std::env::current_exe().context("cannot find the souk executable")?;
    let probe_config = souk_runtime::sandbox::ProbeConfig {
        mode,
        helper: vec![exe.into_os_string(), "sandbox-helper".into()],
        bwrap: None,
        cgroup_parent: None,
        extra_ro_paths: Vec::new(),
    };
    let probed = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(souk_runtime::sandbox::probe(&probe_config));
    let support = match probed {
        Ok(s) => s,
        Err(e) => anyhow::bail!(
            "cannot confine hired agents: {e}\n(set sandbox = \"auto\" or \"off\" in {} to run without the sandbox, at your own risk)",
            dir.path("config.toml").display()
        ),
    };
    for w in &support.warnings {
        tracing::warn!("sandbox: {w}");
    }
    if !support.is_isolated() && mode != souk_runtime::sandbox::SandboxMode::Off {
        tracing::warn!(
            "hired agents will run WITHOUT a sandbox (no namespaces): they can read what this user can read; install bubblewrap"
        );
    }
    tracing::info!("sandbox: {}", support.summary());
    Ok(HireSettings {
        sandbox: Some(support),
        ceilings: config.limits.ceilings(),
        egress: config.egress_settings()?,
        workdir_retention: Duration::from_secs(config.workdir_retention_secs),
        standby_sandboxes: config.standby_sandboxes,
        protected: vec![
            std::path::absolute(dir.root()).unwrap_or_else(|_| dir.root().to_owned()),
            work_dir(dir, config),
        ],
    })
}

/// Ctrl-C and SIGTERM, installed before anything else starts so an early signal still
/// stops the node cleanly.
struct StopSignals {
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    int: Option<tokio::signal::unix::Signal>,
}

impl StopSignals {
    fn install() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let term = signal(SignalKind::terminate())
                .map_err(|e| tracing::warn!("cannot watch SIGTERM: {e}"))
                .ok();
            let int = signal(SignalKind::interrupt())
                .map_err(|e| tracing::warn!("cannot watch SIGINT: {e}"))
                .ok();
            Self { term, int }
        }
        #[cfg(not(unix))]
        Self {}
    }

    async fn wait(&mut self, stop: &tokio::sync::Notify) {
        #[cfg(unix)]
        {
            async fn next(s: &mut Option<tokio::signal::unix::Signal>) {
                match s {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            }
            tokio::select! {
                _ = next(&mut self.term) => {}
                _ = next(&mut self.int) => {}
                _ = stop.notified() => {}
            }
        }
        #[cfg(not(unix))]
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = stop.notified() => {}
        }
    }
}
