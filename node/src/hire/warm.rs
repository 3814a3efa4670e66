//! Sandboxes made before their hire (provider side), per offered agent:
//!
//! - **warm processes** (`run.warm = N`): sandboxed processes started, booted and waiting for
//!   their `start` line, so that a short hire does not wait for an interpreter to start;
//! - **prepared sandboxes** (`run.prepared = N`, [`PREPARED_SANDBOXES`] by default): the same
//!   sandbox, set up (namespaces, mounts, cgroup, working directory, proxy address) with no
//!   process in it yet; the agent's program starts in it when a hire takes it, so the hire
//!   does not wait for the sandbox to be made, only for its program to start.
//!
//! Either is an ordinary hire sandbox made early: the same package, limits, sandbox and egress
//! proxy address as a cold start, in its own working directory (`<work>/.warm/<slot>`, renamed
//! to the hire's when a hire takes it) and with its own proxy password; the proxy itself
//! starts, with the hire's grants, only when a hire takes it. It serves **one hire at most**
//! and is never reused; a resumed hire always starts cold. What differs for the agent: no
//! `SOUK_HIRE_ID` (its `start` message names the hire), its `HOME` is the slot's path, and the
//! placeholders of every credential slot of its manifest are set (the proxy refuses the slots
//! the client did not grant, as always).
//!
//! [`maintain`] also keeps the node's standby sandboxes (config `standby_sandboxes`) while it
//! offers agents. It keeps the pools filled (one launch at a time, off the actor) and drops
//! sandboxes of manifests no longer offered; [`WarmPool::take`] hands one to a job, a warm
//! process first. A taken sandbox's successor is *held* until [`SETTLE`] after the hire that
//! took it has sent its client the end of its chain ([`WarmPool::release`]), or [`HOLD`]
//! after the take at the latest. Booting an interpreter takes a core for
//! tens of milliseconds, making a sandbox several milliseconds of both cores, which a short
//! hire would otherwise wait behind: its own program's start, its terminal entry, then the
//! sandbox's teardown, and, on a machine that also runs the client (a testnet, a developer's
//! laptop), the client's verification and storage of the last page. With two of each kind
//! (the default for prepared sandboxes), sequential hires find one ready while the other's
//! successor is made.

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
use crate::metrics::Metrics;

/// How often the pools are checked.
const TICK: Duration = Duration::from_millis(250);
/// Most warm processes per agent, whatever its file asks.
pub const MAX_WARM: u32 = 8;
/// Prepared sandboxes per agent when its file does not say (`run.prepared`): two, so that
/// sequential hires find one ready while the successor of the other is held.
pub const PREPARED_SANDBOXES: u32 = 2;
/// Most prepared sandboxes per agent.
pub const MAX_PREPARED: u32 = 8;
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

/// One sandbox made before its hire.
pub(crate) struct WarmSlot {
    /// The sandbox: its program running and waiting for `start` (a warm process), or not
    /// started yet (a prepared sandbox; [`souk_runtime::Launched::start_for`] starts it).
    pub(crate) launched: Launched,
    /// Whether its program runs already (a warm process).
    pub(crate) booted: bool,
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
    /// Where the number of ready sandboxes shows (`souk_sandboxes_ready`).
    metrics: Option<Arc<Metrics>>,
}

/// A successor not to make yet ([`WarmPool::take`]).
struct Held {
    manifest: Hash,
    booted: bool,
    until: Instant,
}

#[derive(Default)]
struct Pools {
    /// Ready processes, by manifest id.
    slots: HashMap<Hash, Vec<WarmSlot>>,
    /// Successors not to make yet: by the hire that took a sandbox, its manifest, whether it
    /// was a warm process, and until when at the latest.
    held: HashMap<Hash, Held>,
    /// Sandboxes whose program was started for an offer ([`WarmPool::park`]), by request id:
    /// the manifest, the sandbox, and until when it waits for the acceptance.
    parked: HashMap<Hash, (Hash, WarmSlot, Instant)>,
}

