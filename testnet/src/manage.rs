//! `up`, `status` and `down`: a network that outlives this program, described by
//! `DIR/testnet.json`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, ValueEnum};
use serde::Serialize;

use crate::locate;
use crate::network::{self, Network, STATE_FILE, State};
use crate::procs;
use crate::souk::{SearchHit, Souk, short};

/// The default network directory.
pub(crate) const DEFAULT_DIR: &str = ".souk-testnet";

/// Which agents `up` publishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum AgentSet {
    /// csv-analyst on node-0, text-summarizer on node-1 (if its binary is built).
    Examples,
}

/// `up` options.
#[derive(Debug, Args)]
pub(crate) struct UpArgs {
    /// Full nodes (1 to 64).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=64))]
    nodes: u16,
    /// Light nodes (0 to 64); each bootstraps to two full nodes.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(0..=64))]
    light: u16,
    /// Publish agents once the network is up.
    #[arg(long, value_enum, value_name = "SET")]
    agents: Option<AgentSet>,
    /// The network's directory: one data directory per node, logs, testnet.json.
    #[arg(long, default_value = DEFAULT_DIR, value_name = "DIR")]
    dir: PathBuf,
    /// The first full node's port on 127.0.0.1 [default: a free port].
    #[arg(long, value_name = "PORT")]
    port: Option<u16>,
    /// The example agents [default: ./examples, else the workspace's examples/].
    #[arg(long, value_name = "DIR")]
    examples: Option<PathBuf>,
    /// Print the network's description (as in DIR/testnet.json) as JSON on stdout; progress
    /// still goes to stderr.
    #[arg(long)]
    json: bool,
}

/// `status` options.
#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    /// The network's directory.
    #[arg(long, default_value = DEFAULT_DIR, value_name = "DIR")]
    dir: PathBuf,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// `down` options.
#[derive(Debug, Args)]
pub(crate) struct DownArgs {
    /// The network's directory.
    #[arg(long, default_value = DEFAULT_DIR, value_name = "DIR")]
    dir: PathBuf,
    /// Print how each node stopped as JSON.
    #[arg(long)]
    json: bool,
}

/// Starts a network and leaves it running.
pub(crate) fn up(souk: Option<PathBuf>, args: &UpArgs) -> anyhow::Result<ExitCode> {
    procs::install_signal_handler()?;
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("cannot create {}", args.dir.display()))?;
    let dir = std::path::absolute(&args.dir)
        .with_context(|| format!("cannot resolve {}", args.dir.display()))?;
    let shown = args.dir.display().to_string();
    let me = locate::self_command();
    if dir.join(STATE_FILE).is_file() {
        let old = State::load(&dir)?;
        let alive = old
            .nodes
            .iter()
            .filter(|n| crate::nodes::live_pid(n).is_some())
            .count();
        if alive > 0 {
            anyhow::bail!(
                "a testnet is already running in {shown} ({alive} live node process(es)): see \
                 `{me} status --dir {shown}`, stop it with `{me} down --dir {shown}`, or pass \
                 another --dir"
            );
        }
        eprintln!("{shown}/{STATE_FILE} describes a stopped network; replacing it");
        std::fs::remove_file(dir.join(STATE_FILE))
            .with_context(|| format!("cannot remove {shown}/{STATE_FILE}"))?;
    }
    let bin = locate::souk(souk, true)?;
    let examples = match args.agents {
        Some(AgentSet::Examples) => {
            if !locate::have_python3() {
                anyhow::bail!(
                    "the csv-analyst example agent runs with python3, which is not on PATH: \
                     install Python 3, or leave out --agents"
                );
            }
            Some(locate::examples(args.examples.as_deref())?)
        }
        None => None,
    };
    let mut net = Network::new(Souk { bin }, dir.clone());
    match start(&mut net, args, examples.as_deref()) {
        Ok(()) => {}
        Err(e) => {
            if procs::interrupted() {
                procs::wait_for_exit();
            }
            let report = procs::stop_all();
            eprintln!(
                "start-up failed; stopped what had started: {}",
                report.describe()
            );
            return Err(e);
        }
    }
    let state = net.write_state()?;
    procs::detach();
    if args.json {
        println!("{}", serde_json::to_string(&net.state())?);
        return Ok(ExitCode::SUCCESS);
    }

    let souk = locate::souk_command(&net.souk.bin);
    println!();
    println!(
        "Testnet running in {shown}: {} full node{}, {} light node{}",
        args.nodes,
        if args.nodes == 1 { "" } else { "s" },
        args.light,
        if args.light == 1 { "" } else { "s" }
    );
    for n in &net.nodes {
        println!(
            "  {:<9} {:<5} pid {:<7} p2p {:<16} api {:<16}{}",
            n.name,
            n.mode,
            n.pid,
            n.addrs
                .first()
                .map_or_else(String::new, |a| network::host_port(a)),
            n.api,
            if n.agents.is_empty() {
                String::new()
            } else {
                format!("  agents: {}", n.agents.join(", "))
            }
        );
    }
    let client = net
        .nodes
        .iter()
        .find(|n| !n.is_full())
        .or_else(|| net.nodes.first())
        .map_or_else(|| "node-0".to_owned(), |n| n.name.clone());
    println!();
    println!("Use it with the normal CLI (each node is a data directory):");
    println!("  {souk} --data-dir {shown}/{client} search csv");
    println!("  {souk} --data-dir {shown}/{client} hire <MANIFEST_ID> --input job.json --wait");
    println!("  {souk} --data-dir {shown}/node-0 node info");
    println!("  {souk} --data-dir {shown}/node-0 agent publish examples/csv-analyst/agent.toml");
    if let Some(b) = net.nodes.first().and_then(|n| n.addrs.first()) {
        println!("  join it: {souk} --data-dir DIR node run --bootstrap {b}");
    }
    println!("State: {}   logs: {shown}/<node>/node.log", state.display());
    println!("Check: {me} status --dir {shown}    stop: {me} down --dir {shown}");
    Ok(ExitCode::SUCCESS)
}

