//! `souk-agent-summarizer`: an example Souk agent in Rust, an extractive text summarizer.
//!
//! It speaks the agent protocol (`spec/agent-protocol.md`): one JSON object per line on
//! stdin and stdout. Input `{"text": "...", "sentences"?: n}` (n in 1..=20, default 3).
//! Steps: a decision, a `keywords` tool call (the 10 most frequent words, stopwords
//! excluded), a decision, a `rank-sentences` tool call (each sentence scored by the
//! frequency of the keywords it contains), a checkpoint, then the result
//! `{"summary": "...", "keywords": [...]}`: the best `n` sentences in their original order.
//! A run resumed from the checkpoint skips the ranking. Bad input ends with an `error`
//! message; a broken pipe or a malformed `start` exits with status 1.

use std::collections::BTreeMap;
use std::io::{self, BufRead, Write};
use std::process::ExitCode;

use serde_json::{Value, json};

/// How many keywords the `keywords` tool reports.
const TOP_KEYWORDS: usize = 10;
/// Summary length when the input does not say.
const DEFAULT_SENTENCES: u64 = 3;
/// Longest summary.
const MAX_SENTENCES: u64 = 20;
/// Most ranked sentences listed in the `rank-sentences` result.
const MAX_RANKED_SHOWN: usize = 20;

