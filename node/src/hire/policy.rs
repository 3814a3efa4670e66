//! Negotiation policy, as pure functions: how a provider answers a request (quote, offer,
//! counter or decline) and whether a client accepts a proposal. The node calls these; the
//! tests here pin every branch.

use souk_protocol::Timestamp;
use souk_protocol::manifest::Manifest;
use souk_protocol::negotiation::{DeclineReason, HireRequest, Price, Terms};

/// How long an offer or counter stays valid.
pub const PROPOSAL_TTL_MS: u64 = 60_000;
/// The shortest hire a provider accepts (deadline - now).
pub const MIN_WINDOW_MS: u64 = 1_000;

/// The provider's answer to a request, before signing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Terms within the request.
    Offer(Terms),
    /// Terms outside the request, with the reason.
    Counter(Terms, String),
    /// No.
    Decline(DeclineReason, String),
}

/// The price of a hire: the fixed price plus the hourly price for every started hour of
/// the window the client asks for (capped at the agent's longest duration).
pub fn quote(m: &Manifest, window_ms: u64) -> u64 {
    let window = window_ms.min(m.limits.max_duration_ms);
    let hours = window.div_ceil(3_600_000);
    m.pricing
        .per_hire
        .saturating_add(m.pricing.per_hour.saturating_mul(hours))
}

/// `micros` in currency units, as people read prices: `0.5 USD`.
fn money(micros: u64, currency: &str) -> String {
    format!("{} {currency}", crate::agent_file::format_amount(micros))
}

/// Decides how to answer `req` for agent `m` at `now`, with `running` hires of it in flight.
pub fn answer(m: &Manifest, req: &HireRequest, now: Timestamp, running: u32) -> Answer {
    if running >= m.limits.max_concurrency {
        return Answer::Decline(
            DeclineReason::Capacity,
            format!(
                "all {} slots of {} are busy; try again later",
                m.limits.max_concurrency, m.name
            ),
        );
    }
    if req.input_size > m.limits.max_input_bytes {
        return Answer::Decline(
            DeclineReason::InputTooLarge,
            format!(
                "input of {} bytes exceeds the agent's limit of {}",
                req.input_size, m.limits.max_input_bytes
            ),
        );
    }
    if req.budget.currency != m.pricing.currency {
        return Answer::Decline(
            DeclineReason::Price,
            format!("this agent is priced in {}", m.pricing.currency),
        );
    }
    if req.budget.amount < m.pricing.per_hire {
        return Answer::Decline(
            DeclineReason::Price,
            format!(
                "the budget {} is below the advertised price {}",
                money(req.budget.amount, &m.pricing.currency),
                money(m.pricing.per_hire, &m.pricing.currency)
            ),
        );
    }
    if req.deadline < now.saturating_add(MIN_WINDOW_MS) {
        return Answer::Decline(
            DeclineReason::Deadline,
            "the deadline has passed or is too close".into(),
        );
    }
    let window = req.deadline - now;
    let deadline = now.saturating_add(window.min(m.limits.max_duration_ms));
    let price = quote(m, window);
    let terms = Terms {
        price: Price {
            currency: m.pricing.currency.clone(),
            amount: price,
        },
        deadline,
    };
    if price <= req.budget.amount {
        Answer::Offer(terms)
    } else {
        Answer::Counter(
            terms,
            format!(
                "the price for a window of {} h is {} (fixed {} plus {} per started hour)",
                window.min(m.limits.max_duration_ms).div_ceil(3_600_000),
                money(price, &m.pricing.currency),
                money(m.pricing.per_hire, &m.pricing.currency),
                money(m.pricing.per_hour, &m.pricing.currency)
            ),
        )
    }
}

/// Why the client's policy refuses a proposal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unacceptable {
    /// Priced in another currency than the manifest's.
    #[error("priced in {offered}, not {wanted}")]
    Currency {
        /// The proposal's currency.
        offered: String,
        /// The manifest's.
        wanted: String,
    },
    /// Above the client's maximum (micro-units).
    #[error(
        "price {} is above your maximum {}",
        crate::agent_file::format_amount(*price),
        crate::agent_file::format_amount(*max)
    )]
    Price {
        /// The proposed price.
        price: u64,
        /// The client's maximum.
        max: u64,
    },
    /// The proposed deadline is later than the client's.
    #[error("the proposed deadline is later than yours")]
    Deadline,
}

