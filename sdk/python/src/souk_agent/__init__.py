"""souk-agent: write Souk agents in Python (spec/agent-protocol.md, version 1).

Standard library only. A minimal agent::

    from souk_agent import Context, agent

    @agent
    def run(ctx: Context, input: dict) -> dict:
        ctx.decision("greeting the caller")
        return {"greeting": "hello, %s" % input["name"]}

    if __name__ == "__main__":
        run.main()

The package's modules: ``wire`` (framing, limits, canonical JSON), ``channel`` (the reader
thread and the writer with the conversation rules), ``context`` (:class:`Context`,
:class:`ToolCall`), ``tools`` (:func:`tool`), ``runner`` (:class:`Agent`, :func:`agent`),
``errors``.
"""

from __future__ import annotations

from .context import Context, ToolCall, current_context
from .errors import (
    AgentError,
    Cancelled,
    InvalidMessage,
    MessageTooLarge,
    ProtocolError,
    SoukError,
)
from .runner import Agent, Handler, agent
from .tools import tool
from .wire import (
    MAX_LINE_BYTES,
    MAX_MESSAGES,
    MAX_OUTPUT_BYTES,
    canonical_json,
)

__version__ = "0.1.0"

#: The agent protocol version this SDK speaks.
PROTOCOL_VERSION = 1

__all__ = [
    "MAX_LINE_BYTES",
    "MAX_MESSAGES",
    "MAX_OUTPUT_BYTES",
    "PROTOCOL_VERSION",
    "Agent",
    "AgentError",
    "Cancelled",
    "Context",
    "Handler",
    "InvalidMessage",
    "MessageTooLarge",
    "ProtocolError",
    "SoukError",
    "ToolCall",
    "agent",
    "canonical_json",
    "current_context",
    "tool",
]
