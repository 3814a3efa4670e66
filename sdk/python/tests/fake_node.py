"""The node's side of the agent protocol, for tests: starts an agent process with the
node's clean environment, writes `start`, `answer` and `cancel` lines, reads the agent's
lines and checks each against the rules of spec/agent-protocol.md (message shapes, line
limit, conversation order), the way crates/runtime's `AgentProcess` does."""

import json
import queue
import subprocess
import threading
from pathlib import Path
from typing import Any, Dict, List, Optional

LINE_LIMIT = 512 * 1024
TIMEOUT = 20.0
HIRE_ID = "0123456789abcdef" * 4
FINAL = ("result", "error")


def node_line(value: Any) -> bytes:
    """What the node writes: canonical JSON and LF."""
    return (
        json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        + b"\n"
    )


def check_message(line: bytes) -> Dict[str, Any]:
    """Parses one agent line like `parse_agent_line`; AssertionError on a violation."""
    assert len(line) <= LINE_LIMIT, "line longer than %d bytes" % LINE_LIMIT
    msg = json.loads(line)
    assert isinstance(msg, dict), "message is not a JSON object"
    kind = msg.get("type")
    assert isinstance(kind, str), "message has no string type"
    required: Dict[str, Dict[str, type]] = {
        "decision": {"text": str},
        "note": {"text": str},
        "tool_call": {"tool": str, "args": object, "result": object},
        "checkpoint": {"state": object},
        "question": {"question": object},
        "result": {"output": object},
        "error": {"message": str},
    }
    assert kind in required, "unknown message type %r" % kind
    for name, typ in required[kind].items():
        assert name in msg, "%s message has no %r" % (kind, name)
        assert isinstance(msg[name], typ), "%s %r has the wrong type" % (kind, name)
    if kind == "tool_call":
        assert 1 <= len(msg["tool"].encode()) <= 512, "tool name length"
    if kind == "checkpoint":
        assert msg["state"] is not None, "null state"
    if kind == "question":
        assert msg["question"] is not None, "null question"
    return msg


class FakeNode:
    def __init__(
        self,
        argv: List[str],
        *,
        workdir: Path,
        pythonpath: str,
        env: Optional[Dict[str, str]] = None,
    ) -> None:
        """`env`: variables the node adds for the hire (e.g. `HTTP_PROXY`, `SOUK_INCLUDE`)."""
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": str(workdir),
            "LANG": "C.UTF-8",
            "SOUK_HIRE_ID": HIRE_ID,
            "PYTHONPATH": pythonpath,
            **(env or {}),
        }
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=str(workdir),
            env=env,
        )
        self.lines: "queue.Queue[Optional[bytes]]" = queue.Queue()
        self.messages: List[Dict[str, Any]] = []
        self.stderr_chunks: List[bytes] = []
        self.question_open = False
        self.final: Optional[Dict[str, Any]] = None
        threading.Thread(target=self._read_stdout, daemon=True).start()
        self._stderr_thread = threading.Thread(target=self._read_stderr, daemon=True)
        self._stderr_thread.start()

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        try:
            for line in self.proc.stdout:
                self.lines.put(line)
        except (OSError, ValueError):
            pass
        self.lines.put(None)

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        try:
            for chunk in self.proc.stderr:
                self.stderr_chunks.append(chunk)
        except (OSError, ValueError):
            pass

    # ----- node -> agent ---------------------------------------------------------------

    def write(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def send(self, value: Dict[str, Any]) -> None:
        self.write(node_line(value))

    def start(self, input: Any, checkpoint: Any = None) -> None:
        self.send({"type": "start", "hire_id": HIRE_ID, "input": input, "checkpoint": checkpoint})

    def answer(self, value: Any) -> None:
        assert self.question_open, "answer without an open question"
        self.send({"type": "answer", "answer": value})
        self.question_open = False

    def cancel(self, reason: str = "client canceled") -> None:
        """Like the node: `cancel`, then stdin closes."""
        self.send({"type": "cancel", "reason": reason})
        self.close_stdin()

    def close_stdin(self) -> None:
        assert self.proc.stdin is not None
        if not self.proc.stdin.closed:
            self.proc.stdin.close()

    # ----- agent -> node ---------------------------------------------------------------

    def next_line(self, timeout: float = TIMEOUT) -> Optional[bytes]:
        """The next raw line, or None at end of stdout."""
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(
                "no line from the agent within %ss; stderr:\n%s" % (timeout, self.stderr())
            ) from None

    def recv(self, timeout: float = TIMEOUT) -> Dict[str, Any]:
        """The next message, checked against the protocol rules."""
        line = self.next_line(timeout)
        assert line is not None, "stdout closed; stderr:\n%s" % self.stderr()
        assert line.endswith(b"\n"), "a line without LF"
        if not line.strip():
            return self.recv(timeout)
        assert self.final is None, "wrote after its final message"
        msg = check_message(line.rstrip(b"\n"))
        if self.question_open:
            assert msg["type"] == "error", "sent %s while waiting for an answer" % msg["type"]
        if msg["type"] == "question":
            self.question_open = True
        self.messages.append(msg)
        if msg["type"] in FINAL:
            self.final = msg
            self.question_open = False
            self.close_stdin()  # the node closes stdin after the final message
        return msg

    def expect(self, kind: str, timeout: float = TIMEOUT) -> Dict[str, Any]:
        msg = self.recv(timeout)
        assert msg["type"] == kind, "expected %s, got %r; stderr:\n%s" % (kind, msg, self.stderr())
        return msg

    def run_to_end(self) -> Dict[str, Any]:
        """Reads messages until the final one; returns it."""
        while True:
            msg = self.recv()
            if msg["type"] in FINAL:
                return msg

    def expect_eof(self, timeout: float = TIMEOUT) -> None:
        line = self.next_line(timeout)
        assert line is None, "expected end of stdout, got %r" % line[:200]

    def wait(self, timeout: float = TIMEOUT) -> int:
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                "the agent did not exit within %ss; stderr:\n%s" % (timeout, self.stderr())
            ) from None
        self._stderr_thread.join(timeout)
        return code

    def finish(self) -> int:
        """After the final message: stdout closes and the process exits."""
        self.expect_eof()
        return self.wait()

    def stderr(self) -> str:
        return b"".join(self.stderr_chunks).decode("utf-8", "replace")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass
