"""Asks for a CSV (with an answer schema) and reports what it got."""

import sys
from typing import Any, Dict

from souk_agent import AgentError, Cancelled, Context, agent

SCHEMA = {"type": "object", "required": ["csv"], "properties": {"csv": {"type": "string"}}}


@agent
def run(ctx: Context, input: Any) -> Dict[str, Any]:
    if ctx.resumed and "csv" in ctx.resumed_state:
        csv = ctx.resumed_state["csv"]
    else:
        ctx.decision("no CSV in the input; asking for one")
        try:
            answer = ctx.ask("Please send the CSV", SCHEMA)
        except Cancelled as e:
            sys.stderr.write("canceled while asking: %s\n" % e.reason)
            raise
        if not isinstance(answer, dict) or not isinstance(answer.get("csv"), str):
            raise AgentError('the answer must be {"csv": text}')
        csv = answer["csv"]
        ctx.checkpoint({"csv": csv})
    rows = [line for line in csv.splitlines() if line.strip()]
    count = ctx.ask({"text": "How many rows to keep?"}, {"type": "integer", "minimum": 1})
    return {"rows": len(rows), "keep": count}


if __name__ == "__main__":
    run.main()
