//! `souk a2a serve` driven by the official A2A Python SDK (`a2a-sdk` on PyPI) as any A2A
//! client would drive it: a provider running the example csv-analyst and a slow agent, a
//! light client node, both real `souk` processes, and the gateway on the client's data dir.
//! `tests/a2a/gateway_client.py` reads the cards, sends (blocking and streaming), answers an
//! input-required task, cancels, and checks the errors; the receipt bundles the tasks carry
//! as artifacts are then verified offline with `souk verify`.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use common::*;

/// Runs until canceled, one step every 200 ms.
const SLOW_PY: &str = r#"import json, sys, time
sys.stdin.readline()
for i in range(1500):
    sys.stdout.write(json.dumps({"type": "decision", "text": "waiting %d" % i}) + "\n")
    sys.stdout.flush()
    time.sleep(0.2)
sys.stdout.write(json.dumps({"type": "result", "output": {}}) + "\n")
"#;

const SLOW_TOML: &str = r#"name = "slowpoke"
description = "Waits a long time (a test agent to cancel)."
capabilities = ["testing"]
input_schema = { type = "object" }
output_schema = { type = "object" }
hosts = []

[pricing]
currency = "USD"
per_hire = "0.1"
per_hour = "0"

[limits]
max_duration_secs = 600
max_concurrency = 2
max_input_bytes = 4096

[run]
command = ["python3", "agent.py"]
"#;

