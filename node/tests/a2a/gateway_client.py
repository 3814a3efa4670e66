"""An A2A client's view of `souk a2a serve`, on the official Python SDK (`a2a-sdk` 0.3.26): read
the gateway's and an agent's cards, hire csv-analyst with a blocking `message/send` and with
`message/stream`, answer its question (`input-required`), cancel a running hire, and check the
JSON-RPC errors of docs/a2a.md. The receipt bundles of the two completed hires are written to
OUT/send.souk and OUT/stream.souk for `souk verify`.

Usage: python3 gateway_client.py --url http://127.0.0.1:PORT --token-file DIR/a2a-token
           --agent PROVIDER/csv-analyst --slow-agent PROVIDER/NAME [--slow-input JSON] --out DIR
Exits non-zero with a message on stderr at the first failed check; on success prints one JSON
object on stdout summarising what it saw.
"""

import argparse
import asyncio
import base64
import binascii
import json
import re
import time
import uuid
from pathlib import Path

import httpx
from a2a.client import A2ACardResolver, A2AClientHTTPError, ClientConfig, ClientFactory
from a2a.client.errors import A2AClientError, A2AClientJSONRPCError
from a2a.types import (
    AgentCard,
    DataPart,
    FilePart,
    FileWithBytes,
    Message,
    MessageSendConfiguration,
    Part,
    Role,
    Task,
    TaskArtifactUpdateEvent,
    TaskIdParams,
    TaskQueryParams,
    TaskState,
    TaskStatusUpdateEvent,
    TextPart,
)

EXTENSION = "https://souk.dev/a2a/ext/manifest/v1"
CSV = {"csv": "a,b\n1,2\n3,4\n"}
ANSWER = {"csv": "x\n1\n2\n"}
HEX64 = re.compile(r"^[0-9a-f]{64}$")
REPUTATION_KEYS = {"settled", "accepted", "rejected", "distinct_clients", "success_lower_bound"}
CANCEL_DEADLINE_S = 30.0
POLL_S = 0.25


class CheckFailed(Exception):
    """One check of the contract failed; the message says which and what was seen."""


def expect(cond, what, seen=None):
    if not cond:
        detail = "" if seen is None else ": %s" % short(seen)
        raise CheckFailed(what + detail)


def short(value, limit=1500):
    """A readable, bounded rendering of what was seen (pydantic models as JSON)."""
    if hasattr(value, "model_dump"):
        value = value.model_dump(mode="json", exclude_none=True, by_alias=True)
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= limit else text[:limit] + "...(%d chars)" % len(text)


def data_message(data, task_id=None, context_id=None) -> Message:
    return Message(
        role=Role.user,
        message_id=str(uuid.uuid4()),
        parts=[Part(root=DataPart(data=data))],
        task_id=task_id,
        context_id=context_id,
    )


def artifact_key(a):
    """How docs/a2a.md names an artifact (`output`, `souk-receipts`): its artifactId, else its name."""
    return a.artifact_id if a.artifact_id in ("output", "souk-receipts") else a.name


def artifact(task: Task, name):
    found = [a for a in task.artifacts or [] if artifact_key(a) == name]
    expect(len(found) == 1, "task %s has no single artifact named %r" % (task.id, name), task.artifacts)
    return found[0]


def output_of(task: Task):
    parts = artifact(task, "output").parts
    expect(
        len(parts) >= 1 and isinstance(parts[0].root, DataPart),
        "artifact `output` has no data part",
        parts,
    )
    return parts[0].root.data


def bundle_of(parts, where) -> bytes:
    """The receipt bundle held by a `souk-receipts` artifact's parts (a base64 file part)."""
    expect(len(parts) == 1 and isinstance(parts[0].root, FilePart), where + ": not one file part", parts)
    file = parts[0].root.file
    expect(isinstance(file, FileWithBytes), where + ": the file has no bytes (a uri?)", file)
    expect(file.mime_type == "application/cbor", where + ": mimeType is not application/cbor", file.mime_type)
    try:
        raw = base64.b64decode(file.bytes, validate=True)
    except (binascii.Error, ValueError) as e:
        raise CheckFailed("%s: bytes are not base64 (%s)" % (where, e)) from e
    expect(len(raw) > 0, where + ": empty bundle")
    return raw


