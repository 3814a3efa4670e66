"""The A2A bridge (souk_agent.a2a_bridge), run as a subprocess and driven like the node drives
it (tests/fake_node.py), against a fake A2A 0.3 JSON-RPC server on 127.0.0.1. The node's clean
environment has no proxy variables, so the bridge calls the server directly; two tests put
the server in the egress proxy's place (HTTP_PROXY) to check what the proxy receives."""

import json
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import islice
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import pytest
from conftest import SRC
from fake_node import FakeNode

from souk_agent import a2a_bridge
from souk_agent.a2a_bridge import (
    MAX_RESPONSE_BYTES,
    backoff,
    clean_parts,
    parse_options,
    recorded_parts,
    request_url,
    to_parts,
)

Spawn = Callable[..., FakeNode]
BRIDGE = str(Path(a2a_bridge.__file__).resolve())
FAST = ["--poll-initial", "0.001", "--poll-max", "0.002"]
CONFIGURATION = {"acceptedOutputModes": ["application/json", "text/plain"], "blocking": True}
WAIT = 10.0


# ----- a fake A2A 0.3 server -------------------------------------------------------------


class Raw:
    """An HTTP answer sent as is (else the server wraps the answer in a JSON-RPC response)."""

    def __init__(self, status: int, body: bytes, *, length: bool = True) -> None:
        self.status, self.body, self.length = status, body, length


Respond = Callable[[str, Any], Any]


class FakeA2A(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), A2AHandler)
        self.respond: Respond = lambda method, params: {
            "error": {"code": -32601, "message": "Method not found"}
        }
        # (request path, lowercase headers, JSON-RPC request) per request, in order.
        self.requests: List[Tuple[str, Dict[str, str], Dict[str, Any]]] = []
        self.cond = threading.Condition()
        self.release = threading.Event()  # for answers that wait

    @property
    def url(self) -> str:
        return "http://127.0.0.1:%d/rpc" % self.server_address[1]

    @property
    def host(self) -> str:
        return "127.0.0.1:%d" % self.server_address[1]

    def calls(self) -> List[Tuple[str, Any]]:
        with self.cond:
            return [(r["method"], r["params"]) for _, _, r in self.requests]

    def wait_for_requests(self, count: int) -> None:
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.requests) >= count, WAIT), self.requests


class A2AHandler(BaseHTTPRequestHandler):
    server: FakeA2A
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        request = json.loads(self.rfile.read(length))
        with self.server.cond:
            headers = {k.lower(): v for k, v in self.headers.items()}
            self.server.requests.append((self.path, headers, request))
            self.server.cond.notify_all()
        answer = self.server.respond(request.get("method"), request.get("params"))
        if not isinstance(answer, Raw):
            reply = {"jsonrpc": "2.0", "id": request.get("id"), **answer}
            answer = Raw(200, json.dumps(reply).encode())
        try:
            self.send_response(answer.status)
            self.send_header("content-type", "application/json")
            if answer.length:
                self.send_header("content-length", str(len(answer.body)))
            else:  # delimited by the end of the connection
                self.send_header("connection", "close")
                self.close_connection = True
            self.end_headers()
            self.wfile.write(answer.body)
        except OSError:
            pass  # the bridge stopped reading (refused, or the process ended)


@pytest.fixture
def a2a() -> Iterator[FakeA2A]:
    server = FakeA2A()
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield server
    server.release.set()
    server.shutdown()
    server.server_close()


@pytest.fixture(autouse=True)
def no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No proxy of the test runner's environment reaches the in-process client (the agent
    subprocesses get the node's clean environment anyway)."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


def task(
    state: str,
    text: Optional[str] = None,
    *,
    task_id: str = "t-1",
    context_id: str = "c-1",
    message_id: str = "m-status",
    parts: Optional[List[Dict[str, Any]]] = None,
    artifacts: Optional[List[Dict[str, Any]]] = None,
) -> Dict[str, Any]:
    """An A2A Task; ``text`` (or ``parts``) becomes its status message."""
    status: Dict[str, Any] = {"state": state, "timestamp": "2025-01-01T00:00:00Z"}
    if text is not None or parts is not None:
        status["message"] = {
            "kind": "message",
            "role": "agent",
            "messageId": message_id,
            "parts": parts if parts is not None else [{"kind": "text", "text": text}],
        }
    value: Dict[str, Any] = {"kind": "task", "id": task_id, "contextId": context_id}
    value["status"] = status
    if artifacts is not None:
        value["artifacts"] = artifacts
    return value


