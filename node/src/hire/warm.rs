//! Warm starts (provider side): per agent whose agent file asks for them (`run.warm = N`), up
//! to N sandboxed processes started before any hire, booted and waiting for their `start`
//! line, so that a short hire does not wait for an interpreter to start.
//!
//! A warm process is an ordinary hire sandbox made early: the same package, limits, sandbox
//! and egress proxy address as a cold start, in its own working directory
//! (`<work>/.warm/<slot>`, renamed to the hire's when a hire takes it) and with its own proxy
//! password; the proxy itself starts, with the hire's grants, only when a hire takes it. It
//! serves **one hire at most** and is never reused; a resumed hire always starts cold. What
//! differs for the agent: no `SOUK_HIRE_ID` (its `start` message names the hire), its `HOME`
//! is the slot's path, and the placeholders of every credential slot of its manifest are set
//! (the proxy refuses the slots the client did not grant, as always).
//!
//! [`maintain`] also keeps the node's standby sandboxes (config `standby_sandboxes`) while it
//! offers agents. It keeps the pools filled (one launch at a time, off the actor) and drops
//! processes of manifests no longer offered; [`WarmPool::take`] hands one to a job. A taken
//! process's successor is *held* until [`SETTLE`] after the hire that took it has sent its
//! client the end of its chain ([`WarmPool::release`]), or [`HOLD`] after the take at the
//! latest: booting an interpreter takes a core for tens of milliseconds, which a short hire's
//! last steps would otherwise wait behind: its terminal entry, then the sandbox's teardown,
//! and, on a machine that also runs the client (a testnet, a developer's laptop), the
//! client's verification and storage of the last page.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use souk_protocol::Hash;
use souk_runtime::{AgentProcess, Launched};
use souk_store::Store;
use tokio_util::sync::CancellationToken;

use super::ctx::Ctx;
use super::egress::ProxyReservation;
use super::launch;
use super::offers::{Offerable, with_book};

/// How often the pools are checked.
const TICK: Duration = Duration::from_millis(250);
/// Most warm processes per agent, whatever its file asks.
pub const MAX_WARM: u32 = 8;
/// After a failed launch, how long before that agent is tried again.
const RETRY_AFTER: Duration = Duration::from_secs(30);
/// Longest a taken process's successor waits for its hire to release it.
pub(crate) const HOLD: Duration = Duration::from_secs(1);
/// How long after a hire's end was served its warm successor still waits.
pub(crate) const SETTLE: Duration = Duration::from_millis(25);
/// Standby sandboxes a node keeps while it offers agents, by default (config
/// `standby_sandboxes`; [`souk_runtime::sandbox::StandbyPool`]): a cold start that finds one
/// does not wait for its cgroup join. Two cover two cold starts at once; a taken one is
/// replaced at once.
pub const STANDBY_SANDBOXES: usize = 2;

/// One process started before its hire.
pub(crate) struct WarmSlot {
    /// The sandbox, its program running and waiting for `start`.
    pub(crate) launched: Launched,
    /// Its working directory (`<work>/.warm/<slot>`).
    pub(crate) workdir: PathBuf,
    /// Its egress proxy's address and password (`None`: the agent has no network).
    pub(crate) proxy: Option<ProxyReservation>,
}

/// The warm processes of every agent, by manifest id.
#[derive(Default)]
pub(crate) struct WarmPool {
    state: Mutex<Pools>,
    /// Wakes [`maintain`] to boot what is missing ([`WarmPool::release`]).
    wake: tokio::sync::Notify,
    /// Where each warm process is recorded ahead of its hire ([`super::ahead`]).
    store: Option<Arc<Store>>,
}

#[derive(Default)]
struct Pools {
    /// Ready processes, by manifest id.
    slots: HashMap<Hash, Vec<WarmSlot>>,
    /// Successors not to boot yet: by the hire that took a process, its manifest and until
    /// when at the latest.
    held: HashMap<Hash, (Hash, Instant)>,
}

impl WarmPool {
    /// An empty pool whose processes are recorded in `store`.
    pub(crate) fn new(store: Arc<Store>) -> WarmPool {
        WarmPool {
            store: Some(store),
            ..WarmPool::default()
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut Pools) -> T) -> T {
        match self.state.lock() {
            Ok(mut m) => f(&mut m),
            Err(poisoned) => f(&mut poisoned.into_inner()),
        }
    }

    /// A live warm process of manifest `id` for hire `hire`, if one is ready (dead ones are
    /// dropped). Its successor is held until [`WarmPool::release`], [`HOLD`] at the latest.
    pub(crate) fn take(&self, id: &Hash, hire: Hash) -> Option<WarmSlot> {
        let mut dead = Vec::new();
        let found = self.with(|m| {
            let list = m.slots.get_mut(id)?;
            while let Some(mut slot) = list.pop() {
                if slot.launched.is_alive() {
                    m.held.insert(hire, (*id, Instant::now() + HOLD));
                    return Some(slot);
                }
                dead.push(slot);
            }
            None
        });
        for slot in dead {
            self.discard(slot);
        }
        if found.is_none() {
            // Nothing taken, so nothing is held: boot what is missing now.
            self.wake.notify_one();
        }
        found
    }

