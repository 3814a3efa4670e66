//! The Prometheus endpoint of a real `souk node run`: off by default, turned on by
//! `--metrics` or `metrics` in config.toml (port 0 works: `node info` names the bound
//! address), scraped with a plain HTTP request whose body parses as Prometheus text and
//! follows what the node does; every other request is 404; bad addresses are refused at
//! start with exit status 2.
#![cfg(unix)]

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;

use common::*;
use serde_json::Value;

/// The address of a `metrics_url` (`http://ip:port/metrics`).
fn addr_of(url: &str) -> SocketAddr {
    url.strip_prefix("http://")
        .and_then(|rest| rest.strip_suffix("/metrics"))
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("not an http://ip:port/metrics URL: {url:?}"))
}

/// Sends one request (`method path`) and returns the status code and the body.
fn http(addr: SocketAddr, method: &str, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_read_timeout(Some(DEADLINE))
        .unwrap_or_else(|e| panic!("{e}"));
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap_or_else(|e| panic!("write: {e}"));
    let mut answer = String::new();
    s.read_to_string(&mut answer)
        .unwrap_or_else(|e| panic!("read: {e}"));
    let (head, body) = answer
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no end of head: {answer:?}"));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status: {head:?}"));
    if method == "GET" && status == 200 {
        assert!(
            head.to_ascii_lowercase()
                .contains("content-type: application/openmetrics-text"),
            "{head}"
        );
    }
    (status, body.to_owned())
}

/// Parses Prometheus text: every line a comment or `name{labels} value`; returns the samples
/// as (`name{labels}`, value).
fn parse(text: &str) -> Vec<(String, f64)> {
    assert!(text.ends_with("# EOF\n"), "{text}");
    let mut samples = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') {
            assert!(
                line == "# EOF"
                    || ["# HELP souk_", "# TYPE souk_", "# UNIT souk_"]
                        .iter()
                        .any(|p| line.starts_with(p)),
                "{line:?}"
            );
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("no value: {line:?}"));
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("not a number: {line:?}"));
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => {
                let labels = rest
                    .strip_suffix('}')
                    .unwrap_or_else(|| panic!("unclosed labels: {line:?}"));
                (name, Some(labels))
            }
            None => (series, None),
        };
        assert!(
            name.starts_with("souk_")
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
            "bad name: {line:?}"
        );
        for pair in labels.iter().flat_map(|l| l.split(',')) {
            let (key, quoted) = pair
                .split_once('=')
                .unwrap_or_else(|| panic!("bad label {pair:?}: {line:?}"));
            assert!(
                !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
                "bad label name: {line:?}"
            );
            assert!(
                quoted.len() >= 2 && quoted.starts_with('"') && quoted.ends_with('"'),
                "unquoted label value: {line:?}"
            );
        }
        samples.push((series.to_owned(), value));
    }
    samples
}

fn value(samples: &[(String, f64)], series: &str) -> Option<f64> {
    samples.iter().find(|(s, _)| s == series).map(|(_, v)| *v)
}

/// Scrapes until `check` holds for the samples; returns them.
fn scrape_until(
    addr: SocketAddr,
    what: &str,
    check: impl Fn(&[(String, f64)]) -> bool,
) -> Vec<(String, f64)> {
    wait_for(what, || {
        let (status, body) = http(addr, "GET", "/metrics");
        assert_eq!(status, 200, "{body}");
        let samples = parse(&body);
        check(&samples).then_some(samples)
    })
}

fn metrics_url(info: &Value) -> Option<String> {
    info["metrics_url"].as_str().map(str::to_owned)
}