def result(value: Any) -> Dict[str, Any]:
    return {"result": value}


def bridge(spawn: Spawn, a2a: FakeA2A, *options: str) -> FakeNode:
    return spawn(BRIDGE, a2a.url, *FAST, *options)


def drain(node: FakeNode) -> None:
    """Reads (and drops) what the agent wrote before it saw the cancel, up to end of stdout."""
    while node.next_line() is not None:
        pass


# ----- mapping and settings ----------------------------------------------------------------


def test_request_url_speaks_plain_http_to_the_proxy() -> None:
    assert request_url("https://agent.example/a2a") == "http://agent.example/a2a"
    assert request_url("https://agent.example:443/a2a?v=1#x") == "http://agent.example/a2a?v=1"
    assert request_url("https://agent.example:8443") == "http://agent.example:8443/"
    assert request_url("HTTPS://[::1]:443/rpc") == "http://[::1]/rpc"
    assert request_url("http://agent.example:8080/rpc") == "http://agent.example:8080/rpc"
    for bad, why in [
        ("ftp://agent.example/", "must start with https:// or http://"),
        ("agent.example/rpc", "must start with https:// or http://"),
        ("https://user:pw@agent.example/", "must not carry a user or password"),
        ("https:///rpc", "has no host"),
        ("https://agent.example:99999/", "invalid port"),
        ("https://agent.example/a b", "without spaces"),
        ("https://agent.example/\x00", "without spaces or control characters"),
        ("https://agént.example/", "must be ASCII"),
    ]:
        with pytest.raises(ValueError, match=why):
            request_url(bad)


def test_input_and_answer_mapping() -> None:
    assert to_parts("hello") == [{"kind": "text", "text": "hello"}]
    assert to_parts({"a": [1]}) == [{"kind": "data", "data": {"a": [1]}}]
    # DataPart holds an object only: other JSON goes as its JSON text.
    assert to_parts([1, "é"]) == [{"kind": "text", "text": '[1,"é"]'}]
    assert to_parts(None) == [{"kind": "text", "text": "null"}]
    assert to_parts(2.5) == [{"kind": "text", "text": "2.5"}]


def test_recorded_args_leave_out_bulk() -> None:
    long_text = "x" * 5000
    big = {"blob": "y" * 5000}
    assert recorded_parts(
        [{"kind": "text", "text": long_text}, {"kind": "data", "data": big}, to_parts({})[0]]
    ) == [
        {"kind": "text", "text": "x" * 4096, "chars": 5000},
        {"kind": "data", "bytes": len(json.dumps(big, separators=(",", ":")))},
        {"kind": "data", "data": {}},
    ]


def test_parts_from_the_agent_are_cleaned() -> None:
    assert clean_parts(
        [
            {"kind": "text", "text": "hi", "metadata": {"x": 1}},
            {"kind": "data", "data": {"k": 1}},
            {"kind": "file", "file": {"name": "a.png", "mimeType": "image/png", "bytes": "AAAA"}},
            {"kind": "file", "file": {"uri": "https://f.test/a", "extra": 1}},
            {"kind": "text", "text": 3},
            {"kind": "video"},
            "junk",
        ]
    ) == [
        {"kind": "text", "text": "hi"},
        {"kind": "data", "data": {"k": 1}},
        {"kind": "file", "file": {"name": "a.png", "mimeType": "image/png"}},
        {"kind": "file", "file": {"uri": "https://f.test/a"}},
    ]
    assert clean_parts({"kind": "text"}) == []