    /// Lets the successor of the process hire `hire` took boot [`SETTLE`] from now (nothing
    /// if it took none or its hold ends sooner): the hire has sent its client the end of its
    /// chain.
    pub(crate) fn release(&self, hire: &Hash) {
        let settled = Instant::now() + SETTLE;
        let moved = self.with(|m| match m.held.get_mut(hire) {
            Some((_, until)) if *until > settled => {
                *until = settled;
                true
            }
            _ => false,
        });
        if moved {
            self.wake.notify_one();
        }
    }

    /// When the next hold ends, if any.
    fn next_hold_end(&self) -> Option<Instant> {
        self.with(|m| m.held.values().map(|(_, until)| *until).min())
    }

    /// How many processes of manifest `id` are ready or held (successors not to boot yet);
    /// holds past their time are dropped.
    fn counted(&self, id: &Hash, now: Instant) -> usize {
        self.with(|m| {
            m.held.retain(|_, (_, until)| *until > now);
            m.slots.get(id).map_or(0, Vec::len) + m.held.values().filter(|(of, _)| of == id).count()
        })
    }

    fn put(&self, id: Hash, slot: WarmSlot) {
        self.with(|m| m.slots.entry(id).or_default().push(slot));
    }

    /// Drops the processes of manifests not in `keep`.
    fn retain(&self, keep: &[Hash]) {
        let gone: Vec<WarmSlot> = self.with(|m| {
            m.held.retain(|_, (of, _)| keep.contains(of));
            let stale: Vec<Hash> = m
                .slots
                .keys()
                .filter(|id| !keep.contains(id))
                .copied()
                .collect();
            stale
                .into_iter()
                .filter_map(|id| m.slots.remove(&id))
                .flatten()
                .collect()
        });
        for slot in gone {
            self.discard(slot);
        }
    }

    /// Stops every warm process.
    pub(crate) fn clear(&self) {
        self.retain(&[]);
    }

    /// Kills a warm process that will serve no hire and removes its directory and record.
    pub(crate) fn discard(&self, slot: WarmSlot) {
        let WarmSlot {
            launched,
            workdir,
            proxy,
        } = slot;
        let record = launched.record().clone();
        drop(launched);
        drop(proxy);
        if let Some(store) = &self.store {
            super::ahead::forget(store.clone(), &record);
        }
        // Off the async threads: a directory may hold files.
        tokio::task::spawn_blocking(move || {
            let _ = std::fs::remove_dir_all(workdir);
        });
    }
}

/// Keeps every offered agent's pool at its `run.warm` size until `stop`; then empties them.
/// Runs on the runtime (a sandbox dies with the thread that spawned it).
pub(crate) async fn maintain(ctx: Ctx, stop: CancellationToken) {
    // Leftovers of an earlier run of the node (its warm processes died with it).
    let leftovers = ctx.workdir.join(".warm");
    let _ = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(leftovers)).await;
    let mut failed: HashMap<Hash, tokio::time::Instant> = HashMap::new();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            _ = tick.tick() => {}
            () = ctx.warm.wake.notified() => {}
            () = hold_end(ctx.warm.next_hold_end()) => {}
        }
        let offers: Vec<Offerable> = with_book(&ctx.offers, |b| b.current());
        if let Some(pool) = ctx.standby.as_ref().filter(|_| !offers.is_empty()) {
            pool.fill();
        }
        let now_ms = crate::now_ms();
        let wanted: Vec<&Offerable> = offers
            .iter()
            .filter(|o| o.run.warm > 0 && o.manifest.body().expires_at > now_ms)
            .collect();
        ctx.warm
            .retain(&wanted.iter().map(|o| o.manifest.id()).collect::<Vec<_>>());
        for offer in wanted {
            let id = offer.manifest.id();
            if failed.get(&id).is_some_and(|t| t.elapsed() < RETRY_AFTER) {
                continue;
            }
            let want = offer.run.warm.min(MAX_WARM) as usize;
            while ctx.warm.counted(&id, Instant::now()) < want {
                let made = tokio::select! {
                    () = stop.cancelled() => break,
                    made = launch_warm(&ctx, offer) => made,
                };
                match made {
                    Ok(slot) => {
                        failed.remove(&id);
                        ctx.warm.put(id, slot);
                    }
                    Err(e) => {
                        tracing::warn!(agent = %offer.manifest.body().name, "cannot keep a warm process: {e}");
                        failed.insert(id, tokio::time::Instant::now());
                        break;
                    }
                }
            }
        }
    }
    ctx.warm.clear();
    let (standby, store) = (ctx.standby.clone(), ctx.store.clone());
    drop(ctx);
    if let Some(pool) = standby {
        let _ = tokio::task::spawn_blocking(move || pool.clear()).await;
    }
    // Everything started ahead of a hire is gone: so go its records.
    super::ahead::stop_all(store).await;
}

