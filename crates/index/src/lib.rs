//! Souk's in-memory manifest search index: free text, capability tags, filters and ranking.
//!
//! An [`Index`] holds verified manifests ([`Signed<Manifest>`]), at most one per
//! `(provider, name)`: the one with the highest `seq` ([`Index::insert`] reports what
//! happened as an [`Inserted`]). [`Index::search`] answers a [`Query`] with ranked [`Hit`]s.
//!
//! # Matching
//!
//! Text (agent name and description, and the query text) is tokenized the same way:
//! lowercased and split on every non-alphanumeric character, so the name `csv-analyst`
//! yields `csv` and `analyst`. A query with text returns the manifests that contain at
//! least one query token, or an expansion of one, in their name or description, or whose
//! capability tags include a query term exactly (a term is a token, or a whole
//! whitespace-separated word such as `text-to-speech`).
//!
//! A query token of at least [`MIN_EXPAND_CHARS`] characters expands to the indexed words it
//! is a proper prefix of (`summar` -> `summarizes`), then to those it occurs inside of
//! (`marize` -> `summarizes`): at most [`MAX_EXPANSIONS`] candidates, taken in that order
//! while the token's postings (its own list plus the expansions taken) stay within
//! [`EXPANSION_BUDGET`], so a common word is not expanded and a rare one is, cheaply.
//! Filters always apply, all at once:
//!
//! - `capabilities`: every listed tag present (AND);
//! - `max_price`: `pricing.per_hire <= max_price`;
//! - `currency`: `pricing.currency` equal;
//! - `provider`: that provider only;
//! - `provider_prefix`: providers whose node id in text form starts with it;
//! - `min_success`: agents whose verified success lower bound
//!   ([`AgentReputation::success_lower_bound`]) is at least this (unknown agents: 0);
//! - unless `include_flagged`, never a manifest of a flagged provider ([`Index::set_flagged`]:
//!   one caught equivocating), so flagged providers are hidden by default;
//! - and never a manifest with `expires_at <= now`.
//!
//! # Ranking
//!
//! With query text, `score = (bm25 + tags) * (0.5 + rank) * price_factor` where
//!
//! - `bm25` is Okapi BM25 with `k1 = 1.2`, `b = 0.75` over one combined field, name and
//!   description, in which a name token counts [`NAME_WEIGHT`] (3) times (BM25F-style: the
//!   term frequency and the document length are both weighted), with
//!   `idf = ln(1 + (N - df + 0.5) / (df + 0.5))` over the `N` manifests in the index;
//!   an expansion's term counts [`PREFIX_WEIGHT`] or [`INFIX_WEIGHT`] times its BM25 term,
//!   and per distinct query token only the best of its exact word and expansions counts;
//! - `tags` adds 1 per distinct query term that exactly equals one of the manifest's
//!   capability tags;
//! - `rank` is the agent's smoothed verified success rate from outcome records
//!   (spec/reputation.md), [`AgentReputation::rank`] in `[0, 1]` as set by
//!   [`Index::set_agent_reputation`] for the agent's handle `(provider, name)`; an agent
//!   with no verified outcome ranks as [`DEFAULT_REPUTATION`] (0.5), so the factor
//!   `0.5 + rank` ranges from 0.5 to 1.5 and is 1 for unknown agents;
//! - `price_factor = 1 / (1 + PRICE_WEIGHT * ln(1 + per_hire / 10^6))` with
//!   [`PRICE_WEIGHT`] = 0.1: 1 when free, 0.81 at 10 units (currency-blind).
//!
//! A query without text (or whose text has no token) ranks by reputation and price:
//! `score = (0.5 + rank) * price_factor`. Ties are broken by lower `per_hire` price, then
//! by manifest id ascending, so results are fully deterministic. `N`, `df` and the mean
//! length count every indexed manifest, expired ones included until
//! [`Index::remove_expired`] drops them. The crate's `README.md` writes the formulas out and has benchmark figures.
//!
//! # Cost
//!
//! Documents get compact internal `u32` ids. Each text token maps to a posting list sorted
//! by id with the weighted term frequency, each capability tag to a sorted id list, each
//! provider to its agents. A search first intersects the capability and provider lists
//! into a candidate set, then walks the query tokens' posting lists document-at-a-time
//! (driven by whichever side is smaller, with galloping seeks), checks expiry, price,
//! currency, flag and success bound on a compact per-document record (which also holds the
//! product `(0.5 + rank) * price_factor`, kept up to date by the setters), and keeps the
//! best `limit` in a bounded heap; only those are cloned into [`Hit`]s. Reputations and
//! flags are also kept by handle and provider, so setting one is O(1) (O(agents of the
//! provider) for a flag) and applies to manifests indexed later.

