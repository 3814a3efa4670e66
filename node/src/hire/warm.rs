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
//! [`maintain`] keeps the pools filled (one launch at a time, off the actor; a successor once
//! the hire that took a process has its agent's first message, [`WarmPool::replace`]) and drops
//! processes of manifests no longer offered; [`WarmPool::take`] hands one to a job.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use souk_protocol::Hash;
use souk_runtime::{AgentProcess, Launched};
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
    slots: Mutex<HashMap<Hash, Vec<WarmSlot>>>,
    /// Wakes [`maintain`] to boot the successor of a taken process ([`WarmPool::replace`]).
    taken: tokio::sync::Notify,
}

impl WarmPool {
    fn with<T>(&self, f: impl FnOnce(&mut HashMap<Hash, Vec<WarmSlot>>) -> T) -> T {
        match self.slots.lock() {
            Ok(mut m) => f(&mut m),
            Err(poisoned) => f(&mut poisoned.into_inner()),
        }
    }

    /// A live warm process of manifest `id`, if one is ready (dead ones are dropped).
    pub(crate) fn take(&self, id: &Hash) -> Option<WarmSlot> {
        let mut dead = Vec::new();
        let found = self.with(|m| {
            let list = m.get_mut(id)?;
            while let Some(mut slot) = list.pop() {
                if slot.launched.is_alive() {
                    return Some(slot);
                }
                dead.push(slot);
            }
            None
        });
        for slot in dead {
            discard(slot);
        }
        if found.is_none() {
            // Nothing taken, so no hire will ask: boot what is missing now.
            self.taken.notify_one();
        }
        found
    }

    /// Boots the successor of a process [`WarmPool::take`] handed out. The hire that took it
    /// asks once its agent has answered (or ended), so that the successor's interpreter does
    /// not start while that hire's first steps need the cores; the periodic check boots it
    /// [`TICK`] later at the latest anyway.
    pub(crate) fn replace(&self) {
        self.taken.notify_one();
    }

    /// How many warm processes of manifest `id` are ready.
    pub(crate) fn ready(&self, id: &Hash) -> usize {
        self.with(|m| m.get(id).map_or(0, Vec::len))
    }

    fn put(&self, id: Hash, slot: WarmSlot) {
        self.with(|m| m.entry(id).or_default().push(slot));
    }

    /// Drops the processes of manifests not in `keep`.
    fn retain(&self, keep: &[Hash]) {
        let gone: Vec<WarmSlot> = self.with(|m| {
            let stale: Vec<Hash> = m.keys().filter(|id| !keep.contains(id)).copied().collect();
            stale
                .into_iter()
                .filter_map(|id| m.remove(&id))
                .flatten()
                .collect()
        });
        for slot in gone {
            discard(slot);
        }
    }

    /// Stops every warm process.
    pub(crate) fn clear(&self) {
        self.retain(&[]);
    }
}

/// Kills a warm process that will serve no hire and removes its directory.
pub(crate) fn discard(slot: WarmSlot) {
    let WarmSlot {
        launched,
        workdir,
        proxy,
    } = slot;
    drop(launched);
    drop(proxy);
    // Off the async threads: a directory may hold files.
    tokio::task::spawn_blocking(move || {
        let _ = std::fs::remove_dir_all(workdir);
    });
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
            () = ctx.warm.taken.notified() => {}
        }
        let offers: Vec<Offerable> = with_book(&ctx.offers, |b| b.current());
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
            while ctx.warm.ready(&id) < want {
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
