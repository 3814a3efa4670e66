"""Fails in the way the input's "how" says."""

import sys
from typing import Any

from souk_agent import AgentError, Context, MessageTooLarge, agent


@agent(max_line_bytes=2 * 1024 * 1024)
def big_lines(ctx: Context, input: Any) -> Any:
    return {"blob": "x" * (1024 * 1024 + 1)}


@agent
def run(ctx: Context, input: Any) -> Any:
    how = input["how"]
    ctx.note("about to fail: %s" % how)
    if how == "agent-error":
        raise AgentError("the delimiter must be one character")
    if how == "crash":
        secret = input["secret"]
        raise KeyError("no column %s" % secret)
    if how == "explicit-error":
        ctx.error("é" * 400)  # 800 bytes: cut to 512
        return None
    if how == "line-too-long":
        return {"blob": "x" * (600 * 1024)}
    if how == "not-json":
        return {"a set": {1, 2}}
    if how == "nan":
        return float("nan")
    if how == "note-too-large":
        try:
            ctx.note("y" * (512 * 1024))
        except MessageTooLarge as e:
            ctx.note("refused: %d > %d" % (e.size, e.limit))
        return {"ok": True}
    raise AssertionError(how)


if __name__ == "__main__":
    (big_lines if sys.argv[1:] == ["big"] else run).main()
