//! The sandbox helper: the small program between the node and the agent, in two stages.
//! Binaries expose [`main`]: the node's `souk` as a hidden subcommand, this crate's tests
//! through the `souk-sandbox-helper` binary.
//!
//! 1. `enter [--parent PID] [--cgroup PROCS_FILE]... [--data DEST CONTENT]... -- PROGRAM ARGS...`
//!    (on the host, run by the node): dies with its parent (`PR_SET_PDEATHSIG`, checked
//!    against `--parent`), joins the hire's cgroups, turns each `--data` into a memfd that
//!    bubblewrap copies to `DEST` (`--ro-bind-data FD DEST`, inserted after `PROGRAM`), and
//!    executes `PROGRAM` (bubblewrap, or `init` when the sandbox is off) in its place.
//!
//!    `enter --standby [--parent PID] [--cgroup PROCS_FILE]...` does the first half ahead of
//!    any hire: it joins the (empty, pre-made) cgroups, prints [`STANDBY_LINE`] and waits on
//!    stdin for the rest of its command, framed by [`encode_standby`]: the working directory,
//!    the environment and `[--data DEST CONTENT]... -- PROGRAM ARGS...`; then it goes on as
//!    `enter` does. Joining a cgroup can take a kernel RCU grace period (about 10 ms), which
//!    a cold start then no longer waits for (`standby.rs`).
//! 2. `init [--listen PORT --socket PATH] [--plain] [--rlimit NAME=VALUE]... -- PROGRAM ARGS...`
//!    (pid 1 of the sandbox): binds the forwarder's listener, prints [`READY_LINE`] on
//!    stdout, waits for [`GO_BYTE`] on stdin (so the node can record the sandbox before the
//!    agent runs), starts `PROGRAM` with its stdin, stdout and stderr, relays connections to
//!    the proxy's socket, reaps, and exits with the agent's status (a signal `s` as
//!    `128 + s`). As pid 1 its exit takes every other process of the sandbox with it.
//!    `--plain` (no namespaces): it starts its own session, becomes a child subreaper and
//!    kills every leftover descendant before exiting. The agent's process gets the rlimits,
//!    `no_new_privs` and `PR_SET_PDEATHSIG` (it dies with `init`) between its fork and its
//!    exec ([`limit_agent`]): the one `unsafe` block of the crate, so that starting an agent
//!    costs one program start, not two (a process start costs about a millisecond on a
//!    virtual machine, most of it the C library asking the CPU about its caches).
//!
//! Uses std and blocking threads only (no async runtime). Never reads the agent's protocol
//! stream: after the go byte, stdin and stdout belong to the agent.

use std::ffi::{OsStr, OsString};
use std::io::{Seek, SeekFrom, Write};
use std::net::{Ipv4Addr, TcpListener};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};

use rustix::process::{
    DumpableBehavior, Pid, Signal, WaitOptions, getppid, set_child_subreaper,
    set_dumpable_behavior, set_parent_process_death_signal, setsid, wait,
};

use super::limits::RlimitArg;
use super::procfs;

/// The line `init` prints once the sandbox is up (before the agent exists).
pub const READY_LINE: &str = "souk-sandbox-ready 1";
/// The line `enter --standby` prints once it joined its cgroups.
pub const STANDBY_LINE: &str = "souk-sandbox-standby 1";
/// Most bytes of a standby's command ([`encode_standby`]).
const MAX_STANDBY_BYTES: usize = 16 << 20;
/// The byte the node writes to let `init` start the agent.
pub const GO_BYTE: u8 = b'G';
/// Exit status of the helper when it fails before the agent runs.
pub const EXIT_SETUP: u8 = 125;
/// Exit status when the agent program cannot be executed.
pub const EXIT_CANNOT_EXEC: u8 = 126;
/// Exit status when the agent program does not exist.
pub const EXIT_NOT_FOUND: u8 = 127;

fn fail(stage: &str, msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("souk-sandbox {stage}: {msg}");
    ExitCode::from(EXIT_SETUP)
}

