//! Penalties for peers that send invalid input, and bans for repeat offenders.
//!
//! Every rejected manifest (bad signature, non-canonical bytes, expired, oversized, replayed
//! lower seq, ...) costs its sender [`PENALTY_INVALID`] points; points decay linearly over
//! time. A peer whose score reaches [`BAN_THRESHOLD`] is disconnected and refused for
//! [`BAN_DURATION_MS`]. Pure bookkeeping: the service applies the decisions to the swarm.

use std::collections::HashMap;

use libp2p::PeerId;

/// Points for one invalid message.
pub const PENALTY_INVALID: f64 = 10.0;
/// Score at which a peer is banned: three invalid messages within about a minute.
pub const BAN_THRESHOLD: f64 = 25.0;
/// Points forgiven per minute.
pub const DECAY_PER_MINUTE: f64 = 5.0;
/// How long a ban lasts.
pub const BAN_DURATION_MS: u64 = 10 * 60 * 1000;

#[derive(Debug, Clone, Copy)]
struct Score {
    points: f64,
    updated_ms: u64,
}

/// What happened after a penalty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The peer stays connected.
    Warned,
    /// The peer crossed the threshold: disconnect and refuse it until the ban ends.
    Banned,
}

/// Scores of misbehaving peers.
#[derive(Debug, Default)]
pub struct PeerScores {
    scores: HashMap<PeerId, Score>,
    bans: HashMap<PeerId, u64>,
}

impl PeerScores {
    /// Records an invalid message from `peer` at `now_ms`.
    pub fn penalize(&mut self, peer: PeerId, now_ms: u64) -> Verdict {
        let s = self.scores.entry(peer).or_insert(Score {
            points: 0.0,
            updated_ms: now_ms,
        });
        let minutes = now_ms.saturating_sub(s.updated_ms) as f64 / 60_000.0;
        s.points = (s.points - minutes * DECAY_PER_MINUTE).max(0.0) + PENALTY_INVALID;
        s.updated_ms = now_ms;
        if s.points >= BAN_THRESHOLD {
            self.scores.remove(&peer);
            self.bans.insert(peer, now_ms + BAN_DURATION_MS);
            Verdict::Banned
        } else {
            Verdict::Warned
        }
    }

    /// Whether `peer` is banned at `now_ms`.
    pub fn is_banned(&self, peer: &PeerId, now_ms: u64) -> bool {
        self.bans.get(peer).is_some_and(|until| *until > now_ms)
    }

    /// The peer's current points (0 when unknown), for diagnostics.
    pub fn points(&self, peer: &PeerId) -> f64 {
        self.scores.get(peer).map_or(0.0, |s| s.points)
    }

    /// Ends expired bans and returns the peers to unblock.
    pub fn expire_bans(&mut self, now_ms: u64) -> Vec<PeerId> {
        let ended: Vec<PeerId> = self
            .bans
            .iter()
            .filter(|(_, until)| **until <= now_ms)
            .map(|(p, _)| *p)
            .collect();
        for p in &ended {
            self.bans.remove(p);
        }
        self.scores.retain(|_, s| {
            s.points - (now_ms.saturating_sub(s.updated_ms) as f64 / 60_000.0) * DECAY_PER_MINUTE
                > 0.0
        });
        ended
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_strikes_ban_and_decay_forgives() {
        let mut s = PeerScores::default();
        let p = PeerId::random();
        assert_eq!(s.penalize(p, 0), Verdict::Warned);
        assert_eq!(s.penalize(p, 1000), Verdict::Warned);
        assert_eq!(s.penalize(p, 2000), Verdict::Banned);
        assert!(s.is_banned(&p, 2001));
        assert_eq!(s.expire_bans(2000 + BAN_DURATION_MS), vec![p]);
        assert!(!s.is_banned(&p, 2000 + BAN_DURATION_MS));
        // Spread out over time, the same three strikes do not ban.
        let q = PeerId::random();
        for i in 0..3 {
            assert_eq!(s.penalize(q, i * 5 * 60_000), Verdict::Warned);
        }
    }
}
