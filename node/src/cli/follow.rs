//! Following a hire to its end (`hire --wait`, `hire watch`): steps as they arrive, the
//! agent's questions, Ctrl-C (following stops, the hire goes on), and the outcome: the
//! output of a completed hire, or why it did not complete.

use std::io::Write;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use souk_node::api::client::{ApiClient, ClientError};
use souk_node::hire::{HireRecord, ReceiptsView, StepView};
use souk_protocol::Hash;
use souk_protocol::hire::HireState;

use super::Ctx;
use super::error::failed;
use super::interrupt::OnInterrupt;

/// How long a completed hire's output may trail its `completed` entry.
const OUTPUT_GRACE: Duration = Duration::from_secs(30);

/// The 12-digit form of a hire id the CLI prints (any unique prefix is accepted back).
pub(crate) fn short(id: &Hash) -> String {
    id.to_hex()[..12].to_owned()
}

/// Ctrl-C while following `id`: says the hire goes on and how to watch or cancel it.
pub(crate) fn interrupt_guard(ctx: &Ctx, id: &Hash) -> anyhow::Result<OnInterrupt> {
    let watch = ctx.cmd(&format!("hire watch {}", short(id)));
    let cancel = ctx.cmd(&format!("hire cancel {}", short(id)));
    let message = format!(
        "stopped following hire {}; the hire goes on.\n  watch it:  {watch}\n  cancel it: {cancel}",
        short(id)
    );
    let mut details = serde_json::Map::new();
    details.insert("hire_id".into(), json!(id.to_hex()));
    details.insert("watch".into(), json!(watch));
    details.insert("cancel".into(), json!(cancel));
    Ok(OnInterrupt::install(message, details, ctx.json)?)
}

/// One line for a receipt step, as `hire watch` prints it.
pub(crate) fn step_line(s: &StepView) -> String {
    let mut summary = s.summary.replace('\n', " ");
    if summary.chars().count() > 110 {
        summary = summary.chars().take(107).collect::<String>() + "...";
    }
    format!("  #{:<4} {:<16} {summary}", s.seq, s.kind)
}

/// How steps are shown while following.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Show {
    /// One line per step on stdout (the steps are the data: `hire watch`).
    Lines,
    /// One line per step on stderr (progress; the output is the data: `hire --wait`).
    Progress,
    /// One JSON object per step.
    JsonLines,
    /// Nothing (the final JSON says it all).
    Nothing,
}

/// A followed hire at its end: its record and its last step (the terminal entry).
pub(crate) struct Ended {
    /// The record.
    pub(crate) record: HireRecord,
    /// The terminal step, if it was seen.
    pub(crate) last: Option<StepView>,
}

/// Follows a hire's receipts until it ends.
pub(crate) fn follow(
    ctx: &Ctx,
    client: &ApiClient,
    id: &Hash,
    show: Show,
) -> anyhow::Result<Ended> {
    let mut from = 0u64;
    let mut asked = false;
    let mut last = None;
    loop {
        let view: ReceiptsView = client.get(&format!(
            "/v1/hires/{id}/receipts?from={from}&wait_ms=20000"
        ))?;
        for s in view.steps {
            match show {
                Show::Lines => out!("{}", step_line(&s)),
                Show::Progress => eprintln!("{}", step_line(&s)),
                Show::JsonLines => out!("{}", serde_json::to_string(&s)?),
                Show::Nothing => {}
            }
            from = s.seq + 1;
            last = Some(s);
        }
        std::io::stdout().flush().ok();
        let r = view.hire;
        if r.state == HireState::InputRequired
            && !asked
            && matches!(show, Show::Lines | Show::Progress)
        {
            asked = true;
            if let Some(q) = &r.question {
                eprintln!("the agent asks: {q}");
            }
            eprintln!(
                "answer with: {}",
                ctx.cmd(&format!("hire answer {} '<answer>'", short(&r.hire_id)))
            );
        }
        if r.state != HireState::InputRequired {
            asked = false;
        }
        if let (Some(e), false) = (&r.error, r.state.is_terminal()) {
            return Err(failed!(
                "following hire {} stopped: {e}; see `{}`",
                short(id),
                ctx.cmd(&format!("hire status {}", short(id)))
            ));
        }
        if r.state.is_terminal() && from >= r.entries {
            return Ok(Ended { record: r, last });
        }
    }
}

/// The output of a completed hire; it may trail the `completed` entry by a moment.
pub(crate) fn output_of_completed(client: &ApiClient, id: &Hash) -> anyhow::Result<Value> {
    let give_up = Instant::now() + OUTPUT_GRACE;
    loop {
        match client.get::<Value>(&format!("/v1/hires/{id}/output")) {
            Ok(v) => return Ok(v),
            Err(ClientError::Api { status: 404, .. }) if Instant::now() < give_up => {
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Why a hire that ended did not complete: the node's recorded reason, else its terminal
/// entry's summary.
pub(crate) fn reason(ended: &Ended) -> String {
    ended
        .record
        .error
        .clone()
        .or_else(|| ended.last.as_ref().map(|s| s.summary.clone()))
        .unwrap_or_else(|| ended.record.state.to_string())
}

/// Reports a followed hire's outcome: a completed hire's output on stdout (pretty JSON, or
/// `{"hire", "output"}` under `--json`) and how to settle it; a hire that did not complete is
/// an error (exit 1) saying why and where to look.
pub(crate) fn report_outcome(ctx: &Ctx, client: &ApiClient, ended: &Ended) -> anyhow::Result<()> {
    let r = &ended.record;
    let id = short(&r.hire_id);
    if r.state == HireState::Completed && r.error.is_none() {
        let output = output_of_completed(client, &r.hire_id)?;
        if ctx.json {
            super::print_json(&json!({ "hire": r, "output": output }))?;
        } else {
            out!("{}", serde_json::to_string_pretty(&output)?);
            eprintln!(
                "hire {id} completed; settle it with `{}` or `{}`",
                ctx.cmd(&format!("hire accept {id}")),
                ctx.cmd(&format!("hire reject {id} --reason '...'"))
            );
        }
        return Ok(());
    }
    if ctx.json {
        super::print_json(&json!({ "hire": r, "output": Value::Null }))?;
    }
    Err(failed!(
        "hire {id} {}: {}; see its steps with `{}`",
        r.state,
        reason(ended),
        ctx.cmd(&format!("receipts show {id}"))
    ))
}
