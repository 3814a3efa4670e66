//! Unit tests, property tests against a brute-force reference, and an invariant checker
//! over the private structures (postings consistent with the stored manifests).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::LazyLock;

use proptest::prelude::*;
use souk_protocol::Keypair;
use souk_protocol::vectors::{T0, manifest_body};

use super::*;

static KEYS: LazyLock<Vec<Keypair>> =
    LazyLock::new(|| (1..=4u8).map(|n| Keypair::from_seed(&[n; 32])).collect());

const DAY: u64 = 24 * 3600 * 1000;

#[derive(Debug, Clone)]
struct Spec {
    key: usize,
    name: String,
    seq: u64,
    caps: Vec<String>,
    description: String,
    currency: String,
    price: u64,
    expires_at: u64,
}

impl Spec {
    fn new(key: usize, name: &str, caps: &[&str], description: &str) -> Self {
        Spec {
            key,
            name: name.into(),
            seq: 1,
            caps: caps.iter().map(|c| (*c).to_owned()).collect(),
            description: description.into(),
            currency: "USD".into(),
            price: 1_000_000,
            expires_at: T0 + DAY,
        }
    }

    fn seq(mut self, seq: u64) -> Self {
        self.seq = seq;
        self
    }

    fn price(mut self, price: u64) -> Self {
        self.price = price;
        self
    }

    fn expires(mut self, at: u64) -> Self {
        self.expires_at = at;
        self
    }

    fn sign(&self) -> Signed<Manifest> {
        let key = &KEYS[self.key];
        let mut m = manifest_body(key);
        m.name = self.name.clone();
        m.seq = self.seq;
        let mut caps = self.caps.clone();
        caps.sort();
        caps.dedup();
        m.capabilities = caps;
        m.description = self.description.clone();
        m.pricing.currency = self.currency.clone();
        m.pricing.per_hire = self.price;
        m.issued_at = T0 - DAY;
        m.expires_at = self.expires_at;
        Signed::sign(m, key)
    }
}

fn provider(key: usize) -> NodeId {
    KEYS[key].id()
}

fn text(s: &str) -> Query {
    Query {
        text: Some(s.into()),
        ..Query::default()
    }
}

fn ids(hits: &[Hit]) -> Vec<Hash> {
    hits.iter().map(|h| h.id).collect()
}

fn add(index: &mut Index, spec: &Spec) -> Signed<Manifest> {
    let m = spec.sign();
    assert_eq!(index.insert(&m), Inserted::New, "{spec:?}");
    m
}

impl Index {
    /// Checks every internal structure against the stored manifests.
    fn check_invariants(&self) {
        assert_eq!(self.docs.len(), self.metas.len());
        let live: Vec<DocId> = (0..self.docs.len())
            .map(slot_id)
            .filter(|&d| self.docs[d as usize].is_some())
            .collect();
        assert_eq!(live.len(), self.by_id.len());
        assert_eq!(live.len() + self.free.len(), self.docs.len());
        let mut want_terms: HashMap<String, Vec<Posting>> = HashMap::new();
        let mut want_tags: HashMap<String, Vec<DocId>> = HashMap::new();
        let mut want_agents: HashMap<NodeId, HashMap<String, DocId>> = HashMap::new();
        let mut total_len = 0u64;
        for &d in &live {
            let Some(m) = &self.docs[d as usize] else {
                unreachable!()
            };
            let body = m.body();
            let meta = self.metas[d as usize];
            assert!(meta.live);
            assert_eq!(self.by_id.get(&m.id()), Some(&d));
            assert_eq!(meta.expires_at, body.expires_at);
            assert_eq!(meta.per_hire, body.pricing.per_hire);
            assert_eq!(
                self.currencies.get(&body.pricing.currency),
                Some(meta.currency)
            );
            assert_eq!(self.provider_ids.get(&body.provider), Some(&meta.provider));
            let rep = self.agent_reputation(&body.provider, &body.name);
            let rank = rep.map_or(DEFAULT_REPUTATION, |r| r.rank);
            assert_eq!(
                meta.factor,
                (0.5 + rank) * price_factor(body.pricing.per_hire)
            );
            assert_eq!(
                meta.success_lower_bound,
                rep.map_or(0.0, |r| r.success_lower_bound)
            );
            assert_eq!(meta.flagged, self.flagged.contains(&body.provider));
            let (tf, len) = text::document_terms(body);
            assert_eq!(meta.len, len);
            total_len += u64::from(len);
            for (t, n) in tf {
                want_terms
                    .entry(t)
                    .or_default()
                    .push(Posting { doc: d, tf: n });
            }
            for c in &body.capabilities {
                want_tags.entry(c.clone()).or_default().push(d);
            }
            let agents = want_agents.entry(body.provider).or_default();
            assert!(
                agents.insert(body.name.clone(), d).is_none(),
                "two manifests for one (provider, name)"
            );
        }
        for &d in &self.free {
            assert!(self.docs[d as usize].is_none());
            assert!(!self.metas[d as usize].live);
        }
        assert_eq!(total_len, self.total_len);
        let terms: HashMap<String, Vec<Posting>> = self
            .terms
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        assert_eq!(terms, want_terms);
        let mut words: Vec<&str> = self.terms.keys().map(|k| &**k).collect();
        words.sort_unstable();
        assert_eq!(self.vocab.words().collect::<Vec<_>>(), words);
        let texts: BTreeMap<String, u32> = self
            .provider_ids
            .iter()
            .map(|(id, p)| (id.to_string(), *p))
            .collect();
        let have: BTreeMap<String, u32> = self
            .provider_text
            .iter()
            .map(|(t, p)| (t.to_string(), *p))
            .collect();
        assert_eq!(have, texts);
        let tags: HashMap<String, Vec<DocId>> = self
            .tags
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        assert_eq!(tags, want_tags);
        assert_eq!(self.provider_ids.len(), want_agents.len());
        for (id, agents) in &want_agents {
            let p = self.provider_ids[id] as usize;
            let Some(slot) = &self.providers[p] else {
                panic!("provider slot {p} is free")
            };
            assert_eq!(slot.id, *id);
            assert_eq!(&slot.agents, agents);
        }
        for agents in self.reputation.values() {
            assert!(!agents.is_empty(), "empty reputation map kept");
            for r in agents.values() {
                assert!((0.0..=1.0).contains(&r.rank));
                assert!((0.0..=1.0).contains(&r.success_lower_bound));
            }
        }
        let used: BTreeSet<u32> = self
            .metas
            .iter()
            .filter(|m| m.live)
            .map(|m| m.currency)
            .collect();
        assert_eq!(used.len(), self.currencies.ids.len());
    }
}

