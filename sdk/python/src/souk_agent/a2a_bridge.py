"""A Souk agent that offers an existing A2A agent (Agent2Agent protocol 0.3.0, JSON-RPC 2.0
over HTTP) on Souk: the provider's node runs it as the hired agent, it is the A2A client of
the real agent, and it records every exchange as Souk steps, so they become signed receipts.

Owns the A2A client side (JSON-RPC calls through the node's egress proxy, bounded reads,
timeouts, checks of the hostile answers) and the mapping between a hire and an A2A task.

Run it with the agent's JSON-RPC URL as its card gives it::

    python3 -m souk_agent.a2a_bridge https://agent.example/a2a [--timeout 600] ...
    python3 path/to/souk_agent/a2a_bridge.py https://agent.example/a2a   # also works

**Network.** The sandbox reaches the network only through the egress proxy (``HTTP_PROXY``,
which urllib reads). The bridge POSTs to the same URL with the scheme ``http://``: the proxy
opens TLS to the host itself (and injects a credential if the client granted one). An
``http://`` URL is used as is, but the proxy still speaks TLS upstream, so an A2A agent that
serves plain HTTP cannot be reached. No port means 443, as for the proxy.

**Only** ``message/send`` (with ``blocking: true``), ``tasks/get`` and ``tasks/cancel``.
Streaming (``message/stream``, server-sent events) is not used: through the proxy it would
be one long call recorded at its end anyway, and a blocking ``message/send`` plus
``tasks/get`` polling gives the same steps. While one call waits, the bridge writes a
``note`` every ``--heartbeat`` seconds (the node fails a silent run after 2 minutes).

Mapping (Souk on the left, A2A on the right):

=============================================  ==============================================
hire input: a string                           ``message/send``, parts ``[{"kind":"text"}]``
hire input: an object                          ``... [{"kind":"data","data":input}]``
hire input: other JSON (array, number, ...)    ``... [{"kind":"text","text":<its JSON>}]``
                                               (A2A 0.3's DataPart holds an object only)
each JSON-RPC call                             ``tool_call`` ``a2a-message-send``,
                                               ``a2a-tasks-get``, ``a2a-tasks-cancel``: args
                                               the params (text cut to 4 KiB, large data
                                               parts replaced by their size), result a
                                               summary (task id, state, status text cut to
                                               500 characters, artifact names)
a task id is known (or changes)                ``checkpoint {"task_id", "context_id"}``
resumed from that checkpoint                   ``tasks/get`` for that task; nothing resent
task ``submitted`` / ``working``               ``tasks/get`` after 0.2 s, doubling to 2 s
a new task status message                      ``note`` with its text (not for
                                               ``input-required``: the question carries it)
``input-required``                             ``question {"text", "a2a": {"parts"}}``; the
                                               answer goes as a new message with the task's
                                               ``taskId`` and ``contextId`` (mapped like the
                                               input)
``completed`` (or a Message as the answer)     ``result {"a2a_task", "state": "completed",
                                               "data", "text", "artifacts"}``
``failed`` / ``rejected`` / ``canceled``       ``error`` naming the state and the status text
``auth-required``, an unknown state            ``tasks/cancel`` (recorded), then ``error``
JSON-RPC error, HTTP error, proxy denial,      ``error`` naming the code and message, the
oversized (> 8 MiB) or malformed answer        status, the denial, the limit
``cancel`` from the node                       ``tasks/cancel`` for the current task (best
                                               effort, 1 s; not recorded: nothing written
                                               after ``cancel`` is read), then exit
=============================================  ==============================================

The output: ``data`` is the first data part of the artifacts (of a Message answer: of its
parts), ``text`` all their text parts joined with ``"\\n"``; a completed task without
artifacts is read from its status message. ``artifacts`` lists ``{"artifactId", "name",
"parts"}``; file parts keep only ``name``, ``mimeType`` and ``uri`` (bytes are dropped). The
task's ``history`` is not read.

A cancel during the very first ``message/send``, before the agent named its task, cannot be
passed on (A2A cancels by task id). Error messages are public (receipt): they name the
agent's host, the method, codes and the agent's own status or error text (cut), never the
input.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from http.client import HTTPException
from typing import Any, Callable, Dict, Iterator, List, NoReturn, Optional, Sequence, Tuple
from urllib.parse import urlsplit, urlunsplit

if __name__ == "__main__" and not __package__:
    # Run as a file: import the package from its parent directory, not this one.
    _HERE = os.path.dirname(os.path.realpath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.realpath(p or ".") != _HERE]
    sys.path.insert(0, os.path.dirname(_HERE))

# Absolute imports, so that the file also runs as a script.
from souk_agent.channel import log  # noqa: E402
from souk_agent.context import Context  # noqa: E402
from souk_agent.errors import AgentError, Cancelled, SoukError  # noqa: E402
from souk_agent.runner import Agent  # noqa: E402

__all__ = [
    "A2AClient",
    "A2AError",
    "Bridge",
    "Options",
    "backoff",
    "bridge_agent",
    "clean_parts",
    "main",
    "request_url",
    "to_parts",
]

_Json = Any

#: The A2A protocol version spoken.
A2A_VERSION = "0.3.0"
#: Largest JSON-RPC response read (larger ones are refused).
MAX_RESPONSE_BYTES = 8 * 1024 * 1024
#: Characters of a text part recorded in a tool_call's args.
RECORD_TEXT_CHARS = 4096
#: Bytes of a data part's JSON recorded in a tool_call's args (larger: only the size).
RECORD_DATA_BYTES = 4096
#: Characters of the status text in a tool_call's result.
STATUS_TEXT_CHARS = 500
#: Characters of a status message written as a note.
NOTE_CHARS = 8192
#: Characters of the agent's own text quoted in a (public) error message.
ERROR_TEXT_CHARS = 300
#: Longest task or context id accepted from the agent.
MAX_ID_CHARS = 1024
ACCEPTED_OUTPUT_MODES = ["application/json", "text/plain"]
ACTIVE_STATES = ("submitted", "working")
ENDED_STATES = ("completed", "failed", "rejected", "canceled")
#: JSON-RPC error code of A2A's TaskNotFoundError.
TASK_NOT_FOUND = -32001
USER_AGENT = "souk-a2a-bridge/0.1 (A2A %s)" % A2A_VERSION


@dataclass(frozen=True)
class Options:
    """The bridge's settings (command-line options of :func:`main`)."""

    #: Seconds a ``message/send`` may stay silent (it blocks while the agent works).
    send_timeout: float = 600.0
    #: Seconds for ``tasks/get`` (and a recorded ``tasks/cancel``).
    get_timeout: float = 60.0
    #: Seconds for the ``tasks/cancel`` sent when the node cancels (within the kill grace).
    cancel_timeout: float = 1.0
    #: First delay between two ``tasks/get`` of a working task; doubles up to ``poll_max``.
    poll_initial: float = 0.2
    poll_max: float = 2.0
    #: Seconds between the notes written while a call waits.
    heartbeat: float = 60.0


