"""Sums numbered items, one recorded tool call and one checkpoint per item; resumes from
the last checkpoint."""

from typing import Any, Dict

from souk_agent import Context, agent


@agent
def run(ctx: Context, input: Dict[str, Any]) -> Dict[str, Any]:
    state = ctx.resumed_state or {"done": 0, "total": 0}
    items = input["items"]
    if ctx.resumed:
        ctx.decision("resuming after %d of %d items" % (state["done"], len(items)))
    else:
        ctx.decision("summing %d items" % len(items))
    for i in range(state["done"], len(items)):
        with ctx.tool_call("square", {"x": items[i]}) as call:
            call.result = items[i] * items[i]
        state = {"done": i + 1, "total": state["total"] + call.result}
        ctx.checkpoint(state)
    ctx.note("all done")
    return {"count": len(items), "sum_of_squares": state["total"], "hire": ctx.hire_id[:8]}


if __name__ == "__main__":
    run.main()
