//! The fault timeline: expands the scenario's `[[faults]]` into timed actions (one-off at
//! `at`, or every `every` ± `jitter` between `from` and `until`), resolves `random-*`
//! targets among the nodes up at that moment with the run's seed, and runs them, restarting
//! killed or stopped nodes after `restart_after` on their own threads.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::file::{Action, Fault};
use super::live::Live;
use super::rng::Rng;

/// One planned action.
#[derive(Debug, Clone)]
pub(crate) struct Planned {
    pub(crate) at: Duration,
    pub(crate) fault: usize,
}

/// Every action of `faults` within `duration`, in time order (jitter drawn from `rng`).
pub(crate) fn plan(faults: &[Fault], duration: Duration, rng: &mut Rng) -> Vec<Planned> {
    let mut out = Vec::new();
    for (i, f) in faults.iter().enumerate() {
        if let Some(at) = f.at {
            if at <= duration {
                out.push(Planned { at, fault: i });
            }
            continue;
        }
        let Some(every) = f.every else { continue };
        let until = f.until.unwrap_or(duration).min(duration);
        let mut t = f.from.unwrap_or(every);
        while t <= until {
            let jitter = f.jitter.map_or(Duration::ZERO, |j| j.mul_f64(rng.unit()));
            let at = t + jitter;
            if at <= until {
                out.push(Planned { at, fault: i });
            }
            t += every;
        }
    }
    out.sort_by_key(|p| p.at);
    out
}

/// Who the scenario's random targets choose from.
#[derive(Debug, Clone)]
pub(crate) struct Roles {
    pub(crate) full: Vec<String>,
    pub(crate) light: Vec<String>,
    pub(crate) providers: Vec<String>,
    pub(crate) clients: Vec<String>,
}

