//! The agent file (`agent.toml`): how a provider describes an agent and how to run it.
//!
//! The CLI reads the file, resolves schema files and hashes the runtime package into an
//! [`AgentSpec`], which it sends to the node; the node signs it into a manifest
//! ([`AgentSpec::to_manifest`]). The format is documented with a commented example in
//! `examples/csv-analyst/agent.toml` and in `docs/agent-file.md`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use souk_protocol::Hash;
use souk_protocol::identity::NodeId;
use souk_protocol::manifest::{
    CredentialSlot, Injection, Isolation, Limits, Manifest, Pricing, Tool,
};

/// Most files hashed into a runtime digest.
pub const MAX_PACKAGE_FILES: usize = 10_000;
/// Most bytes hashed into a runtime digest.
pub const MAX_PACKAGE_BYTES: u64 = 256 * 1024 * 1024;

/// A problem with an agent file.
#[derive(Debug, thiserror::Error)]
pub enum AgentFileError {
    /// Cannot read a file.
    #[error("cannot read {path}: {cause}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        cause: std::io::Error,
    },
    /// Not a valid agent file.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
}

/// `agent.toml` as written by a provider.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AgentFile {
    name: String,
    description: String,
    capabilities: Vec<String>,
    input_schema: SchemaSource,
    output_schema: SchemaSource,
    #[serde(default)]
    hosts: Vec<String>,
    #[serde(default)]
    tools: Vec<ToolEntry>,
    #[serde(default)]
    credentials: Vec<CredentialEntry>,
    pricing: PricingEntry,
    limits: LimitsEntry,
    run: RunEntry,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum SchemaSource {
    /// A path relative to the agent file.
    File(String),
    /// An inline TOML table, converted to JSON.
    Inline(toml::Table),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ToolEntry {
    name: String,
    description: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CredentialEntry {
    name: String,
    hosts: Vec<String>,
    inject: InjectEntry,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InjectEntry {
    header: Option<String>,
    prefix: Option<String>,
    #[serde(default)]
    basic: bool,
    query: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PricingEntry {
    currency: String,
    per_hire: String,
    #[serde(default = "zero")]
    per_hour: String,
}

fn zero() -> String {
    "0".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitsEntry {
    max_duration_secs: u64,
    max_concurrency: u32,
    max_input_bytes: u64,
    /// Memory of one hire, MiB (default: the node's ceiling).
    memory_mib: Option<u64>,
    /// Processes and threads of one hire (default: the node's ceiling).
    max_processes: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RunEntry {
    command: Vec<String>,
    #[serde(default = "dot")]
    workdir: String,
    package: Option<String>,
}

fn dot() -> String {
    ".".into()
}

/// An [`AgentSpec`] that cannot become a manifest body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// `runtime_digest` is not a BLAKE3 digest in hex.
    #[error("runtime_digest is not 64 hex digits")]
    Digest,
    /// A credential slot names an injection the proxy does not know.
    #[error("credential {slot:?}: unknown injection {inject:?} (header, basic or query)")]
    Injection {
        /// The slot.
        slot: String,
        /// What it says.
        inject: String,
    },
}

/// How the node starts the agent for a hire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunSpec {
    /// Program and arguments.
    pub command: Vec<String>,
    /// Absolute working directory.
    pub workdir: PathBuf,
}

/// Everything the node needs to sign a manifest and run the agent; sent by the CLI as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentSpec {
    /// Agent name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Capability tags (sorted, unique).
    pub capabilities: Vec<String>,
    /// Input JSON Schema (JSON text).
    pub input_schema: String,
    /// Output JSON Schema (JSON text).
    pub output_schema: String,
    /// Hosts the agent may reach (sorted, unique).
    pub hosts: Vec<String>,
    /// Tools: (name, description), sorted by name.
    pub tools: Vec<(String, String)>,
    /// Credential slots.
    pub credentials: Vec<SlotSpec>,
    /// Currency code.
    pub currency: String,
    /// Price per hire, micro-units.
    pub per_hire: u64,
    /// Price per hour, micro-units.
    pub per_hour: u64,
    /// Longest hire, ms.
    pub max_duration_ms: u64,
    /// Concurrent hires.
    pub max_concurrency: u32,
    /// Largest input, bytes.
    pub max_input_bytes: u64,
    /// Memory of one hire, bytes (`None`: the node's ceiling).
    #[serde(default)]
    pub memory_bytes: Option<u64>,
    /// Processes and threads of one hire (`None`: the node's ceiling).
    #[serde(default)]
    pub max_processes: Option<u64>,
    /// BLAKE3 digest of the runtime package (hex).
    pub runtime_digest: String,
    /// How to run it.
    pub run: RunSpec,
}

/// A credential slot in an [`AgentSpec`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotSpec {
    /// Slot name.
    pub name: String,
    /// Hosts (sorted, unique).
    pub hosts: Vec<String>,
    /// `header`, `basic` or `query`.
    pub inject: String,
    /// Header name or query parameter.
    pub param: String,
    /// Header prefix.
    pub prefix: String,
}

/// Parses a decimal amount ("2", "2.5", "0.000001") into micro-units.
pub fn parse_amount(s: &str) -> Option<u64> {
    let s = s.trim();
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if int.is_empty() && frac.is_empty() || frac.len() > 6 {
        return None;
    }
    if !int.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let int: u64 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let frac_val: u64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<6}").parse().ok()?
    };
    int.checked_mul(1_000_000)?.checked_add(frac_val)
}

