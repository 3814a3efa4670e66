//! Program resolution for the sandbox: turns `command[0]` into an absolute program that
//! exists inside the sandbox, and says which host paths must be bound (read-only, at the
//! same path) for it to run.
//!
//! - A bare name is looked up on the node's `PATH` (relative `PATH` entries are ignored); a
//!   relative path with `/` is relative to the given base; an absolute path is kept.
//! - A version-manager shim (a file in a directory named `shims`: pyenv, rbenv, nodenv,
//!   asdf, mise...) is replaced by the real program: the shim script's
//!   `exec MANAGER exec ...` line names the manager, and `MANAGER which NAME` (run with the
//!   node's environment, in the package directory so a `.python-version` there counts)
//!   prints the real path. A shim that is a symlink (mise) names the manager itself.
//! - Symlinks are followed (every link on the way is checked); the program is executed by
//!   its original path when that path and every link on it are visible in the sandbox (a
//!   Python venv needs its own `bin/python` path), else by its real path.
//! - A script's `#!` interpreter is resolved the same way, recursively; `#!/usr/bin/env
//!   NAME` (the sandbox's `PATH` differs from the node's) and interpreters that resolve
//!   elsewhere are rewritten to `INTERPRETER [ARG] SCRIPT`.
//! - A real file outside the directories already visible gets its installation prefix
//!   bound (`PREFIX/bin/python3.11` with a `PREFIX/lib` → `PREFIX`, e.g.
//!   `~/.pyenv/versions/3.11.7`), or only itself (a lone binary).
//!
//! Only reads the file system and runs version managers' `which`; never executes the
//! program itself.

use std::ffi::{OsStr, OsString};
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// How long a version manager's `which` may take.
const SHIM_TIMEOUT: Duration = Duration::from_secs(10);
/// Shims, links between interpreters and nested shebangs followed at most.
const MAX_DEPTH: usize = 8;

/// Where a program was found and what the sandbox needs to run it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The absolute program to execute inside the sandbox.
    pub program: PathBuf,
    /// Arguments that go before the command's own (a rewritten `#!` line: the interpreter's
    /// argument and the script).
    pub leading_args: Vec<OsString>,
    /// Host paths to bind read-only at the same path (installation prefixes or single files).
    pub binds: Vec<PathBuf>,
}

/// Why a program could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// A bare name is on no `PATH` directory (or the path does not exist).
    #[error("{name:?} was not found on the node's PATH")]
    NotFound {
        /// The name or path looked for.
        name: String,
    },
    /// The file is not an executable regular file.
    #[error("{} is not an executable file", path.display())]
    NotExecutable {
        /// The real file.
        path: PathBuf,
    },
    /// Reading a file or link failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// What was read.
        path: PathBuf,
        /// Why it failed.
        source: io::Error,
    },
    /// A version-manager shim could not be resolved to its real program.
    #[error("{} is a version-manager shim that could not be resolved: {detail}", shim.display())]
    Shim {
        /// The shim.
        shim: PathBuf,
        /// What went wrong.
        detail: String,
    },
    /// A script's `#!` line is not usable.
    #[error("{}: unusable #! line: {detail}", path.display())]
    Shebang {
        /// The script.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// Too many nested shims, interpreters or links.
    #[error("{}: too many levels of shims, interpreters or links", path.display())]
    TooDeep {
        /// Where resolution stopped.
        path: PathBuf,
    },
}

/// What resolution needs to know about the node and the sandbox.
#[derive(Debug, Clone)]
pub struct ResolveContext<'a> {
    /// The node's `PATH`, for bare names (also in `#!/usr/bin/env NAME`).
    pub search_path: &'a OsStr,
    /// Base of a relative program path containing `/`.
    pub relative_base: &'a Path,
    /// Working directory of version managers' `which` (the package directory).
    pub shim_cwd: &'a Path,
    /// Host paths visible in the sandbox at the same path (system directories, the package
    /// and working directories, extra binds).
    pub visible: &'a [PathBuf],
}

