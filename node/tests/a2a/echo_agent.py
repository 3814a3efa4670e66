"""A plain A2A 0.3 agent on the official Python SDK (`a2a-sdk` 0.3.26): the upstream that the
tests offer on Souk with `souk agent publish --a2a URL`.

It echoes its input: the first data part of the message, else its text parts joined, comes back
as an artifact named `echo` holding one data part {"echo": <input>}, after a `working` status
update with a message. When the input is the text `ask` or the data {"ask": true} it first asks
"What should I echo?" (state `input-required`) and echoes the answer sent to that task.

Usage: python3 echo_agent.py [--port N] [--certfile C --keyfile K] [--public-url URL]
  --port 0 (the default) picks a free port. With --certfile/--keyfile it serves HTTPS.
  --public-url is the url its card announces (default http(s)://127.0.0.1:PORT/); `{port}` in it
  is replaced by the port it listens on.
Prints exactly one line `listening PORT` on stdout once it accepts connections; logs go to stderr.
"""

import argparse
import asyncio
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
    TaskState,
    TextPart,
)
from a2a.utils import new_task

QUESTION = "What should I echo?"


def message_input(message: Message | None):
    """The message's content: its first data part, else its text parts joined (None if empty)."""
    if message is None:
        return None
    for part in message.parts:
        if isinstance(part.root, DataPart):
            return part.root.data
    texts = [part.root.text for part in message.parts if isinstance(part.root, TextPart)]
    return "\n".join(texts) if texts else None


def wants_question(value) -> bool:
    return value == "ask" or (isinstance(value, dict) and value.get("ask") is True)


class EchoExecutor(AgentExecutor):
    """Echoes each task's input (or, for `ask`, the answer to its question)."""

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        task = context.current_task
        if task is None:
            task = new_task(context.message)
            await event_queue.enqueue_event(task)
        updater = TaskUpdater(event_queue, task.id, task.context_id)
        value = message_input(context.message)
        answering = task.status.state == TaskState.input_required

        await updater.start_work(
            updater.new_agent_message([Part(root=TextPart(text="echo: reading the input"))])
        )
        if not answering and wants_question(value):
            await updater.requires_input(
                updater.new_agent_message([Part(root=TextPart(text=QUESTION))]), final=True
            )
            return
        await updater.add_artifact([Part(root=DataPart(data={"echo": value}))], name="echo")
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
        description="Echoes its input back as an artifact; asks what to echo when told `ask`.",
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
                examples=["hello", "ask"],
            )
        ],
    )


async def serve(args) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    port = sock.getsockname()[1]
    tls = bool(args.certfile)
    url = (args.public_url or "%s://127.0.0.1:{port}/" % ("https" if tls else "http")).replace(
        "{port}", str(port)
    )
    handler = DefaultRequestHandler(agent_executor=EchoExecutor(), task_store=InMemoryTaskStore())
    app = A2AStarletteApplication(agent_card=agent_card(url), http_handler=handler).build()
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        ssl_certfile=args.certfile,
        ssl_keyfile=args.keyfile,
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if serving.done():
            serving.result()  # startup failed: raise its error
            raise SystemExit("echo agent: the server stopped during startup")
        await asyncio.sleep(0.02)
    print("listening %d" % port, flush=True)
    await serving


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--certfile")
    parser.add_argument("--keyfile")
    parser.add_argument("--public-url")
    args = parser.parse_args()
    if bool(args.certfile) != bool(args.keyfile):
        parser.error("--certfile and --keyfile go together")
    try:
        asyncio.run(serve(args))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
