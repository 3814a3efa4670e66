//! A network of `souk node run` processes on loopback: data directories, start-up, the waits
//! that tell when it is ready, node logs, and `testnet.json`.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::procs;
use crate::souk::{InitInfo, NodeInfo, Souk};

/// The state file of a running network, in its directory.
pub(crate) const STATE_FILE: &str = "testnet.json";
/// Each node's log, in its data directory.
pub(crate) const LOG_FILE: &str = "node.log";
/// Between two polls of a wait.
const POLL: Duration = Duration::from_millis(100);
/// Longest wait for a node to start (API up, listening).
pub(crate) const START_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest wait for the nodes to connect, and for manifests to spread.
pub(crate) const NETWORK_TIMEOUT: Duration = Duration::from_secs(45);

/// One node of the network, as recorded in `testnet.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct NodeRecord {
    /// `node-0`, `light-0`, ...: also the name of its data directory.
    pub(crate) name: String,
    /// `full` or `light`.
    pub(crate) mode: String,
    /// Process id of its `souk node run`.
    pub(crate) pid: u32,
    /// Its data directory (use with `souk --data-dir`).
    pub(crate) data_dir: PathBuf,
    /// Its log (stdout and stderr).
    pub(crate) log: PathBuf,
    /// Its local API address (`ip:port`).
    pub(crate) api: String,
    /// Its node id (`souk…`).
    pub(crate) node_id: String,
    /// Its libp2p peer id.
    pub(crate) peer_id: String,
    /// Addresses other nodes can dial (`…/p2p/<peer id>`).
    pub(crate) addrs: Vec<String>,
    /// The peers it was told to dial at start.
    pub(crate) bootstrap: Vec<String>,
    /// The agents it publishes (names).
    pub(crate) agents: Vec<String>,
}

impl NodeRecord {
    /// Whether it is a full node.
    pub(crate) fn is_full(&self) -> bool {
        self.mode == "full"
    }
}

/// `testnet.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct State {
    /// Format version (1).
    pub(crate) version: u32,
    /// The network's directory.
    pub(crate) dir: PathBuf,
    /// The `souk` binary the nodes run.
    pub(crate) souk: PathBuf,
    /// When it started (Unix seconds).
    pub(crate) started_at: u64,
    /// The address every node bootstrapped from (the first full node).
    pub(crate) bootstrap: String,
    /// Every node.
    pub(crate) nodes: Vec<NodeRecord>,
}