// ----- unit tests -----

#[test]
fn insert_keeps_highest_seq_per_provider_and_name() {
    let mut index = Index::new();
    let base = Spec::new(0, "csv-analyst", &["csv"], "statistics over csv files");
    let v2 = base.clone().seq(2).sign();
    assert_eq!(index.insert(&v2), Inserted::New);
    assert_eq!(index.insert(&v2), Inserted::Duplicate);
    assert_eq!(index.insert(&base.clone().seq(1).sign()), Inserted::Stale);
    // Same seq, different content (an equivocating provider): ignored too.
    let mut other = base.clone().seq(2);
    other.description = "something else entirely".into();
    assert_eq!(index.insert(&other.sign()), Inserted::Stale);
    let mut v3 = base.clone().seq(3);
    v3.description = "newer words".into();
    let v3 = v3.sign();
    assert_eq!(index.insert(&v3), Inserted::Replaced(v2.id()));
    assert_eq!(index.len(), 1);
    assert!(index.get(&v2.id()).is_none());
    assert_eq!(index.get(&v3.id()), Some(&v3));
    // The old text is gone from the postings, the new one is there.
    assert!(index.search(&text("statistics"), T0).is_empty());
    assert_eq!(ids(&index.search(&text("newer"), T0)), [v3.id()]);
    // Same name, other provider: a different agent.
    assert_eq!(index.insert(&base.clone().seq(1).sign()), Inserted::Stale);
    let mut theirs = base;
    theirs.key = 1;
    assert_eq!(index.insert(&theirs.sign()), Inserted::New);
    assert_eq!(index.len(), 2);
    index.check_invariants();
}

#[test]
fn remove_clears_every_posting_list() {
    let mut index = Index::new();
    let a = add(
        &mut index,
        &Spec::new(0, "zebra-tool", &["zebra-tag", "shared"], "uniqueword here"),
    );
    let b = add(
        &mut index,
        &Spec::new(1, "other", &["shared"], "another description"),
    );
    assert!(index.remove(&a.id()));
    assert!(!index.remove(&a.id()));
    index.check_invariants();
    for q in ["zebra", "uniqueword", "zebra-tag", "here"] {
        assert!(index.search(&text(q), T0).is_empty(), "{q}");
    }
    let by_tag = Query {
        capabilities: vec!["zebra-tag".into()],
        ..Query::default()
    };
    assert!(index.search(&by_tag, T0).is_empty());
    assert_eq!(
        ids(&index.search(&Query::default(), T0)),
        [b.id()],
        "the other manifest stays"
    );
    assert!(index.remove(&b.id()));
    assert!(index.is_empty());
    index.check_invariants();
    assert!(index.terms.is_empty() && index.tags.is_empty() && index.providers_empty());
    // Slots are reused.
    add(&mut index, &Spec::new(2, "again", &["x"], "fresh"));
    assert_eq!(index.docs.len(), 2);
    index.check_invariants();
}

impl Index {
    fn providers_empty(&self) -> bool {
        self.provider_ids.is_empty() && self.providers.iter().all(Option::is_none)
    }
}

#[test]
fn expired_never_returned_and_removed_on_request() {
    let mut index = Index::new();
    let soon = add(
        &mut index,
        &Spec::new(0, "soon", &["ocr"], "reads scans").expires(T0 + 10),
    );
    let later = add(
        &mut index,
        &Spec::new(1, "later", &["ocr"], "reads scans").expires(T0 + 20),
    );
    let all = |now| ids(&index.search(&text("scans"), now));
    assert_eq!(all(T0).len(), 2);
    assert_eq!(all(T0 + 10), [later.id()], "expires_at == now is expired");
    assert!(all(T0 + 20).is_empty());
    let browse = Query::default();
    assert!(index.search(&browse, T0 + 20).is_empty());
    assert_eq!(index.remove_expired(T0 + 9), Vec::<Hash>::new());
    assert_eq!(index.remove_expired(T0 + 10), [soon.id()]);
    assert_eq!(index.len(), 1);
    let mut both = vec![later.id()];
    both.sort();
    assert_eq!(index.remove_expired(T0 + 100), both);
    assert!(index.is_empty());
    index.check_invariants();
}

#[test]
fn name_match_beats_description_match() {
    let mut index = Index::new();
    let in_desc = add(
        &mut index,
        &Spec::new(0, "doc-tool", &["misc"], "a parser for many formats"),
    );
    let in_name = add(
        &mut index,
        &Spec::new(1, "parser", &["misc"], "a tool for many formats"),
    );
    let hits = index.search(&text("parser"), T0);
    assert_eq!(ids(&hits), [in_name.id(), in_desc.id()]);
    assert!(hits[0].score > hits[1].score);
}

#[test]
fn capability_exact_match_boosts() {
    let mut index = Index::new();
    let plain = add(
        &mut index,
        &Spec::new(0, "one", &["docs"], "converts pdf files").price(0),
    );
    let tagged = add(
        &mut index,
        &Spec::new(1, "two", &["pdf"], "converts pdf files").price(0),
    );
    let hits = index.search(&text("pdf"), T0);
    assert_eq!(ids(&hits), [tagged.id(), plain.id()]);
    // Same BM25, +1 for the tag, times 0.5 + 0.5.
    assert!((hits[0].score - hits[1].score - 1.0).abs() < 1e-9);
    // A query term that is only a tag still finds the manifest, and a hyphenated tag
    // matches as a whole word.
    let tts = add(
        &mut index,
        &Spec::new(2, "voice", &["text-to-speech"], "reads aloud"),
    );
    assert_eq!(ids(&index.search(&text("Text-To-Speech"), T0)), [tts.id()]);
    assert_eq!(ids(&index.search(&text("docs"), T0)), [plain.id()]);
}

