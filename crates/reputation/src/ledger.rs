//! The in-memory ledger of verified outcome facts, indexed for reputation lookups.
//!
//! This module owns [`Ledger`]: facts keyed by hire id, a timeline (ordered by settled time,
//! then hire id) per handle and per provider, the set of providers each client has settled
//! hires with, and the flagged providers. A lookup reads only the records of the handle or
//! provider asked about. It never verifies records and never does I/O.

use std::collections::hash_map::Entry;
use std::collections::{BTreeSet, HashMap, HashSet};

use crate::error::InsertError;
use crate::facts::OutcomeFacts;
use crate::figures::{Figures, compute};
use crate::policy::Policy;

type Key = [u8; 32];
/// `(settled_at_ms, hire_id)` of each record, ascending.
type Timeline = BTreeSet<(u64, Key)>;

/// What [`Ledger::insert`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inserted {
    /// A fact for a new hire id was added.
    Added,
    /// The new fact took precedence over the one held for its hire id, which is returned.
    Replaced(OutcomeFacts),
    /// Nothing changed: the same fact is held, or the held fact takes precedence.
    Unchanged,
}

impl Inserted {
    /// Whether the ledger changed.
    pub fn changed(&self) -> bool {
        !matches!(self, Inserted::Unchanged)
    }
}

#[derive(Debug, Default)]
struct ProviderIndex {
    all: Timeline,
    agents: HashMap<String, Timeline>,
}

/// Verified outcome facts and the indexes that answer reputation lookups.
///
/// At most one fact per hire id. When two verified records exist for one hire (a client that
/// signed two attestations, say), the one with the higher precedence is kept whatever the
/// order of insertion: a dispute beats an acceptance, a non-completed end beats a completed
/// one (spec/reputation.md, "Two records for one hire"). So a client's dispute can never be
/// displaced by another record.
#[derive(Debug, Default)]
pub struct Ledger {
    facts: HashMap<Key, OutcomeFacts>,
    providers: HashMap<Key, ProviderIndex>,
    /// Per client: providers it has non-self-hire records with, and how many records each.
    client_providers: HashMap<Key, HashMap<Key, u64>>,
    flagged: HashSet<Key>,
}

impl Ledger {
    /// An empty ledger.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of facts held (one per hire id).
    pub fn len(&self) -> usize {
        self.facts.len()
    }

    /// Whether no fact is held.
    pub fn is_empty(&self) -> bool {
        self.facts.is_empty()
    }

    /// The fact held for a hire id.
    pub fn get(&self, hire_id: &[u8; 32]) -> Option<&OutcomeFacts> {
        self.facts.get(hire_id)
    }

    /// Adds the facts of a **verified** outcome record.
    ///
    /// Idempotent. If a fact is held for the same hire id, the one with the higher precedence
    /// is kept ([`Inserted::Replaced`] or [`Inserted::Unchanged`]).
    ///
    /// # Errors
    ///
    /// [`InsertError::ContractMismatch`] if the held fact names another provider, agent or
    /// client; the ledger is unchanged.
    pub fn insert(&mut self, facts: OutcomeFacts) -> Result<Inserted, InsertError> {
        match self.facts.entry(facts.hire_id) {
            Entry::Vacant(e) => {
                let held = e.insert(facts);
                Self::index(&mut self.providers, &mut self.client_providers, held);
                Ok(Inserted::Added)
            }
            Entry::Occupied(mut e) => {
                let held = e.get();
                if !held.same_contract(&facts) {
                    return Err(InsertError::ContractMismatch {
                        hire_id: facts.hire_id,
                    });
                }
                if facts.precedence(held).is_le() {
                    return Ok(Inserted::Unchanged);
                }
                let old = e.insert(facts);
                Self::unindex(&mut self.providers, &mut self.client_providers, &old);
                Self::index(&mut self.providers, &mut self.client_providers, e.get());
                Ok(Inserted::Replaced(old))
            }
        }
    }

    /// Removes the fact held for a hire id (for example when its record is deleted).
    pub fn remove(&mut self, hire_id: &[u8; 32]) -> Option<OutcomeFacts> {
        let old = self.facts.remove(hire_id)?;
        Self::unindex(&mut self.providers, &mut self.client_providers, &old);
        Some(old)
    }

    /// Marks a provider as flagged: the caller holds a verified equivocation proof signed by
    /// it (spec/receipts.md). Returns whether it was not flagged before. Permanent: a proof
    /// cannot be retracted. Its records stay; its figures say `flagged`, and it no longer
    /// counts as an "other provider" for `min_other_providers`.
    pub fn flag(&mut self, provider: [u8; 32]) -> bool {
        self.flagged.insert(provider)
    }