mod postings;
mod text;
mod vocab;

#[cfg(test)]
mod tests;

use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet};
use std::fmt;
use std::ops::Bound;

use souk_protocol::manifest::Manifest;
use souk_protocol::{Hash, NodeId, Signed};

use crate::postings::{DocId, Posting};
use crate::text::QueryTerms;
use crate::vocab::{Match, Vocab};

pub use crate::vocab::{MAX_EXPANSIONS, MAX_INFIX_WORD, MAX_SUFFIX_SCAN, MIN_EXPAND_CHARS};

/// How much a token in the agent name weighs against one in the description.
pub const NAME_WEIGHT: u32 = 3;
/// BM25 term-frequency saturation.
pub const BM25_K1: f64 = 1.2;
/// BM25 length normalization.
pub const BM25_B: f64 = 0.75;
/// Ranking reputation ([`AgentReputation::rank`]) of an agent with no verified outcome.
pub const DEFAULT_REPUTATION: f64 = 0.5;
/// Weight of an indexed word that a query word is a proper prefix of (`summar` ->
/// `summarizes`), against 1 for the exact word.
pub const PREFIX_WEIGHT: f64 = 0.75;
/// Weight of an indexed word that a query word occurs inside of (`marize` ->
/// `summarizes`).
pub const INFIX_WEIGHT: f64 = 0.5;
/// Most postings one query word may bring in with its expansions: its own posting list plus
/// the expansions taken. Expansions are taken in order while they fit, so a common word is
/// not expanded at all and a rare or unknown one is expanded cheaply.
pub const EXPANSION_BUDGET: usize = 4096;
/// How strongly price lowers the score: `price_factor = 1 / (1 + PRICE_WEIGHT * ln(1 +
/// per_hire / 10^6))`.
pub const PRICE_WEIGHT: f64 = 0.1;
/// Micro-units per currency unit (prices are integers in micro-units).
const MICRO: f64 = 1_000_000.0;
/// Results returned when [`Query::limit`] is 0.
pub const DEFAULT_LIMIT: usize = 20;
/// Most results one search returns.
pub const MAX_LIMIT: usize = 1000;

/// What [`Index::insert`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Inserted {
    /// The first manifest for its `(provider, name)`.
    New,
    /// It replaced the manifest with this id, which had a lower `seq`. A re-announcement of
    /// an unchanged agent replaces a manifest with the same id (ids do not depend on `seq` or
    /// liveness: spec/manifest.md).
    Replaced(Hash),
    /// This manifest (same id and `seq`) is already indexed.
    Duplicate,
    /// Ignored: the index holds a manifest for the same `(provider, name)` with an equal or
    /// higher `seq`.
    Stale,
}

/// An agent's reputation from verified outcome records (spec/reputation.md), as the node
/// computes it over the agent's `n` verified outcomes of which `s` succeeded. The index does
/// not compute either value; it ranks and filters on them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AgentReputation {
    /// Laplace-smoothed success rate `(s + 1) / (n + 2)`, in `[0, 1]`: the ranking factor is
    /// `0.5 + rank`. An agent with no record ranks as [`DEFAULT_REPUTATION`].
    pub rank: f64,
    /// Wilson score lower bound of the success rate, in `[0, 1]`: what
    /// [`Query::min_success`] compares with. An agent with no record counts as 0.
    pub success_lower_bound: f64,
}

impl AgentReputation {
    /// Clamped to `[0, 1]`; `None` when a value is NaN.
    fn normalized(self) -> Option<Self> {
        if self.rank.is_nan() || self.success_lower_bound.is_nan() {
            return None;
        }
        Some(Self {
            rank: self.rank.clamp(0.0, 1.0),
            success_lower_bound: self.success_lower_bound.clamp(0.0, 1.0),
        })
    }
}

/// A search request. Every set field narrows the results; see the crate docs for matching
/// and ranking.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Query {
    /// Free text over agent name and description (tokenized: lowercase, split on
    /// non-alphanumeric characters). Query terms equal to a capability tag boost it.
    pub text: Option<String>,
    /// Capability tags that must all be present (AND); compared lowercased.
    pub capabilities: Vec<String>,
    /// Highest `pricing.per_hire`, in micro-units, inclusive.
    pub max_price: Option<u64>,
    /// Only manifests priced in this currency.
    pub currency: Option<String>,
    /// Only this provider's manifests.
    pub provider: Option<NodeId>,
    /// Only manifests of providers whose node id in text form (`souk...`) starts with
    /// this (a full id or a prefix of one; every provider it matches).
    pub provider_prefix: Option<String>,
    /// Only agents whose [`AgentReputation::success_lower_bound`] is at least this; an
    /// agent without reputation counts as 0. NaN is ignored (no filter).
    pub min_success: Option<f64>,
    /// Also return manifests of flagged providers ([`Index::set_flagged`]); by default
    /// they are hidden.
    pub include_flagged: bool,
    /// Most results: 0 means [`DEFAULT_LIMIT`]; capped at [`MAX_LIMIT`].
    pub limit: usize,
}

