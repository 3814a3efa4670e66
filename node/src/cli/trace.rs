//! The readable trace of a hire (`souk receipts show`), built from a receipt bundle: each
//! step with its time, kind and a summary of its disclosed payload; questions with their
//! answers; the decision tree (each decision heads the tool calls, network calls, checkpoints
//! and questions that follow it, up to the next decision); the failure, highlighted with the
//! step before it; and the verification verdict, whose violation is pinned to its entry.
//!
//! Pure: bytes in, [`Trace`] and text lines out. It never judges a bundle itself: the
//! verdict is given ([`super::verify::verdict`]); entries are decoded here only to be shown.

use std::collections::HashMap;

use serde::Serialize;
use serde_json::Value;
use souk_node::hire::summarize;
use souk_protocol::bundle::Bundle;
use souk_protocol::manifest::Manifest;
use souk_protocol::negotiation::Contract;
use souk_protocol::receipt::{Attestation, Canceler, EntryKind, SignedEntry};
use souk_protocol::rules::Violation;
use souk_protocol::signed::Signed;
use souk_protocol::verify::BundleReport;

use super::units::{format_duration_ms, money};

/// Longest summary of one step, in characters.
const SUMMARY_CHARS: usize = 160;

/// A hire's trace.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Trace {
    /// The hire id (from the contract), if it decodes.
    pub(crate) hire_id: Option<String>,
    /// The agent's name (from the manifest), if it decodes.
    pub(crate) agent: Option<String>,
    /// The provider's node id.
    pub(crate) provider: Option<String>,
    /// The client's node id.
    pub(crate) client: Option<String>,
    /// The agreed price in currency units (`0.5 USD`); advisory.
    pub(crate) price: Option<String>,
    /// The agreed deadline (ms since the Unix epoch).
    pub(crate) deadline: Option<u64>,
    /// The state the chain reached (`completed`, `failed`, `working`, ...).
    pub(crate) state: String,
    /// Every entry in chain order.
    pub(crate) steps: Vec<Step>,
    /// How the hire went wrong, if it did.
    pub(crate) failure: Option<Failure>,
    /// The client's verdict and its reason, if the bundle carries an attestation.
    pub(crate) settlement: Option<Settlement>,
    /// What the hire used, as its terminal entry records it (what a bill is computed from).
    pub(crate) usage: Option<UsageView>,
    /// The verification verdict.
    pub(crate) verification: Verification,
}

/// A terminal entry's usage record.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct UsageView {
    /// The agreed price in currency units (`0.5 USD`).
    pub(crate) price: String,
    /// From `started` to the end, ms.
    pub(crate) wall_ms: u64,
    /// Decisions and tool calls.
    pub(crate) steps: u64,
    /// Network calls the egress proxy saw.
    pub(crate) network_calls: u64,
}

/// One receipt entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Step {
    /// Position in the chain.
    pub(crate) seq: u64,
    /// Provider clock, ms since the Unix epoch.
    pub(crate) time: u64,
    /// Milliseconds since the first entry.
    pub(crate) offset_ms: u64,
    /// Kind name (`decision`, `tool-call`, ...), or `undecodable`.
    pub(crate) kind: String,
    /// One line for people.
    pub(crate) summary: String,
    /// The decision this step belongs to, if any (the tree).
    pub(crate) parent: Option<u64>,
    /// The disclosed private payload, if the bundle opens it.
    pub(crate) payload: Option<Value>,
    /// For a question: the seq of the entry that delivered its answer, if any.
    pub(crate) answered_by: Option<u64>,
    /// What verification found wrong at this entry, if anything.
    pub(crate) problem: Option<String>,
}

/// A hire that did not complete.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Failure {
    /// The terminal entry.
    pub(crate) seq: u64,
    /// `failed`, `canceled` or `expired`.
    pub(crate) kind: String,
    /// Why, as the entry says.
    pub(crate) reason: String,
    /// The last step before it: where the work was when it went wrong.
    pub(crate) last_step: Option<u64>,
}

/// The client's countersignature.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Settlement {
    /// `accepted` or `disputed`.
    pub(crate) verdict: String,
    /// The client's reason.
    pub(crate) reason: String,
}

