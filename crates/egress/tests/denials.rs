//! Every refusal: the agent gets the contract's JSON with the right status, the observation
//! records the code, and nothing reaches the upstream that should not.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::*;
use souk_egress::*;
use souk_protocol::credential::CredentialPolicy;
use souk_protocol::receipt::CallMode;

async fn one_slot(env: &Env, policy: CredentialPolicy, secret: &[u8]) -> Proxy {
    start(env.config(
        &["other.test", "tunnel.test"],
        vec![slot(policy, sealed(secret))],
    ))
    .await
}

async fn expect_denial(proxy: &mut Proxy, resp: &Resp, code: &str, status: u16) -> Observation {
    let v = resp.assert_denied(code, status);
    let obs = proxy.observation().await;
    assert_eq!(obs.denial.map(DenialCode::as_str), Some(code), "{obs:?}");
    assert_eq!(obs.status, 0);
    assert_eq!(obs.response_bytes, 0);
    assert_eq!(v["retry"], DenialCode::parse(code).must("code").retry());
    obs
}

#[tokio::test]
async fn host_not_listed() {
    let env = env().await;
    let mut proxy = one_slot(&env, grant("crm", &["api.test"], bearer()), &canary()).await;
    let resp = proxy.agent().get("http://evil.test/x?token=1").await;
    let v = resp.assert_denied("blocked_by_policy", 403);
    assert_eq!(v["host"], "evil.test");
    assert_eq!(v["retry"], false);
    let obs = proxy.observation().await;
    // The path as sent, never the query.
    assert_eq!((obs.host.as_str(), obs.path.as_str()), ("evil.test", "/x"));
    assert_eq!(obs.denial, Some(DenialCode::BlockedByPolicy));
    // Same host on another port is another host.
    let resp = proxy.agent().get("http://other.test:8443/").await;
    expect_denial(&mut proxy, &resp, "blocked_by_policy", 403).await;
    proxy.stop().await;
}

#[tokio::test]
async fn method_path_expiry_and_budget() {
    let env = env().await;
    let (clock, now) = manual_clock(1_000);
    let mut policy = grant("crm", &["api.test"], bearer());
    policy.methods = vec!["GET".into()];
    policy.path_prefixes = vec!["/v1/contacts".into()];
    policy.expires_at = 5_000;
    policy.max_requests = 2;
    let mut cfg = env.config(&[], vec![slot(policy, sealed(&canary()))]);
    cfg.clock = clock;
    let mut proxy = start(cfg).await;
    let agent = proxy.agent();
    let hits = env.echo.hits();

    let resp = agent
        .send("POST", "http://api.test/v1/contacts", &[], b"{}")
        .await;
    expect_denial(&mut proxy, &resp, "method_not_allowed", 403).await;
    let resp = agent.get("http://api.test/v1/admin").await;
    let obs = expect_denial(&mut proxy, &resp, "path_not_allowed", 403).await;
    assert_eq!(obs.path, "/v1/admin");
    let resp = agent.get("http://api.test/v1/contactsX").await;
    expect_denial(&mut proxy, &resp, "path_not_allowed", 403).await;
    let resp = agent.get("http://api.test/v1/contacts/../admin").await;
    let obs = expect_denial(&mut proxy, &resp, "path_not_allowed", 403).await;
    assert_eq!(obs.path, "/v1/contacts/../admin", "recorded as sent");
    let resp = agent.get("http://api.test/v1/contacts/%2e%2e/admin").await;
    expect_denial(&mut proxy, &resp, "path_not_allowed", 403).await;
    let resp = agent.get("http://api.test/v1/contacts%2F..%2Fadmin").await;
    expect_denial(&mut proxy, &resp, "path_not_allowed", 403).await;
    // `.` segments are refused too, never resolved (spec/credentials.md, path normalisation).
    let resp = agent.get("http://api.test/v1/contacts/./7").await;
    expect_denial(&mut proxy, &resp, "path_not_allowed", 403).await;
    // The request check's order: the method is judged before the path.
    let resp = agent.send("PUT", "http://api.test/v1/../x", &[], b"").await;
    expect_denial(&mut proxy, &resp, "method_not_allowed", 403).await;
    assert_eq!(env.echo.hits(), hits, "nothing reached the upstream");

    // Normalised before matching and sent as checked.
    let resp = agent.get("http://api.test/v1/%63ontacts/7").await;
    assert_eq!(resp.status, 200);
    assert_eq!(env.echo.last().path, "/v1/contacts/7");
    assert_eq!(proxy.observation().await.path, "/v1/contacts/7");

    let resp = agent.get("http://api.test/v1/contacts").await;
    assert_eq!(resp.status, 200);
    proxy.observation().await;
    let resp = agent.get("http://api.test/v1/contacts").await;
    expect_denial(&mut proxy, &resp, "budget_exhausted", 403).await;
    assert_eq!(proxy.egress.requests_used("crm"), Some(2));

    now.store(5_000, Ordering::SeqCst);
    let resp = agent.get("http://api.test/v1/contacts").await;
    expect_denial(&mut proxy, &resp, "credential_expired", 403).await;
    assert_eq!(env.echo.hits(), hits + 2);
    proxy.stop().await;
}

