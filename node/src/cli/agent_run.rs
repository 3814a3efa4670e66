//! `souk agent run AGENT.toml --input FILE`: the local dev loop. Runs the agent exactly as a
//! hire would ([`souk_node::local_run`]: this node's key and settings, the same runtime,
//! sandbox, egress proxy and limits) with no network and no client, prints its steps live
//! and its output, answers its questions from `--answer`, and with `-o FILE` writes the
//! run's receipt bundle, which `souk verify` accepts.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use serde_json::{Value, json};
use souk_node::agent_file::AgentSpec;
use souk_node::local_run::{LocalRun, LocalRunError, RunOptions};
use souk_protocol::Hash;
use souk_protocol::hire::HireState;

use super::Ctx;
use super::error::{failed, usage};
use super::follow::{short, step_line};
use super::units::parse_duration_ms;

/// How long a completed hire's output may trail its `completed` entry.
const OUTPUT_GRACE: Duration = Duration::from_secs(30);

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// The agent file.
    file: PathBuf,
    /// The job input: a JSON file, or `-` for stdin.
    #[arg(long, value_name = "FILE")]
    input: PathBuf,
    /// An answer to the agent's next question: JSON, or plain text (sent as a JSON string).
    /// Repeat for several questions, in order.
    #[arg(long = "answer", value_name = "JSON")]
    answers: Vec<String>,
    /// How long the run may take, e.g. 90s, 10m [default: the agent's maximum].
    #[arg(long, value_name = "DUR")]
    deadline: Option<String>,
    /// Write the run's receipt bundle (every payload disclosed) to FILE.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    bundle: Option<PathBuf>,
}

pub(crate) fn run(ctx: &Ctx, args: RunArgs) -> anyhow::Result<ExitCode> {
    let mut spec = AgentSpec::load(&args.file)
        .map_err(|e| failed!("{} is not a valid agent file: {e}", args.file.display()))?;
    // One run: a process kept waiting for a second hire would only be killed.
    spec.run.warm = 0;
    spec.run.prepared = 0;
    let text = if args.input.as_os_str() == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
            .context("cannot read the input from stdin")?;
        s
    } else {
        std::fs::read_to_string(&args.input)
            .with_context(|| format!("cannot read {}", args.input.display()))?
    };
    let input: Value = serde_json::from_str(&text)
        .map_err(|e| usage!("{} is not JSON: {e}", args.input.display()))?;
    let answers: Vec<Value> = args
        .answers
        .iter()
        .map(|a| serde_json::from_str(a).unwrap_or_else(|_| Value::String(a.clone())))
        .collect();
    let deadline_ms = args
        .deadline
        .as_deref()
        .map(|d| {
            parse_duration_ms(d)
                .map_err(|e| usage!("--deadline {d:?} is not a duration (e.g. 90s, 10m): {e}"))
        })
        .transpose()?;
    // The node's warnings (the agent's stderr when it crashes, a missing sandbox) are the
    // developer's diagnostics here: show them (RUST_LOG overrides).
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
    let dir = &ctx.dir;
    if !dir.is_initialized() {
        return Err(usage!(
            "{} is not initialized: run `{}` first (the run's receipts are signed with this node's key)",
            dir.root().display(),
            ctx.cmd("init")
        ));
    }
    let config = dir.config()?;
    let opts = RunOptions {
        key: dir.identity()?,
        hires: super::node::hire_settings(dir, &config)?,
        temp_root: super::node::work_dir(dir, &config).join("runs"),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let run = LocalRun::start(opts).await?;
        let result = drive(ctx, &run, spec, input, answers, deadline_ms, args.bundle).await;
        run.stop().await;
        result
    })
}

/// Hires the agent on the local pair of nodes, follows it and reports.
async fn drive(
    ctx: &Ctx,
    run: &LocalRun,
    spec: AgentSpec,
    input: Value,
    answers: Vec<Value>,
    deadline_ms: Option<u64>,
    bundle: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    let name = spec.name.clone();
    // A refused hire (the input breaks the schema, a deadline over the limit) is the run
    // failing, not a local error.
    let record = run
        .hire(spec, input, deadline_ms)
        .await
        .map_err(|e| match e {
            LocalRunError::Hire(h) => failed!("{h}"),
            e => anyhow::Error::new(e),
        })?;
    let id = record.hire_id;
    if !ctx.json {
        eprintln!(
            "running {name} as hire {} (local: no network, no client)",
            short(&id)
        );
    }
    let client = run.client();
    let mut answers = answers.into_iter();
    let mut from = 0u64;
    let mut open_question: Option<u64> = None;
    let record = loop {
        let view = client.hires.receipts(id, from, 20_000).await?;
        for s in view.steps {
            if !ctx.json {
                eprintln!("{}", step_line(&s));
            }
            if s.kind == "input-requested" {
                open_question = Some(s.seq);
            }
            from = s.seq + 1;
        }
        let r = view.hire;
        if r.state == HireState::InputRequired && open_question.take().is_some() {
            let question = r.question.clone().unwrap_or(Value::Null);
            let Some(answer) = answers.next() else {
                client
                    .hires
                    .cancel(id, "no answer given to the agent's question".into())
                    .await?;
                return Err(failed!(
                    "the agent asks: {question}; give the answer with --answer JSON (one per question, in order)"
                ));
            };
            if !ctx.json {
                eprintln!("  answering: {answer}");
            }
            client.hires.answer(id, answer).await?;
        }
        // Ended, or broken off with an error while not terminal.
        if (r.state.is_terminal() && from >= r.entries)
            || r.closed.is_some()
            || (r.error.is_some() && !r.state.is_terminal())
        {
            break r;
        }
    };
    let output = if record.state == HireState::Completed && record.error.is_none() {
        Some(output_of(run, id).await?)
    } else {
        None
    };
    let written = match bundle {
        Some(path) => {
            let bytes = client.hires.bundle(id, true).await?;
            std::fs::write(&path, bytes)
                .with_context(|| format!("cannot write {}", path.display()))?;
            Some(path)
        }
        None => None,
    };
    if ctx.json {
        super::print_json(&json!({
            "hire": record,
            "output": output,
            "bundle": written.as_ref().map(|p| p.display().to_string()),
        }))?;
    } else if let Some(o) = &output {
        out!("{}", serde_json::to_string_pretty(o)?);
    }
    if let Some(p) = &written
        && !ctx.json
    {
        eprintln!(
            "wrote the run's receipts to {}; check them with `{}`",
            p.display(),
            ctx.cmd(&format!("verify {}", p.display()))
        );
    }
    if output.is_none() {
        let why = record
            .error
            .clone()
            .unwrap_or_else(|| record.state.to_string());
        return Err(failed!("the run {}: {why}", record.state));
    }
    Ok(ExitCode::SUCCESS)
}

/// The output of the completed hire `id` (it may trail the `completed` entry by a moment).
async fn output_of(run: &LocalRun, id: Hash) -> anyhow::Result<Value> {
    let give_up = Instant::now() + OUTPUT_GRACE;
    let mut pause = Duration::from_millis(10);
    loop {
        if let Some(v) = run.client().hires.output(id).await? {
            return Ok(v);
        }
        if Instant::now() >= give_up {
            return Err(failed!("the run completed but its output did not arrive"));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(250));
    }
}
