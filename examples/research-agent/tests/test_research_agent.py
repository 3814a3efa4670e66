"""The research agent run as the node runs it: over stdin/stdout, its HTTP calls through a fake
egress proxy to the search API (upstream.py). Checks the steps in order, one tool call per HTTP
call, a checkpoint after every node, resuming without repeating calls, credential isolation,
questions, and public error messages for every way the API can fail."""

import json
from typing import Any, Dict, List

import pytest
from conftest import API_HOST, EXAMPLE, SLOT, Bench

SECRET = "sk-canary-7f3a9c21-research"
SEARCH = "http://search.example.test/search"


def steps(node, until: str = "result") -> List[Dict[str, Any]]:
    """Every message up to the final one (or the first `until`)."""
    out = []
    while True:
        msg = node.recv()
        out.append(msg)
        if msg["type"] in ("result", "error", until):
            return out


def kinds(msgs: List[Dict[str, Any]]) -> List[str]:
    return [m["type"] if m["type"] != "tool_call" else m["tool"] for m in msgs]


def test_manifest_and_agent_agree() -> None:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    manifest = tomllib.loads((EXAMPLE / "agent.toml").read_text())
    source = (EXAMPLE / "agent.py").read_text()
    assert manifest["name"] == "research-agent"
    assert 'API_HOSTS = %s' % json.dumps(manifest["hosts"]) in source
    assert 'DEFAULT_API = "http://%s"' % manifest["hosts"][0] in source
    [slot] = manifest["credentials"]
    assert slot["name"] == SLOT and slot["hosts"] == manifest["hosts"]
    assert slot["inject"] == {"header": "authorization", "prefix": "Bearer "}
    assert {t["name"] for t in manifest["tools"]} == {"web-search", "fetch-doc"}
    assert manifest["run"]["command"] == ["python3", "agent.py"]
    for include in manifest["run"]["include"]:
        assert (EXAMPLE / include / "souk_agent" / "__init__.py").is_file()
    for key in ("input_schema", "output_schema"):
        assert json.loads((EXAMPLE / manifest[key]).read_text())["type"] == "object"


def test_a_run_walks_the_graph_with_one_tool_call_per_http_call(bench) -> None:
    b: Bench = bench()
    node = b.run({"topic": "Raft and Paxos", "max_sources": 2})
    msgs = steps(node)
    assert kinds(msgs) == [
        "decision", "checkpoint",                                      # plan
        "web-search", "web-search", "web-search", "decision", "checkpoint",  # search
        "fetch-doc", "fetch-doc", "checkpoint",                        # read
        "decision", "checkpoint",                                      # synthesize
        "result",
    ]
    assert msgs[0]["text"] == "plan: 3 searches for 'Raft and Paxos': Raft and Paxos; Raft; Paxos"
    assert [m["state"]["next"] for m in msgs if m["type"] == "checkpoint"] == [
        "search", "read", "synthesize", "end"]
    assert msgs[5]["text"] == "3 distinct sources; reading raft, paxos"

    calls = [m for m in msgs if m["type"] == "tool_call"]
    assert [c["args"] for c in calls[:3]] == [
        {"url": SEARCH + "?q=Raft+and+Paxos&limit=2", "query": "Raft and Paxos"},
        {"url": SEARCH + "?q=Raft&limit=2", "query": "Raft"},
        {"url": SEARCH + "?q=Paxos&limit=2", "query": "Paxos"},
    ]
    assert [c["result"]["ids"] for c in calls[:3]] == [
        ["raft", "paxos"], ["raft", "bft"], ["paxos", "bft"]]
    assert [c["args"] for c in calls[3:]] == [
        {"url": "http://search.example.test/doc/raft", "id": "raft"},
        {"url": "http://search.example.test/doc/paxos", "id": "paxos"},
    ]
    assert [c["result"]["title"] for c in calls[3:]] == ["Raft consensus", "Paxos"]

    # What the proxy saw (the network-call entries) pairs up with the tool calls, one to one.
    seen = b.egress.calls
    assert [(c["method"], c["host"], c["path"], c["status"]) for c in seen] == [
        ("GET", API_HOST, p, 200) for p in ["/search"] * 3 + ["/doc/raft", "/doc/paxos"]]
    assert [c["result"]["bytes"] for c in calls] == [c["response_bytes"] for c in seen]
    assert [c["result"]["status"] for c in calls] == [200] * 5
    assert len(b.api.hits) == 5

    output = msgs[-1]["output"]
    assert output == msgs[-2]["state"]["output"]
    assert output["topic"] == "Raft and Paxos"
    assert [(s["id"], s["title"], s["url"]) for s in output["sources"]] == [
        ("raft", "Raft consensus", "https://docs.example.test/raft"),
        ("paxos", "Paxos", "https://docs.example.test/paxos")]
    assert all(1 <= len(s["points"]) <= 2 for s in output["sources"])
    assert output["summary"].startswith("Raft and Paxos, from 2 sources. Raft consensus: ")
    assert "Paxos: " in output["summary"]
    assert node.finish() == 0


