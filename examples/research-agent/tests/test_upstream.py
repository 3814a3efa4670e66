"""upstream.py as README.md runs it: a process that prints its port first, checks the bearer
token, answers the search API contract, and serves HTTPS with the certificate --make-cert
writes (what the node's egress proxy needs)."""

import http.client
import json
import shutil
import socket
import ssl
import subprocess
import sys
from pathlib import Path
from typing import Iterator, List, Optional, Tuple

import pytest
from conftest import API_HOST, EXAMPLE

TOKEN = "upstream-test-token"


@pytest.fixture
def start() -> Iterator:
    procs: List[subprocess.Popen] = []

    def run(*args: str) -> int:
        proc = subprocess.Popen(
            [sys.executable, str(EXAMPLE / "upstream.py"), "--port", "0", "--quiet", *args],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        procs.append(proc)
        assert proc.stdout is not None
        line = proc.stdout.readline()  # the port, once it listens
        assert line.strip().isdigit(), "first line %r is not a port" % line
        return int(line)

    yield run
    for proc in procs:
        proc.kill()
        proc.wait()


def get(port: int, path: str, token: Optional[str] = None) -> Tuple[int, object]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", path, headers={"authorization": "Bearer " + token} if token else {})
    response = conn.getresponse()
    assert response.getheader("content-type") == "application/json"
    result = response.status, json.loads(response.read())
    conn.close()
    return result


def test_the_contract(start) -> None:
    port = start()
    status, body = get(port, "/search?q=vector+clocks&limit=1")
    assert status == 200
    assert body == {"query": "vector clocks", "results": [{
        "id": "vector-clocks", "title": "Vector clocks",
        "url": "https://docs.example.test/vector-clocks",
        "snippet": "A vector clock keeps one counter per process to order events by causality."}]}
    assert get(port, "/search?q=raft")[1]["results"][0]["id"] == "raft"
    assert get(port, "/search?q=nothing+here")[1] == {"query": "nothing here", "results": []}
    status, doc = get(port, "/doc/gossip")
    assert status == 200 and doc["title"] == "Gossip protocols" and doc["text"].startswith("Gossip")
    assert get(port, "/doc/nope") == (404, {"error": "no such document"})
    assert get(port, "/search")[0] == 400
    assert get(port, "/search?q=x&limit=99")[0] == 400
    assert get(port, "/elsewhere")[0] == 404


def test_a_token_is_required_when_given(start) -> None:
    port = start("--token", TOKEN)
    assert get(port, "/search?q=raft")[0] == 401
    assert get(port, "/search?q=raft", "wrong")[0] == 401
    assert get(port, "/search?q=raft", TOKEN)[0] == 200


def test_fail_status(start) -> None:
    port = start("--fail-status", "500")
    assert get(port, "/search?q=raft")[0] == 500


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_https_with_the_certificate_it_makes(start, tmp_path: Path) -> None:
    certs = tmp_path / "tls"
    subprocess.run([sys.executable, str(EXAMPLE / "upstream.py"), "--make-cert", str(certs)],
                   check=True)
    assert sorted(p.name for p in certs.iterdir()) == ["ca.pem", "cert.pem", "key.pem"]
    port = start("--token", TOKEN, "--tls-cert", str(certs / "cert.pem"),
                 "--tls-key", str(certs / "key.pem"))
    # As the egress proxy connects: to the address, with the API's name for SNI and checks.
    context = ssl.create_default_context(cafile=str(certs / "ca.pem"))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname=API_HOST) as tls:
            tls.sendall(("GET /doc/raft HTTP/1.1\r\nhost: %s\r\nauthorization: Bearer %s\r\n"
                         "connection: close\r\n\r\n" % (API_HOST, TOKEN)).encode())
            data = b""
            while True:
                chunk = tls.recv(65536)
                if not chunk:
                    break
                data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert json.loads(body)["id"] == "raft"
    # Another name does not verify.
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with pytest.raises(ssl.SSLCertVerificationError):
            context.wrap_socket(raw, server_hostname="other.example.test")