/// One search result.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    /// The manifest id.
    pub id: Hash,
    /// Its ranking score (higher is better); see the crate docs.
    pub score: f64,
    /// A copy of the manifest.
    pub manifest: Signed<Manifest>,
    /// Whether its provider is flagged ([`Index::set_flagged`]); can be true only when
    /// [`Query::include_flagged`] is set, as flagged providers are hidden otherwise.
    pub flagged: bool,
    /// The agent's reputation as set with [`Index::set_agent_reputation`] (clamped);
    /// `None` when unknown.
    pub reputation: Option<AgentReputation>,
}

/// The compact per-document record the search filters and scores on.
#[derive(Debug, Clone, Copy, Default)]
struct Meta {
    expires_at: u64,
    per_hire: u64,
    /// `(0.5 + rank) * price_factor(per_hire)`: what relevance is multiplied by.
    factor: f64,
    /// The agent's [`AgentReputation::success_lower_bound`], 0 when unknown.
    success_lower_bound: f64,
    /// Weighted token count of name and description.
    len: u32,
    /// Interned currency.
    currency: u32,
    /// Provider slot.
    provider: u32,
    live: bool,
    /// The provider is flagged.
    flagged: bool,
}

impl Meta {
    fn set_reputation(&mut self, rep: Option<AgentReputation>) {
        let (rank, lower) = rep.map_or((DEFAULT_REPUTATION, 0.0), |r| {
            (r.rank, r.success_lower_bound)
        });
        self.factor = (0.5 + rank) * price_factor(self.per_hire);
        self.success_lower_bound = lower;
    }
}

/// A provider with at least one indexed manifest.
#[derive(Debug, Clone)]
struct Provider {
    id: NodeId,
    /// Agent name -> its document.
    agents: HashMap<String, DocId>,
}

/// Reference-counted strings with small ids (currencies).
#[derive(Debug, Clone, Default)]
struct Interner {
    ids: HashMap<String, u32>,
    refs: Vec<usize>,
    free: Vec<u32>,
}

impl Interner {
    fn get(&self, s: &str) -> Option<u32> {
        self.ids.get(s).copied()
    }

    fn acquire(&mut self, s: &str) -> u32 {
        if let Some(&id) = self.ids.get(s) {
            self.refs[id as usize] += 1;
            return id;
        }
        let id = match self.free.pop() {
            Some(id) => {
                self.refs[id as usize] = 1;
                id
            }
            None => {
                self.refs.push(1);
                slot_id(self.refs.len() - 1)
            }
        };
        self.ids.insert(s.to_owned(), id);
        id
    }

    fn release(&mut self, s: &str) {
        if let Some(&id) = self.ids.get(s) {
            let r = &mut self.refs[id as usize];
            *r -= 1;
            if *r == 0 {
                self.ids.remove(s);
                self.free.push(id);
            }
        }
    }
}

fn slot_id(n: usize) -> u32 {
    u32::try_from(n).unwrap_or_else(|_| panic!("souk-index: more than 2^32 slots"))
}

/// The in-memory manifest index. See the crate docs for matching, ranking and cost.
#[derive(Clone, Default)]
pub struct Index {
    /// Document slots; `None` when free.
    docs: Vec<Option<Signed<Manifest>>>,
    /// Per-slot filter and scoring data, parallel to `docs`.
    metas: Vec<Meta>,
    /// Free slots.
    free: Vec<DocId>,
    by_id: HashMap<Hash, DocId>,
    /// Text token -> documents containing it, sorted, with weighted term frequency.
    terms: HashMap<Box<str>, Vec<Posting>>,
    /// The keys of `terms`, ordered, with their suffixes (prefix and substring lookups).
    vocab: Vocab,
    /// Capability tag -> documents carrying it, sorted.
    tags: HashMap<Box<str>, Vec<DocId>>,
    /// Provider slots.
    providers: Vec<Option<Provider>>,
    provider_ids: HashMap<NodeId, u32>,
    /// Provider node id in text form -> slot, for prefix filters.
    provider_text: BTreeMap<Box<str>, u32>,
    provider_free: Vec<u32>,
    /// Every agent reputation set (provider -> agent name -> value), including for agents
    /// with nothing indexed; copied into `Meta` when indexed.
    reputation: HashMap<NodeId, HashMap<String, AgentReputation>>,
    /// Every flagged provider, indexed or not; copied into `Meta::flagged`.
    flagged: HashSet<NodeId>,
    currencies: Interner,
    /// Sum of `Meta::len` over live documents.
    total_len: u64,
}