#[test]
fn a_node_serves_prometheus_metrics_with_metrics_flag() {
    let tmp = tempdir();
    let dir = tmp.path().join("node");
    init(&dir, false);
    // This test is about metrics, not confinement: it runs where bubblewrap is missing too.
    set_config(&dir, "sandbox", "off");
    let mut node = NodeProc::start(
        "full",
        &dir,
        &tmp.path().join("full.log"),
        &["--listen", LISTEN, "--metrics", "127.0.0.1:0"],
    );
    let info = node.wait_ready();
    let url = metrics_url(&info).unwrap_or_else(|| panic!("no metrics_url: {info}"));
    let addr = addr_of(&url);
    assert!(addr.ip().is_loopback() && addr.port() != 0, "{url}");
    assert!(
        node.log().contains(&format!("metrics on {url}")),
        "{}",
        node.log()
    );
    let plain = ok(&souk(&dir, &["node", "info"]), "node info");
    assert!(
        plain
            .lines()
            .any(|l| l.starts_with("metrics") && l.ends_with(&url)),
        "{plain}"
    );

    let samples = scrape_until(addr, "a first scrape", |_| true);
    for series in [
        "souk_peers_connected",
        "souk_gossip_received_total",
        "souk_gossip_rejected_total",
        "souk_manifests_published_total",
        "souk_hire_calls_busy_total",
        "souk_egress_calls_total{verdict=\"allowed\"}",
        "souk_egress_calls_total{verdict=\"denied\"}",
        "souk_agent_run_seconds_count",
    ] {
        assert!(value(&samples, series).is_some(), "no {series}");
    }

    // What the node does shows in the next scrapes: a publication and its store write.
    ok(
        &souk(&dir, &["agent", "publish", path_str(&example_agent())]),
        "agent publish",
    );
    scrape_until(addr, "the publication to be counted", |s| {
        value(s, "souk_manifests_published_total").is_some_and(|v| v >= 1.0)
            && value(s, "souk_store_op_seconds_count{op=\"put_agent\"}").is_some_and(|v| v >= 1.0)
    });
    let json = ok_json(&souk(&dir, &["node", "info", "--json"]), "node info --json");
    assert!(
        json["metrics"]["published"]
            .as_u64()
            .is_some_and(|n| n >= 1),
        "the JSON counters still count: {json}"
    );

    for (method, path) in [
        ("POST", "/metrics"),
        ("PUT", "/metrics"),
        ("GET", "/"),
        ("GET", "/v1/info"),
        ("GET", "/metrics/extra"),
    ] {
        let (status, _) = http(addr, method, path);
        assert_eq!(status, 404, "{method} {path}");
    }

    assert!(node.terminate().success(), "{}", node.log());
    assert!(
        TcpStream::connect(addr).is_err(),
        "still serving after exit"
    );
}

/// Answers its hire at once.
const AGENT_PY: &str = r#"import json, sys
start = json.loads(sys.stdin.readline())
sys.stdout.write(json.dumps({"type": "result", "output": {"echo": start["input"]}}) + "\n")
sys.stdout.flush()
"#;

const AGENT_TOML: &str = r#"name = "echo"
description = "Echoes its input (metrics test agent)."
capabilities = ["testing"]
input_schema = { type = "object" }
output_schema = { type = "object" }
hosts = []

[pricing]
currency = "USD"
per_hire = "0.01"
per_hour = "0"

[limits]
max_duration_secs = 60
max_concurrency = 1
max_input_bytes = 4096

[run]
command = ["python3", "agent.py"]
"#;

