"""The OpenAPI document as a contract on every answer the tests receive.

`check(method, path, status, headers, body)` fails (AssertionError naming the operation) unless the answer is
one the document describes for that operation: a status it lists, a content type it lists for that status
(errors always application/problem+json), a body valid against the schema (JSON Schema 2020-12, as OpenAPI
3.1 uses; formats checked), no body where none is documented. `tests/support/api.py` runs it on every
request the functional and integration tiers make; `checked_wsgi` wraps the WSGI entry for the tests that
drive it directly.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from functools import cache
from typing import Any
from urllib.parse import quote

import httpx
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from layers.http.router import Router

PROBLEM_JSON = "application/problem+json"
_DOCUMENT_URI = "urn:crm:openapi"


class Contract:
    def __init__(self, document: dict[str, Any]) -> None:
        self._paths: dict[str, Any] = document["paths"]
        self._router = Router(list(self._paths))
        self._registry: Registry[Any] = Registry().with_resource(_DOCUMENT_URI, DRAFT202012.create_resource(document))
        self._validators: dict[str, Draft202012Validator] = {}

    def check(self, method: str, path: str, status: int, headers: Mapping[str, str], body: bytes) -> None:
        """Raise AssertionError when this answer is not one the document describes for the request
        (`path` as the router sees it: percent-decoded, without the query)."""
        media_type = _media_type(headers)
        match = self._router.match(path)
        operations = self._paths[match.template] if match else {}
        name = method.lower() if method != "HEAD" else "get"
        if name not in operations:
            # No operation: the gateway's 404 (unknown path) or 405 (a method the path has not), as a problem.
            where = f"{method} {path}"
            assert status in (404, 405), f"{where}: no documented operation, yet the answer was {status}"
            assert media_type == PROBLEM_JSON, f"{where}: {status} answered as {media_type!r}, not {PROBLEM_JSON}"
            return
        assert match is not None
        operation = operations[name]
        where = f"{method} {match.template} ({operation['operationId']})"
        responses: dict[str, Any] = operation["responses"]
        response = responses.get(str(status))
        assert response is not None, (
            f"{where} answered {status}, which the document does not list (it lists {', '.join(responses)}): "
            f"{body[:300]!r}")
        content: dict[str, Any] = response.get("content") or {}
        if method == "HEAD":  # GET's answer without its body
            return
        if not content:
            assert not body, f"{where}: {status} has no documented body, yet one came: {body[:300]!r}"
            return
        if status >= 400:
            assert media_type == PROBLEM_JSON, f"{where}: the {status} error came as {media_type!r}, not {PROBLEM_JSON}"
        assert media_type in content, (
            f"{where}: {status} came as {media_type!r}; the document says {', '.join(content)}")
        if not _is_json(media_type):
            return
        try:
            value = json.loads(body)
        except ValueError:
            raise AssertionError(f"{where}: {status} {media_type} body is not JSON: {body[:300]!r}") from None
        pointer = "".join("/" + quote(part.replace("~", "~0").replace("/", "~1"), safe="") for part in (
            "paths", match.template, name, "responses", str(status), "content", media_type, "schema"))
        error = best_match(self._validator(pointer).iter_errors(value))
        if error is not None:
            at = "/".join(str(part) for part in error.absolute_path) or "(the body)"
            raise AssertionError(f"{where}: {status} body does not match the document at {at}: {error.message}")

    def _validator(self, pointer: str) -> Draft202012Validator:
        validator = self._validators.get(pointer)
        if validator is None:
            validator = Draft202012Validator({"$ref": f"{_DOCUMENT_URI}#{pointer}"}, registry=self._registry,
                                             format_checker=Draft202012Validator.FORMAT_CHECKER)
            self._validators[pointer] = validator
        return validator


def _media_type(headers: Mapping[str, str]) -> str:
    value = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
    return value.partition(";")[0].strip().lower()


def _is_json(media_type: str) -> bool:
    return media_type == "application/json" or media_type.endswith("+json")


@cache
def contract() -> Contract:
    """The contract of the app under test (built once per test process, from the route table)."""
    import app
    from layers.http.openapi import build_openapi

    return Contract(build_openapi(app.app))


def check_httpx(response: httpx.Response) -> None:
    """An httpx response hook for the tests that talk to a real server over HTTP."""
    response.read()
    contract().check(response.request.method, response.request.url.path, response.status_code, response.headers,
                     response.content)


WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def checked_wsgi(wsgi: WSGIApp) -> WSGIApp:
    """A WSGI app that checks each of its answers against the contract before returning it."""

    def call(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        seen: dict[str, Any] = {}

        def remember(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            seen["status"], seen["headers"] = int(status.split()[0]), dict(headers)
            return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

        body = b"".join(wsgi(environ, remember))
        path = environ.get("PATH_INFO", "/").encode("latin-1").decode("utf-8", "replace")  # as the adapter reads it
        contract().check(environ["REQUEST_METHOD"], path, seen["status"], seen["headers"], body)
        return [body]

    return call