impl State {
    /// Reads `DIR/testnet.json`.
    pub(crate) fn load(dir: &Path) -> anyhow::Result<Self> {
        let path = dir.join(STATE_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => anyhow::bail!(
                "no testnet in {} (no {STATE_FILE}); start one with `{} up`, or pass --dir",
                dir.display(),
                crate::locate::self_command()
            ),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        serde_json::from_str(&text)
            .with_context(|| format!("{} is not a testnet state file", path.display()))
    }
}

/// A network being started or run by this process.
pub(crate) struct Network {
    pub(crate) souk: Souk,
    pub(crate) dir: PathBuf,
    pub(crate) nodes: Vec<NodeRecord>,
    /// Start nodes with the testnet's connection gate (`--testnet-gate`: partitions and
    /// link delays, for `run` scenarios that need them).
    pub(crate) gate: bool,
    /// Run every node on this clock (`--testnet-clock RATE@EPOCH_MS`), for scenarios that
    /// play days in seconds.
    pub(crate) clock: Option<String>,
}

/// On a fast clock, manifests live the longest a node allows (7 days) and the sweep runs
/// hourly (node time): the defaults (1 h, 30 s) would re-announce every agent a few times a
/// second of real time.
fn long_lived_manifests(data_dir: &Path) -> anyhow::Result<()> {
    let path = data_dir.join("config.toml");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let text: String = text
        .lines()
        .map(|l| {
            if l.starts_with("manifest_ttl_secs =") {
                "manifest_ttl_secs = 604800".to_owned()
            } else if l.starts_with("sweep_interval_secs =") {
                "sweep_interval_secs = 3600".to_owned()
            } else {
                l.to_owned()
            }
        })
        .map(|l| l + "\n")
        .collect();
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// The TCP port of a multiaddr (`/ip4/…/tcp/PORT/…`).
pub(crate) fn port_of(addr: &str) -> Option<u16> {
    let mut parts = addr.split('/');
    while let Some(p) = parts.next() {
        if p == "tcp" {
            return parts.next()?.parse().ok();
        }
    }
    None
}

/// A free TCP port on 127.0.0.1 (free when asked; the node binds it right after).
pub(crate) fn free_port() -> anyhow::Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").context("cannot find a free port on 127.0.0.1")?;
    Ok(l.local_addr().context("cannot find a free port")?.port())
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Polls `check` every 100 ms until it returns `Some`, for at most `timeout`. Errors from
/// `check` count as "not yet" (the last one is quoted if the wait times out).
pub(crate) fn wait_until<T>(
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> anyhow::Result<Option<T>>,
) -> anyhow::Result<T> {
    let deadline = Instant::now() + timeout;
    let mut last_err: Option<anyhow::Error> = None;
    loop {
        match check() {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => {}
            Err(e) => last_err = Some(e),
        }
        if Instant::now() >= deadline {
            let why = last_err
                .map(|e| format!(" (last error: {e:#})"))
                .unwrap_or_default();
            anyhow::bail!(
                "timed out after {} s waiting for {what}{why}",
                timeout.as_secs()
            );
        }
        std::thread::sleep(POLL);
    }
}

impl Network {
    /// A network whose nodes live in `dir/<name>`.
    pub(crate) fn new(souk: Souk, dir: PathBuf) -> Self {
        Self {
            souk,
            dir,
            nodes: Vec::new(),
            gate: false,
            clock: None,
        }
    }

    /// The node called `name`.
    pub(crate) fn node(&self, name: &str) -> anyhow::Result<&NodeRecord> {
        self.nodes
            .iter()
            .find(|n| n.name == name)
            .with_context(|| format!("no node {name}"))
    }

    /// The full nodes.
    pub(crate) fn full(&self) -> impl Iterator<Item = &NodeRecord> {
        self.nodes.iter().filter(|n| n.is_full())
    }

    /// Creates `dir/name` with `souk init` unless it is already initialized (then it is
    /// reused: same identity, same stored data).
    fn prepare(&self, name: &str, light: bool) -> anyhow::Result<(PathBuf, Option<InitInfo>)> {
        let data_dir = self.dir.join(name);
        if data_dir.join("identity.key").is_file() {
            return Ok((data_dir, None));
        }
        let mut args = vec!["init", "--json"];
        if light {
            args.push("--light");
        }
        let info: InitInfo = self
            .souk
            .json(Some(&data_dir), &args)
            .with_context(|| format!("cannot initialize {name}"))?;
        if self.clock.is_some() {
            long_lived_manifests(&data_dir)?;
        }
        Ok((data_dir, Some(info)))
    }

    /// Starts `souk node run` for a new node `name`, listening on 127.0.0.1:`port` (0: any),
    /// dialing `bootstrap` at start. Returns at once; [`Network::wait_ready`] waits for it.
    pub(crate) fn spawn(
        &mut self,
        name: &str,
        light: bool,
        port: u16,
        bootstrap: &[String],
    ) -> anyhow::Result<()> {
        let (data_dir, init) = self.prepare(name, light)?;
        let log = data_dir.join(LOG_FILE);
        let out = File::create(&log).with_context(|| format!("cannot create {}", log.display()))?;
        let err = out
            .try_clone()
            .with_context(|| format!("cannot open {}", log.display()))?;
        let listen = format!("/ip4/127.0.0.1/tcp/{port}");
        let mut args = vec![
            "node",
            "run",
            "--listen",
            listen.as_str(),
            "--api",
            "127.0.0.1:0",
        ];
        for b in bootstrap {
            args.push("--bootstrap");
            args.push(b);
        }
        if light {
            args.push("--light");
        }
        if self.gate {
            args.push("--testnet-gate");
        }
        if let Some(c) = &self.clock {
            args.push("--testnet-clock");
            args.push(c);
        }
        let mut cmd = self.souk.command(Some(&data_dir), &args);
        cmd.stdout(out).stderr(err);
        let pid = procs::spawn(name, &mut cmd)?;
        let (node_id, peer_id) = init.map(|i| (i.node_id, i.peer_id)).unwrap_or_default();
        self.nodes.push(NodeRecord {
            name: name.to_owned(),
            mode: if light { "light" } else { "full" }.into(),
            pid,
            data_dir,
            log,
            api: String::new(),
            node_id,
            peer_id,
            addrs: Vec::new(),
            bootstrap: bootstrap.to_vec(),
            agents: Vec::new(),
        });
        Ok(())
    }

    /// Starts node `name` again (after a kill or stop): same data directory, same listen
    /// port, same bootstrap peers; its log is appended to. Returns at once.
    pub(crate) fn respawn(&mut self, name: &str) -> anyhow::Result<()> {
        let n = self.node(name)?.clone();
        let port = n.addrs.first().and_then(|a| port_of(a)).unwrap_or(0);
        let log = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&n.log)
            .with_context(|| format!("cannot open {}", n.log.display()))?;
        let err = log
            .try_clone()
            .with_context(|| format!("cannot open {}", n.log.display()))?;
        let listen = format!("/ip4/127.0.0.1/tcp/{port}");
        let mut args = vec![
            "node",
            "run",
            "--listen",
            listen.as_str(),
            "--api",
            "127.0.0.1:0",
        ];
        // The first node started with no one to dial; started again, it would wait for others
        // to find it (their Kademlia view and peer counts rarely make them dial): it dials
        // another full node, as an operator restarting it would configure.
        let fallback: Vec<String> = if n.bootstrap.is_empty() {
            self.nodes
                .iter()
                .filter(|o| o.is_full() && o.name != n.name)
                .filter_map(|o| o.addrs.first().cloned())
                .take(2)
                .collect()
        } else {
            Vec::new()
        };
        for b in n.bootstrap.iter().chain(&fallback) {
            args.push("--bootstrap");
            args.push(b);
        }
        if !n.is_full() {
            args.push("--light");
        }
        if self.gate {
            args.push("--testnet-gate");
        }
        if let Some(c) = &self.clock {
            args.push("--testnet-clock");
            args.push(c);
        }
        // The old api.addr and node.pid name the dead process: a wait must not read them.
        let _ = std::fs::remove_file(n.data_dir.join("api.addr"));
        let mut cmd = self.souk.command(Some(&n.data_dir), &args);
        cmd.stdout(log).stderr(err);
        let pid = procs::spawn(name, &mut cmd)?;
        if let Some(rec) = self.nodes.iter_mut().find(|r| r.name == name) {
            rec.pid = pid;
        }
        Ok(())
    }

    /// Starts the light nodes `light` (light node `j` bootstraps to full nodes `j` and `j+1`,
    /// mod the number of full nodes), then waits until every node has a peer.
    pub(crate) fn start_light_and_connect(
        &mut self,
        full: &[String],
        light: &[String],
    ) -> anyhow::Result<()> {
        for (j, name) in light.iter().enumerate() {
            let mut boots = Vec::new();
            for k in [j % full.len(), (j + 1) % full.len()] {
                if let Some(a) = self.node(&full[k])?.addrs.first()
                    && !boots.contains(a)
                {
                    boots.push(a.clone());
                }
            }
            self.spawn(name, true, 0, &boots)?;
        }
        for name in light {
            self.wait_ready(name)?;
        }
        let all: Vec<String> = full.iter().chain(light).cloned().collect();
        if all.len() > 1 {
            self.wait_peers(&all, 1)?;
        }
        Ok(())
    }

    /// Fails if a node of this network has exited, quoting the end of its log.
    pub(crate) fn check_alive(&self) -> anyhow::Result<()> {
        for n in &self.nodes {
            if let Some(status) = procs::exit_status(&n.name) {
                anyhow::bail!(
                    "{} exited ({status}); the end of its log {}:\n{}",
                    n.name,
                    n.log.display(),
                    tail(&n.log, 15)
                );
            }
        }
        Ok(())
    }

    /// Waits until node `name` serves its API and listens; records its addresses.
    pub(crate) fn wait_ready(&mut self, name: &str) -> anyhow::Result<NodeInfo> {
        let idx = self
            .nodes
            .iter()
            .position(|n| n.name == name)
            .with_context(|| format!("no node {name}"))?;
        let data_dir = self.nodes[idx].data_dir.clone();
        let expected = self.nodes[idx].node_id.clone();
        let info = {
            let this = &*self;
            wait_until(&format!("{name} to start"), START_TIMEOUT, || {
                this.check_alive()?;
                if !data_dir.join("api.addr").is_file() {
                    return Ok(None);
                }
                let info = this.souk.info(&data_dir)?;
                let ours = expected.is_empty() || info.node_id == expected;
                Ok((ours && !info.listen_addrs.is_empty()).then_some(info))
            })?
        };
        let api = std::fs::read_to_string(data_dir.join("api.addr")).unwrap_or_default();
        let n = &mut self.nodes[idx];
        n.api = api.trim().to_owned();
        n.node_id.clone_from(&info.node_id);
        n.peer_id.clone_from(&info.peer_id);
        n.addrs = info
            .listen_addrs
            .iter()
            .map(|a| format!("{a}/p2p/{}", info.peer_id))
            .collect();
        Ok(info)
    }

    /// Waits until every node in `names` has at least `min` peers; returns their infos.
    pub(crate) fn wait_peers(&self, names: &[String], min: usize) -> anyhow::Result<Vec<NodeInfo>> {
        wait_until(
            &format!("{} to connect to at least {min} peer(s)", names.join(", ")),
            NETWORK_TIMEOUT,
            || {
                self.check_alive()?;
                let mut infos = Vec::new();
                for name in names {
                    let info = self.souk.info(&self.node(name)?.data_dir)?;
                    if info.peers.len() < min {
                        return Ok(None);
                    }
                    infos.push(info);
                }
                Ok(Some(infos))
            },
        )
    }

    /// Waits until every full node holds at least `count` manifests; returns their infos.
    pub(crate) fn wait_manifests(&self, count: u64) -> anyhow::Result<Vec<(String, NodeInfo)>> {
        let names: Vec<String> = self.full().map(|n| n.name.clone()).collect();
        wait_until(
            &format!("every full node to hold {count} manifest(s)"),
            NETWORK_TIMEOUT,
            || {
                self.check_alive()?;
                let mut infos = Vec::new();
                for name in &names {
                    let info = self.souk.info(&self.node(name)?.data_dir)?;
                    if info.manifests < count {
                        return Ok(None);
                    }
                    infos.push((name.clone(), info));
                }
                Ok(Some(infos))
            },
        )
    }

    /// The network's state, for `testnet.json`.
    pub(crate) fn state(&self) -> State {
        State {
            version: 1,
            dir: self.dir.clone(),
            souk: self.souk.bin.clone(),
            started_at: now_ms() / 1000,
            bootstrap: self
                .nodes
                .first()
                .and_then(|n| n.addrs.first().cloned())
                .unwrap_or_default(),
            nodes: self.nodes.clone(),
        }
    }

    /// Writes `dir/testnet.json`; returns its path.
    pub(crate) fn write_state(&self) -> anyhow::Result<PathBuf> {
        let path = self.dir.join(STATE_FILE);
        let text = serde_json::to_string_pretty(&self.state())?;
        std::fs::write(&path, text + "\n")
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(path)
    }
}

/// `ip:port` of a `/ip4/<ip>/tcp/<port>[/p2p/...]` multiaddr (else the address unchanged).
pub(crate) fn host_port(addr: &str) -> String {
    let parts: Vec<&str> = addr.split('/').collect();
    match parts.as_slice() {
        ["", "ip4", ip, "tcp", port, ..] => format!("{ip}:{port}"),
        ["", "ip6", ip, "tcp", port, ..] => format!("[{ip}]:{port}"),
        _ => addr.to_owned(),
    }
}

/// The last `n` lines of a file, indented, for error messages.
pub(crate) fn tail(path: &Path, n: usize) -> String {
    let text = match std::fs::read(path) {
        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
        Err(e) => return format!("    (cannot read it: {e})"),
    };
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(n);
    if lines.is_empty() {
        return "    (empty)".into();
    }
    lines[start..]
        .iter()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Follows a node's log from where it is now, returning the hire events logged since.
pub(crate) struct LogTail {
    path: PathBuf,
    offset: u64,
    partial: String,
}

/// One event of interest from a node's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LogEvent {
    /// `INFO`, `WARN`, `ERROR`.
    pub(crate) level: String,
    /// The message with its fields (`... hire=aad6feed agent=csv-analyst`).
    pub(crate) message: String,
}

impl LogTail {
    /// Starts at the current end of `path`.
    pub(crate) fn new(path: &Path) -> Self {
        let offset = std::fs::metadata(path).map_or(0, |m| m.len());
        Self {
            path: path.to_path_buf(),
            offset,
            partial: String::new(),
        }
    }