/// Splits `FLAGS... -- PROGRAM ARGS...`.
fn split_command(args: Vec<OsString>) -> Result<(Vec<OsString>, OsString, Vec<OsString>), String> {
    let Some(dash) = args.iter().position(|a| a == "--") else {
        return Err("missing `--` before the program".into());
    };
    let mut rest = args;
    let mut cmd = rest.split_off(dash);
    cmd.remove(0);
    if cmd.is_empty() {
        return Err("missing program after `--`".into());
    }
    let program = cmd.remove(0);
    Ok((rest, program, cmd))
}

fn str_arg<'a>(
    it: &mut impl Iterator<Item = &'a OsString>,
    flag: &str,
) -> Result<&'a OsStr, String> {
    it.next()
        .map(OsString::as_os_str)
        .ok_or_else(|| format!("{flag} needs a value"))
}

fn num_arg<'a, T: std::str::FromStr>(
    it: &mut impl Iterator<Item = &'a OsString>,
    flag: &str,
) -> Result<T, String> {
    str_arg(it, flag)?
        .to_str()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("{flag}: not a number"))
}

/// Runs the helper with `args` (without the program name and without the leading
/// arguments of the binary that exposes it). Returns only on failure or, for `init`, never
/// (it exits with the agent's status); `enter` replaces the process.
pub fn main(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    let mut args: Vec<OsString> = args.into_iter().collect();
    if args.is_empty() {
        return fail("", "usage: enter|init [OPTIONS] -- PROGRAM [ARGS...]");
    }
    let stage = args.remove(0);
    let stage = stage.to_string_lossy().into_owned();
    if stage == "enter" && args.first().is_some_and(|a| a == "--standby") {
        return match standby(&args[1..]) {
            Ok(code) => code,
            Err(e) => fail(&stage, e),
        };
    }
    let (flags, program, rest) = match split_command(args) {
        Ok(x) => x,
        Err(e) => return fail(&stage, e),
    };
    let result = match stage.as_str() {
        "enter" => enter(&flags, program, rest),
        "init" => init(&flags, program, rest),
        other => Err(format!("unknown stage {other:?}")),
    };
    match result {
        Ok(code) => code,
        Err(e) => fail(&stage, e),
    }
}

fn exec_error(program: &OsStr, e: &std::io::Error) -> ExitCode {
    eprintln!(
        "souk-sandbox: cannot execute {}: {e}",
        program.to_string_lossy()
    );
    ExitCode::from(if e.kind() == std::io::ErrorKind::NotFound {
        EXIT_NOT_FOUND
    } else {
        EXIT_CANNOT_EXEC
    })
}

/// `enter`'s options.
#[derive(Default)]
struct EnterFlags<'a> {
    parent: Option<i32>,
    cgroups: Vec<PathBuf>,
    data: Vec<(&'a OsStr, &'a OsStr)>,
}

fn enter_flags(flags: &[OsString]) -> Result<EnterFlags<'_>, String> {
    let mut out = EnterFlags::default();
    let mut it = flags.iter();
    while let Some(f) = it.next() {
        match f.to_str() {
            Some("--parent") => out.parent = Some(num_arg(&mut it, "--parent")?),
            Some("--cgroup") => out
                .cgroups
                .push(PathBuf::from(str_arg(&mut it, "--cgroup")?)),
            Some("--data") => {
                let dest = str_arg(&mut it, "--data")?;
                let content = str_arg(&mut it, "--data")?;
                out.data.push((dest, content));
            }
            _ => return Err(format!("unknown option {f:?}")),
        }
    }
    Ok(out)
}

fn enter(flags: &[OsString], program: OsString, rest: Vec<OsString>) -> Result<ExitCode, String> {
    let f = enter_flags(flags)?;
    join(f.parent, &f.cgroups)?;
    exec_with_data(&f.data, &program, &rest, None)
}

