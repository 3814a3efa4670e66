//! The node processes this run started, how they stop, and what Ctrl-C does.
//!
//! Nodes run in their own process group, so a Ctrl-C at the terminal reaches only
//! `souk-testnet`, whose handler then stops them in order: SIGTERM (sent with `kill`), a wait of
//! up to [`GRACE`], then SIGKILL for any left. `up` and `demo --keep` detach the nodes instead,
//! and they keep running after `souk-testnet` exits.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;

/// How long a process gets after SIGTERM before SIGKILL.
pub(crate) const GRACE: Duration = Duration::from_secs(5);

/// Set once a signal asked us to stop.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Every node process started by this run and not yet stopped or detached.
static SUPERVISOR: Mutex<Supervisor> = Mutex::new(Supervisor {
    procs: Vec::new(),
    closed: false,
    cleanup: None,
});

struct Supervisor {
    procs: Vec<Proc>,
    /// No more processes may start (we are stopping or have detached).
    closed: bool,
    /// A directory to remove when a signal stops the run (the demo's temporary directory).
    cleanup: Option<PathBuf>,
}

struct Proc {
    name: String,
    child: Child,
}

/// How a group of processes stopped.
#[derive(Debug, Default, serde::Serialize)]
pub(crate) struct StopReport {
    /// Exited after SIGTERM within the grace period.
    pub(crate) clean: Vec<String>,
    /// Had already exited before we asked.
    pub(crate) already: Vec<String>,
    /// Needed SIGKILL.
    pub(crate) killed: Vec<String>,
}

impl StopReport {
    /// One line for people.
    pub(crate) fn describe(&self) -> String {
        let total = self.clean.len() + self.already.len() + self.killed.len();
        let mut s = format!("{total} process{}", if total == 1 { "" } else { "es" });
        if self.killed.is_empty() && self.already.is_empty() {
            s.push_str(" stopped cleanly (SIGTERM)");
            return s;
        }
        s.push_str(&format!(": {} stopped cleanly", self.clean.len()));
        if !self.already.is_empty() {
            s.push_str(&format!(
                ", {} had already exited ({})",
                self.already.len(),
                self.already.join(", ")
            ));
        }
        if !self.killed.is_empty() {
            s.push_str(&format!(
                ", {} killed with SIGKILL after {} s ({})",
                self.killed.len(),
                GRACE.as_secs(),
                self.killed.join(", ")
            ));
        }
        s
    }
}

fn lock() -> std::sync::MutexGuard<'static, Supervisor> {
    // A panic while holding the lock leaves plain data behind; keep going.
    SUPERVISOR
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Starts `cmd` as a supervised process named `name`, in its own process group, with stdin
/// closed. Returns its pid.
pub(crate) fn spawn(name: &str, cmd: &mut Command) -> anyhow::Result<u32> {
    let mut sup = lock();
    if sup.closed {
        anyhow::bail!("not starting {name}: the testnet is stopping");
    }
    cmd.stdin(Stdio::null());
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        cmd.process_group(0);
    }
    let child = cmd
        .spawn()
        .with_context(|| format!("cannot start {name} ({:?})", cmd.get_program()))?;
    let pid = child.id();
    sup.procs.push(Proc {
        name: name.to_owned(),
        child,
    });
    Ok(pid)
}

/// If the supervised process `name` has exited: how.
pub(crate) fn exit_status(name: &str) -> Option<std::process::ExitStatus> {
    let mut sup = lock();
    let p = sup.procs.iter_mut().find(|p| p.name == name)?;
    p.child.try_wait().ok().flatten()
}