impl fmt::Debug for Index {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Index")
            .field("manifests", &self.by_id.len())
            .field("terms", &self.terms.len())
            .field("tags", &self.tags.len())
            .field("providers", &self.provider_ids.len())
            .finish_non_exhaustive()
    }
}

impl Index {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a manifest the caller has already verified.
    ///
    /// Keeps only the highest `seq` per `(provider, name)`: an equal or lower `seq` is
    /// ignored ([`Inserted::Stale`]), a higher one replaces the indexed manifest
    /// ([`Inserted::Replaced`]). Expiry is not checked here: an expired manifest is stored
    /// but never returned by [`Index::search`] (drop them with [`Index::remove_expired`]).
    pub fn insert(&mut self, manifest: &Signed<Manifest>) -> Inserted {
        let id = manifest.id();
        let body = manifest.body();
        let existing = self.agent_doc(&body.provider, &body.name);
        let mut outcome = Inserted::New;
        if let Some(old) = existing {
            let Some(old_manifest) = self.docs[old as usize].as_ref() else {
                unreachable!("agent map points at a free slot")
            };
            let old_seq = old_manifest.body().seq;
            if body.seq == old_seq && old_manifest.id() == id {
                return Inserted::Duplicate;
            }
            if body.seq <= old_seq {
                return Inserted::Stale;
            }
            outcome = Inserted::Replaced(old_manifest.id());
            self.remove_doc(old);
        }
        self.add_doc(manifest.clone());
        outcome
    }

    /// Removes the manifest with this id; returns whether it was indexed.
    pub fn remove(&mut self, id: &Hash) -> bool {
        match self.by_id.get(id) {
            Some(&doc) => {
                self.remove_doc(doc);
                true
            }
            None => false,
        }
    }

    /// Removes every manifest with `expires_at <= now_ms` and returns their ids, sorted.
    pub fn remove_expired(&mut self, now_ms: u64) -> Vec<Hash> {
        let expired: Vec<DocId> = self
            .metas
            .iter()
            .enumerate()
            .filter(|(_, m)| m.live && m.expires_at <= now_ms)
            .map(|(d, _)| slot_id(d))
            .collect();
        let mut ids = Vec::with_capacity(expired.len());
        for doc in expired {
            if let Some(m) = &self.docs[doc as usize] {
                ids.push(m.id());
            }
            self.remove_doc(doc);
        }
        ids.sort_unstable();
        ids
    }

    /// Number of indexed manifests (expired ones included until removed).
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether the index holds no manifest.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// The indexed manifest with this id.
    pub fn get(&self, id: &Hash) -> Option<&Signed<Manifest>> {
        let doc = *self.by_id.get(id)?;
        self.docs[doc as usize].as_ref()
    }

    /// Sets the reputation of the agent `name` of `provider` (its handle), from verified
    /// outcome records; `None` makes it unknown (rank [`DEFAULT_REPUTATION`], success lower
    /// bound 0). Both values are clamped to `[0, 1]`; a NaN in either makes it unknown.
    ///
    /// The value is kept whether or not the agent is indexed: an agent indexed later, or
    /// re-announced (a higher `seq` replacing its manifest), gets it. The indexed manifest
    /// of that agent, if any, is re-scored at once.
    pub fn set_agent_reputation(
        &mut self,
        provider: NodeId,
        name: &str,
        rep: Option<AgentReputation>,
    ) {
        let rep = rep.and_then(AgentReputation::normalized);
        match rep {
            Some(r) => {
                self.reputation
                    .entry(provider)
                    .or_default()
                    .insert(name.to_owned(), r);
            }
            None => {
                if let Some(agents) = self.reputation.get_mut(&provider) {
                    agents.remove(name);
                    if agents.is_empty() {
                        self.reputation.remove(&provider);
                    }
                }
            }
        }
        if let Some(doc) = self.agent_doc(&provider, name) {
            self.metas[doc as usize].set_reputation(rep);
        }
    }

    /// The reputation set for the agent `name` of `provider` (clamped), `None` when unknown.
    pub fn agent_reputation(&self, provider: &NodeId, name: &str) -> Option<AgentReputation> {
        self.reputation.get(provider)?.get(name).copied()
    }

