"""The MCP server at /mcp, in process: the official `mcp` client over httpx's ASGI transport to the same ASGI
app the api tier mounts. Records are prepared and checked through the REST API (chalice.test)."""
from __future__ import annotations

from typing import Any

import httpx2
import pytest
from mcp.client.client import Client

from functions.mcp.http import McpHttpApp, mcp_asgi_app
from functions.mcp.server import ToolRunner, build_server
from functions.mcp.tools import build_tools
from functions.workspaces.service import Resolver
from layers.cache.ratelimit import FailureBudget
from shared.settings import Settings
from tests.support.api import Api
from tests.support.mcp_client import http_session, payload, run

URL = "http://testserver/mcp"


@pytest.fixture
def mcp_app() -> McpHttpApp:
    import app  # noqa: F401  # the composition root fills the ports the services ask for

    return mcp_asgi_app()


def call(mcp_app: McpHttpApp, api_key: str, tool: str, arguments: dict[str, Any]) -> tuple[bool, Any]:
    """One tool call in its own session: (is_error, the answer or the problem details)."""
    async def exchange() -> tuple[bool, Any]:
        async with http_session(URL, api_key, app=mcp_app) as session:
            result = await session.call_tool(tool, arguments)
            return result.is_error, payload(result)
    return run(exchange)


def new_key(api: Api, *scopes: str) -> str:
    reply = api.post("/v1/api-keys", {"name": "-".join(scopes), "scopes": list(scopes)})
    assert reply.status == 201, reply.json
    return str(reply.json["key"])


def contact(api: Api, **fields: Any) -> dict[str, Any]:
    reply = api.post("/v1/contacts", {"first_name": "Ada", "last_name": "Lovelace", **fields})
    assert reply.status == 201, reply.json
    return reply.json  # type: ignore[no-any-return]


def default_pipeline(api: Api) -> dict[str, Any]:
    return next(p for p in api.get("/v1/pipelines").json["data"] if p["is_default"])


def test_tools_are_listed_with_the_rest_schemas(api: Api, mcp_app: McpHttpApp) -> None:
    # GIVEN a workspace key
    # WHEN an agent lists the tools
    async def listing() -> Any:
        async with http_session(URL, api.api_key, app=mcp_app) as session:
            return await session.list_tools()
    tools = {tool.name: tool for tool in run(listing).tools}

    # THEN every capability's tool is there, each with an object input schema and a description
    assert {"search_contacts", "search_companies", "search_deals", "get_contact", "get_company", "get_deal",
            "get_timeline", "create_activity", "move_deal_stage", "report_pipeline_summary", "report_forecast",
            "report_win_rate", "report_activities"} <= set(tools)
    assert all(tool.description and tool.input_schema.get("type") == "object" for tool in tools.values())
    # AND the search schema is the search route's request body (the same filter language)
    assert {"filter_groups", "query", "sorts", "limit", "cursor"} <= set(tools["search_contacts"].input_schema[
        "properties"])
    assert tools["get_contact"].annotations is not None and tools["get_contact"].annotations.read_only_hint


def test_search_and_read_return_what_rest_returns(api: Api, mcp_app: McpHttpApp) -> None:
    # GIVEN two contacts
    ada = contact(api, email="ada@example.com")
    contact(api, first_name="Grace", last_name="Hopper")

    # WHEN an agent searches by email and reads the match
    error, page = call(mcp_app, api.api_key, "search_contacts", {
        "filter_groups": [{"filters": [{"property": "email", "operator": "EQ", "value": "ada@example.com"}]}]})
    _, read = call(mcp_app, api.api_key, "get_contact", {"id": ada["id"]})

    # THEN it finds exactly that contact, and reads the record REST reads
    assert not error and [c["id"] for c in page["data"]] == [ada["id"]]
    assert read == api.get(f"/v1/contacts/{ada['id']}").json


def test_a_note_appears_on_the_timeline_with_mcp_as_its_source(api: Api, mcp_app: McpHttpApp) -> None:
    # GIVEN a contact
    ada = contact(api)

    # WHEN an agent logs a note about it
    error, note = call(mcp_app, api.api_key, "create_activity", {
        "kind": "note", "body": "Asked for a quote", "links": {"contacts": [ada["id"]]}})

    # THEN the note is on the contact's timeline, read through MCP too
    assert not error, note
    _, timeline = call(mcp_app, api.api_key, "get_timeline", {"object_type": "contacts", "record_id": ada["id"]})
    assert ("note", note["id"]) in [(entry["kind"], entry["id"]) for entry in timeline["data"]]
    # AND its history says it came from MCP, by this key
    history = api.get(f"/v1/activities/{note['id']}/history").json["data"]
    assert {(h["source"], h["actor"]["id"]) for h in history} == {("mcp", api.api_key_id)}


