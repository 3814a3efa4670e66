//! `souk-testnet demo`: a whole hire on a fresh local network, narrated.
//!
//! N full nodes (the first on a fixed free port, the others bootstrapping to it), the example
//! agents published on the first two, a light client bootstrapping to the last two; then, as
//! the client: search, hire csv-analyst, follow its receipts, accept, export, verify.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use serde_json::Value;
use souk_node::agent_file::format_amount;

use crate::locate;
use crate::network::{self, LogTail, Network};
use crate::procs;
use crate::souk::{self, Hire, SearchHit, Souk, Step, VerifyReport, short};

/// `demo` options.
#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// Full nodes to start (1 to 32).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=32))]
    nodes: u16,
    /// Leave the network running at the end (also after a failure) and print how to use it.
    #[arg(long)]
    keep: bool,
    /// The example agents [default: ./examples, else the workspace's examples/].
    #[arg(long, value_name = "DIR")]
    examples: Option<PathBuf>,
}

/// Stages of the narrative.
const STAGES: usize = 9;
/// Longest wait for the hire to finish once it started.
const HIRE_TIMEOUT: Duration = Duration::from_secs(90);

/// The job: a small CSV for csv-analyst.
const SAMPLE_CSV: &str = "city,temp_c,rain_mm,wind_kmh\n\
                          Lisbon,21.5,0,14\n\
                          Oslo,9.0,3.2,22\n\
                          Cairo,33.1,0,9\n\
                          Lima,18.4,0.4,11\n\
                          Reykjavik,6.2,5.1,35\n";

