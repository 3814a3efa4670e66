//! `config.toml`: every node setting, its default, and validation with errors that say what
//! to fix. [`Config::documented_default`] writes the commented file `souk init` creates.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Most `standby_sandboxes` a node keeps.
pub const MAX_STANDBY_SANDBOXES: usize = 16;

/// Full node (stores and serves manifests) or light node (asks full nodes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Stores every manifest, serves sync and search, runs agents.
    Full,
    /// Keeps no index; searches through full nodes; stays small.
    Light,
}

/// Node settings (`config.toml`). Unknown keys are an error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `full` or `light`.
    pub mode: Mode,
    /// libp2p listen addresses.
    pub listen: Vec<String>,
    /// Peers to dial at start (multiaddrs ending in `/p2p/<peer id>`).
    pub bootstrap: Vec<String>,
    /// Local API address; must be a loopback address (port 0 picks a free port).
    pub api: String,
    /// Address of the Prometheus endpoint (`GET /metrics`, no authentication); empty: off.
    pub metrics: String,
    /// redb cache size in MiB.
    pub cache_size_mib: u64,
    /// Most established libp2p connections.
    pub max_connections: u32,
    /// Full peers to keep; surplus peers outside the gossip mesh are disconnected once idle.
    pub target_peers: usize,
    /// Seconds before an idle connection is closed.
    pub idle_timeout_secs: u64,
    /// Validity window of the manifests this node publishes, in seconds (re-announced at half).
    pub manifest_ttl_secs: u64,
    /// Seconds between sweeps of expired manifests.
    pub sweep_interval_secs: u64,
    /// Gossipsub mesh degree.
    pub mesh_n: usize,
    /// How hired agents are confined: `required`, `auto` or `off`.
    pub sandbox: String,
    /// Sandbox helpers kept started, each in its own cgroup, while the node offers agents, so
    /// that a cold start does not wait for its cgroup join (0: none).
    pub standby_sandboxes: usize,
    /// Where hires' working directories go; empty: `<data dir>-work` beside the data
    /// directory (never inside it: it holds the node's keys).
    pub work_dir: String,
    /// Seconds a finished hire's working directory is kept before it is removed.
    pub workdir_retention_secs: u64,
    /// Ceilings of every hire's resources.
    pub limits: LimitsConfig,
    /// How hires' egress proxies reach upstreams.
    pub egress: EgressConfig,
}

/// `[limits]`: node-wide ceilings of every hire's resources (a manifest asks for less, never
/// more). 0 means no limit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Memory of a whole hire, MiB.
    pub memory_mib: u64,
    /// Processes and threads of a whole hire.
    pub max_processes: u64,
    /// Open files per process.
    pub max_open_files: u64,
    /// Largest file an agent may write, MiB.
    pub max_file_mib: u64,
    /// CPU seconds per process.
    pub cpu_secs: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        let d = crate::hire::settings::default_ceilings();
        let mib = |b: Option<u64>| b.map_or(0, |b| b >> 20);
        LimitsConfig {
            memory_mib: mib(d.memory_bytes),
            max_processes: d.max_processes.unwrap_or(0),
            max_open_files: d.max_open_files.unwrap_or(0),
            max_file_mib: mib(d.max_file_bytes),
            cpu_secs: d.cpu_secs.unwrap_or(0),
        }
    }
}

impl LimitsConfig {
    /// As the runtime's limits.
    pub fn ceilings(&self) -> souk_runtime::ResourceLimits {
        let some = |v: u64| (v > 0).then_some(v);
        souk_runtime::ResourceLimits {
            memory_bytes: some(self.memory_mib).map(|m| m << 20),
            max_processes: some(self.max_processes),
            max_open_files: some(self.max_open_files),
            max_file_bytes: some(self.max_file_mib).map(|m| m << 20),
            cpu_secs: some(self.cpu_secs),
        }
    }
}

