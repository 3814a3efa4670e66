//! Per-hire cgroups: finding where the node may create them ([`CgroupParent`], cgroup v2
//! with `pids`/`memory` delegated, or the v1 `pids` and `memory` hierarchies as root),
//! creating one per hire with its limits, reading what its limits refused, killing
//! everything in it, and removing it.
//!
//! Never touches a cgroup it did not create (every per-hire cgroup is a fresh
//! `souk-<random>` directory), and never moves the node itself.

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::limits::{LimitHits, ResourceLimits};
use super::procfs::Tracked;

/// Tasks the sandbox itself adds to a hire's pids cgroup (bubblewrap's monitor, the helper
/// and its forwarder thread), on top of `max_processes`.
pub const SANDBOX_TASKS: u64 = 3;

/// Where per-hire cgroups are created.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CgroupParent {
    /// cgroup v2: a directory whose `cgroup.subtree_control` enables the controllers below.
    V2 {
        /// The parent directory (e.g. a systemd-delegated `…/souk.service/hires`).
        dir: PathBuf,
        /// `pids` is enabled for children.
        pids: bool,
        /// `memory` is enabled for children.
        memory: bool,
    },
    /// cgroup v1 (hybrid or legacy hierarchy): the node's own cgroups in the `pids` and
    /// `memory` hierarchies, where it may create children (as root).
    V1 {
        /// The node's cgroup in the `pids` hierarchy.
        pids: Option<PathBuf>,
        /// The node's cgroup in the `memory` hierarchy.
        memory: Option<PathBuf>,
    },
}

impl CgroupParent {
    /// True if hires get a memory cgroup.
    pub fn has_memory(&self) -> bool {
        match self {
            CgroupParent::V2 { memory, .. } => *memory,
            CgroupParent::V1 { memory, .. } => memory.is_some(),
        }
    }

    /// True if hires get a pids cgroup.
    pub fn has_pids(&self) -> bool {
        match self {
            CgroupParent::V2 { pids, .. } => *pids,
            CgroupParent::V1 { pids, .. } => pids.is_some(),
        }
    }

    /// E.g. `cgroup v1 (pids, memory)`.
    pub fn describe(&self) -> String {
        let v = match self {
            CgroupParent::V2 { .. } => 2,
            CgroupParent::V1 { .. } => 1,
        };
        let controllers: Vec<&str> = [(self.has_pids(), "pids"), (self.has_memory(), "memory")]
            .into_iter()
            .filter_map(|(on, name)| on.then_some(name))
            .collect();
        format!("cgroup v{v} ({})", controllers.join(", "))
    }

    /// Finds a usable parent: `explicit` (a cgroup v2 directory the operator delegated),
    /// else the node's own cgroup v2 if it can enable `pids`/`memory` for children, else the
    /// node's own v1 `pids` and `memory` cgroups. Each candidate is checked by creating and
    /// removing a probe cgroup. `Err` says why none is usable.
    pub fn detect(explicit: Option<&Path>) -> Result<CgroupParent, String> {
        if let Some(dir) = explicit {
            let parent = v2_parent(dir)?;
            check_writable(&parent)?;
            return Ok(parent);
        }
        let mounts = std::fs::read_to_string("/proc/self/mountinfo")
            .map_err(|e| format!("cannot read /proc/self/mountinfo: {e}"))?;
        let own = std::fs::read_to_string("/proc/self/cgroup")
            .map_err(|e| format!("cannot read /proc/self/cgroup: {e}"))?;
        let mounts = parse_mountinfo(&mounts);
        let mut why = Vec::new();
        if let Some(dir) = own_v2_dir(&mounts, &own) {
            match v2_parent(&dir).and_then(|p| check_writable(&p).map(|()| p)) {
                Ok(p) => return Ok(p),
                Err(e) => why.push(format!("cgroup v2: {e}")),
            }
        }
        let pids = own_v1_dir(&mounts, &own, "pids");
        let memory = own_v1_dir(&mounts, &own, "memory");
        if pids.is_some() || memory.is_some() {
            let parent = CgroupParent::V1 { pids, memory };
            match check_writable(&parent) {
                Ok(()) => return Ok(parent),
                Err(e) => why.push(format!("cgroup v1: {e}")),
            }
        } else {
            why.push("no cgroup v1 pids or memory hierarchy is mounted".into());
        }
        Err(why.join("; "))
    }
}

