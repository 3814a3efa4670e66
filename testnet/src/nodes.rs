//! One node of a network started with `up`: `stop`, `kill`, `start` and `logs`. A node's
//! process is found through the pid file its data directory holds (`node.pid`, written by
//! `souk node run`), so a node restarted by hand or by these commands is still seen;
//! `testnet.json` is kept up to date.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;

use crate::network::{Network, NodeRecord, State};
use crate::procs;
use crate::souk::Souk;

/// `stop`, `kill`, `start` options.
#[derive(Debug, Args)]
pub(crate) struct NodeArgs {
    /// The node (`node-0`, `light-1`, … as `status` shows).
    node: String,
    /// The network's directory.
    #[arg(long, default_value = crate::manage::DEFAULT_DIR, value_name = "DIR")]
    dir: PathBuf,
}

/// `logs` options.
#[derive(Debug, Args)]
pub(crate) struct LogsArgs {
    /// The node.
    node: String,
    /// The network's directory.
    #[arg(long, default_value = crate::manage::DEFAULT_DIR, value_name = "DIR")]
    dir: PathBuf,
    /// Keep printing what the node logs (Ctrl-C ends).
    #[arg(short, long)]
    follow: bool,
    /// Only the last N lines first.
    #[arg(short = 'n', long, value_name = "N")]
    lines: Option<usize>,
}

/// The live process of `node`: its data directory's pid file first (it follows restarts),
/// then the pid `testnet.json` recorded.
pub(crate) fn live_pid(node: &NodeRecord) -> Option<u32> {
    let from_file = std::fs::read_to_string(node.data_dir.join("node.pid"))
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok());
    from_file
        .into_iter()
        .chain([node.pid])
        .find(|p| procs::souk_alive(*p))
}

fn find<'a>(state: &'a State, name: &str, dir: &Path) -> anyhow::Result<&'a NodeRecord> {
    state
        .nodes
        .iter()
        .find(|n| n.name == name)
        .with_context(|| {
            format!(
                "no node {name} in {}: it has {}",
                dir.display(),
                state
                    .nodes
                    .iter()
                    .map(|n| n.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
}

/// Stops a node: SIGTERM, then SIGKILL after the grace period (`hard`: SIGKILL at once).
pub(crate) fn stop(args: &NodeArgs, hard: bool) -> anyhow::Result<ExitCode> {
    let state = State::load(&args.dir)?;
    let node = find(&state, &args.node, &args.dir)?;
    let Some(pid) = live_pid(node) else {
        println!("{} is not running", node.name);
        return Ok(ExitCode::SUCCESS);
    };
    if hard {
        procs::signal(pid, "KILL");
        let deadline = Instant::now() + procs::GRACE;
        while procs::souk_alive(pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        println!("{} (pid {pid}) killed with SIGKILL", node.name);
    } else {
        let report = procs::terminate_pids(&[(node.name.clone(), pid)]);
        println!("{} (pid {pid}): {}", node.name, report.describe());
    }
    println!(
        "start it again: {} start {} --dir {}",
        crate::locate::self_command(),
        node.name,
        args.dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Starts a stopped node again with its recorded port, bootstrap peers and mode, and leaves
/// it running.
pub(crate) fn start(souk: Option<PathBuf>, args: &NodeArgs) -> anyhow::Result<ExitCode> {
    let state = State::load(&args.dir)?;
    let node = find(&state, &args.node, &args.dir)?.clone();
    if let Some(pid) = live_pid(&node) {
        println!("{} is already running (pid {pid})", node.name);
        return Ok(ExitCode::SUCCESS);
    }
    let bin = match souk {
        Some(p) => crate::locate::souk(Some(p), false)?,
        None if state.souk.is_file() => state.souk.clone(),
        None => crate::locate::souk(None, false)?,
    };
    let dir = std::path::absolute(&args.dir)?;
    let mut net = Network::new(Souk { bin }, dir);
    net.nodes = state.nodes.clone();
    net.respawn(&node.name)?;
    let info = match net.wait_ready(&node.name) {
        Ok(i) => i,
        Err(e) => {
            procs::stop_all();
            return Err(e);
        }
    };
    procs::detach();
    let mut new_state = state.clone();
    new_state.nodes = net.nodes.clone();
    let path = args.dir.join(crate::network::STATE_FILE);
    std::fs::write(&path, serde_json::to_string_pretty(&new_state)? + "\n")
        .with_context(|| format!("cannot write {}", path.display()))?;
    let pid = net.node(&node.name)?.pid;
    println!(
        "{} started (pid {pid}, {} peer(s) so far, node {})",
        node.name,
        info.peers.len(),
        crate::souk::short(&info.node_id, 16)
    );
    Ok(ExitCode::SUCCESS)
}

/// Prints a node's log, and with `--follow` what it writes next.
pub(crate) fn logs(args: &LogsArgs) -> anyhow::Result<ExitCode> {
    let state = State::load(&args.dir)?;
    let node = find(&state, &args.node, &args.dir)?;
    let mut f = std::fs::File::open(&node.log)
        .with_context(|| format!("cannot open {}", node.log.display()))?;
    let mut text = String::new();
    f.read_to_string(&mut text)
        .with_context(|| format!("cannot read {}", node.log.display()))?;
    let shown = match args.lines {
        Some(n) => {
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(n)..].join("\n") + "\n"
        }
        None => text,
    };
    let mut out = std::io::stdout();
    if out.write_all(shown.as_bytes()).is_err() {
        return Ok(ExitCode::SUCCESS);
    }
    if !args.follow {
        return Ok(ExitCode::SUCCESS);
    }
    procs::install_signal_handler()?;
    let mut pos = f.stream_position()?;
    loop {
        let len = std::fs::metadata(&node.log).map_or(pos, |m| m.len());
        if len < pos {
            // Truncated (the node was started again by `up`): from the top.
            pos = 0;
        }
        if len > pos {
            let mut f = std::fs::File::open(&node.log)?;
            f.seek(SeekFrom::Start(pos))?;
            let mut buf = Vec::new();
            f.read_to_end(&mut buf)?;
            pos += buf.len() as u64;
            if out.write_all(&buf).and_then(|()| out.flush()).is_err() {
                return Ok(ExitCode::SUCCESS);
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