/// `[egress]`: how hires' egress proxies reach upstreams.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EgressConfig {
    /// Let agents reach private, loopback and link-local addresses (tests, private networks).
    pub allow_private: bool,
    /// PEM files of extra trusted root certificates.
    pub extra_roots: Vec<String>,
    /// Fixed addresses for names, tried before DNS (`"api.test" = "127.0.0.1:8443"`).
    pub resolve: std::collections::BTreeMap<String, String>,
}

impl Default for Config {
    fn default() -> Self {
        Self::for_mode(Mode::Full)
    }
}

/// A config that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {cause}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        cause: std::io::Error,
    },
    /// Not valid TOML or not a Souk config.
    #[error("{path} is not a valid Souk config: {message}")]
    Parse {
        /// The file.
        path: String,
        /// What the parser said (line and column included).
        message: String,
    },
    /// A value is out of range.
    #[error("{path}: {field}: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// The key.
        field: &'static str,
        /// What is wrong and what to do.
        message: String,
    },
}

impl Config {
    /// Defaults for a mode.
    pub fn for_mode(mode: Mode) -> Self {
        let light = mode == Mode::Light;
        Self {
            mode,
            listen: vec![
                if light {
                    "/ip4/127.0.0.1/tcp/0"
                } else {
                    "/ip4/0.0.0.0/tcp/4710"
                }
                .into(),
            ],
            bootstrap: Vec::new(),
            api: "127.0.0.1:0".into(),
            metrics: String::new(),
            cache_size_mib: if light { 4 } else { 64 },
            max_connections: if light { 32 } else { 128 },
            target_peers: if light { 16 } else { 12 },
            idle_timeout_secs: 60,
            manifest_ttl_secs: 3600,
            sweep_interval_secs: 30,
            mesh_n: 4,
            // Light nodes are clients: they run no agents.
            sandbox: if light { "off" } else { "required" }.into(),
            standby_sandboxes: crate::hire::STANDBY_SANDBOXES,
            work_dir: String::new(),
            workdir_retention_secs: 24 * 3600,
            limits: LimitsConfig::default(),
            egress: EgressConfig::default(),
        }
    }

