"""An MCP host's view of Souk: the official MCP Python SDK (`mcp` on PyPI) starts
`souk --data-dir CLIENT mcp` over stdio and uses it as an LLM client would: list the tools,
search, show the agent, hire csv-analyst (progress notifications while it runs), read the
output, answer a question, accept, verify the receipts, and read a hire's receipts resource.

Usage: python3 client.py SOUK_BINARY CLIENT_DATA_DIR
Prints one JSON line per check ("check": name, ...) and exits non-zero on the first failure.
"""

import asyncio
import json
import sys

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

EXPECTED_TOOLS = {
    "search_agents",
    "show_agent",
    "hire_agent",
    "hire_status",
    "answer_question",
    "cancel_hire",
    "accept_hire",
    "reject_hire",
    "verify_receipts",
    "list_hires",
}


def report(check, **fields):
    fields["check"] = check
    print(json.dumps(fields), flush=True)


def data(result):
    """The structured content of a tool result (or its text parsed as JSON)."""
    if result.structured_content is not None:
        return result.structured_content
    return json.loads(result.content[0].text)


def ok(result, what):
    body = data(result)
    if result.is_error:
        raise SystemExit("%s failed: %s" % (what, body))
    return body


async def main(souk, data_dir):
    params = StdioServerParameters(command=souk, args=["--data-dir", data_dir, "mcp"], env={})
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            init = await session.initialize()
            report("initialize", server=init.server_info.name, protocol=init.protocol_version)

            tools = {t.name: t for t in (await session.list_tools()).tools}
            missing = EXPECTED_TOOLS - set(tools)
            assert not missing, "tools missing: %s" % sorted(missing)
            assert "agent" in json.dumps(tools["hire_agent"].input_schema)
            report("list_tools", tools=sorted(tools))

            found = ok(await session.call_tool("search_agents", {"query": "csv"}), "search")
            agents = found["agents"]
            assert agents, "search found nothing: %s" % found
            handle = agents[0]["handle"]
            assert handle.endswith("/csv-analyst"), handle
            report("search_agents", handle=handle, results=len(agents))

            card = ok(await session.call_tool("show_agent", {"agent": handle}), "show")
            assert card["name"] == "csv-analyst", card
            assert "input_schema" in card, sorted(card)
            report("show_agent", name=card["name"])

            # A refused call is a tool error the model can read, not a protocol error.
            bad = await session.call_tool("hire_agent", {"agent": handle, "input": {"csv": 3}})
            assert bad.is_error, data(bad)
            report("hire_agent_refused", error=data(bad)["error"][:120])

            steps = []

            async def on_progress(progress, total, message):
                steps.append(message)

            hired = ok(
                await session.call_tool(
                    "hire_agent",
                    {"agent": handle, "input": {"csv": "name,price\na,3\nb,6\n"}, "wait_seconds": 120},
                    progress_callback=on_progress,
                ),
                "hire",
            )
            assert hired["state"] == "completed", hired
            assert hired["output"]["rows"] == 2, hired["output"]
            assert any("column-stats" in (s or "") for s in steps), steps
            hire_id = hired["hire_id"]
            report("hire_agent", hire=hire_id, state=hired["state"], progress=len(steps))

            status = ok(await session.call_tool("hire_status", {"hire": hire_id[:12]}), "status")
            assert status["hire_id"] == hire_id and status["output"] == hired["output"], status
            report("hire_status", state=status["state"])

            settled = ok(await session.call_tool("accept_hire", {"hire": hire_id}), "accept")
            assert settled["verdict"] == "accepted", settled
            report("accept_hire", verdict=settled["verdict"])

            verified = ok(await session.call_tool("verify_receipts", {"hire": hire_id}), "verify")
            assert verified["valid"] is True, verified
            assert verified["verdict"] == "accepted" and verified["entries"] >= 4, verified
            report("verify_receipts", entries=verified["entries"], verdict=verified["verdict"])

            # A question: no CSV in the input, so the agent asks for one.
            asked = ok(
                await session.call_tool("hire_agent", {"agent": handle, "input": {}, "wait_seconds": 120}),
                "hire (question)",
            )
            assert asked["state"] == "input-required", asked
            assert "answer_schema" in asked["question"], asked
            answered = ok(
                await session.call_tool(
                    "answer_question",
                    {"hire": asked["hire_id"], "answer": {"csv": "n\n1\n2\n3\n"}, "wait_seconds": 120},
                ),
                "answer",
            )
            assert answered["state"] == "completed" and answered["output"]["rows"] == 3, answered
            report("answer_question", state=answered["state"])
            rejected = ok(
                await session.call_tool("reject_hire", {"hire": asked["hire_id"], "reason": "test"}),
                "reject",
            )
            assert rejected["verdict"] == "disputed", rejected
            report("reject_hire", verdict=rejected["verdict"])

            resources = (await session.list_resources()).resources
            uri = "souk://hires/%s/receipts" % hire_id
            assert uri in [str(r.uri) for r in resources], [str(r.uri) for r in resources]
            read = await session.read_resource(uri)
            trace = json.loads(read.contents[0].text)
            assert trace["hire"]["hire_id"] == hire_id and len(trace["steps"]) == verified["entries"], trace
            report("read_resource", steps=len(trace["steps"]))

            listed = ok(await session.call_tool("list_hires", {}), "list_hires")
            ids = [h["hire_id"] for h in listed["hires"]]
            assert hire_id in ids and asked["hire_id"] in ids, listed
            report("list_hires", hires=len(ids))

            unknown = await session.call_tool("hire_status", {"hire": "ffffffffffff"})
            assert unknown.is_error, data(unknown)
            report("unknown_hire", error=data(unknown)["error"])


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
    report("done")