fn rep(rank: f64, success_lower_bound: f64) -> Option<AgentReputation> {
    Some(AgentReputation {
        rank,
        success_lower_bound,
    })
}

#[test]
fn reputation_boosts_and_defaults() {
    let mut index = Index::new();
    let spec = |key: usize, price| Spec::new(key, "same", &["t"], "same words").price(price);
    let a = add(&mut index, &spec(0, 5));
    let b = add(&mut index, &spec(1, 5));
    let c = add(&mut index, &spec(2, 1));
    // Equal relevance and reputation: lower price first, then id.
    let mut ab = [a.id(), b.id()];
    ab.sort();
    assert_eq!(
        ids(&index.search(&text("same"), T0)),
        [c.id(), ab[0], ab[1]]
    );
    assert!(
        index
            .search(&text("same"), T0)
            .iter()
            .all(|h| h.reputation.is_none())
    );
    index.set_agent_reputation(provider(1), "same", rep(0.9, 0.6));
    index.set_agent_reputation(provider(2), "same", rep(0.0, 0.0));
    index.check_invariants();
    let hits = index.search(&text("same"), T0);
    assert_eq!(ids(&hits), [b.id(), a.id(), c.id()]);
    assert!((hits[0].score / hits[1].score - 1.4).abs() < 1e-9);
    let cheaper = price_factor(1) / price_factor(5);
    assert!((hits[2].score / hits[1].score - 0.5 * cheaper).abs() < 1e-9);
    assert_eq!(hits[0].reputation, rep(0.9, 0.6));
    assert_eq!(hits[1].reputation, None);
    // Browse: reputation, then price, then id.
    assert_eq!(
        ids(&index.search(&Query::default(), T0)),
        [b.id(), a.id(), c.id()]
    );
    // Clamped; NaN and `None` reset to unknown.
    index.set_agent_reputation(provider(1), "same", rep(7.0, -3.0));
    assert_eq!(index.agent_reputation(&provider(1), "same"), rep(1.0, 0.0));
    let top = &index.search(&Query::default(), T0)[0];
    assert_eq!(top.score, 1.5 * price_factor(5));
    assert_eq!(top.reputation, rep(1.0, 0.0));
    index.set_agent_reputation(provider(1), "same", rep(f64::NAN, 0.5));
    assert_eq!(index.agent_reputation(&provider(1), "same"), None);
    index.set_agent_reputation(provider(2), "same", rep(0.7, f64::NAN));
    assert_eq!(index.agent_reputation(&provider(2), "same"), None);
    index.set_agent_reputation(provider(0), "same", rep(0.2, 0.1));
    index.set_agent_reputation(provider(0), "same", None);
    assert_eq!(index.agent_reputation(&provider(0), "same"), None);
    assert!(index.reputation.is_empty());
    index.check_invariants();
    let hits = index.search(&Query::default(), T0);
    assert_eq!(ids(&hits), [c.id(), ab[0], ab[1]]);
    assert!(hits.iter().all(|h| h.reputation.is_none()));
    // Another agent of a scored provider is not affected.
    index.set_agent_reputation(provider(3), "other", rep(1.0, 1.0));
    let d = add(&mut index, &spec(3, 0));
    let top = &index.search(&Query::default(), T0)[0];
    assert_eq!((top.id, top.score, top.reputation), (d.id(), 1.0, None));
    index.check_invariants();
}

#[test]
fn agent_reputation_orders_agents_of_one_provider() {
    let mut index = Index::new();
    let alpha = add(
        &mut index,
        &Spec::new(0, "alpha", &["ocr"], "reads scanned pages"),
    );
    let beta = add(
        &mut index,
        &Spec::new(0, "beta", &["ocr"], "reads scanned pages"),
    );
    let order = |index: &Index| {
        let with_text = ids(&index.search(&text("scanned"), T0));
        let browse = ids(&index.search(&Query::default(), T0));
        assert_eq!(with_text, browse);
        with_text
    };
    let mut tie = [alpha.id(), beta.id()];
    tie.sort();
    assert_eq!(order(&index), tie, "equal: by id");
    index.set_agent_reputation(provider(0), "beta", rep(0.8, 0.5));
    assert_eq!(order(&index), [beta.id(), alpha.id()]);
    index.set_agent_reputation(provider(0), "alpha", rep(0.9, 0.1));
    assert_eq!(order(&index), [alpha.id(), beta.id()]);
    let hits = index.search(&text("scanned"), T0);
    assert!((hits[0].score / hits[1].score - 1.4 / 1.3).abs() < 1e-9);
    assert_eq!(hits[0].reputation, rep(0.9, 0.1));
    assert_eq!(hits[1].reputation, rep(0.8, 0.5));
    // The same name at another provider is another agent.
    let other = add(
        &mut index,
        &Spec::new(1, "alpha", &["ocr"], "reads scanned pages"),
    );
    let hits = index.search(&text("scanned"), T0);
    assert_eq!(ids(&hits), [alpha.id(), beta.id(), other.id()]);
    assert_eq!(hits[2].reputation, None);
    index.check_invariants();
}

#[test]
fn reputation_set_before_indexing_applies_and_survives_reannouncement() {
    let mut index = Index::new();
    index.set_agent_reputation(provider(0), "late", rep(1.0, 0.9));
    assert_eq!(index.agent_reputation(&provider(0), "late"), rep(1.0, 0.9));
    let base = Spec::new(0, "late", &["t"], "same words").price(0);
    let v1 = add(&mut index, &base);
    let plain = add(
        &mut index,
        &Spec::new(1, "plain", &["t"], "same words").price(0),
    );
    let check = |index: &Index, want: Hash| {
        let hits = index.search(&text("same"), T0);
        assert_eq!(ids(&hits), [want, plain.id()]);
        assert!((hits[0].score / hits[1].score - 1.5).abs() < 1e-9);
        assert_eq!(hits[0].reputation, rep(1.0, 0.9));
        let strict = Query {
            min_success: Some(0.9),
            ..text("same")
        };
        assert_eq!(ids(&index.search(&strict, T0)), [want]);
        index.check_invariants();
    };
    check(&index, v1.id());
    // A re-announcement (higher seq, new content) replaces the document, keeps the value.
    let mut v2 = base.clone().seq(2);
    v2.caps.push("extra".into());
    let v2 = v2.sign();
    assert_eq!(index.insert(&v2), Inserted::Replaced(v1.id()));
    check(&index, v2.id());
    // Removed and indexed again (say, after expiry and a new announcement): still applies.
    assert!(index.remove(&v2.id()));
    assert!(
        index
            .search(&text("same"), T0)
            .iter()
            .all(|h| h.id != v2.id())
    );
    let v3 = base.seq(3).sign();
    assert_eq!(index.insert(&v3), Inserted::New);
    check(&index, v3.id());
}

