"""Drive the real WSGI entry (`app.wsgi`: our adapter → Chalice) in-process, from many threads.

chalice.test.Client swaps `os.environ` for the duration of each request, which is not safe
from several threads at once; the adapter is what the server calls, and it is made to be.
"""
from __future__ import annotations

import io
import json
from typing import Any

from tests.support.api import Api, Reply
from tests.support.contract import checked_wsgi


def call(api: Api, method: str, path: str, body: Any = None, *, headers: dict[str, str] | None = None) -> Reply:
    import app

    raw = json.dumps(body).encode() if body is not None else b""
    path_info, _, query = path.partition("?")
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path_info,
        "QUERY_STRING": query,
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(raw)),
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.input": io.BytesIO(raw),
        "HTTP_AUTHORIZATION": f"Bearer {api.api_key}",
    }
    for name, value in (headers or {}).items():
        environ["HTTP_" + name.upper().replace("-", "_")] = value
    answer: dict[str, Any] = {}

    def start_response(status: str, response_headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        answer["status"] = int(status.split()[0])
        answer["headers"] = dict(response_headers)

    data = b"".join(checked_wsgi(app.wsgi)(environ, start_response))
    return Reply(answer["status"], answer["headers"], data)
