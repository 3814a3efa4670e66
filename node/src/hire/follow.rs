//! The client's follower: pulls receipts from the provider with long-polls, verifies every
//! entry as it arrives ([`ChainVerifier::push`]), checks each disclosed payload against its
//! commitment and the output against its hash, and stores them. Where a received receipt is
//! verified.
//!
//! The next long-poll leaves as soon as a page is verified, while the page is being stored
//! (pages are still stored one after the other, in order): a short hire's last page does not
//! wait for the disk sync of the one before.
//!
//! It catches up from the last stored seq after a restart or while the provider was
//! unreachable. Two kinds of failure are kept apart: the provider's (a broken or forked
//! stream, a wrong output) stops the follower for good and is recorded in the hire's `error`
//! (an equivocation proof is kept); this node's own (a store write that failed) is retried
//! with backoff from what is durably stored, and never blamed on the provider.

use std::time::Duration;

use libp2p::PeerId;
use souk_protocol::Hash;
use souk_protocol::hire::HireState;
use souk_protocol::hiring::{CallError, HireCall, HireReply, MAX_FETCH_WAIT_MS};
use souk_protocol::receipt::{Disclosure, EntryKind, SignedEntry};
use souk_protocol::rules::Rule;
use souk_protocol::verify::{ChainError, ChainVerifier, Pushed};
use tokio::sync::watch;
use tokio_util::task::AbortOnDropHandle;

use super::ctx::{Ctx, blocking, peer_of};
use super::error::HireError;
use super::export::{blob, contract_and_manifest, verified_chain};
use super::msg::{FollowUpdate, Msg};
use super::record::{
    BLOB_EQUIVOCATION, BLOB_INPUT, BLOB_OUTPUT, BLOB_SALT, Closed, ClosedReason, HireRecord,
};
use super::transport::TransportError;
use crate::now_ms;

/// Longest pause between attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// First pause after a failure.
const FIRST_BACKOFF: Duration = Duration::from_millis(250);

/// Why following stopped or paused.
#[derive(Debug)]
enum Stop {
    /// The provider broke the protocol: record it and stop for good.
    Provider(String),
    /// The provider equivocated (the proof is stored): end the hire and publish the proof.
    Equivocated(String),
    /// This node failed (store): retry from what is durable.
    Local(HireError),
    /// The node is stopping.
    Shutdown,
}

impl From<HireError> for Stop {
    fn from(e: HireError) -> Self {
        match e {
            HireError::Stopped => Stop::Shutdown,
            other => Stop::Local(other),
        }
    }
}

/// Why a page of entries was not absorbed.
enum Absorb {
    /// Entries skipped ahead of the chain: worth asking again.
    Gap(String),
    /// Stop (or retry, for local failures).
    Stop(Stop),
}

impl From<HireError> for Absorb {
    fn from(e: HireError) -> Self {
        Absorb::Stop(e.into())
    }
}

/// Following one hire.
pub(crate) struct Follower {
    ctx: Ctx,
    hire_id: Hash,
    record: HireRecord,
    provider: PeerId,
    stop: watch::Receiver<bool>,
    /// The long-poll sent while the last page was being stored: the seq it asks from, and
    /// the call (stopped if it is not used).
    prefetch: Option<(u64, AbortOnDropHandle<Result<HireReply, TransportError>>)>,
}

impl Follower {
    /// A follower for the hire of `record`; `stop` turns true when the node stops.
    pub(crate) fn new(ctx: Ctx, record: HireRecord, stop: watch::Receiver<bool>) -> Self {
        Follower {
            hire_id: record.hire_id,
            provider: peer_of(&record.provider),
            ctx,
            record,
            stop,
            prefetch: None,
        }
    }