/// One line of `/proc/self/mountinfo`, the fields used here.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Mount {
    root: String,
    point: PathBuf,
    fstype: String,
    super_options: String,
}

/// Undoes mountinfo's octal escapes (`\040` for a space).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_mountinfo(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let (pre, post) = line.split_once(" - ")?;
            let pre: Vec<&str> = pre.split(' ').collect();
            let post: Vec<&str> = post.split(' ').collect();
            Some(Mount {
                root: unescape(pre.get(3)?),
                point: PathBuf::from(unescape(pre.get(4)?)),
                fstype: (*post.first()?).to_owned(),
                super_options: (*post.get(2)?).to_owned(),
            })
        })
        .collect()
}

/// `mount point + (path - mount root)`, if `path` is below the mount's root.
fn under_mount(m: &Mount, path: &str) -> Option<PathBuf> {
    let rel = if m.root == "/" {
        path.strip_prefix('/')?
    } else {
        let rest = path.strip_prefix(m.root.as_str())?;
        if !rest.is_empty() && !rest.starts_with('/') {
            return None;
        }
        rest.trim_start_matches('/')
    };
    Some(if rel.is_empty() {
        m.point.clone()
    } else {
        m.point.join(rel)
    })
}

fn own_v2_dir(mounts: &[Mount], own: &str) -> Option<PathBuf> {
    let path = own.lines().find_map(|l| l.strip_prefix("0::"))?;
    mounts
        .iter()
        .filter(|m| m.fstype == "cgroup2")
        .find_map(|m| under_mount(m, path))
}

fn own_v1_dir(mounts: &[Mount], own: &str, controller: &str) -> Option<PathBuf> {
    let path = own.lines().find_map(|l| {
        let mut parts = l.splitn(3, ':');
        let (_, list, path) = (parts.next()?, parts.next()?, parts.next()?);
        list.split(',').any(|c| c == controller).then_some(path)
    })?;
    mounts
        .iter()
        .filter(|m| m.fstype == "cgroup" && m.super_options.split(',').any(|o| o == controller))
        .find_map(|m| under_mount(m, path))
}

fn words(path: &Path) -> HashSet<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .split_ascii_whitespace()
        .map(str::to_owned)
        .collect()
}

/// A v2 parent at `dir`: enables `pids` and `memory` for its children if they are available
/// and not enabled yet (this fails when `dir` holds processes and is not the root).
fn v2_parent(dir: &Path) -> Result<CgroupParent, String> {
    let available = words(&dir.join("cgroup.controllers"));
    let wanted: Vec<&str> = ["pids", "memory"]
        .into_iter()
        .filter(|c| available.contains(*c))
        .collect();
    if wanted.is_empty() {
        return Err(format!(
            "{} offers neither the pids nor the memory controller",
            dir.display()
        ));
    }
    let enabled = words(&dir.join("cgroup.subtree_control"));
    let missing: Vec<String> = wanted
        .iter()
        .filter(|c| !enabled.contains(**c))
        .map(|c| format!("+{c}"))
        .collect();
    if !missing.is_empty() {
        std::fs::write(dir.join("cgroup.subtree_control"), missing.join(" ")).map_err(|e| {
            format!(
                "cannot enable {} for the children of {}: {e}",
                missing.join(" "),
                dir.display()
            )
        })?;
    }
    Ok(CgroupParent::V2 {
        dir: dir.to_owned(),
        pids: wanted.contains(&"pids"),
        memory: wanted.contains(&"memory"),
    })
}

