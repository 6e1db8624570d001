"""OpenAI through the official `openai` SDK: chat completions with a JSON Schema response format.

The SDK's own retries are off (`max_retries=0`): the router owns retries, failover and Retry-After, so one
`complete` is exactly one HTTP request. The client is built on first use (nothing expensive at import).
"""
from __future__ import annotations

import re
import threading
from typing import Any

import openai
from openai.types.chat import ChatCompletion

from layers.ai import prompts
from layers.ai.errors import (
    ProviderBadRequest,
    ProviderError,
    ProviderRateLimited,
    ProviderRefused,
    ProviderServerError,
    ProviderTimeout,
)
from layers.ai.providers._retry_after import seconds_from_headers
from layers.ai.types import AIRequest, Completion


class OpenAIProvider:
    name = "openai"

    def __init__(self, *, api_key: str, base_url: str | None = None) -> None:
        self._api_key = api_key
        self._base_url = base_url
        self._client: openai.OpenAI | None = None
        self._lock = threading.Lock()

    def complete(self, request: AIRequest[Any], model: str, *, timeout: float) -> Completion:
        """One chat completion. Raises ProviderError subclasses; never retries."""
        try:
            response = self._chat(request, model, timeout)
        except openai.OpenAIError as error:
            raise _translate(error) from error
        return _completion(response, model)

    def _chat(self, request: AIRequest[Any], model: str, timeout: float) -> ChatCompletion:
        return self._get_client().chat.completions.create(
            model=model,
            messages=[
                {"role": "system", "content": prompts.system_prompt(request)},
                {"role": "user", "content": prompts.render_user_content(request)},
            ],
            response_format={
                "type": "json_schema",
                # Not strict: strict mode demands every property required and no additional properties,
                # which a capability's pydantic schema need not satisfy; our own validation is the guard.
                "json_schema": {"name": _schema_name(request.task), "schema": prompts.output_schema(request),
                                "strict": False},
            },
            timeout=timeout,
        )

    def _get_client(self) -> openai.OpenAI:
        with self._lock:
            if self._client is None:
                self._client = openai.OpenAI(api_key=self._api_key, base_url=self._base_url, max_retries=0)
            return self._client


def _schema_name(task: str) -> str:
    """OpenAI allows a-z, A-Z, 0-9, _ and - (64 at most) in a response format's name."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", task)[:64] or "answer"


def _completion(response: ChatCompletion, model: str) -> Completion:
    if not response.choices:
        raise ProviderServerError("no choices")
    choice = response.choices[0]
    if choice.message.refusal:
        raise ProviderRefused("refusal")
    if choice.finish_reason == "content_filter":
        raise ProviderRefused("finish_reason=content_filter")
    usage = response.usage
    return Completion(
        text=choice.message.content or "",
        tokens_in=usage.prompt_tokens if usage else 0,
        tokens_out=usage.completion_tokens if usage else 0,
        model=response.model or model,
    )


def _translate(error: openai.OpenAIError) -> ProviderError:
    """The SDK's exception as ours, by type and status (never by message text)."""
    if isinstance(error, openai.APITimeoutError):
        return ProviderTimeout("APITimeoutError")
    if isinstance(error, openai.APIConnectionError):
        return ProviderServerError("APIConnectionError")
    if isinstance(error, openai.RateLimitError):
        return ProviderRateLimited("429", retry_after=seconds_from_headers(error.response.headers))
    if isinstance(error, openai.APIStatusError):
        if error.status_code >= 500:
            return ProviderServerError(str(error.status_code))
        return ProviderBadRequest(str(error.status_code))
    if isinstance(error, openai.ContentFilterFinishReasonError):
        return ProviderRefused(type(error).__name__)
    return ProviderServerError(type(error).__name__)