    /// Flags (or un-flags) a provider, for example one caught equivocating: its manifests
    /// are left out of search results unless [`Query::include_flagged`] is set. Kept whether
    /// or not the provider has manifests indexed; takes effect for its indexed manifests at
    /// once and for those indexed later.
    pub fn set_flagged(&mut self, provider: NodeId, flagged: bool) {
        if flagged {
            self.flagged.insert(provider);
        } else {
            self.flagged.remove(&provider);
        }
        let Some(&p) = self.provider_ids.get(&provider) else {
            return;
        };
        if let Some(slot) = &self.providers[p as usize] {
            for &doc in slot.agents.values() {
                self.metas[doc as usize].flagged = flagged;
            }
        }
    }

    /// Whether the provider is flagged ([`Index::set_flagged`]).
    pub fn is_flagged(&self, provider: &NodeId) -> bool {
        self.flagged.contains(provider)
    }

    /// The document of the agent `(provider, name)`, if indexed.
    fn agent_doc(&self, provider: &NodeId, name: &str) -> Option<DocId> {
        let &p = self.provider_ids.get(provider)?;
        self.providers[p as usize]
            .as_ref()?
            .agents
            .get(name)
            .copied()
    }

    /// Searches: the manifests matching every filter of `query` and not expired at
    /// `now_ms`, best first, at most `query.limit` (see the crate docs for the ranking).
    pub fn search(&self, query: &Query, now_ms: u64) -> Vec<Hit> {
        let limit = match query.limit {
            0 => DEFAULT_LIMIT,
            n => n.min(MAX_LIMIT),
        };
        if self.is_empty() {
            return Vec::new();
        }
        let currency = match &query.currency {
            Some(c) => match self.currencies.get(c) {
                Some(id) => Some(id),
                None => return Vec::new(),
            },
            None => None,
        };
        let Some(candidates) = self.candidates(query) else {
            return Vec::new();
        };
        let filter = Filter {
            metas: &self.metas,
            now_ms,
            max_price: query.max_price,
            currency,
            min_success: query.min_success.filter(|s| !s.is_nan()),
            include_flagged: query.include_flagged,
        };
        let mut top = TopK::new(limit);
        let terms = query
            .text
            .as_deref()
            .map(QueryTerms::parse)
            .unwrap_or_default();
        if terms.is_empty() {
            self.browse(candidates.as_deref(), &filter, &mut top);
        } else {
            self.rank_text(&terms, candidates.as_deref(), &filter, &mut top);
        }
        top.into_sorted()
            .into_iter()
            .filter_map(|r| {
                let manifest = self.docs[r.doc as usize].clone()?;
                let body = manifest.body();
                let reputation = self.agent_reputation(&body.provider, &body.name);
                Some(Hit {
                    id: r.id,
                    score: r.score,
                    flagged: self.metas[r.doc as usize].flagged,
                    reputation,
                    manifest,
                })
            })
            .collect()
    }

    // ----- maintenance -----

    fn add_doc(&mut self, manifest: Signed<Manifest>) {
        let body = manifest.body();
        let doc = match self.free.pop() {
            Some(d) => d,
            None => {
                self.docs.push(None);
                self.metas.push(Meta::default());
                slot_id(self.docs.len() - 1)
            }
        };
        let (tf, len) = text::document_terms(body);
        for (token, tf) in tf {
            let posting = Posting { doc, tf };
            match self.terms.get_mut(token.as_str()) {
                Some(list) => {
                    postings::insert(list, posting);
                }
                None => {
                    self.vocab.add(&token);
                    self.terms.insert(token.into_boxed_str(), vec![posting]);
                }
            }
        }
        for tag in &body.capabilities {
            match self.tags.get_mut(tag.as_str()) {
                Some(list) => {
                    postings::insert(list, doc);
                }
                None => {
                    self.tags.insert(tag.as_str().into(), vec![doc]);
                }
            }
        }
        let provider = self.acquire_provider(body.provider);
        if let Some(p) = self.providers[provider as usize].as_mut() {
            p.agents.insert(body.name.clone(), doc);
        }
        let mut meta = Meta {
            expires_at: body.expires_at,
            per_hire: body.pricing.per_hire,
            factor: 0.0,
            success_lower_bound: 0.0,
            len,
            currency: self.currencies.acquire(&body.pricing.currency),
            provider,
            live: true,
            flagged: self.flagged.contains(&body.provider),
        };
        meta.set_reputation(self.agent_reputation(&body.provider, &body.name));
        self.metas[doc as usize] = meta;
        self.total_len += u64::from(len);
        self.by_id.insert(manifest.id(), doc);
        self.docs[doc as usize] = Some(manifest);
    }

