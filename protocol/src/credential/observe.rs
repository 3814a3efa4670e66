//! Rule R10: what a `network-call` receipt entry may say about credential use, checked against
//! the manifest and the contract, including the client-signed relay record it may carry; and a
//! summary of the observed calls of a verified chain.
//!
//! [`crate::verify::ChainVerifier`] calls [`NetworkRules::check`] for every `network-call`
//! entry after rules R2–R9. Pure: no I/O, no secret. Spec: `spec/receipts.md` (R10).

use std::collections::HashSet;

use crate::signature::VerifyingKey;

use crate::credential::relay::SignedRelayRecord;
use crate::hash::Hash;
use crate::manifest::{CredentialSlot, Manifest};
use crate::negotiation::{Contract, HireId};
use crate::receipt::{CallMode, EntryKind, NetworkCall, SignedEntry};
use crate::rules::{Rule, Violation};

/// The facts rule R10 checks a `network-call` entry against: the manifest's hosts and slots
/// and the contract's hire and client.
#[derive(Debug, Clone)]
pub struct NetworkRules {
    hire_id: HireId,
    client_key: VerifyingKey,
    hosts: Vec<String>,
    slots: Vec<CredentialSlot>,
}

impl NetworkRules {
    /// The rules of a contract and the manifest it was verified against.
    pub fn new(contract: &Contract, manifest: &Manifest) -> Self {
        let client = contract.client();
        Self {
            hire_id: contract.hire_id(),
            client_key: VerifyingKey::new(&client),
            hosts: manifest.hosts.clone(),
            slots: manifest.credentials.clone(),
        }
    }

    /// Rule R10 for the `network-call` entry at position `pos`. `seen` holds the ids of the
    /// relay records carried by the earlier entries of the chain.
    pub fn check(
        &self,
        call: &NetworkCall,
        pos: u64,
        seen: &HashSet<Hash>,
    ) -> Result<(), Violation> {
        let bad = |why: String| Violation::at(Rule::R10, pos, why);
        let slot = match (&call.slot, call.mode) {
            (None, CallMode::None) => None,
            (Some(name), CallMode::Sealed | CallMode::Relayed) => Some(
                self.slots
                    .iter()
                    .find(|s| &s.name == name)
                    .ok_or_else(|| bad(format!("slot {name:?} is not declared by the manifest")))?,
            ),
            (None, mode) => return Err(bad(format!("mode {mode} names no slot"))),
            (Some(name), CallMode::None) => {
                return Err(bad(format!("slot {name:?} with mode none")));
            }
        };
        match call.denial {
            Some(code) => {
                if call.status != 0 {
                    return Err(bad(format!(
                        "denied ({code}) but status {} instead of 0",
                        call.status
                    )));
                }
                if call.relay_record.is_some() {
                    return Err(bad("a denied call carries a relay record".into()));
                }
            }
            None => {
                if !(100..=999).contains(&call.status) {
                    return Err(bad(format!(
                        "status {} for a call that was not denied",
                        call.status
                    )));
                }
                let listed = match slot {
                    Some(s) => s.hosts.contains(&call.host),
                    None => {
                        self.hosts.contains(&call.host)
                            || self.slots.iter().any(|s| s.hosts.contains(&call.host))
                    }
                };
                if !listed {
                    return Err(bad(format!(
                        "a call to {:?} went through, but the manifest does not list that host{}",
                        call.host,
                        if slot.is_some() { " for the slot" } else { "" }
                    )));
                }
                if call.mode == CallMode::Relayed && call.relay_record.is_none() {
                    return Err(bad("a relayed call without the client's record".into()));
                }
            }
        }
        let Some(raw) = &call.relay_record else {
            return Ok(());
        };
        if call.mode != CallMode::Relayed {
            return Err(bad(format!("a {} call carries a relay record", call.mode)));
        }
        let record =
            SignedRelayRecord::decode_bytes(raw).map_err(|e| bad(format!("relay record: {e}")))?;
        record
            .verify_with(&self.client_key)
            .map_err(|e| bad(format!("relay record: {e}")))?;
        if let Some(field) = self.record_mismatch(record.body(), call) {
            return Err(bad(format!(
                "the client's relay record differs from the entry in {field}"
            )));
        }
        if seen.contains(&record.id()) {
            return Err(bad(format!(
                "relay record {} is already carried by an earlier entry",
                record.id().short()
            )));
        }
        Ok(())
    }

    fn record_mismatch(
        &self,
        r: &crate::credential::relay::RelayRecord,
        c: &NetworkCall,
    ) -> Option<&'static str> {
        let checks: [(&'static str, bool); 10] = [
            ("hire_id", r.hire_id == self.hire_id),
            ("slot", c.slot.as_deref() == Some(r.slot.as_str())),
            ("method", r.method == c.method),
            ("host", r.host == c.host),
            ("path", r.path == c.path),
            ("status", r.status == c.status),
            ("request_bytes", r.request_bytes == c.request_bytes),
            ("response_bytes", r.response_bytes == c.response_bytes),
            ("request_hash", r.request_hash == c.request_hash),
            ("response_hash", r.response_hash == c.response_hash),
        ];
        checks.iter().find(|(_, ok)| !ok).map(|(f, _)| *f)
    }
}

/// The id of the relay record a `network-call` carries, if it carries one that decodes.
pub fn relay_record_id(call: &NetworkCall) -> Option<Hash> {
    let raw = call.relay_record.as_ref()?;
    SignedRelayRecord::decode_bytes(raw).ok().map(|r| r.id())
}

/// Counts of the observed network calls of a chain (part of a bundle's report).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NetworkSummary {
    /// `network-call` entries.
    pub calls: u64,
    /// Of those, calls the proxy or the client refused (with a denial code).
    pub denied: u64,
    /// Calls that went through with a sealed credential injected by the provider.
    pub sealed: u64,
    /// Calls that went through relayed by the client, each with the client's signed record.
    pub relayed: u64,
}

impl NetworkSummary {
    /// The summary of a chain's entries.
    pub fn of(entries: &[SignedEntry]) -> Self {
        let mut s = Self::default();
        for e in entries {
            if let EntryKind::NetworkCall(c) = &e.body().kind {
                s.calls += 1;
                match (c.denial, c.mode) {
                    (Some(_), _) => s.denied += 1,
                    (None, CallMode::Sealed) => s.sealed += 1,
                    (None, CallMode::Relayed) => s.relayed += 1,
                    (None, CallMode::None) => {}
                }
            }
        }
        s
    }
}
