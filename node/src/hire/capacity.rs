//! Provider capacity: the slots of each agent (`limits.max_concurrency`) are held by hires
//! that run or are being stored, and by offers not yet accepted. [`Reservations`] owns the
//! second kind.
//!
//! An offer or counter reserves a slot for [`RESERVATION_MS`], so a burst of requests gets
//! exactly as many offers as there are free slots and signed capacity declines for the
//! rest, instead of offers whose acceptances are then refused. A client accepts within
//! milliseconds; one that lets [`LAPSE_LIMIT`] reservations lapse within [`LAPSE_WINDOW_MS`]
//! gets no more reservations for that window (its requests are declined for capacity), so
//! requesting without accepting cannot hold an agent's slots.
//!
//! Pure bookkeeping with explicit times: the hire actor calls it, tests drive it directly.

use std::collections::{HashMap, VecDeque};

use libp2p::PeerId;
use souk_protocol::{Hash, Timestamp};

/// How long an offer's slot is held for its acceptance, ms. The offer itself stays valid
/// longer ([`super::policy::PROPOSAL_TTL_MS`]); an acceptance after the reservation lapsed
/// still gets a slot if one is free, else a retryable `busy`.
pub(super) const RESERVATION_MS: u64 = 10_000;
/// Lapsed reservations after which a peer gets no more of them, within [`LAPSE_WINDOW_MS`].
pub(super) const LAPSE_LIMIT: usize = 8;
/// The window over which lapsed reservations are counted, ms.
pub(super) const LAPSE_WINDOW_MS: u64 = 600_000;

#[derive(Debug, Clone)]
struct Held {
    agent: String,
    peer: PeerId,
    until: Timestamp,
}

/// Slots held by offers not yet accepted, by request id.
#[derive(Debug, Default)]
pub(super) struct Reservations {
    held: HashMap<Hash, Held>,
    /// When each peer's reservations lapsed, oldest first (within the window).
    lapsed: HashMap<PeerId, VecDeque<Timestamp>>,
}

impl Reservations {
    /// Drops reservations that lapsed by `now`, charging their peers.
    fn prune(&mut self, now: Timestamp) {
        let lapsed = &mut self.lapsed;
        self.held.retain(|_, h| {
            if h.until > now {
                return true;
            }
            lapsed.entry(h.peer).or_default().push_back(h.until);
            false
        });
        let since = now.saturating_sub(LAPSE_WINDOW_MS);
        self.lapsed.retain(|_, times| {
            while times.front().is_some_and(|t| *t < since) {
                times.pop_front();
            }
            !times.is_empty()
        });
    }

    /// Slots of `agent` held by offers at `now`.
    pub(super) fn held_for(&mut self, agent: &str, now: Timestamp) -> u32 {
        self.prune(now);
        self.held.values().filter(|h| h.agent == agent).count() as u32
    }

    /// Reserves a slot of `agent` for request `request` of `peer` until `now +`
    /// [`RESERVATION_MS`]; false (nothing reserved) if `peer` let too many lapse lately.
    pub(super) fn reserve(
        &mut self,
        request: Hash,
        agent: &str,
        peer: PeerId,
        now: Timestamp,
    ) -> bool {
        self.prune(now);
        if self
            .lapsed
            .get(&peer)
            .is_some_and(|t| t.len() >= LAPSE_LIMIT)
        {
            return false;
        }
        self.held.insert(
            request,
            Held {
                agent: agent.to_owned(),
                peer,
                until: now.saturating_add(RESERVATION_MS),
            },
        );
        true
    }

    /// Gives back the slot of `request` (the answer was not an offer after all): true if it
    /// was still held.
    pub(super) fn release(&mut self, request: &Hash) -> bool {
        self.held.remove(request).is_some()
    }

    /// Takes the slot of `request` for its contract, accepted by `peer`: true if `peer`
    /// holds it (only the requester can take it; nothing changes otherwise).
    pub(super) fn take(&mut self, request: &Hash, peer: &PeerId) -> bool {
        match self.held.get(request) {
            Some(h) if h.peer == *peer => self.held.remove(request).is_some(),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> Hash {
        Hash([n; 32])
    }

    #[test]
    fn a_reservation_holds_a_slot_until_released_or_lapsed() {
        let mut r = Reservations::default();
        let peer = PeerId::random();
        assert!(r.reserve(id(1), "a", peer, 1_000));
        assert!(r.reserve(id(2), "a", peer, 1_000));
        assert!(r.reserve(id(3), "b", peer, 1_000));
        assert_eq!(r.held_for("a", 1_000), 2);
        assert_eq!(r.held_for("b", 1_000), 1);
        assert!(r.release(&id(1)));
        assert!(!r.release(&id(1)), "released once");
        assert!(
            !r.take(&id(2), &PeerId::random()),
            "only the requester takes its slot"
        );
        assert_eq!(r.held_for("a", 1_000), 1);
        assert_eq!(r.held_for("a", 1_000), 1);
        // Lapsed at `until`.
        assert_eq!(r.held_for("a", 1_000 + RESERVATION_MS - 1), 1);
        assert_eq!(r.held_for("a", 1_000 + RESERVATION_MS), 0);
        assert!(!r.release(&id(2)), "a lapsed reservation is gone");
    }

    #[test]
    fn a_peer_that_lets_reservations_lapse_gets_no_more_for_a_while() {
        let mut r = Reservations::default();
        let idle = PeerId::random();
        let other = PeerId::random();
        for n in 0..LAPSE_LIMIT as u8 {
            assert!(r.reserve(id(n), "a", idle, 0));
        }
        let later = RESERVATION_MS;
        assert_eq!(r.held_for("a", later), 0);
        assert!(!r.reserve(id(100), "a", idle, later), "too many lapsed");
        assert!(
            r.reserve(id(101), "a", other, later),
            "others are not affected"
        );
        // Taken (accepted) reservations are not lapses.
        assert!(r.take(&id(101), &other));
        assert!(r.reserve(id(102), "a", other, later));
        // After the window the peer may reserve again.
        assert!(r.reserve(id(103), "a", idle, LAPSE_WINDOW_MS + RESERVATION_MS + 1));
    }
}
