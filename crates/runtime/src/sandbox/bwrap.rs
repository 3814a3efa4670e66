//! Bubblewrap's command line for one hire: namespaces, the read-only system view, the
//! package, the working directory, the proxy socket, and the generated `/etc` files.
//!
//! Pure argument building (it reads only which system directories exist and whether they
//! are symlinks); never runs anything. What the sandbox contains is decided here and
//! nowhere else.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// The sandbox user's uid and gid (the node's own user, mapped).
pub const SANDBOX_UID: u32 = 1000;
/// The sandbox's host name.
pub const SANDBOX_HOSTNAME: &str = "souk-sandbox";
/// Where the egress proxy's unix socket appears inside the sandbox.
pub const PROXY_SOCKET_PATH: &str = "/run/souk/proxy.sock";

/// System directories bound read-only (or recreated as the same symlinks, e.g. `/bin ->
/// usr/bin` on merged-`/usr` systems) when they exist.
pub(crate) const SYSTEM_DIRS: [&str; 7] = [
    "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32",
];

/// Pieces of `/etc` an interpreter or a TLS client needs: the dynamic linker's cache and
/// configuration, the time zone, Debian's alternatives links (`/usr/bin/awk ->
/// /etc/alternatives/awk`), and the public CA certificates (for HTTPS tunnelled through the
/// proxy). Nothing else of `/etc` is visible.
pub(crate) const ETC_PIECES: [&str; 6] = [
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/localtime",
    "/etc/alternatives",
    "/etc/ssl/certs",
];

/// A bubblewrap version, `(major, minor, patch)`.
pub type BwrapVersion = (u32, u32, u32);

/// Parses `bubblewrap 0.8.0` (the output of `bwrap --version`).
pub(crate) fn parse_version(text: &str) -> Option<BwrapVersion> {
    let v = text.split_whitespace().nth(1)?;
    let mut parts = v.split('.').map(|p| p.parse::<u32>().ok());
    Some((
        parts.next()??,
        parts.next()??,
        parts.next().flatten().unwrap_or(0),
    ))
}

/// One mount operation, applied in order of destination depth.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Op {
    RoBind(PathBuf, PathBuf),
    Bind(PathBuf, PathBuf),
    Symlink(PathBuf, PathBuf),
    Tmpfs(PathBuf, Option<u64>),
    Proc,
    Dev,
}

impl Op {
    fn dest(&self) -> &Path {
        match self {
            Op::RoBind(_, d) | Op::Bind(_, d) | Op::Symlink(_, d) | Op::Tmpfs(d, _) => d,
            Op::Proc => Path::new("/proc"),
            Op::Dev => Path::new("/dev"),
        }
    }
}

/// What goes into one hire's sandbox.
#[derive(Debug, Clone)]
pub(crate) struct Plan<'a> {
    /// The bubblewrap version (options newer than it are left out).
    pub(crate) version: BwrapVersion,
    /// The per-hire working directory (absolute), bound read-write; `HOME` and cwd.
    pub(crate) workdir: &'a Path,
    /// The agent package (absolute), bound read-only.
    pub(crate) package_dir: Option<&'a Path>,
    /// Further host paths bound read-only at the same path (the helper, interpreter
    /// prefixes, extra paths the operator configured).
    pub(crate) ro_binds: &'a [PathBuf],
    /// The egress proxy's unix socket on the host, bound at [`PROXY_SOCKET_PATH`].
    pub(crate) proxy_socket: Option<&'a Path>,
    /// Size of the private `/tmp` (a tmpfs, counted against the hire's memory).
    pub(crate) tmp_size: Option<u64>,
}

fn system_ops(ops: &mut Vec<Op>, paths: &[&str]) {
    for p in paths {
        let path = Path::new(p);
        let Ok(meta) = std::fs::symlink_metadata(path) else {
            continue;
        };
        if meta.file_type().is_symlink() {
            if let Ok(target) = std::fs::read_link(path) {
                ops.push(Op::Symlink(target, path.to_owned()));
            }
        } else {
            ops.push(Op::RoBind(path.to_owned(), path.to_owned()));
        }
    }
}

