//! The scenario file (`testnet/scenarios/*.toml`): the network, the agents, the workload,
//! the faults on a timeline and the assertions of one `souk-testnet run`. Parsed strictly
//! (an unknown key is an error naming it) and checked before anything starts.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use serde::{Deserialize, Deserializer};

/// A whole scenario.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Scenario {
    /// Its name (report titles, the output directory).
    pub(crate) name: String,
    /// What it shows, for people.
    #[serde(default)]
    pub(crate) description: String,
    /// The seed of every random choice (fault targets, clients) unless `--seed` overrides it.
    #[serde(default = "default_seed")]
    pub(crate) seed: u64,
    /// How long the workload and the faults run.
    #[serde(deserialize_with = "duration")]
    pub(crate) duration: Duration,
    /// After `duration`: how long hires may take to end before the run gives up on them.
    #[serde(default = "default_drain", deserialize_with = "duration")]
    pub(crate) drain: Duration,
    /// The nodes.
    pub(crate) network: NetworkSpec,
    /// What each provider offers.
    #[serde(default)]
    pub(crate) agents: Vec<AgentSpec>,
    /// What the clients do.
    #[serde(default)]
    pub(crate) workload: Workload,
    /// Faults on the timeline.
    #[serde(default)]
    pub(crate) faults: Vec<Fault>,
    /// What must hold at the end; the run exits 0 only if all do.
    #[serde(default)]
    pub(crate) assert: Assertions,
    /// Run the nodes on a faster clock; every time in the file is then on that clock.
    #[serde(default)]
    pub(crate) clock: Option<ClockSpec>,
    /// The directory the file is in (relative paths are relative to it).
    #[serde(skip)]
    pub(crate) base: PathBuf,
}

fn default_seed() -> u64 {
    1
}

fn default_drain() -> Duration {
    Duration::from_secs(120)
}

/// `[clock]`: the nodes' time runs `rate` times faster than real time (`souk node run
/// --testnet-clock`), so days of deadlines, absences and restarts play out in seconds. Every
/// duration of the scenario file (`duration`, `drain`, the workload's periods, the faults'
/// times) is read on this clock, as are hire deadlines; link delays and `retry_busy` stay
/// real (they are about the network). Process mode only.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ClockSpec {
    /// Node-time ms per real ms, 1 to 100 000.
    pub(crate) rate: u32,
}

/// `[network]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NetworkSpec {
    /// Full nodes (`node-0` …), 1 to 64 (2000 with `--in-process`).
    pub(crate) full: u16,
    /// Light nodes (`light-0` …), 0 to 64; each bootstraps to two full nodes.
    #[serde(default)]
    pub(crate) light: u16,
}

/// `[[agents]]`: an agent file published by a node.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AgentSpec {
    /// The publishing node (`node-0`), or `all-full`.
    pub(crate) node: String,
    /// The agent file (relative to the scenario file).
    pub(crate) path: PathBuf,
}

/// `[workload]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Workload {
    /// Hires to make in all.
    #[serde(default)]
    pub(crate) hires: u32,
    /// Between two hire starts.
    #[serde(default = "one_second", deserialize_with = "duration")]
    pub(crate) hire_every: Duration,
    /// Which nodes hire: `light`, `full` or `any` (round robin).
    #[serde(default = "default_clients")]
    pub(crate) clients: String,
    /// The agent hired (its name; the first provider publishing it).
    #[serde(default)]
    pub(crate) agent: String,
    /// The job input (inline JSON).
    #[serde(default)]
    pub(crate) input: Option<serde_json::Value>,
    /// Highest price accepted (decimal), as `souk hire --max-price`.
    #[serde(default)]
    pub(crate) max_price: Option<String>,
    /// The deadline asked, as `souk hire --deadline` (`10m`).
    #[serde(default)]
    pub(crate) deadline: Option<String>,
    /// Deadlines taken in turn by the hires (the first also by the reference hire); replaces
    /// `deadline`.
    #[serde(default)]
    pub(crate) deadlines: Vec<String>,
    /// Answer every question an agent asks with this JSON, as soon as its client is up to
    /// see it (a client that is down answers when it comes back).
    #[serde(default)]
    pub(crate) answer: Option<serde_json::Value>,
    /// Keep asking an agent at capacity for this long (`souk hire --retry-busy`).
    #[serde(default)]
    pub(crate) retry_busy: Option<String>,
    /// Republish a random provider's agent this often (a new manifest to propagate).
    #[serde(default, deserialize_with = "opt_duration")]
    pub(crate) republish_every: Option<Duration>,
}