class A2AError(AgentError):
    """The A2A agent, or the way to it, failed; the message is public. ``code`` is the
    JSON-RPC error code when the agent answered with one, else ``None``."""

    def __init__(self, message: str, *, code: Optional[int] = None) -> None:
        super().__init__(message)
        self.code = code


# ----- pure helpers ------------------------------------------------------------------


def request_url(url: str) -> str:
    """The URL the bridge POSTs to for the card's ``url``: ``https://`` becomes ``http://``
    (the egress proxy opens TLS), port 443 is left out. Raises :class:`ValueError` with a
    public reason for anything else than an ``https://`` or ``http://`` URL with a host and
    no user or password."""
    if not isinstance(url, str):
        raise ValueError("the A2A URL must be a string")
    url = url.strip()
    if not url.isascii() or any(c.isspace() or not c.isprintable() for c in url):
        raise ValueError(
            "the A2A URL must be ASCII without spaces or control characters (percent-encode it)"
        )
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http"):
        raise ValueError("the A2A URL must start with https:// or http://")
    if "@" in parts.netloc:
        raise ValueError(
            "the A2A URL must not carry a user or password (the egress proxy injects credentials)"
        )
    if not parts.hostname:
        raise ValueError("the A2A URL has no host")
    try:
        port = parts.port
    except ValueError:
        raise ValueError("the A2A URL has an invalid port") from None
    netloc = parts.netloc
    if port == 443:
        netloc = netloc.rsplit(":", 1)[0]
    return urlunsplit(("http", netloc, parts.path or "/", parts.query, ""))


