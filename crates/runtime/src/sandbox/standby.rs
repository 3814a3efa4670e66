//! Standby sandboxes: a few `enter --standby` helper processes started ahead of any hire,
//! each already in its own empty cgroup and waiting for its command ([`helper`]). A cold
//! start takes one, writes the agent's limits into its cgroup and sends it the command, and
//! so does not wait for the cgroup join: writing a pid to `cgroup.procs` waits for a kernel
//! RCU grace period (about 10 ms measured here, most of a cold start's sandbox time).
//!
//! A standby holds nothing of a hire: no agent code, no environment, no data; it runs on the
//! host as the node's helper until its command comes, and dies with the node. Each serves one
//! launch; the pool starts a successor as soon as one is taken.
//!
//! [`helper`]: super::helper

use std::ffi::OsString;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;
use tokio::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command};

use super::cgroup::HireCgroup;
use super::helper::STANDBY_LINE;
use super::procfs::ProcessRef;
use super::{CgroupParent, ResourceLimits, SandboxRecord, SandboxSpec};

/// How long a standby may take to join its cgroups.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// After a standby failed to start, how long before the pool tries again.
const RETRY_AFTER: Duration = Duration::from_secs(30);

/// Keeps each standby's [`SandboxRecord`] where a restarted node finds it (the node stores
/// it durably); a standby is handed out only once this returned true. A node that crashes
/// then kills what the record names and removes its cgroup
/// ([`kill_leftover`](super::kill_leftover)).
pub type StandbyRecorder =
    Arc<dyn Fn(SandboxRecord) -> Pin<Box<dyn Future<Output = bool> + Send>> + Send + Sync>;

/// A standby helper, joined to its cgroup, waiting for its command on stdin.
#[derive(Debug)]
pub(crate) struct Standby {
    pub(crate) child: Child,
    pub(crate) stdin: ChildStdin,
    pub(crate) stdout: ChildStdout,
    pub(crate) stderr: ChildStderr,
    pub(crate) cgroup: HireCgroup,
    /// Its pool's recorder stored its record.
    pub(crate) recorded: bool,
}

impl Standby {
    /// Starts one (on the caller's thread: a standby dies with the thread that spawned it,
    /// so call it from the runtime's own threads, not a blocking one).
    async fn start(helper: &[OsString], parent: &CgroupParent) -> Result<Standby, String> {
        let program = helper.first().ok_or("no sandbox helper is configured")?;
        let parent = parent.clone();
        let cgroup = tokio::task::spawn_blocking(move || {
            HireCgroup::create(&parent, &ResourceLimits::NONE).map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| e.to_string())??;
        let mut cmd = Command::new(program);
        cmd.args(&helper[1..])
            .args(["enter", "--standby", "--parent"])
            .arg(std::process::id().to_string());
        for procs in cgroup.procs_files() {
            cmd.arg("--cgroup").arg(procs);
        }
        cmd.current_dir("/")
            .env_clear()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().map_err(|e| format!("cannot start: {e}"))?;
        let (Some(stdin), Some(mut stdout), Some(mut stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err("missing stdio pipe".into());
        };
        match tokio::time::timeout(START_TIMEOUT, read_line(&mut stdout)).await {
            Ok(Some(line)) if line == STANDBY_LINE.as_bytes() => Ok(Standby {
                child,
                stdin,
                stdout,
                stderr,
                cgroup,
                recorded: false,
            }),
            Ok(_) => {
                let _ = child.kill().await;
                let mut why = String::new();
                let _ = (&mut stderr).take(4096).read_to_string(&mut why).await;
                Err(format!("did not come up: {}", why.trim()))
            }
            Err(_) => {
                // Gone before its cgroup is dropped, so that the cgroup can be removed.
                let _ = child.kill().await;
                Err(format!("not up after {} s", START_TIMEOUT.as_secs()))
            }
        }
    }

    fn is_alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// What a restarted node needs to stop it: the process (which becomes the sandbox's
    /// outer process when it is used) and its cgroups.
    fn record(&self) -> SandboxRecord {
        let pid = self.child.id().unwrap_or_default();
        SandboxRecord {
            pid,
            start_time: ProcessRef::of(pid).map_or(0, |p| p.start_time),
            init: None,
            boot_id: super::current_boot_id(),
            cgroups: self.cgroup.dirs(),
        }
    }
}

/// Reads one line, a byte at a time so that nothing after it is consumed (the sandbox's
/// ready line and the agent's messages follow on the same pipe); `None` at end of file or
/// past 128 bytes.
async fn read_line(stdout: &mut ChildStdout) -> Option<Vec<u8>> {
    let mut line = Vec::new();
    loop {
        let mut b = [0u8; 1];
        match stdout.read(&mut b).await {
            Ok(1) if b[0] == b'\n' => return Some(line),
            Ok(1) if line.len() < 128 => line.push(b[0]),
            _ => return None,
        }
    }
}

/// The standby sandboxes of one node (see the module documentation).
pub struct StandbyPool {
    helper: Vec<OsString>,
    parent: CgroupParent,
    size: usize,
    recorder: Option<StandbyRecorder>,
    state: Mutex<PoolState>,
}

#[derive(Default)]
struct PoolState {
    ready: Vec<Standby>,
    starting: usize,
    /// When a start last failed: none is tried for [`RETRY_AFTER`].
    failed: Option<Instant>,
}

impl std::fmt::Debug for StandbyPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StandbyPool")
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

/// Pools compare by identity (a [`crate::RunConfig`] holds one).
impl PartialEq for StandbyPool {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self, other)
    }
}
impl Eq for StandbyPool {}