fn start(net: &mut Network, args: &UpArgs, examples: Option<&Path>) -> anyhow::Result<()> {
    let n = usize::from(args.nodes);
    let m = usize::from(args.light);
    let full: Vec<String> = (0..n).map(|i| format!("node-{i}")).collect();
    let light: Vec<String> = (0..m).map(|i| format!("light-{i}")).collect();
    let port = match args.port {
        Some(p) => p,
        None => network::free_port()?,
    };
    eprintln!("starting node-0 on 127.0.0.1:{port}");
    net.spawn(&full[0], false, port, &[])?;
    net.wait_ready(&full[0])?;
    let boot = net
        .node(&full[0])?
        .addrs
        .iter()
        .find(|a| a.contains(&format!("/tcp/{port}/")))
        .cloned()
        .with_context(|| format!("node-0 does not listen on port {port}"))?;
    eprintln!("starting {} more full node(s) and {m} light node(s)", n - 1);
    for name in &full[1..] {
        net.spawn(name, false, 0, std::slice::from_ref(&boot))?;
    }
    for name in &full[1..] {
        net.wait_ready(name)?;
    }
    net.start_light_and_connect(&full, &light)?;
    if full.len() + light.len() > 1 {
        eprintln!("all {} nodes connected", full.len() + light.len());
    }
    let Some(examples) = examples else {
        return Ok(());
    };
    let mut published = Vec::new();
    let mut publish = |net: &mut Network, node: &str, file: PathBuf| -> anyhow::Result<()> {
        let dir = net.node(node)?.data_dir.clone();
        let arg = file.display().to_string();
        let p: crate::souk::Published = net
            .souk
            .json(Some(&dir), &["agent", "publish", "--json", &arg])
            .with_context(|| format!("{node} could not publish {arg}"))?;
        eprintln!(
            "{node} published {} (manifest {})",
            p.name,
            short(&p.manifest_id, 12)
        );
        if let Some(rec) = net.nodes.iter_mut().find(|r| r.name == node) {
            rec.agents.push(p.name.clone());
        }
        published.push(p.manifest_id);
        Ok(())
    };
    publish(
        net,
        &full[0],
        examples.join("csv-analyst").join("agent.toml"),
    )?;
    if locate::summarizer_binary(examples).is_some() {
        let node = full.get(1).unwrap_or(&full[0]).clone();
        publish(
            net,
            &node,
            examples.join("text-summarizer").join("agent.toml"),
        )?;
    } else {
        eprintln!(
            "text-summarizer not published: build it first with `cargo build --release -p \
             souk-agent-summarizer`"
        );
    }
    net.wait_manifests(published.len() as u64)?;
    eprintln!("every full node holds the {} manifest(s)", published.len());
    for name in &light {
        let dir = net.node(name)?.data_dir.clone();
        let net = &*net;
        let wanted = &published;
        network::wait_until(
            &format!("{name} to find the published agents"),
            network::NETWORK_TIMEOUT,
            || {
                net.check_alive()?;
                let hits: Vec<SearchHit> = net.souk.json(Some(&dir), &["search", "--json"])?;
                Ok(wanted
                    .iter()
                    .all(|id| hits.iter().any(|h| &h.id == id))
                    .then_some(()))
            },
        )?;
    }
    if !light.is_empty() {
        eprintln!("the light node(s) find them by search");
    }
    Ok(())
}