def souk_meta(metadata, where, key="souk"):
    expect(
        isinstance(metadata, dict) and isinstance(metadata.get(key), dict),
        where + ": no metadata." + key,
        metadata,
    )
    return metadata[key]


def rpc_error_code(exc: A2AClientJSONRPCError) -> int:
    return exc.error.code


class Gateway:
    """The gateway under test: its base URL, an authorized httpx client and the SDK clients."""

    def __init__(self, base, http: httpx.AsyncClient):
        self.base = base
        self.http = http
        self.cards: dict[str, AgentCard] = {}

    async def card(self, handle) -> AgentCard:
        if handle not in self.cards:
            resolver = A2ACardResolver(self.http, self.base)
            self.cards[handle] = await resolver.get_agent_card(
                relative_card_path="/agents/%s/.well-known/agent-card.json" % handle
            )
        return self.cards[handle]

    async def client(self, handle, streaming):
        # The clients share self.http (and so its bearer header); none is closed on its own,
        # since BaseClient.close() would close the shared httpx client.
        config = ClientConfig(streaming=streaming, httpx_client=self.http)
        return ClientFactory(config).create(await self.card(handle))


async def check_cards(gw: Gateway, handle, anonymous: httpx.AsyncClient):
    """(a) The gateway's card and the agent's card, as JSON and as the SDK parses them."""
    resp = await anonymous.get(gw.base + "/.well-known/agent-card.json")
    expect(resp.status_code == 200, "gateway card without a token: HTTP %d" % resp.status_code, resp.text)
    raw = resp.json()
    expect(raw.get("protocolVersion") == "0.3.0", "gateway card protocolVersion", raw.get("protocolVersion"))
    skills = [s.get("id") for s in raw.get("skills", [])]
    expect(handle in skills, "gateway card has no skill with id %s" % handle, skills)
    # The SDK must accept it as an AgentCard too (required fields, types).
    gateway_card = await A2ACardResolver(gw.http, gw.base).get_agent_card()

    path = "/agents/%s/.well-known/agent-card.json" % handle
    resp = await anonymous.get(gw.base + path)
    expect(
        resp.status_code == 200,
        "agent card %s without a token: HTTP %d" % (path, resp.status_code),
        resp.text,
    )
    raw = resp.json()
    card = await gw.card(handle)
    provider_id, name = handle.split("/", 1)
    expect(raw.get("protocolVersion") == "0.3.0", "agent card protocolVersion", raw.get("protocolVersion"))
    expect(raw.get("name") == name, "agent card name", raw.get("name"))
    expect(isinstance(raw.get("version"), str), "agent card version must be a string", raw.get("version"))
    expect(card.url.rstrip("/") == "%s/agents/%s" % (gw.base, handle), "agent card url", card.url)
    expect(
        raw.get("preferredTransport") == "JSONRPC",
        "agent card preferredTransport",
        raw.get("preferredTransport"),
    )
    expect(
        card.provider is not None and card.provider.organization == provider_id,
        "provider.organization",
        raw.get("provider"),
    )
    caps = raw.get("capabilities", {})
    expect(caps.get("streaming") is True, "capabilities.streaming is not true", caps)
    expect(caps.get("pushNotifications") is False, "capabilities.pushNotifications is not false", caps)
    exts = [e for e in caps.get("extensions") or [] if e.get("uri") == EXTENSION]
    expect(len(exts) == 1, "no extension %s" % EXTENSION, caps)
    params = exts[0].get("params") or {}
    expect(params.get("handle") == handle, "extension params.handle", params.get("handle"))
    expect(
        isinstance(params.get("manifest_id"), str) and HEX64.match(params["manifest_id"]),
        "extension params.manifest_id",
        params.get("manifest_id"),
    )
    expect(params.get("provider") == provider_id, "extension params.provider", params.get("provider"))
    expect(
        isinstance(params.get("price"), str) and params.get("currency"),
        "extension params.price/currency",
        params,
    )
    for key in ("max_duration_ms", "hosts", "input_schema", "output_schema"):
        expect(key in params, "extension params.%s missing" % key, sorted(params))
    # null: this node does not know the figures (a light node whose full peers did not answer).
    reputation = params.get("reputation", "absent")
    expect(
        reputation is None or isinstance(reputation, dict),
        "extension params.reputation is neither an object nor null",
        params,
    )
    if reputation is not None:
        missing = REPUTATION_KEYS - set(reputation)
        expect(not missing, "extension params.reputation lacks %s" % sorted(missing), reputation)
    schemes = raw.get("securitySchemes") or {}
    souk = schemes.get("souk") or {}
    expect(
        souk.get("type") == "http" and str(souk.get("scheme", "")).lower() == "bearer",
        "securitySchemes.souk is not HTTP bearer",
        schemes,
    )
    expect({"souk": []} in (raw.get("security") or []), "security does not require souk", raw.get("security"))
    skill_ids = [s.id for s in card.skills]
    expect(
        skill_ids and all(s.tags == [s.id] for s in card.skills),
        "agent skills (tags = [id])",
        raw.get("skills"),
    )
    return {
        "gateway_skills": len(gateway_card.skills),
        "name": card.name,
        "url": card.url,
        "skills": skill_ids,
        "manifest_id": params["manifest_id"],
        "price": params["price"],
        "currency": params["currency"],
        "reputation": reputation,
    }