/// Creates and removes a probe cgroup under `parent`.
fn check_writable(parent: &CgroupParent) -> Result<(), String> {
    let cg = HireCgroup::create(parent, &ResourceLimits::NONE).map_err(|e| e.to_string())?;
    cg.remove(Duration::from_secs(2)).map_err(|e| e.to_string())
}

/// True for a path this module creates for a hire: `/sys/fs/cgroup/.../souk-<16 hex>`, or
/// a missing directory of that name (already removed).
pub(crate) fn is_hire_cgroup(dir: &Path) -> bool {
    let name_ok = dir
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix("souk-"))
        .is_some_and(|hex| hex.len() == 16 && hex.bytes().all(|b| b.is_ascii_hexdigit()));
    let clean = dir.is_absolute()
        && dir.components().all(|c| {
            matches!(
                c,
                std::path::Component::RootDir | std::path::Component::Normal(_)
            )
        });
    name_ok && clean && (!dir.exists() || dir.join("cgroup.procs").is_file())
}

/// A fresh `souk-<16 hex>` name.
fn fresh_name() -> io::Result<String> {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).map_err(|e| io::Error::other(e.to_string()))?;
    Ok(format!(
        "souk-{}",
        b.iter().map(|x| format!("{x:02x}")).collect::<String>()
    ))
}

/// A cgroup operation failed.
#[derive(Debug, thiserror::Error)]
#[error("cgroup {path}: {source}")]
pub(crate) struct CgroupIoError {
    pub(crate) path: PathBuf,
    pub(crate) source: io::Error,
}

fn write(path: PathBuf, value: &str) -> Result<(), CgroupIoError> {
    std::fs::write(&path, value).map_err(|source| CgroupIoError { path, source })
}

/// One hire's cgroup (one directory in v2; one per hierarchy in v1).
#[derive(Debug)]
pub(crate) struct HireCgroup {
    pids: Option<PathBuf>,
    memory: Option<PathBuf>,
    /// Under a v2 hierarchy (else v1).
    v2: bool,
    /// The parent has the pids (memory) controller.
    has_pids: bool,
    has_memory: bool,
}

impl HireCgroup {
    /// Creates the hire's cgroup under `parent` and writes its limits.
    pub(crate) fn create(
        parent: &CgroupParent,
        limits: &ResourceLimits,
    ) -> Result<HireCgroup, CgroupIoError> {
        let name = fresh_name().map_err(|source| CgroupIoError {
            path: PathBuf::new(),
            source,
        })?;
        let mkdir = |dir: &Path| {
            let path = dir.join(&name);
            std::fs::create_dir(&path).map_err(|source| CgroupIoError {
                path: path.clone(),
                source,
            })?;
            Ok::<_, CgroupIoError>(path)
        };
        let mut cg = HireCgroup {
            pids: None,
            memory: None,
            v2: matches!(parent, CgroupParent::V2 { .. }),
            has_pids: parent.has_pids(),
            has_memory: parent.has_memory(),
        };
        let written = (|| {
            match parent {
                CgroupParent::V2 { dir, pids, memory } => {
                    let d = mkdir(dir)?;
                    cg.pids = pids.then(|| d.clone());
                    cg.memory = memory.then(|| d.clone());
                    if cg.pids.is_none() && cg.memory.is_none() {
                        cg.pids = Some(d); // kept only to be removed
                    }
                }
                CgroupParent::V1 { pids, memory } => {
                    if let Some(p) = pids {
                        cg.pids = Some(mkdir(p)?);
                    }
                    if let Some(m) = memory {
                        cg.memory = Some(mkdir(m)?);
                    }
                }
            }
            cg.set_limits(limits)
        })();
        match written {
            Ok(()) => Ok(cg),
            Err(e) => {
                let _ = cg.remove(Duration::from_secs(1));
                Err(e)
            }
        }
    }

    /// Writes `limits` into the cgroup (a limit left `None` is not written).
    pub(crate) fn set_limits(&self, limits: &ResourceLimits) -> Result<(), CgroupIoError> {
        {
            let v2 = self.v2;
            if let (Some(dir), Some(n), true) = (&self.pids, limits.max_processes, self.has_pids) {
                write(dir.join("pids.max"), &(n + SANDBOX_TASKS).to_string())?;
            }
            if let (Some(dir), Some(n), true) = (&self.memory, limits.memory_bytes, self.has_memory)
            {
                if v2 {
                    write(dir.join("memory.max"), &n.to_string())?;
                    if dir.join("memory.swap.max").exists() {
                        write(dir.join("memory.swap.max"), "0")?;
                    }
                    // On OOM, kill the whole hire rather than one process of it.
                    if dir.join("memory.oom.group").exists() {
                        write(dir.join("memory.oom.group"), "1")?;
                    }
                } else {
                    write(dir.join("memory.limit_in_bytes"), &n.to_string())?;
                    if dir.join("memory.memsw.limit_in_bytes").exists() {
                        write(dir.join("memory.memsw.limit_in_bytes"), &n.to_string())?;
                    }
                }
            }
            Ok(())
        }
    }

    /// The hire's cgroup directories (one or two).
    pub(crate) fn dirs(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = self.pids.iter().chain(&self.memory).cloned().collect();
        v.dedup();
        v
    }

    /// The `cgroup.procs` files a process writes its pid to, to join.
    pub(crate) fn procs_files(&self) -> Vec<PathBuf> {
        self.dirs()
            .into_iter()
            .map(|d| d.join("cgroup.procs"))
            .collect()
    }

    /// What the limits refused so far.
    pub(crate) fn hits(&self) -> LimitHits {
        let counter = |file: Option<PathBuf>, key: &str| {
            let text = file.and_then(|f| std::fs::read_to_string(f).ok());
            text.as_deref()
                .unwrap_or_default()
                .lines()
                .find_map(|l| l.strip_prefix(key)?.trim().parse::<u64>().ok())
                .unwrap_or(0)
        };
        let memory_file = self.memory.as_ref().map(|d| {
            let v2 = d.join("memory.events");
            if v2.exists() {
                v2
            } else {
                d.join("memory.oom_control")
            }
        });
        LimitHits {
            oom_kills: counter(memory_file, "oom_kill "),
            pids_max: counter(self.pids.as_ref().map(|d| d.join("pids.events")), "max "),
        }
    }

    /// Kills every process in the cgroup (no waiting).
    pub(crate) fn kill_all(&self) -> bool {
        let mut any = false;
        for dir in self.dirs() {
            any |= kill_all(&dir);
        }
        any
    }

