"""counter: a slow, deterministic agent for fault scenarios (souk-testnet run).

Counts `steps` steps of `step_ms` each, recording one decision and one checkpoint per step,
then reports `{"counted": steps, "sum": 0 + 1 + ... + steps-1}`. Speaks spec/agent-protocol.md
directly (standard library only). Resumed from a checkpoint after its provider restarts, it
continues where the checkpoint says, so a completed chain has the same steps as an
uninterrupted run (up to the replays the spec allows after a crash).
"""
import json
import sys
import time


def send(kind, **fields):
    fields["type"] = kind
    sys.stdout.write(json.dumps(fields, sort_keys=True) + "\n")
    sys.stdout.flush()


start = json.loads(sys.stdin.readline())
job = start.get("input") or {}
steps = int(job.get("steps", 10))
step_ms = int(job.get("step_ms", 100))
state = start.get("checkpoint") or {"next": 0, "sum": 0}
for i in range(state["next"], steps):
    time.sleep(step_ms / 1000.0)
    send("decision", text="count %d" % i)
    state = {"next": i + 1, "sum": state["sum"] + i}
    send("checkpoint", state=state)
send("result", output={"counted": steps, "sum": state["sum"]})
