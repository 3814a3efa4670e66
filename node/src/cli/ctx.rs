//! What every command is given: the data directory, whether `--json` was asked for, and how
//! the user named the data directory, so that every hint that prints a command prints one
//! that works as it is (`souk --data-dir DIR hire watch ID`, or `SOUK_HOME=DIR souk ...`).

use std::path::{Path, PathBuf};

use souk_node::api::client::{ApiClient, ClientError};
use souk_node::data_dir::DataDir;

use super::error::CliError;

/// Where the data directory came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DirSource {
    /// `~/.souk`: nothing to repeat.
    Default,
    /// `--data-dir DIR`.
    Flag(PathBuf),
    /// `SOUK_HOME=DIR`.
    Env(PathBuf),
}

/// The context of one command.
#[derive(Debug, Clone)]
pub(crate) struct Ctx {
    /// The data directory.
    pub(crate) dir: DataDir,
    /// `--json`: data as JSON on stdout, errors as JSON on stderr.
    pub(crate) json: bool,
    source: DirSource,
}

impl Ctx {
    /// A context for `dir`, named by the user as `source`.
    pub(crate) fn new(dir: DataDir, json: bool, source: DirSource) -> Self {
        Self { dir, json, source }
    }

    /// The command line that runs `souk ARGS` on this data directory, ready to paste into a
    /// shell (paths quoted when needed).
    pub(crate) fn cmd(&self, args: &str) -> String {
        match &self.source {
            DirSource::Default => format!("souk {args}"),
            DirSource::Flag(p) => format!("souk --data-dir {} {args}", shell_quote(p)),
            DirSource::Env(p) => format!("SOUK_HOME={} souk {args}", shell_quote(p)),
        }
    }

    /// A client of the node running on the data directory; when none runs, the error says
    /// how to start one (exit status 3).
    pub(crate) fn connect(&self) -> anyhow::Result<ApiClient> {
        match ApiClient::connect(&self.dir) {
            Ok(c) => Ok(c),
            Err(ClientError::NotRunning(dir)) => {
                Err(anyhow::Error::new(CliError::Unreachable(format!(
                    "no node is running for {dir}: start one with `{}`",
                    self.cmd("node run")
                ))))
            }
            Err(e) => Err(anyhow::Error::new(e)),
        }
    }
}

/// `p` as one shell word: unchanged when it is made of safe characters only, else in single
/// quotes (with `'` written as `'\''`).
pub(crate) fn shell_quote(p: &Path) -> String {
    let s = p.to_string_lossy();
    let safe = |c: char| c.is_ascii_alphanumeric() || "_-./=:,+@%~".contains(c);
    if !s.is_empty() && s.chars().all(safe) && !s.starts_with('~') {
        s.into_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(source: DirSource) -> Ctx {
        Ctx::new(DataDir::new("/d"), false, source)
    }

    #[test]
    fn hints_repeat_the_data_directory_the_user_gave() {
        assert_eq!(
            ctx(DirSource::Default).cmd("hire watch ab"),
            "souk hire watch ab"
        );
        assert_eq!(
            ctx(DirSource::Flag("/tmp/c 1".into())).cmd("hire watch ab"),
            "souk --data-dir '/tmp/c 1' hire watch ab"
        );
        assert_eq!(
            ctx(DirSource::Env("/srv/souk".into())).cmd("hire cancel ab"),
            "SOUK_HOME=/srv/souk souk hire cancel ab"
        );
    }

    #[test]
    fn quoting_is_a_single_shell_word() {
        assert_eq!(shell_quote(Path::new("/a/b-c_d.e")), "/a/b-c_d.e");
        assert_eq!(shell_quote(Path::new("it's")), r"'it'\''s'");
        assert_eq!(shell_quote(Path::new("~x")), "'~x'");
        assert_eq!(shell_quote(Path::new("")), "''");
        assert_eq!(shell_quote(Path::new("$HOME")), "'$HOME'");
    }
}
