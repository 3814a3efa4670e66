//! Grants: the client's [`CredentialPolicy`] for one slot with its request counter, and the
//! per-call decision.
//!
//! Owns [`Grant`] (a validated policy plus a counter of requests used and reserved) and the
//! human messages that go with each denial. The decision itself is the protocol's
//! [`CredentialPolicy::check_request`] (`spec/credentials.md`, "Request check"), so the
//! provider's proxy, the client's relay handler and any verifier apply the same rule; this
//! module only supplies the host spelling, the clock value and the count. It never touches the
//! network, the secret or the agent.

use std::sync::Mutex;

use souk_protocol::credential::{CredentialPolicy, Denial, DenialCode};

use crate::config::ConfigError;
use crate::host::HostKey;

#[derive(Debug, Default)]
struct Usage {
    used: u64,
    reserved: u64,
}

/// A validated [`CredentialPolicy`] with its request counter. Shared by the provider's proxy
/// (sealed mode, and the pre-check in relayed mode) and by the client's node (relayed mode,
/// through [`crate::perform`]).
#[derive(Debug)]
pub struct Grant {
    policy: CredentialPolicy,
    usage: Mutex<Usage>,
}

impl Grant {
    /// Validates `policy` ([`CredentialPolicy::validate`]); `requests_used` restores the
    /// counter (e.g. after a node restart, from the count stored for this grant).
    pub fn new(policy: CredentialPolicy, requests_used: u64) -> Result<Grant, ConfigError> {
        policy.validate().map_err(|source| ConfigError::Policy {
            slot: policy.slot.clone(),
            source,
        })?;
        Ok(Grant {
            policy,
            usage: Mutex::new(Usage {
                used: requests_used,
                reserved: 0,
            }),
        })
    }

    /// The policy this grant enforces.
    pub fn policy(&self) -> &CredentialPolicy {
        &self.policy
    }

    /// Calls that reached the upstream with the credential so far.
    pub fn requests_used(&self) -> u64 {
        self.lock().used
    }

    pub(crate) fn slot(&self) -> &str {
        &self.policy.slot
    }

    /// Whether the policy lists `host`: its canonical spelling (lowercase, port omitted when
    /// 443) equals one of the policy's hosts, as the request check compares them.
    pub(crate) fn covers(&self, host: &HostKey) -> bool {
        let h = host.to_string();
        self.policy.hosts.contains(&h)
    }

    /// The request check for `method` on `host` and the raw `path` (without query) at
    /// `now_ms`, counting requests in flight against the budget.
    pub(crate) fn check(
        &self,
        host: &HostKey,
        method: &str,
        path: &str,
        now_ms: u64,
    ) -> Result<(), Denial> {
        let h = host.to_string();
        let used = {
            let u = self.lock();
            u.used.saturating_add(u.reserved)
        };
        self.policy
            .check_request(method, &h, path, now_ms, used)
            .map_err(|code| self.denial(code, h, method))
    }