/// Resolves `program` (a command's first element) for running inside the sandbox.
pub fn resolve_program(program: &str, ctx: &ResolveContext<'_>) -> Result<Resolved, ResolveError> {
    let mut r = Resolver {
        ctx,
        visible: ctx.visible.to_vec(),
        binds: Vec::new(),
    };
    let (program, leading_args) = r.resolve_name(OsStr::new(program), 0)?;
    Ok(Resolved {
        program,
        leading_args,
        binds: r.binds,
    })
}

struct Resolver<'a, 'b> {
    ctx: &'b ResolveContext<'a>,
    visible: Vec<PathBuf>,
    binds: Vec<PathBuf>,
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> ResolveError + '_ {
    move |source| {
        if source.kind() == io::ErrorKind::NotFound {
            ResolveError::NotFound {
                name: path.to_string_lossy().into_owned(),
            }
        } else {
            ResolveError::Io {
                path: path.to_owned(),
                source,
            }
        }
    }
}

fn is_executable_file(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// True if `path` has no `.` or `..` component (so its lexical parents are its real ones,
/// symlinks aside).
fn is_clean(path: &Path) -> bool {
    path.is_absolute()
        && path
            .components()
            .all(|c| matches!(c, Component::RootDir | Component::Normal(_)))
}

/// Follows `path` component by component like the kernel does; returns the real path and
/// every symlink met on the way (as absolute paths).
fn walk(path: &Path) -> Result<(PathBuf, Vec<PathBuf>), ResolveError> {
    let mut pending: Vec<OsString> = Vec::new(); // reversed: the next component is last
    let push_all = |pending: &mut Vec<OsString>, p: &Path| {
        let comps: Vec<OsString> = p.components().map(|c| c.as_os_str().to_owned()).collect();
        pending.extend(comps.into_iter().rev());
    };
    push_all(&mut pending, path);
    let mut cur = PathBuf::from("/");
    let mut links = Vec::new();
    while let Some(c) = pending.pop() {
        match c.as_bytes() {
            b"/" => cur = PathBuf::from("/"),
            b"." => {}
            b".." => {
                cur.pop();
            }
            _ => {
                let next = cur.join(&c);
                let meta = std::fs::symlink_metadata(&next).map_err(io_err(path))?;
                if meta.file_type().is_symlink() {
                    if links.len() >= 40 {
                        return Err(ResolveError::TooDeep {
                            path: path.to_owned(),
                        });
                    }
                    let target = std::fs::read_link(&next).map_err(io_err(&next))?;
                    links.push(next);
                    push_all(&mut pending, &target);
                } else {
                    cur = next;
                }
            }
        }
    }
    Ok((cur, links))
}

/// The directory to bind for a real file outside the visible directories: its installation
/// prefix (`PREFIX/bin/x` where `PREFIX` has a `lib`, `lib64` or `pyvenv.cfg`), else the
/// file alone.
fn prefix_of(real: &Path) -> PathBuf {
    let dir = real.parent();
    let is_bin = dir
        .and_then(Path::file_name)
        .is_some_and(|n| n == "bin" || n == "sbin");
    if let (true, Some(prefix)) = (is_bin, dir.and_then(Path::parent))
        && prefix != Path::new("/")
        && (prefix.join("lib").is_dir()
            || prefix.join("lib64").is_dir()
            || prefix.join("pyvenv.cfg").is_file())
    {
        return prefix.to_owned();
    }
    real.to_owned()
}

/// The `#!` line of `path`, if it is a script: the interpreter and its optional argument.
fn read_shebang(path: &Path) -> Result<Option<(PathBuf, Option<OsString>)>, ResolveError> {
    let mut head = [0u8; 256];
    let mut file = std::fs::File::open(path).map_err(io_err(path))?;
    let mut n = 0;
    while n < head.len() {
        match file.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_err(path)(e)),
        }
    }
    let head = &head[..n];
    let Some(rest) = head.strip_prefix(b"#!") else {
        return Ok(None);
    };
    let line = rest.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = line.trim_ascii();
    let bad = |detail: &str| ResolveError::Shebang {
        path: path.to_owned(),
        detail: detail.to_owned(),
    };
    let (interp, arg) = match line.iter().position(|b| b.is_ascii_whitespace()) {
        Some(i) => (&line[..i], Some(line[i..].trim_ascii())),
        None => (line, None),
    };
    if interp.is_empty() {
        return Err(bad("no interpreter"));
    }
    let interp = PathBuf::from(OsStr::from_bytes(interp));
    if !interp.is_absolute() {
        return Err(bad("the interpreter is not an absolute path"));
    }
    let arg = arg
        .filter(|a| !a.is_empty())
        .map(|a| OsStr::from_bytes(a).to_owned());
    Ok(Some((interp, arg)))
}

