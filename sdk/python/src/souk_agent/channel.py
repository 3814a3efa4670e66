"""The agent's side of the conversation with the node: a reader thread that takes the node's
lines off stdin (``start``, ``answer``, ``cancel``), and a thread-safe writer that sends one
flushed line per message while enforcing the conversation rules of spec/agent-protocol.md
(nothing but ``error`` while a question is open, nothing after the final message, at most
:data:`~souk_agent.wire.MAX_MESSAGES` messages, nothing after ``cancel``).

Owns all protocol state; knows nothing of handlers or contexts.
"""

from __future__ import annotations

import sys
import threading
from typing import IO, Any, Callable, Dict, List, Optional

from .errors import Cancelled, ProtocolError
from .wire import MAX_LINE_BYTES, MAX_MESSAGES, encode_message, parse_node_line

_Json = Any


class _NoAnswer:
    pass


_NO_ANSWER = _NoAnswer()


def log(text: str) -> None:
    """One line for the provider's log (the agent's stderr); never fails."""
    try:
        sys.stderr.write("souk-agent: %s\n" % text)
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


class Channel:
    """The protocol over a pair of binary streams (the node's pipes)."""

    def __init__(
        self,
        reader: IO[bytes],
        writer: IO[bytes],
        *,
        max_line_bytes: int = MAX_LINE_BYTES,
        max_messages: int = MAX_MESSAGES,
    ) -> None:
        if max_messages < 1:
            raise ValueError("max_messages must be at least 1")
        self._reader = reader
        self._writer = writer
        self.max_line_bytes = max_line_bytes
        self.max_messages = max_messages
        self._cond = threading.Condition(threading.Lock())
        self._start: Optional[Dict[str, Any]] = None
        self._eof = False
        self._cancelled = threading.Event()
        self._cancel_reason = ""
        self._cancel_callbacks: List[Callable[[str], None]] = []
        self._question_open = False
        self._answer: Any = _NO_ANSWER
        self._final_sent = False
        self._broken = False
        self._sent = 0
        self._thread: Optional[threading.Thread] = None

    # ----- reading -------------------------------------------------------------------

    def start_reader(self) -> None:
        """Starts the reader thread (a daemon: it never keeps the process alive)."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._read_loop, name="souk-agent-reader", daemon=True
            )
            self._thread.start()

    def _read_loop(self) -> None:
        try:
            while True:
                raw = self._reader.readline()
                if not raw:
                    break
                self._handle_line(raw)
        except (OSError, ValueError) as e:  # ValueError: the stream was closed under us
            log("cannot read stdin: %s" % type(e).__name__)
        finally:
            with self._cond:
                self._eof = True
                self._cond.notify_all()

    def _handle_line(self, raw: bytes) -> None:
        try:
            msg = parse_node_line(raw)
        except ValueError as e:
            log("ignoring a line from the node: %s" % e)
            return
        if msg is None:
            return  # blank lines do not count
        kind = msg["type"]
        if kind == "cancel":
            reason = msg.get("reason")
            self._cancel(reason if isinstance(reason, str) else "")
        elif kind == "start":
            with self._cond:
                if self._start is not None:
                    log("ignoring a second start message")
                    return
                self._start = msg
                self._cond.notify_all()
        elif kind == "answer":
            with self._cond:
                if not self._question_open or self._answer is not _NO_ANSWER:
                    log("ignoring an answer: no question is waiting for one")
                    return
                self._answer = msg.get("answer")
                self._cond.notify_all()
        else:
            log("ignoring a message of unknown type %r" % kind[:64])

    def _cancel(self, reason: str) -> None:
        with self._cond:
            if self._cancelled.is_set():
                return
            self._cancel_reason = reason
            self._cancelled.set()
            callbacks = list(self._cancel_callbacks)
            self._cond.notify_all()
        for callback in callbacks:
            callback(reason)

    def on_cancel(self, callback: Callable[[str], None]) -> None:
        """Calls ``callback(reason)`` on the reader thread when ``cancel`` arrives (at once
        if it already has)."""
        with self._cond:
            if not self._cancelled.is_set():
                self._cancel_callbacks.append(callback)
                return
            reason = self._cancel_reason
        callback(reason)

    def wait_start(self) -> Optional[Dict[str, Any]]:
        """Blocks until the ``start`` message; ``None`` if stdin ends or ``cancel`` comes
        first."""
        with self._cond:
            while self._start is None and not self._eof and not self._cancelled.is_set():
                self._cond.wait()
            if self._cancelled.is_set():
                return None
            return self._start

    @property
    def cancelled(self) -> bool:
        """True once the node sent ``cancel`` (or stopped reading the agent's output)."""
        return self._cancelled.is_set()

    @property
    def cancel_reason(self) -> Optional[str]:
        """The node's reason, once cancelled."""
        return self._cancel_reason if self._cancelled.is_set() else None

    def wait_cancelled(self, timeout: Optional[float] = None) -> bool:
        """Blocks until cancelled or ``timeout`` seconds have passed; True if cancelled."""
        return self._cancelled.wait(timeout)

    @property
    def finished(self) -> bool:
        """True once the final message (``result`` or ``error``) was sent."""
        return self._final_sent

    # ----- writing -------------------------------------------------------------------

    def raise_if_cancelled(self) -> None:
        """Raises :class:`Cancelled` once the node canceled the run."""
        if self._cancelled.is_set():
            raise Cancelled(self._cancel_reason)

    def _check_can_send(self, msg_type: str, *, final: bool) -> None:
        """Under the lock: the conversation rules."""
        self.raise_if_cancelled()
        if self._final_sent:
            raise ProtocolError("cannot send %s: the final message was already sent" % msg_type)
        if self._question_open and msg_type != "error":
            raise ProtocolError("cannot send %s while a question waits for its answer" % msg_type)
        # Steps leave room for the final message.
        room = self.max_messages - self._sent - (0 if final else 1)
        if room < 1:
            raise ProtocolError(
                "cannot send %s: a run may send at most %d messages, the final one included"
                % (msg_type, self.max_messages)
            )

    def _write(self, line: bytes) -> None:
        """Under the lock: one line, flushed."""
        try:
            self._writer.write(line + b"\n")
            self._writer.flush()
        except (OSError, ValueError):
            # The node closed our stdout: it no longer reads anything we write.
            self._broken = True
            self._cancel_reason = "the node stopped reading the agent's output"
            self._cancelled.set()
            self._cond.notify_all()
            raise Cancelled(self._cancel_reason) from None
        self._sent += 1

    def send(self, msg_type: str, members: Dict[str, _Json], *, final: bool = False) -> None:
        """Writes a step (or, with ``final``, a ``result`` or ``error``) message."""
        self.raise_if_cancelled()
        line = encode_message(msg_type, members, self.max_line_bytes)
        with self._cond:
            self._check_can_send(msg_type, final=final)
            self._write(line)
            if final:
                self._final_sent = True
                self._cond.notify_all()

    def ask(self, question: _Json) -> _Json:
        """Sends a ``question`` and blocks until its ``answer``; returns the answer."""
        self.raise_if_cancelled()
        line = encode_message("question", {"question": question}, self.max_line_bytes)
        with self._cond:
            self._check_can_send("question", final=False)
            # Open before writing: the answer cannot arrive before the flag is set.
            self._question_open = True
            self._answer = _NO_ANSWER
            try:
                self._write(line)
            except Cancelled:
                self._question_open = False
                raise
            while (
                self._answer is _NO_ANSWER
                and not self._cancelled.is_set()
                and not self._eof
                and not self._final_sent
            ):
                self._cond.wait()
            if self._cancelled.is_set():
                raise Cancelled(self._cancel_reason)
            if self._answer is _NO_ANSWER:
                if self._final_sent:
                    raise ProtocolError("the run ended while waiting for an answer")
                # The question stays open: only an error may follow.
                raise ProtocolError("stdin closed while waiting for an answer")
            answer = self._answer
            self._answer = _NO_ANSWER
            self._question_open = False
            return answer

    def close(self) -> None:
        """Closes the agent's stdout (after the final message)."""
        with self._cond:
            try:
                self._writer.close()
            except (OSError, ValueError):
                pass
