"""`crm invoke`: run one handler on a sample event, the way Lambda would.

The handler named is the one that runs: an HTTP event addressed to another route (API Gateway's
`resource`/`resourcePath` and `httpMethod`) is refused, as is an HTTP event for a job or schedule
handler and a non-HTTP event for a route, instead of running whatever the event names.

Sample events that address records carry placeholder ids (a sample cannot know a real one); `ids`
puts real ones in their place: the first for PLACEHOLDER_IDS[0], the second for PLACEHOLDER_IDS[1].
"""
from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Any

import click

from layers.http.context import InvocationContext
from shared.ids import is_valid_id, new_id
from tiers.common import LOCAL_DIR, check_settings, use_local_aws

PLACEHOLDER_IDS = ("01JAAAAAAAAAAAAAAAAAAAAAAA", "01JBBBBBBBBBBBBBBBBBBBBBBB")


class InvokeRefused(ValueError):
    """The handler and the event do not go together (or the handler does not exist): nothing ran."""


@click.command()
@click.argument("handler")
@click.option("--event", "event_file", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--api-key", envvar="CRM_API_KEY",
              help="Sent as Authorization: Bearer for HTTP events (default locally: crm local's, from "
                   ".crm-local/workspace.json)")
@click.option("--id", "ids", multiple=True, metavar="ID",
              help="A real record id for the sample's placeholder id (01JAAA...); a second --id for its "
                   "second one (01JBBB...)")
def invoke(handler: str, event_file: str, api_key: str | None, ids: tuple[str, ...]) -> None:
    """Run HANDLER on a sample event from events/, like a local Lambda invoke; print its result.

    The event must be one HANDLER takes: an HTTP event for another route is refused (exit 2)."""
    use_local_aws(required=False)
    settings = check_settings()
    event = json.loads(Path(event_file).read_text())
    if api_key is None and settings.crm_env == "local" and (LOCAL_DIR / "workspace.json").exists():
        api_key = json.loads((LOCAL_DIR / "workspace.json").read_text())["api_key"]
    try:
        left = placeholders_left(with_ids(event, ids)) if "httpMethod" in event else []
        result = invoke_handler(handler, event, api_key=api_key, ids=ids)
    except InvokeRefused as refused:
        raise click.UsageError(str(refused)) from None
    if left:
        click.echo(f"note: the event still names the placeholder id(s) {', '.join(left)}, which no record has; "
                   f"pass a real one with --id", err=True)
    click.echo(json.dumps(result, indent=2, default=str))
    status = result.get("statusCode", 200) if isinstance(result, dict) else 200
    sys.exit(0 if int(status) < 500 else 1)


def invoke_handler(name: str, event: dict[str, Any], *, api_key: str | None = None,
                   ids: tuple[str, ...] = ()) -> Any:
    """HTTP handlers are found by route name (e.g. `contacts_create`); others by `app.handler_map`."""
    app = importlib.import_module("app").app
    event = with_ids(event, ids)
    context = InvocationContext(aws_request_id=new_id(), function_name=name)
    for path, methods in app.routes.items():
        for method, entry in methods.items():
            if entry.view_name == name:
                _check_route(name, event, path, method)
                return app(_http_event(event, path, method, api_key), context)
    handler = app.handler_map.get(name)
    if handler is None:
        known = sorted({e.view_name for m in app.routes.values() for e in m.values()} | set(app.handler_map))
        raise InvokeRefused(f"unknown handler {name!r}; known: {', '.join(known)}")
    if _is_http(event):
        raise InvokeRefused(f"{name} is a job or schedule handler, but the event is an HTTP request "
                            f"({event.get('httpMethod')} {_resource(event)}): nothing ran")
    return handler(event, context)


def with_ids(event: dict[str, Any], ids: tuple[str, ...]) -> dict[str, Any]:
    """The event with each placeholder id replaced by the real id given for it (everywhere: path,
    path parameters, query, body)."""
    if len(ids) > len(PLACEHOLDER_IDS):
        raise InvokeRefused(f"at most {len(PLACEHOLDER_IDS)} ids: sample events name at most that many records")
    for given in ids:
        if not is_valid_id(given):
            raise InvokeRefused(f"{given!r} is not a record id (26 characters, like {PLACEHOLDER_IDS[0]})")
    replacements = dict(zip(PLACEHOLDER_IDS, ids, strict=False))

    def replace(value: Any) -> Any:
        if isinstance(value, str):
            for placeholder, real in replacements.items():
                value = value.replace(placeholder, real)
            return value
        if isinstance(value, dict):
            return {key: replace(item) for key, item in value.items()}
        if isinstance(value, list):
            return [replace(item) for item in value]
        return value

    return replace(event) if replacements else event  # type: ignore[no-any-return]


def placeholders_left(event: dict[str, Any]) -> list[str]:
    """The placeholder ids the event still carries (it will answer 404 for them)."""
    text = repr(event)
    return [placeholder for placeholder in PLACEHOLDER_IDS if placeholder in text]


def _is_http(event: dict[str, Any]) -> bool:
    return "httpMethod" in event or "requestContext" in event


def _resource(event: dict[str, Any]) -> str | None:
    context = event.get("requestContext") or {}
    return context.get("resourcePath") or event.get("resource")  # type: ignore[no-any-return]


def _check_route(name: str, event: dict[str, Any], path: str, method: str) -> None:
    """A route handler takes an HTTP event for its own route; one that names no route gets this one."""
    if "Records" in event or "detail-type" in event:
        raise InvokeRefused(f"{name} is an HTTP handler ({method} {path}), but the event is not an HTTP "
                            "request (a job or schedule event): nothing ran")
    context = event.get("requestContext") or {}
    named = {
        "resource": event.get("resource"), "requestContext.resourcePath": context.get("resourcePath"),
        "httpMethod": event.get("httpMethod"), "requestContext.httpMethod": context.get("httpMethod"),
    }
    expected = {"resource": path, "requestContext.resourcePath": path,
                "httpMethod": method, "requestContext.httpMethod": method}
    wrong = {key: value for key, value in named.items() if value is not None and value != expected[key]}
    if wrong:
        said = ", ".join(f"{key} {value!r}" for key, value in wrong.items())
        raise InvokeRefused(f"the event is for another route ({said}); {name} is {method} {path}: nothing ran")


def _http_event(event: dict[str, Any], path: str, method: str, api_key: str | None) -> dict[str, Any]:
    event = dict(event)
    context = dict(event.get("requestContext") or {})
    context.setdefault("resourcePath", path)
    context.setdefault("httpMethod", method)
    event["requestContext"] = context
    headers = dict(event.get("headers") or {})
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    event["headers"] = headers
    event.setdefault("multiValueQueryStringParameters", None)
    event.setdefault("pathParameters", None)
    event.setdefault("stageVariables", None)
    event.setdefault("body", None)
    return event
