"""A stand-in for the node's per-hire egress proxy (crates/egress), for tests: the agent's only
route to the search API. Like the real one it

- requires `Proxy-Authorization: Basic base64("souk:" + token)` (407 otherwise), the token the
  agent gets inside HTTP_PROXY;
- takes plain HTTP in absolute form (`GET http://host/path`) to hosts of the manifest's
  `hosts` and credential slots, and refuses anything else with the JSON denial of
  spec/credentials.md;
- injects the granted secret as `authorization: Bearer <secret>` for the slot's hosts (the
  agent may send nothing there, or the placeholder);
- sends the call to the address `resolve` maps the host to (like `[egress] resolve`), scrubs
  the secret from the answer and records one observation per call, like a `network-call`
  receipt entry.

Unlike it, it speaks plain HTTP upstream (the real proxy speaks only TLS).
"""

import base64
import http.client
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Dict, List, Optional, Tuple
from urllib.parse import urlsplit

HOP_BY_HOP = {"connection", "keep-alive", "proxy-authorization", "proxy-connection", "te",
              "trailer", "transfer-encoding", "upgrade", "host"}
STATUS = {"blocked_by_policy": 403, "proxy_auth_required": 407, "header_conflict": 403,
          "secret_in_request": 403, "bad_request": 400, "upstream_error": 502}


class FakeEgress(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self,
        *,
        hosts: List[str],
        resolve: Dict[str, Tuple[str, int]],
        slot: Optional[Tuple[str, List[str]]] = None,
        secret: Optional[str] = None,
        token: str = "proxy-token-0123456789abcdef",
    ) -> None:
        super().__init__(("127.0.0.1", 0), ProxyHandler)
        self.hosts, self.resolve, self.token = hosts, resolve, token
        self.slot_name, self.slot_hosts = slot if slot else (None, [])
        self.secret = secret  # None: the client granted no credential for the slot
        self.calls: List[Dict[str, object]] = []  # the observations, in order
        self.requests: List[Tuple[str, Dict[str, str]]] = []  # what the agent sent
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        """HTTP_PROXY for the agent."""
        return "http://souk:%s@127.0.0.1:%d" % (self.token, self.server_address[1])

    @property
    def placeholder(self) -> Optional[str]:
        return "souk-credential:%s" % self.slot_name if self.slot_name else None


class ProxyHandler(BaseHTTPRequestHandler):
    server: FakeEgress
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass

    def do_CONNECT(self) -> None:
        self.deny("bad_request", self.path, "this fake proxy takes plain HTTP only")

    def do_GET(self) -> None:
        server = self.server
        headers = {k.lower(): v for k, v in self.headers.items()}
        with server.lock:
            server.requests.append((self.path, headers))
        expected = "Basic " + base64.b64encode(("souk:" + server.token).encode()).decode()
        if headers.get("proxy-authorization") != expected:
            return self.deny("proxy_auth_required", "", "missing or wrong proxy token")
        url = urlsplit(self.path)
        if url.scheme != "http" or not url.hostname or url.username:
            return self.deny("bad_request", "", "absolute-form plain HTTP only")
        host = url.hostname + (":%d" % url.port if url.port not in (None, 443) else "")
        slotted = server.secret is not None and host in server.slot_hosts
        if not slotted and host not in server.hosts:
            return self.deny("blocked_by_policy", host, "this host is not listed in the manifest")
        forward = {k: v for k, v in headers.items() if k not in HOP_BY_HOP}
        sent_auth = forward.pop("authorization", None)
        if slotted and sent_auth not in (None, "Bearer " + str(server.placeholder)):
            return self.deny("header_conflict", host, "authorization is the slot's")
        elsewhere = [self.path, *forward.values(), *([] if slotted else [sent_auth or ""])]
        needles = [n for n in (server.placeholder, server.secret) if n]
        if any(n in v for n in needles for v in elsewhere):
            return self.deny("secret_in_request", host, "placeholder outside the injection")
        if slotted:
            forward["authorization"] = "Bearer " + str(server.secret)
        elif sent_auth is not None:
            forward["authorization"] = sent_auth
        target = url.path + ("?" + url.query if url.query else "")
        try:
            conn = http.client.HTTPConnection(*server.resolve[host], timeout=30)
            conn.request("GET", target, headers=dict(forward, host=host))
            response = conn.getresponse()
            status, body = response.status, response.read()
            ctype = response.getheader("content-type", "application/octet-stream")
            conn.close()
        except (OSError, http.client.HTTPException, KeyError):
            return self.deny("upstream_error", host, "the upstream cannot be reached")
        if server.secret:
            body = body.replace(server.secret.encode(), b"[REDACTED]")
        self.observe(host, url.path, status, None, slotted, len(body))
        self.send(status, body, ctype)

    def deny(self, code: str, host: str, message: str) -> None:
        self.observe(host or "invalid", urlsplit(self.path).path or "/", 0, code, False)
        body = {"error": code, "host": host, "message": message, "retry": code == "upstream_error"}
        self.send(STATUS[code], json.dumps(body).encode(), "application/json")

    def observe(
        self, host: str, path: str, status: int, denial: Optional[str], slotted: bool, size=0
    ) -> None:
        call = {"method": self.command, "host": host, "path": path, "status": status,
                "slot": self.server.slot_name if slotted else None, "denial": denial,
                "response_bytes": size}
        with self.server.lock:
            self.server.calls.append(call)

    def send(self, status: int, body: bytes, ctype: str) -> None:
        self.send_response(status)
        self.send_header("content-type", ctype)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
