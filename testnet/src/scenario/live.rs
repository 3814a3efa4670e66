//! The network while a scenario runs: which node is up, starting or down, and the
//! operations faults use (kill, stop, start), each keeping the node's event follower and
//! resource sampling in step with its process. Node up/down intervals are recorded for the
//! delivery figures.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Context;

use super::observe::{Follower, Observations};
use crate::network::{Network, START_TIMEOUT, now_ms};
use crate::procs;
use crate::souk::Souk;

/// A node's condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    Up,
    Starting,
    Down,
}

/// A stretch a node was up: from, until (Unix ms; `None` while still up).
pub(crate) type Interval = (u64, Option<u64>);

/// Link faults in force: applied to every node through its gate, again after a restart.
#[derive(Debug, Clone, Default)]
pub(crate) struct LinkFaults {
    /// Groups that cannot reach each other (empty: no partition).
    pub(crate) partition: Vec<Vec<String>>,
    /// Groups whose links are slowed, and how.
    pub(crate) latency: Option<(Vec<Vec<String>>, souk_node::swarm::gate::Link)>,
}

/// A stretch a link fault was in force (Unix ms; `None`: until the end).
#[derive(Debug, Clone)]
pub(crate) struct FaultWindow {
    pub(crate) from: u64,
    pub(crate) until: Option<u64>,
    pub(crate) groups: Vec<Vec<String>>,
    /// For latency: the added delay, ms.
    pub(crate) delay_ms: u64,
}

/// One fault as it happened.
#[derive(Debug, Clone)]
pub(crate) struct Done {
    pub(crate) at_ms: u64,
    pub(crate) kind: String,
    pub(crate) target: String,
    pub(crate) detail: Option<String>,
}

