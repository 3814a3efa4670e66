#!/usr/bin/env python3
"""csv-analyst: a Souk example agent, written on the Python SDK (sdk/python, `souk-agent`).

Input {"csv": text, "delimiter"?: one character}. For every column it records a
"column-stats" tool call with {count, numeric, mean, min, max, distinct} and saves a
checkpoint, so a resumed run skips the columns already done. With no CSV (or one without a
header row) it asks the client for one. Output {rows, columns, summary}.

The SDK is not copied here: agent.toml lists it in `run.include`, so the node hashes it into
the manifest's runtime digest, binds it read-only into the sandbox and names it in
SOUK_INCLUDE. Run by hand, the agent finds it next to this repository's examples.
"""
import csv
import io
import math
import os
import sys

sys.path[:0] = [d for d in os.environ.get("SOUK_INCLUDE", "").split(os.pathsep) if d] or [
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "sdk", "python", "src")
]

from souk_agent import AgentError, Context, agent  # noqa: E402

MAX_QUESTIONS = 3
ANSWER_SCHEMA = {"type": "object", "required": ["csv"], "properties": {"csv": {"type": "string"}}}


class BadInput(AgentError):
    """The input cannot be analysed; reported with an "error" message."""


def number(text):
    """The cell as a finite float, or None if it is not a number."""
    try:
        x = float(text)
    except ValueError:
        return None
    return x if math.isfinite(x) else None


def tidy(x):
    """Whole floats as ints, for readable JSON (3 rather than 3.0)."""
    return int(x) if isinstance(x, float) and x.is_integer() and abs(x) < 2**53 else x


def parse(text, delimiter):
    """The header and data rows; None if there is no header row to speak of."""
    try:
        rows = [r for r in csv.reader(io.StringIO(text), delimiter=delimiter) if any(c.strip() for c in r)]
    except csv.Error as e:
        raise BadInput("cannot parse the CSV: %s" % e)
    if not rows or all(number(c) is not None or not c.strip() for c in rows[0]):
        return None  # empty, or the first row looks like data
    header = [c.strip() for c in rows[0]]
    if "" in header or len(set(header)) != len(header):
        raise BadInput("column names must be non-empty and unique")
    for i, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise BadInput("row %d has %d fields, expected %d" % (i, len(row), len(header)))
    return header, rows[1:]


def column_stats(values):
    cells = [v.strip() for v in values if v.strip()]
    nums = [number(v) for v in cells]
    numeric = bool(cells) and all(n is not None for n in nums)
    stats = {"count": len(cells), "numeric": numeric, "distinct": len(set(cells))}
    if numeric:
        try:
            mean = math.fsum(nums) / len(nums)
        except OverflowError:
            mean = None
        stats.update(
            mean=round(mean, 6) if mean is not None and math.isfinite(mean) else None,
            min=tidy(min(nums)),
            max=tidy(max(nums)),
        )
    else:
        stats.update(mean=None, min=min(cells) if cells else None, max=max(cells) if cells else None)
    return stats


def summarize(rows, columns):
    parts = []
    for c in columns:
        if c["numeric"]:
            parts.append("%s: numeric, mean %s (min %s, max %s)" % (c["name"], c["mean"], c["min"], c["max"]))
        else:
            parts.append("%s: text, %d distinct values" % (c["name"], c["distinct"]))
    return "%d rows x %d columns. %s." % (rows, len(columns), "; ".join(parts))


@agent
def run(ctx: Context, job: object) -> dict:
    if not isinstance(job, dict):
        raise BadInput("the input must be a JSON object")
    checkpoint = ctx.resumed_state or {}
    delimiter = job.get("delimiter", ",")
    if not isinstance(delimiter, str) or len(delimiter) != 1:
        raise BadInput("delimiter must be a single character")
    text = checkpoint.get("csv", job.get("csv", ""))
    if not isinstance(text, str):
        raise BadInput("csv must be a string")
    asked = False
    table = parse(text, delimiter)
    for _ in range(MAX_QUESTIONS):
        if table is not None:
            break
        answer = ctx.ask("Please send the CSV to analyse, with a header row first.", ANSWER_SCHEMA)
        text = answer.get("csv") if isinstance(answer, dict) else None
        if not isinstance(text, str):
            raise BadInput("the answer must be {\"csv\": text}")
        asked = True
        table = parse(text, delimiter)
    if table is None:
        raise BadInput("no CSV with a header row after %d questions" % MAX_QUESTIONS)
    header, rows = table

    stats = checkpoint.get("stats", {})
    done = [name for name in checkpoint.get("done", []) if name in stats]
    note = "; resuming with %d already done" % len(done) if done else ""
    ctx.decision("%d rows, %d columns; computing stats%s" % (len(rows), len(header), note))
    for i, name in enumerate(header):
        if name in done:
            continue
        result = column_stats([row[i] for row in rows])
        ctx.record_tool_call("column-stats", {"column": name}, result)
        done.append(name)
        stats[name] = result
        state = {"done": done, "stats": stats}
        if asked:
            state["csv"] = text  # the CSV came in an answer: a resumed run needs it too
        ctx.checkpoint(state)
    columns = [dict(name=name, **stats[name]) for name in header]
    return {"rows": len(rows), "columns": columns, "summary": summarize(len(rows), columns)}


if __name__ == "__main__":
    run.main()