fn one_second() -> Duration {
    Duration::from_secs(1)
}

fn default_clients() -> String {
    "light".into()
}

/// What a fault does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Action {
    /// SIGKILL (no chance to clean up), then start again after `restart_after` if given.
    Kill,
    /// SIGTERM (a clean stop), then start again after `restart_after` if given.
    Stop,
    /// Start a stopped or killed node.
    Start,
    /// Cut every connection between the `groups` (nodes in no group reach all); replaces
    /// an earlier partition. Needs the testnet gate (started automatically).
    Partition,
    /// Add `delay` (± `link_jitter`, `loss`) to every link between the `groups`.
    Latency,
    /// End the partition and the added latency.
    Heal,
    /// A hostile peer connects to `target` and gossips `count` invalid manifests.
    InvalidGossip,
    /// A provider joins through `target` (a full node) and forks every hire of its agent
    /// `forked`, which the clients hire `count` times.
    ForkingProvider,
}

impl Action {
    /// The name in reports.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Action::Kill => "kill",
            Action::Stop => "stop",
            Action::Start => "start",
            Action::Partition => "partition",
            Action::Latency => "latency",
            Action::Heal => "heal",
            Action::InvalidGossip => "invalid-gossip",
            Action::ForkingProvider => "forking-provider",
        }
    }
}

/// `[[faults]]`: one action at `at`, or repeated `every` from `from` to `until`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Fault {
    /// The action.
    pub(crate) action: Action,
    /// For kill, stop and start: a node name, or `random`, `random-full`, `random-light`,
    /// `random-provider`, `random-client` (chosen among the nodes up at that moment, with
    /// the seed).
    #[serde(default)]
    pub(crate) target: String,
    /// For partition and latency: two or more groups of node names.
    #[serde(default)]
    pub(crate) groups: Vec<Vec<String>>,
    /// For latency: the one-way delay added to each direction.
    #[serde(default, deserialize_with = "opt_duration")]
    pub(crate) delay: Option<Duration>,
    /// For latency: up to this much more, at random (order kept).
    #[serde(default, deserialize_with = "opt_duration")]
    pub(crate) link_jitter: Option<Duration>,
    /// For latency: the fraction of chunks delayed by a 200 ms retransmission.
    #[serde(default)]
    pub(crate) loss: f64,
    /// For invalid-gossip: how many invalid manifests [default 7]. For forking-provider: how
    /// many hires of its agent, round robin over the workload's clients [default: one per
    /// client].
    #[serde(default)]
    pub(crate) count: Option<u32>,
    /// When (a one-off fault).
    #[serde(default, deserialize_with = "opt_duration")]
    pub(crate) at: Option<Duration>,
    /// Repeat period (a recurring fault).
    #[serde(default, deserialize_with = "opt_duration")]
    pub(crate) every: Option<Duration>,
    /// Random extra delay added to each repetition, up to this.
    #[serde(default, deserialize_with = "opt_duration")]
    pub(crate) jitter: Option<Duration>,
    /// First repetition [default: `every`].
    #[serde(default, deserialize_with = "opt_duration")]
    pub(crate) from: Option<Duration>,
    /// No repetition after this [default: the scenario's duration].
    #[serde(default, deserialize_with = "opt_duration")]
    pub(crate) until: Option<Duration>,
    /// For kill and stop: start the node again after this long.
    #[serde(default, deserialize_with = "opt_duration")]
    pub(crate) restart_after: Option<Duration>,
}

