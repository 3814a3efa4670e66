"""The channel's conversation rules across threads, in process over pipes."""

import json
import os
import queue
import threading
from typing import Any, Dict, Iterator, List, Optional, Tuple

import pytest

from souk_agent import Cancelled, ProtocolError
from souk_agent.channel import Channel

TIMEOUT = 20.0


class Pipes:
    """A channel on pipes, with the node's ends."""

    def __init__(self) -> None:
        r_in, self.w_in = os.pipe()
        self.r_out, w_out = os.pipe()
        self.channel = Channel(os.fdopen(r_in, "rb"), os.fdopen(w_out, "wb"), max_messages=10)
        self.node_in = os.fdopen(self.w_in, "wb")
        self.lines: "queue.Queue[Optional[bytes]]" = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.channel.start_reader()

    def _read(self) -> None:
        with os.fdopen(self.r_out, "rb") as out:
            for line in out:
                self.lines.put(line)
        self.lines.put(None)

    def send(self, value: Dict[str, Any]) -> None:
        self.node_in.write(json.dumps(value).encode() + b"\n")
        self.node_in.flush()

    def recv(self) -> Dict[str, Any]:
        line = self.lines.get(timeout=TIMEOUT)
        assert line is not None
        msg: Dict[str, Any] = json.loads(line)
        return msg


@pytest.fixture
def pipes() -> Iterator[Pipes]:
    p = Pipes()
    p.send({"type": "start", "hire_id": "ab" * 32, "input": 1, "checkpoint": None})
    assert p.channel.wait_start() is not None
    yield p
    p.node_in.close()
    p.channel.close()


def ask_in_thread(channel: Channel) -> Tuple[threading.Thread, List[Any]]:
    outcome: List[Any] = []

    def run() -> None:
        try:
            outcome.append(("answer", channel.ask({"text": "q"})))
        except BaseException as e:  # noqa: BLE001 - the test inspects it
            outcome.append(("raised", e))

    t = threading.Thread(target=run)
    t.start()
    return t, outcome


def test_only_error_while_a_question_waits(pipes: Pipes) -> None:
    t, outcome = ask_in_thread(pipes.channel)
    assert pipes.recv() == {"type": "question", "question": {"text": "q"}}
    with pytest.raises(ProtocolError, match="cannot send note while a question waits"):
        pipes.channel.send("note", {"text": "no"})
    with pytest.raises(ProtocolError, match="cannot send question while a question waits"):
        pipes.channel.ask({"text": "second"})
    pipes.send({"type": "answer", "answer": {"n": 1}, "extra": True})
    t.join(TIMEOUT)
    assert outcome == [("answer", {"n": 1})]
    pipes.channel.send("note", {"text": "now fine"})
    assert pipes.recv() == {"type": "note", "text": "now fine"}


def test_error_from_another_thread_ends_a_waiting_ask(pipes: Pipes) -> None:
    t, outcome = ask_in_thread(pipes.channel)
    pipes.recv()
    pipes.channel.send("error", {"message": "giving up"}, final=True)
    assert pipes.recv() == {"type": "error", "message": "giving up"}
    t.join(TIMEOUT)
    kind, exc = outcome[0]
    assert kind == "raised" and isinstance(exc, ProtocolError)
    assert str(exc) == "the run ended while waiting for an answer"
    with pytest.raises(ProtocolError, match="final message was already sent"):
        pipes.channel.send("result", {"output": 1}, final=True)


def test_cancel_wakes_a_waiting_ask_and_blocks_every_send(pipes: Pipes) -> None:
    t, outcome = ask_in_thread(pipes.channel)
    pipes.recv()
    pipes.send({"type": "cancel", "reason": "client canceled"})
    t.join(TIMEOUT)
    kind, exc = outcome[0]
    assert kind == "raised" and isinstance(exc, Cancelled) and exc.reason == "client canceled"
    assert pipes.channel.cancelled and pipes.channel.cancel_reason == "client canceled"
    for msg_type, final in [("note", False), ("error", True), ("result", True)]:
        with pytest.raises(Cancelled):
            pipes.channel.send(msg_type, {"text": "x", "message": "x", "output": 1}, final=final)


def test_concurrent_writers_never_interleave_lines(pipes: Pipes) -> None:
    text = "x" * 100_000  # larger than a pipe's atomic write

    def write(n: int) -> None:
        pipes.channel.send("note", {"text": str(n) + text})

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    got = sorted(int(pipes.recv()["text"][0]) for _ in range(8))
    for t in threads:
        t.join(TIMEOUT)
    assert got == list(range(8))