    /// Kills what is left and waits until the cgroup holds no process; false if some are
    /// still listed after `timeout`.
    pub(crate) fn empty(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut pause = Duration::from_millis(1);
        loop {
            if !self.kill_all() {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }

    /// Kills what is left, waits until the cgroup is empty, and removes it.
    pub(crate) fn remove(mut self, timeout: Duration) -> io::Result<()> {
        let dirs = self.dirs();
        self.pids = None;
        self.memory = None;
        remove_dirs(&dirs, timeout)
    }
}

impl Drop for HireCgroup {
    /// A cgroup nobody removed (an error path, a canceled launch): kill what is in it and
    /// try once to remove it.
    fn drop(&mut self) {
        let dirs = self.dirs();
        if !dirs.is_empty() {
            let _ = remove_dirs(&dirs, Duration::ZERO);
        }
    }
}

/// Pids in `dir/cgroup.procs` (empty if the cgroup is gone).
fn procs(dir: &Path) -> Vec<u32> {
    std::fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .split_ascii_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// Kills every process in the cgroup at `dir` (v2 `cgroup.kill` when there is one); true if
/// it held any.
pub(crate) fn kill_all(dir: &Path) -> bool {
    let listed = procs(dir);
    if listed.is_empty() {
        return false;
    }
    let kill_file = dir.join("cgroup.kill");
    if kill_file.exists() && std::fs::write(&kill_file, "1").is_ok() {
        return true;
    }
    // Open every listed process first, then signal those still listed: a pid that left the
    // cgroup (exited, maybe reused) between the two reads is not signalled.
    let opened: Vec<Tracked> = listed
        .iter()
        .filter_map(|&pid| Tracked::open_if(pid, |_| true))
        .collect();
    let still = procs(dir);
    for t in &opened {
        if still.contains(&t.pid) {
            t.kill();
        }
    }
    true
}

/// Kills, waits until empty, and removes each cgroup directory in `dirs` (missing ones are
/// fine). Errors if one is still busy after `timeout`.
pub(crate) fn remove_dirs(dirs: &[PathBuf], timeout: Duration) -> io::Result<()> {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(2);
    for dir in dirs {
        loop {
            kill_all(dir);
            match std::fs::remove_dir(dir) {
                Ok(()) => break,
                Err(e) if e.kind() == io::ErrorKind::NotFound => break,
                Err(e) if Instant::now() >= deadline => return Err(e),
                Err(_) => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(50));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
30 23 0:26 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw,nsdelegate
35 30 0:31 / /sys/fs/cgroup/pids rw,nosuid - cgroup cgroup rw,pids
36 30 0:32 /docker/abc /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory
37 30 0:33 / /sys/fs/cgroup/with\\040space rw - cgroup cgroup rw,cpu
";

    #[test]
    fn finds_own_cgroups_in_mountinfo() {
        let mounts = parse_mountinfo(MOUNTINFO);
        assert_eq!(mounts.len(), 5);
        assert_eq!(mounts[4].point, PathBuf::from("/sys/fs/cgroup/with space"));
        let own = "8:pids:/user/1\n4:memory:/docker/abc/x\n0::/system.slice/souk.service\n";
        assert_eq!(
            own_v2_dir(&mounts, own),
            Some(PathBuf::from(
                "/sys/fs/cgroup/unified/system.slice/souk.service"
            ))
        );
        assert_eq!(
            own_v1_dir(&mounts, own, "pids"),
            Some(PathBuf::from("/sys/fs/cgroup/pids/user/1"))
        );
        // The memory mount's root is /docker/abc: the node's path is below it.
        assert_eq!(
            own_v1_dir(&mounts, own, "memory"),
            Some(PathBuf::from("/sys/fs/cgroup/memory/x"))
        );
        let outside = "4:memory:/other\n";
        assert_eq!(own_v1_dir(&mounts, outside, "memory"), None);
        assert_eq!(own_v1_dir(&mounts, own, "blkio"), None);
    }

    #[test]
    fn names_are_fresh_and_recognised() {
        let a = fresh_name().unwrap_or_else(|e| panic!("{e}"));
        let b = fresh_name().unwrap_or_else(|e| panic!("{e}"));
        assert_ne!(a, b);
        assert_eq!(a.len(), 5 + 16);
        assert!(is_hire_cgroup(&Path::new("/sys/fs/cgroup/pids").join(&a)));
        // Existing directories that are not cgroups, other names, relative paths: refused.
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let fake = dir.path().join(&a);
        std::fs::create_dir(&fake).unwrap_or_else(|e| panic!("{e}"));
        assert!(!is_hire_cgroup(&fake));
        assert!(!is_hire_cgroup(Path::new("/sys/fs/cgroup/pids")));
        assert!(!is_hire_cgroup(Path::new(
            "/sys/fs/cgroup/memory/souk-hires"
        )));
        assert!(!is_hire_cgroup(Path::new("souk-0123456789abcdef")));
        assert!(!is_hire_cgroup(Path::new("/x/../souk-0123456789abcdef")));
    }
}
