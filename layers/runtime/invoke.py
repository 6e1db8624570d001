"""Run one handler on a sample event, the way Lambda would (`crm invoke`)."""
from __future__ import annotations

import importlib
from typing import Any

from layers.http.context import InvocationContext
from shared.ids import new_id


def invoke_handler(name: str, event: dict[str, Any], *, api_key: str | None = None) -> Any:
    """HTTP handlers are found by route name (e.g. `contacts_create`); others by `app.handler_map`."""
    app = importlib.import_module("app").app
    context = InvocationContext(aws_request_id=new_id(), function_name=name)
    for path, methods in app.routes.items():
        for method, entry in methods.items():
            if entry.view_name == name:
                return app(_http_event(event, path, method, api_key), context)
    handler = app.handler_map.get(name)
    if handler is None:
        known = sorted({e.view_name for m in app.routes.values() for e in m.values()} | set(app.handler_map))
        raise SystemExit(f"unknown handler {name!r}; known: {', '.join(known)}")
    return handler(event, context)


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