#[test]
fn flagged_provider_hidden_unless_included() {
    let mut index = Index::new();
    let a1 = add(&mut index, &Spec::new(0, "a1", &["t"], "word").price(1));
    let a2 = add(&mut index, &Spec::new(0, "a2", &["t"], "word").price(2));
    let b = add(&mut index, &Spec::new(1, "b", &["t"], "word").price(3));
    let all = [a1.id(), a2.id(), b.id()];
    // Every query shape, with and without flagged providers.
    let run = |index: &Index, include_flagged: bool| {
        let shapes = [
            text("word"),
            Query::default(),
            Query {
                capabilities: vec!["t".into()],
                ..text("word")
            },
            Query {
                provider_prefix: Some("souk".into()),
                ..Query::default()
            },
        ];
        let mut out: Option<Vec<Hash>> = None;
        for q in shapes {
            let q = Query {
                include_flagged,
                ..q
            };
            let hits = index.search(&q, T0);
            for h in &hits {
                assert_eq!(h.flagged, index.is_flagged(&h.manifest.body().provider));
            }
            let got = ids(&hits);
            if let Some(prev) = &out {
                assert_eq!(prev, &got, "{q:?}");
            }
            out = Some(got);
        }
        out.unwrap_or_default()
    };
    assert!(!index.is_flagged(&provider(0)));
    assert_eq!(run(&index, false), all);
    index.set_flagged(provider(0), true);
    assert!(index.is_flagged(&provider(0)) && !index.is_flagged(&provider(1)));
    index.check_invariants();
    assert_eq!(run(&index, false), [b.id()]);
    assert_eq!(run(&index, true), all);
    let only = |p: usize, include_flagged| Query {
        provider: Some(provider(p)),
        include_flagged,
        ..text("word")
    };
    assert!(index.search(&only(0, false), T0).is_empty());
    assert_eq!(ids(&index.search(&only(0, true), T0)), [a1.id(), a2.id()]);
    assert!(index.search(&only(0, true), T0).iter().all(|h| h.flagged));
    // A manifest indexed while its provider is flagged is hidden too, and a re-announced one.
    let a3 = add(&mut index, &Spec::new(0, "a3", &["t"], "word").price(4));
    let a1v2 = Spec::new(0, "a1", &["t"], "word").price(1).seq(2).sign();
    assert_eq!(index.insert(&a1v2), Inserted::Replaced(a1.id()));
    index.check_invariants();
    assert_eq!(run(&index, false), [b.id()]);
    // Un-flagging restores them all.
    index.set_flagged(provider(0), false);
    index.check_invariants();
    assert!(!index.is_flagged(&provider(0)));
    assert_eq!(run(&index, false), [a1v2.id(), a2.id(), b.id(), a3.id()]);
    assert!(
        index
            .search(&Query::default(), T0)
            .iter()
            .all(|h| !h.flagged)
    );
    // A flag set before the provider has anything indexed is kept.
    index.set_flagged(provider(2), true);
    let c = add(&mut index, &Spec::new(2, "c", &["t"], "word"));
    assert!(!ids(&index.search(&Query::default(), T0)).contains(&c.id()));
    assert!(ids(&index.search(&only(2, true), T0)).contains(&c.id()));
    // And it outlives the provider's last manifest.
    assert!(index.remove(&c.id()));
    assert!(index.is_flagged(&provider(2)));
    index.check_invariants();
}

#[test]
fn min_success_filters_on_the_lower_bound() {
    let mut index = Index::new();
    let low = add(&mut index, &Spec::new(0, "low", &["t"], "word"));
    let high = add(&mut index, &Spec::new(0, "high", &["t"], "word"));
    let unknown = add(&mut index, &Spec::new(1, "unknown", &["t"], "word"));
    // Rank and bound are independent: `low` ranks first but has the weaker bound.
    index.set_agent_reputation(provider(0), "low", rep(0.9, 0.2));
    index.set_agent_reputation(provider(0), "high", rep(0.8, 0.7));
    let with = |index: &Index, min: Option<f64>| {
        let q = Query {
            min_success: min,
            ..text("word")
        };
        let with_text = ids(&index.search(&q, T0));
        let browse = ids(&index.search(&Query { text: None, ..q }, T0));
        assert_eq!(with_text, browse);
        with_text
    };
    let all = [low.id(), high.id(), unknown.id()];
    assert_eq!(with(&index, None), all);
    assert_eq!(with(&index, Some(0.0)), all, "unknown counts as 0");
    assert_eq!(with(&index, Some(-1.0)), all);
    assert_eq!(with(&index, Some(f64::NAN)), all, "NaN is no filter");
    assert_eq!(with(&index, Some(0.1)), [low.id(), high.id()]);
    assert_eq!(with(&index, Some(0.2)), [low.id(), high.id()], "inclusive");
    assert_eq!(with(&index, Some(0.5)), [high.id()]);
    assert_eq!(with(&index, Some(0.7)), [high.id()]);
    assert!(with(&index, Some(0.71)).is_empty());
    assert!(with(&index, Some(1.0)).is_empty());
    // The bound follows updates.
    index.set_agent_reputation(provider(0), "low", rep(0.9, 0.95));
    assert_eq!(with(&index, Some(0.9)), [low.id()]);
    index.set_agent_reputation(provider(0), "low", None);
    assert!(with(&index, Some(0.9)).is_empty());
    index.check_invariants();
}