impl WarmPool {
    /// An empty pool whose sandboxes are recorded in `store` and counted in `metrics`.
    pub(crate) fn new(store: Arc<Store>, metrics: Arc<Metrics>) -> WarmPool {
        WarmPool {
            store: Some(store),
            metrics: Some(metrics),
            ..WarmPool::default()
        }
    }

    /// Runs `f` on the pools, then shows how many sandboxes of each kind are ready.
    fn with<T>(&self, f: impl FnOnce(&mut Pools) -> T) -> T {
        let mut m = match self.state.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        let out = f(&mut m);
        if let Some(metrics) = &self.metrics {
            for booted in [true, false] {
                let n = m
                    .slots
                    .values()
                    .flatten()
                    .filter(|s| s.booted == booted)
                    .count();
                metrics.sandboxes_ready(booted, n);
            }
        }
        out
    }

    /// A live sandbox of manifest `id` for hire `hire`, if one is ready: a warm process
    /// first, else a prepared sandbox (dead ones are dropped). Its successor is held until
    /// [`WarmPool::release`], [`HOLD`] at the latest.
    pub(crate) fn take(&self, id: &Hash, hire: Hash) -> Option<WarmSlot> {
        self.take_of(id, hire, &[true, false])
    }

    /// A live prepared sandbox of manifest `id` for `key` (the request id of an offer), as
    /// [`WarmPool::take`] does, if no warm process is ready (the acceptance takes that one);
    /// never a warm process (an offer may not be accepted).
    pub(crate) fn take_prepared(&self, id: &Hash, key: Hash) -> Option<WarmSlot> {
        let warm_ready = self.with(|m| m.slots.get(id).is_some_and(|l| l.iter().any(|s| s.booted)));
        if warm_ready {
            return None;
        }
        self.take_of(id, key, &[false])
    }

    fn take_of(&self, id: &Hash, hire: Hash, kinds: &[bool]) -> Option<WarmSlot> {
        let mut dead = Vec::new();
        let found = self.with(|m| {
            let list = m.slots.get_mut(id)?;
            for &booted in kinds {
                while let Some(i) = list.iter().rposition(|s| s.booted == booted) {
                    let mut slot = list.swap_remove(i);
                    if slot.launched.is_alive() {
                        let until = Instant::now() + HOLD;
                        m.held.insert(
                            hire,
                            Held {
                                manifest: *id,
                                booted,
                                until,
                            },
                        );
                        return Some(slot);
                    }
                    dead.push(slot);
                }
            }
            None
        });
        for slot in dead {
            self.discard(slot);
        }
        if found.is_none() {
            // Nothing taken, so nothing is held: make what is missing now.
            self.wake.notify_one();
        }
        found
    }

    /// Lets the successor of the sandbox hire `hire` took be made [`SETTLE`] from now
    /// (nothing if it took none or its hold ends sooner): the hire has sent its client the end
    /// of its chain.
    pub(crate) fn release(&self, hire: &Hash) {
        let settled = Instant::now() + SETTLE;
        let moved = self.with(|m| match m.held.get_mut(hire) {
            Some(h) if h.until > settled => {
                h.until = settled;
                true
            }
            _ => false,
        });
        if moved {
            self.wake.notify_one();
        }
    }

    /// Keeps `slot` of manifest `manifest`, taken for request `request` (its successor held
    /// under that id) and its program started, for the acceptance of that request's offer
    /// ([`WarmPool::claim`]) until `until`; then it is discarded.
    pub(crate) fn park(&self, request: Hash, manifest: Hash, slot: WarmSlot, until: Instant) {
        let replaced = self.with(|m| m.parked.insert(request, (manifest, slot, until)));
        if let Some((_, old, _)) = replaced {
            self.discard(old);
        }
    }

    /// Whether a sandbox is parked for request `request` (a request sent again gets no
    /// second one).
    pub(crate) fn is_parked(&self, request: &Hash) -> bool {
        self.with(|m| m.parked.contains_key(request))
    }

