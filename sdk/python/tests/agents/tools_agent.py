"""Every way to record a tool call."""

from typing import Any, Dict, List

from souk_agent import Context, agent, tool


@tool("word-count")
def word_count(text: str, *, lower: bool = True) -> Dict[str, int]:
    counts: Dict[str, int] = {}
    for word in text.split():
        key = word.lower() if lower else word
        counts[key] = counts.get(key, 0) + 1
    return counts


@tool
def divide_numbers(a: float, b: float) -> float:
    return a / b


class Store:
    def __init__(self) -> None:
        self.items: List[str] = []

    @tool("store-add")
    def add(self, item: str) -> int:
        self.items.append(item)
        return len(self.items)


@agent
def run(ctx: Context, input: Any) -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    out["counts"] = word_count("a B b")

    @ctx.tool_call("shout")
    def shout(text: str, times: int = 2) -> str:
        return "!".join([text.upper()] * times)

    out["shout"] = shout("hey")

    with ctx.tool_call("lookup", {"key": "k"}) as call:
        call.args = {"key": "k", "fallback": True}  # args can be replaced in the block
        call.result = {"value": 42}

    with ctx.tool_call("no-result", [1, 2]):
        pass

    try:
        with ctx.tool_call("explode", {"n": 1}):
            raise RuntimeError("secret detail")
    except RuntimeError:
        out["explode"] = "caught"

    try:
        divide_numbers(1, 0)
    except ZeroDivisionError:
        out["divide"] = "caught"

    out["store"] = Store().add("x")
    ctx.record_tool_call("already-done", {"q": 1}, [1, 2, 3])
    out["outside-run"] = "n/a"
    return out


if __name__ == "__main__":
    run.main()