/// Formats micro-units as a decimal amount ("2.5").
pub fn format_amount(micros: u64) -> String {
    let int = micros / 1_000_000;
    let frac = micros % 1_000_000;
    if frac == 0 {
        int.to_string()
    } else {
        let f = format!("{frac:06}");
        format!("{int}.{}", f.trim_end_matches('0'))
    }
}

/// BLAKE3 over a package directory: for every regular file, in byte order of its
/// '/'-separated relative path, `u64le(len(path)) || path || u64le(len(data)) || data`.
/// Hidden entries (names starting with '.') and `__pycache__` are skipped.
pub fn package_digest(root: &Path) -> Result<Hash, AgentFileError> {
    let mut files = Vec::new();
    collect(root, root, &mut files)?;
    files.sort();
    if files.len() > MAX_PACKAGE_FILES {
        return Err(AgentFileError::Invalid {
            path: root.display().to_string(),
            message: format!("package has more than {MAX_PACKAGE_FILES} files"),
        });
    }
    let mut h = blake3::Hasher::new();
    let mut total = 0u64;
    for rel in files {
        let path = root.join(&rel);
        let data = std::fs::read(&path).map_err(|cause| AgentFileError::Read {
            path: path.display().to_string(),
            cause,
        })?;
        total += data.len() as u64;
        if total > MAX_PACKAGE_BYTES {
            return Err(AgentFileError::Invalid {
                path: root.display().to_string(),
                message: format!("package is larger than {MAX_PACKAGE_BYTES} bytes"),
            });
        }
        h.update(&(rel.len() as u64).to_le_bytes());
        h.update(rel.as_bytes());
        h.update(&(data.len() as u64).to_le_bytes());
        h.update(&data);
    }
    Ok(Hash(*h.finalize().as_bytes()))
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<String>) -> Result<(), AgentFileError> {
    let read_err = |cause| AgentFileError::Read {
        path: dir.display().to_string(),
        cause,
    };
    for entry in std::fs::read_dir(dir).map_err(read_err)? {
        let entry = entry.map_err(|cause| AgentFileError::Read {
            path: dir.display().to_string(),
            cause,
        })?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || name == "__pycache__" {
            continue;
        }
        let path = entry.path();
        let kind = entry.file_type().map_err(|cause| AgentFileError::Read {
            path: path.display().to_string(),
            cause,
        })?;
        if kind.is_dir() {
            collect(root, &path, out)?;
        } else if kind.is_file() {
            let rel = path
                .strip_prefix(root)
                .map(|p| {
                    p.components()
                        .map(|c| c.as_os_str().to_string_lossy())
                        .collect::<Vec<_>>()
                        .join("/")
                })
                .unwrap_or(name);
            out.push(rel);
            if out.len() > MAX_PACKAGE_FILES {
                return Ok(());
            }
        }
    }
    Ok(())
}