    fn remove_doc(&mut self, doc: DocId) {
        let Some(manifest) = self.docs[doc as usize].take() else {
            return;
        };
        let body = manifest.body();
        let (tf, len) = text::document_terms(body);
        for token in tf.keys() {
            if let Some(list) = self.terms.get_mut(token.as_str()) {
                postings::remove(list, doc);
                if list.is_empty() {
                    self.terms.remove(token.as_str());
                    self.vocab.remove(token);
                }
            }
        }
        for tag in &body.capabilities {
            if let Some(list) = self.tags.get_mut(tag.as_str()) {
                postings::remove(list, doc);
                if list.is_empty() {
                    self.tags.remove(tag.as_str());
                }
            }
        }
        let meta = std::mem::take(&mut self.metas[doc as usize]);
        self.release_provider(meta.provider, &body.name);
        self.currencies.release(&body.pricing.currency);
        self.total_len -= u64::from(len);
        self.by_id.remove(&manifest.id());
        self.free.push(doc);
    }

    fn acquire_provider(&mut self, id: NodeId) -> u32 {
        if let Some(&p) = self.provider_ids.get(&id) {
            return p;
        }
        let slot = Provider {
            id,
            agents: HashMap::new(),
        };
        let p = match self.provider_free.pop() {
            Some(p) => {
                self.providers[p as usize] = Some(slot);
                p
            }
            None => {
                self.providers.push(Some(slot));
                slot_id(self.providers.len() - 1)
            }
        };
        self.provider_ids.insert(id, p);
        self.provider_text.insert(id.to_string().into(), p);
        p
    }

    fn release_provider(&mut self, p: u32, name: &str) {
        let slot = &mut self.providers[p as usize];
        let Some(provider) = slot.as_mut() else {
            return;
        };
        provider.agents.remove(name);
        if provider.agents.is_empty() {
            self.provider_ids.remove(&provider.id);
            self.provider_text.remove(provider.id.to_string().as_str());
            *slot = None;
            self.provider_free.push(p);
        }
    }

    // ----- search -----

    /// The candidate set from the capability and provider filters: `Some(None)` when
    /// neither is set (every document), `None` when nothing can match.
    fn candidates(&self, query: &Query) -> Option<Option<Vec<DocId>>> {
        let mut wanted: Vec<String> = query
            .capabilities
            .iter()
            .map(|t| t.trim().to_lowercase())
            .collect();
        wanted.sort_unstable();
        wanted.dedup();
        let mut lists: Vec<&[DocId]> = Vec::with_capacity(wanted.len() + 1);
        for tag in &wanted {
            lists.push(self.tags.get(tag.as_str())?);
        }
        let provider_docs;
        if let Some(id) = &query.provider {
            let p = *self.provider_ids.get(id)?;
            let provider = self.providers[p as usize].as_ref()?;
            let mut docs: Vec<DocId> = provider.agents.values().copied().collect();
            docs.sort_unstable();
            provider_docs = docs;
            lists.push(&provider_docs);
        }
        let prefix_docs;
        if let Some(prefix) = &query.provider_prefix {
            let mut docs: Vec<DocId> = Vec::new();
            for (_, &p) in self
                .provider_text
                .range::<str, _>((Bound::Included(prefix.as_str()), Bound::Unbounded))
                .take_while(|(t, _)| t.starts_with(prefix.as_str()))
            {
                if let Some(provider) = &self.providers[p as usize] {
                    docs.extend(provider.agents.values().copied());
                }
            }
            if docs.is_empty() {
                return None;
            }
            docs.sort_unstable();
            prefix_docs = docs;
            lists.push(&prefix_docs);
        }
        if lists.is_empty() {
            return Some(None);
        }
        let set = postings::intersect(lists);
        if set.is_empty() {
            None
        } else {
            Some(Some(set))
        }
    }

    /// The factor a document's relevance is multiplied by: `(0.5 + rank) * price_factor`,
    /// kept in the per-document record by [`Meta::set_reputation`]. This is the one place
    /// where further signals join the ranking.
    fn rank_factor(m: &Meta) -> f64 {
        m.factor
    }

    /// No query text: rank the candidates by reputation and price.
    fn browse(&self, candidates: Option<&[DocId]>, filter: &Filter<'_>, top: &mut TopK) {
        let mut offer = |doc: DocId| {
            if filter.accepts(doc) {
                let m = &self.metas[doc as usize];
                top.offer(Self::rank_factor(m), m.per_hire, doc, &self.docs);
            }
        };
        match candidates {
            Some(set) => set.iter().copied().for_each(&mut offer),
            None => (0..self.metas.len()).map(slot_id).for_each(&mut offer),
        }
    }

