"""Gemini through `google-genai` (the maintained successor of google-generativeai, which Google ended).

JSON output is asked for with `response_mime_type="application/json"` and the answer's JSON Schema. The SDK
retries nothing unless given retry options (we give none): the router owns retries and failover. The timeout
is the client's (`HttpOptions.timeout`, in milliseconds): one client per timeout in use (a request's, a job's).
"""
from __future__ import annotations

import threading
from typing import Any

import httpx
from google import genai
from google.genai import errors as genai_errors
from google.genai import types as genai_types

from layers.ai import prompts
from layers.ai.errors import (
    ProviderBadRequest,
    ProviderError,
    ProviderRateLimited,
    ProviderRefused,
    ProviderServerError,
    ProviderTimeout,
)
from layers.ai.providers._retry_after import seconds_from_duration, seconds_from_headers
from layers.ai.types import AIRequest, Completion

try:  # the SDK may send through httpx or its fork httpx2 (a separate namespace): time-outs of either count
    import httpx2

    _TIMEOUTS: tuple[type[BaseException], ...] = (httpx.TimeoutException, httpx2.TimeoutException)
    _UNREACHABLE: tuple[type[BaseException], ...] = (httpx.TransportError, httpx2.TransportError)
except ImportError:  # pragma: no cover - httpx2 is in the lock today
    _TIMEOUTS, _UNREACHABLE = (httpx.TimeoutException,), (httpx.TransportError,)

# Finish reasons that mean the model would not answer (as opposed to stopping or running out of tokens).
_REFUSALS = frozenset({"SAFETY", "PROHIBITED_CONTENT", "BLOCKLIST", "SPII", "RECITATION"})


class GeminiProvider:
    name = "gemini"

    def __init__(self, *, api_key: str, base_url: str | None = None) -> None:
        self._api_key = api_key
        self._base_url = base_url
        self._clients: dict[int, genai.Client] = {}  # by timeout in ms: a request's and a job's
        self._lock = threading.Lock()

    def complete(self, request: AIRequest[Any], model: str, *, timeout: float) -> Completion:
        """One generateContent call. Raises ProviderError subclasses; never retries."""
        try:
            response = self._generate(request, model, timeout)
        except genai_errors.APIError as error:
            raise _translate_api_error(error) from error
        except _TIMEOUTS as error:
            raise ProviderTimeout(type(error).__name__) from error
        except _UNREACHABLE as error:
            raise ProviderServerError(type(error).__name__) from error
        return _completion(response, model)

    def _generate(self, request: AIRequest[Any], model: str, timeout: float) -> genai_types.GenerateContentResponse:
        config = genai_types.GenerateContentConfig(
            system_instruction=prompts.system_prompt(request),
            response_mime_type="application/json",
            response_json_schema=prompts.output_schema(request),
        )
        return self._client_for(timeout).models.generate_content(
            model=model, contents=prompts.render_user_content(request), config=config
        )

    def _client_for(self, timeout: float) -> genai.Client:
        """A client whose timeout is `timeout`. Timeouts are few (a request's, a job's), and a per-call
        HttpOptions makes the SDK rebuild its options on every call (~0.5 ms, see bench/ai.py)."""
        timeout_ms = max(1, int(timeout * 1000))
        with self._lock:
            client = self._clients.get(timeout_ms)
            if client is None:
                options = genai_types.HttpOptions(base_url=self._base_url, timeout=timeout_ms)
                client = self._clients[timeout_ms] = genai.Client(api_key=self._api_key, http_options=options)
            return client


def _completion(response: genai_types.GenerateContentResponse, model: str) -> Completion:
    feedback = response.prompt_feedback
    if feedback is not None and feedback.block_reason is not None:
        raise ProviderRefused(f"block_reason={_enum_name(feedback.block_reason)}")
    if not response.candidates:
        raise ProviderServerError("no candidates")
    finish = _enum_name(response.candidates[0].finish_reason)
    if finish in _REFUSALS:
        raise ProviderRefused(f"finish_reason={finish}")
    usage = response.usage_metadata
    return Completion(
        text=_text(response),
        tokens_in=(usage.prompt_token_count or 0) if usage else 0,
        tokens_out=(usage.candidates_token_count or 0) if usage else 0,
        model=response.model_version or model,
    )


def _text(response: genai_types.GenerateContentResponse) -> str:
    """The first candidate's text parts joined (what `response.text` gives, without its warnings)."""
    content = response.candidates[0].content if response.candidates else None
    return "".join(part.text or "" for part in (content.parts or [])) if content else ""


def _enum_name(value: object) -> str:
    return str(getattr(value, "value", value or ""))


def _translate_api_error(error: genai_errors.APIError) -> ProviderError:
    """The SDK's error as ours, by HTTP status (`.code`), never by message text."""
    code = error.code
    if code == 429:
        return ProviderRateLimited("429", retry_after=_retry_after(error))
    if code == 408:
        return ProviderTimeout("408")
    if isinstance(error, genai_errors.ServerError) or code >= 500:
        return ProviderServerError(str(code))
    return ProviderBadRequest(str(code))


def _retry_after(error: genai_errors.APIError) -> float | None:
    """Retry-After header, else the google.rpc.RetryInfo detail Google's APIs put in a 429 body."""
    response = getattr(error, "response", None)
    headers = getattr(response, "headers", None)
    from_header = seconds_from_headers(headers)
    if from_header is not None:
        return from_header
    details = error.details.get("error", {}).get("details", []) if isinstance(error.details, dict) else []
    for detail in details if isinstance(details, list) else []:
        if isinstance(detail, dict) and str(detail.get("@type", "")).endswith("google.rpc.RetryInfo"):
            return seconds_from_duration(detail.get("retryDelay"))
    return None
