"""WSGI → Chalice: the only code that knows Chalice is not behind API Gateway.

It matches the path (Chalice does no matching of its own), builds the REST v1 proxy event,
calls the app and writes its answer. Gateway-level outcomes — unknown path (404, where Chalice
would say 403), body too large (413), headers too large (431) — are answered here as problem+json. Every answer carries
X-Request-Id and lands in one JSON log line and the request metrics.
"""
from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterable
from typing import Any

from chalice import Chalice

from layers.http.context import InvocationContext
from layers.http.problems import problem_body
from layers.http.router import Router
from layers.observability.logging import get_logger
from layers.observability.metrics import HTTP_LATENCY, HTTP_REQUESTS
from shared.errors import AppError, HeadersTooLarge, NotFound, PayloadTooLarge
from shared.ids import new_id

StartResponse = Callable[..., Any]
_REASONS = {
    200: "OK", 201: "Created", 204: "No Content", 207: "Multi-Status", 304: "Not Modified", 400: "Bad Request",
    401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed", 409: "Conflict",
    412: "Precondition Failed", 413: "Content Too Large", 415: "Unsupported Media Type", 422: "Unprocessable Content",
    429: "Too Many Requests", 431: "Request Header Fields Too Large", 500: "Internal Server Error",
    503: "Service Unavailable",
}


# A refused body is read and dropped up to this much (see _drain); beyond it the connection is closed.
DRAIN_LIMIT_BYTES = 8 * 1024 * 1024


def _header_bytes(environ: dict[str, Any]) -> int:
    """The request headers' size as sent (`Name: value\r\n` each), from the WSGI environ."""
    total = 0
    for key, value in environ.items():
        if key.startswith("HTTP_") or key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            total += len(key) - (5 if key.startswith("HTTP_") else 0) + len(str(value)) + 4
    return total


def _content_length(environ: dict[str, Any]) -> int | None:
    length = environ.get("CONTENT_LENGTH") or ""
    return int(length) if length.isdigit() else None