/// Runs the demo; exit status 0 only if every step succeeded and the bundle verifies.
pub(crate) fn run(souk: Option<PathBuf>, args: &DemoArgs) -> anyhow::Result<ExitCode> {
    procs::install_signal_handler()?;
    let bin = locate::souk(souk, true)?;
    let examples = locate::examples(args.examples.as_deref())?;
    if !locate::have_python3() {
        anyhow::bail!(
            "the csv-analyst example agent runs with python3, which is not on PATH: install \
             Python 3 (standard library only)"
        );
    }
    let tmp = tempfile::Builder::new()
        .prefix("souk-testnet-")
        .tempdir()
        .context("cannot create a temporary directory")?;
    let dir = tmp.path().to_path_buf();
    procs::set_cleanup(Some(dir.clone()));

    let n = usize::from(args.nodes);
    println!(
        "Souk testnet demo: {n} full node{} and 1 light client, real `souk` processes on 127.0.0.1",
        if n == 1 { "" } else { "s" }
    );
    println!("  souk: {}", bin.display());
    println!(
        "  data: {} ({})",
        dir.display(),
        if args.keep {
            "kept, with the network running, at the end (--keep)"
        } else {
            "removed at the end; --keep leaves the network running"
        }
    );

    let mut demo = Demo {
        net: Network::new(Souk { bin }, dir.clone()),
        stage: 0,
        started: Instant::now(),
    };
    let outcome = demo.play(n, &examples);
    if procs::interrupted() {
        procs::wait_for_exit();
    }
    let passed = match &outcome {
        Ok(()) => true,
        Err(e) => {
            println!();
            println!("FAILED: {e:#}");
            if !args.keep {
                println!(
                    "  (run again with --keep to leave the network running and read each node's \
                     log, <data dir>/<node>/node.log)"
                );
            }
            false
        }
    };
    if args.keep {
        demo.keep(tmp.keep())?;
    } else {
        println!();
        println!("Stopping the network");
        let report = procs::stop_all();
        println!("  {}", report.describe());
        let shown = dir.display().to_string();
        match tmp.close() {
            Ok(()) => println!("  removed {shown}"),
            Err(e) => println!("  could not remove {shown}: {e}"),
        }
    }
    Ok(if passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

struct Demo {
    net: Network,
    stage: usize,
    started: Instant,
}

/// A tidy one-line rendering of a JSON value, cut to `max` characters.
fn compact(v: &Value, max: usize) -> String {
    let s = v.to_string();
    cut(&s, max)
}

fn cut(s: &str, max: usize) -> String {
    let s = s.replace('\n', " ");
    if s.chars().count() <= max {
        return s;
    }
    let mut out: String = s.chars().take(max.saturating_sub(3)).collect();
    out.push_str("...");
    out
}

fn secs(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

impl Demo {
    fn souk(&self) -> &Souk {
        &self.net.souk
    }

    fn dir(&self, name: &str) -> anyhow::Result<PathBuf> {
        Ok(self.net.node(name)?.data_dir.clone())
    }

    fn stage(&mut self, title: &str) {
        self.stage += 1;
        println!();
        println!("[{}/{STAGES}] {title}", self.stage);
        let _ = std::io::stdout().flush();
    }

    /// Prints a CLI command as the user would type it.
    fn shell(&self, data_dir: Option<&str>, args: &[&str]) {
        let dd = data_dir.map(Path::new);
        println!("  $ {}", Souk::shown(dd, args));
    }

    fn play(&mut self, n: usize, examples: &Path) -> anyhow::Result<()> {
        let full: Vec<String> = (0..n).map(|i| format!("node-{i}")).collect();

        // 1. Full nodes.
        self.stage(&format!(
            "Starting {n} full node{}",
            if n == 1 { "" } else { "s" }
        ));
        let port = network::free_port()?;
        self.net.spawn(&full[0], false, port, &[])?;
        let info = self.net.wait_ready(&full[0])?;
        let boot = self
            .net
            .node(&full[0])?
            .addrs
            .iter()
            .find(|a| a.contains(&format!("/tcp/{port}/")))
            .cloned()
            .with_context(|| format!("node-0 does not listen on port {port}"))?;
        println!(
            "  node-0  listens on 127.0.0.1:{port} (peer {}): the bootstrap node",
            short(&info.peer_id, 16)
        );
        for name in &full[1..] {
            self.net
                .spawn(name, false, 0, std::slice::from_ref(&boot))?;
        }
        for name in &full[1..] {
            let info = self.net.wait_ready(name)?;
            let addr = info.listen_addrs.first().cloned().unwrap_or_default();
            println!(
                "  {name}  listens on {} (peer {}), dials node-0",
                network::host_port(&addr),
                short(&info.peer_id, 16)
            );
        }
        if n > 1 {
            let t = Instant::now();
            let infos = self.net.wait_peers(&full, 1)?;
            let peers: Vec<String> = full
                .iter()
                .zip(&infos)
                .map(|(name, i)| format!("{name} {}", i.peers.len()))
                .collect();
            println!(
                "  connected in {} (peers: {})",
                secs(t.elapsed()),
                peers.join(", ")
            );
        }
        match info.sandbox.as_str() {
            "" | "none" => println!("  hired agents run unconfined: no sandbox on this machine"),
            how => println!("  hired agents run confined: {how}"),
        }

        // 2. Agents.
        self.stage("Publishing the example agents");
        let csv_toml = examples.join("csv-analyst").join("agent.toml");
        let csv = self.publish(&full[0], &csv_toml)?;
        let mut published = 1u64;
        let sum_node = full.get(1).unwrap_or(&full[0]).clone();
        if locate::summarizer_binary(examples).is_some() {
            let sum_toml = examples.join("text-summarizer").join("agent.toml");
            self.publish(&sum_node, &sum_toml)?;
            published += 1;
        } else {
            println!(
                "  (text-summarizer skipped: its binary target/release/souk-agent-summarizer is \
                 not built; `cargo build --release -p souk-agent-summarizer`)"
            );
        }
        if n > 2 {
            println!(
                "  {} publish nothing: they store, relay and serve manifests",
                full[2..].join(", ")
            );
        }

        // 3. Gossip.
        self.stage(&format!(
            "Gossip: waiting until every full node holds the {published} manifest{}",
            if published == 1 { "" } else { "s" }
        ));
        let t = Instant::now();
        let infos = self.net.wait_manifests(published)?;
        for (name, i) in &infos {
            println!(
                "  {name}  {} manifest{} (by gossip {}, by sync {}), {} agent{} of its own",
                i.manifests,
                if i.manifests == 1 { "" } else { "s" },
                i.metrics.gossip_accepted,
                i.metrics.sync_received,
                i.agents,
                if i.agents == 1 { "" } else { "s" }
            );
        }
        println!("  spread in {}", secs(t.elapsed()));

        // 4. Light client.
        let light = "light-0".to_owned();
        let via: Vec<String> = if n >= 2 {
            full[n - 2..].to_vec()
        } else {
            full.clone()
        };
        self.stage(&format!(
            "Starting {light}, a light client, bootstrapping to {}",
            via.join(" and ")
        ));
        let mut boots = Vec::new();
        for name in &via {
            if let Some(a) = self.net.node(name)?.addrs.first() {
                boots.push(a.clone());
            }
        }
        self.net.spawn(&light, true, 0, &boots)?;
        self.net.wait_ready(&light)?;
        let infos = self.net.wait_peers(std::slice::from_ref(&light), 1)?;
        let peers = infos.first().map_or(0, |i| i.peers.len());
        println!(
            "  {light} is up with {peers} peer{}: it keeps no catalog and searches through full nodes",
            if peers == 1 { "" } else { "s" }
        );

        // 5. Search.
        self.stage(&format!("{light} searches the network for \"csv\""));
        let light_dir = self.dir(&light)?;
        let served_before = self.search_served(&full);
        self.shell(Some(&light), &["search", "--json", "csv"]);
        let t = Instant::now();
        let provider_id = self.net.node(&full[0])?.node_id.clone();
        let hits: Vec<SearchHit> = network::wait_until(
            "the light client's search to find csv-analyst",
            network::NETWORK_TIMEOUT,
            || {
                self.net.check_alive()?;
                let hits: Vec<SearchHit> = self
                    .souk()
                    .json(Some(&light_dir), &["search", "--json", "csv"])?;
                Ok(hits.iter().any(|h| h.id == csv.manifest_id).then_some(hits))
            },
        )?;
        for h in &hits {
            let by = self.name_of(&h.provider);
            println!(
                "  found {}  manifest {}  provider {by}  {} {} per hire  [{}]",
                h.name,
                short(&h.id, 12),
                format_amount(h.per_hire),
                h.currency,
                h.capabilities.join(",")
            );
        }
        let served_after = self.search_served(&full);
        let answered: Vec<String> = full
            .iter()
            .filter(|name| served_after.get(*name) > served_before.get(*name))
            .cloned()
            .collect();
        if !answered.is_empty() {
            println!(
                "  answered by {} in {} (each manifest checked by {light} before ranking)",
                answered.join(", "),
                secs(t.elapsed())
            );
        }
        let hit = hits
            .iter()
            .find(|h| h.id == csv.manifest_id)
            .context("the search result vanished")?;
        if hit.provider != provider_id {
            anyhow::bail!(
                "csv-analyst's provider is {}, expected node-0",
                hit.provider
            );
        }

        // 6. Hire.
        self.stage(&format!(
            "{light} hires csv-analyst from node-0 (at most 1 USD)"
        ));
        let input = self.net.dir.join("input.json");
        let job = serde_json::json!({ "csv": SAMPLE_CSV });
        std::fs::write(&input, serde_json::to_string_pretty(&job)? + "\n")
            .with_context(|| format!("cannot write {}", input.display()))?;
        let rows = SAMPLE_CSV.lines().count().saturating_sub(1);
        println!(
            "  input.json: a CSV of {rows} rows ({})",
            SAMPLE_CSV.lines().next().unwrap_or_default()
        );
        let mut provider_log = LogTail::new(&self.net.node(&full[0])?.log);
        let mut client_log = LogTail::new(&self.net.node(&light)?.log);
        let input_arg = input.display().to_string();
        let hire_args = [
            "hire",
            csv.manifest_id.as_str(),
            "--input",
            input_arg.as_str(),
            "--max-price",
            "1",
            "--json",
        ];
        self.shell(
            Some(&light),
            &[
                "hire",
                short(&csv.manifest_id, 12),
                "--input",
                "input.json",
                "--max-price",
                "1",
                "--json",
            ],
        );
        let hire: Hire = self.souk().json(Some(&light_dir), &hire_args)?;
        println!(
            "  {light} sent a signed hire request; node-0 {} {} {}; {light} accepted: contract \
             signed",
            if hire.countered {
                "countered with"
            } else {
                "offered"
            },
            format_amount(hire.price),
            hire.currency
        );
        println!(
            "  hire {}  state {}  (the hire id is the hash of the contract)",
            short(&hire.hire_id, 16),
            hire.state
        );
        print_log(&full[0], &mut provider_log);

        // 7. Receipts.
        self.stage("Receipts, as node-0 signs them and light-0 checks them");
        self.shell(
            Some(&light),
            &["hire", "watch", "--json", short(&hire.hire_id, 12)],
        );
        let steps = self.watch(
            &light_dir,
            &hire.hire_id,
            &mut [
                (full[0].as_str(), &mut provider_log),
                (light.as_str(), &mut client_log),
            ],
        )?;
        let done: Hire = self.souk().json(
            Some(&light_dir),
            &["hire", "status", "--json", &hire.hire_id],
        )?;
        if done.state != "completed" {
            anyhow::bail!(
                "the hire ended in state {}{}",
                done.state,
                done.error
                    .as_deref()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default()
            );
        }
        println!(
            "  {} completed with {} receipts ({} streamed)",
            done.agent, done.entries, steps
        );
        match self.output(&light_dir, &hire.hire_id) {
            Ok(out) => {
                let text = out
                    .get("summary")
                    .and_then(Value::as_str)
                    .map_or_else(|| compact(&out, 200), |s| cut(s, 200));
                println!("  output: {text}");
            }
            Err(e) => println!("  (output not available: {e:#})"),
        }

        // 8. Accept.
        self.stage(&format!("{light} accepts the work"));
        self.shell(
            Some(&light),
            &["hire", "accept", "--json", short(&hire.hire_id, 12)],
        );
        let settled: Hire = self.souk().json(
            Some(&light_dir),
            &["hire", "accept", "--json", &hire.hire_id],
        )?;
        println!(
            "  {light} countersigned the receipt chain: verdict {}",
            settled.verdict.as_deref().unwrap_or("(none)")
        );
        let provider_dir = self.dir(&full[0])?;
        let seen: Hire = network::wait_until(
            "node-0 to receive the client's verdict",
            network::NETWORK_TIMEOUT,
            || {
                self.net.check_alive()?;
                let all: Vec<Hire> = self
                    .souk()
                    .json(Some(&provider_dir), &["hires", "--json"])?;
                Ok(all
                    .into_iter()
                    .find(|h| h.hire_id == hire.hire_id && h.verdict.is_some()))
            },
        )?;
        print_log(&full[0], &mut provider_log);
        println!(
            "  node-0 (provider) received the countersigned verdict: {}",
            seen.verdict.as_deref().unwrap_or("(none)")
        );

        // 9. Export and verify.
        self.stage("Export the receipts and verify them offline");
        let bundle = self.net.dir.join("run.souk");
        let bundle_arg = bundle.display().to_string();
        self.shell(
            Some(&light),
            &[
                "receipts",
                "export",
                short(&hire.hire_id, 12),
                "-o",
                "run.souk",
            ],
        );
        self.souk()
            .run(
                Some(&light_dir),
                &["receipts", "export", &hire.hire_id, "-o", &bundle_arg],
                souk::COMMAND_TIMEOUT,
            )?
            .ok()?;
        let size = std::fs::metadata(&bundle).map_or(0, |m| m.len());
        println!("  wrote run.souk ({size} bytes)");
        self.shell(None, &["verify", "run.souk"]);
        let text = self
            .souk()
            .run(None, &["verify", &bundle_arg], souk::COMMAND_TIMEOUT)?;
        for line in text.stdout.lines() {
            println!("    {line}");
        }
        let report: VerifyReport = {
            let out = self.souk().run(
                None,
                &["verify", "--json", &bundle_arg],
                souk::COMMAND_TIMEOUT,
            )?;
            serde_json::from_str(out.stdout.trim())
                .with_context(|| format!("`souk verify --json` printed: {}", out.stdout.trim()))?
        };
        if !report.valid {
            anyhow::bail!(
                "the bundle is invalid: rule {} at entry {}: {}",
                report.rule.as_deref().unwrap_or("?"),
                report.entry.map_or_else(|| "-".into(), |e| e.to_string()),
                report.detail.as_deref().unwrap_or("")
            );
        }
        let expect = |what: &str, got: Option<&str>, want: &str| -> anyhow::Result<()> {
            if got == Some(want) {
                Ok(())
            } else {
                anyhow::bail!(
                    "the bundle verifies but its {what} is {}, expected {want}",
                    got.unwrap_or("missing")
                )
            }
        };
        expect("state", report.state.as_deref(), "completed")?;
        expect("verdict", report.verdict.as_deref(), "accepted")?;
        expect("hire id", report.hire_id.as_deref(), &hire.hire_id)?;
        expect(
            "provider",
            report.provider.as_deref(),
            &self.net.node(&full[0])?.node_id,
        )?;
        expect(
            "client",
            report.client.as_deref(),
            &self.net.node(&light)?.node_id,
        )?;

        println!();
        println!(
            "PASS in {}: {light} found {} through the network, hired it from node-0, followed {} \
             signed receipts, accepted the work; the bundle verifies offline ({} entries, {}, \
             verdict {}).",
            secs(self.started.elapsed()),
            report.agent.as_deref().unwrap_or("the agent"),
            done.entries,
            report.entries.unwrap_or(0),
            report.state.as_deref().unwrap_or(""),
            report.verdict.as_deref().unwrap_or("")
        );
        Ok(())
    }

    /// `souk agent publish FILE --json` on `node`.
    fn publish(&mut self, node: &str, file: &Path) -> anyhow::Result<souk::Published> {
        let dir = self.dir(node)?;
        let shown_file = file
            .parent()
            .and_then(Path::file_name)
            .map(|d| format!("examples/{}/agent.toml", d.to_string_lossy()))
            .unwrap_or_else(|| file.display().to_string());
        self.shell(Some(node), &["agent", "publish", "--json", &shown_file]);
        let file_arg = file.display().to_string();
        let p: souk::Published = self
            .souk()
            .json(Some(&dir), &["agent", "publish", "--json", &file_arg])
            .with_context(|| format!("{node} could not publish {}", file.display()))?;
        println!(
            "  {node} signed and announced {}: manifest {} (seq {})",
            p.name,
            short(&p.manifest_id, 12),
            p.seq
        );
        if let Some(rec) = self.net.nodes.iter_mut().find(|r| r.name == node) {
            rec.agents.push(p.name.clone());
        }
        Ok(p)
    }

    /// The node name for a node id, or the short id.
    fn name_of(&self, node_id: &str) -> String {
        self.net
            .nodes
            .iter()
            .find(|n| n.node_id == node_id)
            .map_or_else(|| short(node_id, 16).to_owned(), |n| n.name.clone())
    }

    /// Each full node's `search_served` counter (missing on error).
    fn search_served(&self, names: &[String]) -> std::collections::BTreeMap<String, u64> {
        let mut m = std::collections::BTreeMap::new();
        for name in names {
            if let Ok(rec) = self.net.node(name)
                && let Ok(i) = self.souk().info(&rec.data_dir)
            {
                m.insert(name.clone(), i.metrics.search_served);
            }
        }
        m
    }

    /// The hire's output, from the client's API.
    fn output(&self, light_dir: &Path, hire_id: &str) -> anyhow::Result<Value> {
        use souk_node::api::client::ApiClient;
        use souk_node::data_dir::DataDir;
        let client = ApiClient::connect(&DataDir::new(light_dir))?;
        Ok(client.get(&format!("/v1/hires/{hire_id}/output"))?)
    }

    /// Streams `souk hire watch --json`, printing each receipt as it arrives and the nodes'
    /// hire log lines in between. Returns the number of receipts seen.
    fn watch(
        &self,
        light_dir: &Path,
        hire_id: &str,
        logs: &mut [(&str, &mut LogTail)],
    ) -> anyhow::Result<u64> {
        let args = ["hire", "watch", "--json", hire_id];
        let mut child = self
            .souk()
            .command(Some(light_dir), &args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("cannot run souk hire watch")?;
        let (tx, rx) = mpsc::channel::<String>();
        let stdout = child.stdout.take();
        let reader = std::thread::spawn(move || {
            if let Some(out) = stdout {
                for line in BufReader::new(out).lines() {
                    let Ok(line) = line else { break };
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            }
        });
        let stderr = child.stderr.take();
        let err_reader = std::thread::spawn(move || {
            let mut s = String::new();
            if let Some(mut e) = stderr {
                let _ = std::io::Read::read_to_string(&mut e, &mut s);
            }
            s
        });
        let deadline = Instant::now() + HIRE_TIMEOUT;
        let mut first: Option<u64> = None;
        let mut count = 0u64;
        let result = loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(line) => {
                    match serde_json::from_str::<Step>(&line) {
                        Ok(step) => {
                            let t0 = *first.get_or_insert(step.time);
                            print_step(&step, t0);
                            count += 1;
                        }
                        Err(_) => println!("    {line}"),
                    }
                    for (name, log) in logs.iter_mut() {
                        print_log(name, log);
                    }
                    let _ = std::io::stdout().flush();
                }
                Err(RecvTimeoutError::Timeout) => {
                    for (name, log) in logs.iter_mut() {
                        print_log(name, log);
                    }
                    if Instant::now() >= deadline {
                        break Err(anyhow::anyhow!(
                            "the hire did not finish within {} s",
                            HIRE_TIMEOUT.as_secs()
                        ));
                    }
                    if let Err(e) = self.net.check_alive() {
                        break Err(e);
                    }
                }
                Err(RecvTimeoutError::Disconnected) => break Ok(()),
            }
        };
        if result.is_err() {
            let _ = child.kill();
        }
        let status = child.wait().context("cannot wait for souk hire watch")?;
        let _ = reader.join();
        let stderr = err_reader.join().unwrap_or_default();
        for (name, log) in logs.iter_mut() {
            print_log(name, log);
        }
        result?;
        if !status.success() {
            anyhow::bail!("`souk hire watch` failed ({status}): {}", stderr.trim());
        }
        Ok(count)
    }

    /// `--keep`: record the network and leave it running.
    fn keep(&mut self, dir: PathBuf) -> anyhow::Result<()> {
        let state = self.net.write_state()?;
        procs::detach();
        let d = dir.display();
        let me = locate::self_command();
        let souk = locate::souk_command(&self.net.souk.bin);
        println!();
        println!("The network is still running (--keep): {d}");
        println!("  state:  {}", state.display());
        println!("  logs:   {d}/<node>/node.log");
        println!("  status: {me} status --dir {d}");
        println!("  try:    {souk} --data-dir {d}/light-0 hires");
        println!("          {souk} --data-dir {d}/light-0 search text");
        println!("          {souk} --data-dir {d}/node-0 node info");
        println!("  stop:   {me} down --dir {d}   (then remove the directory: rm -r {d})");
        Ok(())
    }
}

fn print_step(s: &Step, t0: u64) {
    let dt = s.time.saturating_sub(t0) as f64 / 1000.0;
    let mut text = s.summary.clone();
    if s.kind == "tool-call"
        && let Some(result) = s.payload.as_ref().and_then(|p| p.get("result"))
    {
        text = format!("{text} -> {}", compact(result, 70));
    }
    println!(
        "  #{:<3} +{dt:<5.2}s {:<11} {}",
        s.seq,
        s.kind,
        cut(&text, 110)
    );
}

fn print_log(name: &str, log: &mut LogTail) {
    for ev in log.events() {
        let level = if ev.level == "INFO" {
            String::new()
        } else {
            format!("{} ", ev.level)
        };
        println!("  [{name} log] {level}{}", cut(&ev.message, 110));
    }
}
