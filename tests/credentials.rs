//! Credential isolation end to end: a client grants a random canary secret to a hired agent
//! (sealed to the provider, or relayed through the client), the sandboxed agent calls a local
//! HTTPS upstream through the provider's egress proxy, the upstream receives the credential,
//! and afterwards the canary (raw, base64, hex, url-encoded) is nowhere: not in what the agent
//! received, its output, the receipts, the exported bundle, the logs, or either node's data
//! directory. Every refusal (a host not listed, a method or path the grant does not allow, a
//! redirect to another host, a cleartext upstream, a wrong proxy token, an exhausted budget,
//! a tampered or replayed sealed credential, an offline client) is a JSON denial to the agent
//! and an observed `network-call` entry in the verified chain.

#[path = "support/mod.rs"]
mod support;

use std::net::SocketAddr;
use std::path::Path;

use serde_json::{Value, json};
use souk_egress::testing::{Echo, assert_absent, canary, capture_logs, logs, spawn_echo, test_ca};
use souk_node::agent_file::SlotSpec;
use souk_node::hire::credentials::{CredentialRequest, GrantMode, Secret};
use souk_node::hire::{EgressSettings, NewHire};
use souk_protocol::Hash;
use souk_protocol::bundle::Bundle;
use souk_protocol::credential::DenialCode;
use souk_protocol::hire::HireState;
use souk_protocol::receipt::{CallMode, EntryKind, NetworkCall, SignedEntry};
use support::{
    TestNode, hire, publish_and_find, python_agent, sandboxed_settings, seed, start_node_with,
    verified_bundle, wait_for_state,
};

/// Makes the calls of its input through `HTTP_PROXY` (urllib, which follows redirects), one
/// raw request with a wrong proxy token, and reports everything it received.
const CALLER: &str = r#"import base64, json, os, socket, sys, time, urllib.error, urllib.parse, urllib.request

def send(kind, **fields):
    fields["type"] = kind
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()

start = json.loads(sys.stdin.readline())
job = start["input"]
proxy = os.environ["HTTP_PROXY"]
opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": proxy, "https": proxy}))

def call(c):
    body = c.get("body")
    req = urllib.request.Request(c["url"], method=c.get("method", "GET"),
                                 data=body.encode() if body is not None else None,
                                 headers=c.get("headers", {}))
    try:
        with opener.open(req, timeout=60) as r:
            return {"status": r.status, "body": r.read().decode("latin-1"), "headers": dict(r.headers)}
    except urllib.error.HTTPError as e:
        return {"status": e.code, "body": e.read().decode("latin-1"), "headers": dict(e.headers)}
    except Exception as e:
        return {"error": repr(e)}

def bad_token(url):
    p = urllib.parse.urlsplit(proxy)
    s = socket.create_connection((p.hostname, p.port), timeout=30)
    auth = base64.b64encode(b"souk:not-the-token").decode()
    s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nProxy-Authorization: Basic %s\r\nConnection: close\r\n\r\n" % (url, auth)).encode())
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return {"status": int(head.split()[1]), "body": body.decode("latin-1")}

if job.get("ask_first"):
    send("question", question="go?")
    sys.stdin.readline()
results = []
for c in job["calls"]:
    if c.get("bad_token"):
        results.append(bad_token(c["url"]))
    elif c.get("until_offline"):
        # Repeat the call until the client's node is offline (the test stops it).
        for _ in range(600):
            r = call(c)
            if r.get("status") == 503:
                break
            time.sleep(0.1)
        results.append(r)
    else:
        results.append(call(c))
    send("decision", text="call %d done" % len(results))
env = {k: v for k, v in os.environ.items() if k.startswith("SOUK_CREDENTIAL_")}
send("result", output={"results": results, "env": env})
"#;

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"))
}

/// The test upstreams: `api.test` (HTTPS, the credential's host), `other.test` (HTTPS, not
/// listed), `plain.test` (listed, but plain HTTP).
struct Upstreams {
    tls: Echo,
    plain: Echo,
}

impl Upstreams {
    async fn start() -> Self {
        Upstreams {
            tls: spawn_echo(true).await,
            plain: spawn_echo(false).await,
        }
    }

