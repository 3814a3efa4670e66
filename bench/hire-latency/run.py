#!/usr/bin/env python3
"""Hire latency, Souk against the A2A SDK, measured side by side in one run (issue #14).

Variants (N sequential round trips each, after a warm-up):
  souk-cold    a trivial Python echo agent hired from a provider node by a light client node,
               both real `souk` processes on loopback: the client's `POST /v1/hires?wait_ms=`
               to its answer with the output (one call; if the hire has not ended with its
               output by then, receipts long-polled until `completed`, then `GET .../output`);
               The agent file is the default one: no warm process, two prepared sandboxes
               (`run.prepared`: the node makes them ahead; the interpreter starts in one
               when the provider makes its offer);
  souk-bare    the same agent with `[run] prepared = 0`: the sandbox is made for the hire
               (from a standby sandbox, `standby_sandboxes`);
  souk-warm    the same agent with `[run] warm = 2`: interpreters started ahead;
  a2a-inproc   a2a-sdk server (uvicorn) with an in-process echo executor, a2a-sdk client,
               non-streaming blocking `message/send` to the completed task;
  a2a-process  the same server whose executor runs a fresh `python3 -c ...` per task.

Prints a Markdown table (p50/p90/p99/mean in ms) and the two ratios of the goal with
PASS/FAIL; `--out FILE` also writes them as JSON. See README.md.
"""

import argparse
import asyncio
import http.client
import json
import os
import platform
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
VARIANTS = ["souk-cold", "souk-bare", "souk-warm", "a2a-inproc", "a2a-process"]
SOUK_VARIANTS = ["souk-cold", "souk-bare", "souk-warm"]
# (numerator, denominator, limit, what the issue asks)
GOALS = [
    ("souk-warm", "a2a-inproc", 2.0, "Souk with warm starts vs the in-process A2A agent"),
    ("souk-cold", "a2a-process", 1.0, "Souk without warm starts vs A2A with a process per task"),
]
DEADLINE_S = 60.0  # setup waits (the machine is shared: generous)
HIRE_DEADLINE_S = 30.0  # one round trip
OUTPUT_GRACE_S = 30.0  # a completed hire's output may trail its `completed` entry
TERMINAL = {"completed", "failed", "canceled", "rejected", "expired"}
WARM_SLOTS = 2
# Prepared sandboxes the provider keeps when all pools are full: two (the node's default,
# `run.prepared`) for each of souk-cold's and souk-warm's agents; souk-bare's has none.
PREPARED_FULL = 2 * 2

# The agent: writes when it started and its HOME (the slot directory of a sandbox made ahead
# of the hire, `.warm/<slot>`, else the hire's) into its working directory, where the
# benchmark reads it after the hire, then echoes the start line's input.
AGENT_PY = """import json, os, sys, time
with open("booted", "w") as f:
    f.write("%.6f %s" % (time.time(), os.environ.get("HOME", "")))
start = json.loads(sys.stdin.readline())
sys.stdout.write(json.dumps({"type": "result", "output": {"echo": start["input"]}}) + "\\n")
sys.stdout.flush()
"""

AGENT_TOML = """name = "{name}"
description = "Echoes its input (hire latency benchmark, {kind} start)."
capabilities = ["benchmark"]
input_schema = {{ type = "object" }}
output_schema = {{ type = "object" }}
hosts = []

[pricing]
currency = "USD"
per_hire = "0.01"
per_hour = "0"

[limits]
max_duration_secs = 60
max_concurrency = 4
max_input_bytes = 4096

[run]
command = ["python3", "agent.py"]
{warm}"""


class BenchError(Exception):
    """The benchmark cannot go on; the message says why (and where to look)."""


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def wait_for(what: str, check, deadline_s: float = DEADLINE_S, poll_s: float = 0.025):
    """Polls `check` until it returns something other than None; BenchError after the deadline."""
    give_up = time.monotonic() + deadline_s
    while True:
        value = check()
        if value is not None:
            return value
        if time.monotonic() > give_up:
            raise BenchError("timed out after %.0f s waiting for %s" % (deadline_s, what))
        time.sleep(poll_s)


def tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(text[-lines:])


# ---------------------------------------------------------------------------------------------
# Child processes