impl AgentSpec {
    /// Reads `agent.toml` and everything it references.
    pub fn load(path: &Path) -> Result<AgentSpec, AgentFileError> {
        let p = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|cause| AgentFileError::Read {
            path: p.clone(),
            cause,
        })?;
        let base = path
            .canonicalize()
            .ok()
            .and_then(|c| c.parent().map(Path::to_path_buf))
            .unwrap_or_else(|| PathBuf::from("."));
        Self::parse(&text, &base, &p)
    }

    /// Parses agent file text whose relative paths start at `base`.
    pub fn parse(text: &str, base: &Path, path: &str) -> Result<AgentSpec, AgentFileError> {
        let bad = |message: String| AgentFileError::Invalid {
            path: path.into(),
            message,
        };
        let f: AgentFile =
            toml::from_str(text).map_err(|e| bad(e.to_string().trim().replace('\n', " ")))?;
        let schema = |s: &SchemaSource, which: &str| -> Result<String, AgentFileError> {
            let json = match s {
                SchemaSource::File(rel) => {
                    let file = base.join(rel);
                    std::fs::read_to_string(&file).map_err(|cause| AgentFileError::Read {
                        path: file.display().to_string(),
                        cause,
                    })?
                }
                SchemaSource::Inline(table) => {
                    serde_json::to_string(table).map_err(|e| bad(format!("{which}: {e}")))?
                }
            };
            let value: serde_json::Value = serde_json::from_str(&json)
                .map_err(|e| bad(format!("{which} is not valid JSON: {e}")))?;
            if !value.is_object() {
                return Err(bad(format!("{which} must be a JSON object")));
            }
            // Compact, stable text: the manifest carries exactly this.
            serde_json::to_string(&value).map_err(|e| bad(format!("{which}: {e}")))
        };
        let input_schema = schema(&f.input_schema, "input_schema")?;
        let output_schema = schema(&f.output_schema, "output_schema")?;
        let mut capabilities = f.capabilities.clone();
        capabilities.sort();
        capabilities.dedup();
        let mut hosts = f.hosts.clone();
        hosts.sort();
        hosts.dedup();
        let mut tools: Vec<(String, String)> = f
            .tools
            .iter()
            .map(|t| (t.name.clone(), t.description.clone()))
            .collect();
        tools.sort();
        let mut credentials = Vec::new();
        for c in &f.credentials {
            let i = &c.inject;
            let (inject, param, prefix) = match (&i.header, i.basic, &i.query) {
                (Some(h), false, None) => {
                    ("header", h.clone(), i.prefix.clone().unwrap_or_default())
                }
                (None, true, None) => ("basic", String::new(), String::new()),
                (None, false, Some(q)) => ("query", q.clone(), String::new()),
                _ => {
                    return Err(bad(format!(
                        "credential {:?}: inject must be exactly one of {{ header = \"name\", prefix = \"...\" }}, {{ basic = true }}, {{ query = \"param\" }}",
                        c.name
                    )));
                }
            };
            let mut hosts = c.hosts.clone();
            hosts.sort();
            hosts.dedup();
            credentials.push(SlotSpec {
                name: c.name.clone(),
                hosts,
                inject: inject.into(),
                param,
                prefix,
            });
        }
        credentials.sort_by(|a, b| a.name.cmp(&b.name));
        let per_hire = parse_amount(&f.pricing.per_hire).ok_or_else(|| {
            bad(format!(
                "pricing.per_hire {:?} is not a decimal amount (e.g. \"2.50\")",
                f.pricing.per_hire
            ))
        })?;
        let per_hour = parse_amount(&f.pricing.per_hour).ok_or_else(|| {
            bad(format!(
                "pricing.per_hour {:?} is not a decimal amount",
                f.pricing.per_hour
            ))
        })?;
        if f.run.command.is_empty() {
            return Err(bad("run.command must name a program".into()));
        }
        let workdir = base.join(&f.run.workdir);
        let package = base.join(f.run.package.as_deref().unwrap_or(&f.run.workdir));
        let digest = package_digest(&package)?;
        let spec = AgentSpec {
            name: f.name,
            description: f.description,
            capabilities,
            input_schema,
            output_schema,
            hosts,
            tools,
            credentials,
            currency: f.pricing.currency,
            per_hire,
            per_hour,
            max_duration_ms: f.limits.max_duration_secs.saturating_mul(1000),
            max_concurrency: f.limits.max_concurrency,
            max_input_bytes: f.limits.max_input_bytes,
            memory_bytes: f.limits.memory_mib.map(|m| m.saturating_mul(1 << 20)),
            max_processes: f.limits.max_processes,
            runtime_digest: digest.to_hex(),
            run: RunSpec {
                command: f.run.command,
                workdir,
            },
        };
        // Check every manifest rule now, so a bad file fails here, not at the node.
        let probe = spec
            .to_manifest(probe_provider(), 0, [0; 32], 1, 2)
            .map_err(|e| bad(e.to_string()))?;
        probe
            .validate(&Hash::ZERO)
            .map_err(|e| bad(e.to_string()))?;
        Ok(spec)
    }

    /// The manifest body for this agent.
    pub fn to_manifest(
        &self,
        provider: NodeId,
        seq: u64,
        sealing_key: [u8; 32],
        issued_at: u64,
        expires_at: u64,
    ) -> Result<Manifest, SpecError> {
        let runtime_digest = Hash::from_hex(&self.runtime_digest).ok_or(SpecError::Digest)?;
        let credentials = self
            .credentials
            .iter()
            .map(|s| {
                let injection = match s.inject.as_str() {
                    "header" => Injection::Header {
                        name: s.param.clone(),
                        prefix: s.prefix.clone(),
                    },
                    "basic" => Injection::Basic,
                    "query" => Injection::Query {
                        param: s.param.clone(),
                    },
                    other => {
                        return Err(SpecError::Injection {
                            slot: s.name.clone(),
                            inject: other.to_owned(),
                        });
                    }
                };
                Ok(CredentialSlot {
                    name: s.name.clone(),
                    hosts: s.hosts.clone(),
                    injection,
                })
            })
            .collect::<Result<Vec<_>, SpecError>>()?;
        Ok(Manifest {
            provider,
            name: self.name.clone(),
            seq,
            capabilities: self.capabilities.clone(),
            description: self.description.clone(),
            input_schema: self.input_schema.clone(),
            output_schema: self.output_schema.clone(),
            tools: self
                .tools
                .iter()
                .map(|(name, description)| Tool {
                    name: name.clone(),
                    description: description.clone(),
                })
                .collect(),
            hosts: self.hosts.clone(),
            credentials,
            pricing: Pricing {
                currency: self.currency.clone(),
                per_hire: self.per_hire,
                per_hour: self.per_hour,
            },
            // The publishing node states what it enforces (its ceilings, its sandbox).
            limits: Limits {
                max_duration_ms: self.max_duration_ms,
                max_concurrency: self.max_concurrency,
                max_input_bytes: self.max_input_bytes,
                memory_bytes: self.memory_bytes.unwrap_or(0),
                max_processes: self.max_processes.unwrap_or(0),
                isolation: Isolation::None,
            },
            runtime_digest,
            sealing_key,
            issued_at,
            expires_at,
        })
    }
}

