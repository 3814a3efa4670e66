//! What the clients do during a run: hires started on a schedule (each retried until a
//! contract exists, since its client or provider may be down), agents republished on a
//! schedule (new manifests to propagate), and after the run the hires' ends collected from
//! every client: accepted, exported, verified offline, their steps read.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Deserialize;

use super::live::{Live, Status};
use super::rng::Rng;
use super::setup::Offer;
use crate::network::now_ms;
use crate::souk::{Hire, Step, VerifyReport};

/// One hire the workload asked for.
#[derive(Debug, Clone)]
pub(crate) struct Asked {
    pub(crate) client: String,
    pub(crate) provider: String,
    pub(crate) asked_at_ms: u64,
    /// The hire id, once a contract exists.
    pub(crate) hire_id: Option<String>,
    pub(crate) attempts: u32,
    pub(crate) last_error: Option<String>,
}

/// A manifest published during the run.
#[derive(Debug, Clone)]
pub(crate) struct Publication {
    pub(crate) id: String,
    pub(crate) seq: u64,
    pub(crate) node: String,
    pub(crate) at_ms: u64,
}

/// A hire as it ended on its client, with what the checks found.
#[derive(Debug, Clone)]
pub(crate) struct Ended {
    pub(crate) client: String,
    pub(crate) record: Hire,
    pub(crate) verified: Option<bool>,
    pub(crate) verify_detail: Option<String>,
    pub(crate) steps: Option<Vec<(String, String)>>,
    pub(crate) output: Option<serde_json::Value>,
    pub(crate) error: Option<String>,
    /// Its receipts as the client holds them (seq, time on the nodes' clock, kind).
    pub(crate) timeline: Vec<Step>,
}

impl Ended {
    /// `record` as `client` holds it, nothing checked yet.
    pub(crate) fn unchecked(client: &str, record: Hire) -> Self {
        Ended {
            client: client.to_owned(),
            record,
            verified: None,
            verify_detail: None,
            steps: None,
            output: None,
            error: None,
            timeline: Vec::new(),
        }
    }
}

/// What a hire asks: the input file and the CLI flags.
#[derive(Debug, Clone)]
pub(crate) struct HireRequest {
    pub(crate) input: PathBuf,
    pub(crate) max_price: Option<String>,
    pub(crate) deadline: Option<String>,
    pub(crate) retry_busy: Option<String>,
}

impl HireRequest {
    /// `souk hire HANDLE --input … --json` arguments.
    fn args(&self, handle: &str) -> Vec<String> {
        let mut a = vec![
            "hire".to_owned(),
            handle.to_owned(),
            "--input".to_owned(),
            self.input.display().to_string(),
            "--json".to_owned(),
        ];
        if let Some(p) = &self.max_price {
            a.push("--max-price".into());
            a.push(p.clone());
        }
        if let Some(d) = &self.deadline {
            a.push("--deadline".into());
            a.push(d.clone());
        }
        if let Some(r) = &self.retry_busy {
            a.push("--retry-busy".into());
            a.push(r.clone());
        }
        a
    }
}

/// Tries to hire `handle` from `client` until a contract exists or `give_up` passes.
pub(crate) fn hire_until_contracted(
    live: &Live,
    asked: &mut Asked,
    handle: &str,
    req: &HireRequest,
    give_up: Instant,
) {
    let args = req.args(handle);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    while Instant::now() < give_up && !crate::procs::interrupted() {
        if live.status(&asked.client) != Status::Up {
            std::thread::sleep(Duration::from_millis(100));
            continue;
        }
        asked.attempts += 1;
        let Ok(dir) = live.dir(&asked.client) else {
            return;
        };
        // With --retry-busy the command may wait for a slot that long.
        let timeout = crate::souk::COMMAND_TIMEOUT
            + req
                .retry_busy
                .as_deref()
                .and_then(|r| super::file::parse_duration(r).ok())
                .unwrap_or_default();
        let made = live
            .souk
            .run(Some(dir), &args, timeout)
            .and_then(|f| f.ok())
            .and_then(|out| Ok(serde_json::from_str::<Hire>(out.trim())?));
        match made {
            Ok(h) => {
                asked.hire_id = Some(h.hire_id);
                return;
            }
            Err(e) => {
                asked.last_error = Some(format!("{e:#}"));
                std::thread::sleep(Duration::from_millis(300));
            }
        }
    }
}

