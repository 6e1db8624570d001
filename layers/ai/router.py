# PLACEHOLDER: replaced by branch ai-layer
"""A minimal router: runs the local provider only, validates its output against the request's schema."""
from __future__ import annotations

import time
from decimal import Decimal

from pydantic import ValidationError

from layers.ai.providers.local import LocalProvider
from layers.ai.types import AIFailed, AIRequest, AIResult, Attempt, Out, ProviderPolicy


class AIRouter:
    def __init__(self) -> None:
        self._local = LocalProvider()

    def run(self, request: AIRequest[Out], policy: ProviderPolicy) -> AIResult[Out]:
        attempts: list[Attempt] = []
        raw = ""
        for choice in policy.choices:
            if choice.provider != "local":
                attempts.append(Attempt(choice.provider, choice.model, "error", 0.0, "not available"))
                continue
            started = time.perf_counter()
            completion = self._local.complete(request, choice.model, timeout=policy.timeout_seconds)
            latency = (time.perf_counter() - started) * 1000
            raw = completion.text
            try:
                output = request.output_schema.model_validate_json(completion.text)
            except ValidationError:
                attempts.append(Attempt("local", completion.model, "invalid_output", latency, "ValidationError"))
                continue
            attempts.append(Attempt("local", completion.model, "ok", latency))
            return AIResult(output=output, provider="local", model=completion.model, tokens_in=0, tokens_out=0,
                            cost=Decimal(0), latency_ms=latency, raw_text=raw, attempts=attempts)
        raise AIFailed("no allowed provider produced a valid answer", attempts=attempts, raw_text=raw)


_router: AIRouter | None = None


def get_router() -> AIRouter:
    global _router
    if _router is None:
        _router = AIRouter()
    return _router


def use_router(router: AIRouter | None) -> None:
    global _router
    _router = router


def configured_providers() -> set[str]:
    return {"local"}


def price(provider: str, model: str, tokens_in: int, tokens_out: int) -> Decimal:
    return Decimal(0)