/// The host paths visible at the same path inside every sandbox (for program resolution).
pub(crate) fn system_visible() -> Vec<PathBuf> {
    SYSTEM_DIRS
        .iter()
        .chain(&["/etc/alternatives"])
        .map(PathBuf::from)
        .filter(|p| p.exists())
        .collect()
}

/// Bubblewrap's options for `plan` (everything before `--` and the command).
pub(crate) fn args(plan: &Plan<'_>) -> Vec<OsString> {
    let mut a: Vec<OsString> = Vec::new();
    let mut push = |s: &str| a.push(s.into());
    for opt in [
        "--unshare-user",
        "--unshare-pid",
        "--unshare-net",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-cgroup-try",
        "--die-with-parent",
        "--new-session",
        "--as-pid-1",
    ] {
        push(opt);
    }
    let uid = SANDBOX_UID.to_string();
    for (opt, v) in [("--uid", &uid), ("--gid", &uid)] {
        push(opt);
        push(v);
    }
    push("--hostname");
    push(SANDBOX_HOSTNAME);
    push("--cap-drop");
    push("ALL");
    let v080 = plan.version >= (0, 8, 0);
    if v080 {
        // No user namespaces inside: the agent cannot gain capabilities in a nested one.
        push("--disable-userns");
    }

    let mut ops = Vec::new();
    system_ops(&mut ops, &SYSTEM_DIRS);
    ops.push(Op::Proc);
    ops.push(Op::Dev);
    ops.push(Op::Tmpfs(
        PathBuf::from("/tmp"),
        plan.tmp_size.filter(|_| v080),
    ));
    system_ops(&mut ops, &ETC_PIECES);
    for p in plan.ro_binds {
        ops.push(Op::RoBind(p.clone(), p.clone()));
    }
    if let Some(pkg) = plan.package_dir {
        ops.push(Op::RoBind(pkg.to_owned(), pkg.to_owned()));
    }
    ops.push(Op::Bind(plan.workdir.to_owned(), plan.workdir.to_owned()));
    if let Some(sock) = plan.proxy_socket {
        ops.push(Op::Bind(sock.to_owned(), PathBuf::from(PROXY_SOCKET_PATH)));
    }
    // Parents before children: a read-only package inside the working directory stays
    // read-only, a working directory under /tmp lands on the private /tmp.
    ops.sort_by_key(|op| op.dest().components().count());

    for op in ops {
        match op {
            Op::RoBind(s, d) => {
                a.push("--ro-bind".into());
                a.push(s.into());
                a.push(d.into());
            }
            Op::Bind(s, d) => {
                a.push("--bind".into());
                a.push(s.into());
                a.push(d.into());
            }
            Op::Symlink(t, d) => {
                a.push("--symlink".into());
                a.push(t.into());
                a.push(d.into());
            }
            Op::Tmpfs(d, size) => {
                if let Some(size) = size {
                    a.push("--size".into());
                    a.push(size.to_string().into());
                }
                a.push("--tmpfs".into());
                a.push(d.into());
            }
            Op::Proc => a.extend(["--proc".into(), "/proc".into()]),
            Op::Dev => a.extend(["--dev".into(), "/dev".into()]),
        }
    }
    a.push("--chdir".into());
    a.push(plan.workdir.into());
    a.push("--remount-ro".into());
    a.push("/".into());
    a
}