    /// Takes one request from the budget; released unless [`Reservation::commit`] is called.
    pub(crate) fn reserve(&self, host: &HostKey) -> Result<Reservation<'_>, Denial> {
        let mut u = self.lock();
        if u.used.saturating_add(u.reserved) >= self.policy.max_requests {
            return Err(self.denial(DenialCode::BudgetExhausted, host.to_string(), ""));
        }
        u.reserved += 1;
        Ok(Reservation {
            grant: self,
            done: false,
        })
    }

    /// The denial for a failed request check, with a message naming the rule.
    fn denial(&self, code: DenialCode, host: String, method: &str) -> Denial {
        let p = &self.policy;
        let slot = &p.slot;
        let message = match code {
            DenialCode::BlockedByPolicy => {
                format!("the grant for slot {slot} does not list this host")
            }
            DenialCode::MethodNotAllowed => format!(
                "slot {slot} allows only {}; not {method}",
                p.methods.join(", ")
            ),
            DenialCode::PathNotAllowed if p.path_prefixes.is_empty() => format!(
                "slot {slot}: the path does not normalise (no dot segments, encoded separators \
                 or control characters, only RFC 3986 path characters)"
            ),
            DenialCode::PathNotAllowed => format!(
                "slot {slot} allows only paths under {} (after normalisation; dot segments are \
                 refused)",
                p.path_prefixes.join(", ")
            ),
            DenialCode::CredentialExpired => {
                format!("the grant for slot {slot} has expired")
            }
            DenialCode::BudgetExhausted => format!(
                "the grant for slot {slot} allows {} requests; all are used",
                p.max_requests
            ),
            other => format!("slot {slot}: {other}"),
        };
        Denial::new(code, host, message)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Usage> {
        // The counter stays consistent even if a holder panicked: recover the guard.
        self.usage.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One request taken from a grant's budget.
pub(crate) struct Reservation<'a> {
    grant: &'a Grant,
    done: bool,
}

impl Reservation<'_> {
    /// The call reached the upstream with the credential: it counts.
    pub(crate) fn commit(mut self) {
        let mut u = self.grant.lock();
        u.reserved -= 1;
        u.used += 1;
        self.done = true;
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.grant.lock().reserved -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use souk_protocol::credential::CredentialMode;
    use souk_protocol::hash::Hash;
    use souk_protocol::manifest::Injection;

    use super::*;

    fn policy() -> CredentialPolicy {
        CredentialPolicy {
            hire_id: Hash::digest(b"hire"),
            slot: "crm".into(),
            hosts: vec!["api.test".into()],
            methods: vec!["GET".into(), "POST".into()],
            path_prefixes: vec!["/v1/contacts".into()],
            injection: Injection::Basic,
            expires_at: 1_000,
            max_requests: 2,
            mode: CredentialMode::Sealed,
        }
    }

    fn host(s: &str) -> HostKey {
        HostKey::parse(s).unwrap_or_else(|| panic!("host {s}"))
    }

    #[test]
    fn checks_in_order() {
        let g = Grant::new(policy(), 0).unwrap_or_else(|e| panic!("{e}"));
        let h = host("api.test");
        assert_eq!(g.check(&h, "GET", "/v1/contacts/1", 999), Ok(()));
        let code = |r: Result<(), Denial>| r.err().map(|d| d.code);
        for (key, method, path, now, want) in [
            (
                "api.test:8443",
                "GET",
                "/v1/contacts",
                0,
                DenialCode::BlockedByPolicy,
            ),
            (
                "API.test.",
                "PUT",
                "/v1/contacts",
                0,
                DenialCode::MethodNotAllowed,
            ),
            (
                "api.test",
                "DELETE",
                "/v1/contacts",
                0,
                DenialCode::MethodNotAllowed,
            ),
            (
                "api.test",
                "DELETE",
                "/v1/../x",
                0,
                DenialCode::MethodNotAllowed,
            ),
            (
                "api.test",
                "GET",
                "/v1/admin",
                0,
                DenialCode::PathNotAllowed,
            ),
            (
                "api.test",
                "GET",
                "/v1/contacts/./7",
                0,
                DenialCode::PathNotAllowed,
            ),
            (
                "api.test",
                "GET",
                "/v1/contacts",
                1_000,
                DenialCode::CredentialExpired,
            ),
        ] {
            assert_eq!(
                code(g.check(&host(key), method, path, now)),
                Some(want),
                "{method} {key}{path}"
            );
        }
        // The host spelling is the policy's: lowercase, 443 implied, trailing dot dropped.
        assert!(g.covers(&host("API.test.:443")));
        assert!(!g.covers(&host("api.test:444")));
    }

    #[test]
    fn budget_counts_only_committed_calls() {
        let g = Grant::new(policy(), 1).unwrap_or_else(|e| panic!("{e}"));
        let h = host("api.test");
        let r = g.reserve(&h).unwrap_or_else(|d| panic!("{d:?}"));
        // The reserved request holds the last unit while in flight.
        assert_eq!(
            g.check(&h, "GET", "/v1/contacts", 0).err().map(|d| d.code),
            Some(DenialCode::BudgetExhausted)
        );
        drop(r);
        assert_eq!(g.requests_used(), 1);
        let r = g.reserve(&h).unwrap_or_else(|d| panic!("{d:?}"));
        r.commit();
        assert_eq!(g.requests_used(), 2);
        assert!(g.reserve(&h).is_err());
    }

    #[test]
    fn rejects_invalid_policies_with_the_protocols_reason() {
        type Mutation = fn(&mut CredentialPolicy);
        let cases: [(Mutation, &str); 5] = [
            (|p| p.methods = vec!["get".into()], "invalid-method"),
            (
                |p| p.path_prefixes = vec!["/a/../b".into()],
                "invalid-path-prefix",
            ),
            (|p| p.hosts = vec!["http://x".into()], "invalid-host"),
            (|p| p.hosts.clear(), "no-hosts"),
            (|p| p.max_requests = 0, "budget"),
        ];
        for (mutate, want) in cases {
            let mut p = policy();
            mutate(&mut p);
            match Grant::new(p, 0) {
                Err(ConfigError::Policy { slot, source }) => {
                    assert_eq!((slot.as_str(), source.code()), ("crm", want));
                }
                other => panic!("{want}: {other:?}"),
            }
        }
    }
}