#[test]
fn a_hire_shows_in_the_providers_agent_run_and_store_metrics() {
    let tmp = tempdir();
    let root = tmp.path();
    let (pdir, cdir) = (root.join("provider"), root.join("client"));
    init(&pdir, false);
    init(&cdir, true);
    set_config(&pdir, "sandbox", "off");
    let listen = format!("/ip4/127.0.0.1/tcp/{}", free_port());
    let (mut provider, info, mut client) =
        start_provider_and_light_client(root, &listen, &["--metrics", "127.0.0.1:0"]);
    let addr = addr_of(&metrics_url(&info).unwrap_or_else(|| panic!("no metrics_url: {info}")));
    publish_found(root, &pdir, &cdir, (AGENT_PY, AGENT_TOML), "echoes");
    let handle = format!("{}/echo", info["node_id"].as_str().unwrap_or_default());
    let input = root.join("in.json");
    std::fs::write(&input, r#"{"n": 1}"#).unwrap_or_else(|e| panic!("{e}"));
    ok(
        &souk(
            &cdir,
            &["hire", &handle, "--input", path_str(&input), "--wait"],
        ),
        "hire --wait",
    );

    let s = scrape_until(addr, "the agent run to be counted", |s| {
        value(s, "souk_agent_runs_total{outcome=\"completed\"}") == Some(1.0)
    });
    assert_eq!(value(&s, "souk_agent_run_seconds_count"), Some(1.0));
    assert_eq!(
        value(&s, "souk_agent_run_seconds_bucket{le=\"+Inf\"}"),
        Some(1.0)
    );
    // `started` is appended deferred, `completed` synced.
    for op in ["append_receipt", "append_receipt_deferred"] {
        let series = format!("souk_store_op_seconds_count{{op=\"{op}\"}}");
        assert!(value(&s, &series).is_some_and(|n| n >= 1.0), "no {series}");
    }
    // The agent lists no host: it had no proxy and made no call.
    assert_eq!(
        value(&s, "souk_egress_calls_total{verdict=\"allowed\"}"),
        Some(0.0)
    );
    assert!(value(&s, "souk_hires_offered_total").is_some_and(|n| n >= 1.0));
    assert!(provider.terminate().success(), "{}", provider.log());
    assert!(client.terminate().success(), "{}", client.log());
}

#[test]
fn the_endpoint_is_off_by_default_and_configured_in_config_toml() {
    let tmp = tempdir();
    let dir = tmp.path().join("light");
    init(&dir, true);
    let mut node = NodeProc::start("off", &dir, &tmp.path().join("off.log"), &[]);
    let info = node.wait_ready();
    assert_eq!(info["metrics_url"], Value::Null, "{info}");
    assert!(node.terminate().success(), "{}", node.log());

    set_config(&dir, "metrics", "127.0.0.1:0");
    let mut node = NodeProc::start("on", &dir, &tmp.path().join("on.log"), &[]);
    let info = node.wait_ready();
    let url = metrics_url(&info).unwrap_or_else(|| panic!("no metrics_url: {info}"));
    let samples = scrape_until(addr_of(&url), "a scrape", |_| true);
    assert!(value(&samples, "souk_peers_connected").is_some());
    assert!(node.terminate().success(), "{}", node.log());
}

#[test]
fn bad_metrics_addresses_are_refused_at_start() {
    let tmp = tempdir();
    let dir = tmp.path().join("light");
    init(&dir, true);
    for bad in ["localhost:9464", "9464", "224.0.0.1:9464"] {
        let out = node_run_expecting_failure(&dir, &["--metrics", bad]);
        assert_clean_error(&out, &["metrics"]);
    }
    set_config(&dir, "metrics", "not an address");
    let out = node_run_expecting_failure(&dir, &[]);
    assert_clean_error(&out, &["config.toml", "metrics", "not an ip:port"]);

    // A taken port: the node says so and stops.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
    let port = taken
        .local_addr()
        .unwrap_or_else(|e| panic!("{e}"))
        .port()
        .to_string();
    set_config(&dir, "metrics", "");
    let out = node_run_expecting_failure(&dir, &["--metrics", &format!("127.0.0.1:{port}")]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("cannot bind the metrics endpoint"),
        "{}",
        stderr(&out)
    );
    drop(taken);
}

/// Sets `key = "value"` in the node's config.toml (a top-level line `souk init` wrote).
fn set_config(dir: &Path, key: &str, value: &str) {
    let path = dir.join("config.toml");
    let config = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{e}"));
    let prefix = format!("{key} = ");
    assert!(
        config.lines().any(|l| l.starts_with(&prefix)),
        "no {key} line in {config}"
    );
    let edited: String = config
        .lines()
        .map(|l| {
            if l.starts_with(&prefix) {
                format!("{key} = {value:?}\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    std::fs::write(&path, edited).unwrap_or_else(|e| panic!("{e}"));
}
