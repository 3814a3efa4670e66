//! What a provider sees of its hires at the default log level, with real `souk` processes (a
//! full provider, a light client): the contract, the agent starting, and the end state with
//! its reason; when the agent crashes, its last lines on stderr (which never reach a receipt).
#![cfg(unix)]

mod common;

use common::*;

/// Says what it does on stderr, then crashes with exit status 3.
const AGENT: &str = r#"import sys
sys.stdin.readline()
sys.stderr.write("loading model\n")
sys.stderr.write('KeyError: column "price"\n')
sys.stderr.flush()
sys.exit(3)
"#;

const AGENT_TOML: &str = r#"name = "crasher"
description = "Crashes at once (provider log test agent)."
capabilities = ["testing"]
input_schema = { type = "object" }
output_schema = { type = "object" }
hosts = []

[pricing]
currency = "USD"
per_hire = "1"
per_hour = "0"

[limits]
max_duration_secs = 60
max_concurrency = 1
max_input_bytes = 4096

[run]
command = ["python3", "agent.py"]
"#;

#[test]
fn a_provider_sees_its_hires_end_and_a_crashed_agents_last_words() {
    let tmp = tempdir();
    let listen = format!("/ip4/127.0.0.1/tcp/{}", free_port());
    let (provider, _, _client) = provider_and_light_client(tmp.path(), &listen);
    let (pdir, cdir) = (provider.dir.clone(), tmp.path().join("client"));
    let mid = publish_found(tmp.path(), &pdir, &cdir, (AGENT, AGENT_TOML), "crasher");
    let input = tmp.path().join("input.json");
    std::fs::write(&input, "{}").unwrap_or_else(|e| panic!("{e}"));
    // The client waits for the end: the hire fails, so `--wait` exits 1 with the reason.
    let waited = souk(
        &cdir,
        &["hire", &mid, "--input", path_str(&input), "--wait"],
    );
    assert_eq!(waited.status.code(), Some(1), "{}", stderr(&waited));
    assert!(
        stderr(&waited).contains("agent-crashed"),
        "the client is told why: {}",
        stderr(&waited)
    );
    let hires = ok_json(&souk(&cdir, &["hires", "--json"]), "hires");
    let hire = hires[0]["hire_id"]
        .as_str()
        .unwrap_or_else(|| panic!("no hire: {hires}"))
        .to_owned();
    let short = &hire[..8];

    let log = wait_for("the provider to log the hire's end", || {
        let log = provider.log();
        log.contains("hire failed (agent-crashed)").then_some(log)
    });
    for expected in [
        "contract stored; starting the agent",
        "the agent failed (agent-crashed)",
        "its last stderr lines:",
        "| loading model",
        "| KeyError: column \"price\"",
        "hire failed (agent-crashed)",
    ] {
        assert!(
            log.contains(expected),
            "the provider log lacks {expected:?}:\n{log}"
        );
    }
    assert!(
        log.contains(short),
        "the log names the hire {short}:\n{log}"
    );
    // The agent's words stay in the provider's log: the receipts carry only the failure code
    // and the node's own message.
    let bundle = tmp.path().join("run.souk");
    ok(
        &souk(
            &cdir,
            &["receipts", "export", &hire, "-o", path_str(&bundle)],
        ),
        "export",
    );
    let bytes = std::fs::read(&bundle).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        !bytes.windows(b"KeyError".len()).any(|w| w == b"KeyError"),
        "stderr reached the receipts"
    );
}