    /// Query text: BM25 (each query token scored by its best exact, prefix or infix word)
    /// plus capability-term boosts, times the reputation and price factor.
    fn rank_text(
        &self,
        terms: &QueryTerms,
        candidates: Option<&[DocId]>,
        filter: &Filter<'_>,
        top: &mut TopK,
    ) {
        let n = self.by_id.len() as f64;
        // Cursors are pushed group by group: one group per query token (its exact word and
        // its expansions; the best of them counts), one per capability term.
        let mut cursors: Vec<Cursor<'_>> = Vec::new();
        let mut group = 0u32;
        let mut expansions = Vec::with_capacity(MAX_EXPANSIONS);
        let term_cursor = |word: &str, weight: f64, group| {
            self.terms.get(word).map(|list| {
                let df = list.len() as f64;
                let idf = (1.0 + (n - df + 0.5) / (df + 0.5)).ln();
                Cursor {
                    list: List::Terms(list, idf * weight),
                    pos: 0,
                    group,
                }
            })
        };
        for token in &terms.tokens {
            let exact = term_cursor(token, 1.0, group);
            let mut budget = EXPANSION_BUDGET.saturating_sub(exact.as_ref().map_or(0, Cursor::len));
            cursors.extend(exact);
            self.vocab.expand(token, &mut expansions);
            for &(word, how) in &expansions {
                let weight = match how {
                    Match::Prefix => PREFIX_WEIGHT,
                    Match::Infix => INFIX_WEIGHT,
                };
                if let Some(c) = term_cursor(word, weight, group)
                    && c.len() <= budget
                {
                    budget -= c.len();
                    cursors.push(c);
                }
            }
            group += 1;
        }
        for term in &terms.tag_terms {
            if let Some(list) = self.tags.get(term.as_str()) {
                cursors.push(Cursor {
                    list: List::Tags(list),
                    pos: 0,
                    group,
                });
                group += 1;
            }
        }
        if cursors.is_empty() {
            return;
        }
        let avgdl = (self.total_len as f64 / n).max(1.0);
        let norm = Norm {
            base: BM25_K1 * (1.0 - BM25_B),
            per_len: BM25_K1 * BM25_B / avgdl,
        };
        let mut score_doc = |doc: DocId, relevance: f64| {
            let m = &self.metas[doc as usize];
            top.offer(
                relevance * Self::rank_factor(m),
                m.per_hire,
                doc,
                &self.docs,
            );
        };
        let postings_total: usize = cursors.iter().map(Cursor::len).sum();
        match candidates {
            // Few candidates: walk them and seek into every list.
            Some(set) if set.len() <= postings_total => {
                for &doc in set {
                    if !filter.accepts(doc) {
                        continue;
                    }
                    let k = norm.of(&self.metas[doc as usize]);
                    let mut relevance = Relevance::default();
                    for c in &mut cursors {
                        c.seek(doc);
                        if c.doc() == Some(doc) {
                            relevance.add(c.group, c.contribution(k));
                        }
                    }
                    if let Some(r) = relevance.total() {
                        score_doc(doc, r);
                    }
                }
            }
            // Otherwise merge the lists in document order and check the candidate set.
            _ => {
                let mut in_set = candidates.map(|set| (set, 0usize));
                while let Some(doc) = cursors.iter().filter_map(Cursor::doc).min() {
                    let mut wanted = filter.accepts(doc);
                    if wanted && let Some((set, pos)) = &mut in_set {
                        *pos = postings::seek(set, *pos, doc);
                        wanted = set.get(*pos) == Some(&doc);
                    }
                    let k = if wanted {
                        norm.of(&self.metas[doc as usize])
                    } else {
                        0.0
                    };
                    let mut relevance = Relevance::default();
                    for c in &mut cursors {
                        if c.doc() == Some(doc) {
                            if wanted {
                                relevance.add(c.group, c.contribution(k));
                            }
                            c.pos += 1;
                        }
                    }
                    if wanted && let Some(r) = relevance.total() {
                        score_doc(doc, r);
                    }
                }
            }
        }
    }
}

/// Expiry, price, currency, flag and success-bound checks on the compact per-document
/// record.
struct Filter<'a> {
    metas: &'a [Meta],
    now_ms: u64,
    max_price: Option<u64>,
    currency: Option<u32>,
    /// Not NaN.
    min_success: Option<f64>,
    include_flagged: bool,
}

impl Filter<'_> {
    fn accepts(&self, doc: DocId) -> bool {
        let m = &self.metas[doc as usize];
        m.live
            && m.expires_at > self.now_ms
            && self.max_price.is_none_or(|p| m.per_hire <= p)
            && self.currency.is_none_or(|c| m.currency == c)
            && (self.include_flagged || !m.flagged)
            && self.min_success.is_none_or(|s| m.success_lower_bound >= s)
    }
}

/// BM25 length normalization: `k1 * (1 - b + b * len / avgdl)`.
struct Norm {
    base: f64,
    per_len: f64,
}

