//! Reading `/proc`: a process's parent, session and start time, the boot id, a process's
//! children; and signalling a process through a pidfd so that a reused pid is never hit.
//!
//! Never signals a process by bare pid: [`Tracked`] opens a pidfd first and then checks that
//! the process behind it is the one expected (start time, or parentage).

use std::io;
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec, poll};
use rustix::process::{Pid, PidfdFlags, Signal, pidfd_open, pidfd_send_signal};
use serde::{Deserialize, Serialize};

/// The fields of `/proc/PID/stat` the sandbox uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProcStat {
    /// Field 3: `R`, `S`, `Z`...
    pub(crate) state: u8,
    /// Field 4.
    pub(crate) ppid: u32,
    /// Field 6.
    pub(crate) session: u32,
    /// Field 22: start time after boot, in clock ticks.
    pub(crate) start_time: u64,
}

/// Parses the text of `/proc/PID/stat` (the command name may hold spaces and parentheses,
/// so fields are counted after the last `)`).
pub(crate) fn parse_stat(text: &str) -> Option<ProcStat> {
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_ascii_whitespace().collect();
    // `fields[0]` is field 3.
    let field = |n: usize| fields.get(n - 3).copied();
    Some(ProcStat {
        state: *field(3)?.as_bytes().first()?,
        ppid: field(4)?.parse().ok()?,
        session: field(6)?.parse().ok()?,
        start_time: field(22)?.parse().ok()?,
    })
}

/// `/proc/PID/stat` of a live (or zombie) process.
pub(crate) fn stat(pid: u32) -> io::Result<ProcStat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    parse_stat(&text).ok_or_else(|| io::Error::other("unparsable /proc/PID/stat"))
}

/// The kernel's boot id (changes at every boot).
pub(crate) fn boot_id() -> io::Result<String> {
    Ok(std::fs::read_to_string("/proc/sys/kernel/random/boot_id")?
        .trim()
        .to_owned())
}

/// The direct children of `pid` (all its threads' children).
pub(crate) fn children(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for task in tasks.flatten() {
        if let Ok(text) = std::fs::read_to_string(task.path().join("children")) {
            out.extend(
                text.split_ascii_whitespace()
                    .filter_map(|p| p.parse::<u32>().ok()),
            );
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// Every descendant of `pid`, parents before their children.
pub(crate) fn descendants(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let mut queue = children(pid);
    while let Some(p) = queue.pop() {
        if out.contains(&p) || out.len() > 1 << 16 {
            continue;
        }
        out.push(p);
        queue.extend(children(p));
    }
    out
}

/// All pids visible in `/proc`.
pub(crate) fn all_pids() -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .collect()
}

/// A process identified by pid and start time, as recorded before a crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ProcessRef {
    /// Host pid.
    pub pid: u32,
    /// Field 22 of `/proc/PID/stat` (clock ticks after boot): with the pid, names one
    /// process for the life of the boot.
    pub start_time: u64,
}

impl ProcessRef {
    /// The live process `pid`, with its start time.
    pub(crate) fn of(pid: u32) -> io::Result<ProcessRef> {
        Ok(ProcessRef {
            pid,
            start_time: stat(pid)?.start_time,
        })
    }
}

/// A process held through a pidfd: signals reach that process or nobody.
#[derive(Debug)]
pub(crate) struct Tracked {
    pub(crate) pid: u32,
    fd: OwnedFd,
}

impl Tracked {
    /// Opens `pid` if it is alive and `check` accepts its `/proc` stat (read after the pidfd
    /// is open, so the stat belongs to the process the pidfd names, or the open fails).
    pub(crate) fn open_if(pid: u32, check: impl FnOnce(&ProcStat) -> bool) -> Option<Tracked> {
        let raw = Pid::from_raw(i32::try_from(pid).ok()?)?;
        let fd = pidfd_open(raw, PidfdFlags::empty()).ok()?;
        let st = stat(pid).ok()?;
        if st.state == b'Z' || st.state == b'X' || !check(&st) {
            return None;
        }
        Some(Tracked { pid, fd })
    }

    /// Opens the process `r` names, if it is still that process.
    pub(crate) fn open_ref(r: ProcessRef) -> Option<Tracked> {
        Tracked::open_if(r.pid, |st| st.start_time == r.start_time)
    }

    /// SIGKILL (errors mean the process is already gone).
    pub(crate) fn kill(&self) {
        let _ = pidfd_send_signal(&self.fd, Signal::KILL);
    }

    /// True once the process has exited (it may still be an unreaped zombie).
    pub(crate) fn exited(&self) -> bool {
        self.wait(Duration::ZERO)
    }

    /// Waits up to `timeout` for the process to exit; true if it did.
    pub(crate) fn wait(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let ts = Timespec {
                tv_sec: i64::try_from(left.as_secs()).unwrap_or(i64::MAX),
                tv_nsec: i64::from(left.subsec_nanos()),
            };
            let mut fds = [PollFd::new(&self.fd, PollFlags::IN)];
            match poll(&mut fds, Some(&ts)) {
                Ok(n) => return n > 0,
                Err(rustix::io::Errno::INTR) => continue,
                Err(_) => return true,
            }
        }
    }
}

/// Kills every descendant of `root` (found through `/proc/.../children`) in rounds until
/// none is left or `rounds` passed; returns how many were signalled. `root` should be a
/// child subreaper (or a pid namespace's init) so orphans stay below it between rounds.
pub(crate) fn kill_descendants(root: u32, rounds: usize) -> usize {
    let mut signalled = 0;
    for _ in 0..rounds {
        let tree = descendants(root);
        if tree.is_empty() {
            break;
        }
        let mut any = false;
        for &pid in &tree {
            // Still below `root` when the pidfd is open: its parent is `root` or a descendant.
            let below = |st: &ProcStat| st.ppid == root || tree.contains(&st.ppid);
            if let Some(t) = Tracked::open_if(pid, below) {
                t.kill();
                signalled += 1;
                any = true;
            }
        }
        if !any {
            break;
        }
    }
    signalled
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_parsing_survives_odd_names() {
        let line = "4242 (a (weird) name) S 1 4242 4242 0 -1 4194560 120 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10";
        let st = parse_stat(line).unwrap_or_else(|| panic!("parse"));
        assert_eq!(
            st,
            ProcStat {
                state: b'S',
                ppid: 1,
                session: 4242,
                start_time: 987654
            }
        );
        assert!(parse_stat("garbage").is_none());
        assert!(parse_stat("1 (x) S 1").is_none());
    }

    #[test]
    fn own_process_is_readable() {
        let me = std::process::id();
        let r = ProcessRef::of(me).unwrap_or_else(|e| panic!("{e}"));
        assert!(r.start_time > 0);
        assert!(Tracked::open_ref(r).is_some());
        let wrong = ProcessRef {
            pid: me,
            start_time: r.start_time + 1,
        };
        assert!(Tracked::open_ref(wrong).is_none());
        assert_eq!(boot_id().unwrap_or_default().len(), 36);
    }
}
