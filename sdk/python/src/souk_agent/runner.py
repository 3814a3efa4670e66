"""Running a handler as an agent process: :class:`Agent` (and the :func:`agent` decorator)
reads ``start``, calls the handler with a :class:`~souk_agent.Context`, turns its return
value into ``result`` and its exceptions into ``error``, and ends the process as the
protocol wants (exit status 0 after the final message, quietly after ``cancel``).

Owns the process: protects the protocol's stdin and stdout from stray reads and prints, and
stops a handler that ignores a cancel.
"""

from __future__ import annotations

import os
import sys
import threading
import traceback
from typing import IO, Any, Callable, NoReturn, Optional, Tuple, Union, overload

from .channel import Channel, log
from .context import Context, _set_current
from .errors import AgentError, Cancelled, SoukError
from .wire import MAX_LINE_BYTES, MAX_MESSAGES, MAX_OUTPUT_BYTES

__all__ = ["Agent", "Handler", "agent"]

#: A handler: ``(ctx, input) -> output``.
Handler = Callable[[Context, Any], Any]
_Handler = Handler

#: Exit status when stdin ends before the ``start`` message.
EXIT_NO_START = 2


class Agent:
    """An agent: a handler ``(ctx, input) -> output`` and how to run it.

    Pass the handler, or subclass and override :meth:`run`::

        class Analyst(Agent):
            def run(self, ctx: Context, input: Any) -> Any:
                ...

        if __name__ == "__main__":
            Analyst().main()

    Options: ``max_line_bytes`` (longest line written, default 512 KiB, what the reference
    provider accepts), ``max_output_bytes`` (largest canonical output, default 1 MiB),
    ``max_messages`` (per run, final included, default 100 000), ``cancel_grace`` (seconds a
    handler has after ``cancel`` to reach an SDK call and unwind before :meth:`main` ends the
    process; default 1.0, less than the node's 2 s before it kills; ``None``: never).
    """

    def __init__(
        self,
        handler: Optional[_Handler] = None,
        *,
        max_line_bytes: int = MAX_LINE_BYTES,
        max_output_bytes: int = MAX_OUTPUT_BYTES,
        max_messages: int = MAX_MESSAGES,
        cancel_grace: Optional[float] = 1.0,
    ) -> None:
        self._handler = handler
        self.max_line_bytes = max_line_bytes
        self.max_output_bytes = max_output_bytes
        self.max_messages = max_messages
        self.cancel_grace = cancel_grace

    def run(self, ctx: Context, input: Any) -> Any:
        """The agent's work: return the output (any JSON), or raise
        :class:`~souk_agent.AgentError` to fail with a public message."""
        if self._handler is None:
            raise NotImplementedError("pass a handler to Agent() or override Agent.run")
        return self._handler(ctx, input)

    def main(self) -> NoReturn:
        """Runs the agent on this process's stdin and stdout, then exits.

        stdin and stdout are kept for the protocol: afterwards file descriptor 0 reads
        ``/dev/null`` and 1 writes to stderr, so a stray ``print`` (also from a library or a
        child process) goes to the provider's log instead of breaking the protocol.
        """
        reader, writer = _take_stdio()
        sys.exit(self.serve(reader, writer, exit_on_cancel=True))

    def serve(self, reader: IO[bytes], writer: IO[bytes], *, exit_on_cancel: bool = False) -> int:
        """Runs one hire over the binary streams ``reader`` (the node's lines) and
        ``writer`` (the agent's); returns the exit status. With ``exit_on_cancel`` the
        process exits (``os._exit(0)``) when the handler is still running
        ``cancel_grace`` seconds after a cancel."""
        channel = Channel(
            reader, writer, max_line_bytes=self.max_line_bytes, max_messages=self.max_messages
        )
        if exit_on_cancel and self.cancel_grace is not None:
            channel.on_cancel(_exit_after(self.cancel_grace))
        channel.start_reader()
        start = channel.wait_start()
        if start is None:
            if channel.cancelled:
                return 0
            log("stdin ended before the start message")
            return EXIT_NO_START
        ctx = Context(channel, start, max_output_bytes=self.max_output_bytes)
        _set_current(ctx)
        try:
            return self._run_handler(ctx, start.get("input"))
        finally:
            _set_current(None)
            channel.close()

    def _run_handler(self, ctx: Context, input: Any) -> int:
        try:
            output = self.run(ctx, input)
        except Cancelled:
            return 0
        except AgentError as e:
            return _fail(ctx, str(e) or "the agent failed")
        except SoukError as e:
            # The SDK's messages never quote private data.
            _log_exception(e)
            return _fail(ctx, str(e))
        except Exception as e:  # noqa: BLE001 - every failure must end the run
            # Its text may quote private data: the traceback goes to the provider's log only.
            _log_exception(e)
            return _fail(ctx, "internal error: %s" % type(e).__name__)
        except KeyboardInterrupt:
            _fail(ctx, "the agent was interrupted")
            return 1
        if ctx.finished:
            if output is not None:
                log("the handler returned a value after the final message; it was dropped")
            return 0
        try:
            ctx.result(output)
        except Cancelled:
            return 0
        except SoukError as e:  # not JSON, too large, or a question still open
            return _fail(ctx, str(e))
        return 0


