//! What the runner sees of the nodes without polling them: each node's event stream
//! (`souk node events --json`, restarted with the node) and its CPU and memory, sampled
//! from `/proc` twice a second. Everything lands in one [`Observations`] log.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::Value;

use crate::network::now_ms;
use crate::souk::Souk;

/// One event from one node.
#[derive(Debug, Clone)]
pub(crate) struct Seen {
    /// The node.
    pub(crate) node: String,
    /// The event as the API sent it (`type`, `at_ms`, …).
    pub(crate) event: Value,
}

/// One resource sample.
#[derive(Debug, Clone)]
pub(crate) struct Usage {
    pub(crate) at_ms: u64,
    pub(crate) node: String,
    pub(crate) cpu_percent: f64,
    pub(crate) rss_bytes: u64,
}

/// Everything observed so far, shared by the observer threads.
#[derive(Debug, Default)]
pub(crate) struct Observations {
    pub(crate) events: Mutex<Vec<Seen>>,
    pub(crate) usage: Mutex<Vec<Usage>>,
}

impl Observations {
    /// A copy of the events so far.
    pub(crate) fn events(&self) -> Vec<Seen> {
        self.events.lock().map(|e| e.clone()).unwrap_or_default()
    }

    /// Whether `node` has a `subscribed` event after `since_ms` (its stream is live).
    pub(crate) fn subscribed_since(&self, node: &str, since_ms: u64) -> bool {
        self.events.lock().is_ok_and(|e| {
            e.iter().rev().any(|s| {
                s.node == node
                    && s.event["type"] == "subscribed"
                    && s.event["at_ms"].as_u64().unwrap_or(0) >= since_ms
            })
        })
    }
}

/// A running `souk node events --json` for one node incarnation.
pub(crate) struct Follower {
    child: Child,
    reader: Option<JoinHandle<()>>,
}

impl Follower {
    /// Starts following `node` (on `data_dir`); its events go to `obs`.
    pub(crate) fn start(
        souk: &Souk,
        node: &str,
        data_dir: &std::path::Path,
        obs: Arc<Observations>,
    ) -> anyhow::Result<Self> {
        let mut cmd = souk.command(Some(data_dir), &["node", "events", "--json"]);
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::null())
            .stdin(Stdio::null());
        let mut child = cmd.spawn()?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow::anyhow!("no stdout from souk node events"))?;
        let node = node.to_owned();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let Ok(event) = serde_json::from_str::<Value>(&line) else {
                    continue;
                };
                if event["type"] == "heartbeat" {
                    continue;
                }
                if let Ok(mut e) = obs.events.lock() {
                    e.push(Seen {
                        node: node.clone(),
                        event,
                    });
                }
            }
        });
        Ok(Follower {
            child,
            reader: Some(reader),
        })
    }

    /// Stops following (the events read so far are kept).
    pub(crate) fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
    }
}

/// Samples CPU and RSS of the processes in `pids` (name → pid, updated by the runner as
/// nodes restart) every 500 ms until `stop` is set.
pub(crate) fn sample_resources(
    pids: Arc<Mutex<HashMap<String, u32>>>,
    obs: Arc<Observations>,
    stop: Arc<AtomicBool>,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let tick = clock_ticks();
        let mut last: HashMap<(String, u32), (u64, u64)> = HashMap::new();
        while !stop.load(Ordering::SeqCst) {
            let now = now_ms();
            let current: Vec<(String, u32)> = pids
                .lock()
                .map(|p| p.iter().map(|(n, p)| (n.clone(), *p)).collect())
                .unwrap_or_default();
            for (name, pid) in current {
                let Some((cpu_ticks, rss)) = read_proc(pid) else {
                    continue;
                };
                let key = (name.clone(), pid);
                if let Some((t0, c0)) = last.get(&key)
                    && now > *t0
                {
                    let cpu_s = cpu_ticks.saturating_sub(*c0) as f64 / tick;
                    let wall_s = (now - t0) as f64 / 1000.0;
                    if let Ok(mut u) = obs.usage.lock() {
                        u.push(Usage {
                            at_ms: now,
                            node: name.clone(),
                            cpu_percent: 100.0 * cpu_s / wall_s,
                            rss_bytes: rss,
                        });
                    }
                }
                last.insert(key, (now, cpu_ticks));
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    })
}

/// Total CPU time (utime + stime, clock ticks) and RSS (bytes) of `pid`.
pub(crate) fn read_proc(pid: u32) -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may contain spaces) start at state (field 3).
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    // No VmRSS: the process is exiting (a zombie); no sample.
    let rss_kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())?;
    Some((utime + stime, rss_kb * 1024))
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 on Linux unless configured otherwise).
fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn own_process_usage_reads_from_proc() {
        let (ticks, rss) = read_proc(std::process::id()).unwrap();
        assert!(rss > 0);
        let _ = ticks;
        assert!(clock_ticks() > 0.0);
    }
}
