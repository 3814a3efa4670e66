#!/usr/bin/env python3
"""csv-analyst: a Souk example agent (Python 3, standard library only).

Speaks the agent protocol (spec/agent-protocol.md): one JSON object per line on stdin and
stdout. Input {"csv": text, "delimiter"?: one character}. For every column it reports a
"column-stats" tool call with {count, numeric, mean, min, max, distinct} and saves a
checkpoint, so a resumed run skips the columns already done. With no CSV (or one without a
header row) it asks the client for one. Output {rows, columns, summary}.
"""
import csv
import io
import json
import math
import os
import queue
import sys
import threading

MAX_QUESTIONS = 3
inbox = queue.Queue()


def send(msg_type, **fields):
    """Write one protocol message (a single line) and flush it."""
    fields["type"] = msg_type
    sys.stdout.write(json.dumps(fields, allow_nan=False, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def read_stdin():
    """Background reader: queue node messages; on "cancel", stop at once."""
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            msg = json.loads(line)
        except ValueError:
            break  # the node never sends bad JSON; give up on input
        if msg.get("type") == "cancel":
            sys.stderr.write("canceled: %s\n" % msg.get("reason", ""))
            os._exit(0)
        inbox.put(msg)
    inbox.put(None)  # end of input


def receive(expected):
    msg = inbox.get()
    if msg is None or msg.get("type") != expected:
        raise SystemExit("expected a %r message from the node, got %r" % (expected, msg))
    return msg


class BadInput(Exception):
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


def analyse(job, checkpoint):
    if not isinstance(job, dict):
        raise BadInput("the input must be a JSON object")
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
        send("question", question={
            "text": "Please send the CSV to analyse, with a header row first.",
            "answer_schema": {"type": "object", "required": ["csv"], "properties": {"csv": {"type": "string"}}},
        })
        answer = receive("answer")["answer"]
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
    send("decision", text="%d rows, %d columns; computing stats%s" % (len(rows), len(header), note))
    for i, name in enumerate(header):
        if name in done:
            continue
        result = column_stats([row[i] for row in rows])
        send("tool_call", tool="column-stats", args={"column": name}, result=result)
        done.append(name)
        stats[name] = result
        state = {"done": done, "stats": stats}
        if asked:
            state["csv"] = text  # the CSV came in an answer: a resumed run needs it too
        send("checkpoint", state=state)
    columns = [dict(name=name, **stats[name]) for name in header]
    return {"rows": len(rows), "columns": columns, "summary": summarize(len(rows), columns)}


def main():
    threading.Thread(target=read_stdin, daemon=True).start()
    start = receive("start")
    try:
        output = analyse(start.get("input"), start.get("checkpoint") or {})
    except BadInput as e:
        send("error", message=str(e))
        return
    send("result", output=output)


if __name__ == "__main__":
    main()