def _fail(ctx: Context, message: str) -> int:
    """Ends the run with ``error`` unless it has ended already; the exit status."""
    if ctx.finished:
        log("the handler failed after its final message: %s" % message)
        return 0
    try:
        ctx.error(message)
    except Cancelled:
        pass
    except SoukError as e:
        log("cannot send the error message: %s" % e)
        return 1
    return 0


def _log_exception(e: BaseException) -> None:
    try:
        traceback.print_exception(type(e), e, e.__traceback__, file=sys.stderr)
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def _exit_after(grace: float) -> Callable[[str], None]:
    """A cancel callback that ends the process ``grace`` seconds later, unless it has
    exited by then."""

    def on_cancel(reason: str) -> None:
        def stop() -> None:
            if not threading.Event().wait(grace):
                log("canceled; the handler did not stop within %.1fs, exiting" % grace)
                try:
                    sys.stderr.flush()
                finally:
                    os._exit(0)

        threading.Thread(target=stop, name="souk-agent-cancel", daemon=True).start()

    return on_cancel


def _take_stdio() -> Tuple[IO[bytes], IO[bytes]]:
    """Private copies of stdin and stdout for the protocol; fd 0 becomes ``/dev/null`` and
    fd 1 a copy of stderr. What ``sys.stdout`` still buffers (a print before ``main``)
    goes to stderr too."""
    reader = os.fdopen(os.dup(0), "rb")
    writer = os.fdopen(os.dup(1), "wb")
    try:
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
    except OSError:
        pass
    try:
        os.dup2(2, 1)
    except OSError:
        try:
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, 1)
            os.close(null)
        except OSError:
            pass
    try:
        sys.stdout.flush()
    except (OSError, ValueError, AttributeError):
        pass
    return reader, writer


@overload
def agent(handler: _Handler) -> Agent: ...


@overload
def agent(
    handler: None = None,
    *,
    max_line_bytes: int = MAX_LINE_BYTES,
    max_output_bytes: int = MAX_OUTPUT_BYTES,
    max_messages: int = MAX_MESSAGES,
    cancel_grace: Optional[float] = 1.0,
) -> Callable[[_Handler], Agent]: ...


def agent(
    handler: Optional[_Handler] = None,
    *,
    max_line_bytes: int = MAX_LINE_BYTES,
    max_output_bytes: int = MAX_OUTPUT_BYTES,
    max_messages: int = MAX_MESSAGES,
    cancel_grace: Optional[float] = 1.0,
) -> Union[Agent, Callable[[_Handler], Agent]]:
    """Makes a handler ``(ctx, input) -> output`` an :class:`Agent`; run it with
    ``.main()``. Use bare (``@agent``) or with :class:`Agent`'s options
    (``@agent(cancel_grace=0.5)``)."""

    def make(fn: _Handler) -> Agent:
        return Agent(
            fn,
            max_line_bytes=max_line_bytes,
            max_output_bytes=max_output_bytes,
            max_messages=max_messages,
            cancel_grace=cancel_grace,
        )

    if handler is not None:
        return make(handler)
    return make