/// Common English words that say nothing about the topic.
const STOPWORDS: &[&str] = &[
    "a", "about", "above", "after", "again", "against", "all", "also", "am", "an", "and", "any",
    "are", "as", "at", "be", "because", "been", "before", "being", "below", "between", "both",
    "but", "by", "can", "could", "did", "do", "does", "doing", "down", "during", "each", "even",
    "few", "for", "from", "further", "had", "has", "have", "having", "he", "her", "here", "hers",
    "him", "his", "how", "however", "i", "if", "in", "into", "is", "it", "its", "itself", "just",
    "let", "like", "made", "make", "many", "may", "me", "might", "more", "most", "much", "must",
    "my", "no", "nor", "not", "now", "of", "off", "on", "once", "one", "only", "or", "other",
    "our", "ours", "out", "over", "own", "said", "same", "say", "says", "she", "should", "so",
    "some", "such", "than", "that", "the", "their", "theirs", "them", "then", "there", "these",
    "they", "this", "those", "through", "to", "too", "two", "under", "until", "up", "upon", "us",
    "use", "used", "very", "was", "we", "were", "what", "when", "where", "which", "while", "who",
    "whom", "why", "will", "with", "within", "without", "would", "yet", "you", "your", "yours",
];

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("souk-agent-summarizer: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Why a job stopped: bad input (reported to the node) or broken I/O (exit 1).
#[derive(Debug)]
enum Failure {
    Input(String),
    Io(io::Error),
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Self {
        Failure::Io(e)
    }
}

/// Writes protocol messages to stdout, one line each, flushed.
struct Out<W: Write>(W);

impl<W: Write> Out<W> {
    fn send(&mut self, mut msg: Value, kind: &str) -> io::Result<()> {
        if let Value::Object(m) = &mut msg {
            m.insert("type".into(), Value::from(kind));
        }
        serde_json::to_writer(&mut self.0, &msg)?;
        self.0.write_all(b"\n")?;
        self.0.flush()
    }
}

fn run() -> io::Result<()> {
    let mut line = String::new();
    io::stdin().lock().read_line(&mut line)?;
    let start: Value = serde_json::from_str(&line).map_err(io::Error::other)?;
    if start["type"] != "start" {
        return Err(io::Error::other("the first message is not \"start\""));
    }
    let mut out = Out(io::stdout().lock());
    match job(&start["input"], &start["checkpoint"], &mut out) {
        Ok(result) => out.send(json!({ "output": result }), "result"),
        Err(Failure::Input(message)) => out.send(json!({ "message": message }), "error"),
        Err(Failure::Io(e)) => Err(e),
    }
}

/// The whole job: every step goes to `out`; returns the output.
fn job<W: Write>(input: &Value, checkpoint: &Value, out: &mut Out<W>) -> Result<Value, Failure> {
    let text = match input.get("text") {
        Some(Value::String(t)) if !t.trim().is_empty() => t,
        _ => {
            return Err(Failure::Input(
                "input.text must be a non-empty string".into(),
            ));
        }
    };
    let wanted = match input.get("sentences") {
        None | Some(Value::Null) => DEFAULT_SENTENCES,
        Some(v) => v
            .as_u64()
            .filter(|n| (1..=MAX_SENTENCES).contains(n))
            .ok_or_else(|| {
                Failure::Input(format!("input.sentences must be 1 to {MAX_SENTENCES}"))
            })?,
    };
    let wanted = usize::try_from(wanted).unwrap_or(1);
    let sentences = split_sentences(text);

    if let Some((keywords, selected)) = from_checkpoint(checkpoint, sentences.len()) {
        let text = "resuming from the checkpoint: the ranking is done".to_owned();
        out.send(json!({ "text": text }), "decision")?;
        return Ok(result(&sentences, &selected, &keywords));
    }

    let word_count = words(text).count();
    let decision = format!(
        "{} sentences, {word_count} words; extracting the top {TOP_KEYWORDS} keywords",
        sentences.len()
    );
    out.send(json!({ "text": decision }), "decision")?;
    let top = keywords(text, TOP_KEYWORDS);
    let counts: Vec<Value> = top
        .iter()
        .map(|(w, c)| json!({"word": w, "count": c}))
        .collect();
    out.send(
        json!({"tool": "keywords", "args": {"top": TOP_KEYWORDS}, "result": counts}),
        "tool_call",
    )?;

    let keep = wanted.min(sentences.len());
    let decision = format!(
        "ranking {} sentences by keyword frequency; keeping {keep}",
        sentences.len()
    );
    out.send(json!({ "text": decision }), "decision")?;
    let scores = rank_sentences(&sentences, &top);
    let order = by_score(&scores);
    let ranked: Vec<Value> = order
        .iter()
        .take(MAX_RANKED_SHOWN)
        .map(|&i| json!({"index": i, "score": scores[i]}))
        .collect();
    out.send(
        json!({
            "tool": "rank-sentences",
            "args": {"sentences": sentences.len(), "keywords": top.iter().map(|k| &k.0).collect::<Vec<_>>()},
            "result": ranked,
        }),
        "tool_call",
    )?;

    let mut selected: Vec<usize> = order.into_iter().take(keep).collect();
    selected.sort_unstable();
    let keywords: Vec<String> = top.into_iter().map(|(w, _)| w).collect();
    out.send(
        json!({"state": {"keywords": keywords, "selected": selected}}),
        "checkpoint",
    )?;
    Ok(result(&sentences, &selected, &keywords))
}

/// The keywords and selected sentence indexes of a checkpoint, if it is one of ours and fits
/// the text.
fn from_checkpoint(checkpoint: &Value, sentences: usize) -> Option<(Vec<String>, Vec<usize>)> {
    let keywords = checkpoint
        .get("keywords")?
        .as_array()?
        .iter()
        .map(|k| k.as_str().map(str::to_owned))
        .collect::<Option<Vec<_>>>()?;
    let selected = checkpoint
        .get("selected")?
        .as_array()?
        .iter()
        .map(|i| i.as_u64().and_then(|i| usize::try_from(i).ok()))
        .collect::<Option<Vec<_>>>()?;
    selected
        .iter()
        .all(|&i| i < sentences)
        .then_some((keywords, selected))
}

fn result(sentences: &[String], selected: &[usize], keywords: &[String]) -> Value {
    let summary: Vec<&str> = selected
        .iter()
        .filter_map(|&i| sentences.get(i).map(String::as_str))
        .collect();
    json!({"summary": summary.join(" "), "keywords": keywords})
}

/// Lowercase words: runs of letters, digits and inner apostrophes.
fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !(c.is_alphanumeric() || c == '\'' || c == '’'))
        .map(|w| w.trim_matches(|c| c == '\'' || c == '’').to_lowercase())
        .filter(|w| !w.is_empty())
}

/// True for words worth counting: not a stopword, not a number, at least 3 characters.
fn is_content_word(word: &str) -> bool {
    word.chars().count() >= 3
        && !word.chars().all(char::is_numeric)
        && STOPWORDS.binary_search(&word).is_err()
}

/// The `top` most frequent content words with their counts, most frequent first (ties in
/// alphabetical order).
fn keywords(text: &str, top: usize) -> Vec<(String, usize)> {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for w in words(text).filter(|w| is_content_word(w)) {
        *counts.entry(w).or_default() += 1;
    }
    let mut all: Vec<(String, usize)> = counts.into_iter().collect();
    all.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    all.truncate(top);
    all
}

/// Sentences: text up to `.`, `!` or `?` followed by whitespace (or the end), or up to a
/// blank line; whitespace inside is collapsed.
fn split_sentences(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        current.push(c);
        let next = chars.peek().copied();
        let end_mark = matches!(c, '.' | '!' | '?') && next.is_none_or(char::is_whitespace);
        let paragraph = c == '\n' && next == Some('\n');
        if end_mark || paragraph {
            push_sentence(&mut out, &current);
            current.clear();
        }
    }
    push_sentence(&mut out, &current);
    out
}