/// The verification verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Verification {
    /// Whether every rule holds.
    pub(crate) valid: bool,
    /// The first rule broken (`R6`, ...).
    pub(crate) rule: Option<String>,
    /// The entry where verification stopped, if the rule is about one.
    pub(crate) entry: Option<u64>,
    /// What is wrong.
    pub(crate) detail: Option<String>,
}

impl Trace {
    /// The trace of `bytes`, whose verdict is `verdict`.
    pub(crate) fn build(bytes: &[u8], verdict: &Result<BundleReport, Violation>) -> Self {
        let verification = match verdict {
            Ok(_) => Verification {
                valid: true,
                rule: None,
                entry: None,
                detail: None,
            },
            Err(v) => Verification {
                valid: false,
                rule: Some(v.rule.code().to_owned()),
                entry: v.entry,
                detail: Some(v.detail.clone()),
            },
        };
        let mut trace = Trace {
            hire_id: None,
            agent: None,
            provider: None,
            client: None,
            price: None,
            deadline: None,
            state: "unknown".into(),
            steps: Vec::new(),
            failure: None,
            settlement: None,
            usage: None,
            verification,
        };
        let Ok(bundle) = Bundle::decode_bytes(bytes) else {
            return trace;
        };
        if let Ok(m) = Signed::<Manifest>::decode_bytes(&bundle.manifest) {
            trace.agent = Some(m.body().name.clone());
        }
        if let Ok(c) = Contract::decode_bytes(&bundle.contract) {
            trace.hire_id = Some(c.hire_id().to_hex());
            trace.provider = Some(c.provider().to_string());
            trace.client = Some(c.client().to_string());
            let t = c.terms();
            trace.price = Some(money(t.price.amount, &t.price.currency));
            trace.deadline = Some(t.deadline);
        }
        if let Some(a) = bundle
            .attestation
            .as_deref()
            .and_then(|raw| Signed::<Attestation>::decode_bytes(raw).ok())
        {
            trace.settlement = Some(Settlement {
                verdict: a.body().verdict.as_str().into(),
                reason: a.body().reason.clone(),
            });
        }
        let payloads: HashMap<u64, Value> = bundle
            .disclosures
            .iter()
            .filter_map(|d| Some((d.seq, serde_json::from_slice(&d.payload).ok()?)))
            .collect();
        let (steps, failure) = steps(&bundle.entries, &payloads);
        trace.steps = steps;
        trace.failure = failure;
        trace.usage = bundle
            .entries
            .last()
            .and_then(|raw| SignedEntry::decode_bytes(raw).ok())
            .and_then(|e| {
                e.body().kind.usage().map(|u| UsageView {
                    price: money(u.price.amount, &u.price.currency),
                    wall_ms: u.wall_ms,
                    steps: u.steps,
                    network_calls: u.network_calls,
                })
            });
        if let Some(at) = trace.verification.entry
            && let Some(step) = trace.steps.get_mut(at as usize)
        {
            step.problem = Some(format!(
                "{}: {}",
                trace.verification.rule.as_deref().unwrap_or_default(),
                trace.verification.detail.as_deref().unwrap_or_default()
            ));
        }
        trace.state = match verdict {
            Ok(r) => r.state.as_str().into(),
            // Unverified: what the entries say, for orientation only.
            Err(_) => trace
                .steps
                .iter()
                .rev()
                .find(|s| TERMINAL.contains(&s.kind.as_str()))
                .map_or("working", |s| s.kind.as_str())
                .into(),
        };
        trace
    }