    /// The hire events (and any errors) logged since the last call.
    pub(crate) fn events(&mut self) -> Vec<LogEvent> {
        let mut buf = Vec::new();
        let read = File::open(&self.path).and_then(|mut f| {
            f.seek(SeekFrom::Start(self.offset))?;
            f.read_to_end(&mut buf)
        });
        if read.is_err() {
            return Vec::new();
        }
        self.offset += buf.len() as u64;
        self.partial.push_str(&String::from_utf8_lossy(&buf));
        let mut events = Vec::new();
        while let Some(nl) = self.partial.find('\n') {
            let line: String = self.partial.drain(..=nl).collect();
            if let Some(ev) = parse_log_line(line.trim_end()) {
                events.push(ev);
            }
        }
        events
    }
}

/// Parses a node log line (`<time> <LEVEL> <target>: <message>`), keeping hire events and
/// errors.
fn parse_log_line(line: &str) -> Option<LogEvent> {
    let (_time, rest) = line.split_once(char::is_whitespace)?;
    let (level, rest) = rest.trim_start().split_once(char::is_whitespace)?;
    let (target, message) = rest.trim_start().split_once(": ")?;
    let interesting = target.starts_with("souk_node::hire") || level == "ERROR";
    interesting.then(|| LogEvent {
        level: level.to_owned(),
        message: message.trim().to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(
            host_port("/ip4/127.0.0.1/tcp/4710/p2p/12D3KooWPqT2"),
            "127.0.0.1:4710"
        );
        assert_eq!(host_port("/ip6/::1/tcp/9"), "[::1]:9");
        assert_eq!(host_port("/dns/x/tcp/1"), "/dns/x/tcp/1");
    }

    #[test]
    fn log_lines() {
        let l = "2026-11-26T03:19:56.729165Z  INFO souk_node::hire::manager: contract stored; \
                 starting the agent hire=aad6feed agent=csv-analyst";
        assert_eq!(
            parse_log_line(l),
            Some(LogEvent {
                level: "INFO".into(),
                message: "contract stored; starting the agent hire=aad6feed agent=csv-analyst"
                    .into()
            })
        );
        let other = "2026-11-26T03:19:52.929921Z  INFO souk_node::service: listening on /ip4/x";
        assert_eq!(parse_log_line(other), None);
        assert_eq!(parse_log_line("garbage"), None);
    }
}