fn push_sentence(out: &mut Vec<String>, raw: &str) {
    let s = raw.split_whitespace().collect::<Vec<_>>().join(" ");
    if !s.is_empty() {
        out.push(s);
    }
}

/// Each sentence's score: the summed counts of the keywords it contains (each occurrence),
/// divided by the square root of its length in words, rounded to 3 decimals.
fn rank_sentences(sentences: &[String], keywords: &[(String, usize)]) -> Vec<f64> {
    let freq: BTreeMap<&str, usize> = keywords.iter().map(|(w, c)| (w.as_str(), *c)).collect();
    sentences
        .iter()
        .map(|s| {
            let mut len = 0usize;
            let mut hits = 0usize;
            for w in words(s) {
                len += 1;
                hits += freq.get(w.as_str()).copied().unwrap_or(0);
            }
            if len == 0 {
                return 0.0;
            }
            let score = hits as f64 / (len as f64).sqrt();
            (score * 1000.0).round() / 1000.0
        })
        .collect()
}

/// Sentence indexes, best score first (ties: earlier first).
fn by_score(scores: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "Rust is a systems language. The borrow checker makes Rust memory safe! \
        Cats sleep a lot.\n\nRust programs compile to fast native code, and Rust tooling is good? \
        The weather was fine";

    #[test]
    fn stopwords_are_sorted_for_binary_search() {
        assert!(STOPWORDS.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn keyword_extraction() {
        let top = keywords(TEXT, 3);
        assert_eq!(top[0], ("rust".to_owned(), 4));
        assert_eq!(top.len(), 3);
        assert!(top.iter().all(|(w, _)| is_content_word(w)));
        // Ties are alphabetical; stopwords ("the", "is", "and") never appear.
        let all = keywords(TEXT, 100);
        assert!(
            all.iter()
                .all(|(w, _)| !["the", "is", "and", "a"].contains(&w.as_str()))
        );
        assert_eq!(all[1].0, "borrow");
        assert!(keywords("the and of 2024 42", 10).is_empty());
    }

    #[test]
    fn sentence_splitting() {
        let s = split_sentences(TEXT);
        assert_eq!(
            s,
            [
                "Rust is a systems language.",
                "The borrow checker makes Rust memory safe!",
                "Cats sleep a lot.",
                "Rust programs compile to fast native code, and Rust tooling is good?",
                "The weather was fine",
            ]
        );
        assert_eq!(
            split_sentences("Version 1.5 is out. Yes"),
            ["Version 1.5 is out.", "Yes"]
        );
        assert!(split_sentences("  \n ").is_empty());
    }

    #[test]
    fn summarization_keeps_the_keyword_rich_sentences_in_order() {
        let mut out = Out(Vec::new());
        let output = job(
            &json!({"text": TEXT, "sentences": 2}),
            &Value::Null,
            &mut out,
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(
            output["summary"],
            json!(
                "The borrow checker makes Rust memory safe! \
                 Rust programs compile to fast native code, and Rust tooling is good?"
            )
        );
        assert_eq!(output["keywords"][0], json!("rust"));
        let lines = String::from_utf8(out.0).unwrap_or_else(|e| panic!("{e}"));
        let types: Vec<String> = lines
            .lines()
            .map(|l| {
                let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
                v["type"].as_str().unwrap_or_default().to_owned()
            })
            .collect();
        assert_eq!(
            types,
            [
                "decision",
                "tool_call",
                "decision",
                "tool_call",
                "checkpoint"
            ]
        );

        // Resuming from the checkpoint gives the same output without redoing the work.
        let checkpoint: Value = lines
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|v| v["type"] == "checkpoint")
            .map(|v| v["state"].clone())
            .unwrap_or_else(|| panic!("no checkpoint"));
        let mut out = Out(Vec::new());
        let resumed = job(
            &json!({"text": TEXT, "sentences": 2}),
            &checkpoint,
            &mut out,
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(resumed, output);
        assert_eq!(String::from_utf8_lossy(&out.0).lines().count(), 1);
    }

    #[test]
    fn bad_input() {
        let mut out = Out(Vec::new());
        for input in [
            json!({}),
            json!({"text": "  "}),
            json!({"text": "x", "sentences": 0}),
        ] {
            assert!(matches!(
                job(&input, &Value::Null, &mut out),
                Err(Failure::Input(_))
            ));
        }
    }
}
