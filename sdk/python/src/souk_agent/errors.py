"""The exceptions of the SDK.

Every :class:`SoukError` has a message that is safe to publish: the SDK writes it as the
run's public ``error`` message when it ends the handler, so it never quotes the agent's
private data (texts, arguments, results, states, questions, outputs).
"""

from __future__ import annotations

__all__ = [
    "AgentError",
    "Cancelled",
    "InvalidMessage",
    "MessageTooLarge",
    "ProtocolError",
    "SoukError",
]


class SoukError(Exception):
    """Base class of the SDK's exceptions (except :class:`Cancelled`)."""


class AgentError(SoukError):
    """Raise it to end the run with an ``error`` message.

    ``str(exc)`` becomes the public error message of the receipt (the node cuts it to 512
    bytes; so does the SDK). Write nothing private in it.
    """


class ProtocolError(SoukError):
    """The call would break the agent protocol, so nothing was sent.

    For example: a step while a question is waiting for its answer, anything after the final
    message, more messages than a run may send, or stdin closed while waiting for an answer.
    """


class InvalidMessage(SoukError, ValueError):
    """A message cannot be sent as it is: a member is not JSON, not of the required type,
    nested too deeply, or out of the protocol's bounds. Nothing was sent."""


class MessageTooLarge(InvalidMessage):
    """A message's line (or the result's canonical output) is larger than the limit."""

    def __init__(self, message: str, *, size: int, limit: int) -> None:
        super().__init__(message)
        #: Size of the line or output in bytes.
        self.size = size
        #: The limit it exceeds.
        self.limit = limit


class Cancelled(BaseException):
    """The node canceled the run (or stopped reading the agent's output).

    Raised by every SDK call once the ``cancel`` message has arrived, including an
    :meth:`~souk_agent.Context.ask` that is waiting. Like :class:`KeyboardInterrupt` it
    derives from :class:`BaseException`, so ``except Exception`` does not swallow it; let it
    propagate and the SDK ends the process quietly (nothing written after ``cancel`` is
    read).
    """

    def __init__(self, reason: str = "") -> None:
        super().__init__(reason)
        #: The node's reason (free text).
        self.reason = reason