def test_poll_backoff_and_options() -> None:
    assert list(islice(backoff(0.2, 2.0), 7)) == [0.2, 0.4, 0.8, 1.6, 2.0, 2.0, 2.0]
    options = parse_options([])
    assert (options.poll_initial, options.poll_max, options.send_timeout) == (0.2, 2.0, 600.0)
    options = parse_options(["--timeout", "30", "--poll-initial", "0.5", "--heartbeat", "5"])
    assert (options.send_timeout, options.poll_initial, options.heartbeat) == (30.0, 0.5, 5.0)
    with pytest.raises(SystemExit):
        parse_options(["--timeout", "0"])


# ----- hires -----------------------------------------------------------------------------


def test_data_input_completes_with_data(spawn: Spawn, a2a: FakeA2A) -> None:
    artifacts = [
        {
            "artifactId": "a-1",
            "name": "answer",
            "parts": [{"kind": "data", "data": {"sum": 3}}, {"kind": "text", "text": "sum: 3"}],
        },
        {
            "artifactId": "a-2",
            "name": "report",
            "metadata": {"ignored": True},
            "parts": [
                {
                    "kind": "file",
                    "file": {
                        "name": "r.pdf",
                        "mimeType": "application/pdf",
                        "bytes": "JVBERi0xLjQ=",
                    },
                },
                {"kind": "file", "file": {"uri": "https://files.test/r.pdf"}},
                {"kind": "data", "data": {"second": True}},
                {"kind": "text", "text": "see the report"},
            ],
        },
    ]
    a2a.respond = lambda m, p: result(task("completed", "done", artifacts=artifacts))
    node = bridge(spawn, a2a)
    node.start({"numbers": [1, 2]})

    call = node.expect("tool_call")
    assert call["tool"] == "a2a-message-send"
    assert call["args"]["configuration"] == CONFIGURATION
    sent = call["args"]["message"]
    assert sent["parts"] == [{"kind": "data", "data": {"numbers": [1, 2]}}]
    assert call["result"] == {
        "kind": "task",
        "task_id": "t-1",
        "context_id": "c-1",
        "state": "completed",
        "status": "done",
        "artifacts": ["answer", "report"],
    }
    assert node.expect("checkpoint")["state"] == {"task_id": "t-1", "context_id": "c-1"}
    assert node.expect("note")["text"] == "done"
    assert node.expect("result")["output"] == {
        "a2a_task": "t-1",
        "state": "completed",
        "data": {"sum": 3},
        "text": "sum: 3\nsee the report",
        "artifacts": [
            {
                "artifactId": "a-1",
                "name": "answer",
                "parts": [{"kind": "data", "data": {"sum": 3}}, {"kind": "text", "text": "sum: 3"}],
            },
            {
                "artifactId": "a-2",
                "name": "report",
                "parts": [
                    {"kind": "file", "file": {"name": "r.pdf", "mimeType": "application/pdf"}},
                    {"kind": "file", "file": {"uri": "https://files.test/r.pdf"}},
                    {"kind": "data", "data": {"second": True}},
                    {"kind": "text", "text": "see the report"},
                ],
            },
        ],
    }
    assert node.finish() == 0

    [(path, headers, request)] = a2a.requests
    assert path == "/rpc" and headers["content-type"] == "application/json"
    assert request["jsonrpc"] == "2.0" and isinstance(request["id"], int)
    assert request["method"] == "message/send"
    assert request["params"]["configuration"] == CONFIGURATION
    message = request["params"]["message"]
    assert message == {
        "kind": "message",
        "role": "user",
        "messageId": sent["messageId"],
        "parts": [{"kind": "data", "data": {"numbers": [1, 2]}}],
    }
    assert uuid.UUID(message["messageId"]).version == 4