#[test]
fn prefixes_and_inner_parts_of_words_match_below_exact_words() {
    let mut index = Index::new();
    let exact = add(
        &mut index,
        &Spec::new(0, "digest", &["text"], "Makes a summar of any text"),
    );
    let prefix = add(
        &mut index,
        &Spec::new(1, "short", &["text"], "Summarizes long documents"),
    );
    let infix = add(
        &mut index,
        &Spec::new(2, "digest", &["text"], "Resummarized news, daily"),
    );
    add(
        &mut index,
        &Spec::new(3, "other", &["text"], "Translates text"),
    );
    // `summar` is a word of one description, a prefix of a word of another and inside a
    // word of the third: all three match, in that order.
    let hits = index.search(&text("SUMMAR"), T0);
    assert_eq!(ids(&hits), [exact.id(), prefix.id(), infix.id()]);
    // Only a prefix: found; too short to expand: not found.
    assert_eq!(ids(&index.search(&text("summari"), T0)).len(), 2);
    assert_eq!(ids(&index.search(&text("transl"), T0)).len(), 1);
    assert!(index.search(&text("su"), T0).is_empty());
    assert_eq!(ids(&index.search(&text("marized"), T0)), [infix.id()]);
    // A query word's exact and prefix matches in one manifest count once (the best).
    let both = add(
        &mut index,
        &Spec::new(3, "solo", &["text"], "translate translates"),
    );
    let alone = index.search(&text("translate"), T0);
    assert_eq!(alone[0].id, both.id());
    index.check_invariants();
}

#[test]
fn cheaper_ranks_higher_at_equal_relevance() {
    let mut index = Index::new();
    let dear = add(
        &mut index,
        &Spec::new(0, "ocr", &["ocr"], "reads scans").price(50_000_000),
    );
    let cheap = add(
        &mut index,
        &Spec::new(1, "ocr", &["ocr"], "reads scans").price(500_000),
    );
    let free = add(
        &mut index,
        &Spec::new(2, "ocr", &["ocr"], "reads scans").price(0),
    );
    for q in [text("scans"), Query::default()] {
        let hits = index.search(&q, T0);
        assert_eq!(ids(&hits), [free.id(), cheap.id(), dear.id()]);
        assert!((hits[2].score / hits[0].score - price_factor(50_000_000)).abs() < 1e-12);
    }
    assert_eq!(price_factor(0), 1.0);
    assert!((price_factor(1_000_000) - 1.0 / (1.0 + 0.1 * 2f64.ln())).abs() < 1e-12);
    // A much better text match still beats a cheaper one.
    let named = add(
        &mut index,
        &Spec::new(3, "scans", &["ocr"], "scans scans").price(90_000_000),
    );
    assert_eq!(index.search(&text("scans"), T0)[0].id, named.id());
}

#[test]
fn provider_prefix_filters() {
    let mut index = Index::new();
    let a = add(&mut index, &Spec::new(0, "a", &["t"], "word"));
    let b = add(&mut index, &Spec::new(1, "b", &["t"], "word"));
    let by = |p: String| {
        let q = Query {
            provider_prefix: Some(p),
            ..text("word")
        };
        ids(&index.search(&q, T0))
    };
    assert_eq!(by(provider(0).to_string()), [a.id()]);
    assert_eq!(by(provider(1).to_string()[..12].to_owned()), [b.id()]);
    assert_eq!(by("souk".into()).len(), 2);
    assert!(by("soukzzzzzzzzzzzz".into()).is_empty());
    assert!(by(format!("{}x", provider(0))).is_empty());
}

#[test]
fn filters_apply() {
    let mut index = Index::new();
    let mut eur = Spec::new(0, "eur", &["a", "b"], "word").price(10);
    eur.currency = "EUR".into();
    let eur = add(&mut index, &eur);
    let usd = add(&mut index, &Spec::new(1, "usd", &["a"], "word").price(20));
    let q = |f: &dyn Fn(&mut Query)| {
        let mut q = text("word");
        f(&mut q);
        let with_text = ids(&index.search(&q, T0));
        q.text = None;
        let without = ids(&index.search(&q, T0));
        let (mut x, mut y) = (with_text.clone(), without);
        x.sort();
        y.sort();
        assert_eq!(x, y, "text and browse agree on the filtered set");
        with_text
    };
    assert_eq!(q(&|_| {}), [eur.id(), usd.id()]);
    assert_eq!(
        q(&|q| q.capabilities = vec!["a".into(), "b".into()]),
        [eur.id()]
    );
    assert_eq!(q(&|q| q.capabilities = vec!["B".into()]), [eur.id()]);
    assert!(q(&|q| q.capabilities = vec!["a".into(), "nope".into()]).is_empty());
    assert_eq!(q(&|q| q.max_price = Some(20)), [eur.id(), usd.id()]);
    assert_eq!(q(&|q| q.max_price = Some(19)), [eur.id()]);
    assert!(q(&|q| q.max_price = Some(9)).is_empty());
    assert_eq!(q(&|q| q.currency = Some("USD".into())), [usd.id()]);
    assert!(q(&|q| q.currency = Some("GBP".into())).is_empty());
    assert_eq!(q(&|q| q.provider = Some(provider(1))), [usd.id()]);
    assert!(q(&|q| q.provider = Some(provider(3))).is_empty());
    assert!(
        q(&|q| {
            q.provider = Some(provider(0));
            q.capabilities = vec!["a".into()];
            q.currency = Some("USD".into());
        })
        .is_empty()
    );
}

#[test]
fn limit_default_and_cap() {
    let mut index = Index::new();
    for i in 0..(MAX_LIMIT + 5) {
        let m = Spec::new(i % 4, &format!("agent-{i}"), &["t"], "common words").sign();
        assert_eq!(index.insert(&m), Inserted::New);
    }
    for (limit, want) in [(0, DEFAULT_LIMIT), (1, 1), (7, 7), (5000, MAX_LIMIT)] {
        for text in [None, Some("common".to_owned())] {
            let q = Query {
                text: text.clone(),
                limit,
                ..Query::default()
            };
            assert_eq!(index.search(&q, T0).len(), want, "{limit} {text:?}");
        }
    }
}

#[test]
fn text_without_tokens_browses() {
    let mut index = Index::new();
    add(&mut index, &Spec::new(0, "x", &["t"], "words"));
    assert_eq!(index.search(&text(" -- ?! "), T0).len(), 1);
    assert!(index.search(&text("absent"), T0).is_empty());
    assert!(Index::new().search(&Query::default(), T0).is_empty());
}

