//! The client's follower: pulls receipts from the provider with long-polls, verifies every
//! entry as it arrives ([`ChainVerifier::push`]), checks each disclosed payload against its
//! commitment and the output against its hash, and stores them. It catches up from the last
//! stored seq after a restart or while the provider was unreachable, and stops at once on a
//! broken or forked stream, keeping the equivocation proof.

use std::sync::Arc;
use std::time::Duration;

use libp2p::PeerId;
use souk_protocol::Hash;
use souk_protocol::hire::HireState;
use souk_protocol::hiring::{CallError, HireCall, HireReply, MAX_FETCH_WAIT_MS};
use souk_protocol::manifest::Manifest;
use souk_protocol::negotiation::Contract;
use souk_protocol::receipt::{EntryKind, SignedEntry};
use souk_protocol::signed::Signed;
use souk_protocol::verify::{ChainContext, ChainError, ChainVerifier, Pushed};
use souk_store::Store;
use tokio::sync::mpsc;

use super::manager::Caller;
use super::record::{BLOB_EQUIVOCATION, BLOB_INPUT, BLOB_OUTPUT, BLOB_SALT, HireRecord};
use crate::now_ms;

/// Why a batch of entries was not absorbed.
enum Absorb {
    /// Entries skipped ahead of the chain: worth asking again.
    Gap(String),
    /// The stream is broken or forked: stop.
    Fatal(String),
}

impl From<String> for Absorb {
    fn from(s: String) -> Self {
        Absorb::Fatal(s)
    }
}

/// What a follower tells the manager.
#[derive(Debug, Clone)]
pub enum FollowUpdate {
    /// New entries were stored; the record after them.
    Progress(Box<HireRecord>),
    /// The follower stopped (chain finished, stream broken, or node stopping).
    Stopped(Hash),
}

/// Following one hire.
pub struct Follower {
    /// The hire.
    pub hire_id: Hash,
    /// The store.
    pub store: Arc<Store>,
    /// The record.
    pub record: HireRecord,
    /// The contract.
    pub contract: Contract,
    /// The manifest.
    pub manifest: Signed<Manifest>,
    /// The provider's peer id.
    pub provider: PeerId,
    /// Sends calls over the network.
    pub caller: Caller,
    /// Updates to the manager.
    pub updates: mpsc::Sender<FollowUpdate>,
    /// Closed by the manager when the node stops.
    pub stop: tokio::sync::watch::Receiver<bool>,
}

const MAX_BACKOFF: Duration = Duration::from_secs(30);

impl Follower {
    fn verifier(&self) -> Result<ChainVerifier, String> {
        let mut v = ChainVerifier::new(ChainContext::new(&self.contract, self.manifest.body()));
        let mut from = 0;
        loop {
            let page = self
                .store
                .receipts(&self.hire_id, from, 1024)
                .map_err(|e| e.to_string())?;
            if page.is_empty() {
                break;
            }
            for (_, raw) in &page {
                let e = SignedEntry::decode_bytes(raw).map_err(|e| e.to_string())?;
                v.push(e)
                    .map_err(|e| format!("stored chain no longer verifies: {e}"))?;
            }
            from += page.len() as u64;
        }
        Ok(v)
    }

    /// Saves the follower's fields (state, entries, question, error) into the stored record,
    /// leaving the settlement fields the manager owns as they are on disk.
    async fn save(&mut self, record: HireRecord) {
        let store = self.store.clone();
        let id = self.hire_id;
        let mine = record.clone();
        let merged = tokio::task::spawn_blocking(move || {
            let mut r = store
                .get_hire(&id)
                .ok()
                .flatten()
                .and_then(|b| HireRecord::from_bytes(&b).ok())
                .unwrap_or_else(|| mine.clone());
            r.state = mine.state;
            r.entries = mine.entries;
            r.question = mine.question;
            r.error = mine.error;
            r.updated_at = mine.updated_at;
            let _ = store.put_hire(&id, &r.to_bytes());
            r
        })
        .await
        .unwrap_or(record);
        let record = merged;
        self.record = record.clone();
        let _ = self
            .updates
            .send(FollowUpdate::Progress(Box::new(record)))
            .await;
    }

    /// Follows the hire until its chain ends, it breaks, or the node stops.
    pub async fn run(mut self) {
        let id = self.hire_id;
        if let Err(e) = self.follow().await {
            tracing::warn!(hire = %id.short(), "stopped following: {e}");
            let mut r = self.record.clone();
            r.error = Some(e);
            r.updated_at = now_ms();
            self.save(r).await;
        }
        let _ = self.updates.send(FollowUpdate::Stopped(id)).await;
    }