def check_hire_meta(task: Task, handle, where):
    expect(
        isinstance(task.id, str) and HEX64.match(task.id),
        where + ": task id is not a hire id (64 hex)",
        task.id,
    )
    souk = souk_meta(task.metadata, where)
    expect(souk.get("hire_id") == task.id, where + ": metadata.souk.hire_id != task id", souk)
    for key in ("agent", "provider", "manifest_id", "price", "currency", "receipts"):
        expect(key in souk, where + ": metadata.souk.%s missing" % key, souk)
    expect(souk["provider"] == handle.split("/", 1)[0], where + ": metadata.souk.provider", souk)
    return souk


async def check_send(gw: Gateway, handle, out: Path):
    """(b) A blocking message/send (the SDK's default) returns the completed task."""
    client = await gw.client(handle, streaming=False)
    events = [e async for e in client.send_message(data_message(CSV))]
    expect(len(events) == 1 and isinstance(events[0], tuple), "message/send did not return one task", events)
    task = events[0][0]
    expect(task.status.state == TaskState.completed, "blocking send: state is not completed", task.status)
    expect(task.context_id == task.id, "context id (none given) is not the hire id", task.context_id)
    output = output_of(task)
    expect(output.get("rows") == 2, "blocking send: output.rows != 2", output)
    bundle = bundle_of(artifact(task, "souk-receipts").parts, "send: souk-receipts")
    (out / "send.souk").write_bytes(bundle)
    souk = check_hire_meta(task, handle, "send")
    expect(isinstance(souk["receipts"], int) and souk["receipts"] > 0, "send: metadata.souk.receipts", souk)
    return task.id, {
        "task": task.id,
        "state": task.status.state.value,
        "rows": output["rows"],
        "receipts": souk["receipts"],
        "bundle_bytes": len(bundle),
    }