    /// The trace as text lines.
    pub(crate) fn render(&self) -> Vec<String> {
        let mut lines = Vec::new();
        let or_unknown = |v: &Option<String>| v.clone().unwrap_or_else(|| "(unreadable)".into());
        lines.push(format!("hire      {}", or_unknown(&self.hire_id)));
        lines.push(format!("agent     {}", or_unknown(&self.agent)));
        lines.push(format!("provider  {}", or_unknown(&self.provider)));
        lines.push(format!("client    {}", or_unknown(&self.client)));
        if let Some(p) = &self.price {
            lines.push(format!(
                "price     {p} (advisory: agreed, not charged by Souk)"
            ));
        }
        if let (Some(d), Some(first)) = (self.deadline, self.steps.first()) {
            lines.push(format!(
                "deadline  {} ({} after the first step)",
                rfc3339(d),
                format_duration_ms(d.saturating_sub(first.time))
            ));
        }
        if let Some(first) = self.steps.first() {
            lines.push(format!("started   {}", rfc3339(first.time)));
        }
        lines.push(format!("state     {}", self.state));
        lines.push(String::new());
        lines.push(format!("steps ({}):", self.steps.len()));
        let last_child: Vec<bool> = self
            .steps
            .iter()
            .enumerate()
            .map(|(i, s)| {
                s.parent.is_some()
                    && self
                        .steps
                        .get(i + 1)
                        .is_none_or(|next| next.parent != s.parent)
            })
            .collect();
        let failed_at = self.failure.as_ref().map(|f| f.seq);
        for (i, s) in self.steps.iter().enumerate() {
            let branch = match (s.parent, last_child[i]) {
                (None, _) => "",
                (Some(_), false) => "├─ ",
                (Some(_), true) => "└─ ",
            };
            let mark = if Some(s.seq) == failed_at || s.problem.is_some() {
                "✗"
            } else {
                " "
            };
            let mut summary = s.summary.clone();
            if let Some(a) = s.answered_by {
                summary.push_str(&format!(" (answered at #{a})"));
            }
            lines.push(format!(
                "{mark} #{:<4} {:>9}  {:<18} {summary}",
                s.seq,
                offset(s.offset_ms),
                format!("{branch}{}", s.kind)
            ));
            if let Some(p) = &s.problem {
                lines.push(format!("         ^ verification fails here: {p}"));
            }
        }
        lines.push(String::new());
        match &self.failure {
            Some(f) => {
                lines.push(format!(
                    "outcome   {} at #{}: {}",
                    f.kind.to_uppercase(),
                    f.seq,
                    f.reason
                ));
                match f.last_step.and_then(|l| self.steps.get(l as usize)) {
                    Some(l) => lines.push(format!(
                        "          the last step before it: #{} {} {}",
                        l.seq, l.kind, l.summary
                    )),
                    None => lines.push("          before any step of the agent".into()),
                }
            }
            None => lines.push(format!("outcome   {}", self.state)),
        }
        if let Some(u) = &self.usage {
            lines.push(format!(
                "usage     {} agreed (advisory), {} of work, {} steps, {} network calls",
                u.price,
                format_duration_ms(u.wall_ms),
                u.steps,
                u.network_calls
            ));
        }
        match &self.settlement {
            Some(s) if s.reason.is_empty() => lines.push(format!("verdict   {}", s.verdict)),
            Some(s) => lines.push(format!("verdict   {}: {}", s.verdict, s.reason)),
            None => lines.push("verdict   none (not settled)".into()),
        }
        let v = &self.verification;
        if v.valid {
            lines.push("verified  valid: every signature and rule checks out".into());
        } else {
            let at = v
                .entry
                .map(|e| format!(" at entry #{e}"))
                .unwrap_or_default();
            lines.push(format!(
                "verified  INVALID{at}: rule {} broken: {}",
                v.rule.as_deref().unwrap_or_default(),
                v.detail.as_deref().unwrap_or_default()
            ));
        }
        lines
    }
}

/// Kind names that end a chain.
const TERMINAL: [&str; 4] = ["completed", "failed", "canceled", "expired"];

