"""What a handler works with during one run: :class:`Context` (the job, the resume state,
the step, question and final messages) and :class:`ToolCall` (a recorded tool call, as a
context manager or a decorator).

Maps each call to exactly one message of spec/agent-protocol.md; the channel enforces the
conversation rules.
"""

from __future__ import annotations

import functools
import inspect
from types import TracebackType
from typing import Any, Callable, Dict, Optional, Type, TypeVar, cast

from .channel import Channel, log
from .errors import Cancelled, InvalidMessage, MessageTooLarge
from .wire import (
    MAX_ERROR_BYTES,
    MAX_OUTPUT_BYTES,
    MAX_TOOL_BYTES,
    canonical_json,
    truncate_utf8,
)

__all__ = ["Context", "ToolCall", "current_context"]

_Json = Any
F = TypeVar("F", bound=Callable[..., Any])

_current: Optional["Context"] = None


def current_context() -> Optional["Context"]:
    """The context of the run in progress in this process, or ``None`` outside a run."""
    return _current


def _set_current(ctx: Optional["Context"]) -> None:
    global _current
    _current = ctx


def _check_tool_name(tool: object) -> str:
    if not isinstance(tool, str):
        raise InvalidMessage("a tool name must be a string, not %s" % type(tool).__name__)
    size = len(tool.encode("utf-8", "surrogatepass"))
    if not 1 <= size <= MAX_TOOL_BYTES:
        raise InvalidMessage(
            "a tool name must be 1 to %d bytes of UTF-8, not %d" % (MAX_TOOL_BYTES, size)
        )
    return tool


def _text(kind: str, text: object) -> str:
    if not isinstance(text, str):
        raise InvalidMessage("%s text must be a string, not %s" % (kind, type(text).__name__))
    return text


def error_result(exc: BaseException) -> Dict[str, Any]:
    """The ``result`` recorded for a tool call that raised ``exc``."""
    return {"error": {"type": type(exc).__name__, "message": str(exc)}}


class ToolCall:
    """One tool call, recorded as a ``tool_call`` message with its ``args`` and ``result``.

    As a context manager, the message is sent when the block ends: with :attr:`result` as it
    was set in the block (``None`` if it was not), or, if the block raised an
    :class:`Exception`, with ``{"error": {"type": ..., "message": ...}}`` as the result (the
    exception then propagates)::

        with ctx.tool_call("lookup", {"city": city}) as call:
            call.result = lookup(city)

    Without ``args`` it is a decorator instead: every call of the function is recorded, with
    its arguments by parameter name (defaults included, ``self``/``cls`` left out) and its
    return value::

        @ctx.tool_call("lookup")
        def lookup(city: str) -> dict: ...
    """

    def __init__(self, ctx: "Context", tool: str, args: _Json = None, *, has_args: bool = True):
        self._ctx = ctx
        self.tool: str = _check_tool_name(tool)
        #: The arguments recorded (may be replaced inside the block).
        self.args: _Json = args
        #: The result recorded: set it inside the block.
        self.result: _Json = None
        self._has_args = has_args
        self._entered = False
        self._sent = False

    def __enter__(self) -> "ToolCall":
        if self._entered:
            raise RuntimeError("a ToolCall can be entered once")
        self._entered = True
        self._ctx.raise_if_cancelled()
        # Fail before the tool runs if its arguments cannot be recorded.
        canonical_json(self.args, what="the tool_call args")
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        if exc is None:
            self.record()
            return
        if not isinstance(exc, Exception) or isinstance(exc, Cancelled):
            return  # interrupted (cancel, KeyboardInterrupt, SystemExit): nothing to record
        self.result = error_result(exc)
        try:
            self.record()
        except Cancelled:
            return  # the exception in flight matters more
        except Exception as e:  # noqa: BLE001 - keep the tool's own exception
            log("could not record the failed tool call %r: %s" % (self.tool, e))
        return

    def record(self) -> None:
        """Sends the ``tool_call`` message now (once)."""
        if self._sent:
            raise RuntimeError("this tool call was already recorded")
        self._ctx._channel.send(
            "tool_call", {"tool": self.tool, "args": self.args, "result": self.result}
        )
        self._sent = True

    def __call__(self, fn: F) -> F:
        if self._has_args:
            raise TypeError(
                "a tool_call used as a decorator takes its args from each call: "
                "use ctx.tool_call(name) without args"
            )
        return _recording(fn, self.tool, lambda: self._ctx)


def _recording(fn: F, tool: str, get_ctx: Callable[[], Optional["Context"]]) -> F:
    """``fn`` wrapped so that each call is recorded as a tool call of ``get_ctx()`` (called
    as it is when there is no context)."""
    sig = inspect.signature(fn)
    skip = None
    params = list(sig.parameters)
    if params and params[0] in ("self", "cls"):
        skip = params[0]

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        ctx = get_ctx()
        if ctx is None:
            return fn(*args, **kwargs)
        try:
            bound = sig.bind(*args, **kwargs)
        except TypeError:
            return fn(*args, **kwargs)  # raises the same error; nothing ran, nothing recorded
        bound.apply_defaults()
        recorded = {k: v for k, v in bound.arguments.items() if k != skip}
        with ToolCall(ctx, tool, recorded) as call:
            call.result = fn(*args, **kwargs)
            return call.result

    return cast(F, wrapper)