class Children:
    """Every long-running process the benchmark starts, each in its own session (so a Ctrl-C
    reaches only the benchmark, which then stops them in order)."""

    def __init__(self):
        self.procs: list[tuple[str, subprocess.Popen, Path]] = []

    def spawn(self, name: str, argv: list[str], log_path: Path, env=None, stdout=None):
        err = open(log_path, "wb")
        try:
            p = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=stdout if stdout is not None else subprocess.DEVNULL,
                stderr=err,
                env=env,
                start_new_session=True,
            )
        finally:
            err.close()
        self.procs.append((name, p, log_path))
        return p

    def check_running(self, p: subprocess.Popen) -> None:
        if p.poll() is None:
            return
        for name, q, log_path in self.procs:
            if q is p:
                raise BenchError(
                    "%s exited early (status %s); its log %s ends:\n%s"
                    % (name, p.returncode, log_path, tail(log_path))
                )
        raise BenchError("a child exited early (status %s)" % p.returncode)

    def stop(self, p: subprocess.Popen, timeout_s: float = 15.0) -> None:
        """SIGTERM, then SIGKILL after `timeout_s`; then whatever is left of its process group
        (the processes it started) is killed."""
        if p.poll() is None:
            try:
                p.send_signal(signal.SIGTERM)
                p.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if p.stdout is not None:
            p.stdout.close()
        self.procs = [t for t in self.procs if t[1] is not p]

    def stop_all(self) -> None:
        for _, p, _ in reversed(list(self.procs)):
            self.stop(p)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------------------------
# Souk


class SoukApi:
    """One node's local API over one keep-alive HTTP connection."""

    def __init__(self, data_dir: Path):
        host, _, port = (data_dir / "api.addr").read_text().strip().rpartition(":")
        self.host, self.port = host.strip("[]"), int(port)
        token = (data_dir / "api.token").read_text().strip()
        self.headers = {"Authorization": "Bearer " + token, "Accept": "application/json"}
        self.conn = None

    def _connect(self):
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=HIRE_DEADLINE_S)
        self.conn.connect()
        self.conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def call(self, method: str, path: str, body=None):
        """(status, parsed JSON body or text). A GET whose kept-alive connection was closed
        under it is retried once on a new connection; a POST never is."""
        payload = None if body is None else json.dumps(body).encode()
        headers = dict(self.headers)
        if payload is not None:
            headers["Content-Type"] = "application/json"
        for attempt in (0, 1):
            fresh = self.conn is None
            if fresh:
                self._connect()
            try:
                self.conn.request(method, path, body=payload, headers=headers)
                resp = self.conn.getresponse()
                data = resp.read()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.close()
                if fresh or method != "GET" or attempt == 1:
                    raise
        try:
            return resp.status, json.loads(data)
        except ValueError:
            return resp.status, data.decode(errors="replace")

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def souk_env(rust_log: str | None) -> dict:
    env = dict(os.environ)
    env.pop("SOUK_HOME", None)
    env.pop("RUST_LOG", None)
    env["RUST_BACKTRACE"] = "1"
    if rust_log:
        env["RUST_LOG"] = rust_log
    return env