/// `enter --standby`: joins now, reads the rest of the command, then goes on as `enter`.
fn standby(flags: &[OsString]) -> Result<ExitCode, String> {
    let f = enter_flags(flags)?;
    if !f.data.is_empty() {
        return Err("--data comes with the command, not with --standby".into());
    }
    // No death signal while it waits: when the node goes, its end of stdin closes and the
    // standby cleans up after itself (a death signal would kill it first).
    if let Some(p) = f.parent
        && getppid().map(Pid::as_raw_nonzero).map(|p| p.get()) != Some(p)
    {
        return Err("the node exited before the standby started".into());
    }
    join_only(&f.cgroups)?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{STANDBY_LINE}")
            .and_then(|()| out.flush())
            .map_err(|e| format!("writing the standby line: {e}"))?;
    }
    let items = match read_standby() {
        Ok(Some(items)) => items,
        // The node dropped the standby unused, or is gone.
        Ok(None) | Err(_) => {
            leave_cgroups(&f.cgroups);
            return Ok(ExitCode::from(EXIT_SETUP));
        }
    };
    die_with(f.parent)?;
    let (cwd, env, args) = split_standby(items)?;
    let (flags, program, rest) = split_command(args)?;
    let f = enter_flags(&flags)?;
    if f.parent.is_some() || !f.cgroups.is_empty() {
        return Err("--parent and --cgroup come with --standby, not with the command".into());
    }
    exec_with_data(&f.data, &program, &rest, Some((cwd, env)))
}

/// Reads one framed command from stdin without reading past it (what follows is the next
/// stage's); `None` at end of file before anything came.
fn read_standby() -> Result<Option<Vec<OsString>>, String> {
    let mut count = [0u8; 4];
    if !read_exact_stdin(&mut count, true)? {
        return Ok(None);
    }
    let count = u32::from_le_bytes(count) as usize;
    let mut items = Vec::new();
    let mut total = 0usize;
    for _ in 0..count {
        let mut len = [0u8; 4];
        read_exact_stdin(&mut len, false)?;
        let len = u32::from_le_bytes(len) as usize;
        total = total.saturating_add(len + 4);
        if total > MAX_STANDBY_BYTES {
            return Err("the standby command is too long".into());
        }
        let mut item = vec![0u8; len];
        read_exact_stdin(&mut item, false)?;
        items.push(std::os::unix::ffi::OsStringExt::from_vec(item));
    }
    Ok(Some(items))
}

/// Fills `buf` from stdin (unbuffered); false if stdin ended before the first byte and
/// `eof_ok`.
fn read_exact_stdin(buf: &mut [u8], eof_ok: bool) -> Result<bool, String> {
    let mut got = 0;
    while got < buf.len() {
        match rustix::io::read(rustix::stdio::stdin(), &mut buf[got..]) {
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(format!("reading the standby command: {e}")),
            Ok(0) if got == 0 && eof_ok => return Ok(false),
            Ok(0) => return Err("the standby command ended early".into()),
            Ok(n) => got += n,
        }
    }
    Ok(true)
}

/// A standby's command: working directory, environment, then `enter`'s arguments.
type StandbyCommand = (OsString, Vec<(OsString, OsString)>, Vec<OsString>);

fn split_standby(items: Vec<OsString>) -> Result<StandbyCommand, String> {
    let mut it = items.into_iter();
    let cwd = it
        .next()
        .ok_or("the standby command has no working directory")?;
    let n: usize = it
        .next()
        .and_then(|n| n.to_str().and_then(|s| s.parse().ok()))
        .ok_or("the standby command has no environment count")?;
    let mut env = Vec::with_capacity(n.min(1024));
    for _ in 0..n {
        match (it.next(), it.next()) {
            (Some(k), Some(v)) => env.push((k, v)),
            _ => return Err("the standby command's environment is cut short".into()),
        }
    }
    Ok((cwd, env, it.collect()))
}