def test_text_input_and_a_message_answer(spawn: Spawn, a2a: FakeA2A) -> None:
    answer = {
        "kind": "message",
        "role": "agent",
        "messageId": "m-9",
        "parts": [
            {"kind": "text", "text": "hello"},
            {"kind": "data", "data": {"lang": "en"}},
            {"kind": "text", "text": "there"},
        ],
    }
    a2a.respond = lambda m, p: result(answer)
    node = bridge(spawn, a2a)
    node.start("say hello")
    call = node.expect("tool_call")
    assert call["args"]["message"]["parts"] == [{"kind": "text", "text": "say hello"}]
    assert call["result"] == {"kind": "message", "message_id": "m-9", "text": "hello\nthere"}
    # No task: no checkpoint, and the message is the answer.
    assert node.expect("result")["output"] == {
        "a2a_task": None,
        "state": "completed",
        "data": {"lang": "en"},
        "text": "hello\nthere",
        "artifacts": [],
    }
    assert node.finish() == 0
    assert a2a.calls()[0][1]["message"]["parts"] == [{"kind": "text", "text": "say hello"}]


def test_completed_task_without_artifacts_answers_with_its_status_message(
    spawn: Spawn, a2a: FakeA2A
) -> None:
    a2a.respond = lambda m, p: result(task("completed", "42"))
    node = bridge(spawn, a2a)
    node.start("the answer?")
    node.expect("tool_call")
    node.expect("checkpoint")
    node.expect("note")
    output = node.expect("result")["output"]
    assert output == {
        "a2a_task": "t-1",
        "state": "completed",
        "data": None,
        "text": "42",
        "artifacts": [],
    }
    assert node.finish() == 0


def test_input_required_asks_and_sends_the_answer_to_the_task(spawn: Spawn, a2a: FakeA2A) -> None:
    question_parts = [
        {"kind": "text", "text": "Which city?"},
        {"kind": "data", "data": {"choices": ["Paris", "Rome"]}},
    ]

    def respond(method: str, params: Any) -> Any:
        if "taskId" not in params["message"]:
            return result(task("input-required", parts=question_parts))
        done = {
            "artifactId": "a",
            "name": "forecast",
            "parts": [{"kind": "text", "text": "Sunny in Paris"}],
        }
        return result(task("completed", artifacts=[done]))

    a2a.respond = respond
    node = bridge(spawn, a2a)
    node.start({"want": "weather"})
    assert node.expect("tool_call")["result"]["state"] == "input-required"
    assert node.expect("checkpoint")["state"] == {"task_id": "t-1", "context_id": "c-1"}
    # The status message is the question (no note for it), with no answer_schema.
    question = node.expect("question")["question"]
    assert question == {"text": "Which city?", "a2a": {"parts": question_parts}}
    node.answer({"city": "Paris"})
    call = node.expect("tool_call")
    assert call["tool"] == "a2a-message-send"
    assert call["args"]["message"]["taskId"] == "t-1"
    assert call["args"]["message"]["contextId"] == "c-1"
    assert node.expect("result")["output"]["text"] == "Sunny in Paris"
    assert node.finish() == 0

    (first, p1), (second, p2) = a2a.calls()
    assert first == second == "message/send"
    assert p2["message"]["taskId"] == "t-1" and p2["message"]["contextId"] == "c-1"
    assert p2["message"]["parts"] == [{"kind": "data", "data": {"city": "Paris"}}]
    assert p2["message"]["role"] == "user"
    assert p2["message"]["messageId"] != p1["message"]["messageId"]
    assert p2["configuration"] == CONFIGURATION


def test_input_required_without_a_status_message(spawn: Spawn, a2a: FakeA2A) -> None:
    answers = iter([task("input-required"), task("completed", "thanks")])
    a2a.respond = lambda m, p: result(next(answers))
    node = bridge(spawn, a2a)
    node.start("go")
    node.expect("tool_call")
    node.expect("checkpoint")
    question = node.expect("question")["question"]
    assert question == {"text": "The agent needs input", "a2a": {"parts": []}}
    node.answer("yes")
    node.expect("tool_call")
    node.expect("note")
    assert node.expect("result")["output"]["text"] == "thanks"
    assert node.finish() == 0
    assert a2a.calls()[1][1]["message"]["parts"] == [{"kind": "text", "text": "yes"}]


