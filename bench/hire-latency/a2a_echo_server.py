"""The A2A side of the hire latency benchmark: an echo agent on the official Python SDK
(`a2a-sdk` 0.3.26), served by uvicorn on loopback, in one of two modes:

  inproc   the executor echoes in the server process (like node/tests/a2a/echo_agent.py,
           without its `ask` branch);
  process  the executor starts a fresh `python3 -c ECHO_PROGRAM` per task, writes the input
           on its stdin and reads the echo from its stdout, like a provider that runs each
           task in its own process.

Either way a task's input (its first data part, else its text parts joined) comes back as an
artifact named `echo` holding one data part {"echo": <input>}, after a `working` status update.

Usage: python3 a2a_echo_server.py --mode inproc|process [--port N] [--python PATH]
Prints exactly one line `listening PORT` on stdout once it accepts connections; logs go to
stderr.
"""

import argparse
import asyncio
import json
import shutil
import socket
import sys

import uvicorn
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.apps import A2AStarletteApplication
from a2a.server.events import EventQueue
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.tasks import InMemoryTaskStore, TaskUpdater
from a2a.types import (
    AgentCapabilities,
    AgentCard,
    AgentSkill,
    DataPart,
    Message,
    Part,
    TextPart,
)
from a2a.utils import new_task

# What the per-task process runs: the same work as the Souk benchmark agent (read JSON, write
# {"echo": ...}), without the Souk framing.
ECHO_PROGRAM = (
    "import json, sys\n"
    "value = json.loads(sys.stdin.read())\n"
    "sys.stdout.write(json.dumps({'echo': value}))\n"
    "sys.stdout.flush()\n"
)


class EchoFailed(Exception):
    """The per-task echo process did not produce an echo."""


def message_input(message: Message | None):
    """The message's content: its first data part, else its text parts joined (None if empty)."""
    if message is None:
        return None
    for part in message.parts:
        if isinstance(part.root, DataPart):
            return part.root.data
    texts = [part.root.text for part in message.parts if isinstance(part.root, TextPart)]
    return "\n".join(texts) if texts else None


async def echo_in_process(value):
    return {"echo": value}


def echo_in_subprocess(python: str):
    async def echo(value):
        proc = await asyncio.create_subprocess_exec(
            python,
            "-c",
            ECHO_PROGRAM,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await proc.communicate(json.dumps(value).encode())
        if proc.returncode != 0:
            raise EchoFailed(
                "echo process exited with %s: %s" % (proc.returncode, err.decode(errors="replace"))
            )
        return json.loads(out)

    return echo


class EchoExecutor(AgentExecutor):
    """Echoes each task's input with `echo` (in process or through a fresh process)."""

    def __init__(self, echo):
        self.echo = echo

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        task = context.current_task
        if task is None:
            task = new_task(context.message)
            await event_queue.enqueue_event(task)
        updater = TaskUpdater(event_queue, task.id, task.context_id)
        await updater.start_work(
            updater.new_agent_message([Part(root=TextPart(text="echo: reading the input"))])
        )
        try:
            output = await self.echo(message_input(context.message))
        except (EchoFailed, OSError, ValueError) as e:
            await updater.failed(updater.new_agent_message([Part(root=TextPart(text=str(e)))]))
            return
        await updater.add_artifact([Part(root=DataPart(data=output))], name="echo")
        await updater.complete(updater.new_agent_message([Part(root=TextPart(text="echoed"))]))

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        task = context.current_task
        if task is None:
            return
        updater = TaskUpdater(event_queue, task.id, task.context_id)
        await updater.cancel(updater.new_agent_message([Part(root=TextPart(text="canceled"))]))


def agent_card(url: str) -> AgentCard:
    return AgentCard(
        name="echo",
        description="Echoes its input back as an artifact (hire latency benchmark).",
        url=url,
        version="1.0.0",
        protocol_version="0.3.0",
        preferred_transport="JSONRPC",
        capabilities=AgentCapabilities(streaming=True, push_notifications=False),
        default_input_modes=["text/plain", "application/json"],
        default_output_modes=["application/json"],
        skills=[
            AgentSkill(
                id="echo",
                name="echo",
                description='Returns the message\'s data (or text) as {"echo": ...}.',
                tags=["echo"],
                examples=["hello"],
            )
        ],
    )


async def serve(args) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # asyncio sets TCP_NODELAY only on sockets whose proto is IPPROTO_TCP, and this one (and
    # what it accepts) has proto 0: without the option every response stalls about 40 ms
    # (Nagle against delayed ACKs). Accepted sockets inherit it.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", args.port))
    port = sock.getsockname()[1]
    url = "http://127.0.0.1:%d/" % port
    echo = echo_in_process if args.mode == "inproc" else echo_in_subprocess(args.python)
    handler = DefaultRequestHandler(
        agent_executor=EchoExecutor(echo), task_store=InMemoryTaskStore()
    )
    app = A2AStarletteApplication(agent_card=agent_card(url), http_handler=handler).build()
    config = uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=1)
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if serving.done():
            serving.result()  # startup failed: raise its error
            raise SystemExit("a2a echo server: stopped during startup")
        await asyncio.sleep(0.02)
    print("listening %d" % port, flush=True)
    await serving


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=["inproc", "process"], required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument(
        "--python",
        default=shutil.which("python3") or sys.executable,
        help="the interpreter a per-task process runs (default: python3 on PATH)",
    )
    args = parser.parse_args()
    try:
        asyncio.run(serve(args))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