    fn port(&self) -> u16 {
        self.tls.addr.port()
    }

    fn egress(&self) -> EgressSettings {
        let tls: SocketAddr = self.tls.addr;
        EgressSettings {
            allow_private: true,
            extra_roots: vec![test_ca().ca_der.to_vec()],
            resolve: vec![
                ("api.test".into(), tls),
                ("other.test".into(), tls),
                ("plain.test".into(), self.plain.addr),
            ],
        }
    }

    fn api(&self, path: &str) -> String {
        format!("http://api.test:{}{path}", self.port())
    }
}

/// Starts a sandboxed provider whose proxies reach the test upstreams, and a client that
/// reaches them too (it makes the relayed calls itself).
async fn nodes(root: &Path, base: u16, up: &Upstreams) -> (TestNode, TestNode) {
    let p = provider(root, base, up, None).await;
    let c = client(root, base, up, &p).await;
    (p, c)
}

/// (Re)starts the provider of [`nodes`], on `port` if given (so a restarted provider keeps
/// its address).
async fn provider(root: &Path, base: u16, up: &Upstreams, port: Option<u16>) -> TestNode {
    let mut settings = sandboxed_settings().await;
    settings.egress = up.egress();
    start_node_with(&root.join("provider"), seed(base), false, vec![], |o| {
        o.work_dir = root.join("provider-work");
        o.hires = settings;
        if let Some(port) = port {
            o.listen = vec![
                format!("/ip4/127.0.0.1/tcp/{port}")
                    .parse()
                    .unwrap_or_else(|e| panic!("{e}")),
            ];
        }
    })
    .await
}

/// (Re)starts the client of [`nodes`].
async fn client(root: &Path, base: u16, up: &Upstreams, p: &TestNode) -> TestNode {
    let egress = up.egress();
    start_node_with(
        &root.join("client"),
        seed(base + 1),
        false,
        vec![p.addr.clone()],
        move |o| o.hires.egress = egress,
    )
    .await
}

/// Publishes the caller agent with one credential slot `crm` on `api.test:PORT` (header
/// `authorization: Bearer …`), and `plain.test` as a listed host.
async fn publish_caller(p: &TestNode, c: &TestNode, root: &Path, up: &Upstreams) -> String {
    let mut spec = python_agent(&root.join("pkg"), "caller", CALLER, 1_000_000);
    spec.hosts = vec![format!("plain.test:{}", up.plain.addr.port())];
    spec.credentials = vec![SlotSpec {
        name: "crm".into(),
        hosts: vec![format!("api.test:{}", up.port())],
        inject: "header".into(),
        param: "authorization".into(),
        prefix: "Bearer ".into(),
    }];
    publish_and_find(&p.handle, &c.handle, spec, "caller").await
}

fn grant(secret: &[u8], mode: GrantMode, methods: &[&str], budget: u64) -> CredentialRequest {
    CredentialRequest {
        slot: "crm".into(),
        secret: Secret::new(String::from_utf8_lossy(secret).into_owned()),
        mode,
        methods: methods.iter().map(|m| m.to_string()).collect(),
        path_prefixes: vec!["/echo-secret".into(), "/redirect".into(), "/ok".into()],
        max_requests: Some(budget),
        offline_wait_ms: None,
    }
}

/// The `network-call` entries of a verified chain, in order.
fn network_calls(bundle: &[u8]) -> Vec<NetworkCall> {
    let b = Bundle::decode_bytes(bundle).unwrap_or_else(|e| panic!("bundle: {e}"));
    b.entries
        .iter()
        .filter_map(
            |raw| match SignedEntry::decode_bytes(raw).ok()?.body().kind.clone() {
                EntryKind::NetworkCall(c) => Some(c),
                _ => None,
            },
        )
        .collect()
}

/// Every file under `dir`, concatenated (to look for a leaked secret).
fn all_bytes(dir: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let path = e.path();
        if path.is_dir() {
            out.extend(all_bytes(&path));
        } else if let Ok(b) = std::fs::read(&path) {
            out.extend(b);
        }
    }
    out
}

fn denial_of(result: &Value) -> Option<String> {
    let body: Value = serde_json::from_str(result["body"].as_str()?).ok()?;
    body["error"].as_str().map(str::to_owned)
}

