"""The research agent's test bench: the search API (upstream.py, in this process), a fake egress
proxy in front of it (fake_egress.py), and the agent as a subprocess driven like the node
drives it (sdk/python/tests/fake_node.py, which checks every line against the protocol)."""

import sys
import threading
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional

import pytest

TESTS = Path(__file__).resolve().parent
EXAMPLE = TESTS.parent
ROOT = EXAMPLE.parent.parent
SDK_SRC = ROOT / "sdk" / "python" / "src"
for path in (ROOT / "sdk" / "python" / "tests", EXAMPLE, TESTS):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from fake_egress import FakeEgress  # noqa: E402
from fake_node import FakeNode  # noqa: E402
from upstream import Upstream  # noqa: E402

API_HOST = "search.example.test"
SLOT = "search-api"


class Bench:
    """One hire's world: the API, the egress proxy in front of it, and the agent runs."""

    def __init__(self, tmp: Path, *, token: Optional[str], secret: Optional[str],
                 hosts: List[str]) -> None:
        self.tmp = tmp
        self.api = Upstream(0, token, quiet=True)
        self.egress = FakeEgress(
            hosts=hosts,
            resolve={API_HOST: ("127.0.0.1", self.api.port)},
            slot=(SLOT, [API_HOST]),
            secret=secret,
        )
        self.release = threading.Event()  # unblocks handlers a test made wait
        self.nodes: List[FakeNode] = []
        for server in (self.api, self.egress):
            threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()

    def run(self, input: object, checkpoint: object = None) -> FakeNode:
        """Starts the agent like the node does: clean environment, HTTP_PROXY, SOUK_INCLUDE."""
        work = self.tmp / ("hire-%d" % len(self.nodes))
        work.mkdir()
        env: Dict[str, str] = {
            "HTTP_PROXY": self.egress.url,
            "HTTPS_PROXY": self.egress.url,
            "ALL_PROXY": self.egress.url,
            "SOUK_PACKAGE_DIR": str(EXAMPLE),
            "SOUK_INCLUDE": str(SDK_SRC),
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        if self.egress.secret is not None:
            env["SOUK_CREDENTIAL_SEARCH_API"] = "souk-credential:" + SLOT
        node = FakeNode([sys.executable, str(EXAMPLE / "agent.py")], workdir=work,
                        pythonpath="", env=env)
        self.nodes.append(node)
        node.start(input, checkpoint)
        return node

    def close(self) -> None:
        self.release.set()
        for node in self.nodes:
            node.kill()
        for server in (self.api, self.egress):
            server.shutdown()
            server.server_close()


@pytest.fixture
def bench(tmp_path: Path) -> Iterator[Callable[..., Bench]]:
    """`bench(token=None, secret=None, hosts=[API_HOST])`: `token` is what the API requires,
    `secret` what the client granted for the search-api slot (None: no grant)."""
    made: List[Bench] = []

    def make(token: Optional[str] = None, secret: Optional[str] = None,
             hosts: Optional[List[str]] = None) -> Bench:
        b = Bench(tmp_path, token=token, secret=secret,
                  hosts=[API_HOST] if hosts is None else hosts)
        made.append(b)
        return b

    yield make
    for b in made:
        b.close()