#[tokio::test]
async fn proxy_token_missing_or_wrong() {
    let env = env().await;
    let mut proxy = one_slot(&env, grant("crm", &["api.test"], bearer()), &canary()).await;
    let hits = env.echo.hits();
    let raw =
        b"GET http://api.test/x HTTP/1.1\r\nhost: api.test\r\nconnection: close\r\n\r\n".to_vec();
    let resp = proxy.agent().raw(raw).await;
    expect_denial(&mut proxy, &resp, "proxy_auth_required", 407).await;
    assert_eq!(
        resp.header("proxy-authenticate"),
        Some(b"Basic realm=\"souk\"".as_slice())
    );

    let mut wrong = proxy.agent();
    wrong.auth = format!("Basic {}", STANDARD.encode("souk:0123456789abcdef0123"));
    let resp = wrong.get("http://api.test/x").await;
    expect_denial(&mut proxy, &resp, "proxy_auth_required", 407).await;
    let mut bearer_auth = proxy.agent();
    bearer_auth.auth = format!("Bearer {}", proxy.token);
    let resp = bearer_auth.get("http://api.test/x").await;
    expect_denial(&mut proxy, &resp, "proxy_auth_required", 407).await;
    let connect =
        b"CONNECT tunnel.test:443 HTTP/1.1\r\nhost: tunnel.test:443\r\nconnection: close\r\n\r\n"
            .to_vec();
    let resp = proxy.agent().raw(connect).await;
    let obs = expect_denial(&mut proxy, &resp, "proxy_auth_required", 407).await;
    assert_eq!(obs.method, "CONNECT");
    assert_eq!(env.echo.hits(), hits);
    proxy.stop().await;
}

#[tokio::test]
async fn cleartext_upstream_gets_no_credential() {
    let env = env().await;
    let secret = canary();
    let mut proxy = one_slot(&env, grant("crm", &["plain.test"], bearer()), &secret).await;
    let resp = proxy.agent().get("http://plain.test/x").await;
    let obs = expect_denial(&mut proxy, &resp, "tls_required", 502).await;
    assert_eq!(obs.mode, CallMode::Sealed);
    assert_eq!(
        env.plain.hits(),
        0,
        "the plain server never parsed a request"
    );
    assert_eq!(proxy.egress.requests_used("crm"), Some(0));
    proxy.stop().await;
}

#[tokio::test]
async fn connect_to_a_slot_host_is_refused() {
    let env = env().await;
    let mut proxy = one_slot(&env, grant("crm", &["api.test"], bearer()), &canary()).await;
    let req = format!(
        "CONNECT api.test:443 HTTP/1.1\r\nhost: api.test:443\r\nproxy-authorization: {}\r\nconnection: close\r\n\r\n",
        proxy.agent().auth
    )
    .into_bytes();
    let resp = proxy.agent().raw(req).await;
    let v = expect_denial(
        &mut proxy,
        &resp,
        "use_plain_http_for_credential_hosts",
        403,
    )
    .await;
    assert_eq!(v.method, "CONNECT");
    assert_eq!(v.host, "api.test");
    let req = format!(
        "CONNECT evil.test:443 HTTP/1.1\r\nhost: evil.test:443\r\nproxy-authorization: {}\r\nconnection: close\r\n\r\n",
        proxy.agent().auth
    );
    let resp = proxy.agent().raw(req.into_bytes()).await;
    expect_denial(&mut proxy, &resp, "blocked_by_policy", 403).await;
    proxy.stop().await;
}

