#!/usr/bin/env python3
"""A real MCP client session against groundwork, with the official Python SDK.

    mcp_client.py stdio GROUNDWORK_BIN ARGS...   (the server is started as a subprocess)
    mcp_client.py http URL TOKEN

Runs initialize, tools/list, then the tool calls given as JSON on standard input
([{"name": ..., "arguments": {...}}, ...]) and prints one JSON object: the server's name,
the tool names, and for each call its isError flag, text and structured content.
"""
import asyncio
import json
import os
import sys

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamablehttp_client


async def session_run(read, write, calls):
    async with ClientSession(read, write) as session:
        init = await session.initialize()
        tools = await session.list_tools()
        results = []
        for call in calls:
            result = await session.call_tool(call["name"], call.get("arguments", {}))
            results.append({
                "is_error": bool(result.isError),
                "text": "\n".join(c.text for c in result.content if getattr(c, "type", "") == "text"),
                "structured": result.structuredContent,
            })
        return {
            "server": init.serverInfo.name,
            "protocol": init.protocolVersion,
            "tools": sorted(t.name for t in tools.tools),
            "results": results,
        }


async def main():
    mode = sys.argv[1]
    calls = json.load(sys.stdin)
    if mode == "stdio":
        # The SDK passes only a minimal environment by default; the server needs the model's.
        params = StdioServerParameters(command=sys.argv[2], args=sys.argv[3:], env=dict(os.environ))
        async with stdio_client(params) as (read, write):
            out = await session_run(read, write, calls)
    elif mode == "http":
        headers = {"Authorization": f"Bearer {sys.argv[3]}"}
        async with streamablehttp_client(sys.argv[2], headers=headers) as (read, write, _):
            out = await session_run(read, write, calls)
    else:
        raise SystemExit(f"unknown mode {mode}")
    print(json.dumps(out))


asyncio.run(main())