impl StandbyPool {
    /// A pool of `size` standbys for hires confined by `spec`, each recorded by `recorder`
    /// before it is handed out; `None` when they would not help (no namespaces, no cgroups)
    /// or `size` is 0. Starts none yet ([`Self::fill`]).
    pub fn new(
        spec: &SandboxSpec,
        size: usize,
        recorder: Option<StandbyRecorder>,
    ) -> Option<Arc<StandbyPool>> {
        let parent = spec.cgroups.clone()?;
        if spec.bwrap.is_none() || size == 0 || !(parent.has_pids() || parent.has_memory()) {
            return None;
        }
        let first = spec.helper.first()?;
        let program = std::fs::canonicalize(first).ok()?;
        let mut helper = vec![program.into_os_string()];
        helper.extend(spec.helper.iter().skip(1).cloned());
        Some(Arc::new(StandbyPool {
            helper,
            parent,
            size,
            recorder,
            state: Mutex::new(PoolState::default()),
        }))
    }

    fn with<T>(&self, f: impl FnOnce(&mut PoolState) -> T) -> T {
        match self.state.lock() {
            Ok(mut s) => f(&mut s),
            Err(poisoned) => f(&mut poisoned.into_inner()),
        }
    }

    /// Whether a standby of this pool can serve a hire confined by `spec`.
    pub(crate) fn serves(&self, spec: &SandboxSpec) -> bool {
        spec.bwrap.is_some()
            && spec.cgroups.as_ref() == Some(&self.parent)
            && spec.helper.get(1..) == self.helper.get(1..)
            && spec
                .helper
                .first()
                .and_then(|h| std::fs::canonicalize(h).ok())
                .is_some_and(|h| h.as_os_str() == self.helper[0])
    }

    /// Starts standbys until `size` are ready or starting. Must run on the runtime's own
    /// threads (see [`Standby::start`]); does not wait for them.
    pub fn fill(self: &Arc<Self>) {
        let missing = self.with(|s| {
            if s.failed.is_some_and(|t| t.elapsed() < RETRY_AFTER) {
                return 0;
            }
            let n = self.size.saturating_sub(s.ready.len() + s.starting);
            s.starting += n;
            n
        });
        for _ in 0..missing {
            let pool = Arc::clone(self);
            tokio::spawn(async move {
                let mut started = Standby::start(&pool.helper, &pool.parent).await;
                if let (Ok(sb), Some(recorder)) = (&mut started, &pool.recorder) {
                    sb.recorded = recorder(sb.record()).await;
                    if !sb.recorded {
                        started = Err("its record could not be stored".into());
                    }
                }
                let failed = pool.with(|s| {
                    s.starting -= 1;
                    match started {
                        Ok(sb) => {
                            s.ready.push(sb);
                            None
                        }
                        Err(e) => {
                            s.failed = Some(Instant::now());
                            Some(e)
                        }
                    }
                });
                if let Some(e) = failed {
                    tracing::warn!(target: "souk_runtime::agent", "no standby sandbox (cold starts join their cgroup themselves; trying again in {} s): {e}", RETRY_AFTER.as_secs());
                }
            });
        }
    }

    /// A live standby, if one is ready; starts its successor.
    pub(crate) fn take(self: &Arc<Self>) -> Option<Standby> {
        let found = self.with(|s| {
            while let Some(mut sb) = s.ready.pop() {
                if sb.is_alive() {
                    return Some(sb);
                }
            }
            None
        });
        self.fill();
        found
    }

    /// How many standbys are ready.
    pub fn ready(&self) -> usize {
        self.with(|s| s.ready.len())
    }

    /// Stops every standby and removes its cgroup; blocks until they are gone (about a
    /// second at most), so call it off the async threads.
    pub fn clear(&self) {
        let gone = self.with(|s| std::mem::take(&mut s.ready));
        for mut sb in gone {
            let _ = sb.child.start_kill();
            let _ = sb.cgroup.remove(Duration::from_secs(1));
        }
    }

    /// The cgroup directories of the ready standbys (for tests and diagnostics).
    pub fn cgroup_dirs(&self) -> Vec<PathBuf> {
        self.with(|s| s.ready.iter().flat_map(|sb| sb.cgroup.dirs()).collect())
    }
}