def test_a_working_task_is_polled_with_tasks_get(spawn: Spawn, a2a: FakeA2A) -> None:
    answers = iter(
        [
            task("submitted"),
            task("working", "queued", message_id="m-1"),
            task("working", "queued", message_id="m-1"),  # the same status: no second note
            task("working", "halfway", message_id="m-2"),
            task(
                "completed",
                artifacts=[{"artifactId": "a", "parts": [{"kind": "data", "data": {"ok": True}}]}],
            ),
        ]
    )
    a2a.respond = lambda m, p: result(next(answers))
    node = bridge(spawn, a2a)
    node.start("slow job")
    assert node.expect("tool_call")["result"]["state"] == "submitted"
    node.expect("checkpoint")
    seen = []
    while True:
        msg = node.recv()
        if msg["type"] == "result":
            break
        seen.append(msg)
    assert [(m["type"], m.get("tool") or m.get("text")) for m in seen] == [
        ("tool_call", "a2a-tasks-get"),
        ("note", "queued"),
        ("tool_call", "a2a-tasks-get"),
        ("tool_call", "a2a-tasks-get"),
        ("note", "halfway"),
        ("tool_call", "a2a-tasks-get"),
    ]
    assert all(m["args"] == {"id": "t-1"} for m in seen if m["type"] == "tool_call")
    assert msg["output"]["data"] == {"ok": True}
    assert msg["output"]["artifacts"] == [
        {"artifactId": "a", "name": None, "parts": [{"kind": "data", "data": {"ok": True}}]}
    ]
    assert node.finish() == 0
    assert [m for m, _ in a2a.calls()] == ["message/send"] + ["tasks/get"] * 4
    assert all(p == {"id": "t-1"} for m, p in a2a.calls()[1:])


@pytest.mark.parametrize("state", ["failed", "rejected", "canceled"])
def test_a_task_that_ends_badly_is_an_error(spawn: Spawn, a2a: FakeA2A, state: str) -> None:
    a2a.respond = lambda m, p: result(task(state, "out of credits"))
    node = bridge(spawn, a2a)
    node.start("x")
    assert node.expect("tool_call")["result"]["state"] == state
    node.expect("checkpoint")
    assert node.expect("note")["text"] == "out of credits"
    message = node.expect("error")["message"]
    assert message == "the A2A task ended in state %s: out of credits" % state
    assert node.finish() == 0
    assert [m for m, _ in a2a.calls()] == ["message/send"]  # ended: nothing to cancel


def test_auth_required_cancels_the_task_and_fails(spawn: Spawn, a2a: FakeA2A) -> None:
    def respond(method: str, params: Any) -> Any:
        if method == "tasks/cancel":
            return result(task("canceled"))
        return result(task("auth-required", "sign in at https://auth.test"))

    a2a.respond = respond
    node = bridge(spawn, a2a)
    node.start("x")
    node.expect("tool_call")
    node.expect("checkpoint")
    node.expect("note")
    cancel = node.expect("tool_call")
    assert cancel["tool"] == "a2a-tasks-cancel"
    assert cancel["args"] == {"id": "t-1"} and cancel["result"]["state"] == "canceled"
    assert node.expect("error")["message"] == (
        "the A2A agent asks for authentication (auth-required), which the bridge does not support"
    )
    assert node.finish() == 0
    assert a2a.calls()[1] == ("tasks/cancel", {"id": "t-1"})


def test_a_json_rpc_error_is_an_error(spawn: Spawn, a2a: FakeA2A) -> None:
    a2a.respond = lambda m, p: {"error": {"code": -32602, "message": "Invalid params: parts"}}
    node = bridge(spawn, a2a)
    node.start({"x": 1})
    expected = (
        "the A2A agent answered message/send with JSON-RPC error -32602: Invalid params: parts"
    )
    call = node.expect("tool_call")
    assert call["result"] == {"error": {"type": "A2AError", "message": expected}}
    assert node.expect("error")["message"] == expected
    assert node.finish() == 0


