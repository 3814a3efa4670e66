//! The forking-provider fault (`action = "forking-provider"`): starts the kit's forking
//! provider ([`crate::conformance::forking`]) through a full node, hires its agent from a
//! full node other than the target (a hire the provider keeps waiting and never forks: its
//! client can only learn of the fork from the proof the others publish) and from all but the
//! last of the workload's clients (every hire contracted before the provider serves its
//! fork), waits until the clients have closed those hires and every full node has flagged
//! the provider, tries one more hire from each workload client (it must be refused
//! `flagged`; the last one never hired the provider, so it must have fetched the proof from
//! a full peer), then stops the provider. [`facts`] then reads from the nodes' events and the clients' hire records what
//! the `fork_contained` assertion judges and the report shows.

use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use super::faults::Roles;
use super::live::{Live, Status};
use super::observe::Seen;
use super::workload::{self, Asked, Ended, HireRequest};
use crate::conformance::forking::{ForkingProvider, Served};
use crate::network::now_ms;

/// How long each stage may take (contracts, closes, flags) before the fault gives up on it.
const STAGE_TIMEOUT: Duration = Duration::from_secs(30);

/// What one forking provider did and what the scenario saw while it ran.
#[derive(Debug, Clone, Default)]
pub(crate) struct ForkRun {
    /// The full node it joined through.
    pub(crate) target: String,
    /// Its node id (`souk…`) and peer id.
    pub(crate) node_id: String,
    pub(crate) peer_id: String,
    /// The hires of its agent the clients made.
    pub(crate) hires: Vec<Asked>,
    /// How each hire ended on its client, as last seen by the fault (hire id -> words).
    pub(crate) ends: std::collections::HashMap<String, String>,
    /// Hires made by a client outside the workload's (the waiter), as last seen there, for
    /// the report.
    pub(crate) outside: Vec<Ended>,
    /// What it served.
    pub(crate) served: Served,
    /// Hires tried after the flag: (client, the API code of the refusal, or `contracted`).
    pub(crate) after_flag: Vec<(String, String)>,
    /// Why the fault could not run to its end, if it did not.
    pub(crate) error: Option<String>,
}

/// Runs the fault (blocking) and records it on `live`.
pub(crate) fn run(live: &Arc<Live>, target: &str, count: Option<u32>, roles: &Roles) {
    let mut run = ForkRun {
        target: target.to_owned(),
        ..ForkRun::default()
    };
    if let Err(e) = drive(live, target, count, roles, &mut run) {
        eprintln!("  the forking provider at {target}: {e:#}");
        run.error = Some(format!("{e:#}"));
    }
    let refused = run
        .after_flag
        .iter()
        .filter(|(_, c)| c == "flagged")
        .count();
    live.record(
        "forking-provider",
        target,
        Some(format!(
            "provider {}: {} hire(s) served, {} fork(s) served; {refused} of {} later hire(s) \
             refused flagged{}",
            crate::souk::short(&run.node_id, 12),
            run.served.hires.len(),
            run.served.forks.len(),
            run.after_flag.len(),
            run.error
                .as_deref()
                .map(|e| format!("; {e}"))
                .unwrap_or_default()
        )),
    );
    live.forks
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(run);
}