def test_an_agent_asks_for_a_summary_and_gets_the_recorded_run_with_its_citations(api: Api,
                                                                                   mcp_app: McpHttpApp) -> None:
    # GIVEN a contact with a note on its timeline
    ada = contact(api)
    note = api.post("/v1/activities", {"kind": "note", "body": "Wants a quote for 40 seats",
                                       "links": {"contacts": [ada["id"]]}}).json

    # WHEN an agent asks for its summary
    error, run = call(mcp_app, api.api_key, "summarize_record", {"object_type": "contacts", "record_id": ada["id"]})

    # THEN the answer is the AI run REST records, by the local provider, citing the note, and nothing was written
    assert not error, run
    assert run["feature"] == "summary" and run["status"] == "succeeded" and run["provider"] == "local"
    assert note["id"] in run["output"]["citations"]
    assert api.get(f"/v1/ai/runs/{run['id']}").json["id"] == run["id"]
    assert api.get(f"/v1/contacts/{ada['id']}").json["updated_at"] == ada["updated_at"]


def test_move_deal_stage(api: Api, mcp_app: McpHttpApp) -> None:
    # GIVEN a deal in the first stage of the default pipeline
    stages = [s["id"] for s in default_pipeline(api)["stages"]]
    deal = api.post("/v1/deals", {"name": "Big one", "amount": "100.00", "currency": "EUR"}).json

    # WHEN an agent moves it to the second stage
    error, moved = call(mcp_app, api.api_key, "move_deal_stage", {"deal_id": deal["id"], "stage_id": stages[1]})

    # THEN the deal is there, its stage change recorded as coming from MCP
    assert not error, moved
    assert api.get(f"/v1/deals/{deal['id']}").json["stage_id"] == stages[1]
    history = api.get(f"/v1/deals/{deal['id']}/history").json["data"]
    assert any(h["field"] == "stage_id" and h["source"] == "mcp" for h in history)


def test_reports_run(api: Api, mcp_app: McpHttpApp) -> None:
    # GIVEN a deal
    api.post("/v1/deals", {"name": "Small one", "amount": "10.00", "currency": "EUR"})

    # WHEN an agent asks for the pipeline summary and a forecast over a range
    error, summary = call(mcp_app, api.api_key, "report_pipeline_summary", {})
    range_error, forecast = call(mcp_app, api.api_key, "report_forecast", {"from": "2026-01-01", "to": "2026-12-31"})

    # THEN it gets the REST report bodies
    assert not error and summary == api.get("/v1/reports/pipeline-summary").json
    assert not range_error and forecast["from"] == "2026-01-01"


def test_a_read_only_key_cannot_write(api: Api, mcp_app: McpHttpApp) -> None:
    # GIVEN a read-only key and a contact
    reader = new_key(api, "read")
    ada = contact(api)

    # WHEN it tries to log a note
    error, problem = call(mcp_app, reader, "create_activity", {
        "kind": "note", "body": "x", "links": {"contacts": [ada["id"]]}})

    # THEN the tool refuses it with the REST 403 problem, and the timeline has no note
    assert error and problem["status"] == 403 and problem["type"] == "urn:crm:problem:forbidden"
    assert api.get(f"/v1/contacts/{ada['id']}/timeline?kinds=note").json["data"] == []
    # AND it may still read
    assert call(mcp_app, reader, "get_contact", {"id": ada["id"]})[0] is False


def test_another_workspace_record_is_invisible(api: Api, other_api: Api, mcp_app: McpHttpApp) -> None:
    # GIVEN a contact in another workspace
    theirs = contact(other_api)

    # WHEN our key reads it, or writes a note on it, through MCP
    read_error, read = call(mcp_app, api.api_key, "get_contact", {"id": theirs["id"]})
    note_error, note = call(mcp_app, api.api_key, "create_activity", {
        "kind": "note", "body": "x", "links": {"contacts": [theirs["id"]]}})

    # THEN it does not exist for us: the read is a 404, the link the REST route's 422 "no contacts record"
    assert read_error and read["status"] == 404
    assert note_error and note["status"] == 422 and note["errors"][0]["code"] == "reference"
    # AND nothing is written in either workspace
    assert api.post("/v1/activities/search", {}).json["data"] == []
    assert all(e["kind"] == "history" for e in other_api.get(f"/v1/contacts/{theirs['id']}/timeline").json["data"])


def test_bad_input_is_a_tool_error_with_problem_details_and_writes_nothing(api: Api, mcp_app: McpHttpApp) -> None:
    # GIVEN a contact
    ada = contact(api)

    # WHEN an agent sends a note without a body, with an unknown field, and an unknown tool
    error, problem = call(mcp_app, api.api_key, "create_activity", {
        "kind": "note", "links": {"contacts": [ada["id"]]}, "colour": "red"})
    unknown_error, unknown = call(mcp_app, api.api_key, "drop_tables", {})

    # THEN each is a tool error carrying the REST problem details, with no stack trace
    assert error and problem["status"] == 422 and problem["type"] == "urn:crm:problem:validation-error"
    assert "colour" in {e["field"] for e in problem["errors"]}
    assert "Traceback" not in str(problem)
    assert unknown_error and unknown["status"] == 404
    # AND nothing was written
    assert api.get(f"/v1/contacts/{ada['id']}/timeline?kinds=note").json["data"] == []


