//! [`OfferBook`]: this node's own manifests that clients may hire, by id, and the ids its
//! agents had before they changed. Decides what a hire request's `manifest-id` means on the
//! provider: a current offer, an agent that changed since (declined `superseded`, with the
//! current id), or nothing this node offers.
//!
//! Manifest ids do not depend on liveness (spec/manifest.md): a re-announcement of an
//! unchanged agent keeps its id, so a client's saved id stays good until the provider changes
//! the agent. Written by the swarm loop, read by hire tasks; every lock is held for a map
//! operation only.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use souk_protocol::Hash;
use souk_protocol::manifest::Manifest;
use souk_protocol::signed::Signed;

use crate::agent_file::RunSpec;

/// Most former ids remembered across all agents (each agent's own history is bounded by its
/// record; this bounds what a node with many agents keeps in memory).
const MAX_FORMER: usize = 4096;

/// One of this node's own manifests that clients may hire, with how to run it.
#[derive(Debug, Clone)]
pub struct Offerable {
    /// The signed manifest.
    pub manifest: Signed<Manifest>,
    /// How to run the agent.
    pub run: RunSpec,
}

/// What a requested manifest id is on this node.
#[derive(Debug, Clone)]
pub enum OfferLookup {
    /// A manifest this node offers (unexpired when inserted; callers check expiry).
    Current(Box<Offerable>),
    /// An id one of this node's agents had before it changed; the agent's current id.
    Superseded(Hash),
    /// Not one of this node's agents.
    Unknown,
}

/// Own manifests by id, with former ids per agent.
#[derive(Debug, Default)]
pub struct OfferBook {
    by_id: HashMap<Hash, Offerable>,
    /// Agent name -> id of its current manifest.
    current: HashMap<String, Hash>,
    /// Former id -> agent name.
    former: HashMap<Hash, String>,
}

/// The node's offer book, shared between the swarm loop and hire tasks.
pub type Offers = Arc<Mutex<OfferBook>>;

impl OfferBook {
    /// An empty book.
    pub fn new() -> Self {
        Self::default()
    }

    /// The current offer of every agent.
    pub fn current(&self) -> Vec<Offerable> {
        self.current
            .values()
            .filter_map(|id| self.by_id.get(id).cloned())
            .collect()
    }

    /// Offers `offer` as its agent's current manifest. Any other id of the same agent, and
    /// every id in `previous` (the agent's persisted history), becomes a former id.
    pub fn insert(&mut self, offer: Offerable, previous: &[Hash]) {
        let id = offer.manifest.id();
        let name = offer.manifest.body().name.clone();
        let stale: Vec<Hash> = self
            .by_id
            .iter()
            .filter(|(k, o)| **k != id && o.manifest.body().name == name)
            .map(|(k, _)| *k)
            .collect();
        for old in stale.iter().chain(previous) {
            self.by_id.remove(old);
            if *old != id && (self.former.len() < MAX_FORMER || self.former.contains_key(old)) {
                self.former.insert(*old, name.clone());
            }
        }
        self.former.remove(&id);
        self.current.insert(name, id);
        self.by_id.insert(id, offer);
    }

    /// Stops offering agent `name`: its current manifest and its former ids no longer name
    /// anything here (a request for them is `unknown-manifest`).
    pub fn retire(&mut self, name: &str) {
        self.by_id.retain(|_, o| o.manifest.body().name != name);
        self.current.remove(name);
        self.former.retain(|_, n| n != name);
    }

    /// The offer of manifest `id`, if current.
    pub fn get(&self, id: &Hash) -> Option<&Offerable> {
        self.by_id.get(id)
    }

    /// What `id` is on this node.
    pub fn lookup(&self, id: &Hash) -> OfferLookup {
        if let Some(o) = self.by_id.get(id) {
            return OfferLookup::Current(Box::new(o.clone()));
        }
        match self.former.get(id).and_then(|name| self.current.get(name)) {
            Some(now) if self.by_id.contains_key(now) => OfferLookup::Superseded(*now),
            _ => OfferLookup::Unknown,
        }
    }

    /// Drops offers expired at `now_ms` (an agent whose manifest expired is no longer
    /// offered; its former ids then lead nowhere).
    pub fn retain_live(&mut self, now_ms: u64) {
        self.by_id
            .retain(|_, o| o.manifest.body().expires_at > now_ms);
        let by_id = &self.by_id;
        self.current.retain(|_, id| by_id.contains_key(id));
    }

    /// Number of current offers.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether nothing is offered.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}

/// Runs `f` on the book (a panic elsewhere while holding the lock left the book as it was:
/// keep using it).
pub(crate) fn with_book<T>(offers: &Offers, f: impl FnOnce(&mut OfferBook) -> T) -> T {
    match offers.lock() {
        Ok(mut book) => f(&mut book),
        Err(poisoned) => f(&mut poisoned.into_inner()),
    }
}

/// The current offer of manifest `id`, if this node offers it.
pub(crate) fn offer(offers: &Offers, id: &Hash) -> Option<Offerable> {
    with_book(offers, |b| b.get(id).cloned())
}

/// What manifest `id` is on this node.
pub(crate) fn lookup(offers: &Offers, id: &Hash) -> OfferLookup {
    with_book(offers, |b| b.lookup(id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use souk_protocol::vectors::{manifest_body, provider_key};

    fn offer(seq: u64, description: &str) -> Offerable {
        let mut body = manifest_body(&provider_key());
        body.seq = seq;
        body.description = description.into();
        Offerable {
            manifest: Signed::sign(body, &provider_key()),
            run: RunSpec {
                command: vec!["true".into()],
                workdir: "/".into(),
                ..Default::default()
            },
        }
    }

    #[test]
    fn a_changed_agent_supersedes_its_former_id_and_expiry_ends_the_offer() {
        let mut book = OfferBook::new();
        let v1 = offer(1, "first");
        let v1_id = v1.manifest.id();
        book.insert(v1, &[]);
        assert!(matches!(book.lookup(&v1_id), OfferLookup::Current(_)));

        let v2 = offer(2, "second");
        let v2_id = v2.manifest.id();
        assert_ne!(v1_id, v2_id, "a changed description changes the id");
        book.insert(v2, &[]);
        match book.lookup(&v1_id) {
            OfferLookup::Superseded(now) => assert_eq!(now, v2_id),
            other => panic!("expected superseded, got {other:?}"),
        }
        assert!(matches!(book.lookup(&v2_id), OfferLookup::Current(_)));
        assert!(matches!(book.lookup(&Hash([9; 32])), OfferLookup::Unknown));

        // Retiring ends the offer and its former ids.
        let mut retired = OfferBook::new();
        retired.insert(offer(3, "third"), &[v1_id]);
        retired.retire("csv-analyst");
        assert!(retired.is_empty());
        assert!(matches!(retired.lookup(&v1_id), OfferLookup::Unknown));

        book.retain_live(u64::MAX);
        assert!(book.is_empty());
        assert!(matches!(book.lookup(&v1_id), OfferLookup::Unknown));
    }

    #[test]
    fn persisted_former_ids_are_superseded_after_a_restart() {
        let mut book = OfferBook::new();
        let old = Hash([7; 32]);
        let v = offer(5, "current");
        let id = v.manifest.id();
        book.insert(v, &[old, id]);
        match book.lookup(&old) {
            OfferLookup::Superseded(now) => assert_eq!(now, id),
            other => panic!("expected superseded, got {other:?}"),
        }
        assert!(matches!(book.lookup(&id), OfferLookup::Current(_)));
    }
}
