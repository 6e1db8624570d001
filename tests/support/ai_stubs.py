"""Local HTTP servers that speak enough of OpenAI's chat completions API and Gemini's generateContent REST API
for the real SDKs, pointed at them by base URL, to exercise every path of the AI layer without a network.

Each stub runs a stdlib ThreadingHTTPServer on 127.0.0.1, port 0, in a thread. `respond(*modes)` scripts the
next answers (one mode per request; the last one repeats):

- "success": 200 with `answer` as the model's text and `tokens_in`/`tokens_out` as usage
- "slow": sleeps `slow_seconds` before answering (keep it above the client's timeout); stops early at shutdown
- "rate_limited": 429 with `Retry-After: <retry_after>` (Gemini also gets a google.rpc.RetryInfo detail)
- "server_error": 500
- "malformed": 200 whose text is not JSON
- "refusal": OpenAI's `refusal` field / Gemini's SAFETY finish reason

Every request is recorded (path, headers, parsed JSON body) so tests can assert what was sent — and that a
provider a workspace did not enable received nothing.
"""
from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

MODES = ("success", "slow", "rate_limited", "server_error", "malformed", "refusal")


@dataclass(frozen=True)
class RecordedRequest:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


class _Stub:
    """What both stubs share: the server thread, the script of modes, the recorded requests."""

    api: ClassVar[str] = ""

    def __init__(self, *, answer: str = '{"ok": true}', tokens_in: int = 11, tokens_out: int = 7,
                 retry_after: float = 1.0, slow_seconds: float = 2.0) -> None:
        self.answer, self.tokens_in, self.tokens_out = answer, tokens_in, tokens_out
        self.retry_after, self.slow_seconds = retry_after, slow_seconds
        self.requests: list[RecordedRequest] = []
        self._modes: list[str] = ["success"]
        self._lock = threading.Lock()
        self.stopping = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        # A short poll interval: shutdown() waits up to one interval, and every test stops its stubs.
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"{self.api}-stub", daemon=True)

    @property
    def origin(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def respond(self, *modes: str) -> None:
        """The modes of the next requests, in order; the last one repeats."""
        unknown = set(modes) - set(MODES)
        assert modes and not unknown, f"unknown stub modes {unknown}"
        with self._lock:
            self._modes = list(modes)

    def next_mode(self, request: RecordedRequest) -> str:
        with self._lock:
            self.requests.append(request)
            return self._modes.pop(0) if len(self._modes) > 1 else self._modes[0]

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.stopping.set()  # a "slow" handler still sleeping returns now
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def answer_for(self, mode: str, body: dict[str, Any]) -> tuple[int, dict[str, str], dict[str, Any]]:
        raise NotImplementedError


class OpenAIStub(_Stub):
    """POST /v1/chat/completions. Point the SDK at `base_url`."""

    api = "openai"

    @property
    def base_url(self) -> str:
        return f"{self.origin}/v1"

    def answer_for(self, mode: str, body: dict[str, Any]) -> tuple[int, dict[str, str], dict[str, Any]]:
        if mode == "rate_limited":
            headers = {"Retry-After": _seconds(self.retry_after)}
            return 429, headers, _openai_error("Rate limit reached", "rate_limit_exceeded")
        if mode == "server_error":
            return 500, {}, _openai_error("The server had an error", "server_error")
        text = "this is not JSON {" if mode == "malformed" else self.answer
        message: dict[str, Any] = {"role": "assistant", "content": text, "refusal": None}
        if mode == "refusal":
            message = {"role": "assistant", "content": None, "refusal": "I can't help with that."}
        return 200, {}, {
            "id": "chatcmpl-stub", "object": "chat.completion", "created": 0, "model": body.get("model", ""),
            "choices": [{"index": 0, "message": message, "finish_reason": "stop", "logprobs": None}],
            "usage": {"prompt_tokens": self.tokens_in, "completion_tokens": self.tokens_out,
                      "total_tokens": self.tokens_in + self.tokens_out},
        }


class GeminiStub(_Stub):
    """POST /{api_version}/models/{model}:generateContent (any version). Point the SDK at `base_url`."""

    api = "gemini"

    @property
    def base_url(self) -> str:
        return self.origin

    def answer_for(self, mode: str, body: dict[str, Any]) -> tuple[int, dict[str, str], dict[str, Any]]:
        if mode == "rate_limited":
            retry_info = {"@type": "type.googleapis.com/google.rpc.RetryInfo",
                          "retryDelay": f"{_seconds(self.retry_after)}s"}
            return 429, {"Retry-After": _seconds(self.retry_after)}, _gemini_error(
                429, "RESOURCE_EXHAUSTED", [retry_info])
        if mode == "server_error":
            return 500, {}, _gemini_error(500, "INTERNAL", [])
        usage = {"promptTokenCount": self.tokens_in, "candidatesTokenCount": self.tokens_out,
                 "totalTokenCount": self.tokens_in + self.tokens_out}
        if mode == "refusal":
            candidate: dict[str, Any] = {"finishReason": "SAFETY", "index": 0}
        else:
            text = "this is not JSON {" if mode == "malformed" else self.answer
            candidate = {"content": {"role": "model", "parts": [{"text": text}]}, "finishReason": "STOP", "index": 0}
        return 200, {}, {"candidates": [candidate], "usageMetadata": usage, "modelVersion": "gemini-stub-001"}


def _seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _openai_error(message: str, code: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": code, "param": None, "code": code}}


def _gemini_error(code: int, status: str, details: list[dict[str, Any]]) -> dict[str, Any]:
    return {"error": {"code": code, "message": status.lower(), "status": status, "details": details}}


def _handler_for(stub: _Stub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body are written separately: with Nagle's algorithm on, a keep-alive client's delayed
        # ACK would add ~40 ms to every answer, and the bench would measure that instead of the layer.
        disable_nagle_algorithm = True

        def do_POST(self) -> None:  # the stdlib's name
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else {}
            request = RecordedRequest(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            mode = stub.next_mode(request)
            if mode == "slow" and stub.stopping.wait(stub.slow_seconds):
                return  # shutting down: do not keep the server (and the test run) waiting
            status, headers, payload = stub.answer_for(mode, body)
            self._send(status, headers, payload)

        def _send(self, status: int, headers: dict[str, str], payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (its timeout): nothing to answer

        def log_message(self, format: str, *args: Any) -> None:  # the stdlib's signature
            pass

    return Handler


@contextmanager
def openai_stub(**options: Any) -> Iterator[OpenAIStub]:
    stub = OpenAIStub(**options)
    stub.start()
    try:
        yield stub
    finally:
        stub.stop()


@contextmanager
def gemini_stub(**options: Any) -> Iterator[GeminiStub]:
    stub = GeminiStub(**options)
    stub.start()
    try:
        yield stub
    finally:
        stub.stop()