class ChaliceWSGIAdapter:
    def __init__(self, app: Chalice, *, max_body_bytes: int, max_header_bytes: int = 16 * 1024,
                 trusted_proxy_hops: int = 1, access_log: bool = True):
        self.app = app
        self.router = Router(list(app.routes))
        self.max_body_bytes = max_body_bytes
        self.max_header_bytes = max_header_bytes
        self.trusted_proxy_hops = trusted_proxy_hops
        self.access_log = access_log
        self.logger = get_logger()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        started = time.perf_counter()
        request_id = self._request_id(environ)
        method = environ["REQUEST_METHOD"]
        path = environ.get("PATH_INFO", "/").encode("latin-1").decode("utf-8", "replace") or "/"
        context = InvocationContext(aws_request_id=request_id)
        extra: list[tuple[str, str]] = []  # repeated headers (Set-Cookie)
        match = self.router.match(path)
        route = match.template if match else "<unmatched>"
        if match is None:
            status, headers, body = self._problem(NotFound(f"no route for {path}"), request_id)
        elif (header_bytes := _header_bytes(environ)) > self.max_header_bytes:
            # Whatever the server in front let through: the app holds every request to one bound (a 16 KB
            # cookie or Authorization header is no credential, and headers are copied into the event twice).
            self._drop_body(environ)
            status, headers, body = self._problem(HeadersTooLarge(
                f"the request headers take {header_bytes} bytes; at most {self.max_header_bytes} are read"),
                request_id)
        else:
            try:
                raw_body = self._read_body(environ)
            except PayloadTooLarge as error:
                status, headers, body = self._problem(error, request_id)
            else:
                # HEAD is GET without the body (RFC 9110 9.3.2) unless a route declares it; the body is dropped below.
                head_as_get = method == "HEAD" and "HEAD" not in self.app.routes.get(match.template, {})
                invoked = "GET" if head_as_get else method
                event = self._event(environ, invoked, path, match.template, match.params, raw_body, request_id)
                status, headers, body, extra = self._invoke(event, context)
        headers.setdefault("X-Request-Id", request_id)
        start_response(f"{status} {_REASONS.get(status, 'Status')}", list(headers.items()) + extra)
        elapsed = time.perf_counter() - started
        HTTP_REQUESTS.labels(method, route, str(status)).inc()
        HTTP_LATENCY.labels(method, route, str(status)).observe(elapsed)
        if self.access_log:
            self.logger.info(
                "request",
                extra={
                    "request_id": request_id, "workspace_id": context.workspace_id, "method": method,
                    "route": route, "status": status, "latency_ms": round(elapsed * 1000, 2),
                },
            )
        return [body] if method != "HEAD" else []

    def _invoke(
        self, event: dict[str, Any], context: InvocationContext
    ) -> tuple[int, dict[str, str], bytes, list[tuple[str, str]]]:
        result = self.app(event, context)
        headers: dict[str, str] = {str(k): str(v) for k, v in (result.get("headers") or {}).items()}
        body = result.get("body") or ""
        if result.get("isBase64Encoded"):
            data = base64.b64decode(body)
        else:
            data = body.encode() if isinstance(body, str) else body
        status = int(result["statusCode"])
        lowered = {k.lower() for k in headers}
        if data and "content-type" not in lowered:
            headers["Content-Type"] = "application/json"
        headers["Content-Length"] = str(len(data))
        extra = [(name, str(v)) for name, values in (result.get("multiValueHeaders") or {}).items() for v in values]
        return status, headers, data, extra

    def _problem(self, error: AppError, request_id: str) -> tuple[int, dict[str, str], bytes]:
        data = json.dumps(problem_body(error, request_id)).encode()
        headers = {"Content-Type": "application/problem+json", "Content-Length": str(len(data)), **error.headers}
        return error.status, headers, data

    def _read_body(self, environ: dict[str, Any]) -> bytes:
        length_header = environ.get("CONTENT_LENGTH") or ""
        stream = environ.get("wsgi.input")
        if length_header.isdigit():
            length = int(length_header)
            if length > self.max_body_bytes:
                self._drain(stream, length)
                raise PayloadTooLarge(f"the body may be at most {self.max_body_bytes} bytes")
            return stream.read(length) if (stream is not None and length) else b""
        if stream is None or "chunked" not in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
            return b""  # no length and not chunked: there is no body (most GETs) — don't wait on the stream
        chunks, size = [], 0
        while size <= self.max_body_bytes:  # chunked: read until EOF or one byte past the limit
            chunk = stream.read(self.max_body_bytes + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > self.max_body_bytes:
            self._drain(stream, None)
            raise PayloadTooLarge(f"the body may be at most {self.max_body_bytes} bytes")
        return b"".join(chunks)

    def _drop_body(self, environ: dict[str, Any]) -> None:
        """Drain the body of a request refused before reading it (a GET without one is not waited on)."""
        length = _content_length(environ)
        if length is not None or "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
            self._drain(environ.get("wsgi.input"), length)

    def _drain(self, stream: Any, length: int | None) -> None:
        """Read (and drop) the rest of a refused body, up to a bound, so the 413 reaches a client that is
        still sending and the keep-alive connection stays usable; past the bound the server closes it."""
        if stream is None:
            return
        left = min(length, DRAIN_LIMIT_BYTES) if length is not None else DRAIN_LIMIT_BYTES
        while left > 0:
            chunk = stream.read(min(65_536, left))
            if not chunk:
                return
            left -= len(chunk)

    def _request_id(self, environ: dict[str, Any]) -> str:
        trace = environ.get("HTTP_X_AMZN_TRACE_ID", "")
        for part in trace.split(";"):  # "Root=1-67891233-abcdef012345678912345678;Sampled=1"
            if part.startswith("Root="):
                return part[5:]
        return new_id()

    def _client_ip(self, environ: dict[str, Any]) -> str:
        forwarded = [ip.strip() for ip in environ.get("HTTP_X_FORWARDED_FOR", "").split(",") if ip.strip()]
        if forwarded and self.trusted_proxy_hops > 0:
            # Each trusted proxy appends the address it saw; the client is that many from the right.
            return forwarded[max(len(forwarded) - self.trusted_proxy_hops, 0)]
        return str(environ.get("REMOTE_ADDR", ""))

    def _event(
        self, environ: dict[str, Any], method: str, path: str, template: str, params: dict[str, str],
        raw_body: bytes, request_id: str,
    ) -> dict[str, Any]:
        headers: dict[str, str] = {}
        for key, value in environ.items():
            if key.startswith("HTTP_"):
                headers[key[5:].replace("_", "-").lower()] = value
        if environ.get("CONTENT_TYPE"):
            headers["content-type"] = environ["CONTENT_TYPE"]
        headers["x-request-id"] = request_id
        query: dict[str, list[str]] = {}
        query_string = environ.get("QUERY_STRING", "")
        if query_string:
            from urllib.parse import parse_qsl

            for name, value in parse_qsl(query_string, keep_blank_values=True):
                query.setdefault(name, []).append(value)
        try:
            body: str | None = raw_body.decode("utf-8") if raw_body else None
            is_base64 = False
        except UnicodeDecodeError:
            body, is_base64 = base64.b64encode(raw_body).decode(), True
        return {
            "resource": template,
            "path": path,
            "httpMethod": method,
            "headers": headers,
            "multiValueHeaders": {k: [v] for k, v in headers.items()},
            "queryStringParameters": {k: v[-1] for k, v in query.items()} or None,
            "multiValueQueryStringParameters": query or None,
            "pathParameters": dict(params) or None,  # PATH_INFO is already percent-decoded
            "stageVariables": None,
            "requestContext": {
                "resourcePath": template, "httpMethod": method, "path": path, "requestId": request_id,
                "stage": "v1", "identity": {"sourceIp": self._client_ip(environ)},
            },
            "body": body,
            "isBase64Encoded": is_base64,
        }

