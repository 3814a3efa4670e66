//! [`HireSettings`]: how this node runs the agents it is hired for and how their network is
//! reached — the sandbox probed at start, node-wide resource ceilings, the egress proxies'
//! upstream settings, and how long a finished hire's working directory is kept.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use souk_egress::{Resolve, SystemResolver, UpstreamConfig};
use souk_runtime::sandbox::{ResourceLimits, SandboxSupport};

/// How hires run on this node.
#[derive(Debug, Clone)]
pub struct HireSettings {
    /// How agents are confined (`souk node run` probes it at start; see
    /// [`souk_runtime::sandbox::probe`]). `None`: agents run without the sandbox helper
    /// (no namespaces, no limits) — only for tests that do not exercise confinement.
    pub sandbox: Option<SandboxSupport>,
    /// Node-wide ceilings: a manifest's limits are clamped to these.
    pub ceilings: ResourceLimits,
    /// How hires' egress proxies (and relayed calls made for this node's own hires) reach
    /// upstreams.
    pub egress: EgressSettings,
    /// How long the working directory of a hire that ended is kept (for debugging; `souk
    /// hire workdir ID`) before it is removed.
    pub workdir_retention: Duration,
    /// Directories no agent may see: the node's data directory (keys, token, store) and its
    /// work directory (other hires, their proxy sockets). An agent whose package or
    /// `run.include` is, holds or lies in one of them does not start
    /// ([`crate::agent_file::check_run_paths`]). The hires' work directory is added by the
    /// node itself.
    pub protected: Vec<std::path::PathBuf>,
    /// Standby sandboxes kept while the node offers agents (config `standby_sandboxes`;
    /// [`souk_runtime::sandbox::StandbyPool`]).
    pub standby_sandboxes: usize,
}

impl Default for HireSettings {
    fn default() -> Self {
        HireSettings {
            sandbox: None,
            ceilings: default_ceilings(),
            egress: EgressSettings::default(),
            workdir_retention: Duration::from_secs(24 * 3600),
            protected: Vec::new(),
            standby_sandboxes: super::warm::STANDBY_SANDBOXES,
        }
    }
}

/// The default ceilings of every hire: 2 GiB of memory, 256 processes and threads, 1024 open
/// files per process, 1 GiB per written file. CPU time is bounded by the hire's wall time.
pub fn default_ceilings() -> ResourceLimits {
    ResourceLimits {
        memory_bytes: Some(2 << 30),
        max_processes: Some(256),
        max_open_files: Some(1024),
        max_file_bytes: Some(1 << 30),
        cpu_secs: None,
    }
}

/// How egress proxies reach upstreams.
#[derive(Debug, Clone, Default)]
pub struct EgressSettings {
    /// Allow private, loopback and link-local upstream addresses (tests, private networks).
    pub allow_private: bool,
    /// Extra trusted roots (DER certificates), besides the Mozilla roots.
    pub extra_roots: Vec<Vec<u8>>,
    /// Fixed addresses for names (`api.test` -> `127.0.0.1:8443`), tried before DNS.
    pub resolve: Vec<(String, SocketAddr)>,
}

impl EgressSettings {
    /// The upstream configuration of a proxy (or of this node's relayed calls).
    pub fn upstream(&self) -> UpstreamConfig {
        UpstreamConfig {
            extra_roots: self.extra_roots.clone(),
            allow_private: self.allow_private,
            resolver: Arc::new(FixedResolver {
                fixed: self.resolve.clone(),
            }),
            ..UpstreamConfig::default()
        }
    }
}

/// Names from the configuration first, then the system's resolver.
struct FixedResolver {
    fixed: Vec<(String, SocketAddr)>,
}

impl Resolve for FixedResolver {
    fn resolve<'a>(
        &'a self,
        host: &'a str,
        port: u16,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = std::io::Result<Vec<SocketAddr>>> + Send + 'a>,
    > {
        let fixed: Vec<SocketAddr> = self
            .fixed
            .iter()
            .filter(|(name, _)| name.eq_ignore_ascii_case(host))
            .map(|(_, addr)| *addr)
            .collect();
        if fixed.is_empty() {
            SystemResolver.resolve(host, port)
        } else {
            Box::pin(async move { Ok(fixed) })
        }
    }
}

/// Parses PEM certificates (`-----BEGIN CERTIFICATE-----` blocks) into DER.
pub fn pem_certificates(text: &str) -> Result<Vec<Vec<u8>>, String> {
    use base64::Engine;
    let mut out = Vec::new();
    let mut body: Option<String> = None;
    for line in text.lines().map(str::trim) {
        match (&mut body, line) {
            (None, "-----BEGIN CERTIFICATE-----") => body = Some(String::new()),
            (Some(b), "-----END CERTIFICATE-----") => {
                let der = base64::engine::general_purpose::STANDARD
                    .decode(b.as_bytes())
                    .map_err(|e| format!("a certificate is not valid base64: {e}"))?;
                out.push(der);
                body = None;
            }
            (Some(b), l) => b.push_str(l),
            (None, _) => {}
        }
    }
    if body.is_some() {
        return Err("a certificate has no END line".into());
    }
    if out.is_empty() {
        return Err("no PEM certificate found".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_blocks_are_read_and_junk_is_refused() {
        let pem = "junk\n-----BEGIN CERTIFICATE-----\nAAEC\nAw==\n-----END CERTIFICATE-----\n";
        assert_eq!(pem_certificates(pem), Ok(vec![vec![0, 1, 2, 3]]));
        assert!(pem_certificates("").is_err());
        assert!(pem_certificates("-----BEGIN CERTIFICATE-----\nAAEC\n").is_err());
        assert!(
            pem_certificates("-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----").is_err()
        );
    }
}