/// Shell words of one line of a shim script: quotes removed, `#` comments dropped.
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '#' if !in_word => break,
            '"' | '\'' => {
                in_word = true;
                for q in chars.by_ref() {
                    if q == c {
                        break;
                    }
                    cur.push(q);
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    words
}

/// The manager a shim script runs (`exec MANAGER exec PROGRAM "$@"`) and the constant
/// variables it exports (`export NAME="value"` without `$`).
fn parse_shim_script(text: &str) -> Option<(PathBuf, Vec<(String, String)>)> {
    let mut manager = None;
    let mut exports = Vec::new();
    for line in text.lines() {
        let words = shell_words(line);
        match words.as_slice() {
            [exec, mgr, sub, ..] if exec == "exec" && sub == "exec" && mgr.starts_with('/') => {
                manager = Some(PathBuf::from(mgr));
            }
            [export, assignment] if export == "export" && !line.contains('$') => {
                if let Some((k, v)) = assignment.split_once('=') {
                    exports.push((k.to_owned(), v.to_owned()));
                }
            }
            _ => {}
        }
    }
    manager.map(|m| (m, exports))
}

impl Resolver<'_, '_> {
    fn is_visible(&self, path: &Path) -> bool {
        self.visible.iter().any(|root| path.starts_with(root))
    }

    /// Makes the real file `real` visible, binding its prefix if needed.
    fn ensure_visible(&mut self, real: &Path) {
        if !self.is_visible(real) {
            let prefix = prefix_of(real);
            self.visible.push(prefix.clone());
            self.binds.push(prefix);
        }
    }

    /// Finds `name` (bare: on `PATH`; with `/`: a path) and resolves it.
    fn resolve_name(
        &mut self,
        name: &OsStr,
        depth: usize,
    ) -> Result<(PathBuf, Vec<OsString>), ResolveError> {
        let not_found = || ResolveError::NotFound {
            name: name.to_string_lossy().into_owned(),
        };
        if name.is_empty() {
            return Err(not_found());
        }
        let path: PathBuf = if name.as_bytes().contains(&b'/') {
            let p = Path::new(name);
            if p.is_absolute() {
                p.to_owned()
            } else {
                self.ctx.relative_base.join(p)
            }
        } else {
            std::env::split_paths(self.ctx.search_path)
                .filter(|dir| dir.is_absolute())
                .map(|dir| dir.join(name))
                .find(|p| is_executable_file(p))
                .ok_or_else(not_found)?
        };
        // Lexically tidy (`a/./b` -> `a/b`; `..` is kept: only `walk` may resolve it).
        let path: PathBuf = path.components().collect();
        self.resolve_path(&path, depth)
    }

    fn resolve_path(
        &mut self,
        path: &Path,
        depth: usize,
    ) -> Result<(PathBuf, Vec<OsString>), ResolveError> {
        if depth > MAX_DEPTH {
            return Err(ResolveError::TooDeep {
                path: path.to_owned(),
            });
        }
        if path.parent().and_then(Path::file_name) == Some(OsStr::new("shims")) {
            let real = self.shim_target(path)?;
            return self.resolve_path(&real, depth + 1);
        }
        let (real, links) = walk(path)?;
        if !is_executable_file(&real) {
            return Err(ResolveError::NotExecutable { path: real });
        }
        self.ensure_visible(&real);
        let exec = if is_clean(path)
            && self.is_visible(path)
            && links.iter().all(|l| self.is_visible(l))
        {
            path.to_owned()
        } else {
            real.clone()
        };
        let Some((interp, arg)) = read_shebang(&real)? else {
            return Ok((exec, Vec::new()));
        };
        if interp.file_name() == Some(OsStr::new("env")) {
            let (name, extra) = env_args(&real, arg.as_deref())?;
            let (program, mut leading) = self.resolve_name(&name, depth + 1)?;
            leading.extend(extra);
            leading.push(exec.into_os_string());
            return Ok((program, leading));
        }
        let (program, mut leading) = self.resolve_path(&interp, depth + 1)?;
        if program == interp && leading.is_empty() {
            // The kernel finds the same interpreter inside the sandbox.
            return Ok((exec, Vec::new()));
        }
        leading.extend(arg);
        leading.push(exec.into_os_string());
        Ok((program, leading))
    }

    /// The real program behind a version-manager shim.
    fn shim_target(&self, shim: &Path) -> Result<PathBuf, ResolveError> {
        let fail = |detail: String| ResolveError::Shim {
            shim: shim.to_owned(),
            detail,
        };
        let name = shim
            .file_name()
            .ok_or_else(|| fail("no file name".into()))?;
        let meta = std::fs::symlink_metadata(shim).map_err(io_err(shim))?;
        let (manager, exports) = if meta.file_type().is_symlink() {
            (walk(shim)?.0, Vec::new())
        } else {
            let mut text = String::new();
            std::fs::File::open(shim)
                .and_then(|f| f.take(64 * 1024).read_to_string(&mut text))
                .map_err(io_err(shim))?;
            parse_shim_script(&text)
                .ok_or_else(|| fail("no `exec MANAGER exec PROGRAM` line in it".into()))?
        };
        let manager_name = manager.display().to_string();
        let mut child = Command::new(&manager)
            .arg("which")
            .arg(name)
            .current_dir(self.ctx.shim_cwd)
            .envs(exports)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| fail(format!("cannot run {manager_name}: {e}")))?;
        let pid = child.id();
        let (tx, rx) = std::sync::mpsc::channel();
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        std::thread::spawn(move || {
            let mut out = Vec::new();
            let mut err = Vec::new();
            if let Some(s) = stdout {
                let _ = s.take(64 * 1024).read_to_end(&mut out);
            }
            if let Some(s) = stderr {
                let _ = s.take(4096).read_to_end(&mut err);
            }
            let _ = tx.send((child.wait(), out, err));
        });
        let (status, out, err) = match rx.recv_timeout(SHIM_TIMEOUT) {
            Ok(r) => r,
            Err(_) => {
                // Not reaped yet (the thread still waits on it), so the pid is still its.
                if let Some(p) = i32::try_from(pid)
                    .ok()
                    .and_then(rustix::process::Pid::from_raw)
                {
                    let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
                }
                return Err(fail(format!(
                    "`{manager_name} which {}` took more than {} s",
                    name.to_string_lossy(),
                    SHIM_TIMEOUT.as_secs()
                )));
            }
        };
        let status = status.map_err(|e| fail(format!("waiting for {manager_name}: {e}")))?;
        let text = String::from_utf8_lossy(&out);
        let line = text.lines().map(str::trim).find(|l| !l.is_empty());
        match line {
            Some(l) if status.success() && l.starts_with('/') => Ok(PathBuf::from(l)),
            _ => Err(fail(format!(
                "`{manager_name} which {}` failed ({status}): {}",
                name.to_string_lossy(),
                String::from_utf8_lossy(&err).trim()
            ))),
        }
    }
}

