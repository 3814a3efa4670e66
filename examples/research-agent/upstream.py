#!/usr/bin/env python3
"""A tiny JSON search API for trying the research agent: canned documents, standard library only.

The contract (every answer is JSON, `content-type: application/json`):

    GET /search?q=TEXT[&limit=N]   200 {"query": TEXT, "results": [{"id", "title", "url",
                                   "snippet"}]}: best matches first, at most N (1..20, default
                                   5); 400 without q
    GET /doc/ID                    200 {"id", "title", "url", "text"}; 404 for an unknown id
    anything else                  404 (405 for a method other than GET)

Started with --token T, every request must carry `authorization: Bearer T`, else 401. On a
Souk node the agent never has T: the node's egress proxy adds it from the client's credential.

    python3 upstream.py --port 8080 [--token T] [--tls-cert cert.pem --tls-key key.pem]

Binds 127.0.0.1; --port 0 picks a free port. The first line on stdout is the port. The node's
egress proxy speaks only TLS to upstreams, so behind a node serve HTTPS: `--make-cert DIR`
writes a local CA (DIR/ca.pem, for the node's `[egress] extra_roots`) and a certificate for
search.example.test signed by it (DIR/cert.pem, DIR/key.pem), with the openssl command.
"""

import argparse
import hmac
import json
import re
import os
import ssl
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Dict, List, Optional, Tuple
from urllib.parse import parse_qs, unquote, urlsplit

DOCS: List[Dict[str, str]] = [
    {"id": "raft", "title": "Raft consensus",
     "text": "Raft is a consensus algorithm for managing a replicated log. A leader is elected "
             "for each term and appends client commands to its log. Followers replicate the "
             "leader's log and a command commits once a majority stores it. Raft was designed "
             "to be easier to understand than Paxos."},
    {"id": "paxos", "title": "Paxos",
     "text": "Paxos lets a group of unreliable processes agree on one value. Proposers send "
             "numbered proposals and acceptors promise to ignore older ones. A value is chosen "
             "when a majority of acceptors accept the same proposal. Multi-Paxos repeats this "
             "to agree on a sequence of values with a stable leader."},
    {"id": "gossip", "title": "Gossip protocols",
     "text": "Gossip protocols spread information the way rumours spread: each node "
             "periodically exchanges state with a few random peers. Dissemination takes a "
             "logarithmic number of rounds and tolerates failed nodes. Gossip is used for "
             "membership, failure detection and anti-entropy repair."},
    {"id": "crdt", "title": "Conflict-free replicated data types",
     "text": "A CRDT is a data type whose replicas can be updated independently and always "
             "merge to the same state. State-based CRDTs merge with a join of a semilattice; "
             "operation-based CRDTs deliver commutative operations. Counters, sets and "
             "sequences for collaborative editing exist as CRDTs."},
    {"id": "vector-clocks", "title": "Vector clocks",
     "text": "A vector clock keeps one counter per process to order events by causality. Two "
             "events are concurrent when neither clock dominates the other. Replicated stores "
             "use vector clocks to detect conflicting writes."},
    {"id": "bft", "title": "Byzantine fault tolerance",
     "text": "Byzantine fault tolerance keeps a replicated service correct even when some "
             "replicas lie. PBFT tolerates f faulty replicas out of 3f+1. Byzantine consensus "
             "needs signatures or extra rounds compared with crash-fault consensus such as Raft "
             "or Paxos."},
]
for _doc in DOCS:
    _doc["url"] = "https://docs.example.test/%s" % _doc["id"]

STOPWORDS = {"a", "an", "and", "are", "for", "how", "in", "is", "of", "on", "or", "the", "to",
             "vs", "what", "with"}
MAX_LIMIT = 20


def words(text: str) -> List[str]:
    """Lowercase words without stopwords, plural 's' dropped (so 'clocks' finds 'clock')."""
    out = []
    for w in re.findall(r"[a-z0-9]+", text.lower()):
        if w not in STOPWORDS:
            out.append(w[:-1] if len(w) > 3 and w.endswith("s") else w)
    return out


def search(query: str, limit: int) -> List[Dict[str, str]]:
    """Documents scored by query words (3 per title hit, 1 per text hit), best first."""
    wanted = set(words(query))
    scored = []
    for doc in DOCS:
        title, text = set(words(doc["title"])), set(words(doc["text"]))
        score = sum(3 * (w in title) + (w in text) for w in wanted)
        if score:
            sentences = re.split(r"(?<=\.)\s+", doc["text"])
            snippet = next((s for s in sentences if wanted & set(words(s))), sentences[0])
            scored.append((-score, doc["id"], {"id": doc["id"], "title": doc["title"],
                                               "url": doc["url"], "snippet": snippet}))
    return [hit for _, _, hit in sorted(scored, key=lambda t: t[:2])[:limit]]


#: A test hook: (method, path) -> (status, body) to answer instead, or None to serve normally.
Override = Callable[[str, str], Optional[Tuple[int, bytes]]]


class Upstream(ThreadingHTTPServer):
    """The API server. `hits` lists every request (method, path) it received, in order."""

    daemon_threads = True

    def __init__(self, port: int = 0, token: Optional[str] = None, quiet: bool = False) -> None:
        super().__init__(("127.0.0.1", port), Handler)
        self.token = token
        self.quiet = quiet
        self.override: Optional[Override] = None
        self.hits: List[Tuple[str, str]] = []
        self.auth_seen: List[Optional[str]] = []  # the authorization header of each request
        self.lock = threading.Lock()

    @property
    def port(self) -> int:
        return self.server_address[1]

    def use_tls(self, cert: str, key: str) -> None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        # The handshake happens in each connection's thread (Handler.setup), not in accept.
        self.socket = context.wrap_socket(
            self.socket, server_side=True, do_handshake_on_connect=False)

    def handle_error(self, request: object, client_address: object) -> None:
        if not self.quiet:
            sys.stderr.write("upstream: connection failed: %s\n" % sys.exc_info()[1])


