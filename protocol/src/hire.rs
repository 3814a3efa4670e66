//! The hire lifecycle as a pure state machine: where a hire's legal transitions live.
//!
//! States are named like A2A tasks (`input-required`, `completed`, ...) so a bridge is a
//! renaming. [`HireState::apply`] is the only way to move between states; the node persists
//! the new state before acknowledging the event that caused it, and the receipt verifier
//! replays the same machine to check rule R8. After a hire that ran ends, the client settles
//! it once with a [`Verdict`] ([`HireStatus::settle`]). Diagram: `spec/hire-lifecycle.md`.

use std::fmt;

/// Where a hire is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HireState {
    /// The client sent a request; no answer yet.
    Requested,
    /// The provider offered or countered; the client has not accepted yet.
    Negotiating,
    /// A contract exists; the agent has not started.
    Accepted,
    /// The agent is running.
    Working,
    /// The agent waits for an answer from the client.
    InputRequired,
    /// The agent finished and produced a result.
    Completed,
    /// The agent or the provider failed.
    Failed,
    /// The client or the provider canceled.
    Canceled,
    /// The provider declined the request.
    Rejected,
    /// The deadline passed (or the proposal lapsed) before the work finished.
    Expired,
}

/// What can happen to a hire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HireEvent {
    /// The provider sent an offer.
    Offered,
    /// The provider sent a counter-offer.
    Countered,
    /// The provider declined.
    Declined,
    /// The client accepted; the contract is formed.
    ContractAccepted,
    /// The proposal lapsed before acceptance.
    ProposalLapsed,
    /// The agent started (receipt `started`).
    Started,
    /// The agent asked the client a question (receipt `input-requested`).
    InputRequested,
    /// The client answered (receipt `input-provided`).
    InputProvided,
    /// The agent produced its result (receipt `completed`).
    Completed,
    /// The agent or provider failed (receipt `failed`).
    Failed,
    /// Either side canceled (receipt `canceled`).
    Canceled,
    /// The contract deadline passed (receipt `expired`).
    DeadlinePassed,
}

/// An event that is not legal in the current state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("illegal transition: {event:?} in state {from}")]
pub struct IllegalTransition {
    /// The state the hire was in.
    pub from: HireState,
    /// The event that was refused.
    pub event: HireEvent,
}

impl HireState {
    /// Every state.
    pub const ALL: [HireState; 10] = [
        HireState::Requested,
        HireState::Negotiating,
        HireState::Accepted,
        HireState::Working,
        HireState::InputRequired,
        HireState::Completed,
        HireState::Failed,
        HireState::Canceled,
        HireState::Rejected,
        HireState::Expired,
    ];

    /// The state after `event`, or why it cannot happen.
    pub fn apply(self, event: HireEvent) -> Result<HireState, IllegalTransition> {
        use HireEvent as E;
        use HireState as S;
        let next = match (self, event) {
            (S::Requested | S::Negotiating, E::Offered | E::Countered) => S::Negotiating,
            (S::Requested | S::Negotiating, E::Declined) => S::Rejected,
            (S::Negotiating, E::ContractAccepted) => S::Accepted,
            (S::Negotiating, E::ProposalLapsed) => S::Expired,
            (S::Accepted, E::Started) => S::Working,
            (S::Working, E::InputRequested) => S::InputRequired,
            (S::InputRequired, E::InputProvided) => S::Working,
            (S::Working, E::Completed) => S::Completed,
            (S::Accepted | S::Working | S::InputRequired, E::Failed) => S::Failed,
            (S::Accepted | S::Working | S::InputRequired, E::DeadlinePassed) => S::Expired,
            (
                S::Requested | S::Negotiating | S::Accepted | S::Working | S::InputRequired,
                E::Canceled,
            ) => S::Canceled,
            (from, event) => return Err(IllegalTransition { from, event }),
        };
        Ok(next)
    }

