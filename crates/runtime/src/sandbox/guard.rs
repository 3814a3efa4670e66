//! [`Confinement`]: what the runtime holds for one running sandbox (the sandbox's init
//! through a pidfd, the hire's cgroup, the record), and the one place that kills a sandbox
//! and removes its cgroup, on every end: normal exit, kill, cancel, drop.
//!
//! Killing is synchronous (signals only); waiting for the processes to be gone is the
//! caller's (it reaps the process it spawned) plus [`Confinement::release`] for the cgroup.

use std::time::Duration;

use super::SandboxError;
use super::cgroup::HireCgroup;
use super::limits::{LimitHits, ResourceLimits};
use super::procfs::{self, ProcessRef, Tracked};
use super::record::SandboxRecord;

/// How long removing a cgroup may wait for its processes to go.
const CGROUP_REMOVE_TIMEOUT: Duration = Duration::from_secs(10);

/// One running sandbox.
#[derive(Debug)]
pub(crate) struct Confinement {
    /// Namespaces: the spawned process is bubblewrap and `init` is the sandbox's pid 1.
    /// Without: the spawned process is the helper's init itself (a session leader and
    /// child subreaper).
    isolated: bool,
    /// The spawned process.
    outer: ProcessRef,
    /// The sandbox's init (isolated runs, once it is up).
    init: Option<Tracked>,
    init_ref: Option<ProcessRef>,
    cgroup: Option<HireCgroup>,
    limits: ResourceLimits,
    boot_id: String,
    released: bool,
}

impl Confinement {
    /// A sandbox just spawned as `outer_pid`. (If its start time cannot be read, the record
    /// says 0, which never matches a live process: a restarted node then leaves it alone.)
    pub(crate) fn new(
        isolated: bool,
        outer_pid: u32,
        cgroup: Option<HireCgroup>,
        limits: ResourceLimits,
    ) -> Confinement {
        Confinement {
            isolated,
            outer: ProcessRef::of(outer_pid).unwrap_or(ProcessRef {
                pid: outer_pid,
                start_time: 0,
            }),
            init: None,
            init_ref: None,
            cgroup,
            limits,
            boot_id: super::current_boot_id(),
            released: false,
        }
    }

    /// Called once the sandbox reported ready: finds the sandbox's init (the only child of
    /// bubblewrap) and holds it through a pidfd.
    pub(crate) fn sandbox_up(&mut self) -> Result<(), SandboxError> {
        if !self.isolated {
            return Ok(());
        }
        let kids = procfs::children(self.outer.pid);
        let [pid] = kids.as_slice() else {
            return Err(SandboxError::Setup {
                detail: format!("expected one sandbox process, found {}", kids.len()),
            });
        };
        let outer = self.outer.pid;
        let init =
            Tracked::open_if(*pid, |st| st.ppid == outer).ok_or_else(|| SandboxError::Setup {
                detail: "the sandbox's init exited".into(),
            })?;
        self.init_ref = Some(ProcessRef::of(init.pid).map_err(SandboxError::Proc)?);
        self.init = Some(init);
        Ok(())
    }

    /// What the node stores before the agent starts.
    pub(crate) fn record(&self) -> SandboxRecord {
        SandboxRecord {
            pid: self.outer.pid,
            start_time: self.outer.start_time,
            init: self.init_ref,
            boot_id: self.boot_id.clone(),
            cgroups: self
                .cgroup
                .as_ref()
                .map(HireCgroup::dirs)
                .unwrap_or_default(),
        }
    }

    /// The hire's limits.
    pub(crate) fn limits(&self) -> &ResourceLimits {
        &self.limits
    }

    /// What the cgroup's limits refused (zero without a cgroup).
    pub(crate) fn hits(&self) -> LimitHits {
        self.cgroup
            .as_ref()
            .map(HireCgroup::hits)
            .unwrap_or_default()
    }

    /// Kills every process of the sandbox except the spawned one (which the caller kills
    /// and reaps after this): the init (its pid namespace goes with it), or, without
    /// namespaces, every descendant of the helper; and everything in the cgroup.
    pub(crate) fn kill_now(&self) {
        if let Some(init) = &self.init {
            init.kill();
        }
        if !self.isolated {
            procfs::kill_descendants(self.outer.pid, 8);
        }
        if let Some(cg) = &self.cgroup {
            cg.kill_all();
        }
    }

    /// After the spawned process was reaped: kills what is left in the cgroup and waits until
    /// it is empty (so no process of the hire is left when this returns), then removes the
    /// cgroup in the background (removing a memory cgroup takes milliseconds; nothing waits
    /// for it, and [`kill_leftover`](super::kill_leftover) removes one a crash left behind).
    pub(crate) async fn release(&mut self) {
        if self.released {
            return;
        }
        self.released = true;
        if let Some(init) = &self.init
            && !init.exited()
        {
            init.kill();
        }
        let Some(cg) = self.cgroup.take() else {
            return;
        };
        let emptied =
            tokio::task::spawn_blocking(move || (cg.empty(CGROUP_REMOVE_TIMEOUT), cg)).await;
        let Ok((empty, cg)) = emptied else {
            return;
        };
        if !empty {
            tracing::warn!(target: "souk_runtime::sandbox", dirs = ?cg.dirs(), "processes of a hire survived being killed");
        }
        // Detached: the task owns the cgroup until it is removed.
        drop(tokio::task::spawn_blocking(move || {
            if let Err(e) = cg.remove(CGROUP_REMOVE_TIMEOUT) {
                tracing::warn!(target: "souk_runtime::sandbox", "cannot remove a hire's cgroup: {e}");
            }
        }));
    }
}

impl Drop for Confinement {
    fn drop(&mut self) {
        if self.released {
            return;
        }
        self.kill_now();
        if let Some(cg) = self.cgroup.take() {
            // No async context here: a short-lived thread waits for the cgroup to empty.
            let spawned = std::thread::Builder::new()
                .name("souk-cgroup-cleanup".into())
                .spawn(move || {
                    if let Err(e) = cg.remove(CGROUP_REMOVE_TIMEOUT) {
                        tracing::warn!(target: "souk_runtime::sandbox", "cannot remove a hire's cgroup: {e}");
                    }
                });
            if let Err(e) = spawned {
                tracing::warn!(target: "souk_runtime::sandbox", "cannot clean up a hire's cgroup: {e}");
            }
        }
    }
}