fn probe_provider() -> NodeId {
    souk_protocol::Keypair::from_seed(&[1; 32]).id()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts() {
        assert_eq!(parse_amount("2"), Some(2_000_000));
        assert_eq!(parse_amount("2.5"), Some(2_500_000));
        assert_eq!(parse_amount("0.000001"), Some(1));
        assert_eq!(parse_amount(".5"), Some(500_000));
        for bad in ["", ".", "1.0000001", "-1", "1e3", "abc", "1.2.3"] {
            assert_eq!(parse_amount(bad), None, "{bad}");
        }
        assert_eq!(format_amount(2_500_000), "2.5");
        assert_eq!(format_amount(3_000_000), "3");
    }

    #[test]
    fn example_agent_file_loads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/csv-analyst/agent.toml");
        let spec = AgentSpec::load(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(spec.name, "csv-analyst");
        assert!(spec.capabilities.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(spec.runtime_digest.len(), 64);
    }

    #[test]
    fn bad_files_say_what_is_wrong() {
        let base = Path::new(".");
        let err = AgentSpec::parse("name = 3", base, "a.toml")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.starts_with("a.toml:"), "{err}");
        let text = r#"
name = "Bad Name"
description = "x"
capabilities = ["csv"]
input_schema = { type = "object" }
output_schema = { type = "object" }
[pricing]
currency = "USD"
per_hire = "1"
[limits]
max_duration_secs = 60
max_concurrency = 1
max_input_bytes = 10
[run]
command = ["true"]
"#;
        let err = AgentSpec::parse(text, base, "a.toml")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("name"), "{err}");
    }
}