    /// No event leaves a terminal state.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            HireState::Completed
                | HireState::Failed
                | HireState::Canceled
                | HireState::Rejected
                | HireState::Expired
        )
    }

    /// The A2A-style name (`input-required`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            HireState::Requested => "requested",
            HireState::Negotiating => "negotiating",
            HireState::Accepted => "accepted",
            HireState::Working => "working",
            HireState::InputRequired => "input-required",
            HireState::Completed => "completed",
            HireState::Failed => "failed",
            HireState::Canceled => "canceled",
            HireState::Rejected => "rejected",
            HireState::Expired => "expired",
        }
    }

    /// Parses the name given by [`HireState::as_str`].
    pub fn parse(s: &str) -> Option<HireState> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

impl fmt::Display for HireState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The client's settlement of a finished hire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// The client accepts the result.
    Accepted,
    /// The client disputes it.
    Disputed,
}

impl Verdict {
    /// Wire code: 0 accepted, 1 disputed.
    pub fn code(self) -> u64 {
        match self {
            Verdict::Accepted => 0,
            Verdict::Disputed => 1,
        }
    }

    /// From a wire code.
    pub fn from_code(code: u64) -> Option<Verdict> {
        match code {
            0 => Some(Verdict::Accepted),
            1 => Some(Verdict::Disputed),
            _ => None,
        }
    }

    /// `accepted` or `disputed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Accepted => "accepted",
            Verdict::Disputed => "disputed",
        }
    }

    /// Parses the name given by [`Verdict::as_str`].
    pub fn parse(s: &str) -> Option<Verdict> {
        [Verdict::Accepted, Verdict::Disputed]
            .into_iter()
            .find(|v| v.as_str() == s)
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a settlement was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SettleError {
    /// Only a hire that had a contract and has ended can be settled.
    #[error("a hire in state {0} cannot be settled: it has not ended, or ended before a contract")]
    NotSettleable(HireState),
    /// A hire is settled once.
    #[error("the hire is already settled ({0})")]
    AlreadySettled(Verdict),
}

/// A hire's state plus the client's settlement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HireStatus {
    /// The lifecycle state.
    pub state: HireState,
    /// The client's verdict, once settled.
    pub verdict: Option<Verdict>,
    /// Whether a contract was formed (the hire reached `accepted`).
    pub contracted: bool,
}

impl HireStatus {
    /// A new hire: requested, unsettled.
    pub fn new() -> Self {
        Self {
            state: HireState::Requested,
            verdict: None,
            contracted: false,
        }
    }

    /// Applies an event (settled hires are terminal, so every event is refused).
    pub fn apply(&mut self, event: HireEvent) -> Result<HireState, IllegalTransition> {
        self.state = self.state.apply(event)?;
        if self.state == HireState::Accepted {
            self.contracted = true;
        }
        Ok(self.state)
    }

    /// Settles a hire that had a contract and has ended (completed, failed, canceled or
    /// expired after the contract was formed). A hire that ended during negotiation has no
    /// receipt chain to countersign and cannot be settled.
    pub fn settle(&mut self, verdict: Verdict) -> Result<(), SettleError> {
        if let Some(v) = self.verdict {
            return Err(SettleError::AlreadySettled(v));
        }
        if !self.state.is_terminal() || !self.contracted {
            return Err(SettleError::NotSettleable(self.state));
        }
        self.verdict = Some(verdict);
        Ok(())
    }
}

impl Default for HireStatus {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use HireEvent as E;
    use HireState as S;

    const EVENTS: [HireEvent; 12] = [
        E::Offered,
        E::Countered,
        E::Declined,
        E::ContractAccepted,
        E::ProposalLapsed,
        E::Started,
        E::InputRequested,
        E::InputProvided,
        E::Completed,
        E::Failed,
        E::Canceled,
        E::DeadlinePassed,
    ];