/// The entries as steps, with the decision tree and question/answer links, and the failure
/// if the chain ends in one.
fn steps(entries: &[Vec<u8>], payloads: &HashMap<u64, Value>) -> (Vec<Step>, Option<Failure>) {
    let mut out: Vec<Step> = Vec::with_capacity(entries.len());
    let mut failure = None;
    let mut decision: Option<u64> = None;
    let mut open_question: Option<usize> = None;
    let mut first_time = None;
    for (i, raw) in entries.iter().enumerate() {
        let seq = i as u64;
        let entry = match SignedEntry::decode_bytes(raw) {
            Ok(e) => e,
            Err(e) => {
                out.push(Step {
                    seq,
                    time: 0,
                    offset_ms: 0,
                    kind: "undecodable".into(),
                    summary: e.to_string(),
                    parent: None,
                    payload: None,
                    answered_by: None,
                    problem: None,
                });
                continue;
            }
        };
        let body = entry.body();
        let first = *first_time.get_or_insert(body.time);
        let payload = payloads.get(&seq).cloned();
        let parent = match &body.kind {
            EntryKind::Decision => {
                decision = Some(seq);
                None
            }
            EntryKind::Started { .. }
            | EntryKind::Completed { .. }
            | EntryKind::Failed { .. }
            | EntryKind::Canceled { .. }
            | EntryKind::Expired { .. } => {
                decision = None;
                None
            }
            EntryKind::ToolCall { .. }
            | EntryKind::NetworkCall(_)
            | EntryKind::Checkpoint { .. }
            | EntryKind::InputRequested
            | EntryKind::InputProvided => decision,
        };
        let ended = |reason: String| Failure {
            seq,
            kind: body.kind.name().into(),
            reason,
            last_step: out
                .iter()
                .rev()
                .find(|s| s.kind != "started")
                .map(|s| s.seq),
        };
        match &body.kind {
            EntryKind::Failed { code, message, .. } => {
                failure = Some(ended(format!("{message} ({})", code.as_str())));
            }
            EntryKind::Canceled { by, reason, .. } => {
                let by = match by {
                    Canceler::Client => "the client",
                    Canceler::Provider => "the provider",
                };
                failure = Some(ended(format!("{reason} (canceled by {by})")));
            }
            EntryKind::Expired { deadline, .. } => {
                failure = Some(ended(format!("the deadline {} passed", rfc3339(*deadline))));
            }
            EntryKind::InputRequested => open_question = Some(out.len()),
            EntryKind::InputProvided => {
                if let Some(q) = open_question.take() {
                    out[q].answered_by = Some(seq);
                }
            }
            _ => {}
        }
        out.push(Step {
            seq,
            time: body.time,
            offset_ms: body.time.saturating_sub(first),
            kind: body.kind.name().into(),
            summary: summary(&body.kind, payload.as_ref()),
            parent,
            payload,
            answered_by: None,
            problem: None,
        });
    }
    (out, failure)
}

/// A step's one line: its public fields and a summary of its disclosed payload.
fn summary(kind: &EntryKind, payload: Option<&Value>) -> String {
    let field = |key: &str| payload.and_then(|p| p.get(key));
    let text = match kind {
        EntryKind::Decision => match (field("type").and_then(Value::as_str), field("text")) {
            (Some("note"), Some(Value::String(t))) => format!("note: {t}"),
            (_, Some(Value::String(t))) => t.clone(),
            _ => "decision (payload not disclosed)".into(),
        },
        EntryKind::ToolCall { tool } => match (field("args"), field("result")) {
            (Some(a), Some(r)) => format!("{tool} {a} -> {r}"),
            (Some(a), None) => format!("{tool} {a}"),
            _ => tool.clone(),
        },
        EntryKind::InputRequested => match field("question") {
            Some(Value::String(q)) => format!("question: {q}"),
            Some(q) => format!("question: {q}"),
            None => "question (payload not disclosed)".into(),
        },
        EntryKind::InputProvided => match field("answer") {
            Some(a) => format!("answer: {a}"),
            None => "answer delivered (payload not disclosed)".into(),
        },
        EntryKind::NetworkCall(c) => {
            let mut s = summarize(kind, payload);
            if let Some(slot) = &c.slot {
                s.push_str(&format!(" [credential {slot}, {}]", c.mode.as_str()));
            }
            if let Some(d) = c.denial {
                s.push_str(&format!(" DENIED ({})", d.as_str()));
            }
            s
        }
        _ => summarize(kind, payload),
    };
    let one_line = text.replace(['\n', '\r'], " ");
    if one_line.chars().count() > SUMMARY_CHARS {
        one_line.chars().take(SUMMARY_CHARS - 3).collect::<String>() + "..."
    } else {
        one_line
    }
}

/// `+1.234s`, `+2m 3s`.
fn offset(ms: u64) -> String {
    if ms < 60_000 {
        format!("+{}.{:03}s", ms / 1000, ms % 1000)
    } else {
        format!("+{}", format_duration_ms(ms))
    }
}