/// Frames a standby's command (what [`STANDBY_LINE`]'s process reads): `cwd`, the
/// environment `env`, then `args` (`[--data DEST CONTENT]... -- PROGRAM ARGS...`).
pub fn encode_standby(cwd: &OsStr, env: &[(OsString, OsString)], args: &[OsString]) -> Vec<u8> {
    let n = env.len().to_string();
    let items: Vec<&OsStr> = [cwd, OsStr::new(&n)]
        .into_iter()
        .chain(env.iter().flat_map(|(k, v)| [k.as_os_str(), v.as_os_str()]))
        .chain(args.iter().map(OsString::as_os_str))
        .collect();
    let mut out = Vec::new();
    out.extend_from_slice(&(items.len() as u32).to_le_bytes());
    for item in items {
        let b = item.as_encoded_bytes();
        out.extend_from_slice(&(b.len() as u32).to_le_bytes());
        out.extend_from_slice(b);
    }
    out
}

/// Dies with the node (checked against `parent`) and joins `cgroups`.
fn join(parent: Option<i32>, cgroups: &[PathBuf]) -> Result<(), String> {
    die_with(parent)?;
    join_only(cgroups)
}

/// Dies with the node (`PR_SET_PDEATHSIG`), which must still be `parent`.
fn die_with(parent: Option<i32>) -> Result<(), String> {
    set_parent_process_death_signal(Some(Signal::KILL))
        .map_err(|e| format!("PR_SET_PDEATHSIG: {e}"))?;
    if let Some(p) = parent
        && getppid().map(Pid::as_raw_nonzero).map(|p| p.get()) != Some(p)
    {
        return Err("the node exited before the sandbox started".into());
    }
    Ok(())
}