async def check_stream(gw: Gateway, handle, out: Path, other_task):
    """(c) message/stream: the task, one working status-update per receipt (seq increasing), the
    artifacts, then the final completed status-update."""
    client = await gw.client(handle, streaming=True)
    updates = []
    first = None
    async for task, update in client.send_message(data_message(CSV)):
        if first is None:
            expect(update is None, "stream: the first event is not a task", update)
            first = task.model_copy(deep=True)
            continue
        expect(update is not None, "stream: a second task event")
        expect(
            not updates or not getattr(updates[-1], "final", False),
            "stream: an event after final=true",
            update,
        )
        updates.append(update)
    expect(first is not None, "stream: no events")
    expect(first.id != other_task, "stream: same task id as the blocking send", first.id)
    expect(
        first.status.state in (TaskState.submitted, TaskState.working),
        "stream: first task state",
        first.status,
    )
    check_hire_meta(first, handle, "stream (first task)")
    expect(updates, "stream: nothing after the task")

    final = updates[-1]
    expect(
        isinstance(final, TaskStatusUpdateEvent) and final.final is True,
        "stream: the last event is not a final status-update",
        final,
    )
    expect(final.status.state == TaskState.completed, "stream: final state is not completed", final.status)
    seqs = []
    for u in updates[:-1]:
        expect(u.task_id == first.id, "stream: event for another task", u)
        if isinstance(u, TaskStatusUpdateEvent):
            expect(u.final is False, "stream: final=true before the end", u)
            expect(
                u.status.state == TaskState.working,
                "stream: a non-final status-update that is not working",
                u.status,
            )
            meta = souk_meta(u.metadata, "stream status-update", "souk_receipt")
            expect(
                isinstance(meta.get("seq"), int) and "kind" in meta and "entry_id" in meta,
                "stream: metadata.souk_receipt lacks seq/kind/entry_id",
                meta,
            )
            expect(
                not seqs or meta["seq"] > seqs[-1],
                "stream: seq not strictly increasing",
                seqs + [meta["seq"]],
            )
            seqs.append(meta["seq"])
            texts = [
                p.root.text
                for p in (u.status.message.parts if u.status.message else [])
                if isinstance(p.root, TextPart)
            ]
            expect(texts and texts[0], "stream: a working status-update has no step text", u.status)
    expect(len(seqs) >= 2, "stream: fewer than two receipts streamed", seqs)
    kinds = [type(u).__name__ for u in updates]
    arts = {artifact_key(u.artifact): u.artifact for u in updates if isinstance(u, TaskArtifactUpdateEvent)}
    expect(
        set(arts) >= {"output", "souk-receipts"},
        "stream: artifacts output and souk-receipts not both sent",
        sorted(arts),
    )
    first_art = next(i for i, u in enumerate(updates) if isinstance(u, TaskArtifactUpdateEvent))
    expect(
        all(isinstance(u, TaskArtifactUpdateEvent) for u in updates[first_art:-1]),
        "stream: artifacts are not the last events before final",
        kinds,
    )
    output = arts["output"].parts[0].root
    expect(
        isinstance(output, DataPart) and output.data.get("rows") == 2,
        "stream: output.rows != 2",
        arts["output"],
    )
    bundle = bundle_of(arts["souk-receipts"].parts, "stream: souk-receipts")
    (out / "stream.souk").write_bytes(bundle)
    return {
        "task": first.id,
        "events": 1 + len(updates),
        "seqs": seqs,
        "artifacts": sorted(arts),
        "state": final.status.state.value,
        "bundle_bytes": len(bundle),
    }


async def check_question(gw: Gateway, handle):
    """(d) No CSV: the task waits for input; the answer sent to that task completes it."""
    client = await gw.client(handle, streaming=False)
    context = "a2a-test-" + uuid.uuid4().hex
    [(task, _)] = [e async for e in client.send_message(data_message({}, context_id=context))]
    expect(task.status.state == TaskState.input_required, "no CSV: state is not input-required", task.status)
    expect(task.context_id == context, "the context id given was not kept", task.context_id)
    check_hire_meta(task, handle, "question")
    message = task.status.message
    expect(message is not None, "input-required without a status message", task.status)
    texts = [p.root.text for p in message.parts if isinstance(p.root, TextPart)]
    datas = [p.root.data for p in message.parts if isinstance(p.root, DataPart)]
    expect(texts and texts[0].strip(), "the question has no text part", message)
    expect(
        datas and isinstance(datas[0].get("answer_schema"), dict),
        "the question's data part has no answer_schema",
        message,
    )

    answer = data_message(ANSWER, task_id=task.id, context_id=context)
    [(done, _)] = [e async for e in client.send_message(answer)]
    expect(done.id == task.id, "the answer made another task", done.id)
    expect(done.status.state == TaskState.completed, "after the answer: state is not completed", done.status)
    output = output_of(done)
    expect(output.get("rows") == 2, "after the answer: output.rows != 2", output)
    return {"task": task.id, "question": texts[0], "state": done.status.state.value, "rows": output["rows"]}


