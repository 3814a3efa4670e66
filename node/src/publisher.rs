//! The provider's side of discovery: the agents this node offers, signing their manifests,
//! re-announcing them before they expire (a heartbeat: agents of a dead node fall out of
//! search on their own), and retiring them.
//!
//! Every (re)announcement is a new manifest with `seq` one higher than any this node has
//! signed for that agent. Retiring announces a final manifest valid for only
//! [`RETIRE_TTL_MS`], which replaces the live one everywhere and then expires.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Deserialize, Serialize};
use souk_protocol::Hash;
use souk_protocol::identity::Keypair;
use souk_protocol::manifest::Manifest;
use souk_protocol::signed::Signed;

use crate::agent_file::AgentSpec;

/// Validity of the retiring announcement.
pub const RETIRE_TTL_MS: u64 = 30_000;

/// What the node remembers about one of its agents (stored as JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentRecord {
    /// The agent as published.
    pub spec: AgentSpec,
    /// Highest seq signed so far.
    pub seq: u64,
    /// Id of the current manifest.
    pub manifest_id: String,
    /// When the current manifest was issued (ms).
    pub issued_at: u64,
    /// When it expires (ms).
    pub expires_at: u64,
    /// Ids this agent had before it last changed, oldest first (at most
    /// [`MAX_PREVIOUS_IDS`]): a client hiring one of them is declined `superseded` with the
    /// current id rather than `unknown-manifest`.
    #[serde(default)]
    pub previous_ids: Vec<String>,
}

/// Former manifest ids remembered per agent.
pub const MAX_PREVIOUS_IDS: usize = 16;

/// A publishing failure.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The spec does not make a valid manifest.
    #[error("agent {name}: {reason}")]
    Invalid {
        /// Agent name.
        name: String,
        /// Why.
        reason: String,
    },
    /// No such agent.
    #[error("no agent named {0:?} is published by this node")]
    Unknown(String),
}

/// The agents of this node.
#[derive(Debug)]
pub struct Publisher {
    agents: BTreeMap<String, AgentRecord>,
    /// Highest seq ever signed per agent name (committed or not, retired or not).
    highest: HashMap<String, u64>,
    /// Announcements signed but not yet durably recorded.
    in_flight: HashSet<String>,
    /// Agents retired, with the seq of their retiring manifest.
    retired: HashMap<String, u64>,
    ttl_ms: u64,
    sealing_key: [u8; 32],
    confinement: Confinement,
}

/// What this node enforces on every hire of its agents, stated in each manifest's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Confinement {
    /// The node's ceilings (a manifest may ask for less, never more).
    pub ceilings: souk_runtime::ResourceLimits,
    /// Whether agents run in the sandbox.
    pub isolation: souk_protocol::manifest::Isolation,
}

impl Default for Confinement {
    fn default() -> Self {
        Confinement {
            ceilings: crate::hire::settings::default_ceilings(),
            isolation: souk_protocol::manifest::Isolation::None,
        }
    }
}

impl Confinement {
    /// The limit the node enforces for a manifest asking for `asked` (`None`: the ceiling),
    /// with `ceiling` (`None`: no limit); 0 in a manifest means no limit. Asking for more than
    /// the ceiling is an error naming both.
    fn effective(what: &str, asked: Option<u64>, ceiling: Option<u64>) -> Result<u64, String> {
        match (asked.filter(|a| *a > 0), ceiling) {
            (Some(a), Some(c)) if a > c => Err(format!(
                "{what} {a} is above this node's ceiling of {c} (config [limits])"
            )),
            (Some(a), _) => Ok(a),
            (None, Some(c)) => Ok(c),
            (None, None) => Ok(0),
        }
    }
}

/// The store key under which the highest seq signed for an agent is kept.
pub fn seq_state_key(name: &str) -> String {
    format!("seq/{name}")
}

impl Publisher {
    /// A publisher with records loaded from the store.
    pub fn new(
        records: Vec<AgentRecord>,
        ttl_ms: u64,
        sealing_key: [u8; 32],
        confinement: Confinement,
    ) -> Self {
        let highest = records
            .iter()
            .map(|r| (r.spec.name.clone(), r.seq))
            .collect();
        Self {
            agents: records
                .into_iter()
                .map(|r| (r.spec.name.clone(), r))
                .collect(),
            highest,
            in_flight: HashSet::new(),
            retired: HashMap::new(),
            ttl_ms,
            sealing_key,
            confinement,
        }
    }

    /// The agents, by name.
    pub fn agents(&self) -> impl Iterator<Item = &AgentRecord> {
        self.agents.values()
    }

    /// One agent.
    pub fn get(&self, name: &str) -> Option<&AgentRecord> {
        self.agents.get(name)
    }

