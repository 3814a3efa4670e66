//! Relayed mode through an in-process fake of the node's transport: the "client's node"
//! checks its own grant, injects and performs the call with `perform`; the provider's proxy
//! never holds the secret.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::*;
use souk_egress::*;
use souk_protocol::credential::{CredentialPolicy, OfflineBehaviour};
use souk_protocol::receipt::CallMode;
use zeroize::Zeroizing;

/// The client's node: its own grant, secret and upstream client.
struct FakeClient {
    grant: Grant,
    secret: Zeroizing<Vec<u8>>,
    upstream: Upstream,
    /// Calls answered `Offline` before the client comes online.
    offline_for: AtomicUsize,
    calls: AtomicUsize,
    requests: std::sync::Mutex<Vec<RelayedRequest>>,
}

impl Relay for FakeClient {
    fn relay(&self, req: RelayedRequest) -> RelayFuture<'_> {
        Box::pin(async move {
            let n = self.calls.fetch_add(1, Ordering::SeqCst);
            if n < self.offline_for.load(Ordering::SeqCst) {
                return Err(RelayError::Offline);
            }
            self.requests
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(req.clone());
            let secret = Secret::new(Zeroizing::new(self.secret.to_vec()));
            let performed = perform(req, &self.grant, &secret, &self.upstream, 1_000).await;
            match performed.result {
                Ok(mut resp) => {
                    // Stands in for the client's signed record of `performed.observation`.
                    let obs = &performed.observation;
                    resp.record =
                        Some(format!("signed:{}:{}", obs.method, obs.status).into_bytes());
                    Ok(resp)
                }
                Err(denial) => Err(RelayError::Denied {
                    record: Some(format!("signed-denial:{}", denial.code).into_bytes()),
                    denial,
                }),
            }
        })
    }
}

fn client(
    env: &Env,
    policy: CredentialPolicy,
    secret: &[u8],
    offline_for: usize,
) -> Arc<FakeClient> {
    Arc::new(FakeClient {
        grant: Grant::new(policy, 0).must("client grant"),
        secret: Zeroizing::new(secret.to_vec()),
        upstream: Upstream::new(env.upstream()).must("client upstream"),
        offline_for: AtomicUsize::new(offline_for),
        calls: AtomicUsize::new(0),
        requests: std::sync::Mutex::new(Vec::new()),
    })
}

#[tokio::test]
async fn relayed_call_is_injected_by_the_client_and_scrubbed() {
    let env = env().await;
    let secret = canary();
    let policy = relayed(
        grant("crm", &["api.test"], bearer()),
        OfflineBehaviour::Fail,
    );
    let fake = client(&env, policy.clone(), &secret, 0);
    let source = SecretSource::Relayed(fake.clone());
    let mut proxy = start(env.config(&[], vec![slot(policy, source)])).await;

    let resp = proxy
        .agent()
        .send(
            "GET",
            "http://api.test/echo-secret?x=1",
            &[("authorization", b"Bearer souk-credential:crm")],
            b"",
        )
        .await;
    assert_eq!(resp.status, 200, "{}", String::from_utf8_lossy(&resp.raw));
    let want = [b"Bearer ".as_slice(), &secret].concat();
    assert_eq!(
        env.echo.last().header("authorization"),
        Some(want.as_slice())
    );
    assert_absent(&secret, &resp.raw, "agent bytes");

    // What crossed the relay: the un-injected request, never the secret.
    let relayed = fake
        .requests
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    assert_eq!(relayed.len(), 1);
    assert_eq!(relayed[0].path, "/echo-secret?x=1");
    assert_eq!(relayed[0].host, "api.test");
    assert_absent(
        &secret,
        format!("{:?}", relayed[0]).as_bytes(),
        "relayed request",
    );
    assert!(
        relayed[0]
            .headers
            .iter()
            .all(|(k, _)| k != "proxy-authorization")
    );

    let obs = proxy.observation().await;
    assert_eq!(obs.mode, CallMode::Relayed);
    assert_eq!(obs.slot.as_deref(), Some("crm"));
    assert_eq!(obs.status, 200);
    assert_eq!(
        obs.relay_record.as_deref(),
        Some(b"signed:GET:200".as_slice())
    );
    assert_eq!(obs.response_hash, body_hash(&resp.body));
    assert_eq!(proxy.egress.requests_used("crm"), Some(1));
    assert_eq!(fake.grant.requests_used(), 1);
    proxy.stop().await;
    assert_absent(&secret, &logs(), "logs");
}

