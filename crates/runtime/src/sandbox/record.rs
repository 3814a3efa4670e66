//! Crash recovery: [`SandboxRecord`], what the node stores durably before a hire's agent
//! starts, and [`kill_leftover`], which a restarted node calls for every hire that was
//! running, before resuming it, so a hire never runs twice at once.
//!
//! Never signals a process it cannot identify: pids are checked against their recorded
//! start time and boot id through pidfds; cgroups are the hire's own.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::SandboxError;
use super::cgroup;
use super::procfs::{self, ProcessRef, Tracked};

/// How long [`kill_leftover`] waits for killed processes and cgroups to go.
const LEFTOVER_TIMEOUT: Duration = Duration::from_secs(10);

/// One sandbox, as the node records it before the agent starts.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SandboxRecord {
    /// The process the node spawned (bubblewrap, or the helper when the sandbox is off).
    pub pid: u32,
    /// Its start time (field 22 of `/proc/PID/stat`).
    pub start_time: u64,
    /// The sandbox's init (pid 1 of its pid namespace) as the host sees it, when sandboxed.
    pub init: Option<ProcessRef>,
    /// `/proc/sys/kernel/random/boot_id` when it started (pids mean nothing after a reboot).
    pub boot_id: String,
    /// The hire's cgroup directories (empty without cgroups).
    pub cgroups: Vec<PathBuf>,
}

impl SandboxRecord {
    /// The spawned process.
    pub fn process(&self) -> ProcessRef {
        ProcessRef {
            pid: self.pid,
            start_time: self.start_time,
        }
    }
}

/// Kills whatever is left of the sandbox `rec` describes and waits until it is gone: the
/// recorded processes if they are still the same processes (pid, start time and boot id
/// match; a reused pid is never signalled), the members of the session its init leads (while
/// that init is alive), and everything in its cgroups, which are then removed.
///
/// Returns whether anything was found alive. Blocking (call it from `spawn_blocking`).
/// Without namespaces and without a cgroup, a process that started its own session after
/// its helper died cannot be found.
pub fn kill_leftover(rec: &SandboxRecord) -> Result<bool, SandboxError> {
    let boot = procfs::boot_id().map_err(SandboxError::Proc)?;
    if boot != rec.boot_id {
        // Another boot: none of its processes or cgroups exist any more.
        return Ok(false);
    }
    // Only per-hire cgroups this runtime creates: a damaged record must not make it kill a
    // whole hierarchy.
    if let Some(bad) = rec.cgroups.iter().find(|d| !cgroup::is_hire_cgroup(d)) {
        return Err(SandboxError::BadRecord {
            detail: format!("{} is not a hire cgroup", bad.display()),
        });
    }
    let deadline = Instant::now() + LEFTOVER_TIMEOUT;
    let leader = rec.init.unwrap_or(rec.process());
    let mut found = false;
    let mut held: Vec<Tracked> = Vec::new();
    // Rounds: a process may fork between a scan and the kill; its child is found next time.
    for _ in 0..8 {
        let mut batch: Vec<Tracked> = [rec.init, Some(rec.process())]
            .into_iter()
            .flatten()
            .filter_map(Tracked::open_ref)
            .collect();
        // The members of the session it leads, only while the leader is provably ours.
        if Tracked::open_ref(leader).is_some() {
            batch.extend(procfs::all_pids().into_iter().filter_map(|pid| {
                Tracked::open_if(pid, |st| {
                    pid != leader.pid
                        && st.session == leader.pid
                        && st.start_time >= leader.start_time
                })
            }));
        }
        let mut in_cgroup = false;
        for dir in &rec.cgroups {
            in_cgroup |= cgroup::kill_all(dir);
        }
        if batch.is_empty() && !in_cgroup {
            break;
        }
        found = true;
        for t in &batch {
            t.kill();
        }
        for t in &batch {
            t.wait(deadline.saturating_duration_since(Instant::now()));
        }
        held.extend(batch);
    }
    if let Some(t) = held.iter().find(|t| !t.exited()) {
        return Err(SandboxError::StillAlive {
            what: format!("pid {}", t.pid),
        });
    }
    let left = deadline.saturating_duration_since(Instant::now());
    cgroup::remove_dirs(&rec.cgroups, left.max(Duration::from_secs(1))).map_err(|e| {
        SandboxError::StillAlive {
            what: format!("cgroup: {e}"),
        }
    })?;
    Ok(found)
}