#[tokio::test]
async fn redirects_go_back_scrubbed_and_the_follow_up_is_judged_alone() {
    let env = env().await;
    let secret = canary();
    // other.test is not listed in this hire.
    let mut proxy = start(env.config(
        &[],
        vec![slot(grant("crm", &["api.test"], bearer()), sealed(&secret))],
    ))
    .await;
    let agent = proxy.agent();
    let resp = agent.get("http://api.test/redirect-secret").await;
    assert_eq!(resp.status, 302);
    assert_absent(&secret, &resp.raw, "redirect");
    let location = String::from_utf8_lossy(resp.header("location").must("location")).into_owned();
    assert_eq!(location, "https://other.test/cb?token=[REDACTED]");
    let obs = proxy.observation().await;
    assert_eq!((obs.status, obs.denial), (302, None));
    let hits = env.echo.hits();

    // The agent follows it itself (plain HTTP through the proxy): another host, refused.
    let follow = location.replace("https://", "http://");
    let resp = agent.get(&follow).await;
    expect_denial(&mut proxy, &resp, "blocked_by_policy", 403).await;
    assert_eq!(env.echo.hits(), hits, "the proxy never follows redirects");

    let resp = agent
        .get("http://api.test/redirect?to=https%3A%2F%2Fother.test%2Fx")
        .await;
    assert_eq!(resp.status, 302);
    assert_eq!(
        resp.header("location"),
        Some(b"https://other.test/x".as_slice())
    );
    proxy.observation().await;
    assert_eq!(env.echo.hits(), hits + 1);
    proxy.stop().await;
}

#[tokio::test]
async fn secret_or_placeholder_outside_the_slot() {
    let env = env().await;
    let secret = canary();
    let mut proxy = start(env.config(
        &["other.test"],
        vec![slot(grant("crm", &["api.test"], bearer()), sealed(&secret))],
    ))
    .await;
    let agent = proxy.agent();
    let hits = env.echo.hits();
    let ph = b"souk-credential:crm".as_slice();
    let b64 = STANDARD.encode(&secret);
    type Case<'a> = (&'a str, String, Vec<(&'a str, &'a [u8])>, Vec<u8>);
    let cases: Vec<Case<'_>> = vec![
        (
            "placeholder in query",
            "http://api.test/x?q=souk-credential:crm".into(),
            vec![],
            vec![],
        ),
        (
            "encoded placeholder in query",
            "http://api.test/x?q=souk-credential%3acrm".into(),
            vec![],
            vec![],
        ),
        (
            "placeholder in path",
            "http://api.test/souk-credential:crm/x".into(),
            vec![],
            vec![],
        ),
        (
            "placeholder in body",
            "http://api.test/x".into(),
            vec![],
            [b"note=".as_slice(), ph].concat(),
        ),
        (
            "placeholder in another header",
            "http://api.test/x".into(),
            vec![("x-note", ph)],
            vec![],
        ),
        (
            "secret in body",
            "http://api.test/x".into(),
            vec![],
            secret.clone(),
        ),
        (
            "base64 secret in a header",
            "http://api.test/x".into(),
            vec![("x-b", b64.as_bytes())],
            vec![],
        ),
        (
            "placeholder to a listed host without the slot",
            "http://other.test/x".into(),
            vec![("x-api-key", ph)],
            vec![],
        ),
    ];
    for (name, url, headers, body) in cases {
        let method = if body.is_empty() { "GET" } else { "POST" };
        let resp = agent.send(method, &url, &headers, &body).await;
        assert_eq!(
            resp.status,
            403,
            "{name}: {}",
            String::from_utf8_lossy(&resp.raw)
        );
        let obs = expect_denial(&mut proxy, &resp, "secret_in_request", 403).await;
        assert_absent(&secret, format!("{obs:?}").as_bytes(), name);
        assert_absent(&secret, &resp.raw, name);
    }
    assert_eq!(env.echo.hits(), hits);
    assert_eq!(proxy.egress.requests_used("crm"), Some(0));
    assert_absent(&secret, &logs(), "logs");
    proxy.stop().await;
}