/// Runs `plan` from `start`; returns when the last action was taken (restarts may still be
/// under way on their threads, which are returned).
pub(crate) fn run(
    live: &Arc<Live>,
    faults: &[Fault],
    plan: &[Planned],
    roles: &Roles,
    rng: &mut Rng,
    start: Instant,
) -> Vec<std::thread::JoinHandle<()>> {
    let mut restarts = Vec::new();
    for p in plan {
        let wait = (start + p.at).saturating_duration_since(Instant::now());
        std::thread::sleep(wait);
        if crate::procs::interrupted() {
            break;
        }
        let f = &faults[p.fault];
        if matches!(f.action, Action::Partition | Action::Latency | Action::Heal) {
            let mut lf = super::live::LinkFaults::default();
            let groups = f
                .groups
                .iter()
                .map(|g| g.join(","))
                .collect::<Vec<_>>()
                .join(" | ");
            let detail = match f.action {
                Action::Partition => {
                    lf.partition = f.groups.clone();
                    groups
                }
                Action::Latency => {
                    let link = souk_node::swarm::gate::Link {
                        delay_ms: f.delay.map_or(0, |d| d.as_millis() as u64),
                        jitter_ms: f.link_jitter.map_or(0, |d| d.as_millis() as u64),
                        loss: f.loss,
                    };
                    let d = format!(
                        "{groups}: +{} ms ± {} ms, loss {}",
                        link.delay_ms, link.jitter_ms, link.loss
                    );
                    lf.latency = Some((f.groups.clone(), link));
                    d
                }
                _ => "all links restored".to_owned(),
            };
            eprintln!(
                "  {:>6.1}s  {} {detail}",
                p.at.as_secs_f64(),
                f.action.as_str()
            );
            if let Err(e) = live.set_link_faults(lf, detail) {
                eprintln!("  {}: {e:#}", f.action.as_str());
            }
            continue;
        }
        let pool: Vec<String> = match f.target.as_str() {
            "random" => roles.full.iter().chain(&roles.light).cloned().collect(),
            "random-full" => roles.full.clone(),
            "random-light" => roles.light.clone(),
            "random-provider" => roles.providers.clone(),
            "random-client" => roles.clients.clone(),
            name => vec![name.to_owned()],
        };
        let target = match f.action {
            Action::Start => {
                let down = live.down();
                let pool: Vec<String> = pool.into_iter().filter(|n| down.contains(n)).collect();
                rng.pick(&pool).cloned()
            }
            _ => rng.pick(&live.up_among(&pool)).cloned(),
        };
        let Some(target) = target else {
            eprintln!(
                "  {:>6.1}s  {} {}: no node to act on now, skipped",
                p.at.as_secs_f64(),
                f.action.as_str(),
                f.target
            );
            continue;
        };
        match f.action {
            Action::InvalidGossip => {
                let count = f.count.unwrap_or(7);
                eprintln!(
                    "  {:>6.1}s  a hostile peer gossips {count} invalid manifests at {target}",
                    p.at.as_secs_f64()
                );
                let live = live.clone();
                restarts.push(std::thread::spawn(move || {
                    if let Err(e) = live.send_hostile(&target, count) {
                        eprintln!("  the hostile peer at {target} failed: {e:#}");
                    }
                }));
            }
            Action::ForkingProvider => {
                eprintln!(
                    "  {:>6.1}s  a forking provider joins through {target}",
                    p.at.as_secs_f64()
                );
                let (live, count) = (live.clone(), f.count);
                let roles = roles.clone();
                restarts.push(std::thread::spawn(move || {
                    super::fork::run(&live, &target, count, &roles);
                }));
            }
            Action::Start => {
                eprintln!("  {:>6.1}s  start {target}", p.at.as_secs_f64());
                let live = live.clone();
                restarts.push(std::thread::spawn(move || {
                    if let Err(e) = live.bring_up(&target) {
                        eprintln!("  {target} did not start: {e:#}");
                    }
                }));
            }
            _ => {
                let hard = f.action == Action::Kill;
                if !live.take_down(&target, hard) {
                    continue;
                }
                eprintln!(
                    "  {:>6.1}s  {} {target}",
                    p.at.as_secs_f64(),
                    if hard { "kill -9" } else { "stop" }
                );
                if let Some(after) = f.restart_after {
                    let live = live.clone();
                    restarts.push(std::thread::spawn(move || {
                        std::thread::sleep(after);
                        if live.over.load(std::sync::atomic::Ordering::SeqCst) {
                            return;
                        }
                        if let Err(e) = live.bring_up(&target) {
                            eprintln!("  {target} did not restart: {e:#}");
                        }
                    }));
                }
            }
        }
    }
    restarts
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn fault(toml_text: &str) -> Fault {
        toml::from_str(toml_text).unwrap()
    }

    #[test]
    fn recurring_faults_expand_within_their_window_and_one_offs_stay_put() {
        let faults = vec![
            fault("action = \"kill\"\ntarget = \"random\"\nevery = \"2s\"\nuntil = \"7s\"\n"),
            fault("action = \"stop\"\ntarget = \"node-0\"\nat = \"3s\"\n"),
            fault("action = \"start\"\ntarget = \"node-0\"\nat = \"30s\"\n"),
        ];
        let p = plan(&faults, Duration::from_secs(10), &mut Rng::new(1));
        let times: Vec<(u64, usize)> = p.iter().map(|p| (p.at.as_secs(), p.fault)).collect();
        assert_eq!(times, vec![(2, 0), (3, 1), (4, 0), (6, 0)]);
    }

    #[test]
    fn jitter_is_reproducible_from_the_seed() {
        let faults = vec![fault(
            "action = \"kill\"\ntarget = \"random\"\nevery = \"1s\"\njitter = \"500ms\"\n",
        )];
        let a = plan(&faults, Duration::from_secs(20), &mut Rng::new(9));
        let b = plan(&faults, Duration::from_secs(20), &mut Rng::new(9));
        let c = plan(&faults, Duration::from_secs(20), &mut Rng::new(10));
        let at = |v: &[Planned]| v.iter().map(|p| p.at).collect::<Vec<_>>();
        assert_eq!(at(&a), at(&b));
        assert_ne!(at(&a), at(&c));
        assert!(a.iter().all(|p| p.at <= Duration::from_secs(20)));
    }
}