class SoukNet:
    """A provider (full node) and a light client on loopback, with the two echo agents
    published on the provider and found by the client."""

    def __init__(self, souk: Path, root: Path, children: Children, rust_log: str | None):
        self.souk, self.root, self.children = souk, root, children
        self.env = souk_env(rust_log)
        self.pdir, self.cdir = root / "provider", root / "client"
        self.work = Path(str(self.pdir) + "-work")
        self.provider = self.client = None
        self.mids: dict[str, str] = {}
        self.metrics_url: str | None = None

    def cli(self, data_dir: Path, *args: str) -> str:
        argv = [str(self.souk), "--data-dir", str(data_dir), *args]
        try:
            out = subprocess.run(
                argv,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                env=souk_env(None),
                timeout=DEADLINE_S,
            )
        except subprocess.TimeoutExpired as e:
            raise BenchError("`%s` did not finish in %.0f s" % (" ".join(argv), DEADLINE_S)) from e
        if out.returncode != 0:
            raise BenchError(
                "`%s` failed (%s): %s"
                % (" ".join(argv), out.returncode, out.stderr.decode().strip())
            )
        return out.stdout.decode()

    def start_node(self, name: str, data_dir: Path, args: list[str]):
        p = self.children.spawn(
            name,
            [str(self.souk), "--data-dir", str(data_dir), "node", "run", *args],
            self.root / (name + ".log"),
            env=self.env,
        )

        def api_up():
            self.children.check_running(p)
            try:
                api = SoukApi(data_dir)
            except (OSError, ValueError):
                return None
            try:
                status, info = api.call("GET", "/v1/info")
            except OSError:
                return None
            finally:
                api.close()
            if status == 200 and isinstance(info, dict) and info.get("listen_addrs"):
                return info
            return None

        info = wait_for("node %s to answer /v1/info" % name, api_up)
        return p, info

    def start(self) -> None:
        log("souk: init and start a provider and a light client in %s" % self.root)
        self.cli(self.pdir, "init")
        self.cli(self.cdir, "init", "--light")
        listen = "/ip4/127.0.0.1/tcp/%d" % free_port()
        # The metrics endpoint shows how many sandboxes are ready (`souk_sandboxes_ready`).
        self.provider, info = self.start_node(
            "provider", self.pdir, ["--listen", listen, "--metrics", "127.0.0.1:0"]
        )
        self.metrics_url = info.get("metrics_url")
        if not self.metrics_url:
            raise BenchError("the provider serves no metrics (metrics_url: %r)" % info)
        paddr = "%s/p2p/%s" % (listen, info["peer_id"])
        self.client, _ = self.start_node(
            "client",
            self.cdir,
            ["--light", "--listen", "/ip4/127.0.0.1/tcp/0", "--bootstrap", paddr],
        )

    def publish(self) -> None:
        """Publishes the cold and the warm echo agent (package dirs outside the nodes' data and
        work dirs) and waits until the client finds both."""
        for variant, name, run in [
            ("souk-cold", "bench-echo-cold", ""),
            ("souk-bare", "bench-echo-bare", "prepared = 0\n"),
            ("souk-warm", "bench-echo-warm", "warm = %d\n" % WARM_SLOTS),
        ]:
            kind = variant.split("-")[1]
            pkg = self.root / ("pkg-" + kind)
            pkg.mkdir()
            (pkg / "agent.py").write_text(AGENT_PY)
            (pkg / "agent.toml").write_text(AGENT_TOML.format(name=name, kind=kind, warm=run))
            mid = self.cli(self.pdir, "agent", "publish", str(pkg / "agent.toml")).strip()
            self.mids[variant] = mid
        log("souk: published %s" % ", ".join("%s %s" % (v, m[:12]) for v, m in self.mids.items()))

        def found():
            self.children.check_running(self.client)
            out = self.cli(self.cdir, "search", "latency", "--json")
            return True if all(m in out for m in self.mids.values()) else None

        wait_for("the client to find the agents", found, poll_s=0.1)

    def sandboxes_ready(self) -> dict:
        """`souk_sandboxes_ready` by kind (`warm`, `prepared`), from the provider's metrics."""
        assert self.metrics_url
        u = urllib.parse.urlsplit(self.metrics_url)
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
        try:
            conn.request("GET", u.path)
            text = conn.getresponse().read().decode()
        finally:
            conn.close()
        ready = {}
        for line in text.splitlines():
            if line.startswith("souk_sandboxes_ready{"):
                series, _, value = line.rpartition(" ")
                kind = series.split('kind="', 1)[1].split('"', 1)[0]
                ready[kind] = int(float(value))
        return ready

    def booted_slots(self) -> int:
        """Warm processes whose interpreter has booted: their agent wrote its `booted` marker
        in its slot directory (the node counts a warm process ready once it let it start)."""
        try:
            slots = list((self.work / ".warm").iterdir())
        except OSError:
            return 0
        return sum(1 for s in slots if (s / "booted").exists())

    def wait_pools(self) -> None:
        """Until the provider's warm processes have booted and its prepared sandboxes are made
        (all of them: nothing is being made beside the next hire)."""

        def full():
            self.children.check_running(self.provider)
            if self.booted_slots() < WARM_SLOTS:
                return None
            r = self.sandboxes_ready()
            return True if r.get("prepared", 0) >= PREPARED_FULL else None

        wait_for(
            "%d warm processes and %d prepared sandboxes" % (WARM_SLOTS, PREPARED_FULL), full, poll_s=0.01
        )

    def started_how(self, hire_id: str, began: float) -> str:
        """How the hire's process started, from what the agent wrote in the hire's working
        directory (read after the round trip, outside the timing): `warm` (before the hire
        began), `prepared` (with the hire, in a sandbox made ahead: its HOME is a `.warm` slot),
        `cold` (with the hire, in a sandbox made for it), `unknown` if it is gone already."""
        try:
            when, _, home = (self.work / hire_id / "booted").read_text().strip().partition(" ")
            if float(when) < began:
                return "warm"
            return "prepared" if "/.warm/" in home else "cold"
        except (OSError, ValueError):
            return "unknown"

    def stop(self) -> None:
        for p in (self.client, self.provider):
            if p is not None:
                self.children.stop(p)
        self.client = self.provider = None