    /// Follows the hire until its chain ends, the provider breaks the protocol, or the node
    /// stops. Local failures are retried with backoff.
    pub(crate) async fn run(mut self) {
        let id = self.hire_id;
        let mut backoff = FIRST_BACKOFF;
        loop {
            match self.follow().await {
                Ok(()) | Err(Stop::Shutdown) => break,
                Err(Stop::Provider(why)) => {
                    tracing::warn!(hire = %id.short(), "stopped following: {why}");
                    let mut r = self.record.clone();
                    r.error = Some(why);
                    r.updated_at = now_ms();
                    // If even this fails, the next start follows again and finds it again.
                    if let Err(e) = self.save(r).await {
                        tracing::error!(hire = %id.short(), "cannot record why following stopped: {e}");
                    }
                    break;
                }
                Err(Stop::Equivocated(why)) => {
                    tracing::warn!(hire = %id.short(), "hire ended: {why}");
                    let mut r = self.record.clone();
                    r.error = Some(why);
                    r.updated_at = now_ms();
                    r.closed = Some(Closed {
                        reason: ClosedReason::ProviderEquivocated,
                        at: r.updated_at,
                    });
                    if let Err(e) = self.save(r).await {
                        tracing::error!(hire = %id.short(), "cannot record the end of the hire: {e}");
                    }
                    if let Err(e) = super::outcome::publish_proof(&self.ctx, id).await {
                        tracing::warn!(hire = %id.short(), "equivocation proof not published yet: {e}");
                    }
                    break;
                }
                Err(Stop::Local(e)) => {
                    tracing::warn!(hire = %id.short(), "local failure while following, retrying in {backoff:?}: {e}");
                    if !self.pause(&mut backoff).await {
                        break;
                    }
                }
            }
        }
        let _ = self
            .ctx
            .inbox
            .send(Msg::Follow(FollowUpdate::Stopped(id)))
            .await;
    }

    /// Saves the follower's fields (state, entries, question, error) into the stored record,
    /// leaving the settlement fields the actor owns as they are on disk, then tells the actor.
    async fn save(&mut self, mine: HireRecord) -> Result<(), HireError> {
        let store = self.ctx.store.clone();
        let id = self.hire_id;
        let merged = blocking(move || {
            let mut r = match store.get_hire(&id)? {
                Some(b) => HireRecord::from_bytes(&b)?,
                None => mine.clone(),
            };
            r.state = mine.state;
            r.entries = mine.entries;
            r.question = mine.question;
            r.error = mine.error;
            // Closed here (equivocation learned from the network) stays closed.
            r.closed = mine.closed.or(r.closed);
            r.updated_at = mine.updated_at;
            store.put_hire(&id, &r.to_bytes())?;
            Ok(r)
        })
        .await?;
        self.record = merged.clone();
        self.progress(merged).await;
        Ok(())
    }

    async fn progress(&self, record: HireRecord) {
        let _ = self
            .ctx
            .inbox
            .send(Msg::Follow(FollowUpdate::Progress(Box::new(record))))
            .await;
    }

