"""The wire format: canonical JSON, limits, and parsing the node's lines (in process)."""

import json
from typing import Any

import pytest

from souk_agent import InvalidMessage, MessageTooLarge, canonical_json, tool
from souk_agent.wire import MAX_NESTING, encode_message, parse_node_line, truncate_utf8


def test_canonical_json_matches_the_spec_examples() -> None:
    assert canonical_json({"done": ["city"]}) == b'{"done":["city"]}'
    assert canonical_json({"summary": "ok", "rows": 2}) == b'{"rows":2,"summary":"ok"}'
    assert canonical_json(1e15) == b"1000000000000000.0"


def test_canonical_strings() -> None:
    text = '"\\\b\t\n\f\r\x00\x1f/\x7fé€😀'
    assert canonical_json(text) == '"\\"\\\\\\b\\t\\n\\f\\r\\u0000\\u001f/\x7fé€😀"'.encode()
    # Members sorted by the UTF-8 bytes of their names.
    assert canonical_json({"é": 1, "z": 2, "A": 3}) == '{"A":3,"z":2,"é":1}'.encode()


@pytest.mark.parametrize(
    "value, reason",
    [
        (float("nan"), "is not JSON: Out of range float values"),
        (float("inf"), "is not JSON: Out of range float values"),
        ({1, 2}, "is not JSON: Object of type set is not JSON serializable"),
        ("\ud800", "not valid Unicode"),
    ],
)
def test_values_that_are_not_json(value: Any, reason: str) -> None:
    with pytest.raises(InvalidMessage, match=reason):
        canonical_json(value)


def test_nesting_limit_is_the_node_parsers() -> None:
    def nested(levels: int) -> Any:
        value: Any = 0
        for _ in range(levels):
            value = [value]
        return value

    # The message object is one level: its output may nest MAX_NESTING - 1 levels.
    line = encode_message("result", {"output": nested(MAX_NESTING - 1)})
    assert line.count(b"[") == MAX_NESTING - 1
    with pytest.raises(InvalidMessage, match="deeper than 127 levels"):
        encode_message("result", {"output": nested(MAX_NESTING)})
    cyclic: Any = []
    cyclic.append(cyclic)
    with pytest.raises(InvalidMessage, match="deeper than"):
        encode_message("checkpoint", {"state": cyclic})


def test_line_limit_counts_bytes_without_lf() -> None:
    overhead = len(b'{"text":"","type":"note"}')
    line = encode_message("note", {"text": "é" * 50}, max_line_bytes=overhead + 100)
    assert len(line) == overhead + 100
    assert json.loads(line) == {"type": "note", "text": "é" * 50}
    with pytest.raises(MessageTooLarge) as info:
        encode_message("note", {"text": "é" * 50 + "x"}, max_line_bytes=overhead + 100)
    assert (info.value.size, info.value.limit) == (overhead + 101, overhead + 100)
    assert str(info.value) == "the note message is %d bytes; the line limit is %d" % (
        overhead + 101,
        overhead + 100,
    )


def test_truncate_utf8_on_character_boundaries() -> None:
    assert truncate_utf8("short", 512) == "short"
    assert truncate_utf8("é" * 400, 512) == "é" * 256
    assert truncate_utf8("a" + "é" * 400, 512) == "a" + "é" * 255
    assert truncate_utf8("😀😀", 7) == "😀"


def test_parse_node_line() -> None:
    assert parse_node_line(b"  \r\n") is None
    assert parse_node_line(b'{"type":"cancel","reason":"x"}\r\n') == {
        "type": "cancel",
        "reason": "x",
    }
    for bad, why in [
        (b"nope", "not valid JSON"),
        (b"[1]", "not a JSON object"),
        (b'{"type":1}', "no string"),
        (b"\xff\n", "not valid JSON"),
        (b"[" * 100000, "not valid JSON"),
    ]:
        with pytest.raises(ValueError, match=why):
            parse_node_line(bad)


def test_tool_decorator_outside_a_run_just_calls() -> None:
    @tool("adder")
    def add(a: int, b: int) -> int:
        return a + b

    assert add(2, 3) == 5
    assert add.__name__ == "add"
    with pytest.raises(InvalidMessage):
        tool("")