/// A timestamp (ms) as RFC 3339 UTC.
fn rfc3339(ms: u64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms);
    humantime::format_rfc3339_millis(t).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use souk_protocol::verify::{SignatureCheck, verify_bundle_bytes};

    fn vector(name: &str) -> Vec<u8> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../spec/vectors/bundles")
            .join(name);
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    fn trace(name: &str) -> Trace {
        let bytes = vector(name);
        Trace::build(&bytes, &verify_bundle_bytes(&bytes, SignatureCheck::Batch))
    }

    #[test]
    fn a_completed_hire_is_a_tree_of_decisions() {
        let t = trace("valid-completed-accepted.souk");
        assert!(t.verification.valid);
        assert_eq!(t.state, "completed");
        assert_eq!(t.failure, None);
        assert_eq!(t.steps.len(), 8);
        // Every child points at a decision that comes before it.
        for s in &t.steps {
            if let Some(p) = s.parent {
                assert!(p < s.seq, "{s:?}");
                assert_eq!(t.steps[p as usize].kind, "decision", "{s:?}");
            }
        }
        assert!(t.steps.iter().any(|s| s.parent.is_some()), "{:#?}", t.steps);
        assert!(t.settlement.is_some());
        let text = t.render().join("\n");
        assert!(text.contains("verified  valid"), "{text}");
        assert!(text.contains("└─ "), "{text}");
        assert!(!text.contains('✗'), "{text}");
        // The bill's inputs, from the completed entry: the fixture's 6 middle entries are
        // 2 decisions and 2 tool calls (steps), 1 network call and 1 checkpoint.
        let usage = t
            .usage
            .as_ref()
            .unwrap_or_else(|| panic!("no usage: {t:#?}"));
        assert_eq!((usage.steps, usage.network_calls), (4, 1), "{usage:?}");
        assert_eq!(usage.price, "2 USD");
        assert!(text.contains("usage     "), "{text}");
    }

    #[test]
    fn a_failed_hire_names_the_failure_and_the_step_before_it() {
        let t = trace("valid-failed-disputed.souk");
        assert!(t.verification.valid);
        assert_eq!(t.state, "failed");
        let f = t
            .failure
            .clone()
            .unwrap_or_else(|| panic!("no failure: {t:#?}"));
        assert_eq!(f.kind, "failed");
        assert_eq!(f.seq + 1, t.steps.len() as u64);
        assert!(f.last_step.is_some_and(|l| l < f.seq), "{f:?}");
        let text = t.render().join("\n");
        assert!(
            text.contains(&format!("outcome   FAILED at #{}", f.seq)),
            "{text}"
        );
        assert!(text.contains("the last step before it"), "{text}");
        assert!(text.contains("verdict   disputed"), "{text}");
        assert!(text.contains('✗'), "{text}");
    }

    #[test]
    fn a_broken_chain_is_pinned_to_its_entry() {
        let t = trace("invalid-r6-entry-prev.souk");
        assert!(!t.verification.valid);
        assert_eq!(t.verification.rule.as_deref(), Some("R6"));
        assert_eq!(t.verification.entry, Some(5));
        assert!(
            t.steps[5]
                .problem
                .as_deref()
                .is_some_and(|p| p.starts_with("R6"))
        );
        let text = t.render().join("\n");
        assert!(text.contains("verification fails here: R6"), "{text}");
        assert!(text.contains("INVALID at entry #5: rule R6"), "{text}");
    }

    #[test]
    fn garbage_still_gets_a_verdict() {
        let bytes = b"not a bundle".to_vec();
        let t = Trace::build(&bytes, &verify_bundle_bytes(&bytes, SignatureCheck::Batch));
        assert!(t.steps.is_empty());
        assert_eq!(t.verification.rule.as_deref(), Some("B1"));
        let text = t.render().join("\n");
        assert!(text.contains("INVALID: rule B1"), "{text}");
    }

    #[test]
    fn questions_link_to_their_answers_and_long_lines_are_cut() {
        let q = summary(
            &EntryKind::InputRequested,
            Some(&serde_json::json!({"question": "which column?", "type": "question"})),
        );
        assert_eq!(q, "question: which column?");
        let long = "x".repeat(500);
        let d = summary(
            &EntryKind::Decision,
            Some(&serde_json::json!({"text": long, "type": "decision"})),
        );
        assert_eq!(d.chars().count(), SUMMARY_CHARS);
        assert!(d.ends_with("..."));
        assert_eq!(
            summary(&EntryKind::Decision, None),
            "decision (payload not disclosed)"
        );
    }
}