def hire_round_trip(api: SoukApi, mid: str, value) -> tuple[float, str, int]:
    """One hire from `POST /v1/hires` to its output; returns (seconds, hire id, how many times
    the output was asked for before it was there)."""
    t0 = time.perf_counter()
    # One call: the contract, then up to 20 s for the hire to end, with its output.
    status, rec = api.call(
        "POST", "/v1/hires?wait_ms=20000", {"manifest_id": mid, "input": value}
    )
    if status != 201 or not isinstance(rec, dict):
        raise BenchError("POST /v1/hires: %s %s" % (status, rec))
    hid = rec["hire_id"]
    if rec.get("state") == "completed" and "output" in rec:
        elapsed = time.perf_counter() - t0
        if rec["output"] != {"echo": value}:
            raise BenchError("hire %s: output %r, want %r" % (hid, rec["output"], {"echo": value}))
        return elapsed, hid, 0
    # Not ended within the wait, or its output trails: follow it as a long-poll would.
    seen = 0
    while True:
        status, view = api.call("GET", "/v1/hires/%s/receipts?from=%d&wait_ms=20000" % (hid, seen))
        if status != 200 or not isinstance(view, dict):
            raise BenchError("GET receipts of hire %s: %s %s" % (hid, status, view))
        for step in view["steps"]:
            seen = step["seq"] + 1
        r = view["hire"]
        state = r["state"]
        if r.get("closed") or (r.get("error") and state not in TERMINAL):
            raise BenchError("hire %s broke off: %s" % (hid, r))
        if state in TERMINAL and seen >= r["entries"]:
            break
        if time.perf_counter() - t0 > HIRE_DEADLINE_S:
            raise BenchError("hire %s did not end in %.0f s: %s" % (hid, HIRE_DEADLINE_S, r))
    if state != "completed":
        raise BenchError("hire %s ended %s: %s" % (hid, state, r.get("error")))
    misses = 0
    while True:
        status, out = api.call("GET", "/v1/hires/%s/output" % hid)
        if status == 200:
            break
        if status != 404 or time.perf_counter() - t0 > OUTPUT_GRACE_S:
            raise BenchError("GET output of hire %s: %s %s" % (hid, status, out))
        misses += 1
        time.sleep(0.001)
    elapsed = time.perf_counter() - t0
    if out != {"echo": value}:
        raise BenchError("hire %s: output %r, want %r" % (hid, out, {"echo": value}))
    return elapsed, hid, misses


def souk_round(net: SoukNet, variant: str, n: int, warmup: int, pace: bool, acc: dict) -> None:
    """N round trips after the warm-up, added to `acc`. With `pace`, each waits (untimed)
    until the provider's pools are full again, so that every hire finds what its agent keeps
    ready and no sandbox is being made beside it."""
    net.wait_pools()
    api = SoukApi(net.cdir)
    try:
        for i in range(warmup + n):
            if pace:
                net.wait_pools()
            value = input_value(i)
            began = time.time()
            elapsed, hid, missed = hire_round_trip(api, net.mids[variant], value)
            if i >= warmup:
                acc["samples"].append(elapsed)
                acc["how"].append(net.started_how(hid, began))
                acc["misses"] += missed
                # To match a round trip with the nodes' logs (`--keep`).
                acc["hires"].append(
                    {"hire_id": hid, "began_unix": round(began, 6), "started": acc["how"][-1]}
                )
    finally:
        api.close()