/// The gateway process; killed when dropped.
struct Gateway(Child);

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn an_a2a_client_hires_streams_answers_cancels_and_gets_verifiable_receipts() {
    let probe = Command::new("python3")
        .args(["-c", "import a2a.client, httpx"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run python3 ({e}): install Python 3"));
    assert!(
        probe.status.success(),
        "the A2A Python SDK is not installed: run `python3 -m pip install 'a2a-sdk[http-server]==0.3.26'`; \
         .ci/run does this itself"
    );
    let tmp = tempdir();
    let listen = format!("/ip4/127.0.0.1/tcp/{}", free_port());
    let (_provider, info, _client) = provider_and_light_client(tmp.path(), &listen);
    let pdir = tmp.path().join("provider");
    let cdir = tmp.path().join("client");
    ok(
        &souk(&pdir, &["agent", "publish", path_str(&example_agent())]),
        "agent publish",
    );
    publish_found(tmp.path(), &pdir, &cdir, (SLOW_PY, SLOW_TOML), "slowpoke");
    wait_for("the client to find csv-analyst", || {
        let out = souk(&cdir, &["search", "csv", "--json"]);
        stdout(&out).contains("csv-analyst").then_some(())
    });
    let node_id = info["node_id"].as_str().unwrap_or_default().to_owned();
    assert!(node_id.starts_with("souk"), "node info: {info}");

    // A non-loopback address is refused with a clear error.
    let refused = souk(&cdir, &["a2a", "serve", "--listen", "0.0.0.0:0"]);
    assert_clean_error(&refused, &["not a loopback address"]);

    let mut child = souk_cmd()
        .arg("--data-dir")
        .arg(&cdir)
        .args(["a2a", "serve", "--listen", "127.0.0.1:0", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start the gateway: {e}"));
    let first = child.stdout.take().map(|o| {
        let mut line = String::new();
        let _ = BufReader::new(o).read_line(&mut line);
        line
    });
    let _gateway = Gateway(child);
    let started: serde_json::Value = serde_json::from_str(first.as_deref().unwrap_or(""))
        .unwrap_or_else(|e| panic!("the gateway's first line is not JSON ({e}): {first:?}"));
    let url = started["url"].as_str().unwrap_or_default().to_owned();
    let token_file = started["token_file"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(url.starts_with("http://127.0.0.1:"), "{started}");
    assert_eq!(mode_of(std::path::Path::new(&token_file)) & 0o777, 0o600);

    let out_dir = tmp.path().join("a2a-out");
    std::fs::create_dir_all(&out_dir).unwrap_or_else(|e| panic!("{e}"));
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/a2a/gateway_client.py");
    let out = Command::new("python3")
        .arg(&script)
        .args(["--url", &url, "--token-file", &token_file])
        .args(["--agent", &format!("{node_id}/csv-analyst")])
        .args(["--slow-agent", &format!("{node_id}/slowpoke")])
        .arg("--out")
        .arg(&out_dir)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    let report = stdout(&out);
    assert!(
        out.status.success(),
        "the A2A client failed:\n{report}\n{}",
        stderr(&out)
    );
    // The bundles the tasks carried verify offline, with no node.
    for name in ["send.souk", "stream.souk"] {
        let bundle = out_dir.join(name);
        let v = ok_json(
            &souk(&cdir, &["verify", path_str(&bundle), "--json"]),
            "souk verify",
        );
        assert_eq!(v["valid"], true, "{name}: {v}");
    }
    // The tasks are ordinary hires of the client node.
    let hires = ok_json(&souk(&cdir, &["hires", "--json"]), "souk hires");
    let states: Vec<&str> = hires
        .as_array()
        .map(|a| a.iter().filter_map(|h| h["state"].as_str()).collect())
        .unwrap_or_default();
    assert!(
        states.contains(&"completed") && states.contains(&"canceled"),
        "{hires}"
    );
}

/// The A2A agent process (`tests/a2a/echo_agent.py`); killed when dropped.
struct EchoAgent(Child);

impl Drop for EchoAgent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits until hire `id` (on the client node `dir`) is in one of `states`; returns its record.
fn hire_state(dir: &std::path::Path, id: &str, states: &[&str]) -> serde_json::Value {
    wait_for(&format!("hire {id} to be {states:?}"), || {
        let v = ok_json(&souk(dir, &["hire", "status", id, "--json"]), "hire status");
        states
            .contains(&v["state"].as_str().unwrap_or_default())
            .then_some(v)
    })
}

/// A throwaway CA (`ca`) and a certificate for a2a.example.test signed by it (`cert`, `key`):
/// the egress proxy (rustls, webpki) refuses a self-signed certificate used as a server's.
fn make_certificates(
    root: &std::path::Path,
    ca: &std::path::Path,
    cert: &std::path::Path,
    key: &std::path::Path,
) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(root)
            .output()
            .unwrap_or_else(|e| panic!("cannot run openssl ({e}): install openssl"));
        assert!(out.status.success(), "openssl {args:?}: {}", stderr(&out));
    };
    std::fs::write(
        root.join("leaf.ext"),
        "subjectAltName=DNS:a2a.example.test\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=souk test ca",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign",
        "-keyout",
        "ca.key",
        "-out",
        path_str(ca),
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=a2a.example.test",
        "-keyout",
        path_str(key),
        "-out",
        "leaf.csr",
    ]);
    run(&[
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        path_str(ca),
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        "leaf.ext",
        "-out",
        path_str(cert),
    ]);
}

#[test]
fn an_a2a_agent_offered_through_souk_is_hired_and_every_exchange_is_a_receipt() {
    let probe = Command::new("python3")
        .args(["-c", "import a2a.server.apps, uvicorn"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run python3 ({e}): install Python 3"));
    assert!(
        probe.status.success(),
        "the A2A Python SDK is not installed: run `python3 -m pip install 'a2a-sdk[http-server]==0.3.26' uvicorn`"
    );
    let tmp = tempdir();
    let root = tmp.path();
    // The egress proxy speaks TLS to every host: the A2A agent serves HTTPS with a throwaway
    // certificate for a2a.example.test, which the provider's node trusts and resolves.
    let key = root.join("key.pem");
    let cert = root.join("cert.pem");
    let ca = root.join("ca.pem");
    make_certificates(root, &ca, &cert, &key);
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/a2a/echo_agent.py");
    let mut child = Command::new("python3")
        .arg(&script)
        .args([
            "--port",
            "0",
            "--public-url",
            "https://a2a.example.test:{port}/",
        ])
        .arg("--certfile")
        .arg(&cert)
        .arg("--keyfile")
        .arg(&key)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", script.display()));
    let first = child.stdout.take().map(|o| {
        let mut line = String::new();
        let _ = BufReader::new(o).read_line(&mut line);
        line
    });
    let _echo = EchoAgent(child);
    let port: u16 = first
        .as_deref()
        .and_then(|l| l.trim().strip_prefix("listening "))
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("the A2A agent did not start: {first:?}"));
    // The provider saves the agent's card (any HTTPS client; here Python, trusting the cert).
    let card = root.join("card.json");
    let fetch = format!(
        "import http.client, ssl, sys\n\
         ctx = ssl.create_default_context(cafile=sys.argv[1]); ctx.check_hostname = False\n\
         c = http.client.HTTPSConnection('127.0.0.1', {port}, context=ctx)\n\
         c.request('GET', '/.well-known/agent-card.json', headers={{'Host': 'a2a.example.test'}})\n\
         open(sys.argv[2], 'wb').write(c.getresponse().read())\n"
    );
    let fetched = Command::new("python3")
        .args(["-c", &fetch])
        .arg(&ca)
        .arg(&card)
        .output()
        .unwrap_or_else(|e| panic!("python3: {e}"));
    assert!(fetched.status.success(), "card fetch: {}", stderr(&fetched));

    let pdir = root.join("provider");
    let cdir = root.join("client");
    init(&pdir, false);
    init(&cdir, true);
    let config = pdir.join("config.toml");
    let text = std::fs::read_to_string(&config).unwrap_or_else(|e| panic!("{e}"));
    let text = text
        .replace("allow_private = false", "allow_private = true")
        .replace(
            "extra_roots = []",
            &format!("extra_roots = [{:?}]", path_str(&ca)),
        )
        .replace(
            "resolve = {}",
            &format!("resolve = {{ \"a2a.example.test\" = \"127.0.0.1:{port}\" }}"),
        );
    std::fs::write(&config, text).unwrap_or_else(|e| panic!("{e}"));
    let listen = format!("/ip4/127.0.0.1/tcp/{}", free_port());
    let mut provider = NodeProc::start(
        "provider",
        &pdir,
        &root.join("provider.log"),
        &["--listen", &listen],
    );
    let info = provider.wait_ready();
    let paddr = format!(
        "{listen}/p2p/{}",
        info["peer_id"].as_str().unwrap_or_default()
    );
    let mut client = NodeProc::start(
        "client",
        &cdir,
        &root.join("client.log"),
        &[
            "--light",
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
            "--bootstrap",
            &paddr,
        ],
    );
    client.wait_ready();

    // An http:// endpoint cannot be offered (the proxy speaks TLS): refused with the reason.
    let plain = root.join("plain.json");
    let mut plain_card: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&card).unwrap_or_default()).unwrap_or_default();
    plain_card["url"] = serde_json::json!(format!("http://127.0.0.1:{port}/"));
    std::fs::write(&plain, plain_card.to_string()).unwrap_or_else(|e| panic!("{e}"));
    let refused = souk(&pdir, &["agent", "publish", "--a2a", path_str(&plain)]);
    assert_failure(&refused, 1, &["not https://"]);

    let pkg = root.join("echo-pkg");
    let published = ok(
        &souk(
            &pdir,
            &[
                "agent",
                "publish",
                "--a2a",
                path_str(&card),
                "--price",
                "0.05",
                "--dir",
                path_str(&pkg),
            ],
        ),
        "agent publish --a2a",
    );
    let mid = published.trim().to_owned();
    assert_eq!(mid.len(), 64, "{published}");
    assert!(pkg.join("agent.toml").is_file() && pkg.join("souk_agent/a2a_bridge.py").is_file());
    let handle = format!("{}/echo", info["node_id"].as_str().unwrap_or_default());
    wait_for("the client to find the A2A agent", || {
        let out = souk(&cdir, &["search", "echo", "--json"]);
        stdout(&out).contains(&mid).then_some(())
    });

    // A data input: echoed back as the A2A agent's artifact, through the egress proxy.
    let input = root.join("in.json");
    std::fs::write(&input, r#"{"greeting": "hello"}"#).unwrap_or_else(|e| panic!("{e}"));
    let hired = ok_json(
        &souk(
            &cdir,
            &["hire", &handle, "--input", path_str(&input), "--json"],
        ),
        "hire",
    );
    let id = hired["hire_id"].as_str().unwrap_or_default().to_owned();
    let done = hire_state(&cdir, &id, &["completed", "failed", "canceled", "expired"]);
    assert_eq!(done["state"], "completed", "{done}\n{}", provider.log());
    let output = ok_json(&souk(&cdir, &["hire", "output", &id]), "hire output");
    assert_eq!(
        output["data"],
        serde_json::json!({"echo": {"greeting": "hello"}}),
        "{output}"
    );
    assert_eq!(output["state"], "completed");
    // Every exchange is a receipt: the A2A call as a tool call, the HTTP call as the proxy saw it.
    let bundle = root.join("echo.souk");
    ok(
        &souk(&cdir, &["receipts", "export", &id, "-o", path_str(&bundle)]),
        "receipts export",
    );
    let verified = ok_json(
        &souk(&cdir, &["verify", path_str(&bundle), "--json"]),
        "verify",
    );
    assert_eq!(verified["valid"], true, "{verified}");
    let trace = ok(&souk(&cdir, &["receipts", "show", &id]), "receipts show");
    assert!(trace.contains("a2a-message-send"), "{trace}");
    assert!(
        trace.contains("a2a.example.test"),
        "no network-call entry:\n{trace}"
    );

    // Input required: the A2A agent's question becomes the hire's; the answer goes back to it.
    std::fs::write(&input, r#""ask""#).unwrap_or_else(|e| panic!("{e}"));
    let hired = ok_json(
        &souk(
            &cdir,
            &["hire", &handle, "--input", path_str(&input), "--json"],
        ),
        "hire (ask)",
    );
    let id = hired["hire_id"].as_str().unwrap_or_default().to_owned();
    let asked = hire_state(&cdir, &id, &["input-required", "failed"]);
    assert_eq!(
        asked["state"],
        "input-required",
        "{asked}\n{}",
        provider.log()
    );
    assert!(asked["question"].to_string().contains("echo"), "{asked}");
    ok(
        &souk(&cdir, &["hire", "answer", &id, r#"{"word": "bonjour"}"#]),
        "hire answer",
    );
    let done = hire_state(&cdir, &id, &["completed", "failed", "canceled", "expired"]);
    assert_eq!(done["state"], "completed", "{done}\n{}", provider.log());
    let output = ok_json(&souk(&cdir, &["hire", "output", &id]), "hire output");
    assert_eq!(
        output["data"],
        serde_json::json!({"echo": {"word": "bonjour"}}),
        "{output}"
    );
}
