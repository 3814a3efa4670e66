"""`souk mcp --http` seen by the official MCP Python SDK's Streamable HTTP client: without the
bearer token the server answers 401; with it the client initializes, lists the tools,
searches, hires csv-analyst with progress notifications and verifies the receipts.

Usage: python3 http_client.py URL TOKEN_FILE
Prints one JSON line per check ("check": name, ...) and exits non-zero on the first failure.
"""

import asyncio
import json
import sys

import httpx2
from mcp import ClientSession
from mcp.client.streamable_http import create_mcp_http_client, streamable_http_client


def report(check, **fields):
    fields["check"] = check
    print(json.dumps(fields), flush=True)


def data(result):
    if result.structured_content is not None:
        return result.structured_content
    return json.loads(result.content[0].text)


def ok(result, what):
    body = data(result)
    if result.is_error:
        raise SystemExit("%s failed: %s" % (what, body))
    return body


async def main(url, token):
    init = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                   "clientInfo": {"name": "t", "version": "0"}},
    }
    headers = {"accept": "application/json, text/event-stream"}
    async with httpx2.AsyncClient() as raw:
        for bad in (None, "0" * 64):
            h = dict(headers)
            if bad:
                h["authorization"] = "Bearer " + bad
            r = await raw.post(url, json=init, headers=h)
            assert r.status_code == 401, (bad, r.status_code, r.text)
        r = await raw.post(url, json=init, headers={**headers, "authorization": "Bearer " + token,
                                                    "origin": "http://evil.example"})
        assert r.status_code == 403, ("a browser origin must be refused", r.status_code, r.text)
    report("unauthorized")

    client = create_mcp_http_client(headers={"authorization": "Bearer " + token})
    async with client:
        async with streamable_http_client(url, http_client=client) as (read, write):
            async with ClientSession(read, write) as session:
                init = await session.initialize()
                report("initialize", server=init.server_info.name, protocol=init.protocol_version)
                tools = sorted(t.name for t in (await session.list_tools()).tools)
                assert "hire_agent" in tools and "verify_receipts" in tools, tools
                report("list_tools", tools=len(tools))
                found = ok(await session.call_tool("search_agents", {"query": "csv"}), "search")
                handle = found["agents"][0]["handle"]
                assert handle.endswith("/csv-analyst"), handle
                steps = []

                async def on_progress(progress, total, message):
                    steps.append(message)

                hired = ok(
                    await session.call_tool(
                        "hire_agent",
                        {"agent": handle, "input": {"csv": "a\n1\n2\n"}, "wait_seconds": 120},
                        progress_callback=on_progress,
                    ),
                    "hire",
                )
                assert hired["state"] == "completed" and hired["output"]["rows"] == 2, hired
                assert steps, "no progress notification over HTTP"
                report("hire_agent", hire=hired["hire_id"], progress=len(steps))
                verified = ok(
                    await session.call_tool("verify_receipts", {"hire": hired["hire_id"]}), "verify"
                )
                assert verified["valid"] is True, verified
                report("verify_receipts", entries=verified["entries"])
    report("done")


if __name__ == "__main__":
    url, token_file = sys.argv[1], sys.argv[2]
    with open(token_file) as f:
        token = f.read().strip()
    asyncio.run(main(url, token))