@pytest.mark.parametrize(
    "answer, expected",
    [
        (Raw(500, b"oops"), "the A2A agent at {host} answered HTTP 500 to message/send"),
        (
            Raw(401, b'{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"no token"}}'),
            "the A2A agent at {host} answered HTTP 401 to message/send (JSON-RPC error -32600: "
            "no token) (it may need a credential, which the egress proxy injects)",
        ),
        (
            Raw(200, b"<html>hi</html>"),
            "the A2A agent at {host} answered message/send with a body that is not JSON",
        ),
        (
            Raw(200, b'{"jsonrpc":"2.0","id":1,"result":NaN}'),
            "the A2A agent at {host} answered message/send with a body that is not JSON",
        ),
        (
            Raw(200, b'{"id":1,"result":{}}'),
            "the A2A agent at {host} answered message/send with "
            "something else than a JSON-RPC 2.0 response",
        ),
        (
            Raw(200, b'{"jsonrpc":"2.0","id":77,"result":{}}'),
            "the A2A agent at {host} answered message/send without the result of that request",
        ),
        (
            {"result": {"kind": "artifact"}},
            "the A2A agent answered message/send with a result "
            "that is neither a task nor a message",
        ),
        (
            {"result": task("working", task_id="")},
            "the A2A agent answered with a task without a usable id",
        ),
    ],
)
def test_bad_answers_are_errors(spawn: Spawn, a2a: FakeA2A, answer: Any, expected: str) -> None:
    a2a.respond = lambda m, p: answer
    node = bridge(spawn, a2a)
    node.start("x")
    expected = expected.format(host=a2a.host)
    assert node.expect("tool_call")["result"] == {
        "error": {"type": "A2AError", "message": expected}
    }
    assert node.expect("error")["message"] == expected
    assert node.finish() == 0


@pytest.mark.parametrize("length", [True, False], ids=["content-length", "until-close"])
def test_an_oversized_answer_is_refused(spawn: Spawn, a2a: FakeA2A, length: bool) -> None:
    padding = b" " * MAX_RESPONSE_BYTES
    body = b'{"jsonrpc":"2.0","id":1,"result":' + json.dumps(task("completed")).encode()
    a2a.respond = lambda m, p: Raw(200, body + padding + b"}", length=length)
    node = bridge(spawn, a2a)
    node.start("x")
    node.expect("tool_call")
    assert node.expect("error")["message"] == (
        "the A2A agent at %s answered message/send with more than 8388608 bytes" % a2a.host
    )
    assert node.finish() == 0


def test_unreachable_agent_is_an_error(spawn: Spawn, a2a: FakeA2A) -> None:
    url = a2a.url
    a2a.shutdown()
    a2a.server_close()  # nothing listens on the port any more
    node = spawn(BRIDGE, url)
    node.start("x")
    node.expect("tool_call")
    message = node.expect("error")["message"]
    assert message.startswith("message/send to the A2A agent at %s failed (" % a2a.host), message
    assert node.finish() == 0


def test_a_silent_agent_times_out(spawn: Spawn, a2a: FakeA2A) -> None:
    def respond(method: str, params: Any) -> Any:
        a2a.release.wait(WAIT)
        return result(task("completed"))

    a2a.respond = respond
    node = bridge(spawn, a2a, "--timeout", "0.2")
    node.start("x")
    node.expect("tool_call")
    assert node.expect("error")["message"] == (
        "message/send to the A2A agent at %s timed out after 0.2s" % a2a.host
    )
    assert node.finish() == 0


# ----- resume and cancel -------------------------------------------------------------------


def test_resume_polls_the_task_without_resending(spawn: Spawn, a2a: FakeA2A) -> None:
    answers = iter(
        [
            task("working", task_id="t-7", context_id="c-7"),
            task("completed", "done", task_id="t-7", context_id="c-7"),
        ]
    )
    a2a.respond = lambda m, p: result(next(answers))
    node = bridge(spawn, a2a)
    node.start({"numbers": [1]}, checkpoint={"task_id": "t-7", "context_id": "c-7"})
    assert node.expect("note")["text"] == (
        "resumed: following A2A task t-7 with tasks/get (the input is not sent again)"
    )
    first = node.expect("tool_call")
    assert (first["tool"], first["args"]) == ("a2a-tasks-get", {"id": "t-7"})
    second = node.expect("tool_call")  # the same task: no new checkpoint
    assert (second["tool"], second["result"]["state"]) == ("a2a-tasks-get", "completed")
    node.expect("note")
    assert node.expect("result")["output"]["a2a_task"] == "t-7"
    assert node.finish() == 0
    assert a2a.calls() == [("tasks/get", {"id": "t-7"})] * 2