#[tokio::test]
async fn offline_client_gives_client_offline() {
    let env = env().await;
    let policy = relayed(
        grant("crm", &["api.test"], bearer()),
        OfflineBehaviour::Fail,
    );
    let fake = client(&env, policy.clone(), &canary(), usize::MAX);
    let mut proxy =
        start(env.config(&[], vec![slot(policy, SecretSource::Relayed(fake.clone()))])).await;
    let resp = proxy.agent().get("http://api.test/x").await;
    let v = resp.assert_denied("client_offline", 503);
    assert_eq!(v["retry"], true);
    let obs = proxy.observation().await;
    assert_eq!(obs.denial, Some(DenialCode::ClientOffline));
    assert_eq!(
        fake.calls.load(Ordering::SeqCst),
        1,
        "fail at once: one attempt"
    );
    assert_eq!(proxy.egress.requests_used("crm"), Some(0));
    proxy.stop().await;
}

#[tokio::test]
async fn waiting_policy_rides_out_a_short_outage() {
    let env = env().await;
    let policy = relayed(
        grant("crm", &["api.test"], bearer()),
        OfflineBehaviour::Wait { max_ms: 20_000 },
    );
    let fake = client(&env, policy.clone(), &canary(), 2);
    let mut proxy =
        start(env.config(&[], vec![slot(policy, SecretSource::Relayed(fake.clone()))])).await;
    let resp = proxy.agent().get("http://api.test/x").await;
    assert_eq!(resp.status, 200, "{}", String::from_utf8_lossy(&resp.raw));
    assert_eq!(fake.calls.load(Ordering::SeqCst), 3);
    assert_eq!(proxy.observation().await.status, 200);
    proxy.stop().await;
}

#[tokio::test]
async fn the_clients_own_policy_has_the_last_word() {
    let env = env().await;
    let provider_policy = relayed(
        grant("crm", &["api.test"], bearer()),
        OfflineBehaviour::Fail,
    );
    let mut client_policy = provider_policy.clone();
    client_policy.methods = vec!["GET".into()];
    let fake = client(&env, client_policy, &canary(), 0);
    let mut proxy = start(env.config(
        &[],
        vec![slot(provider_policy, SecretSource::Relayed(fake))],
    ))
    .await;
    let hits = env.echo.hits();
    let resp = proxy
        .agent()
        .send("DELETE", "http://api.test/x", &[], b"")
        .await;
    resp.assert_denied("method_not_allowed", 403);
    let obs = proxy.observation().await;
    assert_eq!(
        (obs.denial, obs.mode),
        (Some(DenialCode::MethodNotAllowed), CallMode::Relayed)
    );
    assert_eq!(
        obs.relay_record, None,
        "a refused call carries no record (R10)"
    );
    assert_eq!(env.echo.hits(), hits);
    proxy.stop().await;
}

