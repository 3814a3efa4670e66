//! `souk-testnet conformance --node MULTIADDR [--data-dir DIR] [--json]`: checks a Souk node
//! over the wire against spec/, as an independent peer would see it, and prints a table a
//! third party can publish (each row names the spec rule it tests).
//!
//! Layers: transport (connection, identify, protocol list per role, ping), gossip (a fresh
//! manifest admitted and forwarded with the content-addressed message id, every invalid
//! variant dropped and charged, a ban after three), sync (pages, order, cursors, clamping),
//! search (text, filters, limit) and hire (`/souk/hire/1`: declines, offer, accept, receipts
//! verified entry by entry, output hash, settlement, the exported bundle). Checks that need
//! the node to act (offer a test agent, report its counters, export a bundle) use its local
//! API and run only with `--data-dir`.
//!
//! - [`peer`]: the kit's libp2p peer.
//! - [`fixtures`]: fresh and invalid manifests, the test agent.
//! - [`checks`]: the checks.
//! - [`hostile`], [`forking`]: hostile peers for testnet scenarios (invalid gossip, a
//!   provider that signs two different receipt entries for one hire and seq).

mod checks;
mod fixtures;
pub(crate) mod forking;
pub(crate) mod hostile;
mod peer;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use serde::Serialize;
use souk_node::api::client::ApiClient;
use souk_node::data_dir::DataDir;
use souk_protocol::manifest::Manifest;
use souk_protocol::signed::Signed;

/// `souk-testnet conformance` arguments.
#[derive(Debug, Args)]
pub(crate) struct ConformanceArgs {
    /// The node to check: its multiaddr (`/ip4/127.0.0.1/tcp/4001`, optionally ending in
    /// `/p2p/<peer id>`).
    #[arg(long, value_name = "MULTIADDR")]
    node: String,
    /// The node's data directory: lets the kit make the node offer a test agent (hire checks),
    /// read its counters and export a bundle, through its local API.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

/// One check's outcome.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Row {
    layer: &'static str,
    id: String,
    rule: String,
    what: String,
    /// `pass`, `fail` or `skip`.
    result: &'static str,
    detail: String,
}

/// The report being built.
#[derive(Debug, Default, Serialize)]
pub(crate) struct Report {
    node: String,
    rows: Vec<Row>,
}

impl Report {
    fn push(
        &mut self,
        layer: &'static str,
        id: &str,
        rule: &str,
        what: &str,
        result: &'static str,
        detail: String,
    ) {
        if !matches!(result, "pass") {
            eprintln!("  {result}: {id} {what}: {detail}");
        }
        self.rows.push(Row {
            layer,
            id: id.to_owned(),
            rule: rule.to_owned(),
            what: what.to_owned(),
            result,
            detail,
        });
    }

    pub(crate) fn pass(
        &mut self,
        layer: &'static str,
        id: &str,
        rule: &str,
        what: &str,
        detail: String,
    ) {
        self.push(layer, id, rule, what, "pass", detail);
    }

    pub(crate) fn fail(
        &mut self,
        layer: &'static str,
        id: &str,
        rule: &str,
        what: &str,
        detail: String,
    ) {
        self.push(layer, id, rule, what, "fail", detail);
    }

    pub(crate) fn skip(
        &mut self,
        layer: &'static str,
        id: &str,
        rule: &str,
        what: &str,
        why: &str,
    ) {
        self.push(layer, id, rule, what, "skip", why.to_owned());
    }

    pub(crate) fn check(
        &mut self,
        layer: &'static str,
        id: &str,
        rule: &str,
        what: &str,
        r: Result<String, String>,
    ) {
        match r {
            Ok(d) => self.pass(layer, id, rule, what, d),
            Err(d) => self.fail(layer, id, rule, what, d),
        }
    }

    fn failed(&self) -> usize {
        self.rows.iter().filter(|r| r.result == "fail").count()
    }

    fn print_table(&self) {
        println!("Souk conformance of {}\n", self.node);
        println!("| layer | check | result | spec rule | what | detail |");
        println!("|---|---|---|---|---|---|");
        for r in &self.rows {
            println!(
                "| {} | {} | {} | {} | {} | {} |",
                r.layer,
                r.id,
                r.result.to_uppercase(),
                r.rule,
                r.what,
                r.detail.replace('|', "\\|")
            );
        }
        let count = |res: &str| self.rows.iter().filter(|r| r.result == res).count();
        println!(
            "\n{} checks: {} pass, {} fail, {} skipped",
            self.rows.len(),
            count("pass"),
            count("fail"),
            count("skip")
        );
    }
}