def test_resume_from_a_foreign_checkpoint_fails(spawn: Spawn, a2a: FakeA2A) -> None:
    node = bridge(spawn, a2a)
    node.start("x", checkpoint={"done": 3})
    assert node.expect("error")["message"] == (
        "cannot resume: the checkpoint is not one the A2A bridge wrote"
    )
    assert node.finish() == 0
    assert a2a.calls() == []


def test_resume_of_a_task_the_agent_forgot(spawn: Spawn, a2a: FakeA2A) -> None:
    a2a.respond = lambda m, p: {"error": {"code": -32001, "message": "Task not found"}}
    node = bridge(spawn, a2a)
    node.start("x", checkpoint={"task_id": "t-gone", "context_id": None})
    node.expect("note")
    node.expect("tool_call")
    assert node.expect("error")["message"] == (
        "the A2A agent answered tasks/get with JSON-RPC error -32001: Task not found"
    )
    assert node.finish() == 0
    assert [m for m, _ in a2a.calls()] == ["tasks/get"]  # no tasks/cancel for a lost task


def cancel_answers(method: str, params: Any, working: Dict[str, Any]) -> Any:
    return result(task("canceled") if method == "tasks/cancel" else working)


def test_cancel_while_polling_cancels_the_task(spawn: Spawn, a2a: FakeA2A) -> None:
    a2a.respond = lambda m, p: cancel_answers(m, p, task("working"))
    node = spawn(BRIDGE, a2a.url, "--poll-initial", "60")  # waits before its first tasks/get
    node.start("x")
    node.expect("tool_call")
    node.expect("checkpoint")
    node.cancel("client canceled")
    node.expect_eof()
    assert node.wait() == 0
    assert a2a.calls()[-1] == ("tasks/cancel", {"id": "t-1"})
    assert "sent tasks/cancel" in node.stderr()
    assert "did not stop" not in node.stderr()


def test_cancel_while_asking_cancels_the_task(spawn: Spawn, a2a: FakeA2A) -> None:
    a2a.respond = lambda m, p: cancel_answers(m, p, task("input-required", "Which city?"))
    node = bridge(spawn, a2a)
    node.start("x")
    node.expect("tool_call")
    node.expect("checkpoint")
    node.expect("question")
    node.cancel()
    node.expect_eof()
    assert node.wait() == 0
    assert [m for m, _ in a2a.calls()] == ["message/send", "tasks/cancel"]
    assert a2a.calls()[1][1] == {"id": "t-1"}


def test_cancel_during_a_blocking_send_wakes_the_bridge(spawn: Spawn, a2a: FakeA2A) -> None:
    def respond(method: str, params: Any) -> Any:
        if method == "tasks/cancel":
            a2a.release.set()
            return result(task("canceled"))
        if "taskId" in params["message"]:
            a2a.release.wait(WAIT)  # blocks until the task is canceled
            return result(task("canceled"))
        return result(task("input-required", "More?"))

    a2a.respond = respond
    node = bridge(spawn, a2a)
    node.start("x")
    node.expect("tool_call")
    node.expect("checkpoint")
    node.expect("question")
    node.answer("more")
    a2a.wait_for_requests(2)  # the answer is on its way; the call blocks
    node.cancel()
    drain(node)
    assert node.wait() == 0
    assert [m for m, _ in a2a.calls()] == ["message/send", "message/send", "tasks/cancel"]
    # The wait woke at once and the run unwound: the SDK did not have to end the process.
    assert "did not stop" not in node.stderr()