    /// The sandbox parked for request `request`, for hire `hire` (its successor's hold moves
    /// to the hire); `None` if there is none, or its program died while it waited (it is
    /// discarded).
    pub(crate) fn claim(&self, request: &Hash, hire: Hash) -> Option<WarmSlot> {
        let mut slot = self.with(|m| {
            let (_, slot, _) = m.parked.remove(request)?;
            if let Some(h) = m.held.remove(request) {
                m.held.insert(hire, h);
            }
            Some(slot)
        })?;
        if slot.launched.is_alive() {
            Some(slot)
        } else {
            self.discard(slot);
            None
        }
    }

    /// Discards the parked sandboxes whose offer was not accepted by `now` (their successors
    /// are made once their holds end). Not kept as warm processes: a client that requests
    /// without accepting would otherwise make the pool grow.
    fn drop_lapsed(&self, now: Instant) {
        let lapsed: Vec<WarmSlot> = self.with(|m| {
            let due: Vec<Hash> = m
                .parked
                .iter()
                .filter(|(_, (_, _, until))| *until <= now)
                .map(|(r, _)| *r)
                .collect();
            due.iter()
                .filter_map(|r| m.parked.remove(r))
                .map(|(_, slot, _)| slot)
                .collect()
        });
        for slot in lapsed {
            self.discard(slot);
        }
    }

    /// When the next hold ends, if any.
    fn next_hold_end(&self) -> Option<Instant> {
        self.with(|m| m.held.values().map(|h| h.until).min())
    }

    /// How many warm processes (`booted`) or prepared sandboxes of manifest `id` are ready
    /// or held (successors not to make yet); holds past their time are dropped.
    fn counted(&self, id: &Hash, booted: bool, now: Instant) -> usize {
        self.with(|m| {
            m.held.retain(|_, h| h.until > now);
            let ready = m
                .slots
                .get(id)
                .map_or(0, |l| l.iter().filter(|s| s.booted == booted).count());
            let held = m
                .held
                .values()
                .filter(|h| h.manifest == *id && h.booted == booted)
                .count();
            ready + held
        })
    }

    fn put(&self, id: Hash, slot: WarmSlot) {
        self.with(|m| m.slots.entry(id).or_default().push(slot));
    }