// ----- properties -----

const WORDS: &[&str] = &[
    "alpha", "beta", "gamma", "csv", "pdf", "report", "scan", "fast", "cheap", "image", "text",
    "speech",
];
/// Query words that are prefixes or inner parts of `WORDS` (and some that are not).
const PARTS: &[&str] = &[
    "alp", "amm", "rep", "por", "ima", "eech", "ch", "ext", "sca", "zzz",
];
const TAGS: &[&str] = &["analytics", "csv", "pdf", "report", "ocr", "text-to-speech"];
const NAMES: &[&str] = &["a", "b", "csv-tool", "pdf-scan", "fast-image"];

fn spec_strategy() -> impl Strategy<Value = Spec> {
    (
        0..KEYS.len(),
        0..NAMES.len(),
        1..5u64,
        proptest::sample::subsequence(TAGS, 1..4),
        proptest::collection::vec(0..WORDS.len(), 1..8),
        any::<bool>(),
        0..5u64,
        1..6u64,
    )
        .prop_map(|(key, name, seq, caps, words, eur, price, exp)| Spec {
            key,
            name: NAMES[name].into(),
            seq,
            caps: caps.iter().map(|c| (*c).to_owned()).collect(),
            description: words
                .iter()
                .map(|&w| WORDS[w])
                .collect::<Vec<_>>()
                .join(" "),
            currency: if eur { "EUR" } else { "USD" }.into(),
            price: price * 1000,
            expires_at: T0 + exp * 1000,
        })
}

#[derive(Debug, Clone)]
enum Op {
    Insert(Spec),
    /// Remove the n-th manifest inserted so far (modulo).
    Remove(usize),
    Expire(u64),
    /// Set the reputation of agent `NAMES[.1]` of provider `.0`.
    Reputation(usize, usize, Option<(f64, f64)>),
    Flag(usize, bool),
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => spec_strategy().prop_map(Op::Insert),
        1 => any::<usize>().prop_map(Op::Remove),
        1 => (0..4u64).prop_map(|t| Op::Expire(T0 + t * 1000)),
        2 => (
            0..KEYS.len(),
            0..NAMES.len(),
            proptest::option::of((0.0..=1.0f64, 0..=4u8))
        )
            .prop_map(|(k, n, r)| Op::Reputation(k, n, r.map(|(rank, b)| (rank, quarter(b))))),
        1 => (0..KEYS.len(), any::<bool>()).prop_map(|(k, f)| Op::Flag(k, f)),
    ]
}

fn query_strategy() -> impl Strategy<Value = (Query, u64)> {
    (
        proptest::option::of(proptest::collection::vec(
            prop_oneof![
                proptest::sample::select(WORDS).prop_map(str::to_owned),
                proptest::sample::select(PARTS).prop_map(str::to_owned),
                proptest::sample::select(TAGS).prop_map(str::to_owned),
                Just("CSV,".to_owned()),
                Just("absent".to_owned()),
            ],
            0..4,
        )),
        proptest::sample::subsequence(TAGS, 0..3),
        proptest::option::of(0..5u64),
        proptest::option::of(prop_oneof![Just("USD"), Just("EUR"), Just("GBP")]),
        proptest::option::of(0..KEYS.len()),
        proptest::option::of((0..KEYS.len(), 4..12usize)),
        proptest::option::of(0..=4u8),
        any::<bool>(),
        0..8usize,
        0..6u64,
    )
        .prop_map(
            |(words, caps, price, currency, key, prefix, min, flagged, limit, now)| {
                (
                    Query {
                        text: words.map(|w| w.join(" ")),
                        capabilities: caps.iter().map(|c| (*c).to_owned()).collect(),
                        max_price: price.map(|p| p * 1000),
                        currency: currency.map(str::to_owned),
                        provider: key.map(provider),
                        provider_prefix: prefix
                            .map(|(k, n)| provider(k).to_string()[..n].to_owned()),
                        min_success: min.map(quarter),
                        include_flagged: flagged,
                        limit,
                    },
                    T0 + now * 1000,
                )
            },
        )
}

/// `n / 4`: success bounds on a grid, so that filters meet bounds exactly.
fn quarter(n: u8) -> f64 {
    f64::from(n) / 4.0
}

/// The brute-force model: one manifest per (provider, name), agent reputations and flagged
/// providers.
#[derive(Default)]
struct Model {
    entries: BTreeMap<(NodeId, String), Signed<Manifest>>,
    reputation: HashMap<(NodeId, String), AgentReputation>,
    flagged: HashSet<NodeId>,
}

impl Model {
    fn insert(&mut self, m: &Signed<Manifest>) -> Inserted {
        let key = (m.body().provider, m.body().name.clone());
        match self.entries.get(&key) {
            Some(old) if old.id() == m.id() => Inserted::Duplicate,
            Some(old) if old.body().seq >= m.body().seq => Inserted::Stale,
            Some(old) => {
                let old = old.id();
                self.entries.insert(key, m.clone());
                Inserted::Replaced(old)
            }
            None => {
                self.entries.insert(key, m.clone());
                Inserted::New
            }
        }
    }

    fn rep(&self, m: &Manifest) -> Option<AgentReputation> {
        self.reputation.get(&(m.provider, m.name.clone())).copied()
    }

    fn matches_filters(&self, m: &Manifest, q: &Query, now: u64) -> bool {
        m.expires_at > now
            && (q.include_flagged || !self.flagged.contains(&m.provider))
            && q.min_success
                .is_none_or(|s| self.rep(m).map_or(0.0, |r| r.success_lower_bound) >= s)
            && q.capabilities.iter().all(|c| m.capabilities.contains(c))
            && q.max_price.is_none_or(|p| m.pricing.per_hire <= p)
            && q.currency.as_ref().is_none_or(|c| *c == m.pricing.currency)
            && q.provider.is_none_or(|p| p == m.provider)
            && q.provider_prefix
                .as_ref()
                .is_none_or(|p| m.provider.to_string().starts_with(p.as_str()))
    }

