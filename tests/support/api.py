"""A small client for the functional tier: one workspace, one credential, JSON in and out."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from chalice.test import Client

from shared.ids import new_id
from tests.support.contract import contract


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    raw: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.raw) if self.raw else None

    def header(self, name: str) -> str | None:
        lowered = {k.lower(): v for k, v in self.headers.items()}
        return lowered.get(name.lower())


@dataclass
class Api:
    workspace_id: str
    owner_user_id: str
    api_key: str
    api_key_id: str
    extra_headers: dict[str, str] = field(default_factory=dict)

    def request(self, method: str, path: str, body: Any = None, *, headers: dict[str, str] | None = None,
                raw: str | None = None, auth: bool = True) -> Reply:
        import app

        all_headers = {"Content-Type": "application/json", **self.extra_headers, **(headers or {})}
        if auth and "Authorization" not in all_headers:
            all_headers["Authorization"] = f"Bearer {self.api_key}"
        payload = raw if raw is not None else (json.dumps(body) if body is not None else None)
        return call_app(app.app, method, path, headers=all_headers, body=payload or b"")

    def get(self, path: str, **kwargs: Any) -> Reply:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> Reply:
        return self.request("POST", path, body, **kwargs)

    def patch(self, path: str, body: Any = None, **kwargs: Any) -> Reply:
        return self.request("PATCH", path, body, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Reply:
        return self.request("DELETE", path, **kwargs)

    def with_key(self, api_key: str) -> Api:
        return Api(self.workspace_id, self.owner_user_id, api_key, "", dict(self.extra_headers))


def call_app(app: Any, method: str, path: str, *, headers: dict[str, str], body: bytes | str = b"") -> Reply:
    """One request through chalice.test, its answer checked against the OpenAPI document (a mismatch fails
    the test that made the request)."""
    with Client(app) as client:
        response = client.http.request(method, path, headers=headers, body=body)
    reply = Reply(response.status_code, dict(response.headers), response.body)
    contract().check(method, unquote(path.partition("?")[0]), reply.status, reply.headers, reply.raw)
    return reply


def provision(name: str = "Test") -> Api:
    from functions.workspaces.service import provision_workspace

    made = provision_workspace(name=name, owner_email=f"owner-{new_id().lower()}@example.com")
    return Api(made.workspace_id, made.owner_user_id, made.api_key, made.api_key_id)
