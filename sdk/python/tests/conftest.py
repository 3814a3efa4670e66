"""Puts the SDK (sdk/python/src) on sys.path and provides the `spawn` fixture: an agent
script under tests/agents run as a subprocess and driven like the node drives it."""

import sys
from pathlib import Path
from typing import Callable, Iterator, List

import pytest

TESTS = Path(__file__).resolve().parent
SRC = TESTS.parent / "src"
if str(SRC) not in sys.path:
    sys.path.insert(0, str(SRC))
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from fake_node import FakeNode  # noqa: E402


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[..., FakeNode]]:
    nodes: List[FakeNode] = []

    def start(script: str, *args: str) -> FakeNode:
        work = tmp_path / ("hire-%d" % len(nodes))
        work.mkdir()
        node = FakeNode(
            [sys.executable, str(TESTS / "agents" / script), *args],
            workdir=work,
            pythonpath=str(SRC),
        )
        nodes.append(node)
        return node

    yield start
    for node in nodes:
        node.kill()