/// The client's policy: accept terms that cost at most `max_price` and finish by
/// `max_deadline`, before the proposal lapses.
pub fn acceptable(
    terms: &Terms,
    currency: &str,
    max_price: u64,
    max_deadline: Timestamp,
) -> Result<(), Unacceptable> {
    if terms.price.currency != currency {
        return Err(Unacceptable::Currency {
            offered: terms.price.currency.clone(),
            wanted: currency.into(),
        });
    }
    if terms.price.amount > max_price {
        return Err(Unacceptable::Price {
            price: terms.price.amount,
            max: max_price,
        });
    }
    if terms.deadline > max_deadline {
        return Err(Unacceptable::Deadline);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use souk_protocol::vectors::{T0, manifest_body, provider_key};

    fn req(budget: u64, deadline: u64, size: u64) -> HireRequest {
        HireRequest {
            manifest_id: souk_protocol::Hash::ZERO,
            client: provider_key().id(),
            input_commitment: souk_protocol::Hash::ZERO,
            input_size: size,
            budget: Price {
                currency: "USD".into(),
                amount: budget,
            },
            deadline,
            nonce: [0; 16],
            created_at: T0,
        }
    }

    #[test]
    fn every_branch() {
        // Fixture: 2.00 per hire + 0.50 per hour, 1 h max, 4 slots, 1 MiB input.
        let m = manifest_body(&provider_key());
        let hour = 3_600_000;
        assert_eq!(quote(&m, hour), 2_500_000);
        assert_eq!(quote(&m, 10 * hour), 2_500_000, "capped at max duration");
        assert!(
            matches!(answer(&m, &req(3_000_000, T0 + hour, 10), T0, 0), Answer::Offer(t) if t.price.amount == 2_500_000)
        );
        assert!(
            matches!(answer(&m, &req(2_000_000, T0 + hour, 10), T0, 0), Answer::Counter(t, _) if t.price.amount == 2_500_000)
        );
        assert!(matches!(
            answer(&m, &req(1_000_000, T0 + hour, 10), T0, 0),
            Answer::Decline(DeclineReason::Price, _)
        ));
        assert!(matches!(
            answer(&m, &req(3_000_000, T0 + hour, 10), T0, 4),
            Answer::Decline(DeclineReason::Capacity, _)
        ));
        assert!(matches!(
            answer(&m, &req(3_000_000, T0 + hour, 2 << 20), T0, 0),
            Answer::Decline(DeclineReason::InputTooLarge, _)
        ));
        assert!(matches!(
            answer(&m, &req(3_000_000, T0 + 10, 10), T0, 0),
            Answer::Decline(DeclineReason::Deadline, _)
        ));
        let mut eur = req(3_000_000, T0 + hour, 10);
        eur.budget.currency = "EUR".into();
        assert!(matches!(
            answer(&m, &eur, T0, 0),
            Answer::Decline(DeclineReason::Price, _)
        ));
        // An offer never promises more than the agent's max duration.
        if let Answer::Offer(t) = answer(&m, &req(3_000_000, T0 + 5 * hour, 10), T0, 0) {
            assert_eq!(t.deadline, T0 + hour);
        } else {
            panic!("expected an offer");
        }
    }

    #[test]
    fn client_policy() {
        let t = Terms {
            price: Price {
                currency: "USD".into(),
                amount: 5,
            },
            deadline: 100,
        };
        assert!(acceptable(&t, "USD", 5, 100).is_ok());
        assert_eq!(
            acceptable(&t, "USD", 4, 100),
            Err(Unacceptable::Price { price: 5, max: 4 })
        );
        assert_eq!(acceptable(&t, "USD", 5, 99), Err(Unacceptable::Deadline));
        assert!(matches!(
            acceptable(&t, "EUR", 5, 100),
            Err(Unacceptable::Currency { .. })
        ));
    }
}