#[tokio::test]
async fn header_set_to_something_else_conflicts() {
    let env = env().await;
    let mut proxy = one_slot(&env, grant("crm", &["api.test"], bearer()), &canary()).await;
    let resp = proxy
        .agent()
        .send(
            "GET",
            "http://api.test/x",
            &[("authorization", b"Bearer my-own-token")],
            b"",
        )
        .await;
    expect_denial(&mut proxy, &resp, "header_conflict", 403).await;
    let query_slot = grant(
        "q",
        &["other.test"],
        Injection::Query {
            param: "key".into(),
        },
    );
    let mut proxy2 = start(env.config(&[], vec![slot(query_slot, sealed(&canary()))])).await;
    let resp = proxy2.agent().get("http://other.test/x?key=mine").await;
    expect_denial(&mut proxy2, &resp, "header_conflict", 403).await;
    proxy.stop().await;
    proxy2.stop().await;
}

#[tokio::test]
async fn failing_secret_source() {
    let env = env().await;
    let source = SecretSource::Sealed(Arc::new(|| Err(SecretError::Invalid)));
    let mut proxy = start(env.config(
        &[],
        vec![slot(grant("crm", &["api.test"], bearer()), source)],
    ))
    .await;
    let hits = env.echo.hits();
    let resp = proxy.agent().get("http://api.test/x").await;
    let obs = expect_denial(&mut proxy, &resp, "credential_unavailable", 403).await;
    assert_eq!(obs.slot.as_deref(), Some("crm"));
    assert_eq!(env.echo.hits(), hits);
    proxy.stop().await;
}

#[tokio::test]
async fn private_addresses_are_refused_unless_allowed() {
    let env = env().await;
    let literal = format!("127.0.0.1:{}", env.echo.addr.port());
    let mut cfg = env.config(
        &["other.test", literal.as_str()],
        vec![slot(
            grant("crm", &["api.test"], bearer()),
            sealed(&canary()),
        )],
    );
    cfg.upstream.allow_private = false;
    let mut proxy = start(cfg).await;
    let before = env.echo.connections.load(Ordering::SeqCst);
    for url in [
        "http://api.test/x".to_owned(),
        "http://other.test/x".to_owned(),
        format!("http://{literal}/x"),
    ] {
        let resp = proxy.agent().get(&url).await;
        let v = resp.assert_denied("private_address", 403);
        assert!(
            v["message"].as_str().must("message").contains("127.0.0.1"),
            "{v}"
        );
        assert_eq!(
            proxy.observation().await.denial,
            Some(DenialCode::PrivateAddress)
        );
    }
    let req = format!(
        "CONNECT other.test:443 HTTP/1.1\r\nhost: other.test\r\nproxy-authorization: {}\r\nconnection: close\r\n\r\n",
        proxy.agent().auth
    );
    let resp = proxy.agent().raw(req.into_bytes()).await;
    expect_denial(&mut proxy, &resp, "private_address", 403).await;
    assert_eq!(
        env.echo.connections.load(Ordering::SeqCst),
        before,
        "no connection was made"
    );
    proxy.stop().await;
}

#[tokio::test]
async fn dns_rebinding_connects_only_to_the_checked_address() {
    let env = env().await;
    // First answer: a public address (unreachable here); every later answer: the local echo.
    let public: SocketAddr = "1.2.3.4:443".parse().must("addr");
    env.resolver
        .set_sequence("rebind.test", vec![public], vec![env.echo.addr]);
    let mut cfg = env.config(
        &[],
        vec![slot(
            grant("crm", &["rebind.test"], bearer()),
            sealed(&canary()),
        )],
    );
    cfg.upstream.allow_private = false;
    cfg.upstream.connect_timeout = Duration::from_millis(500);
    let mut proxy = start(cfg).await;
    let before = env.echo.connections.load(Ordering::SeqCst);

    let resp = proxy.agent().get("http://rebind.test/x").await;
    // The connection went to 1.2.3.4 (the address that was checked), which fails here.
    let obs = expect_denial(&mut proxy, &resp, "upstream_error", 502).await;
    assert_eq!(obs.host, "rebind.test");
    assert_eq!(
        env.resolver.calls("rebind.test"),
        1,
        "resolved once for the connection"
    );
    assert_eq!(env.echo.connections.load(Ordering::SeqCst), before);

    // The next connection resolves again and gets the private answer: refused, not used.
    let resp = proxy.agent().get("http://rebind.test/x").await;
    expect_denial(&mut proxy, &resp, "private_address", 403).await;
    assert_eq!(env.echo.connections.load(Ordering::SeqCst), before);
    assert_eq!(proxy.egress.requests_used("crm"), Some(0));
    proxy.stop().await;
}