/// The node's local API, when its data directory was given.
struct Api(ApiClient);

impl Api {
    fn gossip_rejected(&self) -> Option<u64> {
        let v: serde_json::Value = self.0.get("/v1/metrics").ok()?;
        v["gossip_rejected"].as_u64()
    }

    /// Makes the node offer the test agent; returns its manifest envelope.
    fn offer_test_agent(&self, pkg: &std::path::Path) -> anyhow::Result<Signed<Manifest>> {
        std::fs::write(pkg.join("agent.py"), fixtures::AGENT_PY)?;
        std::fs::write(pkg.join("agent.toml"), fixtures::AGENT_TOML)?;
        let spec = souk_node::agent_file::AgentSpec::load(&pkg.join("agent.toml"))?;
        let published: souk_node::service::Published = self.0.post("/v1/agents", &spec)?;
        let card: souk_node::card::AgentCard = self
            .0
            .get(&format!("/v1/manifests/{}", published.manifest_id))?;
        let bytes = hex::decode(&card.envelope).context("the card's envelope is not hex")?;
        Ok(Signed::<Manifest>::decode_bytes(&bytes)?)
    }

    fn bundle(&self, id: souk_protocol::Hash) -> Option<Vec<u8>> {
        // The provider exports once it holds the client's attestation: ask a few times.
        for _ in 0..50 {
            if let Ok(b) = self.0.get_bytes(&format!("/v1/hires/{id}/bundle")) {
                return Some(b);
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        None
    }
}

/// Runs the kit.
///
/// # Errors
///
/// When the arguments are unusable (a bad multiaddr, an unreadable data directory).
pub(crate) fn run(args: &ConformanceArgs) -> anyhow::Result<ExitCode> {
    let addr: libp2p::Multiaddr = args
        .node
        .parse()
        .with_context(|| format!("{} is not a multiaddr", args.node))?;
    let api = match &args.data_dir {
        Some(d) => Some(Api(ApiClient::connect(&DataDir::new(d)).with_context(
            || format!("cannot reach the node's API through {}", d.display()),
        )?)),
        None => None,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let mut report = Report {
        node: args.node.clone(),
        ..Report::default()
    };
    let pkg = tempfile::tempdir()?;
    runtime.block_on(async {
        eprintln!("checking {} ...", args.node);
        let mut a = peer::Peer::new()?;
        let Some(full) = checks::transport(&mut report, &mut a, &addr).await else {
            return Ok::<_, anyhow::Error>(());
        };
        let mut probe = None;
        if full {
            let mut b = peer::Peer::new()?;
            let mut metrics = || api.as_ref().and_then(Api::gossip_rejected);
            probe = checks::gossip(&mut report, &mut a, &mut b, &addr, &mut metrics).await;
            checks::sync(&mut report, &mut a, probe.as_ref()).await;
            checks::search(&mut report, &mut a, probe.as_ref()).await;
        } else {
            for (layer, id) in [("gossip", "G*"), ("sync", "S*"), ("search", "Q*")] {
                report.skip(
                    layer,
                    id,
                    "discovery.md#node-roles",
                    "full-node protocols",
                    "a light node serves none",
                );
            }
        }
        let _ = probe;
        match &api {
            Some(api) => match api.offer_test_agent(pkg.path()) {
                Ok(m) => {
                    let mut bundle = |id| api.bundle(id);
                    checks::hire(&mut report, &mut a, &m, &mut bundle).await;
                }
                Err(e) => report.fail(
                    "hire",
                    "H0",
                    "hiring.md",
                    "the node offers the test agent",
                    format!("{e:#}"),
                ),
            },
            None => report.skip(
                "hire",
                "H*",
                "hiring.md",
                "the /souk/hire/1 calls",
                "needs --data-dir (the node must offer a test agent)",
            ),
        }
        Ok(())
    })?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        report.print_table();
    }
    Ok(if report.failed() == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