def souk_result(acc: dict, pace: bool) -> dict:
    samples, how = acc["samples"], acc["how"]
    by_start = {}
    for kind in sorted(set(how)):
        picked = [s for s, k in zip(samples, how, strict=True) if k == kind]
        by_start[kind] = dict(summarize(picked), n=len(picked))
    return {
        "samples": samples,
        "started": {k: v["n"] for k, v in by_start.items()},
        "by_start": by_start,
        "paced": pace,
        "output_retries": acc["misses"],
        "hires": acc["hires"],
    }


# ---------------------------------------------------------------------------------------------
# A2A


def input_value(i: int) -> dict:
    return {"i": i, "text": "hello"}


def start_a2a_server(children: Children, root: Path, mode: str):
    log_path = root / ("a2a-%s.log" % mode)
    p = children.spawn(
        "a2a-" + mode,
        [sys.executable, str(HERE / "a2a_echo_server.py"), "--mode", mode],
        log_path,
        stdout=subprocess.PIPE,
    )
    give_up = time.monotonic() + DEADLINE_S
    line = b""
    while not line.endswith(b"\n"):
        left = give_up - time.monotonic()
        if left <= 0:
            raise BenchError("the A2A %s server did not start in %.0f s" % (mode, DEADLINE_S))
        ready, _, _ = select.select([p.stdout], [], [], min(left, 0.2))
        if ready:
            chunk = os.read(p.stdout.fileno(), 256)
            if not chunk:
                try:
                    p.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    raise BenchError(
                        "the A2A %s server closed its stdout without saying where it listens" % mode
                    ) from None
                children.check_running(p)
            line += chunk
        else:
            children.check_running(p)
    words = line.decode().split()
    if len(words) != 2 or words[0] != "listening":
        raise BenchError("the A2A %s server said %r" % (mode, line))
    return p, "http://127.0.0.1:%s/" % words[1]


async def a2a_loop(url: str, n: int, warmup: int) -> list[float]:
    import httpx
    from a2a.client import A2ACardResolver, ClientConfig, ClientFactory
    from a2a.types import DataPart, Message, Part, Role, Task, TaskState

    samples = []
    async with httpx.AsyncClient(timeout=HIRE_DEADLINE_S) as http:
        card = await A2ACardResolver(http, url).get_agent_card()
        client = ClientFactory(ClientConfig(streaming=False, httpx_client=http)).create(card)
        for i in range(warmup + n):
            value = input_value(i)
            message = Message(
                role=Role.user,
                message_id=str(uuid.uuid4()),
                parts=[Part(root=DataPart(data=value))],
            )
            t0 = time.perf_counter()
            events = [e async for e in client.send_message(message)]
            elapsed = time.perf_counter() - t0
            if len(events) != 1 or not isinstance(events[0], tuple):
                raise BenchError("A2A send %d: want one task, got %r" % (i, events))
            task = events[0][0]
            if not isinstance(task, Task) or task.status.state != TaskState.completed:
                raise BenchError("A2A send %d: task not completed: %r" % (i, task))
            echoed = [
                p.root.data
                for a in task.artifacts or []
                for p in a.parts
                if isinstance(p.root, DataPart)
            ]
            if echoed != [{"echo": value}]:
                raise BenchError(
                    "A2A send %d: artifacts %r, want the echo of %r" % (i, echoed, value)
                )
            if i >= warmup:
                samples.append(elapsed)
    return samples


# ---------------------------------------------------------------------------------------------
# Figures


def percentile(sorted_s: list[float], p: float) -> float:
    """Nearest rank, as node/benches/hiring.rs: the value at round((n - 1) * p)."""
    i = round((len(sorted_s) - 1) * p)
    return sorted_s[min(i, len(sorted_s) - 1)]


def summarize(samples: list[float]) -> dict:
    s = sorted(samples)
    ms = lambda x: round(x * 1e3, 3)  # noqa: E731
    return {
        "n": len(s),
        "p50_ms": ms(percentile(s, 0.5)),
        "p90_ms": ms(percentile(s, 0.9)),
        "p99_ms": ms(percentile(s, 0.99)),
        "mean_ms": ms(statistics.fmean(s)),
        "min_ms": ms(s[0]),
        "max_ms": ms(s[-1]),
    }