impl Norm {
    fn of(&self, m: &Meta) -> f64 {
        self.base + self.per_len * f64::from(m.len)
    }
}

/// `1 / (1 + PRICE_WEIGHT * ln(1 + per_hire / 10^6))`: 1 for a free agent, about 0.94
/// at 1 unit, 0.81 at 10, 0.68 at 100 (whatever the currency).
fn price_factor(per_hire: u64) -> f64 {
    1.0 / (1.0 + PRICE_WEIGHT * (per_hire as f64 / MICRO).ln_1p())
}

/// A document's relevance: the sum over cursor groups of the best contribution in each
/// group. Cursors are visited in group order, so one running maximum suffices.
#[derive(Default)]
struct Relevance {
    sum: f64,
    group: Option<u32>,
    best: f64,
}

impl Relevance {
    fn add(&mut self, group: u32, v: f64) {
        if self.group == Some(group) {
            self.best = self.best.max(v);
        } else {
            if self.group.is_some() {
                self.sum += self.best;
            }
            self.group = Some(group);
            self.best = v;
        }
    }

    /// The total, or `None` when nothing matched.
    fn total(self) -> Option<f64> {
        self.group.map(|_| self.sum + self.best)
    }
}

enum List<'a> {
    /// A word's postings and its idf times the word's match weight.
    Terms(&'a [Posting], f64),
    /// A capability tag's documents (each match adds 1).
    Tags(&'a [DocId]),
}

struct Cursor<'a> {
    list: List<'a>,
    pos: usize,
    /// Contributions within one group do not add up: the best one counts.
    group: u32,
}

impl Cursor<'_> {
    fn len(&self) -> usize {
        match self.list {
            List::Terms(l, _) => l.len(),
            List::Tags(l) => l.len(),
        }
    }

    fn doc(&self) -> Option<DocId> {
        match self.list {
            List::Terms(l, _) => l.get(self.pos).map(|p| p.doc),
            List::Tags(l) => l.get(self.pos).copied(),
        }
    }

    fn seek(&mut self, target: DocId) {
        self.pos = match self.list {
            List::Terms(l, _) => postings::seek(l, self.pos, target),
            List::Tags(l) => postings::seek(l, self.pos, target),
        };
    }

    /// The score contribution of the current document, whose BM25 length norm is `k`.
    fn contribution(&self, k: f64) -> f64 {
        match self.list {
            List::Terms(l, idf) => {
                let tf = f64::from(l[self.pos].tf);
                idf * tf * (BM25_K1 + 1.0) / (tf + k)
            }
            List::Tags(_) => 1.0,
        }
    }
}

/// A scored candidate. Orders "better is greater": higher score, then lower price, then
/// lower id.
#[derive(Debug, Clone, Copy)]
struct Ranked {
    score: f64,
    price: u64,
    id: Hash,
    doc: DocId,
}

impl Ranked {
    fn key_cmp(score: f64, price: u64, other: &Ranked) -> Ordering {
        score
            .total_cmp(&other.score)
            .then_with(|| other.price.cmp(&price))
    }
}

impl Ord for Ranked {
    fn cmp(&self, other: &Self) -> Ordering {
        Ranked::key_cmp(self.score, self.price, other).then_with(|| other.id.cmp(&self.id))
    }
}

impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Ranked {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Ranked {}

/// The best `k` candidates seen, in a min-heap whose top is the worst kept.
struct TopK {
    k: usize,
    heap: BinaryHeap<Reverse<Ranked>>,
}

impl TopK {
    fn new(k: usize) -> Self {
        Self {
            k,
            heap: BinaryHeap::with_capacity(k + 1),
        }
    }

    fn offer(&mut self, score: f64, price: u64, doc: DocId, docs: &[Option<Signed<Manifest>>]) {
        if self.heap.len() >= self.k
            && let Some(Reverse(worst)) = self.heap.peek()
            && Ranked::key_cmp(score, price, worst) == Ordering::Less
        {
            return;
        }
        let Some(id) = docs[doc as usize].as_ref().map(Signed::id) else {
            return;
        };
        let r = Ranked {
            score,
            price,
            id,
            doc,
        };
        if self.heap.len() < self.k {
            self.heap.push(Reverse(r));
        } else if let Some(mut worst) = self.heap.peek_mut()
            && r > worst.0
        {
            *worst = Reverse(r);
        }
    }

    fn into_sorted(self) -> Vec<Ranked> {
        // `into_sorted_vec` is ascending in `Reverse`, i.e. best first.
        self.heap
            .into_sorted_vec()
            .into_iter()
            .map(|r| r.0)
            .collect()
    }
}