/// `[assert]`: every key given must hold.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Assertions {
    /// Fraction of (manifest, full node up while it spread) pairs delivered, 0 to 1.
    #[serde(default)]
    pub(crate) manifest_delivery: Option<f64>,
    /// Every contracted hire reached an end state (completed, failed, canceled, expired).
    #[serde(default)]
    pub(crate) every_hire_ended: bool,
    /// Fraction of the workload's hires that completed, 0 to 1.
    #[serde(default)]
    pub(crate) hires_completed: Option<f64>,
    /// Every completed hire was accepted and its exported bundle passes `souk verify`.
    #[serde(default)]
    pub(crate) every_chain_verifies: bool,
    /// Every completed hire's steps equal those of the first, uninterrupted hire (up to the
    /// replays the spec allows after a restart) and its output is the same.
    #[serde(default)]
    pub(crate) steps_match_reference: bool,
    /// At least this many kills happened.
    #[serde(default)]
    pub(crate) min_kills: Option<u32>,
    /// At least this many clean stops (SIGTERM) happened.
    #[serde(default)]
    pub(crate) min_stops: Option<u32>,
    /// Some hire request was declined for capacity (the providers' counters), so the
    /// capacity limit was reached and the clients' retries carried the hires through.
    #[serde(default)]
    pub(crate) capacity_declined: bool,
    /// No manifest published on one side of a partition reached the other side before the
    /// heal.
    #[serde(default)]
    pub(crate) partition_isolates: bool,
    /// Manifests published while latency was added reached the other group no sooner than
    /// the delay (median).
    #[serde(default)]
    pub(crate) latency_applies: bool,
    /// At the end every full node holds the latest version of every agent published.
    #[serde(default)]
    pub(crate) converged: bool,
    /// Every hostile peer was cut off by the node it attacked, and no other node ever saw an
    /// invalid manifest (the attacked node forwarded none).
    #[serde(default)]
    pub(crate) hostile_contained: bool,
    /// Fraction of the workload's hires that ended expired (their deadline passed), 0 to 1.
    #[serde(default)]
    pub(crate) hires_expired: Option<f64>,
    /// Every expired hire's `expired` entry is dated at or after its deadline, and no later
    /// than this after it (on the scenario's clock).
    #[serde(default, deserialize_with = "opt_duration")]
    pub(crate) expired_within: Option<Duration>,
    /// Some completed hire had a question open at least this long (on the scenario's
    /// clock) before its answer: the question waited for its client.
    #[serde(default, deserialize_with = "opt_duration")]
    pub(crate) question_waited: Option<Duration>,
    /// Every hire of a forking provider's agent was closed `provider-equivocated` by its
    /// client, every full node flagged the provider, and a hire tried after the flag was
    /// refused `flagged`.
    #[serde(default)]
    pub(crate) fork_contained: bool,
}

impl Scenario {
    /// Whether a fault needs the nodes' testnet gate (partitions, latency).
    pub(crate) fn needs_gate(&self) -> bool {
        self.faults
            .iter()
            .any(|f| matches!(f.action, Action::Partition | Action::Latency | Action::Heal))
    }