def test_the_granted_credential_reaches_the_api_but_never_the_agent(bench) -> None:
    b: Bench = bench(token=SECRET, secret=SECRET)
    node = b.run({"topic": "gossip"})
    assert steps(node)[-1]["type"] == "result"
    assert node.finish() == 0
    assert b.api.auth_seen == ["Bearer " + SECRET] * 2  # one search, one document
    assert all(c["slot"] == SLOT for c in b.egress.calls)
    # The agent sent no authorization of its own, and nothing it wrote holds the secret.
    assert all("authorization" not in headers for _, headers in b.egress.requests)
    assert SECRET not in json.dumps(node.messages) + node.stderr()


def test_without_the_credential_the_401_is_reported(bench) -> None:
    b: Bench = bench(token=SECRET, secret=None)
    node = b.run({"topic": "gossip"})
    msgs = steps(node)
    assert kinds(msgs) == ["decision", "checkpoint", "web-search", "error"]
    message = msgs[-1]["message"]
    assert message == (
        "the search API at search.example.test answered HTTP 401 to GET /search "
        "(hire with a search-api credential: --credential search-api=env:VAR)")
    assert msgs[2]["result"] == {"error": {"type": "AgentError", "message": message}}
    assert "gossip" not in message  # error messages are public: no query in them
    assert b.api.auth_seen == [None]
    assert node.finish() == 0


def test_a_resumed_run_continues_at_the_next_node(bench) -> None:
    b: Bench = bench()
    job = {"topic": "raft and paxos", "max_sources": 2}
    first = steps(b.run(job))
    states = {m["state"]["next"]: m["state"] for m in first if m["type"] == "checkpoint"}
    assert len(b.api.hits) == 5

    # The provider restarted after the search node's checkpoint: no search again.
    b.api.hits.clear()
    node = b.run(job, checkpoint=states["read"])
    msgs = steps(node)
    assert msgs[0] == {"type": "decision", "text": "resuming at the read step"}
    assert kinds(msgs[1:]) == ["fetch-doc", "fetch-doc", "checkpoint", "decision", "checkpoint",
                               "result"]
    assert b.api.hits == [("GET", "/doc/raft"), ("GET", "/doc/paxos")]
    assert msgs[-1]["output"] == first[-1]["output"]
    assert node.finish() == 0

    # ... and after the last one: the output, no call at all.
    b.api.hits.clear()
    node = b.run(job, checkpoint=states["end"])
    assert kinds(steps(node)) == ["decision", "result"]
    assert node.messages[-1]["output"] == first[-1]["output"]
    assert b.api.hits == []
    assert node.finish() == 0


def test_a_state_it_did_not_write_is_refused(bench) -> None:
    b: Bench = bench()
    node = b.run({"topic": "raft"}, checkpoint={"next": "format-disk"})
    assert steps(node) == [{"type": "error",
                            "message": "cannot resume: the checkpoint is not one this agent wrote"}]
    assert b.api.hits == []


def test_a_missing_topic_is_asked_for(bench) -> None:
    b: Bench = bench()
    node = b.run({"max_sources": 1})
    question = node.expect("question")["question"]
    assert question == {"text": "What should I research?",
                        "answer_schema": {"type": "string", "minLength": 1, "maxLength": 200}}
    assert b.api.hits == []
    node.answer("vector clocks")
    msgs = steps(node)
    assert msgs[0]["type"] == "checkpoint"
    assert msgs[0]["state"]["topic"] == "vector clocks"  # a resumed run needs the answer
    assert msgs[0]["state"]["next"] == "plan"
    output = msgs[-1]["output"]
    assert output["topic"] == "vector clocks"
    assert [s["id"] for s in output["sources"]] == ["vector-clocks"]
    assert node.finish() == 0


def test_a_topic_without_sources_asks_again(bench) -> None:
    b: Bench = bench()
    node = b.run({"topic": "underwater basket weaving"})
    msgs = steps(node, until="question")
    assert kinds(msgs) == ["decision", "checkpoint", "web-search", "decision", "checkpoint",
                           "question"]
    assert msgs[2]["result"]["ids"] == []
    assert msgs[4]["state"]["next"] == "clarify"
    assert msgs[5]["question"]["text"] == (
        "No sources found for 'underwater basket weaving'. What else should I research?")
    node.answer({"topic": "gossip"})
    output = steps(node)[-1]["output"]
    assert [s["id"] for s in output["sources"]] == ["gossip"]
    assert node.finish() == 0


def test_an_upstream_500_names_the_status_and_host(bench) -> None:
    b: Bench = bench()
    b.api.override = lambda method, path: (500, b'{"error": "database on fire"}')
    node = b.run({"topic": "raft"})
    msgs = steps(node)
    assert kinds(msgs) == ["decision", "checkpoint", "web-search", "error"]
    assert msgs[-1]["message"] == (
        "the search API at search.example.test answered HTTP 500 to GET /search")
    assert len(b.api.hits) == 1
    assert node.finish() == 0


