//! `souk-testnet run SCENARIO.toml`: a scenario on real `souk` processes. Starts the
//! network ([`setup`]), follows every node's event stream and resources ([`observe`]), runs
//! one uninterrupted reference hire, then the workload ([`workload`]) and the fault timeline
//! ([`faults`]; a forking provider: [`fork`]) together for the scenario's duration; brings
//! every node back, waits for the hires to end, checks them ([`steps`]), and writes the
//! report (`report.json`, plots, `report.md`). Figures come from the events ([`outcome`]);
//! exit status 0 only if every assertion holds ([`verdict`]).

mod faults;
mod file;
mod fork;
mod live;
mod observe;
mod outcome;
mod record;
mod rng;
mod setup;
mod steps;
mod verdict;
mod workload;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;

pub(crate) use file::Scenario;
pub(crate) use observe::{Seen, read_proc};
pub(crate) use outcome::{delivery_ratio, spreads, stale_nodes, superseded};
pub(crate) use rng::Rng;
pub(crate) use setup::offers;
pub(crate) use verdict::{Facts, assertions};
pub(crate) use workload::Publication;

use crate::network::{Network, now_ms};
use crate::report::data::{Delivery, FaultMark, HireRun, ManifestRun, NodeSummary, RunData};
use crate::souk::Souk;
use crate::{locate, procs};
use live::Live;
use observe::Observations;
use workload::{Asked, Ended, HireRequest};

/// `run` options.
#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// The scenario file (see testnet/scenarios/).
    #[arg(value_name = "SCENARIO.toml")]
    scenario: PathBuf,
    /// Where the report, the bundles and the nodes' data directories go [default:
    /// ./testnet-runs/<scenario>-<time>].
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Seed of the random choices [default: the scenario's].
    #[arg(long, value_name = "N")]
    seed: Option<u64>,
    /// Print the report summary as JSON on stdout (progress still goes to stderr).
    #[arg(long)]
    json: bool,
    /// Run every node in this process (propagation scenarios; up to 2000 full nodes).
    #[arg(long)]
    in_process: bool,
}