/// The receipts `client` holds for hire `id` (`souk hire watch --json`, which exits at
/// once for an ended hire: non-zero unless it completed, with the steps printed either way).
fn timeline(live: &Live, client: &str, id: &str) -> Vec<Step> {
    let Ok(dir) = live.dir(client) else {
        return Vec::new();
    };
    let Ok(out) = live.souk.run(
        Some(dir),
        &["hire", "watch", "--json", id],
        crate::souk::COMMAND_TIMEOUT,
    ) else {
        return Vec::new();
    };
    out.stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Step>(l).ok())
        .collect()
}

/// Answers every open question of the hires of `clients` with `answer`, whenever the
/// client is up to see it, until `stop` is set. Returns how many answers were sent.
pub(crate) fn answer_questions(
    live: Arc<Live>,
    clients: Vec<String>,
    answer: serde_json::Value,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<u32> {
    std::thread::spawn(move || {
        let text = answer.to_string();
        let mut sent = 0;
        while !stop.load(std::sync::atomic::Ordering::SeqCst) && !crate::procs::interrupted() {
            for c in &clients {
                if live.status(c) != Status::Up {
                    continue;
                }
                let Ok(dir) = live.dir(c) else { continue };
                let Ok(list) = live.souk.json::<Vec<Hire>>(Some(dir), &["hires", "--json"]) else {
                    continue;
                };
                for h in list.iter().filter(|h| h.state == "input-required") {
                    let answered = live
                        .souk
                        .run(
                            Some(dir),
                            &["hire", "answer", &h.hire_id, &text],
                            crate::souk::COMMAND_TIMEOUT,
                        )
                        .and_then(|f| f.ok());
                    match answered {
                        Ok(_) => sent += 1,
                        Err(e) => eprintln!("  answering {} failed: {e:#}", &h.hire_id[..12]),
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        sent
    })
}

/// Starts the workload's hires on their schedule, each on its own thread.
#[allow(clippy::too_many_arguments)]
pub(crate) fn start_hires(
    live: &Arc<Live>,
    count: u32,
    every: Duration,
    clients: &[String],
    handles: &[(String, String)],
    reqs: &[HireRequest],
    start: Instant,
    give_up: Instant,
) -> Vec<std::thread::JoinHandle<Asked>> {
    let mut threads = Vec::new();
    for i in 0..count {
        let live = live.clone();
        let client = clients[i as usize % clients.len()].clone();
        let (provider, handle) = handles[i as usize % handles.len()].clone();
        let req = reqs[i as usize % reqs.len()].clone();
        let at = start + every * i;
        threads.push(std::thread::spawn(move || {
            std::thread::sleep(at.saturating_duration_since(Instant::now()));
            let mut asked = Asked {
                client,
                provider,
                asked_at_ms: now_ms(),
                hire_id: None,
                attempts: 0,
                last_error: None,
            };
            hire_until_contracted(&live, &mut asked, &handle, &req, give_up);
            asked
        }));
    }
    threads
}

/// Republishes a random provider's agent every `every` until `until`.
pub(crate) fn republish(
    live: Arc<Live>,
    offers: Vec<Offer>,
    every: Duration,
    start: Instant,
    until: Instant,
    seed: u64,
    out: Arc<Mutex<Vec<Publication>>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut rng = Rng::new(seed ^ 0x5eed);
        let mut next = start + every;
        while next < until && !crate::procs::interrupted() {
            std::thread::sleep(next.saturating_duration_since(Instant::now()));
            next += every;
            let up: Vec<&Offer> = offers
                .iter()
                .filter(|o| live.status(&o.node) == Status::Up)
                .collect();
            let Some(offer) = rng.pick(&up) else {
                continue;
            };
            let net = live
                .net
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let result = super::setup::publish(&net, offer);
            drop(net);
            match result {
                Ok((id, seq)) => {
                    if let Ok(mut o) = out.lock() {
                        o.push(Publication {
                            id,
                            seq,
                            node: offer.node.clone(),
                            at_ms: now_ms(),
                        });
                    }
                }
                Err(e) => eprintln!("  republish on {} failed: {e:#}", offer.node),
            }
        }
    })
}

/// Every hire each client holds.
pub(crate) fn client_hires(live: &Live, clients: &[String]) -> HashMap<String, (String, Hire)> {
    let mut all = HashMap::new();
    for c in clients {
        let Ok(dir) = live.dir(c) else { continue };
        if let Ok(list) = live.souk.json::<Vec<Hire>>(Some(dir), &["hires", "--json"]) {
            for h in list {
                all.insert(h.hire_id.clone(), (c.clone(), h));
            }
        }
    }
    all
}

/// States a hire does not leave.
pub(crate) fn is_terminal(state: &str) -> bool {
    matches!(
        state,
        "completed" | "failed" | "canceled" | "rejected" | "expired"
    )
}

/// Whether a client's hire is over: an end state, or closed by the client (its provider
/// equivocated).
pub(crate) fn has_ended(h: &Hire) -> bool {
    is_terminal(&h.state) || h.closed.is_some()
}

/// Waits until every hire of every client has ended ([`has_ended`]), or `until`. Returns
/// the hires as last seen.
pub(crate) fn drain(
    live: &Live,
    clients: &[String],
    until: Instant,
) -> HashMap<String, (String, Hire)> {
    let mut last_report = Instant::now();
    loop {
        let all = client_hires(live, clients);
        let open: Vec<&Hire> = all
            .values()
            .map(|(_, h)| h)
            .filter(|h| !has_ended(h))
            .collect();
        if open.is_empty() || Instant::now() >= until || crate::procs::interrupted() {
            return all;
        }
        if last_report.elapsed() >= Duration::from_secs(5) {
            eprintln!("  waiting for {} hire(s) to end", open.len());
            last_report = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[derive(Deserialize)]
struct TraceStep {
    kind: String,
    summary: String,
    #[serde(default)]
    payload: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Trace {
    steps: Vec<TraceStep>,
}

/// For a completed hire: accept it, export its bundle (payloads disclosed) to `bundles/`,
/// verify it offline
/// (`souk verify`) and read its steps and output. Other hires are returned as they are.
pub(crate) fn check(live: &Live, client: &str, h: Hire, bundles: &Path) -> Ended {
    let mut e = Ended::unchecked(client, h);
    if is_terminal(&e.record.state) {
        e.timeline = timeline(live, client, &e.record.hire_id);
    }
    if e.record.state != "completed" {
        return e;
    }
    if let Err(err) = check_completed(live, &mut e, bundles) {
        e.error = Some(format!("{err:#}"));
    }
    e
}

fn check_completed(live: &Live, e: &mut Ended, bundles: &Path) -> anyhow::Result<()> {
    let dir = live.dir(&e.client)?;
    let id = e.record.hire_id.clone();
    if e.record.verdict.is_none() {
        live.souk
            .run(
                Some(dir),
                &["hire", "accept", &id],
                crate::souk::COMMAND_TIMEOUT,
            )?
            .ok()
            .context("accepting the hire")?;
    }
    std::fs::create_dir_all(bundles)?;
    let file = bundles.join(format!("{}.souk", &id[..16.min(id.len())]));
    let file_arg = file.display().to_string();
    live.souk
        .run(
            Some(dir),
            &["receipts", "export", &id, "--disclose", "-o", &file_arg],
            crate::souk::COMMAND_TIMEOUT,
        )?
        .ok()
        .context("exporting the bundle")?;
    // Offline: no data dir, only the file.
    let v = live.souk.run(
        None,
        &["verify", &file_arg, "--json"],
        crate::souk::COMMAND_TIMEOUT,
    )?;
    let report: VerifyReport = serde_json::from_str(v.stdout.trim())
        .with_context(|| format!("souk verify printed no report: {}", v.stderr.trim()))?;
    e.verified = Some(report.valid && report.verdict.as_deref() == Some("accepted"));
    e.verify_detail = report.rule.clone().or(report.detail.clone());
    let trace: Trace = live
        .souk
        .json(None, &["receipts", "show", &file_arg, "--json"])?;
    e.steps = Some(
        trace
            .steps
            .into_iter()
            // The disclosed payload tells steps apart (the summary may not).
            .map(|s| (s.kind, s.payload.map_or(s.summary, |p| p.to_string())))
            .collect(),
    );
    let out = live.souk.run(
        Some(dir),
        &["hire", "output", &id],
        crate::souk::COMMAND_TIMEOUT,
    )?;
    e.output = serde_json::from_str(out.ok()?.trim()).ok();
    Ok(())
}