def ratios(stats: dict) -> list[dict]:
    out = []
    for num, den, limit, what in GOALS:
        if num in stats and den in stats:
            r = stats[num]["p50_ms"] / stats[den]["p50_ms"]
            out.append(
                {
                    "ratio": "%s p50 / %s p50" % (num, den),
                    "what": what,
                    "value": round(r, 3),
                    "limit": limit,
                    "pass": r <= limit,
                }
            )
    return out


def report(stats: dict, extra: dict, goals: list[dict], meta: dict) -> str:
    binary = ", %s" % meta["souk"] if meta["souk"] else ""
    lines = [
        "Hire latency, %d round trips per variant after %d warm-up, in %d rounds (%s cores, "
        "load %s at the start, %s at the end%s)"
        % (
            meta["n"],
            meta["warmup"],
            meta["rounds"],
            meta["cpus"],
            meta["loadavg_start"],
            meta["loadavg_end"],
            binary,
        ),
        "",
        "| variant | p50 ms | p90 ms | p99 ms | mean ms |",
        "|---|---:|---:|---:|---:|",
    ]
    for v in VARIANTS:
        if v in stats:
            s = stats[v]
            lines.append(
                "| %s | %.2f | %.2f | %.2f | %.2f |"
                % (v, s["p50_ms"], s["p90_ms"], s["p99_ms"], s["mean_ms"])
            )
    if goals:
        lines += ["", "| goal | value | limit | result |", "|---|---:|---:|---|"]
        for g in goals:
            lines.append(
                "| %s | %.2f | <= %.1f | %s |"
                % (g["ratio"], g["value"], g["limit"], "PASS" if g["pass"] else "FAIL")
            )
    notes = []
    for v in SOUK_VARIANTS:
        if v in extra:
            e = extra[v]
            started = ", ".join(
                "%s %d (p50 %.2f ms)" % (k, b["n"], b["p50_ms"]) for k, b in e["by_start"].items()
            )
            paced = " (each after the pools were full again)" if e["paced"] else ""
            notes.append(
                "%s: agent processes started %s%s; output asked again %d times"
                % (v, started, paced, e["output_retries"])
            )
    if notes:
        lines += [""] + notes
    return "\n".join(lines)


def loadavg() -> str:
    try:
        return " ".join("%.2f" % x for x in os.getloadavg())
    except OSError:
        return "?"


def find_souk(arg: str | None) -> Path:
    path = Path(arg) if arg else REPO / "target" / "release" / "souk"
    if not path.is_file() or not os.access(path, os.X_OK):
        if arg:
            raise BenchError("--souk %s is not an executable file" % path)
        raise BenchError(
            "no souk binary at %s: build it with `cargo build --release -p souk-node` "
            "(or pass --souk PATH)" % path
        )
    return path.resolve()


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description="Hire latency: Souk (cold and warm starts) vs the A2A SDK (in process and "
        "a process per task), side by side on this machine."
    )
    p.add_argument("--souk", help="the souk binary (default: REPO/target/release/souk)")
    p.add_argument("-n", type=int, default=200, help="measured round trips per variant (200)")
    p.add_argument("--warmup", type=int, default=20, help="unmeasured round trips first (20)")
    p.add_argument(
        "--rounds",
        type=int,
        default=4,
        help="split each variant's round trips into this many rounds, the variants taking "
        "turns (4)",
    )
    p.add_argument(
        "--only",
        nargs="+",
        choices=VARIANTS,
        metavar="VARIANT",
        help="run only these variants (%s)" % ", ".join(VARIANTS),
    )
    p.add_argument("--out", help="also write the results as JSON to this file")
    p.add_argument(
        "--log",
        metavar="FILTER",
        help="the nodes' log filter (RUST_LOG syntax; default: the node's own)",
    )
    p.add_argument(
        "--back-to-back",
        action="store_true",
        help="Souk variants: hire back to back instead of waiting (untimed) for the "
        "provider's pools (warm processes, prepared sandboxes) to be full before each hire",
    )
    p.add_argument(
        "--keep",
        action="store_true",
        help="keep the temporary directory (node and server logs) and print its path",
    )
    args = p.parse_args(argv)
    if args.n < 1 or args.warmup < 0 or not 1 <= args.rounds <= args.n:
        p.error("-n must be at least 1, --warmup at least 0, --rounds from 1 to N")
    return args