    /// The complete transition table, written out independently of `apply`.
    fn expected(from: HireState, ev: HireEvent) -> Option<HireState> {
        let table: &[(HireState, HireEvent, HireState)] = &[
            (S::Requested, E::Offered, S::Negotiating),
            (S::Requested, E::Countered, S::Negotiating),
            (S::Requested, E::Declined, S::Rejected),
            (S::Requested, E::Canceled, S::Canceled),
            (S::Negotiating, E::Offered, S::Negotiating),
            (S::Negotiating, E::Countered, S::Negotiating),
            (S::Negotiating, E::Declined, S::Rejected),
            (S::Negotiating, E::ContractAccepted, S::Accepted),
            (S::Negotiating, E::ProposalLapsed, S::Expired),
            (S::Negotiating, E::Canceled, S::Canceled),
            (S::Accepted, E::Started, S::Working),
            (S::Accepted, E::Failed, S::Failed),
            (S::Accepted, E::Canceled, S::Canceled),
            (S::Accepted, E::DeadlinePassed, S::Expired),
            (S::Working, E::InputRequested, S::InputRequired),
            (S::Working, E::Completed, S::Completed),
            (S::Working, E::Failed, S::Failed),
            (S::Working, E::Canceled, S::Canceled),
            (S::Working, E::DeadlinePassed, S::Expired),
            (S::InputRequired, E::InputProvided, S::Working),
            (S::InputRequired, E::Failed, S::Failed),
            (S::InputRequired, E::Canceled, S::Canceled),
            (S::InputRequired, E::DeadlinePassed, S::Expired),
        ];
        table
            .iter()
            .find(|(f, e, _)| *f == from && *e == ev)
            .map(|(_, _, to)| *to)
    }

    #[test]
    fn every_pair_matches_the_table() {
        let mut legal = 0;
        for from in HireState::ALL {
            for ev in EVENTS {
                match (from.apply(ev), expected(from, ev)) {
                    (Ok(to), Some(want)) => {
                        assert_eq!(to, want, "{from} {ev:?}");
                        legal += 1;
                    }
                    (Err(e), None) => assert_eq!(e, IllegalTransition { from, event: ev }),
                    (got, want) => panic!("{from} {ev:?}: got {got:?}, want {want:?}"),
                }
            }
        }
        assert_eq!(legal, 23);
    }

    #[test]
    fn terminal_states_accept_nothing() {
        for from in HireState::ALL.into_iter().filter(|s| s.is_terminal()) {
            for ev in EVENTS {
                assert!(from.apply(ev).is_err(), "{from} accepted {ev:?}");
            }
        }
    }

    #[test]
    fn names_round_trip() {
        for s in HireState::ALL {
            assert_eq!(HireState::parse(s.as_str()), Some(s));
        }
    }

    #[test]
    fn settlement_rules() {
        let mut st = HireStatus::new();
        assert_eq!(
            st.settle(Verdict::Accepted),
            Err(SettleError::NotSettleable(S::Requested))
        );
        for ev in [E::Offered, E::ContractAccepted, E::Started, E::Completed] {
            st.apply(ev)
                .map_err(|e| e.to_string())
                .unwrap_or_else(|e| panic!("{e}"));
        }
        assert_eq!(st.settle(Verdict::Disputed), Ok(()));
        assert_eq!(
            st.settle(Verdict::Accepted),
            Err(SettleError::AlreadySettled(Verdict::Disputed))
        );
        let mut rejected = HireStatus::new();
        assert!(rejected.apply(E::Declined).is_ok());
        assert_eq!(
            rejected.settle(Verdict::Accepted),
            Err(SettleError::NotSettleable(S::Rejected))
        );
        // Canceled during negotiation: nothing ran, nothing to settle.
        let mut early = HireStatus::new();
        for ev in [E::Offered, E::Canceled] {
            assert!(early.apply(ev).is_ok());
        }
        assert_eq!(
            early.settle(Verdict::Disputed),
            Err(SettleError::NotSettleable(S::Canceled))
        );
        // Canceled after the contract: settleable.
        let mut late = HireStatus::new();
        for ev in [E::Offered, E::ContractAccepted, E::Canceled] {
            assert!(late.apply(ev).is_ok());
        }
        assert_eq!(late.settle(Verdict::Accepted), Ok(()));
    }
}