/// The program name and extra arguments of a `#!/usr/bin/env` line (`env NAME` or
/// `env -S NAME ARGS...`).
fn env_args(script: &Path, arg: Option<&OsStr>) -> Result<(OsString, Vec<OsString>), ResolveError> {
    let bad = |detail: &str| ResolveError::Shebang {
        path: script.to_owned(),
        detail: detail.to_owned(),
    };
    let arg = arg.ok_or_else(|| bad("`env` without a program"))?;
    let bytes = arg.as_bytes();
    if let Some(split) = bytes.strip_prefix(b"-S") {
        let mut words = split
            .split(u8::is_ascii_whitespace)
            .filter(|w| !w.is_empty())
            .map(|w| OsStr::from_bytes(w).to_owned());
        let name = words
            .next()
            .ok_or_else(|| bad("`env -S` without a program"))?;
        if name.as_bytes().starts_with(b"-") {
            return Err(bad("unsupported `env` option"));
        }
        return Ok((name, words.collect()));
    }
    if bytes.starts_with(b"-") {
        return Err(bad("unsupported `env` option"));
    }
    Ok((arg.to_owned(), Vec::new()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn write_exec(path: &Path, text: &str) {
        std::fs::write(path, text).unwrap_or_else(|e| panic!("{e}"));
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
            .unwrap_or_else(|e| panic!("{e}"));
    }

    fn mkdirs(path: &Path) {
        std::fs::create_dir_all(path).unwrap_or_else(|e| panic!("{e}"));
    }

    struct World {
        dir: tempfile::TempDir,
    }

    impl World {
        fn new() -> World {
            World {
                dir: tempfile::tempdir().unwrap_or_else(|e| panic!("{e}")),
            }
        }
        fn p(&self, rel: &str) -> PathBuf {
            self.dir.path().join(rel)
        }
        fn resolve(&self, program: &str, path: &[&str]) -> Result<Resolved, ResolveError> {
            let search = std::env::join_paths(path.iter().map(|p| self.p(p)))
                .unwrap_or_else(|e| panic!("{e}"));
            let visible = vec![self.p("sys"), self.p("pkg")];
            let pkg = self.p("pkg");
            resolve_program(
                program,
                &ResolveContext {
                    search_path: &search,
                    relative_base: &pkg,
                    shim_cwd: &pkg,
                    visible: &visible,
                },
            )
        }
    }

    #[test]
    fn bare_names_follow_path_and_links() {
        let w = World::new();
        mkdirs(&w.p("sys/bin"));
        mkdirs(&w.p("pkg"));
        mkdirs(&w.p("opt/tool/bin"));
        mkdirs(&w.p("opt/tool/lib"));
        write_exec(&w.p("opt/tool/bin/tool-1.2"), "\x7fELF");
        symlink(w.p("opt/tool/bin/tool-1.2"), w.p("sys/bin/tool"))
            .unwrap_or_else(|e| panic!("{e}"));
        let r = w
            .resolve("tool", &["nowhere", "sys/bin"])
            .unwrap_or_else(|e| panic!("{e}"));
        // The link lives in a visible dir and its target's prefix is bound: run it by its
        // own path.
        assert_eq!(r.program, w.p("sys/bin/tool"));
        assert_eq!(r.binds, [w.p("opt/tool")]);
        assert!(r.leading_args.is_empty());

        assert!(matches!(
            w.resolve("missing", &["sys/bin"]),
            Err(ResolveError::NotFound { .. })
        ));
        std::fs::write(w.p("sys/bin/plain"), "x").unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(
            w.resolve(&w.p("sys/bin/plain").to_string_lossy(), &[]),
            Err(ResolveError::NotExecutable { .. })
        ));
    }

    #[test]
    fn lone_binary_outside_is_bound_alone_and_run_by_real_path() {
        let w = World::new();
        mkdirs(&w.p("pkg"));
        mkdirs(&w.p("target/release"));
        write_exec(&w.p("target/release/agent"), "\x7fELF");
        let r = w
            .resolve("../target/release/agent", &[])
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.program, w.p("target/release/agent"));
        assert_eq!(r.binds, [w.p("target/release/agent")]);
    }

    #[test]
    fn env_shebang_is_rewritten_to_the_real_interpreter() {
        let w = World::new();
        mkdirs(&w.p("pkg"));
        mkdirs(&w.p("sys/bin"));
        write_exec(&w.p("sys/bin/env"), "\x7fELF");
        write_exec(&w.p("sys/bin/python3"), "\x7fELF");
        let env = w.p("sys/bin/env");
        write_exec(
            &w.p("pkg/agent"),
            &format!("#!{} -S python3 -u\nprint(1)\n", env.display()),
        );
        let r = w
            .resolve("./agent", &["sys/bin"])
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.program, w.p("sys/bin/python3"));
        // `./agent` is not a clean path: the script is passed by its real path.
        assert_eq!(
            r.leading_args,
            [OsString::from("-u"), w.p("pkg/agent").into_os_string()]
        );
        // An absolute interpreter visible inside: the kernel handles the script.
        let py = w.p("sys/bin/python3");
        write_exec(&w.p("pkg/direct"), &format!("#!{} -u\n", py.display()));
        let r = w
            .resolve(&w.p("pkg/direct").to_string_lossy(), &[])
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.program, w.p("pkg/direct"));
        assert!(r.leading_args.is_empty());
    }

    #[test]
    fn shims_are_resolved_through_their_manager() {
        let w = World::new();
        mkdirs(&w.p("pkg"));
        mkdirs(&w.p("mgr/shims"));
        mkdirs(&w.p("mgr/libexec"));
        mkdirs(&w.p("mgr/versions/3.0/bin"));
        mkdirs(&w.p("mgr/versions/3.0/lib"));
        write_exec(&w.p("mgr/versions/3.0/bin/python3"), "\x7fELF");
        // The manager prints the real path when asked `which NAME`, reading a variable the
        // shim exports and the package's version file (it runs in the package dir).
        std::fs::write(w.p("pkg/.tool-version"), "3.0").unwrap_or_else(|e| panic!("{e}"));
        write_exec(
            &w.p("mgr/libexec/mgr"),
            "#!/bin/sh\n[ \"$1\" = which ] || exit 2\necho \"$MGR_ROOT/versions/$(cat .tool-version)/bin/$2\"\n",
        );
        let root = w.p("mgr");
        write_exec(
            &w.p("mgr/shims/python3"),
            &format!(
                "#!/usr/bin/env bash\nset -e\nexport MGR_ROOT=\"{}\"\nexec \"{}\" exec \"$program\" \"$@\"\n",
                root.display(),
                w.p("mgr/libexec/mgr").display()
            ),
        );
        let r = w
            .resolve("python3", &["mgr/shims"])
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.program, w.p("mgr/versions/3.0/bin/python3"));
        assert_eq!(r.binds, [w.p("mgr/versions/3.0")]);

        // A shim whose manager fails is an error naming the shim.
        write_exec(
            &w.p("mgr/libexec/mgr"),
            "#!/bin/sh\necho 'no such version' >&2\nexit 1\n",
        );
        match w.resolve("python3", &["mgr/shims"]) {
            Err(ResolveError::Shim { detail, .. }) => {
                assert!(detail.contains("no such version"), "{detail}")
            }
            other => panic!("expected a shim error, got {other:?}"),
        }
    }

    #[test]
    fn shell_words_and_shim_parsing() {
        assert_eq!(
            shell_words(r#"exec "/a b/pyenv" exec "$program" "$@" # comment"#),
            ["exec", "/a b/pyenv", "exec", "$program", "$@"]
        );
        let (m, e) = parse_shim_script(
            "#!/usr/bin/env bash\nexport PYENV_ROOT=\"/root/.pyenv\"\nexport X=\"$Y\"\nexec \"/root/.pyenv/libexec/pyenv\" exec \"$program\" \"$@\"\n",
        )
        .unwrap_or_else(|| panic!("not parsed"));
        assert_eq!(m, PathBuf::from("/root/.pyenv/libexec/pyenv"));
        assert_eq!(e, [("PYENV_ROOT".to_owned(), "/root/.pyenv".to_owned())]);
        assert!(parse_shim_script("#!/bin/sh\necho hi\n").is_none());
    }

    #[test]
    fn walk_reports_every_link() {
        let w = World::new();
        mkdirs(&w.p("a/real"));
        write_exec(&w.p("a/real/x"), "");
        symlink("real", w.p("a/dirlink")).unwrap_or_else(|e| panic!("{e}"));
        symlink(w.p("a/dirlink/x"), w.p("a/top")).unwrap_or_else(|e| panic!("{e}"));
        let (real, links) = walk(&w.p("a/top")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(real, w.p("a/real/x"));
        assert_eq!(links, [w.p("a/top"), w.p("a/dirlink")]);
        assert!(!is_clean(&w.p("a/../a/top")));
    }
}
