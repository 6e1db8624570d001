"""The MCP server as agents reach it: `/mcp` on the real `crm serve` process (granian, WSGI, a2wsgi), and
`crm mcp` over stdio as a child process; both on MariaDB and Redis, through the official `mcp` client."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import mcp_types as types
import pytest
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

from tests.support.mcp_client import http_session, payload, run
from tests.system.test_serve import CRM, REPO, Server, environment, start_server, workspace

pytestmark = pytest.mark.system
__all__ = ["environment", "workspace"]  # module fixtures shared with test_serve: one database, one workspace


@pytest.fixture(scope="module")
def server(environment: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = start_server(environment, tmp_path_factory.mktemp("mcp-serve"), workers=1, threads=4)
    yield running
    running.stop()


def test_mcp_over_the_real_server(server: Server, workspace: dict[str, str]) -> None:
    # GIVEN the api tier running, and a contact made over REST on it
    with server.client(headers={"Authorization": f"Bearer {workspace['api_key']}"}) as client:
        ada = client.post("/v1/contacts", json={"first_name": "Ada", "email": "ada.mcp@example.com"}).json()

    # WHEN an agent connects to /mcp with the workspace key, lists the tools, logs a note and reads the timeline
    async def session_work() -> tuple[list[str], types.CallToolResult, Any]:
        async with http_session(f"{server.base_url}/mcp", workspace["api_key"]) as session:
            names = [tool.name for tool in (await session.list_tools()).tools]
            note = await session.call_tool("create_activity", {
                "kind": "note", "body": "Called back", "links": {"contacts": [ada["id"]]}})
            timeline = await session.call_tool("get_timeline", {"object_type": "contacts", "record_id": ada["id"]})
            return names, note, payload(timeline)
    names, note, timeline = run(session_work)

    # THEN the tools are there, the note was written and is on the timeline
    assert {"search_contacts", "create_activity", "move_deal_stage"} <= set(names)
    assert not note.is_error, payload(note)
    assert payload(note)["id"] in [entry["id"] for entry in timeline["data"]]
    # AND REST still answers beside it, unchanged
    with server.client(headers={"Authorization": f"Bearer {workspace['api_key']}"}) as client:
        assert client.get(f"/v1/contacts/{ada['id']}").status_code == 200


def test_mcp_over_http_refuses_a_missing_key(server: Server) -> None:
    # GIVEN no Authorization header WHEN the client posts to /mcp THEN 401 problem+json
    import httpx

    reply = httpx.post(f"{server.base_url}/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
                       headers={"Accept": "application/json, text/event-stream"}, timeout=10)
    assert reply.status_code == 401 and reply.headers["content-type"] == "application/problem+json"


def test_crm_mcp_over_stdio(environment: dict[str, str], workspace: dict[str, str]) -> None:
    # GIVEN `crm mcp` started the way a desktop agent starts it, with the key in CRM_API_KEY
    params = StdioServerParameters(command=str(CRM), args=["mcp"], cwd=REPO,
                                   env={**environment, "CRM_API_KEY": workspace["api_key"]})

    # WHEN the agent lists the tools and searches contacts
    async def session_work() -> tuple[list[str], types.CallToolResult]:
        async with stdio_client(params) as (read_stream, write_stream), \
                ClientSession(read_stream, write_stream) as session:
            await session.initialize()
            names = [tool.name for tool in (await session.list_tools()).tools]
            return names, await session.call_tool("search_contacts", {"query": "Ada"})
    names, found = run(session_work)

    # THEN it speaks MCP on stdout (no log line in the way) and answers from the workspace
    assert "search_contacts" in names
    assert not found.is_error, payload(found)
    assert isinstance(payload(found)["data"], list)