@pytest.mark.parametrize("authorization", [None, "Bearer crm_not_a_key", "Basic abc"])
def test_without_a_valid_key_http_answers_401(mcp_app: McpHttpApp, authorization: str | None) -> None:
    # GIVEN no key, an unknown key, or another scheme
    headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
    if authorization:
        headers["Authorization"] = authorization

    # WHEN the client posts an initialize
    async def post() -> httpx2.Response:
        async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=mcp_app)) as client:
            return await client.post(URL, headers=headers, json={
                "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                    "protocolVersion": "2025-06-18", "capabilities": {},
                    "clientInfo": {"name": "t", "version": "1"}}})
    reply = run(post)

    # THEN 401 problem+json, with the Bearer challenge
    assert reply.status_code == 401
    assert reply.headers["content-type"] == "application/problem+json"
    assert reply.json()["status"] == 401 and reply.headers["www-authenticate"].startswith("Bearer")


def test_each_tool_call_spends_the_rest_rate_limits(api: Api) -> None:
    # GIVEN the MCP app with a credential budget of 2 calls (the REST limiter, keys and settings)
    import app  # noqa: F401

    settings = Settings(RATE_LIMIT_CREDENTIAL=2, RATE_LIMIT_WINDOW_SECONDS=1_000_000)
    limited = McpHttpApp(ToolRunner(build_tools(), settings=settings), Resolver().resolve_api_key,
                         max_body_bytes=settings.max_body_bytes)

    # WHEN the agent calls a tool three times
    answers = [call(limited, api.api_key, "search_contacts", {}) for _ in range(3)]

    # THEN the third is refused with the REST 429 problem, naming the limit
    assert [error for error, _ in answers] == [False, False, True]
    problem = answers[2][1]
    assert problem["status"] == 429 and "credential" in problem["detail"] and problem["retry_after"] > 0


def test_the_api_tier_sends_mcp_to_mcp_and_the_rest_to_chalice(api: Api) -> None:
    # GIVEN the WSGI app the api tier serves
    import io

    import app
    from tiers.api import with_mcp

    served = with_mcp(app.wsgi)

    def get(path: str) -> tuple[str, dict[str, str]]:
        answered: dict[str, Any] = {}
        environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": "", "SERVER_NAME": "t",
                   "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.input": io.BytesIO(b""),
                   "wsgi.url_scheme": "http", "wsgi.errors": io.StringIO()}
        body = served(environ, lambda status, headers, exc=None: answered.update(status=status, headers=headers))
        # the status is known as soon as the app returns (granian reads it then), before the body is read
        status = answered["status"]
        b"".join(body)
        return status, {k.lower(): v for k, v in answered["headers"]}

    # WHEN it gets /mcp and a REST path, both without a key
    mcp_status, mcp_headers = get("/mcp")
    rest_status, _ = get("/v1/contacts")

    # THEN /mcp answers the MCP server's 401 and the REST path the REST 401
    assert mcp_status.startswith("401") and mcp_headers["content-type"] == "application/problem+json"
    assert rest_status.startswith("401")


def test_an_address_that_fails_authentication_too_often_is_refused(api: Api) -> None:
    # GIVEN the MCP app with a budget of 2 failed authentications per address
    import app  # noqa: F401

    guarded = McpHttpApp(ToolRunner(build_tools()), Resolver().resolve_api_key, max_body_bytes=1024 * 1024,
                         failures=FailureBudget(budget=2, window_seconds=1_000_000, fallback_keys=100))

    def post(key: str) -> httpx2.Response:
        async def exchange() -> httpx2.Response:
            async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=guarded)) as client:
                return await client.post(URL, headers={"Authorization": f"Bearer {key}",
                                                       "Accept": "application/json, text/event-stream"},
                                         json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
        return run(exchange)

    # WHEN it guesses two keys, then sends the right one
    guesses = [post("crm_guess1").status_code, post("crm_guess2").status_code]
    then = post(api.api_key)

    # THEN the guesses are 401s and the address is refused (429 + Retry-After) before its key is looked up
    assert guesses == [401, 401]
    assert then.status_code == 429 and int(then.headers["retry-after"]) > 0


def test_a_key_revoked_while_a_stdio_agent_runs_stops_working(api: Api) -> None:
    # GIVEN the server as `crm mcp` builds it (the key resolved for every call), in memory, with a write key
    import app  # noqa: F401

    key = api.post("/v1/api-keys", {"name": "agent", "scopes": ["read", "write"]}).json
    resolver = Resolver()
    server = build_server(ToolRunner(build_tools()), lambda: resolver.resolve_api_key(key["key"]))

    # WHEN the agent searches, the key is revoked, and it searches again
    async def session_work() -> tuple[bool, Any]:
        async with Client(server) as client:
            before = await client.call_tool("search_contacts", {})
            assert api.delete(f"/v1/api-keys/{key['id']}").status == 204
            after = await client.call_tool("search_contacts", {})
            return before.is_error, payload(after)
    before_error, after = run(session_work)

    # THEN the first call worked and the second is refused as unauthenticated
    assert not before_error
    assert after["status"] == 401