/// One row of `status`.
#[derive(Debug, Serialize)]
struct Row {
    name: String,
    mode: String,
    pid: u32,
    alive: bool,
    peers: Option<usize>,
    manifests: Option<u64>,
    agents: Option<u64>,
    api: String,
    data_dir: PathBuf,
    log: PathBuf,
    node_id: String,
    error: Option<String>,
}

/// Shows the nodes of a running network. Exit status 1 if any node is down or unreachable.
pub(crate) fn status(souk: Option<PathBuf>, args: &StatusArgs) -> anyhow::Result<ExitCode> {
    let state = State::load(&args.dir)?;
    let bin = match souk {
        Some(p) => locate::souk(Some(p), false)?,
        None if state.souk.is_file() => state.souk.clone(),
        None => locate::souk(None, false)?,
    };
    let souk = Souk { bin };
    let mut rows = Vec::new();
    for n in &state.nodes {
        let pid = crate::nodes::live_pid(n);
        let alive = pid.is_some();
        let (info, error) = if alive {
            match souk.info(&n.data_dir) {
                Ok(i) => (Some(i), None),
                Err(e) => (None, Some(format!("{e:#}"))),
            }
        } else {
            (None, Some("not running".to_owned()))
        };
        rows.push(Row {
            name: n.name.clone(),
            mode: info
                .as_ref()
                .map_or_else(|| n.mode.clone(), |i| i.mode.clone()),
            pid: pid.unwrap_or(n.pid),
            alive,
            peers: info.as_ref().map(|i| i.peers.len()),
            manifests: info.as_ref().map(|i| i.manifests),
            agents: info.as_ref().map(|i| i.agents),
            api: n.api.clone(),
            data_dir: n.data_dir.clone(),
            log: n.log.clone(),
            node_id: n.node_id.clone(),
            error,
        });
    }
    let healthy = rows.iter().all(|r| r.alive && r.error.is_none());
    if args.json {
        let out = serde_json::json!({
            "dir": state.dir,
            "bootstrap": state.bootstrap,
            "healthy": healthy,
            "nodes": rows,
        });
        println!("{out}");
    } else {
        let opt = |v: Option<String>| v.unwrap_or_else(|| "-".into());
        println!(
            "{:<10} {:<5} {:<5} {:>7} {:>5} {:>9} {:>6}  API",
            "NODE", "MODE", "ALIVE", "PID", "PEERS", "MANIFESTS", "AGENTS"
        );
        for r in &rows {
            println!(
                "{:<10} {:<5} {:<5} {:>7} {:>5} {:>9} {:>6}  {}",
                r.name,
                r.mode,
                if r.alive { "yes" } else { "no" },
                r.pid,
                opt(r.peers.map(|p| p.to_string())),
                opt(r.manifests.map(|p| p.to_string())),
                opt(r.agents.map(|p| p.to_string())),
                if r.alive { r.api.as_str() } else { "-" }
            );
        }
        for r in rows.iter().filter(|r| r.alive && r.error.is_some()) {
            println!("{}: {}", r.name, r.error.as_deref().unwrap_or_default());
        }
        if !healthy {
            let shown = args.dir.display();
            println!(
                "some nodes are down; their logs: {shown}/<node>/node.log; stop the rest with \
                 `{} down --dir {shown}`",
                locate::self_command()
            );
        }
    }
    Ok(if healthy {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Stops a network started with `up`.
pub(crate) fn down(args: &DownArgs) -> anyhow::Result<ExitCode> {
    let state = State::load(&args.dir)?;
    let pids: Vec<(String, u32)> = state
        .nodes
        .iter()
        .map(|n| (n.name.clone(), crate::nodes::live_pid(n).unwrap_or(n.pid)))
        .collect();
    let report = procs::terminate_pids(&pids);
    let path = args.dir.join(STATE_FILE);
    std::fs::remove_file(&path).with_context(|| format!("cannot remove {}", path.display()))?;
    let shown = args.dir.display();
    if args.json {
        let out = serde_json::json!({
            "dir": state.dir,
            "stopped": report,
            "removed": path,
        });
        println!("{out}");
        return Ok(ExitCode::SUCCESS);
    }
    println!("{}", report.describe());
    println!(
        "removed {shown}/{STATE_FILE}; kept the data directories and logs ({shown}/<node>/node.log): \
         `rm -r {shown}` removes them, `{} up --dir {shown}` reuses them",
        locate::self_command()
    );
    Ok(ExitCode::SUCCESS)
}
