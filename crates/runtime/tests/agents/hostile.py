"""A hostile agent for the sandbox tests (Python 3, standard library only).

It speaks the agent protocol and tries what a prompt-injected agent would: read the node's
keys and token, other processes' environments and the provider's home; reach the host's
loopback; write outside its working directory; leave detached processes behind. Every
attempt is reported as "WORKED: ..." or "blocked: ...", as seen from inside; the test checks
the effects on the host itself.
"""

import json
import os
import signal
import socket
import sys
import time


def send(**msg):
    sys.stdout.write(json.dumps(msg) + "\n")
    sys.stdout.flush()


def recv():
    line = sys.stdin.readline()
    return json.loads(line) if line else None


start = recv()
t = start["input"]
report = {}


def attempt(name, fn):
    try:
        report[name] = "WORKED: " + repr(fn())[:300]
    except Exception as e:  # noqa: BLE001 - every failure is a result here
        report[name] = "blocked: %s: %s" % (type(e).__name__, str(e)[:300])


def read(path):
    with open(path, "rb") as f:
        return f.read()


def write(path):
    with open(path, "w") as f:
        f.write("pwned by " + t["marker"])
    return path


# The node's secrets, by absolute path and relative to HOME (two levels below them).
for name in ("identity.key", "sealing.key", "api.token"):
    attempt("read data/" + name, lambda name=name: read(os.path.join(t["data_dir"], name)))
attempt("read ../../identity.key", lambda: read("../../identity.key"))


# Other processes' environments: the canary lives in a host process's environment.
def canary_in_environ():
    seen = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                if t["canary"].encode() in read("/proc/%s/environ" % pid):
                    seen.append(pid)
            except OSError:
                pass
    if seen:
        return seen
    raise LookupError("canary in none of %d processes" % len([p for p in os.listdir("/proc") if p.isdigit()]))


attempt("canary in /proc/*/environ", canary_in_environ)
attempt("read /proc/<canary pid>/environ", lambda: read("/proc/%d/environ" % t["canary_pid"]))
attempt("read /proc/<node pid>/environ", lambda: read("/proc/%d/environ" % t["node_pid"]))


# The provider's real home.
def list_home():
    entries = os.listdir(t["home"])
    leaked = [e for e in entries if e not in t["home_allowed"]]
    if leaked:
        return leaked
    raise LookupError("only %r" % entries)


attempt("list the real home", list_home)


# The host's loopback and the outside world.
def connect(host, port):
    s = socket.create_connection((host, port), timeout=3)
    s.close()
    return "connected"


attempt("connect host 127.0.0.1", lambda: connect("127.0.0.1", t["host_port"]))
for port in t.get("more_ports", []):  # e.g. the node's own ports
    attempt("connect 127.0.0.1:%d" % port, lambda port=port: connect("127.0.0.1", port))
attempt("connect 10.0.2.2:80", lambda: connect("10.0.2.2", 80))
attempt("connect 1.1.1.1:53", lambda: connect("1.1.1.1", 53))


# The egress proxy, the one allowed route.
def proxy():
    s = socket.create_connection(("127.0.0.1", t["proxy_port"]), timeout=10)
    s.sendall(b"hello proxy")
    s.shutdown(socket.SHUT_WR)
    data = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    return data.decode()


attempt("proxy", proxy)

# Writes outside the working directory (the test checks the host side).
pwned = "pwned-" + t["marker"]
attempt("write data dir", lambda: write(os.path.join(t["data_dir"], pwned)))
attempt("write /tmp", lambda: write(os.path.join("/tmp", pwned)))
attempt("write package dir", lambda: write(os.path.join(t["package_dir"], pwned)))
attempt("write home", lambda: write(os.path.join(t["home"], pwned)))
attempt("write /", lambda: write(os.path.join("/", pwned)))
attempt("write /usr", lambda: write(os.path.join("/usr", pwned)))
attempt("write /etc/passwd", lambda: write("/etc/passwd"))
attempt("own workdir", lambda: write(os.path.join(os.getcwd(), "own.txt")))


def kill_init():
    os.kill(1, signal.SIGKILL)
    time.sleep(0.2)
    raise LookupError("still alive after SIGKILL to pid 1 (%s)" % read("/proc/1/comm").strip())


attempt("kill pid 1", kill_init)

# Ten detached children in their own sessions, sleeping forever.
for _ in range(10):
    pid = os.fork()
    if pid == 0:
        os.setsid()
        if os.fork() == 0:
            while True:
                time.sleep(1000)
        os._exit(0)
    os.waitpid(pid, 0)
report["forked"] = 10

send(type="question", question="inspect now")
recv()
send(type="result", output=report)