    /// Drops the processes of manifests not in `keep`.
    fn retain(&self, keep: &[Hash]) {
        let gone: Vec<WarmSlot> = self.with(|m| {
            m.held.retain(|_, h| keep.contains(&h.manifest));
            let stale_parked: Vec<Hash> = m
                .parked
                .iter()
                .filter(|(_, (of, _, _))| !keep.contains(of))
                .map(|(r, _)| *r)
                .collect();
            let mut gone: Vec<WarmSlot> = stale_parked
                .iter()
                .filter_map(|r| m.parked.remove(r))
                .map(|(_, slot, _)| slot)
                .collect();
            let stale: Vec<Hash> = m
                .slots
                .keys()
                .filter(|id| !keep.contains(id))
                .copied()
                .collect();
            gone.extend(
                stale
                    .into_iter()
                    .filter_map(|id| m.slots.remove(&id))
                    .flatten(),
            );
            gone
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
            ..
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
        ctx.warm.drop_lapsed(Instant::now());
        let offers: Vec<Offerable> = with_book(&ctx.offers, |b| b.current());
        if let Some(pool) = ctx.standby.as_ref().filter(|_| !offers.is_empty()) {
            pool.fill();
        }
        let now_ms = crate::now_ms();
        // Prepared sandboxes only where there is a sandbox to prepare: without one, a launch
        // starts the program (it would be a warm process).
        let prepares = ctx.settings.sandbox.is_some();
        let wanted: Vec<(&Offerable, usize, usize)> = offers
            .iter()
            .filter(|o| o.manifest.body().expires_at > now_ms)
            .map(|o| {
                let warm = o.run.warm.min(MAX_WARM) as usize;
                let prepared = if prepares {
                    o.run.prepared.min(MAX_PREPARED) as usize
                } else {
                    0
                };
                (o, warm, prepared)
            })
            .filter(|(_, warm, prepared)| warm + prepared > 0)
            .collect();
        ctx.warm.retain(
            &wanted
                .iter()
                .map(|(o, ..)| o.manifest.id())
                .collect::<Vec<_>>(),
        );
        // Warm processes first (they take the longest to boot), then prepared sandboxes.
        'kinds: for booted in [true, false] {
            for &(offer, warm, prepared) in &wanted {
                let id = offer.manifest.id();
                if failed.get(&id).is_some_and(|t| t.elapsed() < RETRY_AFTER) {
                    continue;
                }
                let want = if booted { warm } else { prepared };
                while ctx.warm.counted(&id, booted, Instant::now()) < want {
                    let made = tokio::select! {
                        () = stop.cancelled() => break 'kinds,
                        made = launch_warm(&ctx, offer, booted) => made,
                    };
                    match made {
                        Ok(slot) => {
                            failed.remove(&id);
                            ctx.warm.put(id, slot);
                        }
                        Err(e) => {
                            let what = if booted {
                                "a warm process"
                            } else {
                                "a prepared sandbox"
                            };
                            tracing::warn!(agent = %offer.manifest.body().name, "cannot keep {what}: {e}");
                            failed.insert(id, tokio::time::Instant::now());
                            break;
                        }
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

/// Makes one sandbox of `offer`: a warm process (`booted`: its program started), or a
/// prepared sandbox.
async fn launch_warm(ctx: &Ctx, offer: &Offerable, booted: bool) -> Result<WarmSlot, String> {
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
        if booted {
            launched.ignite().await.map_err(|e| e.to_string())?;
        }
        Ok::<_, String>(launched)
    }
    .await;
    match made {
        Ok(launched) => Ok(WarmSlot {
            launched,
            booted,
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

    /// Holds, for hire `hire`, the successor of a sandbox of `manifest`.
    fn hold(m: &mut Pools, hire: Hash, manifest: Hash, booted: bool, until: Instant) {
        m.held.insert(
            hire,
            Held {
                manifest,
                booted,
                until,
            },
        );
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
            for hire in [hire_a, hire_b] {
                hold(m, hire, agent, true, now + HOLD);
            }
        });
        assert_eq!(pool.counted(&agent, true, now), 2);
        assert_eq!(pool.counted(&other, true, now), 0);
        // Holds are of warm processes: they do not count as prepared sandboxes.
        assert_eq!(pool.counted(&agent, false, now), 0);
        // Released: the hold ends SETTLE from the release, long before HOLD.
        pool.release(&hire_a);
        let settled = pool.next_hold_end().unwrap_or(now + HOLD);
        assert!(settled <= Instant::now() + SETTLE && settled < now + HOLD);
        // Releasing again, or a hire that took nothing, moves nothing.
        pool.release(&hire_a);
        pool.release(&hash(12));
        assert_eq!(pool.next_hold_end(), Some(settled));
        assert_eq!(pool.counted(&agent, true, settled), 1);
        // Past its time a hold no longer counts (and is dropped).
        assert_eq!(pool.counted(&agent, true, now + HOLD), 0);
        assert!(pool.with(|m| m.held.is_empty()));
        assert_eq!(pool.next_hold_end(), None);
    }

    /// A taken prepared sandbox's successor is held as a prepared one, not as a warm process.
    #[test]
    fn a_prepared_successor_is_held_as_one() {
        let pool = WarmPool::default();
        let agent = hash(1);
        let now = Instant::now();
        pool.with(|m| {
            hold(m, hash(10), agent, false, now + HOLD);
        });
        assert_eq!(pool.counted(&agent, false, now), 1);
        assert_eq!(pool.counted(&agent, true, now), 0);
        pool.release(&hash(10));
        let settled = pool.next_hold_end().unwrap_or(now + HOLD);
        assert!(settled <= Instant::now() + SETTLE);
        assert_eq!(pool.counted(&agent, false, settled), 0);
    }

    /// A sandbox made ahead, for these tests: `sleep` started without confinement (the pool's
    /// bookkeeping is the same whatever runs in it), not recorded anywhere.
    async fn slot(dir: &std::path::Path, booted: bool) -> WarmSlot {
        let workdir = dir.join(format!("slot-{}", rand_suffix()));
        let cfg = souk_runtime::RunConfig {
            command: vec!["sleep".into(), "30".into()],
            workdir: workdir.clone(),
            ..souk_runtime::RunConfig::default()
        };
        let launched = AgentProcess::launch(&cfg, &hash(99).to_hex())
            .await
            .unwrap_or_else(|e| panic!("launch: {e}"));
        WarmSlot {
            launched,
            booted,
            workdir,
            proxy: None,
        }
    }

    fn rand_suffix() -> String {
        hex::encode(
            crate::data_dir::random_32()
                .map(|r| r[..8].to_vec())
                .unwrap_or_default(),
        )
    }

    /// An offer takes a prepared sandbox (never a warm process), parks it under its request
    /// id; the acceptance claims it for the hire, and the successor's hold moves to the hire.
    /// A request sent again finds it parked. A parked sandbox whose offer lapses is discarded
    /// (its directory goes), and so is one whose manifest is no longer offered.
    #[tokio::test]
    async fn an_offer_parks_a_prepared_sandbox_until_claimed_or_lapsed() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let pool = WarmPool::default();
        let agent = hash(1);
        let (warm, prepared) = (slot(dir.path(), true).await, slot(dir.path(), false).await);
        pool.put(agent, warm);
        pool.put(agent, prepared);
        let (request, hire) = (hash(20), hash(21));
        // A warm process is ready: the offer leaves both (the acceptance takes that one).
        assert!(pool.take_prepared(&agent, request).is_none());
        let warm_one = pool.take(&agent, hash(23));
        assert!(warm_one.as_ref().is_some_and(|s| s.booted));
        let taken = pool.take_prepared(&agent, request);
        let taken = taken.unwrap_or_else(|| panic!("a prepared sandbox"));
        assert!(!taken.booted, "an offer never takes a warm process");
        assert!(pool.take_prepared(&agent, hash(22)).is_none());
        let now = Instant::now();
        pool.park(request, agent, taken, now + HOLD);
        assert!(pool.is_parked(&request));
        // A parked sandbox is not a ready one; its successor is held (counted, not made).
        let ready = pool.with(|m| m.slots.get(&agent).map_or(0, Vec::len));
        assert_eq!(ready, 0);
        assert_eq!(pool.counted(&agent, false, now), 1);
        let claimed = pool.claim(&request, hire);
        assert!(claimed.is_some() && !pool.is_parked(&request));
        assert!(pool.claim(&request, hire).is_none());
        pool.with(|m| {
            assert!(m.held.contains_key(&hire) && !m.held.contains_key(&request));
        });

        // Another offer's sandbox, never accepted: discarded once its time is over.
        let lapsing = slot(dir.path(), false).await;
        let lapsing_dir = lapsing.workdir.clone();
        std::fs::create_dir_all(&lapsing_dir).unwrap_or_else(|e| panic!("{e}"));
        pool.park(hash(30), agent, lapsing, now + HOLD);
        pool.drop_lapsed(now);
        assert!(pool.is_parked(&hash(30)), "not lapsed yet");
        pool.drop_lapsed(now + HOLD);
        assert!(!pool.is_parked(&hash(30)));
        wait_until(|| !lapsing_dir.exists()).await;

        // No longer offered: parked and ready sandboxes of the manifest go.
        pool.park(hash(31), agent, slot(dir.path(), false).await, now + HOLD);
        pool.retain(&[]);
        assert!(!pool.is_parked(&hash(31)));
        assert_eq!(pool.counted(&agent, true, now + HOLD), 0);
    }

    async fn wait_until(mut done: impl FnMut() -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while !done() {
            assert!(tokio::time::Instant::now() < deadline, "timed out");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Holds of an agent that is no longer offered go with its processes.
    #[test]
    fn holds_of_an_agent_no_longer_offered_are_dropped() {
        let pool = WarmPool::default();
        let now = Instant::now();
        pool.with(|m| {
            for (hire, manifest) in [(hash(10), hash(1)), (hash(11), hash(2))] {
                hold(m, hire, manifest, true, now + HOLD);
            }
        });
        pool.retain(&[hash(2)]);
        assert_eq!(pool.counted(&hash(1), true, now), 0);
        assert_eq!(pool.counted(&hash(2), true, now), 1);
    }
}