/// The running network, shared by the runner's threads.
pub(crate) struct Live {
    pub(crate) net: Mutex<Network>,
    pub(crate) souk: Souk,
    pub(crate) obs: Arc<Observations>,
    pub(crate) pids: Arc<Mutex<HashMap<String, u32>>>,
    status: Mutex<HashMap<String, Status>>,
    followers: Mutex<HashMap<String, Follower>>,
    /// Per node: (up since, down since) intervals in Unix ms; an open one has `None`.
    intervals: Mutex<HashMap<String, Vec<Interval>>>,
    pub(crate) done: Mutex<Vec<Done>>,
    pub(crate) dirs: HashMap<String, PathBuf>,
    /// Set when the run ends: restarts scheduled after it do not happen.
    pub(crate) over: AtomicBool,
    /// Whether the nodes run with the testnet gate.
    gated: bool,
    links: Mutex<LinkFaults>,
    /// Each node's peer id and listen port (stable across restarts).
    peer_ids: HashMap<String, String>,
    ports: HashMap<String, u16>,
    /// Partitions and latency as they were in force, for the assertions.
    pub(crate) partitions: Mutex<Vec<FaultWindow>>,
    pub(crate) latencies: Mutex<Vec<FaultWindow>>,
    /// Hostile peers sent in: (target node, what happened).
    pub(crate) hostiles: Mutex<Vec<(String, crate::conformance::hostile::Hostile)>>,
    /// Forking providers sent in, and what became of them.
    pub(crate) forks: Mutex<Vec<super::fork::ForkRun>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Live {
    /// Wraps a started network whose nodes are all up.
    pub(crate) fn new(net: Network, obs: Arc<Observations>) -> anyhow::Result<Arc<Self>> {
        let souk = net.souk.clone();
        let dirs: HashMap<String, PathBuf> = net
            .nodes
            .iter()
            .map(|n| (n.name.clone(), n.data_dir.clone()))
            .collect();
        let now = now_ms();
        let peer_ids = net
            .nodes
            .iter()
            .map(|n| (n.name.clone(), n.peer_id.clone()))
            .collect();
        let ports = net
            .nodes
            .iter()
            .filter_map(|n| {
                n.addrs
                    .first()
                    .and_then(|a| crate::network::port_of(a))
                    .map(|p| (n.name.clone(), p))
            })
            .collect();
        let gated = net.gate;
        let live = Arc::new(Live {
            gated,
            links: Mutex::new(LinkFaults::default()),
            peer_ids,
            ports,
            partitions: Mutex::new(Vec::new()),
            latencies: Mutex::new(Vec::new()),
            hostiles: Mutex::new(Vec::new()),
            forks: Mutex::new(Vec::new()),
            souk,
            obs,
            pids: Arc::new(Mutex::new(
                net.nodes.iter().map(|n| (n.name.clone(), n.pid)).collect(),
            )),
            status: Mutex::new(
                net.nodes
                    .iter()
                    .map(|n| (n.name.clone(), Status::Up))
                    .collect(),
            ),
            followers: Mutex::new(HashMap::new()),
            intervals: Mutex::new(
                net.nodes
                    .iter()
                    .map(|n| (n.name.clone(), vec![(now, None)]))
                    .collect(),
            ),
            done: Mutex::new(Vec::new()),
            dirs,
            net: Mutex::new(net),
            over: AtomicBool::new(false),
        });
        let names: Vec<String> = live.dirs.keys().cloned().collect();
        for name in names {
            live.follow(&name)?;
        }
        Ok(live)
    }

    /// The node's condition.
    pub(crate) fn status(&self, name: &str) -> Status {
        lock(&self.status)
            .get(name)
            .copied()
            .unwrap_or(Status::Down)
    }

    /// Nodes up now, among `among`.
    pub(crate) fn up_among(&self, among: &[String]) -> Vec<String> {
        let s = lock(&self.status);
        among
            .iter()
            .filter(|n| s.get(*n) == Some(&Status::Up))
            .cloned()
            .collect()
    }

    /// Nodes not up now.
    pub(crate) fn down(&self) -> Vec<String> {
        let s = lock(&self.status);
        let mut v: Vec<String> = s
            .iter()
            .filter(|(_, st)| **st == Status::Down)
            .map(|(n, _)| n.clone())
            .collect();
        v.sort();
        v
    }

    /// The data directory of `name`.
    pub(crate) fn dir(&self, name: &str) -> anyhow::Result<&PathBuf> {
        self.dirs
            .get(name)
            .with_context(|| format!("no node {name}"))
    }

    /// Up intervals of `name` (Unix ms; `None`: still up).
    pub(crate) fn intervals(&self, name: &str) -> Vec<Interval> {
        lock(&self.intervals).get(name).cloned().unwrap_or_default()
    }

    /// Notes a fault as it happened (for the report's timeline).
    pub(crate) fn record(&self, kind: &str, target: &str, detail: Option<String>) {
        lock(&self.done).push(Done {
            at_ms: now_ms(),
            kind: kind.to_owned(),
            target: target.to_owned(),
            detail,
        });
    }

    fn follow(&self, name: &str) -> anyhow::Result<()> {
        let started = now_ms();
        let f = Follower::start(&self.souk, name, self.dir(name)?, self.obs.clone())?;
        lock(&self.followers).insert(name.to_owned(), f);
        // Events count from the moment the stream is live.
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.obs.subscribed_since(name, started.saturating_sub(1)) {
            anyhow::ensure!(
                Instant::now() < deadline,
                "{name}'s event stream did not open within 20 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        // Connections made before the stream opened: the count to start from.
        if let Ok(info) = self.souk.info(self.dir(name)?)
            && let Ok(mut e) = self.obs.events.lock()
        {
            e.push(super::observe::Seen {
                node: name.to_owned(),
                event: serde_json::json!({
                    "type": "peers_baseline",
                    "count": info.peers.len(),
                    "at_ms": now_ms(),
                }),
            });
        }
        Ok(())
    }

    fn went_down(&self, name: &str) {
        lock(&self.status).insert(name.to_owned(), Status::Down);
        lock(&self.pids).remove(name);
        if let Some(f) = lock(&self.followers).remove(name) {
            f.stop();
        }
        let now = now_ms();
        if let Some(v) = lock(&self.intervals).get_mut(name)
            && let Some(last) = v.last_mut()
            && last.1.is_none()
        {
            last.1 = Some(now);
        }
    }

    /// Kills (`hard`: SIGKILL) or stops (SIGTERM) `name` if it is up; false if it was not.
    pub(crate) fn take_down(&self, name: &str, hard: bool) -> bool {
        {
            let mut s = lock(&self.status);
            if s.get(name) != Some(&Status::Up) {
                return false;
            }
            // Nobody else may pick it while it goes down.
            s.insert(name.to_owned(), Status::Starting);
        }
        let took = procs::stop_one(name, hard);
        self.went_down(name);
        self.record(
            if hard { "kill" } else { "stop" },
            name,
            took.map(|d| format!("exited after {} ms", d.as_millis())),
        );
        true
    }

    /// Starts `name` again if it is down, and waits until it serves its API and its event
    /// stream is open.
    pub(crate) fn bring_up(&self, name: &str) -> anyhow::Result<bool> {
        {
            let mut s = lock(&self.status);
            if s.get(name) != Some(&Status::Down) {
                return Ok(false);
            }
            s.insert(name.to_owned(), Status::Starting);
        }
        let result = self.start_process(name);
        match &result {
            Ok(()) => {
                lock(&self.status).insert(name.to_owned(), Status::Up);
                lock(&self.intervals)
                    .entry(name.to_owned())
                    .or_default()
                    .push((now_ms(), None));
                self.record("start", name, None);
            }
            Err(e) => {
                let _ = procs::stop_one(name, true);
                lock(&self.status).insert(name.to_owned(), Status::Down);
                self.record("start", name, Some(format!("failed: {e:#}")));
            }
        }
        result.map(|()| true)
    }

    fn start_process(&self, name: &str) -> anyhow::Result<()> {
        let (dir, node_id) = {
            let mut net = lock(&self.net);
            net.respawn(name)?;
            let n = net.node(name)?;
            (n.data_dir.clone(), n.node_id.clone())
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = procs::exit_status(name) {
                anyhow::bail!("{name} exited at start ({status})");
            }
            if dir.join("api.addr").is_file()
                && let Ok(info) = self.souk.info(&dir)
                && info.node_id == node_id
                && !info.listen_addrs.is_empty()
            {
                break;
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "{name} did not start within {} s",
                START_TIMEOUT.as_secs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let pid = lock(&self.net).node(name)?.pid;
        lock(&self.pids).insert(name.to_owned(), pid);
        self.follow(name)?;
        // A restarted node's gate starts open: put the faults in force back.
        if self.gated {
            self.apply_gate(name)?;
        }
        Ok(())
    }

    /// Puts `faults` in force on every node that is up (and on the others when they start).
    pub(crate) fn set_link_faults(&self, faults: LinkFaults, detail: String) -> anyhow::Result<()> {
        anyhow::ensure!(self.gated, "link faults need the nodes' testnet gate");
        let now = now_ms();
        let close = |w: &Mutex<Vec<FaultWindow>>| {
            if let Some(last) = lock(w).last_mut()
                && last.until.is_none()
            {
                last.until = Some(now);
            }
        };
        close(&self.partitions);
        close(&self.latencies);
        if !faults.partition.is_empty() {
            lock(&self.partitions).push(FaultWindow {
                from: now,
                until: None,
                groups: faults.partition.clone(),
                delay_ms: 0,
            });
        }
        if let Some((groups, link)) = &faults.latency {
            lock(&self.latencies).push(FaultWindow {
                from: now,
                until: None,
                groups: groups.clone(),
                delay_ms: link.delay_ms,
            });
        }
        let kind = if faults.partition.is_empty() && faults.latency.is_none() {
            "heal"
        } else if faults.latency.is_some() && faults.partition.is_empty() {
            "latency"
        } else {
            "partition"
        };
        *lock(&self.links) = faults;
        let names: Vec<String> = self.dirs.keys().cloned().collect();
        let mut failed = Vec::new();
        for name in names {
            if self.status(&name) == Status::Up
                && let Err(e) = self.apply_gate(&name)
            {
                failed.push(format!("{name}: {e:#}"));
            }
        }
        self.record(kind, "network", Some(detail));
        anyhow::ensure!(failed.is_empty(), "gate not set on {}", failed.join("; "));
        Ok(())
    }

    /// Sends node `name` its part of the link faults in force.
    fn apply_gate(&self, name: &str) -> anyhow::Result<()> {
        let faults = lock(&self.links).clone();
        let others = |groups: &[Vec<String>]| -> Vec<String> {
            match groups.iter().position(|g| g.iter().any(|n| n == name)) {
                Some(mine) => groups
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| *i != mine)
                    .flat_map(|(_, g)| g.iter().cloned())
                    .collect(),
                None => Vec::new(),
            }
        };
        let block: Vec<String> = others(&faults.partition)
            .iter()
            .filter_map(|n| self.peer_ids.get(n).cloned())
            .collect();
        let mut links = serde_json::Map::new();
        if let Some((groups, link)) = &faults.latency {
            for n in others(groups) {
                if let Some(port) = self.ports.get(&n) {
                    links.insert(port.to_string(), serde_json::to_value(link)?);
                }
            }
        }
        let client = souk_node::api::client::ApiClient::connect(
            &souk_node::data_dir::DataDir::new(self.dir(name)?),
        )?;
        let _: serde_json::Value = client.post(
            "/v1/testnet/gate",
            &serde_json::json!({ "block": block, "links": links }),
        )?;
        Ok(())
    }

    /// The address another peer dials to reach `name` (with `/p2p/`).
    pub(crate) fn p2p_addr(&self, name: &str) -> anyhow::Result<String> {
        let port = self
            .ports
            .get(name)
            .with_context(|| format!("{name} has no listen port"))?;
        let peer = self
            .peer_ids
            .get(name)
            .with_context(|| format!("{name} has no peer id"))?;
        Ok(format!("/ip4/127.0.0.1/tcp/{port}/p2p/{peer}"))
    }

    /// Sends a hostile peer gossiping `count` invalid manifests at `name` (blocks until it
    /// is done or cut off) and records what happened.
    pub(crate) fn send_hostile(&self, name: &str, count: u32) -> anyhow::Result<()> {
        let addr = self.p2p_addr(name)?;
        let h = crate::conformance::hostile::invalid_gossip(&addr, count)?;
        self.record(
            "invalid-gossip",
            name,
            Some(format!(
                "{} invalid manifests from {}; {}",
                h.sent,
                &h.peer[h.peer.len().saturating_sub(8)..],
                if h.cut_off {
                    "cut off"
                } else {
                    "still connected"
                }
            )),
        );
        lock(&self.hostiles).push((name.to_owned(), h));
        Ok(())
    }

    /// Stops every follower (at the end of a run).
    pub(crate) fn stop_followers(&self) {
        let all: Vec<Follower> = lock(&self.followers).drain().map(|(_, f)| f).collect();
        for f in all {
            f.stop();
        }
        self.over.store(true, Ordering::SeqCst);
    }
}