    /// Reads and checks `path`.
    pub(crate) fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the scenario {}", path.display()))?;
        let mut s: Scenario = toml::from_str(&text)
            .with_context(|| format!("{} is not a valid scenario", path.display()))?;
        s.base = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        if let Some(c) = s.clock {
            anyhow::ensure!(
                (1..=100_000).contains(&c.rate),
                "{}: clock.rate must be 1 to 100000, not {}",
                path.display(),
                c.rate
            );
            s.scale_to_real_time(c.rate);
        }
        s.check()
            .with_context(|| format!("{} is not a valid scenario", path.display()))?;
        Ok(s)
    }

    /// The full and light node names.
    pub(crate) fn node_names(&self) -> (Vec<String>, Vec<String>) {
        (
            (0..self.network.full)
                .map(|i| format!("node-{i}"))
                .collect(),
            (0..self.network.light)
                .map(|i| format!("light-{i}"))
                .collect(),
        )
    }

    /// Turns the file's times, written on a clock `rate` times faster, into real time.
    fn scale_to_real_time(&mut self, rate: u32) {
        let real = |d: Duration| d / rate;
        self.duration = real(self.duration);
        self.drain = real(self.drain);
        self.workload.hire_every = real(self.workload.hire_every);
        self.workload.republish_every = self.workload.republish_every.map(real);
        for f in &mut self.faults {
            for t in [
                &mut f.at,
                &mut f.every,
                &mut f.jitter,
                &mut f.from,
                &mut f.until,
                &mut f.restart_after,
            ] {
                *t = t.map(real);
            }
        }
    }

    /// The deadline asked by the workload's hire `i` (the reference hire asks the first).
    pub(crate) fn deadline_of(&self, i: usize) -> Option<String> {
        let w = &self.workload;
        if w.deadlines.is_empty() {
            w.deadline.clone()
        } else {
            Some(w.deadlines[i % w.deadlines.len()].clone())
        }
    }

    fn check(&self) -> anyhow::Result<()> {
        let n = &self.network;
        anyhow::ensure!(
            (1..=2000).contains(&n.full),
            "network.full must be 1 to 2000 (64 as processes), not {}",
            n.full
        );
        anyhow::ensure!(
            n.light <= 64,
            "network.light must be 0 to 64, not {}",
            n.light
        );
        let (full, light) = self.node_names();
        let known = |name: &str| full.iter().chain(&light).any(|x| x == name);
        for a in &self.agents {
            anyhow::ensure!(
                a.node == "all-full" || full.contains(&a.node),
                "agents: {} is not a full node of this network (node-0 … node-{}, or all-full)",
                a.node,
                n.full - 1
            );
        }
        let w = &self.workload;
        if w.hires > 0 {
            anyhow::ensure!(!w.agent.is_empty(), "workload.agent: which agent to hire");
            anyhow::ensure!(
                w.input.is_some(),
                "workload.input: the job input (inline JSON)"
            );
            anyhow::ensure!(
                matches!(w.clients.as_str(), "light" | "full" | "any"),
                "workload.clients must be light, full or any, not {:?}",
                w.clients
            );
            anyhow::ensure!(
                w.clients != "light" || n.light > 0,
                "workload.clients = \"light\" needs network.light > 0"
            );
        }
        for (i, f) in self.faults.iter().enumerate() {
            match f.action {
                Action::Partition | Action::Latency => {
                    anyhow::ensure!(
                        f.groups.len() >= 2 && f.groups.iter().all(|g| !g.is_empty()),
                        "faults[{i}]: a {} needs `groups`, two or more non-empty lists of nodes",
                        f.action.as_str()
                    );
                    for n in f.groups.iter().flatten() {
                        anyhow::ensure!(known(n), "faults[{i}].groups: no node {n:?}");
                    }
                    anyhow::ensure!(
                        f.action != Action::Latency || f.delay.is_some(),
                        "faults[{i}]: latency needs `delay`"
                    );
                    anyhow::ensure!(
                        (0.0..=1.0).contains(&f.loss),
                        "faults[{i}].loss is a fraction"
                    );
                    anyhow::ensure!(
                        f.at.is_some(),
                        "faults[{i}]: a {} is one-off (`at`)",
                        f.action.as_str()
                    );
                    continue;
                }
                Action::Heal => {
                    anyhow::ensure!(f.at.is_some(), "faults[{i}]: heal is one-off (`at`)");
                    continue;
                }
                Action::ForkingProvider => {
                    anyhow::ensure!(
                        f.at.is_some() && f.every.is_none(),
                        "faults[{i}]: forking-provider is one-off (`at`)"
                    );
                    anyhow::ensure!(
                        full.contains(&f.target) || f.target == "random-full",
                        "faults[{i}].target: a forking provider joins through a full node \
                         (node-N or random-full), not {:?}",
                        f.target
                    );
                    anyhow::ensure!(
                        w.clients != "light" || n.light > 0,
                        "faults[{i}]: the forking provider is hired by the workload's clients \
                         (workload.clients = \"light\" needs network.light > 0)"
                    );
                    anyhow::ensure!(
                        f.count != Some(0),
                        "faults[{i}].count: at least one hire of the forked agent"
                    );
                }
                Action::Kill | Action::Stop | Action::Start | Action::InvalidGossip => {}
            }
            let randoms = [
                "random",
                "random-full",
                "random-light",
                "random-provider",
                "random-client",
            ];
            anyhow::ensure!(
                known(&f.target) || randoms.contains(&f.target.as_str()),
                "faults[{i}].target {:?} is neither a node of this network nor one of {}",
                f.target,
                randoms.join(", ")
            );
            anyhow::ensure!(
                f.at.is_some() != f.every.is_some(),
                "faults[{i}]: give either `at` (once) or `every` (repeated)"
            );
            anyhow::ensure!(
                f.every.is_none_or(|e| e >= Duration::from_millis(50)),
                "faults[{i}].every must be at least 50ms"
            );
            anyhow::ensure!(
                f.restart_after.is_none() || f.action != Action::Start,
                "faults[{i}]: restart_after is for kill and stop"
            );
            anyhow::ensure!(
                f.groups.is_empty() && f.delay.is_none(),
                "faults[{i}]: groups and delay are for partition and latency"
            );
        }
        if let Some(d) = self.assert.manifest_delivery {
            anyhow::ensure!(
                (0.0..=1.0).contains(&d),
                "assert.manifest_delivery is a fraction"
            );
        }
        if let Some(d) = self.assert.hires_expired {
            anyhow::ensure!(
                (0.0..=1.0).contains(&d),
                "assert.hires_expired is a fraction"
            );
        }
        anyhow::ensure!(
            w.deadlines.is_empty() || w.deadline.is_none(),
            "workload: give `deadline` or `deadlines`, not both"
        );
        if let Some(d) = self.assert.hires_completed {
            anyhow::ensure!(
                (0.0..=1.0).contains(&d),
                "assert.hires_completed is a fraction"
            );
        }
        Ok(())
    }
}