def run(args) -> int:
    wanted = [v for v in VARIANTS if not args.only or v in args.only]
    souk = find_souk(args.souk) if any(v.startswith("souk") for v in wanted) else None
    if any(v.startswith("a2a") for v in wanted):
        try:
            import a2a  # noqa: F401
            import httpx  # noqa: F401
            import uvicorn  # noqa: F401
        except ImportError as e:
            raise BenchError("the A2A variants need a2a-sdk, httpx and uvicorn: %s" % e) from e
    meta = {
        "n": args.n,
        "warmup": args.warmup,
        "rounds": args.rounds,
        "paced": not args.back_to_back,
        "souk": str(souk) if souk else None,
        "python": platform.python_version(),
        "a2a_sdk": package_version("a2a-sdk"),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "loadavg_start": loadavg(),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    children = Children()
    root = Path(tempfile.mkdtemp(prefix="souk-hire-latency-"))
    results: dict[str, dict] = {}
    pace = not args.back_to_back
    try:
        net = None
        servers: dict[str, tuple] = {}
        if any(v.startswith("souk") for v in wanted):
            net = SoukNet(souk, root, children, args.log)
            net.start()
            net.publish()
        for v in wanted:
            if v.startswith("a2a"):
                servers[v] = start_a2a_server(children, root, v.split("-")[1])
        acc = {v: {"samples": [], "how": [], "misses": 0, "hires": []} for v in wanted}
        # Rounds: every variant runs a share of its round trips in each, in turn, so that a
        # change of the machine's load during the run weighs on all of them alike.
        for r in range(args.rounds):
            for v in wanted:
                count = args.n // args.rounds + (1 if r < args.n % args.rounds else 0)
                warmup = args.warmup if r == 0 else 0
                log("%s: round %d/%d, %d + %d round trips" % (v, r + 1, args.rounds, warmup, count))
                if v.startswith("souk"):
                    souk_round(net, v, count, warmup, pace, acc[v])
                else:
                    p, url = servers[v]
                    acc[v]["samples"] += asyncio.run(a2a_loop(url, count, warmup))
                    children.check_running(p)
        for v in wanted:
            results[v] = souk_result(acc[v], pace) if v.startswith("souk") else {
                "samples": acc[v]["samples"]
            }
    finally:
        if net is not None:
            net.stop()
        children.stop_all()
        if args.keep:
            log("kept %s" % root)
        else:
            shutil.rmtree(root, ignore_errors=True)
    meta["loadavg_end"] = loadavg()
    stats = {v: summarize(r["samples"]) for v, r in results.items()}
    extra = {
        v: {k: x for k, x in r.items() if k not in ("samples", "hires")} for v, r in results.items()
    }
    goals = ratios(stats)
    print(report(stats, extra, goals, meta), flush=True)
    if args.out:
        doc = {
            "meta": meta,
            "variants": {
                v: dict(
                    stats[v],
                    **extra[v],
                    samples_ms=[round(x * 1e3, 3) for x in results[v]["samples"]],
                    **({"hires": results[v]["hires"]} if "hires" in results[v] else {}),
                )
                for v in results
            },
            "goals": goals,
        }
        Path(args.out).write_text(json.dumps(doc, indent=2) + "\n")
        log("wrote %s" % args.out)
    return 0


def package_version(name: str) -> str | None:
    try:
        from importlib.metadata import PackageNotFoundError, version
    except ImportError:
        return None
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def on_sigterm(signum, frame):
    raise KeyboardInterrupt


def main() -> int:
    args = parse_args()
    signal.signal(signal.SIGTERM, on_sigterm)
    try:
        return run(args)
    except BenchError as e:
        log("error: %s" % e)
        return 1
    except KeyboardInterrupt:
        log("interrupted; every process and temporary file was cleaned up")
        return 130


if __name__ == "__main__":
    sys.exit(main())
