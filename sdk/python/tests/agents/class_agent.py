"""An agent as a class, with its own state."""

from typing import Any

from souk_agent import Agent, Context


class Echo(Agent):
    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix

    def run(self, ctx: Context, input: Any) -> Any:
        ctx.decision("echoing")
        return {"echo": self.prefix + str(input)}


if __name__ == "__main__":
    Echo("got: ").main()