/// `250ms`, `5s`, `2m`, `1h`, `3d`, a sum of them (`2d12h`, `1m30s`), or a bare number of
/// seconds.
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let bad = || format!("{s:?} is not a duration (e.g. 250ms, 5s, 2m, 1h, 2d12h)");
    let mut secs = 0.0;
    let mut rest = s;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(rest.len());
        let unit_end = rest[num_end..]
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .map_or(rest.len(), |i| num_end + i);
        let v: f64 = rest[..num_end].parse().map_err(|_| bad())?;
        let unit = rest[num_end..unit_end].trim();
        secs += match unit {
            "ms" => v / 1000.0,
            "s" => v,
            "" if unit_end == rest.len() && rest.len() == s.len() => v,
            "m" => v * 60.0,
            "h" => v * 3600.0,
            "d" => v * 86_400.0,
            _ => return Err(format!("{s:?}: the unit must be ms, s, m, h or d")),
        };
        rest = &rest[unit_end..];
    }
    if s.is_empty() || !secs.is_finite() || !(0.0..=86_400.0 * 30.0).contains(&secs) {
        return Err(format!("{s:?} is out of range"));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    parse_duration(&s).map_err(serde::de::Error::custom)
}

fn opt_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    let s = Option::<String>::deserialize(d)?;
    s.map(|s| parse_duration(&s).map_err(serde::de::Error::custom))
        .transpose()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(172_800)));
        assert_eq!(parse_duration("2d12h"), Ok(Duration::from_secs(216_000)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert!(parse_duration("1m30").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn the_shipped_scenarios_parse_and_bad_ones_say_why() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
        let mut seen = 0;
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "toml") {
                Scenario::load(&p).unwrap_or_else(|e| panic!("{}: {e:#}", p.display()));
                seen += 1;
            }
        }
        assert!(seen >= 3, "{seen} scenarios");
        let bad = |text: &str| {
            let d = tempfile::tempdir().unwrap();
            let p = d.path().join("s.toml");
            std::fs::write(&p, text).unwrap();
            format!("{:#}", Scenario::load(&p).unwrap_err())
        };
        let base = "name = \"x\"\nduration = \"5s\"\n[network]\nfull = 2\n";
        assert!(bad(&format!("{base}bogus = 1\n")).contains("bogus"));
        assert!(
            bad(&format!(
                "{base}[[faults]]\naction = \"kill\"\ntarget = \"node-7\"\nat = \"1s\"\n"
            ))
            .contains("node-7")
        );
        assert!(
            bad(&format!(
                "{base}[[faults]]\naction = \"kill\"\ntarget = \"random\"\n"
            ))
            .contains("either `at`")
        );
        assert!(
            bad(&format!(
                "{base}light = 1\n[[faults]]\naction = \"forking-provider\"\ntarget = \"light-0\"\nat = \"1s\"\n"
            ))
            .contains("full node")
        );
    }
}