    async fn follow(&mut self) -> Result<(), Stop> {
        let store = self.ctx.store.clone();
        let id = self.hire_id;
        let (mut verifier, mut have_output) = blocking(move || {
            let v = verified_chain(&store, &id)?;
            let out = store.get_hire_blob(&id, BLOB_OUTPUT)?.is_some();
            Ok((v, out))
        })
        .await?;
        let mut backoff = FIRST_BACKOFF;
        let mut resent_accept = false;
        let mut fetched_without_output = 0u32;
        let mut gaps = 0u32;
        // Backoff for a provider that answers but misbehaves (gaps, missing output); it is
        // not reset by a successful reply, unlike `backoff` for an unreachable provider.
        let mut slow = FIRST_BACKOFF;
        loop {
            if self.record.closed.is_some() {
                // Ended while following (the provider's equivocation reached this node).
                return Ok(());
            }
            let finished = verifier.state().is_terminal();
            if finished && fetched_without_output > 0 && !self.pause(&mut slow).await {
                // A completed chain whose output has not come: do not hammer the provider.
                return Err(Stop::Shutdown);
            }
            let completed = matches!(
                verifier.head().map(|h| &h.body().kind),
                Some(EntryKind::Completed { .. })
            );
            if finished && (have_output || !completed) {
                return Ok(());
            }
            if *self.stop.borrow() {
                return Err(Stop::Shutdown);
            }
            let from_seq = if finished {
                verifier.next_seq().saturating_sub(1)
            } else {
                verifier.next_seq()
            };
            let call = match self.prefetch.take() {
                Some((from, sent)) if from == from_seq => sent,
                _ => self.fetch(from_seq),
            };
            let reply = tokio::select! {
                r = call => r.unwrap_or(Err(TransportError::Stopped)),
                _ = self.stop.changed() => return Err(Stop::Shutdown),
            };
            match reply {
                Ok(HireReply::Receipts {
                    entries,
                    disclosures,
                    output,
                }) => {
                    backoff = FIRST_BACKOFF;
                    let had_output = output.is_some();
                    match self
                        .absorb(&mut verifier, entries, disclosures, output)
                        .await
                    {
                        Ok(stored) => {
                            gaps = 0;
                            have_output |= stored;
                        }
                        // Entries that skip ahead: ask again from where we are, a few times.
                        Err(Absorb::Gap(why)) if gaps < 3 => {
                            gaps += 1;
                            tracing::debug!("{why}; fetching again");
                            if !self.pause(&mut slow).await {
                                return Err(Stop::Shutdown);
                            }
                            continue;
                        }
                        Err(Absorb::Gap(why)) => return Err(Stop::Provider(why)),
                        Err(Absorb::Stop(s)) => return Err(s),
                    }
                    if verifier.state().is_terminal() && !had_output {
                        fetched_without_output += 1;
                    }
                }
                Ok(HireReply::Error { code, message }) => match code {
                    // Our acceptance may never have arrived: deliver it again, once.
                    CallError::UnknownHire if verifier.next_seq() == 0 && !resent_accept => {
                        resent_accept = true;
                        self.resend_accept().await?;
                    }
                    CallError::UnknownHire | CallError::NotYourHire => {
                        return Err(Stop::Provider(format!(
                            "the provider refuses to serve this hire ({code}): {message}"
                        )));
                    }
                    _ => {
                        tracing::debug!("fetch failed ({code}): {message}");
                        if !self.pause(&mut backoff).await {
                            return Err(Stop::Shutdown);
                        }
                    }
                },
                Ok(other) => {
                    tracing::debug!("unexpected reply to a fetch: {other:?}");
                    if !self.pause(&mut backoff).await {
                        return Err(Stop::Shutdown);
                    }
                }
                Err(e) => {
                    // The provider is unreachable: keep the chain, retry with backoff.
                    tracing::debug!("fetch failed: {e}");
                    if !self.pause(&mut backoff).await {
                        return Err(Stop::Shutdown);
                    }
                }
            }
        }
    }

    /// Sends a long-poll for the entries from `from_seq` (it runs as its own task, so it
    /// leaves now).
    fn fetch(&self, from_seq: u64) -> AbortOnDropHandle<Result<HireReply, TransportError>> {
        let call = HireCall::Fetch {
            hire_id: self.hire_id,
            from_seq,
            wait_ms: MAX_FETCH_WAIT_MS - 5_000,
        };
        AbortOnDropHandle::new(tokio::spawn(self.ctx.net.call(self.provider, call)))
    }

