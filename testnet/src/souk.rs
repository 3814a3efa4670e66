//! Running `souk` CLI commands (not nodes) as subprocesses, with timeouts, and the JSON they
//! print.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Deserialize;
use serde::de::DeserializeOwned;

/// The longest a single CLI command may take (a light node's search waits at most 10 s).
pub(crate) const COMMAND_TIMEOUT: Duration = Duration::from_secs(40);

/// The `souk` binary.
#[derive(Debug, Clone)]
pub(crate) struct Souk {
    /// Its path.
    pub(crate) bin: PathBuf,
}

/// A finished CLI command.
#[derive(Debug)]
pub(crate) struct Finished {
    pub(crate) status: ExitStatus,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
    /// The command line, for messages.
    pub(crate) shown: String,
}

impl Finished {
    /// The output, or an error quoting the command and what it printed on stderr.
    pub(crate) fn ok(self) -> anyhow::Result<String> {
        if self.status.success() {
            return Ok(self.stdout);
        }
        let err = self.stderr.trim();
        let err = if err.is_empty() {
            self.stdout.trim()
        } else {
            err
        };
        anyhow::bail!("`{}` failed ({}): {}", self.shown, self.status, err)
    }
}

impl Souk {
    /// A `souk [--data-dir DIR] ARGS...` command.
    pub(crate) fn command(&self, data_dir: Option<&Path>, args: &[&str]) -> Command {
        let mut c = Command::new(&self.bin);
        // The data directory is always explicit; a SOUK_HOME from the environment must not
        // point a command at the user's own node.
        c.env_remove("SOUK_HOME");
        if let Some(d) = data_dir {
            c.arg("--data-dir").arg(d);
        }
        c.args(args);
        c
    }

    /// The command line as a person would type it (data dir shortened to its last part).
    pub(crate) fn shown(data_dir: Option<&Path>, args: &[&str]) -> String {
        let mut s = String::from("souk");
        if let Some(d) = data_dir {
            let short = d.file_name().map_or_else(
                || d.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            );
            s.push_str(&format!(" --data-dir {short}"));
        }
        for a in args {
            s.push(' ');
            s.push_str(a);
        }
        s
    }

    /// Runs a CLI command to completion (killed after `timeout`).
    pub(crate) fn run(
        &self,
        data_dir: Option<&Path>,
        args: &[&str],
        timeout: Duration,
    ) -> anyhow::Result<Finished> {
        let shown = Self::shown(data_dir, args);
        if crate::procs::interrupted() {
            anyhow::bail!("interrupted; not running `{shown}`");
        }
        let mut child = self
            .command(data_dir, args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot run {}", self.bin.display()))?;
        let out = reader(child.stdout.take());
        let err = reader(child.stderr.take());
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(s) = child.try_wait().context("cannot wait for souk")? {
                break s;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                anyhow::bail!("`{shown}` did not finish within {} s", timeout.as_secs());
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let stdout = out.join().unwrap_or_default();
        let stderr = err.join().unwrap_or_default();
        Ok(Finished {
            status,
            stdout,
            stderr,
            shown,
        })
    }

    /// Runs a command that must succeed and print one JSON value.
    pub(crate) fn json<T: DeserializeOwned>(
        &self,
        data_dir: Option<&Path>,
        args: &[&str],
    ) -> anyhow::Result<T> {
        let shown = Self::shown(data_dir, args);
        let out = self.run(data_dir, args, COMMAND_TIMEOUT)?.ok()?;
        serde_json::from_str(out.trim())
            .with_context(|| format!("`{shown}` printed something that is not the expected JSON"))
    }

    /// `souk node info --json` of the node on `data_dir`.
    pub(crate) fn info(&self, data_dir: &Path) -> anyhow::Result<NodeInfo> {
        self.json(Some(data_dir), &["node", "info", "--json"])
    }
}

fn reader<R: Read + Send + 'static>(pipe: Option<R>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(mut p) = pipe {
            let mut bytes = Vec::new();
            let _ = p.read_to_end(&mut bytes);
            s = String::from_utf8_lossy(&bytes).into_owned();
        }
        s
    })
}

// The JSON the CLI prints (docs/api.md); only the fields used here.

/// `souk node info --json`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct NodeInfo {
    pub(crate) node_id: String,
    pub(crate) peer_id: String,
    pub(crate) mode: String,
    #[serde(default)]
    pub(crate) listen_addrs: Vec<String>,
    #[serde(default)]
    pub(crate) peers: Vec<String>,
    #[serde(default)]
    pub(crate) manifests: u64,
    #[serde(default)]
    pub(crate) agents: u64,
    /// How the node confines hired agents (`none` when it does not).
    #[serde(default)]
    pub(crate) sandbox: String,
    #[serde(default)]
    pub(crate) metrics: Metrics,
}

/// The counters of `node info`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Metrics {
    pub(crate) gossip_accepted: u64,
    pub(crate) gossip_rejected: u64,
    pub(crate) sync_received: u64,
    pub(crate) search_served: u64,
    pub(crate) peers_banned: u64,
    pub(crate) hires_offered: u64,
    pub(crate) hires_declined_capacity: u64,
}

/// `souk init --json`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct InitInfo {
    pub(crate) node_id: String,
    pub(crate) peer_id: String,
}

/// `souk agent publish --json`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Published {
    pub(crate) name: String,
    pub(crate) manifest_id: String,
    pub(crate) seq: u64,
}

/// One result of `souk search --json`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct SearchHit {
    pub(crate) id: String,
    pub(crate) provider: String,
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) capabilities: Vec<String>,
    pub(crate) currency: String,
    pub(crate) per_hire: u64,
}

/// A hire record (`souk hire --json`, `hire status --json`, `hires --json`).
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Hire {
    pub(crate) hire_id: String,
    pub(crate) state: String,
    pub(crate) verdict: Option<String>,
    pub(crate) agent: String,
    pub(crate) price: u64,
    pub(crate) currency: String,
    #[serde(default)]
    pub(crate) countered: bool,
    #[serde(default)]
    pub(crate) entries: u64,
    pub(crate) error: Option<String>,
    /// When it was made and by when the work must end (ms, the nodes' clock).
    #[serde(default)]
    pub(crate) created_at: u64,
    #[serde(default)]
    pub(crate) deadline: u64,
    /// Client side: the hire was ended here without a terminal receipt.
    #[serde(default)]
    pub(crate) closed: Option<Closed>,
}

/// Why and when a client ended a hire itself (`closed` of a hire record).
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Closed {
    /// `provider-equivocated`.
    pub(crate) reason: String,
    /// When, Unix ms.
    pub(crate) at: u64,
}

/// One line of `souk hire watch --json`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Step {
    pub(crate) seq: u64,
    pub(crate) time: u64,
    pub(crate) kind: String,
    pub(crate) summary: String,
    pub(crate) payload: Option<serde_json::Value>,
}

/// `souk verify --json`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct VerifyReport {
    pub(crate) valid: bool,
    pub(crate) rule: Option<String>,
    pub(crate) entry: Option<u64>,
    pub(crate) detail: Option<String>,
    pub(crate) hire_id: Option<String>,
    pub(crate) agent: Option<String>,
    pub(crate) provider: Option<String>,
    pub(crate) client: Option<String>,
    pub(crate) entries: Option<u64>,
    pub(crate) state: Option<String>,
    pub(crate) verdict: Option<String>,
}

/// The first `n` characters of an id, for people.
pub(crate) fn short(id: &str, n: usize) -> &str {
    match id.char_indices().nth(n) {
        Some((i, _)) => &id[..i],
        None => id,
    }
}