    /// Reads and validates `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let p = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|cause| ConfigError::Read {
            path: p.clone(),
            cause,
        })?;
        Self::parse(&text, &p)
    }

    /// Parses and validates config text (`path` is for messages).
    pub fn parse(text: &str, path: &str) -> Result<Self, ConfigError> {
        let parse_err = |e: toml::de::Error| ConfigError::Parse {
            path: path.into(),
            message: e.to_string().trim().replace('\n', " "),
        };
        // Keys left out take the defaults of the file's mode, not of a full node.
        let table: toml::Table = toml::from_str(text).map_err(parse_err)?;
        let mode = match table.get("mode").and_then(|m| m.as_str()) {
            Some("light") => Mode::Light,
            _ => Mode::Full,
        };
        let mut merged =
            toml::Table::try_from(Self::for_mode(mode)).map_err(|e| ConfigError::Parse {
                path: path.into(),
                message: e.to_string(),
            })?;
        for (k, v) in table {
            merged.insert(k, v);
        }
        let cfg: Config = merged.try_into().map_err(parse_err)?;
        cfg.validate(path)?;
        Ok(cfg)
    }

    /// Checks ranges and addresses.
    pub fn validate(&self, path: &str) -> Result<(), ConfigError> {
        let bad = |field, message: String| ConfigError::Invalid {
            path: path.into(),
            field,
            message,
        };
        let api: SocketAddr = self
            .api
            .parse()
            .map_err(|_| bad("api", format!("{:?} is not an ip:port address", self.api)))?;
        if !api.ip().is_loopback() {
            return Err(bad(
                "api",
                format!(
                    "{api} is not a loopback address; the local API only listens on 127.0.0.1 or ::1"
                ),
            ));
        }
        self.check_metrics(api).map_err(|e| bad("metrics", e))?;
        for a in &self.listen {
            a.parse::<libp2p::Multiaddr>()
                .map_err(|e| bad("listen", format!("{a:?} is not a multiaddr: {e}")))?;
        }
        for a in &self.bootstrap {
            a.parse::<libp2p::Multiaddr>()
                .map_err(|e| bad("bootstrap", format!("{a:?} is not a multiaddr: {e}")))?;
        }
        if !(1..=65_536).contains(&self.cache_size_mib) {
            return Err(bad("cache_size_mib", "must be between 1 and 65536".into()));
        }
        if self.max_connections == 0 {
            return Err(bad("max_connections", "must be at least 1".into()));
        }
        if self.target_peers == 0 || self.target_peers > self.max_connections as usize {
            return Err(bad(
                "target_peers",
                format!(
                    "must be between 1 and max_connections ({})",
                    self.max_connections
                ),
            ));
        }
        let max_ttl = souk_protocol::manifest::MAX_MANIFEST_TTL_MS / 1000;
        if !(60..=max_ttl).contains(&self.manifest_ttl_secs) {
            return Err(bad(
                "manifest_ttl_secs",
                format!("must be between 60 and {max_ttl}"),
            ));
        }
        if !(1..=3600).contains(&self.sweep_interval_secs) {
            return Err(bad(
                "sweep_interval_secs",
                "must be between 1 and 3600".into(),
            ));
        }
        if self.sweep_interval_secs.saturating_mul(4) > self.manifest_ttl_secs {
            return Err(bad(
                "sweep_interval_secs",
                format!(
                    "must be at most a quarter of manifest_ttl_secs ({}) so heartbeats are never late",
                    self.manifest_ttl_secs
                ),
            ));
        }
        if !(2..=32).contains(&self.mesh_n) {
            return Err(bad("mesh_n", "must be between 2 and 32".into()));
        }
        self.sandbox_mode().map_err(|m| bad("sandbox", m))?;
        if self.standby_sandboxes > MAX_STANDBY_SANDBOXES {
            return Err(bad(
                "standby_sandboxes",
                format!("must be at most {MAX_STANDBY_SANDBOXES}"),
            ));
        }
        for (name, addr) in &self.egress.resolve {
            addr.parse::<SocketAddr>().map_err(|_| {
                bad(
                    "egress.resolve",
                    format!("{name:?} = {addr:?}: the address must be ip:port"),
                )
            })?;
        }
        Ok(())
    }

    /// The sandbox mode (validated).
    pub fn sandbox_mode(&self) -> Result<souk_runtime::sandbox::SandboxMode, String> {
        self.sandbox.parse()
    }

    /// The egress settings, reading the extra root certificates.
    pub fn egress_settings(&self) -> Result<crate::hire::EgressSettings, ConfigError> {
        let mut extra_roots = Vec::new();
        for path in &self.egress.extra_roots {
            let text = std::fs::read_to_string(path).map_err(|cause| ConfigError::Read {
                path: path.clone(),
                cause,
            })?;
            extra_roots.extend(crate::hire::settings::pem_certificates(&text).map_err(
                |message| ConfigError::Invalid {
                    path: path.clone(),
                    field: "egress.extra_roots",
                    message,
                },
            )?);
        }
        let resolve = self
            .egress
            .resolve
            .iter()
            .filter_map(|(name, addr)| Some((name.clone(), addr.parse().ok()?)))
            .collect();
        Ok(crate::hire::EgressSettings {
            allow_private: self.egress.allow_private,
            extra_roots,
            resolve,
        })
    }

    /// The Prometheus endpoint's address, if it is on: `metrics` parsed and checked against
    /// the API address.
    fn check_metrics(&self, api: SocketAddr) -> Result<Option<SocketAddr>, String> {
        let text = self.metrics.trim();
        if text.is_empty() {
            return Ok(None);
        }
        let addr: SocketAddr = text.parse().map_err(|_| {
            format!(
                "{text:?} is not an ip:port address (e.g. \"127.0.0.1:9464\"; empty turns the endpoint off)"
            )
        })?;
        let ip = addr.ip();
        let broadcast = matches!(ip, std::net::IpAddr::V4(v4) if v4.is_broadcast());
        if ip.is_multicast() || broadcast {
            return Err(format!(
                "{addr} is a multicast or broadcast address: give an address of this machine (127.0.0.1 recommended)"
            ));
        }
        if addr.port() != 0 && addr.port() == api.port() && (ip == api.ip() || ip.is_unspecified())
        {
            return Err(format!(
                "{addr} is the address of the local API (api = {api}): give the endpoint its own port"
            ));
        }
        Ok(Some(addr))
    }

    /// The Prometheus endpoint's address (validated), or `None` when it is off.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.check_metrics(self.api_addr()).ok().flatten()
    }

    /// The API address (validated).
    pub fn api_addr(&self) -> SocketAddr {
        self.api
            .parse()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// Idle timeout.
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout_secs)
    }

    /// The commented `config.toml` written by `souk init`: every option with its default.
    pub fn documented_default(mode: Mode) -> String {
        let d = Self::for_mode(mode);
        let list = |v: &[String]| {
            v.iter()
                .map(|s| format!("{s:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        format!(
            r#"# Souk node configuration. Every option is shown with its default.
# Command-line flags of `souk node run` override these values for one run.

# "full": stores and serves manifests, answers search, runs agents.
# "light": keeps no index and asks full nodes; for clients.
mode = "{mode}"

# libp2p listen addresses (multiaddrs). Port 0 picks a free port.
listen = [{listen}]

# Peers to dial at start, e.g. "/ip4/192.0.2.7/tcp/4710/p2p/12D3KooW...".
bootstrap = []

# The local control API (HTTP + JSON, bearer token in api.token). Loopback only;
# port 0 picks a free port, written to api.addr while the node runs.
api = "{api}"

# The Prometheus endpoint (GET /metrics, OpenMetrics text; docs/metrics.md), e.g.
# "127.0.0.1:9464". Empty: off. It has NO authentication: anyone who can reach the address
# reads the node's metrics, so keep it on loopback unless a firewall guards it.
metrics = ""

# redb page cache, MiB. Light nodes want little.
cache_size_mib = {cache}

# Most established libp2p connections, and seconds before an idle one is closed.
max_connections = {maxc}
idle_timeout_secs = {idle}

# Full peers to keep. Above it, peers outside the gossip mesh that have exchanged no
# sync, search or hire traffic for a minute are disconnected; below half of it, more are
# dialed (a light node dials only below 2).
target_peers = {target}

# Validity window of the manifests this node publishes, in seconds. They are
# re-announced at half of it, so agents of a dead node fall out of search on their own.
manifest_ttl_secs = {ttl}

# Seconds between sweeps that drop expired manifests.
sweep_interval_secs = {sweep}

# Gossipsub mesh degree (peers each message is pushed to eagerly). Manifests are small and
# rare, and the publisher also sends each one to all its peers, so 4 is enough redundancy;
# every extra mesh peer is one more copy of every message for every node.
mesh_n = {mesh}

# How hired agents are confined. "required": every agent runs in a bubblewrap sandbox
# (its own user, pid, ipc, uts and network namespaces; the system read-only; its package
# read-only; its working directory; nothing of the node), and the node refuses to start
# if it cannot create one. "auto": the same, or without namespaces (loud warning, and
# `sandbox: none` in `souk node info`) where bubblewrap is missing. "off": no namespaces.
# Light nodes run no agents.
sandbox = "{sandbox}"

# Sandboxes kept started ahead of any hire while this node offers agents, each already in
# its own cgroup: a cold start takes one instead of waiting for its cgroup join (about
# 10 ms on some kernels). 0: none. Used only with namespaces and cgroups.
standby_sandboxes = {standby}

# Where hires' working directories go. Empty: "<data dir>-work", beside the data
# directory (never inside it: it holds the node's keys).
work_dir = ""

# Seconds a finished hire's working directory is kept (for debugging: `souk hire workdir
# ID`) before it is removed.
workdir_retention_secs = {retention}

# Ceilings of every hire's resources (0: none). A manifest's own limits are clamped to these.
[limits]
memory_mib = {memory}
max_processes = {procs}
max_open_files = {files}
max_file_mib = {file_mib}
cpu_secs = {cpu}

# How agents' egress proxies reach the hosts their manifests list.
[egress]
# Let agents reach private, loopback and link-local addresses.
allow_private = false
# PEM files of extra trusted root certificates, besides the Mozilla roots.
extra_roots = []
# Fixed addresses for names, tried before DNS, e.g. {{ "api.test" = "127.0.0.1:8443" }}.
resolve = {{}}
"#,
            mode = if mode == Mode::Light { "light" } else { "full" },
            listen = list(&d.listen),
            api = d.api,
            cache = d.cache_size_mib,
            maxc = d.max_connections,
            idle = d.idle_timeout_secs,
            target = d.target_peers,
            ttl = d.manifest_ttl_secs,
            sweep = d.sweep_interval_secs,
            mesh = d.mesh_n,
            sandbox = d.sandbox,
            standby = d.standby_sandboxes,
            retention = d.workdir_retention_secs,
            memory = d.limits.memory_mib,
            procs = d.limits.max_processes,
            files = d.limits.max_open_files,
            file_mib = d.limits.max_file_mib,
            cpu = d.limits.cpu_secs,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_default_parses_to_the_defaults() {
        for mode in [Mode::Full, Mode::Light] {
            let text = Config::documented_default(mode);
            let parsed = Config::parse(&text, "config.toml").unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(parsed, Config::for_mode(mode));
        }
    }

    #[test]
    fn missing_keys_take_the_defaults_of_the_mode() {
        let c = Config::parse("mode = \"light\"\n", "c.toml").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c, Config::for_mode(Mode::Light));
        let c = Config::parse("", "c.toml").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c, Config::for_mode(Mode::Full));
    }

    #[test]
    fn foreign_or_broken_configs_are_clear_errors() {
        let unknown = Config::parse("mode = \"full\"\nport = 3\n", "c.toml")
            .err()
            .map(|e| e.to_string());
        assert!(unknown.is_some_and(|m| m.contains("c.toml") && m.contains("port")));
        let garbage = Config::parse("\u{0}\u{1}not toml [[[", "c.toml")
            .err()
            .map(|e| e.to_string());
        assert!(garbage.is_some_and(|m| m.contains("not a valid Souk config")));
        let public_api = Config::parse("api = \"0.0.0.0:80\"\n", "c.toml")
            .err()
            .map(|e| e.to_string());
        assert!(public_api.is_some_and(|m| m.contains("loopback")));
        let bad_mode = Config::parse("mode = \"heavy\"\n", "c.toml");
        assert!(bad_mode.is_err());
        let too_many = Config::parse("standby_sandboxes = 17\n", "c.toml")
            .err()
            .map(|e| e.to_string());
        assert!(too_many.is_some_and(|m| m.contains("standby_sandboxes") && m.contains("16")));
        let none = Config::parse("standby_sandboxes = 0\n", "c.toml");
        assert_eq!(none.map(|c| c.standby_sandboxes).ok(), Some(0));
    }

    #[test]
    fn the_metrics_endpoint_is_off_by_default_and_checked() {
        assert_eq!(Config::for_mode(Mode::Full).metrics_addr(), None);
        let on = Config::parse("metrics = \"127.0.0.1:9464\"\n", "c.toml")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            on.metrics_addr(),
            Some(SocketAddr::from(([127, 0, 0, 1], 9464)))
        );
        // Any address the operator gives, port 0 included.
        for ok in ["0.0.0.0:9464", "[::1]:0", "127.0.0.1:0"] {
            let c = Config::parse(&format!("metrics = {ok:?}\n"), "c.toml");
            assert!(c.is_ok(), "{ok}: {:?}", c.err());
        }
        let refused = |text: &str, want: &str| {
            let e = Config::parse(text, "c.toml")
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(e.contains("metrics") && e.contains(want), "{text}: {e:?}");
        };
        refused("metrics = \"localhost\"\n", "not an ip:port");
        refused("metrics = \"9464\"\n", "not an ip:port");
        refused("metrics = \"224.0.0.1:9464\"\n", "multicast");
        refused("metrics = \"255.255.255.255:9464\"\n", "broadcast");
        refused(
            "api = \"127.0.0.1:4711\"\nmetrics = \"127.0.0.1:4711\"\n",
            "local API",
        );
    }
}