    async fn follow(&mut self) -> Result<(), String> {
        let mut verifier = self.verifier()?;
        let mut backoff = Duration::from_millis(250);
        let mut resent_accept = false;
        let mut fetched_without_output = 0u32;
        let mut gaps = 0u32;
        // Backoff for a provider that answers but misbehaves (gaps, missing output); it is
        // not reset by a successful reply, unlike `backoff` for an unreachable provider.
        let mut slow = Duration::from_millis(250);
        let mut have_output = self
            .store
            .get_hire_blob(&self.hire_id, BLOB_OUTPUT)
            .ok()
            .flatten()
            .is_some();
        loop {
            let finished = verifier.state().is_terminal();
            if finished && fetched_without_output > 0 {
                // A completed chain whose output has not come: do not hammer the provider.
                self.pause(&mut slow).await;
            }
            let completed = matches!(
                verifier.head().map(|h| &h.body().kind),
                Some(EntryKind::Completed { .. })
            );
            if finished && (have_output || !completed) {
                return Ok(());
            }
            if *self.stop.borrow() {
                return Ok(());
            }
            let call = HireCall::Fetch {
                hire_id: self.hire_id,
                from_seq: if finished {
                    verifier.next_seq().saturating_sub(1)
                } else {
                    verifier.next_seq()
                },
                wait_ms: MAX_FETCH_WAIT_MS - 5_000,
            };
            let reply = tokio::select! {
                r = self.caller.call(self.provider, call) => r,
                _ = self.stop.changed() => return Ok(()),
            };
            match reply {
                Ok(HireReply::Receipts {
                    entries,
                    disclosures,
                    output,
                }) => {
                    backoff = Duration::from_millis(250);
                    let had_output = output.is_some();
                    match self.absorb(&mut verifier, entries, disclosures).await {
                        Ok(()) => gaps = 0,
                        // Entries that skip ahead: ask again from where we are, a few times.
                        Err(Absorb::Gap(why)) if gaps < 3 => {
                            gaps += 1;
                            tracing::debug!("{why}; fetching again");
                            self.pause(&mut slow).await;
                            continue;
                        }
                        Err(Absorb::Gap(why) | Absorb::Fatal(why)) => return Err(why),
                    }
                    if verifier.state().is_terminal() && !had_output {
                        fetched_without_output += 1;
                    }
                    let completed = match verifier.head().map(|h| h.body().kind.clone()) {
                        Some(EntryKind::Completed { output_hash }) => Some(output_hash),
                        _ => None,
                    };
                    if let (Some(out), Some(output_hash)) = (output, completed) {
                        if Hash::digest(&out) != output_hash {
                            return Err("the provider sent an output that does not match the completed entry's hash".into());
                        }
                        let store = self.store.clone();
                        let id = self.hire_id;
                        tokio::task::spawn_blocking(move || {
                            store.put_hire_blob(&id, BLOB_OUTPUT, &out)
                        })
                        .await
                        .map_err(|e| e.to_string())?
                        .map_err(|e| e.to_string())?;
                        have_output = true;
                        let r = self.record.clone();
                        self.save(r).await;
                    }
                }
                Ok(HireReply::Error { code, message }) => match code {
                    // Our acceptance may never have arrived: deliver it again, once.
                    CallError::UnknownHire if verifier.next_seq() == 0 && !resent_accept => {
                        resent_accept = true;
                        self.resend_accept().await?;
                    }
                    CallError::UnknownHire | CallError::NotYourHire => {
                        return Err(format!(
                            "the provider refuses to serve this hire: {message}"
                        ));
                    }
                    _ => {
                        tracing::debug!("fetch failed: {message}");
                        self.pause(&mut backoff).await;
                    }
                },
                Ok(other) => {
                    tracing::debug!("unexpected reply to a fetch: {other:?}");
                    self.pause(&mut backoff).await;
                }
                Err(e) => {
                    // The provider is unreachable: keep the chain, retry with backoff.
                    tracing::debug!("fetch failed: {e}");
                    self.pause(&mut backoff).await;
                }
            }
        }
    }