    /// Reserves the next seq for `name`: above anything signed before (`floor` is the
    /// highest seq known from elsewhere, e.g. persisted by an earlier run).
    fn reserve(&mut self, name: &str, floor: u64) -> u64 {
        let prev = self.highest.get(name).copied().unwrap_or(0).max(floor);
        let seq = prev + 1;
        self.highest.insert(name.to_owned(), seq);
        seq
    }

    /// The highest seq signed for `name`.
    pub fn highest_seq(&self, name: &str) -> u64 {
        self.highest.get(name).copied().unwrap_or(0)
    }

    fn sign(
        &self,
        spec: &AgentSpec,
        seq: u64,
        key: &Keypair,
        now: u64,
        ttl: u64,
    ) -> Result<Signed<Manifest>, PublishError> {
        let invalid = |reason: String| PublishError::Invalid {
            name: spec.name.clone(),
            reason,
        };
        spec.check_sizes().map_err(invalid)?;
        let mut body = spec
            .to_manifest(key.id(), seq, self.sealing_key, now, now + ttl)
            .map_err(|e| invalid(e.to_string()))?;
        let c = &self.confinement;
        body.limits.memory_bytes =
            Confinement::effective("memory_bytes", spec.memory_bytes, c.ceilings.memory_bytes)
                .map_err(invalid)?;
        body.limits.max_processes = Confinement::effective(
            "max_processes",
            spec.max_processes,
            c.ceilings.max_processes,
        )
        .map_err(invalid)?;
        body.limits.isolation = c.isolation;
        let signed = Signed::sign(body, key);
        // Exactly what every receiver will check, size limits included: never announce a
        // manifest peers would reject (and penalise us for).
        Manifest::verify(&signed.to_bytes(), now).map_err(|e| invalid(e.to_string()))
    }

    /// Signs a manifest for `spec` with the next seq (above `floor`, the highest persisted
    /// seq). Returns the manifest and the record to persist; call [`Publisher::commit`] once
    /// it is durable.
    pub fn publish(
        &mut self,
        spec: AgentSpec,
        key: &Keypair,
        now: u64,
        floor: u64,
    ) -> Result<(Signed<Manifest>, AgentRecord), PublishError> {
        let seq = self.reserve(&spec.name, floor);
        let signed = self.sign(&spec, seq, key, now, self.ttl_ms)?;
        self.in_flight.insert(spec.name.clone());
        self.retired.remove(&spec.name);
        let manifest_id = signed.id().to_hex();
        let mut previous_ids = Vec::new();
        if let Some(before) = self.agents.get(&spec.name) {
            previous_ids.clone_from(&before.previous_ids);
            if before.manifest_id != manifest_id {
                previous_ids.retain(|id| *id != before.manifest_id && *id != manifest_id);
                previous_ids.push(before.manifest_id.clone());
            }
            let excess = previous_ids.len().saturating_sub(MAX_PREVIOUS_IDS);
            previous_ids.drain(..excess);
        }
        let record = AgentRecord {
            spec,
            seq,
            manifest_id,
            issued_at: now,
            expires_at: signed.body().expires_at,
            previous_ids,
        };
        Ok((signed, record))
    }

    /// Records a published agent once durable. Returns false (and keeps nothing) when the
    /// agent was retired after this announcement was signed.
    pub fn commit(&mut self, record: AgentRecord) -> bool {
        let name = record.spec.name.clone();
        if self.retired.get(&name).is_some_and(|r| *r > record.seq) {
            return false;
        }
        self.in_flight.remove(&name);
        let newer = self.agents.get(&name).is_some_and(|r| r.seq > record.seq);
        if !newer {
            self.agents.insert(name, record);
        }
        true
    }

    /// Agents whose manifest has used half its validity and has no announcement in flight.
    pub fn due(&self, now: u64) -> Vec<String> {
        self.agents
            .values()
            .filter(|r| !self.in_flight.contains(&r.spec.name))
            .filter(|r| now >= r.issued_at + (r.expires_at.saturating_sub(r.issued_at)) / 2)
            .map(|r| r.spec.name.clone())
            .collect()
    }

    /// The heartbeat: a fresh manifest for an agent already published.
    pub fn reannounce(
        &mut self,
        name: &str,
        key: &Keypair,
        now: u64,
    ) -> Result<(Signed<Manifest>, AgentRecord), PublishError> {
        let spec = self
            .agents
            .get(name)
            .ok_or_else(|| PublishError::Unknown(name.into()))?
            .spec
            .clone();
        self.publish(spec, key, now, 0)
    }