def test_cancel_before_the_agent_named_a_task(spawn: Spawn, a2a: FakeA2A) -> None:
    def respond(method: str, params: Any) -> Any:
        a2a.release.wait(WAIT)
        return result(task("completed"))

    a2a.respond = respond
    node = bridge(spawn, a2a)
    node.start("x")
    a2a.wait_for_requests(1)
    node.cancel()
    node.expect_eof()
    assert node.wait() == 0
    assert "no A2A task is running, nothing to cancel" in node.stderr()
    assert [m for m, _ in a2a.calls()] == ["message/send"]


def test_a_long_call_writes_heartbeat_notes(spawn: Spawn, a2a: FakeA2A) -> None:
    def respond(method: str, params: Any) -> Any:
        a2a.release.wait(WAIT)
        return result(task("completed", "finally"))

    a2a.respond = respond
    node = bridge(spawn, a2a, "--heartbeat", "0.05")
    node.start("x")
    note = node.expect("note")["text"]
    assert note.startswith("waiting for the A2A agent to answer message/send ("), note
    a2a.release.set()
    msg = node.recv()
    while msg["type"] == "note" and msg["text"].startswith("waiting for the A2A agent"):
        msg = node.recv()
    assert msg["type"] == "tool_call" and msg["result"]["status"] == "finally"
    node.expect("checkpoint")
    node.expect("note")
    node.expect("result")
    assert node.finish() == 0


# ----- through the egress proxy, and how it is started -----------------------------------


def proxied(tmp_path: Path, a2a: FakeA2A, url: str) -> FakeNode:
    """The bridge with HTTP_PROXY set, as the node starts it; the fake server plays the
    proxy."""
    work = tmp_path / "hire"
    work.mkdir()
    return FakeNode(
        [sys.executable, BRIDGE, url],
        workdir=work,
        pythonpath=str(SRC),
        env={"HTTP_PROXY": "http://127.0.0.1:%d" % a2a.server_address[1]},
    )


def test_https_url_goes_as_plain_http_through_the_proxy(tmp_path: Path, a2a: FakeA2A) -> None:
    a2a.respond = lambda m, p: result(task("completed", "ok"))
    node = proxied(tmp_path, a2a, "https://a2a.example.test/v1/rpc")
    try:
        node.start("x")
        assert node.run_to_end()["type"] == "result"
        assert node.finish() == 0
    finally:
        node.kill()
    [(path, headers, request)] = a2a.requests
    assert path == "http://a2a.example.test/v1/rpc"  # absolute form: the proxy adds TLS
    assert headers["host"] == "a2a.example.test"
    assert "authorization" not in headers
    assert request["method"] == "message/send"


def test_a_denial_of_the_egress_proxy_is_named(tmp_path: Path, a2a: FakeA2A) -> None:
    denial = {
        "error": "blocked_by_policy",
        "host": "a2a.example.test",
        "message": "a2a.example.test is not listed in the agent's manifest",
        "retry": False,
    }
    a2a.respond = lambda m, p: Raw(403, json.dumps(denial).encode())
    node = proxied(tmp_path, a2a, "https://a2a.example.test:443/rpc")
    try:
        node.start("x")
        node.expect("tool_call")
        assert node.expect("error")["message"] == (
            "the egress proxy refused message/send to a2a.example.test: blocked_by_policy "
            "(a2a.example.test is not listed in the agent's manifest)"
        )
        assert node.finish() == 0
    finally:
        node.kill()


def test_runs_as_a_module(tmp_path: Path, a2a: FakeA2A) -> None:
    a2a.respond = lambda m, p: result(task("completed", "ok"))
    work = tmp_path / "hire"
    work.mkdir()
    node = FakeNode(
        [sys.executable, "-m", "souk_agent.a2a_bridge", a2a.url, *FAST],
        workdir=work,
        pythonpath=str(SRC),
    )
    try:
        node.start("x")
        assert node.run_to_end()["output"]["text"] == "ok"
        assert node.finish() == 0
    finally:
        node.kill()


def test_a_bad_url_fails_each_hire(spawn: Spawn) -> None:
    node = spawn(BRIDGE, "ftp://agent.example/")
    node.start("x")
    assert node.expect("error")["message"] == (
        "the bridge is misconfigured: the A2A URL must start with https:// or http://"
    )
    assert node.finish() == 0
