//! Tokenization of manifest text and of query text.
//!
//! One rule for both sides: lowercase, split on every character that is not alphanumeric
//! (Unicode `char::is_alphanumeric`). An agent name `csv-analyst` therefore yields the
//! tokens `csv` and `analyst`, and so does the query text `CSV-Analyst`.

use std::borrow::Cow;
use std::collections::HashMap;

use souk_protocol::manifest::Manifest;

use crate::NAME_WEIGHT;

/// Most distinct query tokens (and capability terms) a query uses; the rest are ignored,
/// which bounds the work of one search.
pub(crate) const MAX_QUERY_TERMS: usize = 32;

/// Calls `f` with every token of `s`, in order, lowercased.
pub(crate) fn for_each_token(s: &str, mut f: impl FnMut(&str)) {
    for piece in s.split(|c: char| !c.is_alphanumeric()) {
        if piece.is_empty() {
            continue;
        }
        f(&lower(piece));
    }
}

fn lower(s: &str) -> Cow<'_, str> {
    if s.bytes().any(|b| b.is_ascii_uppercase() || !b.is_ascii()) {
        Cow::Owned(s.to_lowercase())
    } else {
        Cow::Borrowed(s)
    }
}

/// The weighted term frequencies of a manifest's text and its weighted length.
///
/// A token in the name counts [`NAME_WEIGHT`] times, one in the description once; the
/// length is the same weighted count over all tokens (BM25F-style field weighting).
pub(crate) fn document_terms(m: &Manifest) -> (HashMap<String, u32>, u32) {
    let mut tf: HashMap<String, u32> = HashMap::new();
    let mut len = 0u32;
    let mut add = |tok: &str, w: u32| {
        len = len.saturating_add(w);
        match tf.get_mut(tok) {
            Some(n) => *n = n.saturating_add(w),
            None => {
                tf.insert(tok.to_owned(), w);
            }
        }
    };
    for_each_token(&m.name, |t| add(t, NAME_WEIGHT));
    for_each_token(&m.description, |t| add(t, 1));
    (tf, len)
}

/// A query's text, parsed.
#[derive(Debug, Default)]
pub(crate) struct QueryTerms {
    /// Distinct text tokens, in first-seen order.
    pub(crate) tokens: Vec<String>,
    /// Distinct terms compared with capability tags: every token, plus every
    /// whitespace-separated word (lowercased, trimmed of leading and trailing characters
    /// that are not alphanumeric) so `text-to-speech` can match that tag as a whole.
    pub(crate) tag_terms: Vec<String>,
}

impl QueryTerms {
    /// Parses free query text.
    pub(crate) fn parse(text: &str) -> Self {
        let mut q = QueryTerms::default();
        for_each_token(text, |t| {
            if q.tokens.len() < MAX_QUERY_TERMS && !q.tokens.iter().any(|x| x == t) {
                q.tokens.push(t.to_owned());
            }
        });
        let mut tag_terms = q.tokens.clone();
        for word in text.split_whitespace() {
            let word = word.trim_matches(|c: char| !c.is_alphanumeric());
            if word.is_empty() {
                continue;
            }
            let word = lower(word);
            if tag_terms.len() < 2 * MAX_QUERY_TERMS && !tag_terms.iter().any(|x| *x == *word) {
                tag_terms.push(word.into_owned());
            }
        }
        q.tag_terms = tag_terms;
        q
    }

    /// Whether the text had no token at all.
    pub(crate) fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(s: &str) -> Vec<String> {
        let mut v = Vec::new();
        for_each_token(s, |t| v.push(t.to_owned()));
        v
    }

    #[test]
    fn splits_and_lowercases() {
        assert_eq!(
            tokens("CSV-analyst: per-column Stats, v2!"),
            ["csv", "analyst", "per", "column", "stats", "v2"]
        );
        assert_eq!(tokens("Ünïcode ÄRGER"), ["ünïcode", "ärger"]);
        assert!(tokens(" -- !! ").is_empty());
    }

    #[test]
    fn query_terms_dedupe_and_keep_whole_words_for_tags() {
        let q = QueryTerms::parse("Text-to-Speech text, speech");
        assert_eq!(q.tokens, ["text", "to", "speech"]);
        assert_eq!(q.tag_terms, ["text", "to", "speech", "text-to-speech"]);
        assert!(QueryTerms::parse("  ?? ").is_empty());
    }
}