fn drive(
    live: &Arc<Live>,
    target: &str,
    count: Option<u32>,
    roles: &Roles,
    run: &mut ForkRun,
) -> anyhow::Result<()> {
    let clients = &roles.clients;
    anyhow::ensure!(!clients.is_empty(), "no client to hire the forked agent");
    // The last client keeps out of it (unless it is the only one): after the flag it has to
    // learn of the proof from the network to refuse a hire.
    let hirers = &clients[..clients.len().saturating_sub(1).max(1)];
    let count = count.unwrap_or(hirers.len() as u32);
    // A full node's hire the provider never forks: closed on the network's proof.
    let waiter = roles
        .full
        .iter()
        .find(|n| *n != target && !clients.contains(n) && live.status(n) == Status::Up)
        .cloned();
    let stuck = u32::from(waiter.is_some());
    let provider = ForkingProvider::start(&live.p2p_addr(target)?, count + stuck, stuck)?;
    run.node_id = provider.node_id.clone();
    run.peer_id = provider.peer_id.clone();
    let handle = provider.handle();
    eprintln!(
        "  forking provider {handle} (manifest {}) joined through {target}; {count} hire(s) of \
         its agent",
        crate::souk::short(&provider.manifest_id, 12)
    );
    let input = live.dir(target)?.with_file_name("fork-input.json");
    std::fs::write(&input, br#"{"text":"fork me"}"#)?;
    let req = HireRequest {
        input,
        max_price: None,
        deadline: None,
        retry_busy: None,
    };

    // Every hire contracted: the provider serves no fork before. The waiter's first, so it
    // is the one the provider keeps waiting.
    let give_up = Instant::now() + STAGE_TIMEOUT;
    if let Some(w) = &waiter {
        let mut asked = Asked {
            client: w.clone(),
            provider: format!("forking-provider@{target}"),
            asked_at_ms: now_ms(),
            hire_id: None,
            attempts: 0,
            last_error: None,
        };
        workload::hire_until_contracted(live, &mut asked, &handle, &req, give_up);
        run.hires.push(asked);
    }
    let threads: Vec<_> = (0..count as usize)
        .map(|i| {
            let (live, req, handle) = (live.clone(), req.clone(), handle.clone());
            let mut asked = Asked {
                client: hirers[i % hirers.len()].clone(),
                provider: format!("forking-provider@{target}"),
                asked_at_ms: now_ms(),
                hire_id: None,
                attempts: 0,
                last_error: None,
            };
            std::thread::spawn(move || {
                workload::hire_until_contracted(&live, &mut asked, &handle, &req, give_up);
                asked
            })
        })
        .collect();
    run.hires
        .extend(threads.into_iter().filter_map(|t| t.join().ok()));
    let ids: Vec<String> = run.hires.iter().filter_map(|a| a.hire_id.clone()).collect();
    if ids.len() < run.hires.len() {
        let why: Vec<String> = run
            .hires
            .iter()
            .filter_map(|a| a.last_error.clone())
            .collect();
        run.served = provider.stop();
        anyhow::bail!(
            "{} of {} hires of the forked agent not contracted: {}",
            run.hires.len() - ids.len(),
            run.hires.len(),
            why.join("; ")
        );
    }

    // The clients see the fork (or the waiter the proof) and close their hires.
    let deadline = Instant::now() + STAGE_TIMEOUT;
    let watched: Vec<String> = clients.iter().chain(&waiter).cloned().collect();
    loop {
        let all = workload::client_hires(live, &watched);
        for id in &ids {
            if let Some((_, h)) = all.get(id) {
                run.ends.insert(id.clone(), end_of_record(h));
            }
        }
        run.outside = all
            .values()
            .filter(|(c, h)| !clients.contains(c) && ids.contains(&h.hire_id))
            .map(|(c, h)| Ended::unchecked(c, h.clone()))
            .collect();
        let open = ids
            .iter()
            .filter(|id| !all.get(*id).is_some_and(|(_, h)| workload::has_ended(h)))
            .count();
        if open == 0 {
            break;
        }
        if Instant::now() >= deadline || crate::procs::interrupted() {
            run.served = provider.stop();
            anyhow::bail!("{open} hire(s) of the forked agent still open after 30 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }

    // Every full node up flags the provider (the proof spreads by gossip).
    let deadline = Instant::now() + STAGE_TIMEOUT;
    while Instant::now() < deadline && !crate::procs::interrupted() {
        let events = live.obs.events();
        let waiting = live
            .up_among(&roles.full)
            .into_iter()
            .filter(|n| flagged_at(&events, n, &run.node_id).is_none())
            .count();
        if waiting == 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }

    // A hire tried now is refused before the provider is asked.
    for client in clients {
        if live.status(client) != Status::Up {
            continue;
        }
        let args = [
            "hire",
            handle.as_str(),
            "--input",
            &req.input.display().to_string(),
            "--json",
        ];
        let answer = live
            .souk
            .run(Some(live.dir(client)?), &args, crate::souk::COMMAND_TIMEOUT)?;
        let code = if answer.status.success() {
            "contracted".to_owned()
        } else {
            serde_json::from_str::<serde_json::Value>(answer.stderr.trim())
                .ok()
                .and_then(|v| v["api_code"].as_str().map(str::to_owned))
                .unwrap_or_else(|| format!("error: {}", answer.stderr.trim()))
        };
        run.after_flag.push((client.clone(), code));
    }
    run.served = provider.stop();
    Ok(())
}

/// When `node` flagged `provider` (its first `provider_flagged` event), Unix ms.
fn flagged_at(events: &[Seen], node: &str, provider: &str) -> Option<u64> {
    events
        .iter()
        .filter(|e| {
            e.node == node
                && e.event["type"] == "provider_flagged"
                && e.event["provider"] == provider
        })
        .filter_map(|e| e.event["at_ms"].as_u64())
        .min()
}

/// What the `fork_contained` assertion judges for one forking provider.
#[derive(Debug, Clone)]
pub(crate) struct ForkFacts {
    pub(crate) target: String,
    pub(crate) provider: String,
    pub(crate) error: Option<String>,
    pub(crate) hires_served: usize,
    pub(crate) forks_served: usize,
    /// Hires it kept waiting and never forked (their clients learned from the network).
    pub(crate) stuck: usize,
    /// Each hire of its agent: (client, hire id, how it ended on the client).
    pub(crate) hires: Vec<(String, Option<String>, String)>,
    /// Each full node: ms from the first fork served to its flag (`None`: never flagged).
    pub(crate) full_flags: Vec<(String, Option<i64>)>,
    /// Light nodes that flagged it, of all light nodes.
    pub(crate) light_flags: (usize, usize),
    /// Hires tried after the flag: (client, the refusal's API code, or `contracted`).
    pub(crate) after_flag: Vec<(String, String)>,
}

impl ForkFacts {
    /// Whether the fork was contained: every hire closed `provider-equivocated`, every full
    /// node flagged the provider, every later hire refused `flagged`.
    pub(crate) fn contained(&self) -> bool {
        self.error.is_none()
            && self.forks_served > 0
            && !self.hires.is_empty()
            && self
                .hires
                .iter()
                .all(|(_, id, end)| id.is_some() && end == CLOSED)
            && self.full_flags.iter().all(|(_, t)| t.is_some())
            && !self.after_flag.is_empty()
            && self.after_flag.iter().all(|(_, c)| c == "flagged")
    }

    /// One line for people.
    pub(crate) fn describe(&self) -> String {
        let closed = self.hires.iter().filter(|(_, _, e)| e == CLOSED).count();
        let flagged = self.full_flags.iter().filter(|(_, t)| t.is_some()).count();
        let times: Vec<String> = self
            .full_flags
            .iter()
            .map(|(n, t)| match t {
                Some(ms) => format!("{n} {ms} ms"),
                None => format!("{n} never"),
            })
            .collect();
        let refused = self
            .after_flag
            .iter()
            .filter(|(_, c)| c == "flagged")
            .count();
        let mut s = format!(
            "forking provider {} (via {}): {} hire(s) served, {} fork(s) served, {} kept waiting \
             and never forked; {closed} of {} hire(s) closed provider-equivocated; flagged by {flagged} of {} full nodes (fork to \
             flag: {}) and {} of {} light nodes; {refused} of {} hire(s) tried after the flag \
             refused `flagged`",
            crate::souk::short(&self.provider, 12),
            self.target,
            self.hires_served,
            self.forks_served,
            self.stuck,
            self.hires.len(),
            self.full_flags.len(),
            times.join(", "),
            self.light_flags.0,
            self.light_flags.1,
            self.after_flag.len()
        );
        let odd: Vec<String> = self
            .hires
            .iter()
            .filter(|(_, _, e)| e != CLOSED)
            .map(|(c, id, e)| {
                format!(
                    "{c} {}: {e}",
                    id.as_deref()
                        .map_or("(no contract)", |i| crate::souk::short(i, 12))
                )
            })
            .chain(
                self.after_flag
                    .iter()
                    .filter(|(_, c)| c != "flagged")
                    .map(|(c, code)| format!("{c} after the flag: {code}")),
            )
            .chain(self.error.iter().cloned())
            .collect();
        if !odd.is_empty() {
            s.push_str(&format!(" [{}]", odd.join("; ")));
        }
        s
    }
}

/// How a forked hire must end on its client.
const CLOSED: &str = "closed: provider-equivocated";

/// The facts of each forking provider, from the nodes' `events` and the hires as they
/// `ended` on their clients.
pub(crate) fn facts(
    runs: &[ForkRun],
    events: &[Seen],
    full: &[String],
    light: &[String],
    ended: &[Ended],
) -> Vec<ForkFacts> {
    runs.iter()
        .map(|r| {
            let first_fork = r.served.forks.iter().map(|(_, t)| *t).min();
            let hires = r
                .hires
                .iter()
                .map(|a| {
                    let end = a
                        .hire_id
                        .as_ref()
                        .and_then(|id| {
                            ended
                                .iter()
                                .find(|e| &e.record.hire_id == id)
                                .map(|e| end_of_record(&e.record))
                                .or_else(|| r.ends.get(id).cloned())
                        })
                        .unwrap_or_else(|| "not seen on its client".to_owned());
                    (a.client.clone(), a.hire_id.clone(), end)
                })
                .collect();
            let full_flags = full
                .iter()
                .map(|n| {
                    let at = flagged_at(events, n, &r.node_id);
                    let since = at.map(|t| t as i64 - first_fork.unwrap_or(t) as i64);
                    (n.clone(), since)
                })
                .collect();
            let light_flagged = light
                .iter()
                .filter(|n| flagged_at(events, n, &r.node_id).is_some())
                .count();
            ForkFacts {
                target: r.target.clone(),
                provider: r.node_id.clone(),
                error: r.error.clone(),
                hires_served: r.served.hires.len(),
                forks_served: r.served.forks.len(),
                stuck: r.served.stuck.len(),
                hires,
                full_flags,
                light_flags: (light_flagged, light.len()),
                after_flag: r.after_flag.clone(),
            }
        })
        .collect()
}

/// How a hire ended on its client, in words (`closed: provider-equivocated` when its client
/// closed it for that reason and it was neither completed nor settled).
fn end_of_record(r: &crate::souk::Hire) -> String {
    match &r.closed {
        Some(c) if r.state != "completed" && r.verdict.is_none() => format!("closed: {}", c.reason),
        _ => match &r.verdict {
            Some(v) => format!("{} ({v})", r.state),
            None => r.state.clone(),
        },
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::*;

    fn asked(client: &str, id: &str) -> Asked {
        Asked {
            client: client.into(),
            provider: "forking-provider@node-1".into(),
            asked_at_ms: 100,
            hire_id: Some(id.into()),
            attempts: 1,
            last_error: None,
        }
    }

    fn ended(client: &str, id: &str, state: &str, closed: bool) -> Ended {
        let mut record = json!({
            "hire_id": id, "state": state, "verdict": null, "agent": "forked", "price": 1000,
            "currency": "USD", "entries": 2, "error": null,
        });
        if closed {
            record["closed"] = json!({ "reason": "provider-equivocated", "at": 1_050 });
        }
        Ended::unchecked(client, serde_json::from_value(record).unwrap())
    }

    fn flag(node: &str, at_ms: u64) -> Seen {
        Seen {
            node: node.into(),
            event: json!({
                "type": "provider_flagged", "provider": "soukX", "via": "gossip", "at_ms": at_ms,
            }),
        }
    }

    fn run() -> ForkRun {
        ForkRun {
            target: "node-1".into(),
            node_id: "soukX".into(),
            peer_id: "12D3".into(),
            hires: vec![
                asked("node-0", "cc"),
                asked("light-0", "aa"),
                asked("light-1", "bb"),
            ],
            // node-0's hire ended on a node the scenario's clients list does not hold.
            ends: [("cc".to_owned(), "closed: provider-equivocated".to_owned())].into(),
            outside: Vec::new(),
            served: Served {
                hires: vec!["cc".into(), "aa".into(), "bb".into()],
                forks: vec![("aa".into(), 1_000), ("bb".into(), 1_002)],
                stuck: vec!["cc".into()],
            },
            after_flag: vec![
                ("light-0".into(), "flagged".into()),
                ("light-1".into(), "flagged".into()),
            ],
            error: None,
        }
    }

    #[test]
    fn contained_means_hires_closed_full_nodes_flagged_later_hires_refused() {
        let full = ["node-0".to_owned(), "node-1".to_owned()];
        let light = ["light-0".to_owned(), "light-1".to_owned()];
        let events = vec![
            flag("node-0", 1_030),
            flag("node-1", 1_020),
            flag("light-0", 1_010),
        ];
        let closed = vec![
            ended("light-0", "aa", "working", true),
            ended("light-1", "bb", "working", true),
        ];
        let f = facts(&[run()], &events, &full, &light, &closed);
        assert!(f[0].contained(), "{}", f[0].describe());
        assert_eq!(
            f[0].full_flags,
            vec![("node-0".into(), Some(30)), ("node-1".into(), Some(20))]
        );
        assert_eq!(f[0].light_flags, (1, 2));
        assert!(f[0].describe().contains("flagged by 2 of 2 full nodes"));
        assert!(f[0].describe().contains("1 kept waiting and never forked"));

        // A full node that never flagged the provider.
        let f = facts(&[run()], &events[1..], &full, &light, &closed);
        assert!(!f[0].contained());
        assert!(f[0].describe().contains("node-0 never"));
        // A forked hire that completed instead.
        let mut done = closed.clone();
        done[1] = ended("light-1", "bb", "completed", false);
        let f = facts(&[run()], &events, &full, &light, &done);
        assert!(!f[0].contained());
        assert!(f[0].describe().contains("light-1 bb: completed"));
        // A hire made after the flag.
        let mut late = run();
        late.after_flag[0].1 = "contracted".into();
        let f = facts(&[late], &events, &full, &light, &closed);
        assert!(!f[0].contained());
        // The hire kept waiting was never closed by its client.
        let mut open = run();
        open.ends.insert("cc".into(), "working".into());
        let f = facts(&[open], &events, &full, &light, &closed);
        assert!(!f[0].contained());
        assert!(f[0].describe().contains("node-0 cc: working"));
        // No fork served at all.
        let mut honest = run();
        honest.served.forks.clear();
        assert!(!facts(&[honest], &events, &full, &light, &closed)[0].contained());
    }
}