def host_label(url: str) -> str:
    """``host[:port]`` of a URL that :func:`request_url` accepts (port 443 left out), for
    messages."""
    parts = urlsplit(request_url(url))
    host = parts.hostname or ""
    if ":" in host:
        host = "[%s]" % host
    port = parts.port
    return host + (":%d" % port if port not in (None, 443) else "")


def to_parts(value: _Json) -> List[Dict[str, Any]]:
    """The message parts for a hire input or an answer: a string is a text part, an object
    a data part, other JSON its JSON text in a text part (A2A 0.3's DataPart holds an
    object only)."""
    if isinstance(value, str):
        return [{"kind": "text", "text": value}]
    if isinstance(value, dict):
        return [{"kind": "data", "data": value}]
    return [{"kind": "text", "text": json.dumps(value, ensure_ascii=False, separators=(",", ":"))}]


def user_message(
    parts: List[Dict[str, Any]], task_id: Optional[str] = None, context_id: Optional[str] = None
) -> Dict[str, Any]:
    """A new user message (fresh ``messageId``), continuing a task when ``task_id`` is set."""
    message: Dict[str, Any] = {
        "kind": "message",
        "role": "user",
        "messageId": str(uuid.uuid4()),
        "parts": parts,
    }
    if task_id is not None:
        message["taskId"] = task_id
    if context_id is not None:
        message["contextId"] = context_id
    return message


def backoff(initial: float, maximum: float) -> Iterator[float]:
    """The delays between two polls: ``initial``, doubling, at most ``maximum``."""
    delay = initial
    while True:
        yield min(delay, maximum)
        delay = min(delay * 2, maximum)


def clean_part(part: _Json) -> Optional[Dict[str, Any]]:
    """A part from the agent as the bridge passes it on (``None`` if it is not a valid text,
    data or file part): file parts keep ``name``, ``mimeType`` and ``uri`` only."""
    if not isinstance(part, dict):
        return None
    kind = part.get("kind")
    if kind == "text" and isinstance(part.get("text"), str):
        return {"kind": "text", "text": part["text"]}
    if kind == "data" and "data" in part:
        return {"kind": "data", "data": part["data"]}
    if kind == "file" and isinstance(part.get("file"), dict):
        file = part["file"]
        kept = {k: file[k] for k in ("name", "mimeType", "uri") if isinstance(file.get(k), str)}
        return {"kind": "file", "file": kept}
    return None


def clean_parts(parts: _Json) -> List[Dict[str, Any]]:
    """The valid parts of a list from the agent (see :func:`clean_part`)."""
    if not isinstance(parts, list):
        return []
    return [p for p in (clean_part(x) for x in parts) if p is not None]


def parts_text(parts: List[Dict[str, Any]]) -> str:
    return "\n".join(p["text"] for p in parts if p["kind"] == "text")


def _status(task: Dict[str, Any]) -> Dict[str, Any]:
    status = task.get("status")
    return status if isinstance(status, dict) else {}