    /// Delivers our acceptance again (the provider did not know the hire).
    async fn resend_accept(&mut self) -> Result<(), Stop> {
        let store = self.ctx.store.clone();
        let id = self.hire_id;
        let (contract, input, salt, credentials) = blocking(move || {
            let (contract, _) = contract_and_manifest(&store, &id)?;
            let input = blob(&store, &id, BLOB_INPUT)?;
            let salt: [u8; 32] = blob(&store, &id, BLOB_SALT)?
                .try_into()
                .map_err(|_| HireError::corrupt(id, BLOB_SALT, "not 32 bytes"))?;
            let credentials = super::credentials::stored_grants(&store, &id)?;
            Ok((contract, input, salt, credentials))
        })
        .await?;
        let call = HireCall::Accept {
            contract: contract.to_bytes(),
            input,
            salt,
            credentials,
        };
        match self.ctx.net.call(self.provider, call).await {
            Ok(HireReply::Accepted { hire_id }) if hire_id == self.hire_id => Ok(()),
            Ok(HireReply::Error { code, message }) => Err(Stop::Provider(format!(
                "the provider never took the contract ({code}): {message}"
            ))),
            Ok(other) => Err(Stop::Provider(format!(
                "unexpected reply to the acceptance: {other:?}"
            ))),
            // Unreachable again: keep following; the next fetch decides.
            Err(_) => Ok(()),
        }
    }

    /// Waits `backoff` (doubling it for next time); false if the node is stopping.
    async fn pause(&mut self, backoff: &mut Duration) -> bool {
        let stopped = tokio::select! {
            _ = tokio::time::sleep(*backoff) => false,
            _ = self.stop.changed() => true,
        };
        *backoff = (*backoff * 2).min(MAX_BACKOFF);
        !stopped && !*self.stop.borrow()
    }