async def check_cancel(gw: Gateway, handle, slow_input):
    """(e) A non-blocking send returns at once; tasks/cancel ends the hire as canceled."""
    client = await gw.client(handle, streaming=False)
    started = time.monotonic()
    config = MessageSendConfiguration(blocking=False)
    [(task, _)] = [e async for e in client.send_message(data_message(slow_input), configuration=config)]
    expect(
        task.status.state in (TaskState.submitted, TaskState.working), "non-blocking send: state", task.status
    )
    check_hire_meta(task, handle, "cancel")
    canceled = await client.cancel_task(TaskIdParams(id=task.id))
    expect(canceled.id == task.id, "tasks/cancel returned another task", canceled.id)
    expect(
        canceled.status.state in (TaskState.canceled, TaskState.working),
        "tasks/cancel: state",
        canceled.status,
    )
    deadline = time.monotonic() + CANCEL_DEADLINE_S
    state = canceled.status.state
    polls = 0
    while state != TaskState.canceled:
        expect(time.monotonic() < deadline, "task not canceled within %.0f s" % CANCEL_DEADLINE_S, state)
        await asyncio.sleep(POLL_S)
        state = (await client.get_task(TaskQueryParams(id=task.id))).status.state
        polls += 1
        expect(
            state in (TaskState.working, TaskState.submitted, TaskState.canceled),
            "canceling: unexpected state",
            state,
        )
    # Canceling it again: it has ended.
    try:
        await client.cancel_task(TaskIdParams(id=task.id))
        raise CheckFailed("tasks/cancel of a canceled task succeeded")
    except A2AClientJSONRPCError as e:
        expect(rpc_error_code(e) == -32002, "tasks/cancel of a canceled task: code", e.error)
    return {
        "task": task.id,
        "first_state": task.status.state.value,
        "returned": canceled.status.state.value,
        "polls": polls,
        "seconds": round(time.monotonic() - started, 1),
    }


async def rpc(http: httpx.AsyncClient, url, body, headers=None):
    """A raw JSON-RPC POST: (HTTP status, parsed body or None)."""
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    resp = await http.post(
        url, content=content, headers={"content-type": "application/json", **(headers or {})}
    )
    try:
        return resp.status_code, resp.json()
    except ValueError:
        return resp.status_code, None


def send_body(data, metadata=None):
    params = {"message": data_message(data).model_dump(mode="json", exclude_none=True)}
    if metadata is not None:
        params["metadata"] = metadata
    return {"jsonrpc": "2.0", "id": 7, "method": "message/send", "params": params}


def rpc_code(status, body, what):
    expect(status == 200, what + ": HTTP %d" % status, body)
    expect(isinstance(body, dict) and isinstance(body.get("error"), dict), what + ": no JSON-RPC error", body)
    return body["error"].get("code")


async def check_errors(gw: Gateway, handle, anonymous: httpx.AsyncClient):
    """(f) 401 without the right token; -32001, -32602 and the other codes of docs/a2a.md."""
    endpoint = "%s/agents/%s" % (gw.base, handle)
    seen = {}
    for label, headers in (("wrong_token", {"Authorization": "Bearer not-the-token"}), ("no_token", {})):
        status, body = await rpc(
            anonymous,
            endpoint,
            {"jsonrpc": "2.0", "id": 1, "method": "tasks/get", "params": {"id": "0" * 64}},
            headers,
        )
        expect(status == 401, "%s: HTTP %d, not 401" % (label, status), body)
        expect(
            isinstance(body, dict) and (body.get("error") or {}).get("code") == -32600,
            label + ": body is not a JSON-RPC error -32600",
            body,
        )
        seen[label] = status
    # What an SDK user sees with a wrong token.
    async with httpx.AsyncClient(headers={"Authorization": "Bearer wrong"}, timeout=30) as wrong:
        client = ClientFactory(ClientConfig(streaming=False, httpx_client=wrong)).create(
            await gw.card(handle)
        )
        try:
            await client.get_task(TaskQueryParams(id="0" * 64))
            raise CheckFailed("the SDK client with a wrong token succeeded")
        except A2AClientHTTPError as e:
            expect(e.status_code == 401, "SDK client with a wrong token: HTTP status", e.status_code)

    client = await gw.client(handle, streaming=False)
    try:
        await client.get_task(TaskQueryParams(id="0" * 64))
        raise CheckFailed("tasks/get of an unknown task succeeded")
    except A2AClientJSONRPCError as e:
        expect(rpc_error_code(e) == -32001, "tasks/get of an unknown task: code", e.error)
        seen["unknown_task"] = rpc_error_code(e)
    try:
        [e async for e in client.send_message(data_message({"csv": 5}))]
        raise CheckFailed("an input violating the schema was accepted")
    except A2AClientJSONRPCError as e:
        expect(rpc_error_code(e) == -32602, "input {csv: 5}: code", e.error)
        expect(
            "csv" in json.dumps(e.error.model_dump(mode="json")),
            "input {csv: 5}: the error does not name the field",
            e.error,
        )
        seen["bad_input"] = rpc_error_code(e)
    file_msg = {
        "jsonrpc": "2.0",
        "id": 8,
        "method": "message/send",
        "params": {
            "message": {
                "role": "user",
                "messageId": str(uuid.uuid4()),
                "kind": "message",
                "parts": [
                    {
                        "kind": "file",
                        "file": {"bytes": base64.b64encode(b"a,b\n1,2\n").decode(), "mimeType": "text/csv"},
                    }
                ],
            }
        },
    }
    seen["file_part"] = rpc_code(*await rpc(gw.http, endpoint, file_msg), "a file part")
    expect(seen["file_part"] == -32005, "a file part: code", seen["file_part"])
    seen["no_agent"] = rpc_code(
        *await rpc(gw.http, gw.base + "/", send_body(CSV)), "POST / without metadata.souk.agent"
    )
    expect(seen["no_agent"] == -32602, "POST / without metadata.souk.agent: code", seen["no_agent"])
    seen["unknown_method"] = rpc_code(
        *await rpc(
            gw.http, endpoint, {"jsonrpc": "2.0", "id": 2, "method": "tasks/frobnicate", "params": {}}
        ),
        "unknown method",
    )
    expect(seen["unknown_method"] == -32601, "unknown method: code", seen["unknown_method"])
    seen["not_json"] = rpc_code(*await rpc(gw.http, endpoint, b"{not json"), "not JSON")
    expect(seen["not_json"] == -32700, "not JSON: code", seen["not_json"])
    return seen