/// A standby whose node went away (end of file on stdin) leaves its cgroups for their
/// parents and removes them, so that nothing is left behind even after `kill -9` of the node.
/// Best effort: where it may not move into a parent (a cgroup v2 parent with controllers
/// enabled), the cgroup stays for the node's next start to remove.
fn leave_cgroups(cgroups: &[PathBuf]) {
    let me = std::process::id().to_string();
    for procs in cgroups {
        let Some(dir) = procs.parent() else { continue };
        let Some(up) = dir.parent() else { continue };
        if std::fs::write(up.join("cgroup.procs"), &me).is_ok() {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// Joins `cgroups` (their `cgroup.procs` files).
fn join_only(cgroups: &[PathBuf]) -> Result<(), String> {
    let me = std::process::id().to_string();
    for procs in cgroups {
        std::fs::write(procs, &me)
            .map_err(|e| format!("cannot join the cgroup {}: {e}", procs.display()))?;
    }
    Ok(())
}

/// Executes `program` with the `--data` memfds inserted before `rest`; with `place`, in
/// that working directory and with exactly that environment.
fn exec_with_data(
    data: &[(&OsStr, &OsStr)],
    program: &OsStr,
    rest: &[OsString],
    place: Option<(OsString, Vec<(OsString, OsString)>)>,
) -> Result<ExitCode, String> {
    // Inheritable memfds (no close-on-exec) that bubblewrap reads and closes.
    let mut keep = Vec::new();
    let mut inserted: Vec<OsString> = Vec::new();
    for &(dest, content) in data {
        let fd = rustix::fs::memfd_create("souk-sandbox-data", rustix::fs::MemfdFlags::empty())
            .map_err(|e| format!("memfd_create: {e}"))?;
        let mut file = std::fs::File::from(fd);
        file.write_all(content.as_encoded_bytes())
            .and_then(|()| file.seek(SeekFrom::Start(0)).map(drop))
            .map_err(|e| format!("writing {}: {e}", dest.to_string_lossy()))?;
        inserted.push("--ro-bind-data".into());
        inserted.push(file.as_raw_fd().to_string().into());
        inserted.push(dest.to_owned());
        keep.push(file);
    }
    let mut cmd = Command::new(program);
    cmd.args(&inserted).args(rest);
    if let Some((cwd, env)) = place {
        cmd.current_dir(cwd).env_clear().envs(env);
    }
    let e = cmd.exec();
    Ok(exec_error(program, &e))
}

/// The exit status that reports `status` (a signal `s` as `128 + s`).
fn status_code(status: rustix::process::WaitStatus) -> u8 {
    if let Some(code) = status.exit_status() {
        return u8::try_from(code & 0xff).unwrap_or(EXIT_SETUP);
    }
    if let Some(sig) = status.terminating_signal() {
        return u8::try_from(128 + (sig & 0x7f)).unwrap_or(EXIT_SETUP);
    }
    EXIT_SETUP
}

fn init(flags: &[OsString], program: OsString, rest: Vec<OsString>) -> Result<ExitCode, String> {
    let mut listen: Option<u16> = None;
    let mut socket: Option<PathBuf> = None;
    let mut plain = false;
    let mut limits = Vec::new();
    let mut it = flags.iter();
    while let Some(f) = it.next() {
        match f.to_str() {
            Some("--listen") => listen = Some(num_arg(&mut it, "--listen")?),
            Some("--socket") => socket = Some(PathBuf::from(str_arg(&mut it, "--socket")?)),
            Some("--plain") => plain = true,
            Some("--rlimit") => {
                let v = str_arg(&mut it, "--rlimit")?;
                limits.push(RlimitArg::parse(v).ok_or_else(|| format!("bad --rlimit {v:?}"))?);
            }
            _ => return Err(format!("unknown option {f:?}")),
        }
    }
    if plain {
        setsid().map_err(|e| format!("setsid: {e}"))?;
        set_child_subreaper(Some(rustix::process::getpid()))
            .map_err(|e| format!("PR_SET_CHILD_SUBREAPER: {e}"))?;
    }
    // The agent runs as the same user: keep it from ptracing or reading this process.
    set_dumpable_behavior(DumpableBehavior::NotDumpable)
        .map_err(|e| format!("PR_SET_DUMPABLE: {e}"))?;
    let forward = match (listen, socket) {
        (Some(port), Some(socket)) => {
            let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port))
                .map_err(|e| format!("cannot listen on 127.0.0.1:{port}: {e}"))?;
            Some((listener, socket))
        }
        (None, None) => None,
        _ => return Err("--listen and --socket go together".into()),
    };
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{READY_LINE}")
            .and_then(|()| out.flush())
            .map_err(|e| format!("writing the ready line: {e}"))?;
    }
    let mut go = [0u8; 1];
    let n = loop {
        match rustix::io::read(rustix::stdio::stdin(), &mut go) {
            Err(rustix::io::Errno::INTR) => continue,
            other => break other.map_err(|e| format!("reading the go byte: {e}"))?,
        }
    };
    if n == 0 {
        // The node dropped the sandbox before starting the agent.
        return Ok(ExitCode::from(EXIT_SETUP));
    }
    if go[0] != GO_BYTE {
        return Err("unexpected byte instead of the go byte".into());
    }
    if let Some((listener, socket)) = forward {
        std::thread::Builder::new()
            .name("forwarder".into())
            .stack_size(64 * 1024)
            .spawn(move || super::forward::run(listener, socket))
            .map_err(|e| format!("starting the forwarder: {e}"))?;
    }
    let mut command = Command::new(&program);
    command
        .args(&rest)
        .stdin(Stdio::inherit())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit());
    limit_agent(&mut command, limits, rustix::process::getpid());
    let agent = match command.spawn() {
        Ok(child) => child.id(),
        Err(e) => return Ok(exec_error(&program, &e)),
    };
    // Let go of the agent's stdin and stdout: the node sees end of file when the agent
    // (and whatever it started) closes them, not when this process exits.
    if let Ok(null) = std::fs::File::options()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        let _ = rustix::stdio::dup2_stdin(&null);
        let _ = rustix::stdio::dup2_stdout(&null);
    }
    let code = loop {
        match wait(WaitOptions::empty()) {
            Ok(Some((pid, status))) if pid.as_raw_nonzero().get() as u32 == agent => {
                break status_code(status);
            }
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(format!("waiting for the agent: {e}")),
        }
    };
    if plain {
        // Not a pid namespace's init: kill and reap what the agent left behind.
        let me = std::process::id();
        loop {
            procfs::kill_descendants(me, 4);
            match wait(WaitOptions::empty()) {
                Ok(_) | Err(rustix::io::Errno::INTR) => {}
                Err(_) => break, // ECHILD: nothing left
            }
        }
    }
    // As pid 1, exiting kills every other process of the sandbox.
    std::process::exit(i32::from(code))
}

