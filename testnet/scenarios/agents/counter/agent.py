"""counter: a slow, deterministic agent for fault scenarios (souk-testnet run).

Counts `steps` steps of `step_ms` each, recording one decision and one checkpoint per step,
then reports `{"counted": steps, "sum": 0 + 1 + ... + steps-1}`. With `ask_at: k` it asks its
client a question after step k (`{"go": true}` continues, anything else ends in an error) and
waits for the answer however long it takes (the long-hire scenario). Speaks
spec/agent-protocol.md directly (standard library only). Resumed from a checkpoint after its provider restarts, it
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
ask_at = job.get("ask_at")
state = start.get("checkpoint") or {"next": 0, "sum": 0}
for i in range(state["next"], steps):
    if i == ask_at and not state.get("answered"):
        send("question", question={
            "text": "Counted %d so far; go on?" % i,
            "answer_schema": {"type": "object", "required": ["go"],
                              "properties": {"go": {"type": "boolean"}}},
        })
        line = sys.stdin.readline()
        msg = json.loads(line) if line.strip() else {}
        if msg.get("type") != "answer":
            sys.exit(0)
        if not (msg.get("answer") or {}).get("go"):
            send("error", message="the client said stop")
            sys.exit(0)
        state = dict(state, answered=True)
        send("checkpoint", state=state)
    time.sleep(step_ms / 1000.0)
    send("decision", text="count %d" % i)
    state = dict(state, next=i + 1, sum=state["sum"] + i)
    send("checkpoint", state=state)
send("result", output={"counted": steps, "sum": state["sum"]})