    /// Verifies a page entry by entry, then stores the verified prefix in one transaction
    /// (one disk sync per page, not per entry). A broken entry ends the page: what came
    /// before it is still stored, then the error is reported. If storing fails, the verifier
    /// is rebuilt from the store (the entries were not kept) and the failure is local.
    ///
    /// `output`, when the page ends the chain `completed`, is checked against the entry's
    /// output hash and stored **before** the page, so that whoever sees the hire completed can
    /// read its output. Returns whether it was stored.
    async fn absorb(
        &mut self,
        verifier: &mut ChainVerifier,
        entries: Vec<Vec<u8>>,
        disclosures: Vec<Disclosure>,
        output: Option<Vec<u8>>,
    ) -> Result<bool, Absorb> {
        let before = verifier.next_seq();
        let mut record = self.record.clone();
        let mut batch: Vec<(u64, Vec<u8>, Option<Vec<u8>>)> = Vec::new();
        let mut failure = None;
        for raw in entries {
            let pos = verifier.next_seq();
            let entry = match SignedEntry::decode_bytes(&raw) {
                Ok(e) => e,
                Err(e) => {
                    failure = Some(Absorb::Stop(Stop::Provider(format!(
                        "receipt stream broken: rule R1 at entry {pos}: {e}"
                    ))));
                    break;
                }
            };
            let seq = entry.body().seq;
            match verifier.push(entry.clone()) {
                Ok(Pushed::Duplicate) => continue,
                Ok(Pushed::Appended) => {}
                Err(ChainError::Violation(v)) if v.rule == Rule::R5 && seq > pos => {
                    failure = Some(Absorb::Gap(format!("receipt stream skipped ahead: {v}")));
                    break;
                }
                Err(ChainError::Violation(v)) => {
                    failure = Some(Absorb::Stop(Stop::Provider(format!(
                        "receipt stream broken: {v}"
                    ))));
                    break;
                }
                Err(ChainError::Equivocation(proof)) => {
                    let store = self.ctx.store.clone();
                    let id = self.hire_id;
                    let bytes = proof.to_bytes();
                    // The proof must be kept: a local failure here is retried (the provider
                    // will send the forked entry again).
                    blocking(move || Ok(store.put_hire_blob(&id, BLOB_EQUIVOCATION, &bytes)?))
                        .await?;
                    failure = Some(Absorb::Stop(Stop::Equivocated(format!(
                        "the provider equivocated at seq {}: two different signed entries (proof kept and published)",
                        proof.seq()
                    ))));
                    break;
                }
            }
            // The client keeps the opening of every commitment, after checking it.
            let opened = match entry.body().commitment {
                Some(c) => match disclosures.iter().find(|d| d.seq == seq) {
                    Some(d) if d.opens(&c) => Some(d),
                    Some(_) => {
                        // Undo the push: this entry is not stored.
                        *verifier = verifier_before(verifier, seq)?;
                        failure = Some(Absorb::Stop(Stop::Provider(format!(
                            "the payload sent for entry {seq} does not open its commitment"
                        ))));
                        break;
                    }
                    None => None,
                },
                None => None,
            };
            record.entries = verifier.next_seq();
            record.set_state(verifier.state(), now_ms());
            match &entry.body().kind {
                EntryKind::InputRequested => {
                    record.question = opened
                        .and_then(|d| serde_json::from_slice::<serde_json::Value>(&d.payload).ok())
                        .map(|v| v.get("question").cloned().unwrap_or(v));
                }
                EntryKind::InputProvided => record.question = None,
                EntryKind::Failed { message, .. } => record.error = Some(message.clone()),
                _ => {}
            }
            let stored = opened.map(|d| {
                let mut v = d.salt.to_vec();
                v.extend_from_slice(&d.payload);
                v
            });
            batch.push((seq, raw, stored));
        }
        let output_hash = match verifier.head().map(|h| &h.body().kind) {
            Some(EntryKind::Completed { output_hash, .. }) => Some(*output_hash),
            _ => None,
        };
        let output = match (output, output_hash) {
            (Some(out), Some(h)) if Hash::digest(&out) != h => {
                return Err(Absorb::Stop(Stop::Provider(
                    "the provider sent an output that does not match the completed entry's hash"
                        .into(),
                )));
            }
            (Some(out), Some(_)) => Some(out),
            _ => None,
        };
        let has_output = output.is_some();
        if batch.is_empty() {
            if let Some(out) = output {
                let store = self.ctx.store.clone();
                let id = self.hire_id;
                blocking(move || Ok(store.put_hire_blob(&id, BLOB_OUTPUT, &out)?)).await?;
                let r = self.record.clone();
                self.save(r).await?;
            }
        } else {
            // The page is verified: ask for the next one while this one is stored.
            if failure.is_none() && !verifier.state().is_terminal() {
                let next = verifier.next_seq();
                self.prefetch = Some((next, self.fetch(next)));
            }
            let store = self.ctx.store.clone();
            let id = self.hire_id;
            let rec = record.to_bytes();
            let stored = blocking(move || {
                // The output first: a hire shown completed has its output. Not synced on its
                // own: the page's durable commit right after makes it durable too.
                if let Some(out) = &output {
                    store.put_hire_blob_deferred(&id, BLOB_OUTPUT, out)?;
                }
                let items: Vec<souk_store::ReceiptItem<'_>> = batch
                    .iter()
                    .map(|(seq, e, p)| (*seq, e.as_slice(), p.as_deref()))
                    .collect();
                let inserted = store.append_receipts(&id, &items, Some(&rec))?;
                if inserted == 0 && output.is_some() {
                    // Nothing was committed after the output: sync it now.
                    store.flush()?;
                }
                Ok(())
            })
            .await;
            if let Err(e) = stored {
                // Nothing of the page is stored: forget it, fetch it again later.
                tracing::debug!(hire = %self.hire_id.short(), "page from {before} not stored");
                return Err(Absorb::Stop(e.into()));
            }
            self.record = record.clone();
            self.progress(record).await;
            if verifier.state() == HireState::Completed {
                tracing::info!(hire = %self.hire_id.short(), "completed; receipts verified");
            }
        }
        match failure {
            Some(f) => Err(f),
            None => Ok(has_output),
        }
    }
}

/// A verifier holding `current`'s chain up to (not including) `seq`.
fn verifier_before(current: &ChainVerifier, seq: u64) -> Result<ChainVerifier, Absorb> {
    let mut v = ChainVerifier::new(current.context().clone());
    for e in current.entries().iter().take(seq as usize) {
        v.push(e.clone()).map_err(|e| {
            Absorb::Stop(Stop::Provider(format!(
                "the verified chain no longer verifies: {e}"
            )))
        })?;
    }
    Ok(v)
}
