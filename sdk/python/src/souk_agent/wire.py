"""The wire format of the agent protocol (spec/agent-protocol.md, "Framing"): encoding the
agent's messages as single JSON lines within the protocol's limits, measuring canonical JSON,
and parsing the node's lines.

Pure functions, no I/O.
"""

from __future__ import annotations

import json
from typing import Any, Dict, List, Optional, Tuple

from .errors import InvalidMessage, MessageTooLarge

__all__ = [
    "MAX_ERROR_BYTES",
    "MAX_LINE_BYTES",
    "MAX_MESSAGES",
    "MAX_NESTING",
    "MAX_OUTPUT_BYTES",
    "MAX_TOOL_BYTES",
    "NODE_DEFAULT_MAX_LINE_BYTES",
    "canonical_json",
    "encode_message",
    "parse_node_line",
    "truncate_utf8",
]

#: Longest line the SDK writes by default (LF excluded): what the reference provider node
#: allows, and what agents SHOULD stay within.
MAX_LINE_BYTES = 512 * 1024
#: The node's default line limit (``RunConfig::max_line_bytes``); a node may configure another.
NODE_DEFAULT_MAX_LINE_BYTES = 1024 * 1024
#: Largest canonical JSON of a result's ``output`` (``RunConfig::max_output_bytes``).
MAX_OUTPUT_BYTES = 1024 * 1024
#: Most messages one run may send, the final one included (``RunConfig::max_events``).
MAX_MESSAGES = 100_000
#: A ``tool_call``'s ``tool`` is 1 to this many bytes.
MAX_TOOL_BYTES = 512
#: The node cuts an ``error`` message to this many bytes.
MAX_ERROR_BYTES = 512
#: Deepest nesting of arrays and objects in a message, the message object included, that
#: the node's parser accepts (serde_json rejects the 128th level).
MAX_NESTING = 127

_Json = Any


def truncate_utf8(text: str, max_bytes: int) -> str:
    """``text`` cut to at most ``max_bytes`` bytes of UTF-8, on a character boundary."""
    data = text.encode("utf-8", "surrogatepass")
    if len(data) <= max_bytes:
        return text
    return data[:max_bytes].decode("utf-8", "ignore")


def _check_nesting(value: _Json, base: int, limit: int, what: str) -> None:
    """Raises if arrays and objects in ``value`` nest deeper than ``limit`` levels, counting
    ``base`` levels around it. Stops at the limit, so a cyclic value fails here too."""
    stack: List[Tuple[_Json, int]] = [(value, base)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, (list, tuple)):
            children = item
        else:
            continue
        depth += 1
        if depth > limit:
            raise InvalidMessage(
                "%s nests arrays and objects deeper than %d levels" % (what, limit)
            )
        stack.extend((child, depth) for child in children)


def _dumps(value: _Json, what: str) -> bytes:
    try:
        text = json.dumps(
            value,
            ensure_ascii=False,
            allow_nan=False,
            sort_keys=True,
            separators=(",", ":"),
        )
    except (TypeError, ValueError) as e:
        # json's messages name types, never values.
        raise InvalidMessage("%s is not JSON: %s" % (what, e)) from None
    except RecursionError:
        raise InvalidMessage("%s nests too deeply" % what) from None
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidMessage(
            "%s contains a string that is not valid Unicode (a lone surrogate)" % what
        ) from None


def canonical_json(value: _Json, *, what: str = "the value") -> bytes:
    """The canonical JSON of ``value`` as the SDK measures it (spec/agent-protocol.md,
    "Canonical JSON"): compact, object members sorted, UTF-8, the same string escapes.

    Integers within 64 bits and strings are exactly what the node hashes. Other numbers are
    written the way Python writes floats, which can differ by a few bytes from the node's
    form (``1e16`` here, ``1e+16`` there); integers beyond 64 bits are read by the node as
    doubles. Raises :class:`InvalidMessage` for anything that is not JSON (``NaN``, sets,
    cycles, lone surrogates, nesting deeper than :data:`MAX_NESTING`).
    """
    _check_nesting(value, 0, MAX_NESTING, what)
    return _dumps(value, what)


def encode_message(
    msg_type: str, members: Dict[str, _Json], max_line_bytes: int = MAX_LINE_BYTES
) -> bytes:
    """The line (without LF) for a message of ``msg_type`` with ``members``.

    Raises :class:`InvalidMessage` if it is not JSON or nests too deeply, and
    :class:`MessageTooLarge` if the line is longer than ``max_line_bytes``.
    """
    what = "the %s message" % msg_type
    message = dict(members)
    message["type"] = msg_type
    _check_nesting(message, 0, MAX_NESTING, what)
    line = _dumps(message, what)
    if len(line) > max_line_bytes:
        raise MessageTooLarge(
            "%s is %d bytes; the line limit is %d" % (what, len(line), max_line_bytes),
            size=len(line),
            limit=max_line_bytes,
        )
    return line


def parse_node_line(raw: bytes) -> Optional[Dict[str, Any]]:
    """A line from the node as a message object; ``None`` for a blank line (ignored by the
    protocol). Raises :class:`ValueError` (without quoting the line) when it is not a JSON
    object with a string ``type``."""
    if not raw.strip():
        return None
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise ValueError("not valid JSON") from None
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")
    if not isinstance(value.get("type"), str):
        raise ValueError('no string "type"')
    return value
