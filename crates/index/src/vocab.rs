//! The vocabulary: every text token that some indexed manifest contains, kept ordered with
//! its inner suffixes, so a query word can be expanded to the indexed words it is a prefix
//! of or a substring of (`summar` -> `summarizes`). It owns only words, never documents,
//! and must stay bounded per word (see [`MAX_INFIX_WORD`]).

use std::collections::BTreeSet;
use std::ops::Bound;

/// Query words shorter than this (in characters) match only exactly; inner suffixes
/// shorter than this are not kept.
pub const MIN_EXPAND_CHARS: usize = 3;
/// Most indexed words one query word expands to (prefix matches first).
pub const MAX_EXPANSIONS: usize = 8;
/// Words longer than this (in characters) are found by prefix but not by substring: their
/// inner suffixes are not kept, which bounds the vocabulary's size per word.
pub const MAX_INFIX_WORD: usize = 32;
/// Most suffix entries one substring lookup walks, which bounds its cost.
pub const MAX_SUFFIX_SCAN: usize = 64;

/// How an indexed word matched a query word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Match {
    /// The query word is a proper prefix of the indexed word.
    Prefix,
    /// The query word occurs inside the indexed word, not at its start.
    Infix,
}

/// Ordered words and their inner suffixes.
#[derive(Debug, Clone, Default)]
pub(crate) struct Vocab {
    words: BTreeSet<Box<str>>,
    /// `(suffix, word)` for every suffix of `word` that starts after its first character
    /// and has at least [`MIN_EXPAND_CHARS`] characters (words of at most
    /// [`MAX_INFIX_WORD`] characters only).
    suffixes: BTreeSet<(Box<str>, Box<str>)>,
}

/// The inner suffixes of `word` kept for substring lookups.
pub(crate) fn inner_suffixes(word: &str) -> impl Iterator<Item = &str> {
    let chars = word.chars().count();
    let keep = chars <= MAX_INFIX_WORD;
    word.char_indices()
        .enumerate()
        .skip(1)
        .take_while(move |(i, _)| keep && chars - i >= MIN_EXPAND_CHARS)
        .map(move |(_, (at, _))| &word[at..])
}

impl Vocab {
    /// Adds a word that just got its first posting.
    pub(crate) fn add(&mut self, word: &str) {
        if !self.words.insert(word.into()) {
            return;
        }
        for s in inner_suffixes(word) {
            self.suffixes.insert((s.into(), word.into()));
        }
    }

    /// Removes a word whose last posting is gone.
    pub(crate) fn remove(&mut self, word: &str) {
        if !self.words.remove(word) {
            return;
        }
        for s in inner_suffixes(word) {
            self.suffixes
                .remove(&(Box::<str>::from(s), Box::<str>::from(word)));
        }
    }

    /// Whether no word is indexed.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.words.is_empty() && self.suffixes.is_empty()
    }

    /// Every indexed word, in order.
    #[cfg(test)]
    pub(crate) fn words(&self) -> impl Iterator<Item = &str> {
        self.words.iter().map(|w| &**w)
    }

    /// The indexed words (other than `token` itself) that `token` expands to, at most
    /// [`MAX_EXPANSIONS`]: first the words it is a proper prefix of, in lexicographic order;
    /// then, while room is left, the words it occurs inside of, in the order of the suffix
    /// starting at the match (then the word), among the first [`MAX_SUFFIX_SCAN`] suffix
    /// entries that start with `token`. Tokens shorter than [`MIN_EXPAND_CHARS`] expand to
    /// nothing.
    pub(crate) fn expand<'a>(&'a self, token: &str, out: &mut Vec<(&'a str, Match)>) {
        out.clear();
        if token.chars().count() < MIN_EXPAND_CHARS {
            return;
        }
        for w in self
            .words
            .range::<str, _>((Bound::Excluded(token), Bound::Unbounded))
            .take_while(|w| w.starts_with(token))
            .take(MAX_EXPANSIONS)
        {
            out.push((w, Match::Prefix));
        }
        if out.len() == MAX_EXPANSIONS {
            return;
        }
        let from: (Box<str>, Box<str>) = (token.into(), Box::default());
        for (_, w) in self
            .suffixes
            .range(from..)
            .take_while(|(s, _)| s.starts_with(token))
            .take(MAX_SUFFIX_SCAN)
        {
            if out.iter().any(|(x, _)| *x == &**w) {
                continue;
            }
            out.push((w, Match::Infix));
            if out.len() == MAX_EXPANSIONS {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand(v: &Vocab, t: &str) -> Vec<(String, Match)> {
        let mut out = Vec::new();
        v.expand(t, &mut out);
        out.into_iter().map(|(w, m)| (w.to_owned(), m)).collect()
    }

    #[test]
    fn prefix_then_infix() {
        let mut v = Vocab::default();
        for w in [
            "summarizes",
            "summary",
            "summar",
            "resummarize",
            "sum",
            "ärger",
        ] {
            v.add(w);
        }
        assert_eq!(
            expand(&v, "summar"),
            [
                ("summarizes".to_owned(), Match::Prefix),
                ("summary".to_owned(), Match::Prefix),
                ("resummarize".to_owned(), Match::Infix),
            ]
        );
        assert_eq!(
            expand(&v, "mari"),
            [
                ("resummarize".to_owned(), Match::Infix),
                ("summarizes".to_owned(), Match::Infix)
            ]
        );
        assert_eq!(expand(&v, "rge"), [("ärger".to_owned(), Match::Infix)]);
        assert!(expand(&v, "su").is_empty(), "too short to expand");
        v.remove("resummarize");
        v.remove("resummarize");
        assert_eq!(
            expand(&v, "mari"),
            [("summarizes".to_owned(), Match::Infix)]
        );
        for w in ["summarizes", "summary", "summar", "sum", "ärger"] {
            v.remove(w);
        }
        assert!(v.is_empty());
    }

    #[test]
    fn bounded() {
        let mut v = Vocab::default();
        for i in 0..50 {
            v.add(&format!("abc{i:02}"));
            v.add(&format!("x{i:02}abc"));
        }
        let long = "q".repeat(MAX_INFIX_WORD) + "abc";
        v.add(&long);
        let got = expand(&v, "abc");
        assert_eq!(got.len(), MAX_EXPANSIONS);
        assert!(got.iter().all(|(_, m)| *m == Match::Prefix));
        assert_eq!(got[0].0, "abc00");
        let got = expand(&v, "00abc");
        assert_eq!(got, [("x00abc".to_owned(), Match::Infix)]);
        assert!(
            expand(&v, "qqqabc").is_empty(),
            "long words keep no suffixes"
        );
        assert_eq!(inner_suffixes("abcde").collect::<Vec<_>>(), ["bcde", "cde"]);
    }
}