    /// Retires `name`: forgets it and returns the short-lived retiring manifest.
    pub fn retire(
        &mut self,
        name: &str,
        key: &Keypair,
        now: u64,
    ) -> Result<Signed<Manifest>, PublishError> {
        let spec = self
            .agents
            .get(name)
            .ok_or_else(|| PublishError::Unknown(name.into()))?
            .spec
            .clone();
        let seq = self.reserve(name, 0);
        let signed = self.sign(&spec, seq, key, now, RETIRE_TTL_MS)?;
        self.agents.remove(name);
        self.in_flight.remove(name);
        self.retired.insert(name.to_owned(), seq);
        Ok(signed)
    }

    /// The current manifest id of an agent.
    pub fn manifest_id(&self, name: &str) -> Option<Hash> {
        self.agents
            .get(name)
            .and_then(|r| Hash::from_hex(&r.manifest_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str) -> AgentSpec {
        AgentSpec {
            name: name.into(),
            description: "d".into(),
            capabilities: vec!["x".into()],
            input_schema: "{}".into(),
            output_schema: "{}".into(),
            hosts: vec![],
            tools: vec![],
            credentials: vec![],
            currency: "USD".into(),
            per_hire: 1,
            per_hour: 0,
            max_duration_ms: 1000,
            max_concurrency: 1,
            max_input_bytes: 1,
            memory_bytes: None,
            max_processes: None,
            runtime_digest: "00".repeat(32),
            run: crate::agent_file::RunSpec {
                command: vec!["true".into()],
                workdir: "/".into(),
                ..Default::default()
            },
        }
    }

    #[test]
    fn seqs_never_repeat_even_before_commit_or_after_retire() {
        let key = Keypair::from_seed(&[1; 32]);
        let mut p = Publisher::new(vec![], 60_000, [0; 32], Confinement::default());
        let (a, ra) = p
            .publish(spec("a"), &key, 1_000, 0)
            .unwrap_or_else(|e| panic!("{e}"));
        // A second announcement before the first is committed gets a higher seq.
        let (b, rb) = p
            .publish(spec("a"), &key, 1_001, 0)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(b.body().seq > a.body().seq);
        assert!(
            p.due(1_000_000).is_empty(),
            "nothing is due while an announcement is in flight"
        );
        assert!(p.commit(rb));
        assert!(p.commit(ra.clone()));
        assert_eq!(
            p.get("a").map(|r| r.seq),
            Some(2),
            "an older commit never replaces a newer one"
        );
        let r = p.retire("a", &key, 2_000).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.body().seq, 3);
        assert!(!p.commit(ra), "a late commit of a retired agent is dropped");
        assert!(p.get("a").is_none());
        let (c, _) = p
            .publish(spec("a"), &key, 3_000, 0)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            c.body().seq,
            4,
            "republishing after retirement continues upward"
        );
        let (d, _) = p
            .publish(spec("b"), &key, 3_000, 41)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(d.body().seq, 42, "a persisted floor is honoured");
    }

    #[test]
    fn oversized_manifests_are_refused_before_signing_them_out() {
        let key = Keypair::from_seed(&[1; 32]);
        let mut p = Publisher::new(vec![], 60_000, [0; 32], Confinement::default());
        let mut s = spec("big");
        s.description = "x".repeat(5000);
        assert!(matches!(
            p.publish(s, &key, 1_000, 0),
            Err(PublishError::Invalid { .. })
        ));
    }

    #[test]
    fn manifests_state_the_limits_the_node_enforces() {
        let key = Keypair::from_seed(&[5; 32]);
        let confinement = Confinement {
            ceilings: souk_runtime::ResourceLimits {
                memory_bytes: Some(1 << 30),
                max_processes: Some(64),
                ..souk_runtime::ResourceLimits::NONE
            },
            isolation: souk_protocol::manifest::Isolation::Sandbox,
        };
        let mut p = Publisher::new(vec![], 60_000, [0; 32], confinement);
        let (m, _) = p
            .publish(spec("plain"), &key, 1_000, 0)
            .unwrap_or_else(|e| panic!("{e}"));
        let l = &m.body().limits;
        assert_eq!((l.memory_bytes, l.max_processes), (1 << 30, 64));
        assert_eq!(l.isolation, souk_protocol::manifest::Isolation::Sandbox);
        let mut small = spec("small");
        small.memory_bytes = Some(256 << 20);
        let (m, _) = p
            .publish(small, &key, 1_000, 0)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(m.body().limits.memory_bytes, 256 << 20);
        let mut greedy = spec("greedy");
        greedy.max_processes = Some(1_000);
        let err = p
            .publish(greedy, &key, 1_000, 0)
            .err()
            .map(|e| e.to_string());
        assert!(
            err.as_deref()
                .is_some_and(|e| e.contains("max_processes 1000") && e.contains("ceiling of 64")),
            "{err:?}"
        );
    }
}