class Context:
    """The run of one hire, as the handler sees it.

    Every method sends one protocol message and raises :class:`~souk_agent.Cancelled` once
    the node has canceled the run. Methods may be called from any thread.
    """

    def __init__(
        self, channel: Channel, start: Dict[str, Any], *, max_output_bytes: int = MAX_OUTPUT_BYTES
    ) -> None:
        self._channel = channel
        self._max_output_bytes = max_output_bytes
        hire_id = start.get("hire_id")
        #: The hire id (64 lowercase hex digits).
        self.hire_id: str = hire_id if isinstance(hire_id, str) else ""
        #: The job input (any JSON, as agreed in the contract).
        self.input: _Json = start.get("input")
        #: The ``state`` of the agent's last checkpoint when the node resumes the hire (after
        #: a restart of the provider), else ``None``. A resumed agent continues from it.
        self.resumed_state: _Json = start.get("checkpoint")

    @property
    def resumed(self) -> bool:
        """True when this run resumes from a checkpoint (:attr:`resumed_state`)."""
        return self.resumed_state is not None

    # ----- cancellation --------------------------------------------------------------

    @property
    def cancelled(self) -> bool:
        """True once the node canceled the run."""
        return self._channel.cancelled

    @property
    def cancel_reason(self) -> Optional[str]:
        """The node's reason for canceling, once cancelled."""
        return self._channel.cancel_reason

    def raise_if_cancelled(self) -> None:
        """Raises :class:`~souk_agent.Cancelled` if the node canceled the run: call it in
        long loops that make no other SDK call."""
        self._channel.raise_if_cancelled()

    def wait_cancelled(self, timeout: Optional[float] = None) -> bool:
        """Waits up to ``timeout`` seconds for a cancel; True if the run was canceled. An
        interruptible ``time.sleep``."""
        return self._channel.wait_cancelled(timeout)

    # ----- steps ---------------------------------------------------------------------

    def decision(self, text: str) -> None:
        """Records an LLM decision or reasoning step (``decision``)."""
        self._channel.send("decision", {"text": _text("decision", text)})

    def note(self, text: str) -> None:
        """Records progress or commentary (``note``); also a heartbeat: the node fails a
        run that writes nothing for its silence timeout (2 minutes by default)."""
        self._channel.send("note", {"text": _text("note", text)})

    def tool_call(self, tool: str, args: _Json = None) -> ToolCall:
        """A tool call to record (``tool_call``): a context manager with ``args``, a
        decorator without (see :class:`ToolCall`). ``tool`` is 1 to 512 bytes and public in
        the receipt; ``args`` and ``result`` are committed, not published."""
        return ToolCall(self, tool, args, has_args=args is not None)

    def record_tool_call(self, tool: str, args: _Json, result: _Json) -> None:
        """Records a tool call that already happened, in one message."""
        call = ToolCall(self, tool, args)
        call.result = result
        call.record()

    def checkpoint(self, state: _Json) -> None:
        """Saves ``state`` (any JSON but ``None``) to resume from (``checkpoint``): after a
        restart the node starts the agent again with the last one as
        :attr:`resumed_state`. Put in it everything the original input does not carry,
        such as answers; keep it small (it is one line)."""
        if state is None:
            raise InvalidMessage("a checkpoint state cannot be null")
        self._channel.send("checkpoint", {"state": state})

    def ask(self, question: _Json, answer_schema: _Json = None) -> _Json:
        """Asks the client (``question``) and blocks until the answer arrives; returns it.

        ``question`` is a string (sent as ``{"text": question}``), an object, or any other
        JSON but ``None``. ``answer_schema``, a JSON Schema, is added to an object question
        as its ``answer_schema`` member: the client checks its answer against it, the node
        does not, so check what you rely on. While the question waits, only
        :meth:`error` may be sent; a cancel wakes the call with
        :class:`~souk_agent.Cancelled`.
        """
        if question is None:
            raise InvalidMessage("a question cannot be null")
        if isinstance(question, str):
            question = {"text": question}
        if answer_schema is not None:
            if not isinstance(question, dict):
                raise InvalidMessage("answer_schema needs a question that is a JSON object")
            if not isinstance(answer_schema, (dict, bool)):
                raise InvalidMessage("answer_schema must be a JSON Schema (an object)")
            if "answer_schema" in question:
                raise InvalidMessage("the question already has an answer_schema")
            question = dict(question)
            question["answer_schema"] = answer_schema
        return self._channel.ask(question)

    # ----- final messages ------------------------------------------------------------

    @property
    def finished(self) -> bool:
        """True once the final message (``result`` or ``error``) was sent."""
        return self._channel.finished

    def result(self, output: _Json) -> None:
        """Ends the run with ``output`` (``result``). Returning the output from the handler
        does the same. Raises :class:`~souk_agent.MessageTooLarge` if its canonical JSON is
        larger than 1 MiB or its line longer than the line limit (nothing is sent)."""
        size = len(canonical_json(output, what="the output"))
        if size > self._max_output_bytes:
            raise MessageTooLarge(
                "the output is %d bytes; the limit is %d" % (size, self._max_output_bytes),
                size=size,
                limit=self._max_output_bytes,
            )
        self._channel.send("result", {"output": output}, final=True)

    def error(self, message: str) -> None:
        """Ends the run with an error (``error``). ``message`` is public (it goes into the
        receipt) and is cut to 512 bytes. Raising :class:`~souk_agent.AgentError` from the
        handler does the same."""
        text = _text("error", message)
        self._channel.send("error", {"message": truncate_utf8(text, MAX_ERROR_BYTES)}, final=True)