def status_message(task: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    message = _status(task).get("message")
    return message if isinstance(message, dict) else None


def status_text(task: Dict[str, Any]) -> str:
    message = status_message(task)
    return parts_text(clean_parts(message.get("parts"))) if message else ""


def _cut(text: str, chars: int) -> str:
    return text if len(text) <= chars else text[: chars - 1] + "…"


def recorded_parts(parts: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Parts as recorded in a tool_call's args: long texts cut (with their length), large
    data replaced by its size."""
    out: List[Dict[str, Any]] = []
    for part in parts:
        if part.get("kind") == "text" and len(part["text"]) > RECORD_TEXT_CHARS:
            out.append(
                {
                    "kind": "text",
                    "text": part["text"][:RECORD_TEXT_CHARS],
                    "chars": len(part["text"]),
                }
            )
        elif part.get("kind") == "data":
            size = len(json.dumps(part["data"], ensure_ascii=False, separators=(",", ":")).encode())
            out.append(part if size <= RECORD_DATA_BYTES else {"kind": "data", "bytes": size})
        else:
            out.append(part)
    return out


def _task_ids(task: Dict[str, Any]) -> Tuple[str, Optional[str]]:
    task_id = task.get("id")
    context_id = task.get("contextId")
    if not isinstance(task_id, str) or not 1 <= len(task_id) <= MAX_ID_CHARS:
        raise A2AError("the A2A agent answered with a task without a usable id")
    if context_id is not None and (
        not isinstance(context_id, str) or len(context_id) > MAX_ID_CHARS
    ):
        raise A2AError("the A2A agent answered with a task whose contextId is not usable")
    return task_id, context_id


def classify(method: str, result: _Json) -> Tuple[str, Dict[str, Any]]:
    """``("task", task)`` or ``("message", message)`` for a call's result; raises
    :class:`A2AError` for anything else."""
    if isinstance(result, dict):
        kind = result.get("kind")
        if kind == "message":
            return "message", result
        if kind in ("task", None) and isinstance(_status(result).get("state"), str):
            _task_ids(result)
            return "task", result
    raise A2AError(
        "the A2A agent answered %s with a result that is neither a task nor a message" % method
    )


def summary(kind: str, value: Dict[str, Any]) -> Dict[str, Any]:
    """The tool_call result recorded for a call's result."""
    if kind == "message":
        message_id = value.get("messageId")
        return {
            "kind": "message",
            "message_id": message_id if isinstance(message_id, str) else None,
            "text": _cut(parts_text(clean_parts(value.get("parts"))), STATUS_TEXT_CHARS),
        }
    task_id, context_id = _task_ids(value)
    names: List[Optional[str]] = []
    artifacts = value.get("artifacts")
    for artifact in artifacts[:100] if isinstance(artifacts, list) else []:
        if isinstance(artifact, dict):
            name = artifact.get("name", artifact.get("artifactId"))
            names.append(_cut(name, 200) if isinstance(name, str) else None)
    return {
        "kind": "task",
        "task_id": task_id,
        "context_id": context_id,
        "state": _cut(str(_status(value).get("state")), 64),
        "status": _cut(status_text(value), STATUS_TEXT_CHARS),
        "artifacts": names,
    }


def answer_output(
    task_id: Optional[str], parts: List[Dict[str, Any]], artifacts: List[Dict[str, Any]]
) -> Dict[str, Any]:
    """The hire's output for a completed task or a Message answer."""
    data = next((p["data"] for p in parts if p["kind"] == "data"), None)
    return {
        "a2a_task": task_id,
        "state": "completed",
        "data": data,
        "text": parts_text(parts),
        "artifacts": artifacts,
    }


def task_output(task: Dict[str, Any]) -> Dict[str, Any]:
    """The output for a completed task: its artifacts (without any, its status message)."""
    artifacts: List[Dict[str, Any]] = []
    parts: List[Dict[str, Any]] = []
    listed = task.get("artifacts")
    for artifact in listed if isinstance(listed, list) else []:
        if not isinstance(artifact, dict):
            continue
        kept = clean_parts(artifact.get("parts"))
        artifact_id, name = artifact.get("artifactId"), artifact.get("name")
        artifacts.append(
            {
                "artifactId": artifact_id if isinstance(artifact_id, str) else None,
                "name": name if isinstance(name, str) else None,
                "parts": kept,
            }
        )
        parts += kept
    if not artifacts:
        message = status_message(task)
        parts = clean_parts(message.get("parts")) if message else []
    return answer_output(_task_ids(task)[0], parts, artifacts)


def message_output(message: Dict[str, Any]) -> Dict[str, Any]:
    """The output for a Message answer (no task)."""
    return answer_output(None, clean_parts(message.get("parts")), [])


# ----- the JSON-RPC client -----------------------------------------------------------


def _reject_constant(name: str) -> NoReturn:
    raise ValueError("%s is not JSON" % name)


def _read_bounded(response: Any, limit: int) -> Optional[bytes]:
    """The body, or ``None`` if it is longer than ``limit`` bytes (stops reading there)."""
    length = response.headers.get("content-length")
    if length is not None and length.strip().isdigit() and int(length) > limit:
        return None
    chunks: List[bytes] = []
    total = 0
    while total <= limit:
        chunk = response.read(min(65536, limit + 1 - total))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    return None if total > limit else b"".join(chunks)


class A2AClient:
    """JSON-RPC 2.0 calls to one A2A agent through the proxies of the environment.

    Every failure is an :class:`A2AError` with a public message naming the agent's host
    and the method. Thread-safe.
    """

    def __init__(
        self,
        url: str,
        *,
        opener: Optional[urllib.request.OpenerDirector] = None,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
    ) -> None:
        #: Where the calls go (``http://``, see :func:`request_url`).
        self.url = request_url(url)
        #: ``host[:port]``, for messages.
        self.host = host_label(url)
        self.max_response_bytes = max_response_bytes
        self._opener = opener or urllib.request.build_opener(urllib.request.ProxyHandler())
        self._lock = threading.Lock()
        self._next_id = 0

    def call(self, method: str, params: Dict[str, Any], timeout: float) -> _Json:
        """POSTs the call; returns its ``result``."""
        with self._lock:
            self._next_id += 1
            rpc_id = self._next_id
        body = json.dumps(
            {"jsonrpc": "2.0", "id": rpc_id, "method": method, "params": params},
            ensure_ascii=False,
            separators=(",", ":"),
        ).encode("utf-8")
        request = urllib.request.Request(
            self.url,
            data=body,
            method="POST",
            headers={
                "content-type": "application/json",
                "accept": "application/json",
                "user-agent": USER_AGENT,
            },
        )
        try:
            with self._opener.open(request, timeout=timeout) as response:
                raw = _read_bounded(response, self.max_response_bytes)
        except urllib.error.HTTPError as e:
            raise A2AError(self._http_error(method, e)) from None
        except (urllib.error.URLError, HTTPException, OSError, ValueError) as e:  # no answer
            reason = getattr(e, "reason", e)
            if isinstance(reason, (TimeoutError, socket.timeout)):
                why = "timed out after %gs" % timeout
            else:
                why = "failed (%s)" % (getattr(reason, "strerror", None) or type(reason).__name__)
            raise A2AError("%s to the A2A agent at %s %s" % (method, self.host, why)) from None
        if raw is None:
            raise A2AError(
                "the A2A agent at %s answered %s with more than %d bytes"
                % (self.host, method, self.max_response_bytes)
            )
        return self._result(method, rpc_id, raw)

    def _result(self, method: str, rpc_id: int, raw: bytes) -> _Json:
        try:
            reply = json.loads(raw, parse_constant=_reject_constant)
        except (ValueError, RecursionError):
            raise A2AError(
                "the A2A agent at %s answered %s with a body that is not JSON" % (self.host, method)
            ) from None
        if not isinstance(reply, dict) or reply.get("jsonrpc") != "2.0":
            raise A2AError(
                "the A2A agent at %s answered %s with something else than a JSON-RPC 2.0 response"
                % (self.host, method)
            )
        error = reply.get("error")
        if error is not None:
            raise self._rpc_error(method, error)
        if reply.get("id") != rpc_id or "result" not in reply:
            raise A2AError(
                "the A2A agent at %s answered %s without the result of that request"
                % (self.host, method)
            )
        return reply["result"]

    @staticmethod
    def _rpc_error_text(error: _Json) -> Tuple[Optional[int], str]:
        """The code of a JSON-RPC error object and ``JSON-RPC error CODE: message``."""
        code = error.get("code") if isinstance(error, dict) else None
        message = error.get("message") if isinstance(error, dict) else None
        code = code if type(code) is int else None
        text = _cut(message, ERROR_TEXT_CHARS) if isinstance(message, str) else "(no message)"
        return code, "JSON-RPC error %s: %s" % (code if code is not None else "(no code)", text)

    def _rpc_error(self, method: str, error: _Json) -> A2AError:
        code, text = self._rpc_error_text(error)
        return A2AError("the A2A agent answered %s with %s" % (method, text), code=code)

    def _http_error(self, method: str, e: urllib.error.HTTPError) -> str:
        """A public message for an HTTP error status, from the agent or the egress proxy."""
        try:
            body = json.loads(e.read(65536), parse_constant=_reject_constant)
        except (ValueError, RecursionError, OSError, HTTPException):
            body = None
        if isinstance(body, dict) and set(body) == {"error", "host", "message", "retry"}:
            return "the egress proxy refused %s to %s: %s (%s)" % (
                method,
                self.host,
                _cut(str(body["error"]), 64),
                _cut(str(body["message"]), 200),
            )
        text = "the A2A agent at %s answered HTTP %d to %s" % (self.host, e.code, method)
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            text += " (%s)" % self._rpc_error_text(body["error"])[1]
        if e.code in (401, 403):
            text += " (it may need a credential, which the egress proxy injects)"
        return text


# ----- the bridge --------------------------------------------------------------------


class Bridge:
    """One hire bridged to one A2A task (see the module's mapping table)."""

    def __init__(self, ctx: Context, client: A2AClient, options: Optional[Options] = None) -> None:
        self.ctx = ctx
        self.client = client
        self.options = options or Options()
        self._cond = threading.Condition(threading.Lock())
        self._task_id: Optional[str] = None
        self._context_id: Optional[str] = None
        self._live = False  # the task may still run: cancel it when we give up
        self._noted: Optional[Tuple[Any, str]] = None
        self._watcher = threading.Thread(
            target=self._pass_on_cancel, name="souk-a2a-cancel", daemon=True
        )

    # ----- the run ---------------------------------------------------------------------

    def run(self, input: _Json) -> Dict[str, Any]:
        """Runs the hire; returns the output or raises (``AgentError``, ``Cancelled``)."""
        self._watcher.start()
        try:
            return self._run(input)
        except Cancelled:
            # The watcher is sending tasks/cancel; let it finish before the process ends.
            self._watcher.join(self.options.cancel_timeout + 0.3)
            raise
        except Exception as e:
            if isinstance(e, A2AError) and e.code == TASK_NOT_FOUND:
                self._set_live(False)
            if self._is_live():
                self._abandon()
            raise

    def _run(self, input: _Json) -> Dict[str, Any]:
        if self.ctx.resumed:
            task_id, context_id = self._resume_state(self.ctx.resumed_state)
            self._set_task(task_id, context_id, live=True)
            self.ctx.note(
                "resumed: following A2A task %s with tasks/get (the input is not sent again)"
                % _cut(task_id, 200)
            )
            kind, value = self._get(task_id)
        else:
            kind, value = self._send(to_parts(input))
        delays = backoff(self.options.poll_initial, self.options.poll_max)
        while True:
            if kind == "message":
                self._set_live(False)
                return message_output(value)
            task_id, context_id = self._track(value)
            state = _status(value)["state"]
            if state in ACTIVE_STATES:
                if self.ctx.wait_cancelled(next(delays)):
                    self.ctx.raise_if_cancelled()
                kind, value = self._get(task_id)
            elif state == "input-required":
                answer = self.ctx.ask(self._question(value))
                kind, value = self._send(to_parts(answer), task_id, context_id)
                delays = backoff(self.options.poll_initial, self.options.poll_max)
            elif state == "completed":
                return task_output(value)
            elif state in ENDED_STATES:
                text = status_text(value)
                raise A2AError(
                    "the A2A task ended in state %s: %s"
                    % (state, _cut(text, ERROR_TEXT_CHARS) if text else "(no status message)")
                )
            elif state == "auth-required":
                raise A2AError(
                    "the A2A agent asks for authentication (auth-required), "
                    "which the bridge does not support"
                )
            else:
                raise A2AError(
                    "the A2A task is in state %r, which the bridge does not know" % _cut(state, 64)
                )

    @staticmethod
    def _resume_state(state: _Json) -> Tuple[str, Optional[str]]:
        if isinstance(state, dict) and set(state) == {"task_id", "context_id"}:
            task_id, context_id = state["task_id"], state["context_id"]
            if (
                isinstance(task_id, str)
                and task_id
                and (context_id is None or isinstance(context_id, str))
            ):
                return task_id, context_id
        raise AgentError("cannot resume: the checkpoint is not one the A2A bridge wrote")

    def _question(self, task: Dict[str, Any]) -> Dict[str, Any]:
        message = status_message(task)
        parts = clean_parts(message.get("parts")) if message else []
        return {"text": parts_text(parts) or "The agent needs input", "a2a": {"parts": parts}}

    # ----- task tracking ---------------------------------------------------------------

    def _set_task(self, task_id: str, context_id: Optional[str], *, live: bool) -> bool:
        with self._cond:
            changed = (task_id, context_id) != (self._task_id, self._context_id)
            self._task_id, self._context_id, self._live = task_id, context_id, live
            return changed

    def _set_live(self, live: bool) -> None:
        with self._cond:
            self._live = live

    def _is_live(self) -> bool:
        with self._cond:
            return self._live and self._task_id is not None

    def _track(self, task: Dict[str, Any]) -> Tuple[str, Optional[str]]:
        """Records what a task answer tells: a new task id (checkpoint), a new status
        message (note)."""
        task_id, context_id = _task_ids(task)
        state = _status(task)["state"]
        if self._set_task(task_id, context_id, live=state not in ENDED_STATES):
            self.ctx.checkpoint({"task_id": task_id, "context_id": context_id})
        message = status_message(task)
        text = status_text(task)
        if message is not None and text and state != "input-required":
            key = (message.get("messageId"), text)
            if key != self._noted:
                self._noted = key
                self.ctx.note(_cut(text, NOTE_CHARS))
        return task_id, context_id

    # ----- calls -----------------------------------------------------------------------

    def _send(
        self,
        parts: List[Dict[str, Any]],
        task_id: Optional[str] = None,
        context_id: Optional[str] = None,
    ) -> Tuple[str, Dict[str, Any]]:
        message = user_message(parts, task_id, context_id)
        configuration = {"acceptedOutputModes": ACCEPTED_OUTPUT_MODES, "blocking": True}
        params = {"message": message, "configuration": configuration}
        args = {
            "message": dict(message, parts=recorded_parts(parts)),
            "configuration": configuration,
        }
        return self._call(
            "message/send", "a2a-message-send", params, args, self.options.send_timeout
        )

    def _get(self, task_id: str) -> Tuple[str, Dict[str, Any]]:
        params = {"id": task_id}
        kind, value = self._call(
            "tasks/get", "a2a-tasks-get", params, params, self.options.get_timeout
        )
        if kind != "task":
            raise A2AError("the A2A agent answered tasks/get with a message instead of the task")
        return kind, value

    def _call(
        self, method: str, tool: str, params: Dict[str, Any], args: _Json, timeout: float
    ) -> Tuple[str, Dict[str, Any]]:
        """One JSON-RPC call, recorded as a tool_call (a failure with its error)."""
        with self.ctx.tool_call(tool, args) as call:
            result = self._wait_for(method, lambda: self.client.call(method, params, timeout))
            kind, value = classify(method, result)
            call.result = summary(kind, value)
        return kind, value

    def _wait_for(self, method: str, fn: Callable[[], _Json]) -> _Json:
        """``fn()`` on a worker thread; meanwhile a note every heartbeat, and a cancel
        wakes the wait at once (raising ``Cancelled``)."""
        box: Dict[str, Any] = {}

        def work() -> None:
            try:
                box["value"] = fn()
            except BaseException as e:  # noqa: BLE001 - re-raised on the caller's thread
                box["error"] = e
            with self._cond:
                box["done"] = True
                self._cond.notify_all()

        threading.Thread(target=work, name="souk-a2a-call", daemon=True).start()
        started = time.monotonic()
        while True:
            with self._cond:
                self._cond.wait_for(
                    lambda: "done" in box or self.ctx.cancelled, self.options.heartbeat
                )
            if "done" in box:
                break
            self.ctx.raise_if_cancelled()
            self.ctx.note(
                "waiting for the A2A agent to answer %s (%ds)"
                % (method, int(time.monotonic() - started))
            )
        if "error" in box:
            raise box["error"]
        return box["value"]

    # ----- giving up -------------------------------------------------------------------

    def _abandon(self) -> None:
        """Cancels the live task before the run fails (recorded; best effort)."""
        with self._cond:
            task_id = self._task_id
            self._live = False
        if task_id is None:
            return
        params = {"id": task_id}
        try:
            self._call("tasks/cancel", "a2a-tasks-cancel", params, params, self.options.get_timeout)
        except (AgentError, SoukError) as e:
            log("could not cancel the A2A task: %s" % e)

    def _pass_on_cancel(self) -> None:
        """On the node's cancel: wakes the run and sends tasks/cancel for the live task."""
        self.ctx.wait_cancelled()
        with self._cond:
            task_id = self._task_id if self._live else None
            self._cond.notify_all()
        if task_id is None:
            log("canceled; no A2A task is running, nothing to cancel")
            return
        try:
            self.client.call("tasks/cancel", {"id": task_id}, self.options.cancel_timeout)
            log("canceled; sent tasks/cancel for the A2A task")
        except A2AError as e:
            log("canceled; tasks/cancel failed: %s" % e)


# ----- running it --------------------------------------------------------------------


def bridge_agent(url: str, options: Optional[Options] = None) -> Agent:
    """The bridge to the A2A agent at ``url`` as an :class:`~souk_agent.Agent`. An invalid
    URL fails each hire with a public error."""
    opts = options or Options()

    def handler(ctx: Context, input: _Json) -> Dict[str, Any]:
        try:
            client = A2AClient(url)
        except ValueError as e:
            raise AgentError("the bridge is misconfigured: %s" % e) from None
        return Bridge(ctx, client, opts).run(input)

    # The node kills 2 s after a cancel; tasks/cancel gets cancel_timeout of it.
    return Agent(handler, cancel_grace=opts.cancel_timeout + 0.5)


def _seconds(text: str) -> float:
    value = float(text)
    if not 0 < value <= 86400:
        raise argparse.ArgumentTypeError("must be more than 0 and at most 86400 seconds")
    return value


def parse_options(argv: Optional[Sequence[str]] = None) -> Options:
    """The :class:`Options` from command-line arguments (those after the URL)."""
    parser = argparse.ArgumentParser(
        prog="python3 -m souk_agent.a2a_bridge URL",
        description="Offer an A2A 0.3 agent on Souk (run by the provider's node).",
    )
    default = Options()
    parser.add_argument(
        "--timeout",
        type=_seconds,
        default=default.send_timeout,
        help="seconds a message/send may stay silent (default %(default)s)",
    )
    parser.add_argument(
        "--poll-initial",
        type=_seconds,
        default=default.poll_initial,
        help="first tasks/get delay of a working task (default %(default)s)",
    )
    parser.add_argument(
        "--poll-max",
        type=_seconds,
        default=default.poll_max,
        help="longest tasks/get delay (default %(default)s)",
    )
    parser.add_argument(
        "--heartbeat",
        type=_seconds,
        default=default.heartbeat,
        help="seconds between notes while a call waits (default %(default)s)",
    )
    args = parser.parse_args(list(argv or []))
    return Options(
        send_timeout=args.timeout,
        poll_initial=args.poll_initial,
        poll_max=max(args.poll_max, args.poll_initial),
        heartbeat=args.heartbeat,
    )


def main(url: str, argv: Optional[Sequence[str]] = None) -> NoReturn:
    """Runs the bridge to the A2A agent at ``url`` on stdin/stdout (one hire), then exits.
    ``argv``: the options after the URL (``--timeout``, ``--poll-initial``, ``--poll-max``,
    ``--heartbeat``)."""
    bridge_agent(url, parse_options(argv)).main()


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1].startswith("-"):
        sys.stderr.write("usage: python3 -m souk_agent.a2a_bridge URL [options]\n")
        sys.exit(2)
    main(sys.argv[1], sys.argv[2:])