def test_a_failing_document_fetch_ends_the_run_after_the_search_checkpoint(bench) -> None:
    b: Bench = bench()
    b.api.override = lambda method, path: (503, b"busy") if path.startswith("/doc/") else None
    msgs = steps(b.run({"topic": "gossip"}))
    assert kinds(msgs) == ["decision", "checkpoint", "web-search", "decision", "checkpoint",
                           "fetch-doc", "error"]
    assert msgs[-1]["message"] == (
        "the search API at search.example.test answered HTTP 503 to GET /doc/gossip")


def test_a_body_that_is_not_json_is_reported(bench) -> None:
    b: Bench = bench()
    b.api.override = lambda method, path: (200, b"<html>maintenance</html>")
    msgs = steps(b.run({"topic": "raft"}))
    assert msgs[-1]["message"] == (
        "GET /search: search.example.test answered 200 with a body that is not JSON")


def test_a_results_list_of_the_wrong_shape_is_reported(bench) -> None:
    b: Bench = bench()
    b.api.override = lambda method, path: (200, b'{"results": {"id": "raft"}}')
    msgs = steps(b.run({"topic": "raft"}))
    assert msgs[-1]["message"] == "GET /search: search.example.test answered without a results list"


def test_hostile_document_ids_are_not_fetched(bench) -> None:
    b: Bench = bench()
    evil = {"results": [{"id": "../admin", "title": "x", "url": "u", "snippet": "s"},
                        {"id": "raft", "title": "Raft", "url": "u", "snippet": "s"},
                        {"id": 7, "title": "x", "url": "u", "snippet": "s"}]}
    body = json.dumps(evil).encode()
    b.api.override = lambda method, path: (200, body) if path == "/search" else None
    msgs = steps(b.run({"topic": "raft"}))
    assert msgs[-1]["type"] == "result"
    assert b.api.hits == [("GET", "/search"), ("GET", "/doc/raft")]


def test_a_slow_api_times_out(bench) -> None:
    b: Bench = bench()
    b.api.override = lambda method, path: (b.release.wait(), None)[1]
    msgs = steps(b.run({"topic": "raft", "timeout_secs": 1}))
    assert msgs[-1] == {"type": "error",
                        "message": "GET /search to search.example.test timed out after 1s"}


def test_a_proxy_denial_is_reported_as_such(bench) -> None:
    b: Bench = bench(hosts=[])  # a manifest without the host, and no credential granted
    msgs = steps(b.run({"topic": "raft"}))
    assert msgs[-1]["message"] == (
        "the egress proxy refused GET /search to search.example.test: blocked_by_policy "
        "(this host is not listed in the manifest)")
    assert b.egress.calls[0]["denial"] == "blocked_by_policy"
    assert b.api.hits == []


def test_an_api_on_another_host_is_refused_before_any_call(bench) -> None:
    b: Bench = bench()
    for api in ["http://evil.test", "https://search.example.test", "ftp://x", 7,
                "http://search.example.test:8080", "http://u:p@search.example.test"]:
        msgs = steps(b.run({"topic": "raft", "api": api}))
        assert msgs == [{"type": "error", "message": msgs[0]["message"]}]
        assert msgs[0]["message"].startswith("api must be")
    assert b.egress.requests == []


def test_bad_inputs_are_refused(bench) -> None:
    b: Bench = bench()
    cases = {
        "max_sources must be an integer from 1 to 10": {"topic": "raft", "max_sources": 0},
        "timeout_secs must be an integer from 1 to 120": {"topic": "raft", "timeout_secs": True},
        "topic must be a string": {"topic": ["raft"]},
        "the input must be a JSON object": ["raft"],
    }
    for message, job in cases.items():
        assert steps(b.run(job)) == [{"type": "error", "message": message}]
    assert b.egress.requests == []


def test_a_trailing_slash_in_the_api_url_is_fine(bench) -> None:
    b: Bench = bench()
    msgs = steps(b.run({"topic": "gossip", "api": "http://search.example.test/"}))
    assert msgs[-1]["type"] == "result"
    assert b.api.hits == [("GET", "/search"), ("GET", "/doc/gossip")]


def test_unreachable_api_and_proxy_are_reported(bench) -> None:
    b: Bench = bench()
    b.api.shutdown()
    b.api.server_close()  # the proxy cannot connect: it answers with a denial
    msgs = steps(b.run({"topic": "raft"}))
    assert msgs[-1]["message"] == (
        "the egress proxy refused GET /search to search.example.test: upstream_error "
        "(the upstream cannot be reached)")
    b.egress.shutdown()
    b.egress.server_close()  # no proxy at all
    msgs = steps(b.run({"topic": "raft"}))
    assert msgs[-1]["message"] == "GET /search to search.example.test failed (Connection refused)"
