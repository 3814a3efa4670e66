//! The local API refuses requests without the token, with a wrong token, from a browser
//! (an `Origin` header) or addressed to a non-loopback host; the right token works.

#[path = "support/mod.rs"]
mod support;

use std::sync::Arc;

use souk_node::api::client::ApiClient;
use souk_node::api::{self, ApiState};
use souk_node::service::NodeInfo;
use support::{seed, start_node};
use zeroize::Zeroizing;

fn status(agent: &ureq::Agent, url: &str, headers: &[(&str, &str)]) -> u16 {
    let mut req = agent.get(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    match req.call() {
        Ok(r) => r.status().as_u16(),
        Err(e) => panic!("request failed: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_requires_the_token_and_refuses_browsers() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let node = start_node(tmp.path(), seed(30), false, vec![]).await;
    let token = "ab".repeat(32);
    let stop = Arc::new(tokio::sync::Notify::new());
    let state = ApiState {
        node: node.handle.clone(),
        token: Arc::new(Zeroizing::new(token.clone())),
        shutdown: stop.clone(),
    };
    let s2 = stop.clone();
    let (addr, _task) = api::serve(([127, 0, 0, 1], 0).into(), state, async move {
        s2.notified().await
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let url = format!("http://{addr}/v1/info");
    let good = format!("Bearer {token}");
    let wrong = format!("Bearer {}", "cd".repeat(32));
    let codes = tokio::task::spawn_blocking(move || {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .new_agent();
        let codes = vec![
            status(&agent, &url, &[]),
            status(&agent, &url, &[("Authorization", &wrong)]),
            status(&agent, &url, &[("Authorization", "Basic abc")]),
            status(
                &agent,
                &url,
                &[("Authorization", &good), ("Origin", "https://evil.example")],
            ),
            status(
                &agent,
                &url,
                &[("Authorization", &good), ("Host", "evil.example:80")],
            ),
            status(&agent, &url, &[("Authorization", &good)]),
        ];
        let client = ApiClient::new(addr, Zeroizing::new(token));
        let info: NodeInfo = client.get("/v1/info").unwrap_or_else(|e| panic!("{e}"));
        let bad_client = ApiClient::new(addr, Zeroizing::new("00".repeat(32)));
        let err = bad_client
            .get::<NodeInfo>("/v1/info")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        (codes, info, err)
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let (codes, info, err) = codes;
    assert_eq!(codes, vec![401, 401, 401, 403, 403, 200]);
    assert_eq!(info.node_id, node.handle.node_id.to_string());
    assert!(err.contains("token"), "{err}");
    stop.notify_waiters();
    node.handle.shutdown().await;
}