    /// The words a query token expands to, with their weights, by brute force over the
    /// vocabulary (the rule of `Vocab::expand`).
    fn expand(vocab: &BTreeSet<String>, t: &str) -> Vec<(String, f64)> {
        if t.chars().count() < MIN_EXPAND_CHARS {
            return Vec::new();
        }
        let mut out: Vec<(String, f64)> = vocab
            .iter()
            .filter(|w| w.as_str() > t && w.starts_with(t))
            .take(MAX_EXPANSIONS)
            .map(|w| (w.clone(), PREFIX_WEIGHT))
            .collect();
        let mut suffixes: Vec<(String, String)> = Vec::new();
        for w in vocab {
            let chars: Vec<char> = w.chars().collect();
            if chars.len() > MAX_INFIX_WORD {
                continue;
            }
            for i in 1..chars.len() {
                if chars.len() - i >= MIN_EXPAND_CHARS {
                    suffixes.push((chars[i..].iter().collect(), w.clone()));
                }
            }
        }
        suffixes.sort();
        for (_, w) in suffixes
            .iter()
            .filter(|(s, _)| s.starts_with(t))
            .take(MAX_SUFFIX_SCAN)
        {
            if out.len() == MAX_EXPANSIONS {
                break;
            }
            if !out.iter().any(|(x, _)| x == w) {
                out.push((w.clone(), INFIX_WEIGHT));
            }
        }
        out
    }

    /// Every matching manifest with its reference score, unsorted.
    fn search(&self, q: &Query, now: u64) -> Vec<(Hash, f64, u64)> {
        let terms = q.text.as_deref().map(QueryTerms::parse).unwrap_or_default();
        let docs: Vec<&Manifest> = self.entries.values().map(|m| m.body()).collect();
        let tokens_of = |m: &Manifest| {
            let mut v: Vec<(String, f64)> = Vec::new();
            text::for_each_token(&m.name, |t| v.push((t.to_owned(), 3.0)));
            text::for_each_token(&m.description, |t| v.push((t.to_owned(), 1.0)));
            v
        };
        let n = docs.len() as f64;
        let vocab: BTreeSet<String> = docs
            .iter()
            .flat_map(|m| tokens_of(m).into_iter().map(|t| t.0))
            .collect();
        let avgdl = docs
            .iter()
            .map(|m| tokens_of(m).iter().map(|t| t.1).sum::<f64>())
            .sum::<f64>()
            / n;
        let mut out = Vec::new();
        for m in self.entries.values() {
            let body = m.body();
            if !self.matches_filters(body, q, now) {
                continue;
            }
            let price = 1.0 / (1.0 + 0.1 * (body.pricing.per_hire as f64 / 1e6).ln_1p());
            let rank = self.rep(body).map_or(0.5, |r| r.rank);
            let rep = (0.5 + rank) * price;
            if terms.is_empty() {
                out.push((m.id(), rep, body.pricing.per_hire));
                continue;
            }
            let toks = tokens_of(body);
            let dl: f64 = toks.iter().map(|t| t.1).sum();
            let mut rel = 0.0;
            let mut matched = false;
            for t in &terms.tokens {
                let df_of = |w: &str| {
                    docs.iter()
                        .filter(|d| tokens_of(d).iter().any(|x| x.0 == w))
                        .count()
                };
                let mut words = vec![(t.clone(), 1.0)];
                let mut budget = EXPANSION_BUDGET.saturating_sub(df_of(t));
                for (w, weight) in Self::expand(&vocab, t) {
                    let df = df_of(&w);
                    if df <= budget {
                        budget -= df;
                        words.push((w, weight));
                    }
                }
                let mut best: Option<f64> = None;
                for (w, weight) in &words {
                    let tf: f64 = toks.iter().filter(|x| x.0 == *w).map(|x| x.1).sum();
                    if tf == 0.0 {
                        continue;
                    }
                    let df = docs
                        .iter()
                        .filter(|d| tokens_of(d).iter().any(|x| x.0 == *w))
                        .count() as f64;
                    let idf = (1.0 + (n - df + 0.5) / (df + 0.5)).ln();
                    let v = idf * weight * tf * 2.2 / (tf + 1.2 * (0.25 + 0.75 * dl / avgdl));
                    best = Some(best.map_or(v, |b: f64| b.max(v)));
                }
                if let Some(b) = best {
                    matched = true;
                    rel += b;
                }
            }
            for t in &terms.tag_terms {
                if body.capabilities.contains(t) {
                    matched = true;
                    rel += 1.0;
                }
            }
            if matched {
                out.push((m.id(), rel * rep, body.pricing.per_hire));
            }
        }
        out
    }
}