    /// Delivers our acceptance again (the provider did not know the hire).
    async fn resend_accept(&mut self) -> Result<(), String> {
        let blob = |name: &str| {
            self.store
                .get_hire_blob(&self.hire_id, name)
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("the hire has no stored {name}"))
        };
        let input = blob(BLOB_INPUT)?;
        let salt: [u8; 32] = blob(BLOB_SALT)?
            .try_into()
            .map_err(|_| "the stored salt is not 32 bytes".to_string())?;
        let call = HireCall::Accept {
            contract: self.contract.to_bytes(),
            input,
            salt,
        };
        match self.caller.call(self.provider, call).await {
            Ok(HireReply::Accepted { hire_id }) if hire_id == self.hire_id => Ok(()),
            Ok(HireReply::Error { message, .. }) => {
                Err(format!("the provider never took the contract: {message}"))
            }
            Ok(other) => Err(format!("unexpected reply to the acceptance: {other:?}")),
            // Unreachable again: keep following; the next fetch decides.
            Err(_) => Ok(()),
        }
    }

    async fn pause(&mut self, backoff: &mut Duration) {
        tokio::select! {
            _ = tokio::time::sleep(*backoff) => {}
            _ = self.stop.changed() => {}
        }
        *backoff = (*backoff * 2).min(MAX_BACKOFF);
    }

    async fn absorb(
        &mut self,
        verifier: &mut ChainVerifier,
        entries: Vec<Vec<u8>>,
        disclosures: Vec<souk_protocol::receipt::Disclosure>,
    ) -> Result<(), Absorb> {
        // Verify the page entry by entry, then store the verified prefix in one transaction
        // (one disk sync per page, not per entry). A broken entry ends the page: what came
        // before it is still stored, then the error is reported.
        let mut record = self.record.clone();
        let mut batch: Vec<(u64, Vec<u8>, Option<Vec<u8>>)> = Vec::new();
        let mut failure = None;
        for raw in entries {
            let pos = verifier.next_seq();
            let entry = match SignedEntry::decode_bytes(&raw) {
                Ok(e) => e,
                Err(e) => {
                    failure = Some(Absorb::Fatal(format!(
                        "receipt stream broken: rule R1 at entry {pos}: {e}"
                    )));
                    break;
                }
            };
            let seq = entry.body().seq;
            match verifier.push(entry.clone()) {
                Ok(Pushed::Duplicate) => continue,
                Ok(Pushed::Appended) => {}
                Err(ChainError::Violation(v))
                    if v.rule == souk_protocol::rules::Rule::R5 && seq > pos =>
                {
                    failure = Some(Absorb::Gap(format!("receipt stream skipped ahead: {v}")));
                    break;
                }
                Err(ChainError::Violation(v)) => {
                    failure = Some(Absorb::Fatal(format!("receipt stream broken: {v}")));
                    break;
                }
                Err(ChainError::Equivocation(proof)) => {
                    let store = self.store.clone();
                    let id = self.hire_id;
                    let bytes = proof.to_bytes();
                    let _ = tokio::task::spawn_blocking(move || {
                        store.put_hire_blob(&id, BLOB_EQUIVOCATION, &bytes)
                    })
                    .await;
                    failure = Some(Absorb::Fatal(format!(
                        "the provider equivocated at seq {}: two different signed entries (proof kept)",
                        proof.seq()
                    )));
                    break;
                }
            }
            // The client keeps the opening of every commitment, after checking it.
            let opened = match entry.body().commitment {
                Some(c) => match disclosures.iter().find(|d| d.seq == seq) {
                    Some(d) if d.opens(&c) => Some(d),
                    Some(_) => {
                        // Undo the push: this entry is not stored.
                        *verifier = self.verifier_from(verifier, seq)?;
                        failure = Some(Absorb::Fatal(format!(
                            "the payload sent for entry {seq} does not open its commitment"
                        )));
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
        if !batch.is_empty() {
            let store = self.store.clone();
            let id = self.hire_id;
            let rec = record.to_bytes();
            let first = batch[0].0;
            tokio::task::spawn_blocking(move || {
                let items: Vec<souk_store::ReceiptItem<'_>> = batch
                    .iter()
                    .map(|(seq, e, p)| (*seq, e.as_slice(), p.as_deref()))
                    .collect();
                store.append_receipts(&id, &items, Some(&rec))
            })
            .await
            .map_err(|e| Absorb::Fatal(e.to_string()))?
            .map_err(|e| Absorb::Fatal(format!("cannot store receipts from {first}: {e}")))?;
            self.record = record.clone();
            let _ = self
                .updates
                .send(FollowUpdate::Progress(Box::new(record)))
                .await;
            if verifier.state() == HireState::Completed {
                tracing::info!(hire = %self.hire_id.short(), "completed; receipts verified");
            }
        }
        match failure {
            Some(f) => Err(f),
            None => Ok(()),
        }
    }

    /// A verifier holding the chain up to (not including) `seq`.
    fn verifier_from(&self, current: &ChainVerifier, seq: u64) -> Result<ChainVerifier, Absorb> {
        let mut v = ChainVerifier::new(current.context().clone());
        for e in current.entries().iter().take(seq as usize) {
            v.push(e.clone())
                .map_err(|e| Absorb::Fatal(e.to_string()))?;
        }
        Ok(v)
    }
}