/// Stops the supervised process `name` and forgets it: SIGKILL at once (`hard`), else
/// SIGTERM and up to [`GRACE`] before SIGKILL. Returns how long it took to exit, or `None`
/// when no such process was running.
pub(crate) fn stop_one(name: &str, hard: bool) -> Option<Duration> {
    let proc_ = {
        let mut sup = lock();
        let i = sup.procs.iter().position(|p| p.name == name)?;
        sup.procs.swap_remove(i)
    };
    let mut child = proc_.child;
    let started = Instant::now();
    if matches!(child.try_wait(), Ok(Some(_))) {
        return None;
    }
    if hard {
        let _ = child.kill();
        let _ = child.wait();
        return Some(started.elapsed());
    }
    signal(child.id(), "TERM");
    while started.elapsed() < GRACE {
        if !matches!(child.try_wait(), Ok(None)) {
            return Some(started.elapsed());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    Some(started.elapsed())
}

/// Forgets every supervised process without stopping it: they outlive this program.
pub(crate) fn detach() {
    let mut sup = lock();
    sup.closed = true;
    sup.cleanup = None;
    sup.procs.clear();
}

/// The directory a signal should remove after stopping the processes (`None`: keep it).
pub(crate) fn set_cleanup(dir: Option<PathBuf>) {
    lock().cleanup = dir;
}

/// Stops every supervised process: SIGTERM, up to [`GRACE`], then SIGKILL.
pub(crate) fn stop_all() -> StopReport {
    let procs = {
        let mut sup = lock();
        sup.closed = true;
        std::mem::take(&mut sup.procs)
    };
    terminate_children(procs)
}

fn terminate_children(mut procs: Vec<Proc>) -> StopReport {
    let mut report = StopReport::default();
    let mut waiting = Vec::new();
    for mut p in procs.drain(..) {
        match p.child.try_wait() {
            Ok(Some(_)) => report.already.push(p.name),
            _ => {
                signal(p.child.id(), "TERM");
                waiting.push(p);
            }
        }
    }
    let deadline = Instant::now() + GRACE;
    while !waiting.is_empty() && Instant::now() < deadline {
        waiting.retain_mut(|p| match p.child.try_wait() {
            Ok(None) => true,
            _ => {
                report.clean.push(p.name.clone());
                false
            }
        });
        if !waiting.is_empty() {
            std::thread::sleep(Duration::from_millis(25));
        }
    }
    for mut p in waiting {
        signal(p.child.id(), "KILL");
        let _ = p.child.wait();
        report.killed.push(p.name);
    }
    report
}

/// Sends a signal with the `kill` command; false if it could not be delivered (no such
/// process, or `kill` failed).
pub(crate) fn signal(pid: u32, sig: &str) -> bool {
    Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Whether `pid` is a live process that looks like a `souk` node (not one of our children:
/// those are watched through their handles). Where `/proc` exists, a pid now used by another
/// program counts as not alive.
pub(crate) fn souk_alive(pid: u32) -> bool {
    if pid == 0 || !signal(pid, "0") {
        return false;
    }
    let proc_dir = PathBuf::from(format!("/proc/{pid}"));
    if !PathBuf::from("/proc/self").exists() {
        return true;
    }
    if let Ok(stat) = std::fs::read_to_string(proc_dir.join("stat")) {
        // A zombie (state Z) has exited; it only waits for its parent.
        if let Some(rest) = stat.rsplit(')').next()
            && rest.trim_start().starts_with('Z')
        {
            return false;
        }
    }
    match std::fs::read(proc_dir.join("cmdline")) {
        Ok(cmd) => String::from_utf8_lossy(&cmd).contains("souk"),
        Err(_) => false,
    }
}

/// Stops processes this program did not start (recorded pids): SIGTERM, up to [`GRACE`],
/// then SIGKILL.
pub(crate) fn terminate_pids(procs: &[(String, u32)]) -> StopReport {
    let mut report = StopReport::default();
    let mut waiting = Vec::new();
    for (name, pid) in procs {
        if souk_alive(*pid) && signal(*pid, "TERM") {
            waiting.push((name.clone(), *pid));
        } else {
            report.already.push(name.clone());
        }
    }
    let deadline = Instant::now() + GRACE;
    while !waiting.is_empty() && Instant::now() < deadline {
        waiting.retain(|(name, pid)| {
            if souk_alive(*pid) {
                true
            } else {
                report.clean.push(name.clone());
                false
            }
        });
        if !waiting.is_empty() {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    for (name, pid) in waiting {
        signal(pid, "KILL");
        report.killed.push(name);
    }
    report
}

/// Whether a signal asked us to stop.
pub(crate) fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Blocks until the signal handler ends the process.
pub(crate) fn wait_for_exit() -> ! {
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// Installs the Ctrl-C / SIGTERM / SIGHUP handler: stop every supervised process, remove the
/// cleanup directory, exit with status 130. Returns once the handler is in place.
pub(crate) fn install_signal_handler() -> anyhow::Result<()> {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), String>>();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(r) => r,
                Err(e) => {
                    let _ = ready_tx.send(Err(e.to_string()));
                    return;
                }
            };
            let name = runtime.block_on(wait_for_signal(ready_tx));
            if let Some(name) = name {
                on_signal(name);
            }
        })
        .context("cannot start the signal thread")?;
    match ready_rx.recv() {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => anyhow::bail!("cannot install the Ctrl-C handler: {e}"),
        Err(_) => anyhow::bail!("cannot install the Ctrl-C handler"),
    }
}

#[cfg(unix)]
async fn wait_for_signal(
    ready: std::sync::mpsc::Sender<Result<(), String>>,
) -> Option<&'static str> {
    use tokio::signal::unix::{SignalKind, signal};
    let kinds = [
        (SignalKind::interrupt(), "SIGINT"),
        (SignalKind::terminate(), "SIGTERM"),
        (SignalKind::hangup(), "SIGHUP"),
    ];
    let mut streams = Vec::new();
    for (kind, name) in kinds {
        match signal(kind) {
            Ok(s) => streams.push((s, name)),
            Err(e) => {
                let _ = ready.send(Err(format!("{name}: {e}")));
                return None;
            }
        }
    }
    let _ = ready.send(Ok(()));
    let [(mut int, n1), (mut term, n2), (mut hup, n3)] = <[_; 3]>::try_from(streams).ok()?;
    tokio::select! {
        _ = int.recv() => Some(n1),
        _ = term.recv() => Some(n2),
        _ = hup.recv() => Some(n3),
    }
}

#[cfg(not(unix))]
async fn wait_for_signal(
    ready: std::sync::mpsc::Sender<Result<(), String>>,
) -> Option<&'static str> {
    let _ = ready.send(Ok(()));
    tokio::signal::ctrl_c().await.ok().map(|()| "Ctrl-C")
}

fn on_signal(name: &str) -> ! {
    INTERRUPTED.store(true, Ordering::SeqCst);
    let running = lock().procs.len();
    eprintln!();
    if running > 0 {
        eprintln!("{name}: stopping {running} node process(es)...");
    } else {
        eprintln!("{name}: stopping");
    }
    let report = stop_all();
    if running > 0 {
        eprintln!("{}", report.describe());
    }
    if let Some(dir) = lock().cleanup.take() {
        // A `souk` command started just before the signal may still be writing there.
        let mut result = std::fs::remove_dir_all(&dir);
        for _ in 0..20 {
            if result.is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
            result = std::fs::remove_dir_all(&dir);
        }
        match result {
            Ok(()) => eprintln!("removed {}", dir.display()),
            Err(e) => eprintln!("could not remove {}: {e}", dir.display()),
        }
    }
    std::process::exit(130);
}