class Handler(BaseHTTPRequestHandler):
    server: Upstream
    protocol_version = "HTTP/1.1"  # keep-alive: the egress proxy reuses upstream connections
    disable_nagle_algorithm = True
    timeout = 60  # seconds a connection may stay silent

    def setup(self) -> None:
        super().setup()
        if isinstance(self.request, ssl.SSLSocket):
            self.request.do_handshake()

    def do_GET(self) -> None:
        self.serve("GET")

    def do_POST(self) -> None:
        self.serve("POST")

    def serve(self, method: str) -> None:
        url = urlsplit(self.path)
        auth = self.headers.get("authorization")
        with self.server.lock:
            self.server.hits.append((method, url.path))
            self.server.auth_seen.append(auth)
        if self.server.override is not None:
            forced = self.server.override(method, url.path)
            if forced is not None:
                return self.send(forced[0], forced[1])
        token = self.server.token
        if token is not None and not hmac.compare_digest(
            (auth or "").encode(), ("Bearer " + token).encode()
        ):
            return self.reply(401, {"error": "unauthorized: a bearer token is required"},
                              {"www-authenticate": 'Bearer realm="search"'})
        if method != "GET":
            return self.reply(405, {"error": "only GET is supported"}, {"allow": "GET"})
        if url.path == "/search":
            query = parse_qs(url.query)
            q = query.get("q", [""])[0].strip()
            limit = query.get("limit", ["5"])[0]
            if not q:
                return self.reply(400, {"error": "missing query parameter q"})
            if not limit.isdigit() or not 1 <= int(limit) <= MAX_LIMIT:
                return self.reply(400, {"error": "limit must be 1 to %d" % MAX_LIMIT})
            return self.reply(200, {"query": q, "results": search(q, int(limit))})
        if url.path.startswith("/doc/"):
            doc_id = unquote(url.path[len("/doc/"):])
            doc = next((d for d in DOCS if d["id"] == doc_id), None)
            if doc is None:
                return self.reply(404, {"error": "no such document"})
            return self.reply(200, doc)
        return self.reply(404, {"error": "not found"})

    def reply(self, status: int, value: object, headers: Optional[Dict[str, str]] = None) -> None:
        self.send(status, json.dumps(value).encode(), headers)

    def send(self, status: int, body: bytes, headers: Optional[Dict[str, str]] = None) -> None:
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base's name
        if not self.server.quiet:
            sys.stderr.write("upstream: %s\n" % (format % args))


def make_cert(directory: str, host: str) -> None:
    """A throwaway CA and a certificate for `host` it signs (P-256, 30 days), via openssl."""
    os.makedirs(directory, mode=0o700, exist_ok=True)
    out = lambda name: os.path.join(directory, name)  # noqa: E731
    common = ["-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
              "-days", "30"]
    steps = [
        common + ["-subj", "/CN=souk example CA", "-keyout", out("ca.key"), "-out", out("ca.pem"),
                  "-addext", "basicConstraints=critical,CA:TRUE",
                  "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
        common + ["-subj", "/CN=" + host, "-CA", out("ca.pem"), "-CAkey", out("ca.key"),
                  "-keyout", out("key.pem"), "-out", out("cert.pem"),
                  "-addext", "subjectAltName=DNS:" + host,
                  "-addext", "basicConstraints=critical,CA:FALSE",
                  "-addext", "extendedKeyUsage=serverAuth"],
    ]
    try:
        for args in steps:
            subprocess.run(["openssl", "req", *args], check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError) as e:
        sys.exit("upstream: openssl failed (OpenSSL 3 is needed): %s" % e)
    os.remove(out("ca.key"))  # nothing else will be signed with it


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8080, help="port on 127.0.0.1 (0: pick one)")
    parser.add_argument("--token", help="require 'authorization: Bearer TOKEN' (else 401)")
    parser.add_argument("--tls-cert", help="serve HTTPS with this PEM certificate (chain)")
    parser.add_argument("--tls-key", help="the certificate's PEM private key")
    parser.add_argument("--fail-status", type=int, help="answer every request with this status")
    parser.add_argument("--quiet", action="store_true", help="do not log requests to stderr")
    parser.add_argument("--make-cert", metavar="DIR", help="write DIR/ca.pem, cert.pem, key.pem "
                        "for --cert-host, then exit")
    parser.add_argument("--cert-host", default="search.example.test", help="name for --make-cert")
    args = parser.parse_args()
    if args.make_cert:
        make_cert(args.make_cert, args.cert_host)
        return
    if bool(args.tls_cert) != bool(args.tls_key):
        parser.error("--tls-cert and --tls-key go together")
    server = Upstream(args.port, args.token, args.quiet)
    if args.tls_cert:
        server.use_tls(args.tls_cert, args.tls_key)
    if args.fail_status is not None:
        failure = json.dumps({"error": "failing on purpose (--fail-status)"}).encode()
        server.override = lambda method, path: (args.fail_status, failure)
    print(server.port, flush=True)
    scheme = "https" if args.tls_cert else "http"
    sys.stderr.write("upstream: serving %s://127.0.0.1:%d%s\n"
                     % (scheme, server.port, " (bearer token required)" if args.token else ""))
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