#[tokio::test]
async fn perform_treats_the_relayed_request_as_hostile() {
    let env = env().await;
    let secret = canary();
    let policy = relayed(
        grant("crm", &["api.test"], bearer()),
        OfflineBehaviour::Fail,
    );
    let g = Grant::new(policy, 0).must("grant");
    let upstream = Upstream::new(env.upstream()).must("upstream");
    let s = Secret::new(Zeroizing::new(secret.clone()));
    let base = RelayedRequest {
        slot: "crm".into(),
        method: "GET".into(),
        host: "api.test".into(),
        path: "/x".into(),
        headers: vec![],
        body: vec![],
    };
    let hits = env.echo.hits();
    let cases: Vec<(RelayedRequest, DenialCode)> = vec![
        (
            RelayedRequest {
                slot: "other".into(),
                ..base.clone()
            },
            DenialCode::CredentialUnavailable,
        ),
        (
            RelayedRequest {
                host: "evil.test".into(),
                ..base.clone()
            },
            DenialCode::BlockedByPolicy,
        ),
        (
            RelayedRequest {
                host: "not a host".into(),
                ..base.clone()
            },
            DenialCode::BadRequest,
        ),
        (
            RelayedRequest {
                method: "CONNECT".into(),
                ..base.clone()
            },
            DenialCode::BadRequest,
        ),
        (
            RelayedRequest {
                method: "G T".into(),
                ..base.clone()
            },
            DenialCode::BadRequest,
        ),
        (
            RelayedRequest {
                path: "/a/../b".into(),
                ..base.clone()
            },
            DenialCode::PathNotAllowed,
        ),
        (
            RelayedRequest {
                path: "/./b".into(),
                ..base.clone()
            },
            DenialCode::PathNotAllowed,
        ),
        (
            RelayedRequest {
                method: "get".into(),
                path: "/a/../b".into(),
                ..base.clone()
            },
            DenialCode::BadRequest,
        ),
        (
            RelayedRequest {
                path: "x".into(),
                ..base.clone()
            },
            DenialCode::BadRequest,
        ),
        (
            RelayedRequest {
                headers: vec![("bad name".into(), b"v".to_vec())],
                ..base.clone()
            },
            DenialCode::BadRequest,
        ),
        (
            RelayedRequest {
                headers: vec![("x".into(), b"a\r\nb".to_vec())],
                ..base.clone()
            },
            DenialCode::BadRequest,
        ),
        (
            RelayedRequest {
                body: secret.clone(),
                ..base.clone()
            },
            DenialCode::SecretInRequest,
        ),
        (
            RelayedRequest {
                body: vec![0; (16 << 20) + 1],
                ..base.clone()
            },
            DenialCode::RequestTooLarge,
        ),
    ];
    for (req, code) in cases {
        let performed = perform(req, &g, &s, &upstream, 1_000).await;
        let denial = performed.result.err().must("denied");
        assert_eq!(denial.code, code, "{denial:?}");
        assert_eq!(performed.observation.denial, Some(code));
        assert_eq!(performed.observation.mode, CallMode::Relayed);
        assert_recordable(&performed.observation);
    }
    assert_eq!(env.echo.hits(), hits);
    assert_eq!(g.requests_used(), 0);
    let ok = perform(base, &g, &s, &upstream, 1_000).await;
    assert_eq!(ok.result.must("performed").status, 200);
    assert_eq!(g.requests_used(), 1);
}

/// A client's node that answers every call with `answer`.
struct Canned(RelayedResponse);

impl Relay for Canned {
    fn relay(&self, _req: RelayedRequest) -> RelayFuture<'_> {
        let answer = self.0.clone();
        Box::pin(async move { Ok(answer) })
    }
}

#[tokio::test]
async fn a_reply_the_receipt_could_not_back_is_refused() {
    let env = env().await;
    let ok = RelayedResponse {
        status: 200,
        headers: vec![],
        body: b"fine".to_vec(),
        record: Some(b"signed".to_vec()),
    };
    let cases = [
        (
            "no record",
            RelayedResponse {
                record: None,
                ..ok.clone()
            },
        ),
        (
            "a record too long for a receipt entry",
            RelayedResponse {
                record: Some(vec![0; 3201]),
                ..ok.clone()
            },
        ),
        (
            "a body the proxy would have to scrub",
            RelayedResponse {
                body: b"see souk-credential:mail".to_vec(),
                ..ok.clone()
            },
        ),
    ];
    for (what, answer) in cases {
        let crm = relayed(
            grant("crm", &["api.test"], bearer()),
            OfflineBehaviour::Fail,
        );
        let mail = relayed(
            grant("mail", &["other.test"], bearer()),
            OfflineBehaviour::Fail,
        );
        let mut proxy = start(env.config(
            &[],
            vec![
                slot(crm, SecretSource::Relayed(Arc::new(Canned(answer)))),
                slot(mail, SecretSource::Relayed(Arc::new(Canned(ok.clone())))),
            ],
        ))
        .await;
        let resp = proxy.agent().get("http://api.test/x").await;
        resp.assert_denied("upstream_error", 502);
        let obs = proxy.observation().await;
        assert_eq!(obs.denial, Some(DenialCode::UpstreamError), "{what}");
        assert_eq!(obs.relay_record, None, "{what}");
        // The client performed the call: it counts against the budget.
        assert_eq!(proxy.egress.requests_used("crm"), Some(1), "{what}");
        proxy.stop().await;
    }
}