fn effective_limit(q: &Query) -> usize {
    if q.limit == 0 {
        DEFAULT_LIMIT
    } else {
        q.limit.min(MAX_LIMIT)
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Against the brute-force model: insert outcomes, one entry per (provider, name),
    /// postings consistent, and every search returns exactly the reference top-k, every hit
    /// satisfying every filter and unexpired, in deterministic order.
    #[test]
    fn index_matches_model(
        ops in proptest::collection::vec(op_strategy(), 1..24),
        queries in proptest::collection::vec(query_strategy(), 1..8),
    ) {
        let mut index = Index::new();
        let mut model = Model::default();
        let mut inserted: Vec<Hash> = Vec::new();
        for op in &ops {
            match op {
                Op::Insert(spec) => {
                    let m = spec.sign();
                    prop_assert_eq!(index.insert(&m), model.insert(&m));
                    inserted.push(m.id());
                }
                Op::Remove(i) => {
                    if !inserted.is_empty() {
                        let id = inserted[i % inserted.len()];
                        let in_model = model.entries.values().any(|m| m.id() == id);
                        model.entries.retain(|_, m| m.id() != id);
                        prop_assert_eq!(index.remove(&id), in_model);
                    }
                }
                Op::Expire(now) => {
                    let mut want: Vec<Hash> = model
                        .entries
                        .values()
                        .filter(|m| m.body().expires_at <= *now)
                        .map(Signed::id)
                        .collect();
                    want.sort();
                    model.entries.retain(|_, m| m.body().expires_at > *now);
                    prop_assert_eq!(index.remove_expired(*now), want);
                }
                Op::Reputation(k, n, r) => {
                    let r = r.map(|(rank, success_lower_bound)| AgentReputation {
                        rank,
                        success_lower_bound,
                    });
                    index.set_agent_reputation(provider(*k), NAMES[*n], r);
                    let key = (provider(*k), NAMES[*n].to_owned());
                    match r {
                        Some(r) => model.reputation.insert(key, r),
                        None => model.reputation.remove(&key),
                    };
                }
                Op::Flag(k, f) => {
                    index.set_flagged(provider(*k), *f);
                    if *f {
                        model.flagged.insert(provider(*k));
                    } else {
                        model.flagged.remove(&provider(*k));
                    }
                }
            }
        }
        index.check_invariants();
        prop_assert_eq!(index.len(), model.entries.len());
        let index_ids: BTreeSet<Hash> = index.by_id.keys().copied().collect();
        let model_ids: BTreeSet<Hash> = model.entries.values().map(Signed::id).collect();
        prop_assert_eq!(&index_ids, &model_ids);

        // A second index built in another order must answer identically.
        let mut rebuilt = Index::new();
        for m in model.entries.values().rev() {
            rebuilt.insert(m);
        }
        // Reputations and flags set after the manifests, where the first index mostly had
        // them set before or in between.
        for ((p, name), r) in &model.reputation {
            rebuilt.set_agent_reputation(*p, name, Some(*r));
        }
        for p in &model.flagged {
            rebuilt.set_flagged(*p, true);
        }
        rebuilt.check_invariants();
        for k in 0..KEYS.len() {
            prop_assert_eq!(index.is_flagged(&provider(k)), model.flagged.contains(&provider(k)));
            for name in NAMES {
                prop_assert_eq!(
                    index.agent_reputation(&provider(k), name),
                    model.reputation.get(&(provider(k), (*name).to_owned())).copied()
                );
            }
        }

        for (q, now) in &queries {
            let hits = index.search(q, *now);
            let reference = model.search(q, *now);
            let limit = effective_limit(q);
            prop_assert_eq!(hits.len(), limit.min(reference.len()));
            for h in &hits {
                let m = h.manifest.body();
                prop_assert_eq!(h.id, h.manifest.id());
                prop_assert!(model.matches_filters(m, q, *now), "hit breaks a filter");
                prop_assert_eq!(h.flagged, model.flagged.contains(&m.provider));
                prop_assert_eq!(h.reputation, model.rep(m));
                prop_assert!(m.expires_at > *now);
                let Some(r) = reference.iter().find(|r| r.0 == h.id) else {
                    return Err(TestCaseError::fail("hit not in the reference set"));
                };
                prop_assert!((r.1 - h.score).abs() < 1e-9, "score {} vs {}", h.score, r.1);
            }
            for w in hits.windows(2) {
                let (a, b) = (&w[0], &w[1]);
                let ordered = a.score > b.score
                    || (a.score == b.score
                        && (a.manifest.body().pricing.per_hire, a.id)
                            < (b.manifest.body().pricing.per_hire, b.id));
                prop_assert!(ordered, "hits out of order");
            }
            if let Some(last) = hits.last() {
                let returned: BTreeSet<Hash> = hits.iter().map(|h| h.id).collect();
                for r in reference.iter().filter(|r| !returned.contains(&r.0)) {
                    prop_assert!(r.1 <= last.score + 1e-9, "a better match was left out");
                }
            }
            prop_assert_eq!(&index.search(q, *now), &hits);
            let again: Vec<(Hash, u64)> =
                rebuilt.search(q, *now).iter().map(|h| (h.id, h.score.to_bits())).collect();
            let first: Vec<(Hash, u64)> = hits.iter().map(|h| (h.id, h.score.to_bits())).collect();
            prop_assert_eq!(again, first);
        }
    }

    /// Removing a manifest removes it from every posting list: its unique token finds
    /// nothing afterwards, while the kept ones are still found by theirs.
    #[test]
    fn removal_clears_postings(
        specs in proptest::collection::vec(spec_strategy(), 1..16),
        remove in proptest::collection::vec(any::<bool>(), 16),
    ) {
        let mut index = Index::new();
        let mut added = Vec::new();
        for (i, spec) in specs.iter().enumerate() {
            let mut spec = spec.clone();
            spec.name = format!("agent-{i}");
            spec.description = format!("{} uniq{i}z", spec.description);
            spec.expires_at = T0 + DAY;
            let m = spec.sign();
            prop_assert_eq!(index.insert(&m), Inserted::New);
            added.push(m);
        }
        for (i, m) in added.iter().enumerate() {
            if remove[i] {
                prop_assert!(index.remove(&m.id()));
            }
        }
        index.check_invariants();
        for (i, m) in added.iter().enumerate() {
            let found = ids(&index.search(&text(&format!("uniq{i}z")), T0));
            if remove[i] {
                prop_assert!(found.is_empty());
                prop_assert!(index.get(&m.id()).is_none());
            } else {
                prop_assert_eq!(found, vec![m.id()]);
            }
        }
    }
}

#[test]
fn expansions_stay_within_the_posting_budget() {
    let mut index = Index::new();
    let mut n = 0;
    let mut add_n = |index: &mut Index, count: usize, tag: &str, desc: &str| {
        for _ in 0..count {
            let m = Spec::new(n % 4, &format!("agent-{n}"), &[tag], desc).sign();
            assert_eq!(index.insert(&m), Inserted::New);
            n += 1;
        }
    };
    add_n(&mut index, EXPANSION_BUDGET - 96, "s0", "scan");
    add_n(&mut index, 200, "s1", "scanner");
    add_n(&mut index, 50, "s2", "scanning");
    let count = |q: &str, tag: &str| {
        let q = Query {
            text: Some(q.into()),
            capabilities: vec![tag.into()],
            limit: MAX_LIMIT,
            ..Query::default()
        };
        index.search(&q, T0).len()
    };
    // `scanner` (200 postings) does not fit the 96 left by `scan`; `scanning` (50) does.
    assert_eq!(count("scan", "s1"), 0);
    assert_eq!(count("scan", "s2"), 50);
    // Not a word itself, `scann` expands to both.
    assert_eq!(count("scann", "s1"), 200);
    assert_eq!(count("scann", "s2"), 50);
}