/// The generated `/etc` files (destination, content): a passwd and group naming only the
/// sandbox user (home: the working directory), hosts with only localhost, and an
/// nsswitch.conf that reads them.
pub(crate) fn etc_files(workdir: &Path) -> Vec<(PathBuf, String)> {
    let uid = SANDBOX_UID;
    let home = workdir.to_string_lossy().replace([':', '\n'], "_");
    vec![
        (
            PathBuf::from("/etc/passwd"),
            format!(
                "agent:x:{uid}:{uid}:souk agent:{home}:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
            ),
        ),
        (
            PathBuf::from("/etc/group"),
            format!("agent:x:{uid}:\nnogroup:x:65534:\n"),
        ),
        (
            PathBuf::from("/etc/hosts"),
            format!("127.0.0.1\tlocalhost {SANDBOX_HOSTNAME}\n::1\tlocalhost\n"),
        ),
        (
            PathBuf::from("/etc/nsswitch.conf"),
            "passwd: files\ngroup: files\nhosts: files\n".to_owned(),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[OsString]) -> Vec<String> {
        v.iter().map(|s| s.to_string_lossy().into_owned()).collect()
    }

    fn index_of(args: &[String], window: &[&str]) -> usize {
        args.windows(window.len())
            .position(|w| w == window)
            .unwrap_or_else(|| panic!("{window:?} not in {args:?}"))
    }

    #[test]
    fn plan_binds_only_what_it_names() {
        let binds = vec![PathBuf::from("/opt/py/3.11")];
        let plan = Plan {
            version: (0, 8, 0),
            workdir: Path::new("/tmp/x/data/hires/ab"),
            package_dir: Some(Path::new("/srv/agents/csv")),
            ro_binds: &binds,
            proxy_socket: Some(Path::new("/run/souk-node/proxy-ab.sock")),
            tmp_size: Some(1 << 20),
        };
        let a = strings(&args(&plan));
        for opt in [
            "--unshare-user",
            "--unshare-pid",
            "--unshare-net",
            "--unshare-ipc",
            "--unshare-uts",
            "--die-with-parent",
            "--new-session",
            "--as-pid-1",
            "--disable-userns",
        ] {
            assert!(a.iter().any(|x| x == opt), "{opt} missing: {a:?}");
        }
        let tmpfs = index_of(&a, &["--size", "1048576", "--tmpfs", "/tmp"]);
        let work = index_of(
            &a,
            &["--bind", "/tmp/x/data/hires/ab", "/tmp/x/data/hires/ab"],
        );
        assert!(tmpfs < work, "the workdir must be bound after /tmp");
        index_of(&a, &["--ro-bind", "/srv/agents/csv", "/srv/agents/csv"]);
        index_of(&a, &["--ro-bind", "/opt/py/3.11", "/opt/py/3.11"]);
        index_of(
            &a,
            &["--bind", "/run/souk-node/proxy-ab.sock", PROXY_SOCKET_PATH],
        );
        index_of(&a, &["--chdir", "/tmp/x/data/hires/ab"]);
        assert_eq!(a[a.len() - 2..], ["--remount-ro", "/"]);
        // Only /usr-like system dirs and the named paths are bound: no /home, /root, /var,
        // no data dir above the workdir.
        let sources: Vec<&String> = a
            .windows(2)
            .filter(|w| w[0] == "--ro-bind" || w[0] == "--bind")
            .map(|w| &w[1])
            .collect();
        for s in sources {
            let allowed = SYSTEM_DIRS.iter().any(|d| s == d)
                || ETC_PIECES.iter().any(|d| s == d)
                || [
                    "/opt/py/3.11",
                    "/srv/agents/csv",
                    "/tmp/x/data/hires/ab",
                    "/run/souk-node/proxy-ab.sock",
                ]
                .contains(&s.as_str());
            assert!(allowed, "unexpected bind of {s}");
        }
    }

    #[test]
    fn old_bubblewrap_gets_no_new_options() {
        let plan = Plan {
            version: (0, 6, 1),
            workdir: Path::new("/w"),
            package_dir: None,
            ro_binds: &[],
            proxy_socket: None,
            tmp_size: Some(1 << 20),
        };
        let a = strings(&args(&plan));
        assert!(!a.iter().any(|x| x == "--disable-userns" || x == "--size"));
    }

    #[test]
    fn versions_and_etc_files() {
        assert_eq!(parse_version("bubblewrap 0.8.0\n"), Some((0, 8, 0)));
        assert_eq!(parse_version("bubblewrap 0.11"), Some((0, 11, 0)));
        assert_eq!(parse_version("nonsense"), None);
        let files = etc_files(Path::new("/w/h"));
        assert!(
            files[0]
                .1
                .starts_with("agent:x:1000:1000:souk agent:/w/h:/bin/sh\n")
        );
        assert_eq!(files.len(), 4);
    }
}
