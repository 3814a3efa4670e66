//! The provider's side of discovery: the agents this node offers, signing their manifests,
//! re-announcing them before they expire (a heartbeat: agents of a dead node fall out of
//! search on their own), and retiring them.
//!
//! Every (re)announcement is a new manifest with `seq` one higher than any this node has
//! signed for that agent. Retiring announces a final manifest valid for only
//! [`RETIRE_TTL_MS`], which replaces the live one everywhere and then expires.

use std::collections::BTreeMap;

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
}

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
    ttl_ms: u64,
    sealing_key: [u8; 32],
}

impl Publisher {
    /// A publisher with records loaded from the store.
    pub fn new(records: Vec<AgentRecord>, ttl_ms: u64, sealing_key: [u8; 32]) -> Self {
        Self {
            agents: records
                .into_iter()
                .map(|r| (r.spec.name.clone(), r))
                .collect(),
            ttl_ms,
            sealing_key,
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
        let body = spec
            .to_manifest(key.id(), seq, self.sealing_key, now, now + ttl)
            .map_err(invalid)?;
        let signed = Signed::sign(body, key);
        signed
            .body()
            .validate(&signed.id())
            .map_err(|e| invalid(e.to_string()))?;
        Ok(signed)
    }

    /// Signs a manifest for `spec` with the next seq; `min_seq` is the highest seq the network
    /// is known to hold for it (so a fresh data dir never goes backwards). Returns the
    /// manifest and the record to persist; call [`Publisher::commit`] once it is durable.
    pub fn publish(
        &self,
        spec: AgentSpec,
        key: &Keypair,
        now: u64,
        min_seq: u64,
    ) -> Result<(Signed<Manifest>, AgentRecord), PublishError> {
        let prev = self.agents.get(&spec.name).map_or(0, |r| r.seq);
        let seq = prev.max(min_seq) + 1;
        let signed = self.sign(&spec, seq, key, now, self.ttl_ms)?;
        let record = AgentRecord {
            spec,
            seq,
            manifest_id: signed.id().to_hex(),
            issued_at: now,
            expires_at: signed.body().expires_at,
        };
        Ok((signed, record))
    }

    /// Records a published agent.
    pub fn commit(&mut self, record: AgentRecord) {
        self.agents.insert(record.spec.name.clone(), record);
    }

    /// Agents whose manifest has used half its validity: re-announce them.
    pub fn due(&self, now: u64) -> Vec<String> {
        self.agents
            .values()
            .filter(|r| now >= r.issued_at + (r.expires_at.saturating_sub(r.issued_at)) / 2)
            .map(|r| r.spec.name.clone())
            .collect()
    }

    /// The heartbeat: a fresh manifest for an agent already published.
    pub fn reannounce(
        &self,
        name: &str,
        key: &Keypair,
        now: u64,
    ) -> Result<(Signed<Manifest>, AgentRecord), PublishError> {
        let rec = self
            .agents
            .get(name)
            .ok_or_else(|| PublishError::Unknown(name.into()))?;
        self.publish(rec.spec.clone(), key, now, 0)
    }

    /// The retiring announcement for `name`; the caller removes the record once durable.
    pub fn retire(
        &self,
        name: &str,
        key: &Keypair,
        now: u64,
    ) -> Result<Signed<Manifest>, PublishError> {
        let rec = self
            .agents
            .get(name)
            .ok_or_else(|| PublishError::Unknown(name.into()))?;
        self.sign(&rec.spec, rec.seq + 1, key, now, RETIRE_TTL_MS)
    }

    /// Forgets an agent.
    pub fn remove(&mut self, name: &str) -> Option<AgentRecord> {
        self.agents.remove(name)
    }

    /// The current manifest id of an agent.
    pub fn manifest_id(&self, name: &str) -> Option<Hash> {
        self.agents
            .get(name)
            .and_then(|r| Hash::from_hex(&r.manifest_id))
    }
}
