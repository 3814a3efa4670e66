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

pub use crate::agent_package::{
    MAX_PACKAGE_BYTES, MAX_PACKAGE_FILES, check_run_paths, package_digest, runtime_digest,
};

/// Largest agent file read.
pub const MAX_AGENT_FILE_BYTES: u64 = 1024 * 1024;
/// Largest schema file read (its compact JSON must then fit the manifest's 16 384 bytes).
pub const MAX_SCHEMA_FILE_BYTES: u64 = 1024 * 1024;

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
    /// A file to read is not a regular file (a device, a FIFO, a directory...).
    #[error("{path} is not a regular file (the {what} must be a file of at most {limit} bytes)")]
    NotRegular {
        /// The file.
        path: String,
        /// What it was read as (`agent file`, `input_schema`...).
        what: &'static str,
        /// The limit.
        limit: u64,
    },
    /// A file to read is larger than its limit.
    #[error("{path} is larger than {limit} bytes, the limit of the {what}")]
    TooLarge {
        /// The file.
        path: String,
        /// What it was read as.
        what: &'static str,
        /// The limit.
        limit: u64,
    },
    /// `run.command` names a program that cannot be run.
    #[error("{path}: run.command: {message}")]
    Program {
        /// The agent file.
        path: String,
        /// What is wrong, naming the program and where it was looked for.
        message: String,
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
    #[serde(default)]
    include: Vec<String>,
    #[serde(default)]
    warm: u32,
    prepared: Option<u32>,
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
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunSpec {
    /// Program and arguments.
    pub command: Vec<String>,
    /// Absolute working directory.
    pub workdir: PathBuf,
    /// Absolute package directory, hashed into the runtime digest and bound read-only into
    /// the sandbox (`None`: the working directory).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package: Option<PathBuf>,
    /// Absolute, canonical directories outside the package that the agent also needs (a
    /// library such as the Python SDK): hashed into the runtime digest after the package and
    /// bound read-only into the sandbox at the same path.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub include: Vec<PathBuf>,
    /// Warm starts: how many sandboxed processes of this agent the node keeps started and
    /// waiting for a hire (0: none; at most 8). A provider's setting, not in the manifest.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub warm: u32,
    /// Prepared sandboxes: how many sandboxes of this agent the node keeps set up (namespaces,
    /// mounts, cgroup, working directory) with no process in them yet, so that a hire that
    /// finds no warm process does not wait for a sandbox to be made (0: none; at most 8;
    /// [`crate::hire::PREPARED_SANDBOXES`] when the file does not say). A provider's setting.
    #[serde(default = "default_prepared")]
    pub prepared: u32,
}

fn default_prepared() -> u32 {
    crate::hire::PREPARED_SANDBOXES
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl RunSpec {
    /// The package directory: `package`, else the working directory.
    pub fn package_dir(&self) -> &Path {
        self.package.as_deref().unwrap_or(&self.workdir)
    }

    /// The runtime digest of this agent's code as it is on disk now ([`runtime_digest`]).
    ///
    /// # Errors
    ///
    /// When a directory cannot be read or breaks the package limits.
    pub fn digest(&self) -> Result<Hash, AgentFileError> {
        runtime_digest(self.package_dir(), &self.include)
    }
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

/// Reads the regular file `path` as UTF-8 text of at most `limit` bytes, never more (a
/// device such as /dev/zero, or a FIFO, is refused before it is read).
pub fn read_bounded(path: &Path, limit: u64, what: &'static str) -> Result<String, AgentFileError> {
    use std::io::Read;
    let p = || path.display().to_string();
    let read_err = |cause| AgentFileError::Read { path: p(), cause };
    let not_regular = || AgentFileError::NotRegular {
        path: p(),
        what,
        limit,
    };
    // Checked before opening (opening a FIFO would block) and again on the open file.
    if !std::fs::metadata(path).map_err(read_err)?.is_file() {
        return Err(not_regular());
    }
    let file = std::fs::File::open(path).map_err(read_err)?;
    if !file.metadata().map_err(read_err)?.is_file() {
        return Err(not_regular());
    }
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(read_err)?;
    if bytes.len() as u64 > limit {
        return Err(AgentFileError::TooLarge {
            path: p(),
            what,
            limit,
        });
    }
    String::from_utf8(bytes).map_err(|e| AgentFileError::Invalid {
        path: p(),
        message: format!("the {what} is not UTF-8 text: {e}"),
    })
}

/// A host as the egress proxy, grants and rule R10 compare it: lowercase, without `:443`
/// (manifest.md "Port 443": `name:443` would never match a call).
fn host_key(h: &str) -> String {
    let h = h.to_ascii_lowercase();
    match h.strip_suffix(":443") {
        Some(name) => name.to_owned(),
        None => h,
    }
}

/// Checks an agent name (rule M2: 1-64 bytes of `a-z`, `0-9`, `-`, not starting or ending
/// with `-`), with an error that quotes it and states the rule.
pub fn check_agent_name(name: &str) -> Result<(), String> {
    if souk_protocol::manifest::is_valid_name(name, 64) {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not a valid agent name: 1-64 characters of a-z, 0-9 and '-', not starting or ending with '-' (`souk agent list` shows this node's agents)"
        ))
    }
}

/// Whether `path` is a regular file someone may execute.
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Checks that `program` (`run.command[0]`) can be run the way the node runs it: a relative
/// path containing `/` is taken from `package_dir`, an absolute path as it is, and a bare
/// name is looked up on `PATH` (this process's, and the runtime's default).
pub fn check_program(program: &str, package_dir: &Path) -> Result<(), String> {
    let path = Path::new(program);
    if program.contains('/') {
        let full = if path.is_relative() {
            package_dir.join(path)
        } else {
            path.to_path_buf()
        };
        return if is_executable(&full) {
            Ok(())
        } else if full.exists() {
            Err(format!(
                "{} is not an executable file (chmod +x it?)",
                full.display()
            ))
        } else {
            Err(format!(
                "the program {} does not exist (relative paths start at run.workdir, {}; build or install it first)",
                full.display(),
                package_dir.display()
            ))
        };
    }
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.extend(std::env::split_paths(souk_runtime::DEFAULT_PATH));
    if dirs.iter().any(|d| is_executable(&d.join(program))) {
        Ok(())
    } else {
        Err(format!(
            "the program {program:?} is not on PATH (install it, or give its path relative to run.workdir, e.g. \"./{program}\")"
        ))
    }
}

impl AgentSpec {
    /// Checks the manifest's size limits (rule M1) that an agent file's author controls, with
    /// an error naming the field, its size and the limit.
    pub fn check_sizes(&self) -> Result<(), String> {
        use souk_protocol::manifest::{MAX_DESCRIPTION, MAX_SCHEMA, MAX_TOOL_DESCRIPTION};
        let over = |what: &str, len: usize, limit: usize| {
            Err(format!(
                "{what} is {len} bytes; a manifest allows at most {limit}"
            ))
        };
        if self.description.len() > MAX_DESCRIPTION {
            return over("description", self.description.len(), MAX_DESCRIPTION);
        }
        if self.input_schema.len() > MAX_SCHEMA {
            return over(
                "input_schema (compact JSON)",
                self.input_schema.len(),
                MAX_SCHEMA,
            );
        }
        if self.output_schema.len() > MAX_SCHEMA {
            return over(
                "output_schema (compact JSON)",
                self.output_schema.len(),
                MAX_SCHEMA,
            );
        }
        for (name, description) in &self.tools {
            if description.len() > MAX_TOOL_DESCRIPTION {
                return over(
                    &format!("the description of tool {name:?}"),
                    description.len(),
                    MAX_TOOL_DESCRIPTION,
                );
            }
        }
        Ok(())
    }

    /// Reads `agent.toml` and everything it references.
    pub fn load(path: &Path) -> Result<AgentSpec, AgentFileError> {
        let p = path.display().to_string();
        let text = read_bounded(path, MAX_AGENT_FILE_BYTES, "agent file")?;
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
        // The name first: a file that cannot name an agent says so before anything is read.
        check_agent_name(&f.name).map_err(&bad)?;
        let schema = |s: &SchemaSource, which: &'static str| -> Result<String, AgentFileError> {
            let json = match s {
                SchemaSource::File(rel) => {
                    read_bounded(&base.join(rel), MAX_SCHEMA_FILE_BYTES, which)?
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
        let mut hosts: Vec<String> = f.hosts.iter().map(|h| host_key(h)).collect();
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
            let mut hosts: Vec<String> = c.hosts.iter().map(|h| host_key(h)).collect();
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
        let package = f.run.package.as_deref().map(|p| base.join(p));
        let mut include = Vec::with_capacity(f.run.include.len());
        for dir in &f.run.include {
            // Canonical: the sandbox binds it at this very path, where `..` and symlinks
            // would not lead.
            let abs = base.join(dir).canonicalize().map_err(|e| {
                bad(format!(
                    "run.include {dir:?}: cannot read {}: {e}",
                    base.join(dir).display()
                ))
            })?;
            if !abs.is_dir() {
                return Err(bad(format!("run.include {dir:?} is not a directory")));
            }
            include.push(abs);
        }
        let digest = runtime_digest(package.as_deref().unwrap_or(&workdir), &include)?;
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
                package,
                include,
                warm: f.run.warm,
                prepared: f.run.prepared.unwrap_or(crate::hire::PREPARED_SANDBOXES),
            },
        };
        if spec.run.warm > crate::hire::MAX_WARM {
            return Err(bad(format!(
                "run.warm is {}: at most {} warm processes per agent",
                spec.run.warm,
                crate::hire::MAX_WARM
            )));
        }
        if spec.run.prepared > crate::hire::MAX_PREPARED {
            return Err(bad(format!(
                "run.prepared is {}: at most {} prepared sandboxes per agent",
                spec.run.prepared,
                crate::hire::MAX_PREPARED
            )));
        }
        // Check every manifest rule now, so a bad file fails here, not at the node.
        spec.check_sizes().map_err(bad)?;
        check_program(&spec.run.command[0], spec.run.package_dir()).map_err(|message| {
            AgentFileError::Program {
                path: path.into(),
                message,
            }
        })?;
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
    fn agent_names() {
        assert!(check_agent_name("csv-analyst").is_ok());
        for bad in ["../../identity.key", "", "-a", "A", "a/b", &"a".repeat(65)] {
            let e = check_agent_name(bad).err().unwrap_or_default();
            assert!(e.contains("not a valid agent name"), "{bad}: {e}");
        }
    }

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

    /// `run.prepared` defaults to the node's two, may be 0, and is refused above 8 (as
    /// `run.warm` is), naming the key.
    #[test]
    fn prepared_sandboxes_default_to_two_and_are_bounded() {
        let example =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/csv-analyst/agent.toml");
        let text = std::fs::read_to_string(&example).unwrap_or_else(|e| panic!("{e}"));
        let base = example.parent().unwrap_or(Path::new("."));
        assert!(text.contains("[run]\n"), "the example has a [run] section");
        let with = |extra: &str| {
            let t = text.replacen("[run]\n", &format!("[run]\n{extra}"), 1);
            AgentSpec::parse(&t, base, "agent.toml")
        };
        let spec = with("").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(spec.run.prepared, crate::hire::PREPARED_SANDBOXES);
        assert_eq!(spec.run.prepared, 2);
        let spec = with("prepared = 0\n").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(spec.run.prepared, 0);
        let spec = with("prepared = 8\nwarm = 1\n").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((spec.run.prepared, spec.run.warm), (8, 1));
        let err = with("prepared = 9\n")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("run.prepared is 9: at most 8"), "{err}");
    }

    #[test]
    fn hosts_are_written_in_the_spelling_calls_are_compared_in() {
        assert_eq!(host_key("API.Example.com:443"), "api.example.com");
        assert_eq!(host_key("b.test:8443"), "b.test:8443");
        assert_eq!(host_key("c.test"), "c.test");
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

    /// An agent file in a fresh directory: `input_schema` and `command` as given, the
    /// description `description_len` bytes long.
    fn agent_dir(input_schema: &str, command: &str, description_len: usize) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let text = format!(
            r#"
name = "a"
description = "{}"
capabilities = ["csv"]
input_schema = {input_schema}
output_schema = {{ type = "object" }}
[pricing]
currency = "USD"
per_hire = "1"
[limits]
max_duration_secs = 60
max_concurrency = 1
max_input_bytes = 10
[run]
command = [{command}]
"#,
            "d".repeat(description_len)
        );
        std::fs::write(dir.path().join("agent.toml"), text).unwrap_or_else(|e| panic!("{e}"));
        dir
    }

    fn load_err(dir: &tempfile::TempDir) -> AgentFileError {
        match AgentSpec::load(&dir.path().join("agent.toml")) {
            Ok(_) => panic!("expected an error"),
            Err(e) => e,
        }
    }

    #[test]
    fn schema_files_are_read_within_their_limit() {
        let dir = agent_dir(r#""/dev/zero""#, r#""sh""#, 10);
        let err = load_err(&dir);
        assert!(matches!(err, AgentFileError::NotRegular { .. }), "{err:?}");
        let text = err.to_string();
        assert!(
            text.contains("/dev/zero") && text.contains("1048576"),
            "{text}"
        );
        let big = dir.path().join("big.json");
        std::fs::write(&big, vec![b' '; MAX_SCHEMA_FILE_BYTES as usize + 1])
            .unwrap_or_else(|e| panic!("{e}"));
        let dir2 = agent_dir(&format!("{:?}", big.display().to_string()), r#""sh""#, 10);
        let err = load_err(&dir2);
        assert!(matches!(err, AgentFileError::TooLarge { .. }), "{err:?}");
        assert!(err.to_string().contains("big.json"), "{err}");
        // Within the file limit but over the manifest's once compacted: names that limit.
        let wide = dir.path().join("wide.json");
        std::fs::write(
            &wide,
            format!("{{\"description\": \"{}\"}}", "w".repeat(20_000)),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let dir3 = agent_dir(&format!("{:?}", wide.display().to_string()), r#""sh""#, 10);
        let text = load_err(&dir3).to_string();
        assert!(
            text.contains("input_schema") && text.contains("16384"),
            "{text}"
        );
    }

    #[test]
    fn an_oversized_description_names_the_limit_and_the_file() {
        let dir = agent_dir("{ type = \"object\" }", r#""sh""#, 5000);
        let text = load_err(&dir).to_string();
        assert!(text.contains("agent.toml"), "{text}");
        assert!(
            text.contains("description is 5000 bytes") && text.contains("4096"),
            "{text}"
        );
    }

    #[test]
    fn run_command_must_name_a_program_that_exists() {
        let schema = "{ type = \"object\" }";
        let err = load_err(&agent_dir(schema, r#""no-such-program-souk-test""#, 10));
        assert!(matches!(err, AgentFileError::Program { .. }), "{err:?}");
        assert!(err.to_string().contains("not on PATH"), "{err}");
        let err = load_err(&agent_dir(schema, r#""./missing.sh""#, 10));
        assert!(err.to_string().contains("does not exist"), "{err}");
        let dir = agent_dir(schema, r#""./agent.sh""#, 10);
        let script = dir.path().join("agent.sh");
        std::fs::write(&script, "#!/bin/sh\n").unwrap_or_else(|e| panic!("{e}"));
        let err = load_err(&dir);
        assert!(err.to_string().contains("not an executable"), "{err}");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))
            .unwrap_or_else(|e| panic!("{e}"));
        AgentSpec::load(&dir.path().join("agent.toml")).unwrap_or_else(|e| panic!("{e}"));
        AgentSpec::load(
            &agent_dir(schema, r#""sh", "-c", "true""#, 10)
                .path()
                .join("agent.toml"),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    }
}