/// Runs a scenario.
pub(crate) fn run(souk: Option<PathBuf>, args: &RunArgs) -> anyhow::Result<ExitCode> {
    let mut s = Scenario::load(&args.scenario)?;
    if let Some(seed) = args.seed {
        s.seed = seed;
    }
    let out = match &args.out {
        Some(o) => o.clone(),
        None => PathBuf::from("testnet-runs").join(format!("{}-{}", s.name, now_ms() / 1000)),
    };
    if out.join("network").exists() {
        anyhow::bail!(
            "{} holds an earlier run (network/); pass another --out or remove it",
            out.display()
        );
    }
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    let out = std::path::absolute(&out)?;
    if !locate::have_python3() && !s.agents.is_empty() {
        anyhow::bail!("the scenario agents run with python3, which is not on PATH");
    }
    eprintln!(
        "scenario {} (seed {}): {}\nnodes' data: {}/network",
        s.name,
        s.seed,
        s.description,
        out.display()
    );
    let data = if args.in_process {
        anyhow::ensure!(
            s.clock.is_none(),
            "a scenario with [clock] runs as processes (the clock is per process): drop --in-process"
        );
        crate::inprocess::run(&s, &out)?
    } else {
        anyhow::ensure!(
            s.network.full <= 64 && s.network.light <= 64,
            "at most 64 full and 64 light nodes as processes; --in-process runs up to 2000 full nodes"
        );
        procs::install_signal_handler()?;
        let bin = locate::souk(souk, true)?;
        let result = execute(&s, Souk { bin }, &out);
        let report = procs::stop_all();
        eprintln!("stopped the network: {}", report.describe());
        result?
    };
    let files = crate::report::write(&out, &data)?;
    let passed = data.assertions.iter().all(|a| a.passed);
    if args.json {
        let summary = crate::report::stats::summarize(&data);
        println!(
            "{}",
            serde_json::json!({ "passed": passed, "summary": summary, "assertions": data.assertions, "report": files.markdown })
        );
    } else {
        println!();
        for a in &data.assertions {
            println!(
                "{} {:<22} {}   (want {})",
                if a.passed { "ok  " } else { "FAIL" },
                a.name,
                a.observed,
                a.expected
            );
        }
        println!(
            "{}: report {}",
            if passed { "PASS" } else { "FAIL" },
            files.markdown.display()
        );
    }
    Ok(if passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The run itself; the caller stops the processes whatever happens.
fn execute(s: &Scenario, souk: Souk, out: &std::path::Path) -> anyhow::Result<RunData> {
    let t0 = now_ms();
    let mut net = Network::new(souk, out.join("network"));
    net.gate = s.needs_gate();
    if let Some(c) = s.clock {
        net.clock = Some(format!("{}@{t0}", c.rate));
        eprintln!(
            "the nodes' clock runs {}x real time: 1 day in {:.2} s (souk node run --testnet-clock)",
            c.rate,
            86_400.0 / f64::from(c.rate)
        );
    }
    if net.gate {
        eprintln!(
            "partitions and latency through the nodes' testnet gate (souk node run --testnet-gate)"
        );
    }
    std::fs::create_dir_all(&net.dir)?;
    setup::start_nodes(&mut net, s)?;
    let obs = Arc::new(Observations::default());
    let offers = setup::offers(s)?;
    let live = Live::new(net, obs.clone())?;
    let stop_sampling = Arc::new(AtomicBool::new(false));
    let sampler = observe::sample_resources(live.pids.clone(), obs.clone(), stop_sampling.clone());

    // Agents, seen by every full node before the work starts.
    let (full, light) = s.node_names();
    let publications = Arc::new(Mutex::new(Vec::<Publication>::new()));
    let mut node_ids = HashMap::new();
    {
        let net = live
            .net
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for o in &offers {
            let (id, seq) = setup::publish(&net, o)?;
            if let Ok(mut p) = publications.lock() {
                p.push(Publication {
                    id,
                    seq,
                    node: o.node.clone(),
                    at_ms: now_ms(),
                });
            }
        }
        for n in &net.nodes {
            node_ids.insert(n.name.clone(), n.node_id.clone());
        }
        if !offers.is_empty() {
            net.wait_manifests(offers.len() as u64)?;
        }
    }
    let providers: Vec<String> = {
        let mut p: Vec<String> = offers.iter().map(|o| o.node.clone()).collect();
        p.dedup();
        p
    };
    let clients: Vec<String> = match s.workload.clients.as_str() {
        "light" => light.clone(),
        "full" => full.clone(),
        _ => full.iter().chain(&light).cloned().collect(),
    };
    let handles: Vec<(String, String)> = offers
        .iter()
        .filter(|o| o.name == s.workload.agent)
        .map(|o| {
            (
                o.node.clone(),
                format!(
                    "{}/{}",
                    node_ids.get(&o.node).cloned().unwrap_or_default(),
                    o.name
                ),
            )
        })
        .collect();
    let w = &s.workload;
    if w.hires > 0 && handles.is_empty() {
        anyhow::bail!(
            "workload.agent {:?} is published by no node of the scenario",
            w.agent
        );
    }
    let input = out.join("input.json");
    std::fs::write(
        &input,
        serde_json::to_vec(&w.input.clone().unwrap_or(serde_json::Value::Null))?,
    )?;
    let reqs: Vec<HireRequest> = (0..w.deadlines.len().max(1))
        .map(|i| HireRequest {
            input: input.clone(),
            max_price: w.max_price.clone(),
            deadline: s.deadline_of(i),
            retry_busy: w.retry_busy.clone(),
        })
        .collect();
    let bundles = out.join("bundles");
    let stop_answering = Arc::new(AtomicBool::new(false));
    let answerer = w.answer.clone().map(|a| {
        workload::answer_questions(live.clone(), clients.clone(), a, stop_answering.clone())
    });

    // The reference: one hire with no fault anywhere.
    let reference = if w.hires > 0 {
        eprintln!("reference hire (no faults) from {}", clients[0]);
        let mut asked = Asked {
            client: clients[0].clone(),
            provider: handles[0].0.clone(),
            asked_at_ms: now_ms(),
            hire_id: None,
            attempts: 0,
            last_error: None,
        };
        let give_up = Instant::now() + Duration::from_secs(60);
        workload::hire_until_contracted(&live, &mut asked, &handles[0].1, &reqs[0], give_up);
        let id = asked.hire_id.clone().with_context(|| {
            format!(
                "the reference hire could not be made: {}",
                asked.last_error.clone().unwrap_or_default()
            )
        })?;
        let deadline = Instant::now() + s.drain.max(Duration::from_secs(60));
        let ended = loop {
            let all = workload::client_hires(&live, &clients[..1]);
            if let Some((c, h)) = all.get(&id)
                && workload::is_terminal(&h.state)
            {
                break workload::check(&live, c, h.clone(), &bundles);
            }
            anyhow::ensure!(Instant::now() < deadline, "the reference hire did not end");
            std::thread::sleep(Duration::from_millis(100));
        };
        anyhow::ensure!(
            ended.record.state == "completed" && ended.verified == Some(true),
            "the reference hire did not complete with a verified chain ({}; {})",
            ended.record.state,
            ended.error.clone().unwrap_or_default()
        );
        let steps = steps::logical_steps(ended.steps.as_deref().unwrap_or_default()).0;
        eprintln!(
            "reference: {} steps, output {}",
            steps.len(),
            ended.output.clone().unwrap_or_default()
        );
        Some((id, (steps, ended.output.clone())))
    } else {
        None
    };

    // The workload and the faults, together.
    let start = Instant::now();
    let work_start_ms = now_ms();
    let window_end = start + s.duration;
    let give_up = window_end + s.drain;
    eprintln!(
        "running the workload and the faults for {} s",
        s.duration.as_secs_f64()
    );
    let drivers = workload::start_hires(
        &live,
        w.hires,
        w.hire_every,
        &clients,
        &handles,
        &reqs,
        start,
        give_up,
    );
    let republisher = w.republish_every.map(|every| {
        workload::republish(
            live.clone(),
            offers.clone(),
            every,
            start,
            window_end,
            s.seed,
            publications.clone(),
        )
    });
    let mut rng = rng::Rng::new(s.seed);
    let plan = faults::plan(&s.faults, s.duration, &mut rng);
    let roles = faults::Roles {
        full: full.clone(),
        light: light.clone(),
        providers: providers.clone(),
        clients: clients.clone(),
    };
    let restarts = faults::run(&live, &s.faults, &plan, &roles, &mut rng, start);
    std::thread::sleep(window_end.saturating_duration_since(Instant::now()));
    for r in restarts {
        let _ = r.join();
    }
    if let Some(r) = republisher {
        let _ = r.join();
    }
    // Everyone back for the end.
    for name in live.down() {
        eprintln!("  bringing {name} back for the end of the run");
        if let Err(e) = live.bring_up(&name) {
            eprintln!("  {name} did not start: {e:#}");
        }
    }
    let asked: Vec<Asked> = drivers.into_iter().filter_map(|d| d.join().ok()).collect();
    let never = asked.iter().filter(|a| a.hire_id.is_none()).count() as u32;
    eprintln!(
        "{} of {} hires contracted; waiting for them to end",
        asked.len() as u32 - never,
        w.hires
    );
    let all = workload::drain(&live, &clients, give_up);
    stop_answering.store(true, std::sync::atomic::Ordering::SeqCst);
    let answers = answerer.map(|a| a.join().unwrap_or(0));
    let ref_id = reference.as_ref().map(|(id, _)| id.clone());
    let mut ended: Vec<Ended> = Vec::new();
    for (id, (client, h)) in all {
        if Some(&id) == ref_id.as_ref() {
            continue;
        }
        ended.push(workload::check(&live, &client, h, &bundles));
    }
    ended.sort_by(|a, b| a.record.hire_id.cmp(&b.record.hire_id));
    // The nodes' own counters, summed, while every node is up.
    let mut counted = crate::souk::Metrics::default();
    for name in full.iter().chain(&light) {
        if let Ok(dir) = live.dir(name)
            && let Ok(info) = live.souk.info(dir)
        {
            let m = info.metrics;
            counted.gossip_rejected += m.gossip_rejected;
            counted.peers_banned += m.peers_banned;
            counted.hires_offered += m.hires_offered;
            counted.hires_declined_capacity += m.hires_declined_capacity;
        }
    }
    let mut notes = vec![format!(
        "node counters since their last start, summed: {} offers made, {} requests declined \
         for capacity, {} gossip messages rejected, {} peers banned",
        counted.hires_offered,
        counted.hires_declined_capacity,
        counted.gossip_rejected,
        counted.peers_banned
    )];
    if let Some(c) = s.clock {
        notes.push(format!(
            "the nodes ran on a clock {}x real time (1 day in {:.2} s); hire deadlines and receipt times are on it, the report's time axis is real time",
            c.rate,
            86_400.0 / f64::from(c.rate)
        ));
    }
    if let Some(n) = answers {
        notes.push(format!(
            "{n} question(s) answered by the clients (each as soon as its client was up)"
        ));
    }
    let end_ms = now_ms();
    live.stop_followers();
    stop_sampling.store(true, std::sync::atomic::Ordering::SeqCst);
    let _ = sampler.join();

    // Figures and verdicts.
    let events = obs.events();
    let pubs = publications.lock().map(|p| p.clone()).unwrap_or_default();
    let up: HashMap<String, Vec<(u64, Option<u64>)>> = full
        .iter()
        .chain(&light)
        .map(|n| (n.clone(), live.intervals(n)))
        .collect();
    let spreads = outcome::spreads(&pubs, &full, &up, &events, end_ms);
    let done = live.done.lock().map(|d| d.clone()).unwrap_or_default();
    let kills = done.iter().filter(|d| d.kind == "kill").count() as u32;
    let stops = done.iter().filter(|d| d.kind == "stop").count() as u32;
    let hire_ends = record::hire_end_times(&events);
    // Hires whose provider or client was killed or stopped while they ran.
    let interrupted = ended
        .iter()
        .filter(|e| {
            let Some(a) = asked
                .iter()
                .find(|a| a.hire_id.as_deref() == Some(e.record.hire_id.as_str()))
            else {
                return false;
            };
            let end = hire_ends.get(&e.record.hire_id).copied().unwrap_or(end_ms);
            done.iter().any(|d| {
                (d.kind == "kill" || d.kind == "stop")
                    && (d.target == a.provider || d.target == a.client)
                    && (a.asked_at_ms..=end).contains(&d.at_ms)
            })
        })
        .count() as u32;
    let partitions = live
        .partitions
        .lock()
        .map(|p| p.clone())
        .unwrap_or_default();
    let latencies = live.latencies.lock().map(|p| p.clone()).unwrap_or_default();
    let hostile_runs = live.hostiles.lock().map(|h| h.clone()).unwrap_or_default();
    let targets: Vec<&str> = hostile_runs.iter().map(|(t, _)| t.as_str()).collect();
    let hostiles = hostile_runs
        .iter()
        .map(|(t, h)| {
            let rejected = events
                .iter()
                .filter(|e| {
                    &e.node == t
                        && e.event["type"] == "manifest_rejected"
                        && e.event["from"] == h.peer.as_str()
                })
                .count();
            (t.clone(), h.peer.clone(), h.sent, h.cut_off, rejected)
        })
        .collect();
    let rejected_elsewhere = events
        .iter()
        .filter(|e| e.event["type"] == "manifest_rejected" && !targets.contains(&e.node.as_str()))
        .count();
    let fork_runs = live.forks.lock().map(|f| f.clone()).unwrap_or_default();
    let forks = fork::facts(&fork_runs, &events, &full, &light, &ended);
    notes.extend(forks.iter().map(fork::ForkFacts::describe));
    let fork_asked: Vec<&Asked> = fork_runs.iter().flat_map(|r| &r.hires).collect();
    let facts = verdict::Facts {
        forks,
        hostiles,
        rejected_elsewhere,
        interrupted,
        isolation: outcome::isolation(&spreads, &partitions),
        latency: outcome::cross_latency(&spreads, &latencies),
        stale: outcome::stale_nodes(&pubs, &full, &events),
        superseded: outcome::superseded(&spreads),
        full_nodes: full.len(),
        delivery: outcome::delivery_ratio(&spreads),
        asked: w.hires,
        contracted_never: never,
        ended: &ended,
        reference: reference.as_ref().map(|(_, r)| r),
        kills,
        stops,
        declined_capacity: counted.hires_declined_capacity,
    };
    let assertions = verdict::assertions(&s.assert, &facts);

    let rel = |t: u64| t.saturating_sub(t0);
    let outside: Vec<&Ended> = fork_runs.iter().flat_map(|r| &r.outside).collect();
    let mut hires: Vec<HireRun> = ended
        .iter()
        .chain(outside.iter().copied())
        .map(|e| {
            let a = asked
                .iter()
                .chain(fork_asked.iter().copied())
                .find(|a| a.hire_id.as_deref() == Some(e.record.hire_id.as_str()));
            HireRun {
                id: Some(e.record.hire_id.clone()),
                client: e.client.clone(),
                provider: a.map_or_else(String::new, |a| a.provider.clone()),
                agent: e.record.agent.clone(),
                started_at_ms: rel(a.map_or(work_start_ms, |a| a.asked_at_ms)),
                ended_at_ms: hire_ends
                    .get(&e.record.hire_id)
                    .or(e.record.closed.as_ref().map(|c| &c.at))
                    .map(|t| rel(*t)),
                outcome: if workload::is_terminal(&e.record.state) {
                    e.record.state.clone()
                } else if e.record.closed.is_some() {
                    "closed".into()
                } else {
                    "unfinished".into()
                },
                entries: e.record.entries,
                verified: e.verified,
                error: e.error.clone().or(e.record.error.clone()),
            }
        })
        .collect();
    for a in asked.iter().filter(|a| a.hire_id.is_none()) {
        hires.push(HireRun {
            id: None,
            client: a.client.clone(),
            provider: a.provider.clone(),
            agent: w.agent.clone(),
            started_at_ms: rel(a.asked_at_ms),
            ended_at_ms: None,
            outcome: "error".into(),
            entries: 0,
            verified: None,
            error: a.last_error.clone(),
        });
    }
    let manifests = spreads
        .iter()
        .map(|sp| ManifestRun {
            id: sp.publication.id.clone(),
            publisher: sp.publication.node.clone(),
            published_at_ms: rel(sp.publication.at_ms),
            deliveries: sp
                .delivered
                .iter()
                .map(|(node, at)| Delivery {
                    node: node.clone(),
                    at_ms: rel(*at),
                })
                .collect(),
            expected: Some(sp.expected.len() as u32),
        })
        .collect();
    let usage = obs.usage.lock().map(|u| u.clone()).unwrap_or_default();
    let samples = record::samples(&usage, &events, t0);
    let nodes = full
        .iter()
        .map(|n| (n, "full"))
        .chain(light.iter().map(|n| (n, "light")))
        .map(|(n, mode)| NodeSummary {
            name: n.clone(),
            mode: mode.into(),
            kills: done
                .iter()
                .filter(|d| d.kind == "kill" && &d.target == n)
                .count() as u32,
            restarts: done
                .iter()
                .filter(|d| d.kind == "start" && &d.target == n)
                .count() as u32,
            peak_rss_bytes: usage
                .iter()
                .filter(|u| &u.node == n)
                .map(|u| u.rss_bytes)
                .max(),
            cpu_seconds: {
                let v: Vec<&observe::Usage> = usage.iter().filter(|u| &u.node == n).collect();
                (!v.is_empty()).then(|| v.iter().map(|u| u.cpu_percent / 100.0 * 0.5).sum())
            },
        })
        .collect();
    Ok(RunData {
        scenario: s.name.clone(),
        seed: s.seed,
        started_unix_ms: t0,
        duration_ms: end_ms - t0,
        mode: "processes".into(),
        nodes,
        faults: done
            .iter()
            .map(|d| FaultMark {
                at_ms: rel(d.at_ms),
                kind: d.kind.clone(),
                target: d.target.clone(),
                detail: d.detail.clone(),
            })
            .collect(),
        manifests,
        expected_receivers: full.len().saturating_sub(1) as u32,
        hires,
        samples,
        assertions,
        notes,
    })
}