#[tokio::test]
async fn size_limits_and_unscrubbable_responses() {
    let env = env().await;
    let mut cfg = env.config(
        &["other.test"],
        vec![slot(
            grant("crm", &["api.test"], bearer()),
            sealed(&canary()),
        )],
    );
    cfg.upstream.max_request_body = 1024;
    cfg.upstream.max_response_body = 1000;
    let mut proxy = start(cfg).await;
    let agent = proxy.agent();
    let resp = agent
        .send("POST", "http://api.test/x", &[], &[b'x'; 2000])
        .await;
    let obs = expect_denial(&mut proxy, &resp, "request_too_large", 413).await;
    assert_eq!(obs.request_bytes, 0);
    let resp = agent.get("http://api.test/big?n=5000").await;
    expect_denial(&mut proxy, &resp, "response_too_large", 502).await;
    let resp = agent.get("http://api.test/big?n=1000").await;
    assert_eq!((resp.status, resp.body.len()), (200, 1000));
    proxy.observation().await;
    let resp = agent.get("http://api.test/gzip").await;
    let v = expect_denial(&mut proxy, &resp, "upstream_error", 502).await;
    assert_eq!(v.slot.as_deref(), Some("crm"));
    // Without a credential there is nothing to scrub: compressed bodies pass.
    let resp = agent.get("http://other.test/gzip").await;
    assert_eq!(resp.status, 200);
    proxy.observation().await;
    proxy.stop().await;
}

#[tokio::test]
async fn malformed_requests() {
    let env = env().await;
    let mut proxy = one_slot(&env, grant("crm", &["api.test"], bearer()), &canary()).await;
    let auth = proxy.agent().auth;
    let origin = format!(
        "GET /x HTTP/1.1\r\nhost: api.test\r\nproxy-authorization: {auth}\r\nconnection: close\r\n\r\n"
    );
    let resp = proxy.agent().raw(origin.into_bytes()).await;
    expect_denial(&mut proxy, &resp, "bad_request", 400).await;
    let userinfo = format!(
        "GET http://u:p@api.test/x HTTP/1.1\r\nhost: api.test\r\nproxy-authorization: {auth}\r\nconnection: close\r\n\r\n"
    );
    let resp = proxy.agent().raw(userinfo.into_bytes()).await;
    expect_denial(&mut proxy, &resp, "bad_request", 400).await;
    let upgrade = format!(
        "GET http://api.test/ws HTTP/1.1\r\nhost: api.test\r\nupgrade: websocket\r\nconnection: upgrade, close\r\nproxy-authorization: {auth}\r\n\r\n"
    );
    let resp = proxy.agent().raw(upgrade.into_bytes()).await;
    expect_denial(&mut proxy, &resp, "bad_request", 400).await;
    // Methods a receipt cannot hold (and the relay protocol refuses) are refused; the entry
    // records a marker instead.
    let hits = env.echo.hits();
    for method in ["get", "M-SEARCH"] {
        let resp = proxy
            .agent()
            .send(method, "http://api.test/x", &[], b"")
            .await;
        let obs = expect_denial(&mut proxy, &resp, "bad_request", 400).await;
        assert_eq!(
            (obs.method.as_str(), obs.host.as_str()),
            ("", "api.test"),
            "a method a receipt cannot spell is left empty"
        );
    }
    assert_eq!(env.echo.hits(), hits);
    // An IPv6 literal is recorded as it is (bracketed, lowercase).
    let resp = proxy.agent().get("http://[::1]:8080/x").await;
    let v = expect_denial(&mut proxy, &resp, "blocked_by_policy", 403).await;
    assert_eq!(v.host, "[::1]:8080");
    assert_eq!(resp.json()["host"], "[::1]:8080");
    proxy.stop().await;
}