async fn output(c: &TestNode, id: Hash) -> Value {
    support::wait_for_some("the output", || async {
        c.handle.hires.output(id).await.ok().flatten()
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sealed_credential_is_used_never_seen_and_every_refusal_is_recorded() {
    capture_logs();
    let tmp = tempdir();
    let up = Upstreams::start().await;
    let (p, c) = nodes(tmp.path(), 460, &up).await;
    let mid = publish_caller(&p, &c, tmp.path(), &up).await;
    let secret = canary();
    let plain = format!("http://plain.test:{}/x", up.plain.addr.port());
    let calls = json!([
        // 0: the credential reaches the upstream; the echoed secret is scrubbed.
        { "url": up.api("/echo-secret") },
        // 1: a host the manifest does not list.
        { "url": format!("http://other.test:{}/x", up.port()) },
        // 2: a method the grant does not allow.
        { "url": up.api("/ok"), "method": "POST", "body": "{}" },
        // 3: a path the grant does not allow.
        { "url": up.api("/admin") },
        // 4: a redirect to another host: followed by the agent, refused by the proxy.
        { "url": up.api(&format!("/redirect?to=http://other.test:{}/x", up.port())) },
        // 5: a listed host that speaks cleartext.
        { "url": plain },
        // 6: the wrong proxy token.
        { "url": up.api("/ok"), "bad_token": true },
        // 7: the budget (2) is spent by calls 0 and 4.
        { "url": up.api("/ok") },
    ]);
    let new = NewHire {
        manifest_id: mid,
        input: json!({ "calls": calls }),
        max_price: None,
        deadline_ms: None,
        credentials: vec![grant(&secret, GrantMode::Sealed, &["GET"], 2)],
        retry_busy_ms: None,
    };
    let id = hire(&c.handle, new).await.id();
    let done = wait_for_state(&c.handle, id, HireState::Completed).await;
    assert_eq!(done.error, None);
    let out = output(&c, id).await;
    let results = &out["results"];

    // The upstream got the credential, injected by the proxy.
    let first = up
        .tls
        .seen()
        .into_iter()
        .find(|s| s.path == "/echo-secret")
        .unwrap_or_else(|| panic!("the upstream never saw the call"));
    let mut want = b"Bearer ".to_vec();
    want.extend_from_slice(&secret);
    assert_eq!(first.header("authorization"), Some(&want[..]));
    assert_eq!(results[0]["status"], 200, "{results}");
    assert!(
        results[0]["body"]
            .as_str()
            .is_some_and(|b| b.contains("[REDACTED]")),
        "{results}"
    );
    assert_eq!(out["env"]["SOUK_CREDENTIAL_CRM"], "souk-credential:crm");
    let expected = [
        (1, "blocked_by_policy", 403),
        (2, "method_not_allowed", 403),
        (3, "path_not_allowed", 403),
        (4, "blocked_by_policy", 403),
        (5, "tls_required", 502),
        (6, "proxy_auth_required", 407),
        (7, "budget_exhausted", 403),
    ];
    for (i, code, status) in expected {
        assert_eq!(results[i]["status"], status, "call {i}: {}", results[i]);
        assert_eq!(denial_of(&results[i]).as_deref(), Some(code), "call {i}");
    }

    // The chain records every call and every refusal, and verifies.
    let (bundle, report) = verified_bundle(&c.handle, id, true).await;
    assert_eq!(report.state, HireState::Completed);
    let observed = network_calls(&bundle);
    let denials: Vec<Option<DenialCode>> = observed.iter().map(|o| o.denial).collect();
    for code in [
        DenialCode::BlockedByPolicy,
        DenialCode::MethodNotAllowed,
        DenialCode::PathNotAllowed,
        DenialCode::TlsRequired,
        DenialCode::ProxyAuthRequired,
        DenialCode::BudgetExhausted,
    ] {
        assert!(
            denials.contains(&Some(code)),
            "{code:?} not recorded: {denials:?}"
        );
    }
    let sealed: Vec<&NetworkCall> = observed
        .iter()
        .filter(|o| o.mode == CallMode::Sealed && o.denial.is_none())
        .collect();
    assert_eq!(
        sealed.len(),
        2,
        "two calls used the credential: {observed:?}"
    );
    assert!(sealed.iter().all(|o| o.slot.as_deref() == Some("crm")));

    // The canary is nowhere.
    let received = serde_json::to_vec(&out).unwrap_or_default();
    assert_absent(&secret, &received, "what the agent received and output");
    assert_absent(&secret, &bundle, "the bundle (with every disclosure)");
    p.handle.shutdown().await;
    c.handle.shutdown().await;
    assert_absent(
        &secret,
        &all_bytes(&tmp.path().join("provider")),
        "the provider's data",
    );
    assert_absent(
        &secret,
        &all_bytes(&tmp.path().join("provider-work")),
        "the work dirs",
    );
    assert_absent(
        &secret,
        &all_bytes(&tmp.path().join("client")),
        "the client's data",
    );
    assert_absent(&secret, &logs(), "the logs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relayed_credential_never_leaves_the_client_and_an_offline_client_is_a_clear_denial() {
    capture_logs();
    let tmp = tempdir();
    let up = Upstreams::start().await;
    let (p, c) = nodes(tmp.path(), 470, &up).await;
    let mid = publish_caller(&p, &c, tmp.path(), &up).await;
    let secret = canary();
    let calls = json!([
        { "url": up.api("/echo-secret") },
        { "url": up.api("/ok"), "until_offline": true },
    ]);
    let new = NewHire {
        manifest_id: mid,
        input: json!({ "calls": calls }),
        max_price: None,
        deadline_ms: None,
        credentials: vec![grant(&secret, GrantMode::Relayed, &["GET"], 100)],
        retry_busy_ms: None,
    };
    let id = hire(&c.handle, new).await.id();
    // Once the client has seen the first relayed call in the chain, it goes offline.
    support::wait_for_some("the first relayed call in the client's chain", || async {
        let steps = c.handle.hires.receipts(id, 0, 0).await.ok()?.steps;
        steps.iter().any(|s| s.kind == "network-call").then_some(())
    })
    .await;
    c.handle.shutdown().await;
    let _ = c.task.await;
    wait_for_state(&p.handle, id, HireState::Completed).await;
    // Back online, the client catches up.
    let c = client(tmp.path(), 470, &up, &p).await;
    wait_for_state(&c.handle, id, HireState::Completed).await;
    let out = output(&c, id).await;
    let results = &out["results"];
    assert_eq!(results[0]["status"], 200, "{results}");
    assert!(
        results[0]["body"]
            .as_str()
            .is_some_and(|b| b.contains("[REDACTED]")),
        "{results}"
    );
    assert_eq!(results[1]["status"], 503, "{results}");
    assert_eq!(denial_of(&results[1]).as_deref(), Some("client_offline"));
    let body: Value =
        serde_json::from_str(results[1]["body"].as_str().unwrap_or("{}")).unwrap_or_default();
    assert_eq!(body["retry"], true, "an offline client may come back");
    // The client made the call: the upstream saw its secret.
    let seen = up
        .tls
        .seen()
        .into_iter()
        .find(|s| s.path == "/echo-secret")
        .unwrap_or_else(|| panic!("the upstream never saw the call"));
    let mut want = b"Bearer ".to_vec();
    want.extend_from_slice(&secret);
    assert_eq!(seen.header("authorization"), Some(&want[..]));
    // The chain holds the client's signed record of each relayed call (rule R10 verified).
    let (bundle, _) = verified_bundle(&c.handle, id, true).await;
    let observed = network_calls(&bundle);
    let relayed: Vec<&NetworkCall> = observed
        .iter()
        .filter(|o| o.mode == CallMode::Relayed && o.denial.is_none())
        .collect();
    assert!(!relayed.is_empty(), "{observed:?}");
    assert!(relayed.iter().all(|o| o.relay_record.is_some()));
    assert!(
        observed
            .iter()
            .any(|o| o.denial == Some(DenialCode::ClientOffline)),
        "{observed:?}"
    );
    let received = serde_json::to_vec(&out).unwrap_or_default();
    assert_absent(&secret, &received, "what the agent received and output");
    assert_absent(&secret, &bundle, "the bundle");
    p.handle.shutdown().await;
    c.handle.shutdown().await;
    for dir in ["provider", "provider-work", "client"] {
        assert_absent(&secret, &all_bytes(&tmp.path().join(dir)), dir);
    }
    assert_absent(&secret, &logs(), "the logs");
}

/// A sealed credential tampered with at rest, or replayed from another hire, does not open:
/// the agent's call is refused (`credential_unavailable`) and recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_or_replayed_sealed_credential_is_refused_and_recorded() {
    capture_logs();
    let tmp = tempdir();
    let up = Upstreams::start().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("{e}"));
    let p = provider(tmp.path(), 480, &up, Some(port)).await;
    let c = client(tmp.path(), 480, &up, &p).await;
    let mid = publish_caller(&p, &c, tmp.path(), &up).await;
    let mut ids = Vec::new();
    for _ in 0..2 {
        let new = NewHire {
            manifest_id: mid.clone(),
            input: json!({ "ask_first": true, "calls": [{ "url": up.api("/ok") }] }),
            max_price: None,
            deadline_ms: None,
            credentials: vec![grant(&canary(), GrantMode::Sealed, &[], 10)],
            retry_busy_ms: None,
        };
        let id = hire(&c.handle, new).await.id();
        wait_for_state(&p.handle, id, HireState::InputRequired).await;
        ids.push(id);
    }
    let (tampered, replayed) = (ids[0], ids[1]);
    // At rest on the provider: one grant's ciphertext is changed; the other hire gets the
    // first one's (intact) grant.
    p.handle.shutdown().await;
    let TestNode { task, .. } = p;
    let _ = task.await;
    {
        let store = souk_store::Store::open(
            &tmp.path().join("provider").join("souk.redb"),
            &souk_store::StoreConfig::default(),
        )
        .unwrap_or_else(|e| panic!("open the provider's store: {e}"));
        let name = souk_node::hire::credentials::BLOB_GRANTS;
        let grants = store
            .get_hire_blob(&tampered, name)
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|| panic!("no grants stored"));
        store
            .put_hire_blob(&replayed, name, &grants)
            .unwrap_or_else(|e| panic!("{e}"));
        // The ciphertext of the one grant, found in the stored bytes, gets one bit flipped.
        let envelope = souk_node::hire::credentials::decode_grants(&grants)
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("one grant"));
        let grant = souk_protocol::credential::SignedGrant::decode_bytes(&envelope)
            .unwrap_or_else(|e| panic!("{e}"));
        let ciphertext = &grant
            .body()
            .sealed
            .as_ref()
            .unwrap_or_else(|| panic!("a sealed grant"))
            .ciphertext;
        let at = grants
            .windows(ciphertext.len())
            .position(|w| w == &ciphertext[..])
            .unwrap_or_else(|| panic!("the ciphertext is in the stored grants"));
        let mut bad = grants.clone();
        bad[at + ciphertext.len() / 2] ^= 0x01;
        store
            .put_hire_blob(&tampered, name, &bad)
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let p = provider(tmp.path(), 480, &up, Some(port)).await;
    for id in [tampered, replayed] {
        wait_for_state(&c.handle, id, HireState::InputRequired).await;
        support::wait_for_some("the restarted provider to take the answer", || async {
            c.handle.hires.answer(id, json!("go")).await.ok()
        })
        .await;
    }
    for id in [tampered, replayed] {
        wait_for_state(&c.handle, id, HireState::Completed).await;
        let out = output(&c, id).await;
        let result = &out["results"][0];
        assert_eq!(result["status"], 403, "{result}");
        assert_eq!(denial_of(result).as_deref(), Some("credential_unavailable"));
        let (bundle, _) = verified_bundle(&c.handle, id, false).await;
        assert!(
            network_calls(&bundle)
                .iter()
                .any(|o| o.denial == Some(DenialCode::CredentialUnavailable)),
            "the refusal is recorded"
        );
    }
    assert_eq!(
        up.tls.hits(),
        0,
        "no call went upstream without a credential that opens"
    );
    p.handle.shutdown().await;
    c.handle.shutdown().await;
}
