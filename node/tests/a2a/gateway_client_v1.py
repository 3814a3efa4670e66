"""On demand (not in the test command): `souk a2a serve` seen by the official a2a-sdk **1.x**
client, which reaches an A2A 0.3 agent through its v0.3 compatibility transport (picked from
the card's protocolVersion). Sends one blocking and one streaming message to csv-analyst and
checks both complete with the output and the receipt bundle.

    python3 -m venv /tmp/a2a1 && /tmp/a2a1/bin/pip install "a2a-sdk[http-server]==1.3.0"
    /tmp/a2a1/bin/python gateway_client_v1.py http://127.0.0.1:8741 DATA_DIR/a2a-token

Last run: a2a-sdk 1.3.0, both checks passed (blocking: 1 event, a completed task with both
artifacts; streaming: the task, one status update per receipt, two artifact updates, the final
completed status).
"""

import asyncio
import sys

import httpx
from a2a.client import A2ACardResolver, ClientConfig, ClientFactory
from a2a.types import a2a_pb2 as pb
from google.protobuf import json_format


async def main(base: str, token: str) -> None:
    async with httpx.AsyncClient(headers={"authorization": "Bearer " + token}, timeout=60) as h:
        gateway = await A2ACardResolver(h, base).get_agent_card()
        skill = next(s.id for s in gateway.skills if s.id.endswith("/csv-analyst"))
        card = await A2ACardResolver(h, base + "/agents/" + skill).get_agent_card()
        assert card.supported_interfaces[0].protocol_version == "0.3.0", card
        for streaming in (False, True):
            client = ClientFactory(ClientConfig(httpx_client=h, streaming=streaming)).create(card)
            msg = pb.Message(role=pb.ROLE_USER, message_id="m-%s" % streaming)
            json_format.ParseDict({"csv": "a,b\n1,2\n3,4\n"}, msg.parts.add().data)
            events = [ev async for ev in client.send_message(pb.SendMessageRequest(message=msg))]
            kinds = [ev.WhichOneof("payload") for ev in events]
            last = events[-1]
            state = (last.task.status if last.HasField("task") else last.status_update.status).state
            assert state == pb.TASK_STATE_COMPLETED, (streaming, last)
            if streaming:
                arts = [ev.artifact_update.artifact.artifact_id for ev in events if ev.HasField("artifact_update")]
            else:
                arts = [a.artifact_id for a in last.task.artifacts]
            assert {"output", "souk-receipts"} <= set(arts), arts
            print("streaming=%s: %d events %s, artifacts %s" % (streaming, len(events), sorted(set(kinds)), arts))


if __name__ == "__main__":
    with open(sys.argv[2]) as f:
        asyncio.run(main(sys.argv[1], f.read().strip()))
