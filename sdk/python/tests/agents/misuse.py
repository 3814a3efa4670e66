"""Breaks the conversation rules on purpose; the SDK refuses, the agent reports what it
caught."""

import sys
from typing import Any, Callable, List

from souk_agent import Agent, Context, InvalidMessage, ProtocolError


class Misuse(Agent):
    def run(self, ctx: Context, input: Any) -> None:
        caught: List[str] = []
        answer = ctx.ask({"text": "go?"})
        bad_calls: List[Callable[[], Any]] = [
            lambda: ctx.checkpoint(None),
            lambda: ctx.decision(3),  # type: ignore[arg-type]
            lambda: ctx.tool_call("", {}),
            lambda: ctx.tool_call("t" * 513, {}),
            lambda: ctx.ask(None),
            lambda: ctx.ask(["a list"], {"type": "string"}),
            lambda: ctx.checkpoint({"nan": float("nan")}),
        ]
        for bad in bad_calls:
            try:
                bad()
            except InvalidMessage as e:
                caught.append(str(e))
        for i in range(10):
            try:
                ctx.note("n%d" % i)
            except ProtocolError as e:
                caught.append(str(e))
                break
        ctx.result({"answer": answer, "caught": caught})
        try:
            ctx.note("after the result")
        except ProtocolError as e:
            sys.stderr.write("after result: %s\n" % e)
        return None


if __name__ == "__main__":
    Misuse(max_messages=8).main()