async def run(args):
    token = Path(args.token_file).read_text().strip()
    expect(token, "the token file is empty")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    slow_input = json.loads(args.slow_input)
    base = args.url.rstrip("/")
    # Blocking sends may take up to the gateway's --max-wait (120 s by default).
    timeout = httpx.Timeout(30.0, read=180.0)
    summary = {}
    step = "start"
    async with (
        httpx.AsyncClient(headers={"Authorization": "Bearer " + token}, timeout=timeout) as http,
        httpx.AsyncClient(timeout=timeout) as anonymous,
    ):
        gw = Gateway(base, http)
        try:
            step = "cards"
            summary["cards"] = await check_cards(gw, args.agent, anonymous)
            step = "send"
            send_task, summary["send"] = await check_send(gw, args.agent, out)
            step = "stream"
            summary["stream"] = await check_stream(gw, args.agent, out, send_task)
            step = "input_required"
            summary["input_required"] = await check_question(gw, args.agent)
            step = "cancel"
            summary["cancel"] = await check_cancel(gw, args.slow_agent, slow_input)
            step = "errors"
            summary["errors"] = await check_errors(gw, args.agent, anonymous)
        except CheckFailed as e:
            raise SystemExit("gateway_client: FAILED at %s: %s" % (step, e)) from None
        except A2AClientJSONRPCError as e:
            raise SystemExit(
                "gateway_client: FAILED at %s: JSON-RPC error %s" % (step, short(e.error))
            ) from None
        except (A2AClientError, httpx.HTTPError) as e:
            raise SystemExit("gateway_client: FAILED at %s: %s: %s" % (step, type(e).__name__, e)) from None
    return summary


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="the gateway's base URL, http://127.0.0.1:PORT")
    parser.add_argument(
        "--token-file", required=True, help="the file holding the bearer token (DIR/a2a-token)"
    )
    parser.add_argument("--agent", required=True, help="csv-analyst's handle, PROVIDER/csv-analyst")
    parser.add_argument("--slow-agent", required=True, help="the handle of an agent that runs until canceled")
    parser.add_argument("--slow-input", default="{}", help="the JSON input for the slow agent (default {})")
    parser.add_argument("--out", required=True, help="directory for send.souk and stream.souk")
    args = parser.parse_args()
    summary = asyncio.run(run(args))
    print(json.dumps(summary, sort_keys=True), flush=True)


if __name__ == "__main__":
    main()