/// Makes `command`'s process, between its fork and its exec, set `limits`, `no_new_privs` and
/// `PR_SET_PDEATHSIG` (it dies with `init`, whose pid is `init`; without namespaces nothing
/// else would kill it if `init` were killed). A failure fails the spawn.
#[allow(unsafe_code)]
fn limit_agent(command: &mut Command, limits: Vec<RlimitArg>, init: Pid) {
    let setup = move || -> std::io::Result<()> {
        for l in &limits {
            l.apply()?;
        }
        rustix::thread::set_no_new_privs(true)?;
        set_parent_process_death_signal(Some(Signal::KILL))?;
        // `init` died before the death signal was set: nothing would deliver it.
        if getppid() != Some(init) {
            return Err(rustix::io::Errno::SRCH.into());
        }
        Ok(())
    };
    // SAFETY: `pre_exec` runs `setup` in the forked child, where only async-signal-safe work
    // is sound (another thread of `init`, the forwarder, may hold a lock or be allocating).
    // `setup` only makes system calls through rustix (getrlimit, setrlimit, prctl, getppid)
    // on values it owns: it allocates nothing, takes no lock and touches no shared state; an
    // error is an `io::Error` made from an errno, which does not allocate either.
    unsafe {
        command.pre_exec(setup);
    }
}

#[cfg(test)]
mod tests {
    /// What `encode_standby` frames, `read_standby` + `split_standby` give back, whatever
    /// the bytes (newlines, `=`, `--`, empty items, not UTF-8).
    #[test]
    fn standby_command_round_trips() {
        use std::os::unix::ffi::OsStringExt;
        let odd = OsString::from_vec(vec![0xff, b'\n', b'=', 0]);
        let env = vec![
            (OsString::from("A"), OsString::from("x=y\nz")),
            (OsString::from("EMPTY"), OsString::new()),
            (odd.clone(), odd.clone()),
        ];
        let args: Vec<OsString> = [
            "--data",
            "/etc/hosts",
            "127.0.0.1 x\n",
            "--",
            "bwrap",
            "--",
            "",
        ]
        .into_iter()
        .map(OsString::from)
        .chain([odd.clone()])
        .collect();
        let bytes = encode_standby(OsStr::new("/work/dir with space"), &env, &args);
        // Decode the frames as read_standby does, from a byte slice.
        let count = u32::from_le_bytes(bytes[..4].try_into().unwrap_or_default()) as usize;
        let mut at = 4;
        let mut items = Vec::new();
        for _ in 0..count {
            let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap_or_default()) as usize;
            at += 4;
            items.push(OsString::from_vec(bytes[at..at + len].to_vec()));
            at += len;
        }
        assert_eq!(at, bytes.len());
        let (cwd, got_env, got_args) = split_standby(items).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cwd, OsString::from("/work/dir with space"));
        assert_eq!(got_env, env);
        assert_eq!(got_args, args);
    }

    #[test]
    fn a_cut_standby_command_is_refused() {
        let items = vec![
            OsString::from("/"),
            OsString::from("2"),
            OsString::from("K"),
        ];
        assert!(split_standby(items).is_err());
        assert!(split_standby(vec![OsString::from("/")]).is_err());
        assert!(split_standby(vec![]).is_err());
    }

    use super::*;

    #[test]
    fn command_splitting() {
        let args: Vec<OsString> = ["--listen", "1", "--", "prog", "a", "--", "b"]
            .map(OsString::from)
            .to_vec();
        let (flags, program, rest) = split_command(args).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(flags, ["--listen", "1"]);
        assert_eq!(program, "prog");
        assert_eq!(rest, ["a", "--", "b"]);
        assert!(split_command(vec!["x".into()]).is_err());
        assert!(split_command(vec!["--".into()]).is_err());
    }
}