/// Waits until `until` (forever without one).
async fn hold_end(until: Option<Instant>) {
    match until {
        Some(t) => tokio::time::sleep_until(t.into()).await,
        None => std::future::pending().await,
    }
}

/// Starts one warm process of `offer`.
async fn launch_warm(ctx: &Ctx, offer: &Offerable) -> Result<WarmSlot, String> {
    let manifest = offer.manifest.body();
    let run = &offer.run;
    launch::check_runnable(ctx, run, manifest).await?;
    let slot = hex::encode(
        crate::data_dir::random_32()
            .map_err(|e| e.to_string())?
            .as_ref(),
    );
    let workdir = ctx.workdir.join(".warm").join(&slot);
    launch::prepare_dirs(&ctx.workdir, &workdir)
        .await
        .map_err(|e| format!("cannot create {}: {e}", workdir.display()))?;
    let sandboxed = ctx
        .settings
        .sandbox
        .as_ref()
        .is_some_and(|s| s.is_isolated());
    let proxy = if manifest.hosts.is_empty() && manifest.credentials.is_empty() {
        None
    } else {
        Some(
            ProxyReservation::new(&slot, sandboxed, &launch::sockets_dir(&ctx.workdir))
                .await
                .map_err(|e| format!("cannot reserve a proxy address: {e}"))?,
        )
    };
    let mut env = launch::agent_env(run);
    if let Some(p) = &proxy {
        env.extend(p.env());
        for c in &manifest.credentials {
            env.push((
                souk_protocol::credential::env_var(&c.name),
                souk_protocol::credential::placeholder(&c.name),
            ));
        }
    }
    let mut cfg = launch::run_config(
        ctx,
        manifest,
        run,
        workdir.clone(),
        env,
        proxy.as_ref().and_then(ProxyReservation::forward),
        Duration::from_millis(manifest.limits.max_duration_ms),
    );
    cfg.warm = true;
    let made = async {
        let mut launched = AgentProcess::launch(&cfg, &slot)
            .await
            .map_err(|e| e.to_string())?;
        // Recorded before it runs anything, so that a crash of the node does not leave it.
        super::ahead::record(ctx.store.clone(), launched.record())
            .await
            .map_err(|e| format!("cannot record it: {e}"))?;
        launched.ignite().await.map_err(|e| e.to_string())?;
        Ok::<_, String>(launched)
    }
    .await;
    match made {
        Ok(launched) => Ok(WarmSlot {
            launched,
            workdir,
            proxy,
        }),
        Err(e) => {
            let _ = tokio::fs::remove_dir_all(&workdir).await;
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(b: u8) -> Hash {
        Hash::digest(&[b])
    }

    /// A taken process's successor counts as present (is not booted) until its hire
    /// releases it or [`HOLD`] passes; other agents' holds do not count.
    #[test]
    fn a_held_successor_counts_until_released_or_expired() {
        let pool = WarmPool::default();
        let (agent, other) = (hash(1), hash(2));
        let (hire_a, hire_b) = (hash(10), hash(11));
        let now = Instant::now();
        pool.with(|m| {
            m.held.insert(hire_a, (agent, now + HOLD));
            m.held.insert(hire_b, (agent, now + HOLD));
        });
        assert_eq!(pool.counted(&agent, now), 2);
        assert_eq!(pool.counted(&other, now), 0);
        // Released: the hold ends SETTLE from the release, long before HOLD.
        pool.release(&hire_a);
        let settled = pool.next_hold_end().unwrap_or(now + HOLD);
        assert!(settled <= Instant::now() + SETTLE && settled < now + HOLD);
        // Releasing again, or a hire that took nothing, moves nothing.
        pool.release(&hire_a);
        pool.release(&hash(12));
        assert_eq!(pool.next_hold_end(), Some(settled));
        assert_eq!(pool.counted(&agent, settled), 1);
        // Past its time a hold no longer counts (and is dropped).
        assert_eq!(pool.counted(&agent, now + HOLD), 0);
        assert!(pool.with(|m| m.held.is_empty()));
        assert_eq!(pool.next_hold_end(), None);
    }

    /// Holds of an agent that is no longer offered go with its processes.
    #[test]
    fn holds_of_an_agent_no_longer_offered_are_dropped() {
        let pool = WarmPool::default();
        let now = Instant::now();
        pool.with(|m| {
            m.held.insert(hash(10), (hash(1), now + HOLD));
            m.held.insert(hash(11), (hash(2), now + HOLD));
        });
        pool.retain(&[hash(2)]);
        assert_eq!(pool.counted(&hash(1), now), 0);
        assert_eq!(pool.counted(&hash(2), now), 1);
    }
}