    /// Whether a provider is flagged.
    pub fn is_flagged(&self, provider: &[u8; 32]) -> bool {
        self.flagged.contains(provider)
    }

    /// The names of a provider's agents that have records, sorted.
    pub fn agents(&self, provider: &[u8; 32]) -> Vec<&str> {
        let mut names: Vec<&str> = self
            .providers
            .get(provider)
            .map(|p| p.agents.keys().map(String::as_str).collect())
            .unwrap_or_default();
        names.sort_unstable();
        names
    }

    /// Figures of the handle `<provider>/<name>` at `now_ms` under `policy`.
    /// Reads only that handle's records.
    pub fn handle(&self, provider: &[u8; 32], name: &str, now_ms: u64, policy: &Policy) -> Figures {
        let timeline = self
            .providers
            .get(provider)
            .and_then(|p| p.agents.get(name));
        self.figures(provider, timeline, now_ms, policy)
    }

    /// Figures of a provider over all its agents at `now_ms` under `policy`: one vote per
    /// client across all its agents (the client's latest record with any of them decides it).
    /// Reads only that provider's records.
    pub fn provider(&self, provider: &[u8; 32], now_ms: u64, policy: &Policy) -> Figures {
        let timeline = self.providers.get(provider).map(|p| &p.all);
        self.figures(provider, timeline, now_ms, policy)
    }

    /// The `n` latest facts of the handle `<provider>/<name>`, latest first: ordered by
    /// `(settled_at_ms, hire_id)` descending. Self-hires are included (they are records; the
    /// caller can tell them by `client == provider`).
    pub fn last(&self, provider: &[u8; 32], name: &str, n: usize) -> Vec<&OutcomeFacts> {
        self.providers
            .get(provider)
            .and_then(|p| p.agents.get(name))
            .into_iter()
            .flat_map(|t| t.iter().rev())
            .take(n)
            .filter_map(|(_, id)| self.facts.get(id))
            .collect()
    }

    /// How many distinct providers `client` has non-self-hire records with, other than
    /// `rated` and not flagged, counted up to `at_least`; whether that reaches `at_least`.
    fn other_providers_at_least(&self, client: &Key, rated: &Key, at_least: u32) -> bool {
        if at_least == 0 {
            return true;
        }
        let Some(providers) = self.client_providers.get(client) else {
            return false;
        };
        let mut found = 0u32;
        for p in providers.keys() {
            if p != rated && !self.flagged.contains(p) {
                found += 1;
                if found >= at_least {
                    return true;
                }
            }
        }
        false
    }

    fn figures(
        &self,
        provider: &Key,
        timeline: Option<&Timeline>,
        now_ms: u64,
        policy: &Policy,
    ) -> Figures {
        let records = timeline
            .into_iter()
            .flatten()
            .filter_map(|(_, id)| self.facts.get(id));
        compute(
            records,
            now_ms,
            self.is_flagged(provider),
            policy,
            |client| self.other_providers_at_least(client, provider, policy.min_other_providers),
        )
    }

    fn index(
        providers: &mut HashMap<Key, ProviderIndex>,
        client_providers: &mut HashMap<Key, HashMap<Key, u64>>,
        f: &OutcomeFacts,
    ) {
        let key = (f.settled_at_ms, f.hire_id);
        let p = providers.entry(f.provider).or_default();
        p.all.insert(key);
        p.agents.entry(f.agent.clone()).or_default().insert(key);
        if !f.is_self_hire() {
            *client_providers
                .entry(f.client)
                .or_default()
                .entry(f.provider)
                .or_default() += 1;
        }
    }

    fn unindex(
        providers: &mut HashMap<Key, ProviderIndex>,
        client_providers: &mut HashMap<Key, HashMap<Key, u64>>,
        f: &OutcomeFacts,
    ) {
        let key = (f.settled_at_ms, f.hire_id);
        if let Some(p) = providers.get_mut(&f.provider) {
            p.all.remove(&key);
            if let Some(t) = p.agents.get_mut(&f.agent) {
                t.remove(&key);
                if t.is_empty() {
                    p.agents.remove(&f.agent);
                }
            }
            if p.all.is_empty() {
                providers.remove(&f.provider);
            }
        }
        if !f.is_self_hire()
            && let Some(per) = client_providers.get_mut(&f.client)
        {
            if let Some(n) = per.get_mut(&f.provider) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    per.remove(&f.provider);
                }
            }
            if per.is_empty() {
                client_providers.remove(&f.client);
            }
        }
    }
}
