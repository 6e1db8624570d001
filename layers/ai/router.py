"""The AI router: one request, a workspace's provider policy, a validated answer or a visible failure.

`AIRouter.run(request, policy)`:
1. Tries `policy.choices` in order (primary first). A choice whose provider is not configured is recorded as
   an `unavailable` attempt and skipped. A provider not in the policy is never called: no data goes to it.
2. Each call gets `policy.timeout_seconds`. Transient failures are retried on the same provider, at most
   `policy.max_attempts_per_provider` calls in all:
   - 429: wait its Retry-After when that is within `policy.retry_after_cap_seconds`; a longer one fails
     over at once (waiting is not allowed, and calling sooner would only be refused again). A 429 without
     Retry-After waits the backoff.
   - 5xx / unreachable: wait a short exponential backoff (capped like Retry-After), then call again.
   - timeout: fails over at once — the provider used the whole timeout, and a second call would double
     what the person waits (the issue's ≤ 10 s per request).
3. A refusal or a refused request (4xx, unknown local task) fails over at once: asking again will not help.
4. An answer is parsed and validated against `request.output_schema`. Invalid output (not JSON, or the
   schema refuses it) is asked for once more on the same provider, then the next provider is tried.
5. Nothing valid from any choice: `AIFailed` with every attempt and the last raw text, for inspection.

Tokens and cost are summed over every call that returned text in the run (invalid answers were billed
too); cost comes from `price()`. Logs and metrics carry providers, outcomes, counts and latencies — never
prompt or output text.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, NoReturn

from pydantic import ValidationError

from layers.ai.errors import ProviderError, ProviderRateLimited, ProviderTimeout
from layers.ai.metrics import AI_ATTEMPTS, AI_LATENCY, AI_RUNS, AI_TOKENS
from layers.ai.providers.local import LocalProvider
from layers.ai.types import (
    AIFailed,
    AIRequest,
    AIResult,
    Attempt,
    Completion,
    ModelChoice,
    Out,
    Provider,
    ProviderPolicy,
)
from layers.observability.logging import get_logger
from shared.settings import get_settings

Sleeper = Callable[[float], None]
Clock = Callable[[], float]
Pricer = Callable[[str, str, int, int], Decimal]

INVALID_OUTPUT_CALLS = 2  # the first answer and one retry, per provider


class AIRouter:
    def __init__(
        self,
        providers: Mapping[str, Provider],
        *,
        sleep: Sleeper = time.sleep,
        clock: Clock = time.monotonic,
        pricer: Pricer | None = None,
        backoff_seconds: float = 0.25,
    ) -> None:
        """`providers` by name ("local", "openai", "gemini"); `sleep`/`clock` injectable so tests never wait."""
        self._providers = dict(providers)
        self._sleep = sleep
        self._clock = clock
        self._pricer = pricer or price
        self._backoff_seconds = backoff_seconds

    @property
    def provider_names(self) -> set[str]:
        return set(self._providers)

    def run(self, request: AIRequest[Out], policy: ProviderPolicy) -> AIResult[Out]:
        """The first valid answer along `policy.choices`, or AIFailed (see the module docstring)."""
        run = _Run(started=self._clock())
        for choice in policy.choices:
            provider = self._providers.get(choice.provider)
            if provider is None:
                run.attempts.append(Attempt(choice.provider, choice.model, "unavailable", 0.0, "not configured"))
                continue
            answer = self._try_provider(provider, choice, request, policy, run)
            if answer is not None:
                output, completion = answer
                return self._succeeded(run, choice, output, completion)
        self._failed(request, run)

    def _try_provider(
        self, provider: Provider, choice: ModelChoice, request: AIRequest[Out], policy: ProviderPolicy, run: _Run
    ) -> tuple[Out, Completion] | None:
        """Calls one provider until it answers validly, or its retries are spent (None: fail over)."""
        transient_failures = invalid_answers = 0
        while True:
            started = self._clock()
            try:
                completion = provider.complete(request, choice.model, timeout=policy.timeout_seconds)
            except ProviderError as error:
                run.record(choice, error.outcome, self._elapsed_ms(started), error.detail)
                if not error.transient:
                    return None
                transient_failures += 1
                wait = self._wait_before_retry(error, transient_failures, policy)
                if wait is None:
                    return None
                self._sleep(wait)
                continue
            except Exception as error:  # an SDK's unexpected failure must fail over, not end the run
                run.record(choice, "error", self._elapsed_ms(started), type(error).__name__)
                return None
            latency_ms = self._elapsed_ms(started)
            # Priced by the configured model: providers answer with a dated variant (gpt-4o-mini-2024-07-18).
            run.spent(choice, completion, self._pricer(choice.provider, choice.model,
                                                       completion.tokens_in, completion.tokens_out))
            try:
                output = request.output_schema.model_validate_json(completion.text)
            except ValidationError as error:
                run.record(choice, "invalid_output", latency_ms, f"{error.error_count()} validation errors")
                invalid_answers += 1
                if invalid_answers >= INVALID_OUTPUT_CALLS:
                    return None
                continue
            run.record(choice, "ok", latency_ms)
            return output, completion

    def _wait_before_retry(self, error: ProviderError, failures: int, policy: ProviderPolicy) -> float | None:
        """Seconds to wait before calling the same provider again, or None to fail over now."""
        if failures >= policy.max_attempts_per_provider or isinstance(error, ProviderTimeout):
            return None
        cap = policy.retry_after_cap_seconds
        if isinstance(error, ProviderRateLimited) and error.retry_after is not None:
            return error.retry_after if error.retry_after <= cap else None
        return min(self._backoff_seconds * 2 ** (failures - 1), cap)

    def _elapsed_ms(self, started: float) -> float:
        return (self._clock() - started) * 1000.0

    def _succeeded(self, run: _Run, choice: ModelChoice, output: Out, completion: Completion) -> AIResult[Out]:
        AI_RUNS.labels("ok").inc()
        _log_run("ai run ok", run)
        return AIResult(
            output=output, provider=choice.provider, model=completion.model,
            tokens_in=run.tokens_in, tokens_out=run.tokens_out, cost=run.cost,
            latency_ms=self._elapsed_ms(run.started), raw_text=completion.text, attempts=tuple(run.attempts),
        )

    def _failed(self, request: AIRequest[Any], run: _Run) -> NoReturn:
        AI_RUNS.labels("failed").inc()
        _log_run("ai run failed", run)
        raise AIFailed(
            f"no allowed provider produced a valid answer for {request.task!r} ({len(run.attempts)} attempts)",
            attempts=run.attempts, raw_text=run.raw_text,
            tokens_in=run.tokens_in, tokens_out=run.tokens_out, cost=run.cost,
        )


@dataclass
class _Run:
    """What one `run` has done so far: its attempts, what they spent, the last text a provider returned."""

    started: float
    attempts: list[Attempt] = field(default_factory=list)
    tokens_in: int = 0
    tokens_out: int = 0
    cost: Decimal = Decimal(0)
    raw_text: str = ""

    def record(self, choice: ModelChoice, outcome: str, latency_ms: float, detail: str = "") -> None:
        self.attempts.append(Attempt(choice.provider, choice.model, outcome, latency_ms, detail))
        AI_ATTEMPTS.labels(choice.provider, outcome).inc()
        AI_LATENCY.labels(choice.provider, outcome).observe(latency_ms / 1000.0)

    def spent(self, choice: ModelChoice, completion: Completion, cost: Decimal) -> None:
        self.tokens_in += completion.tokens_in
        self.tokens_out += completion.tokens_out
        self.cost += cost
        self.raw_text = completion.text
        AI_TOKENS.labels(choice.provider, "in").inc(completion.tokens_in)
        AI_TOKENS.labels(choice.provider, "out").inc(completion.tokens_out)


def _log_run(message: str, run: _Run) -> None:
    """Outcomes and counts only: the prompt and the answer never reach a log line."""
    get_logger().info(message, extra={
        "ai_attempts": [f"{a.provider}:{a.outcome}" for a in run.attempts],
        "tokens_in": run.tokens_in, "tokens_out": run.tokens_out, "cost": str(run.cost),
    })


_unpriced_logged: set[tuple[str, str]] = set()


def price(provider: str, model: str, tokens_in: int, tokens_out: int) -> Decimal:
    """Cost of one call from AI_PRICES (per 1M tokens, in AI_PRICE_CURRENCY). `local` and unpriced models: 0."""
    if provider == "local":
        return Decimal(0)
    rates = get_settings().ai_prices.get(f"{provider}/{model}")
    if rates is None:
        if (provider, model) not in _unpriced_logged:  # once per model and process: not a line per call
            _unpriced_logged.add((provider, model))
            get_logger().warning("ai model has no price", extra={"provider": provider, "model": model})
        return Decimal(0)
    per_token_total = rates.get("input", Decimal(0)) * tokens_in + rates.get("output", Decimal(0)) * tokens_out
    return per_token_total / Decimal(1_000_000)


_router: AIRouter | None = None
_router_lock = threading.Lock()


def get_router() -> AIRouter:
    """The process's router, built on first use from settings: `local` always, OpenAI/Gemini when keyed."""
    global _router
    with _router_lock:
        if _router is None:
            _router = AIRouter(_providers_from_settings())
        return _router


def use_router(router: AIRouter | None) -> None:
    """Replace the process's router (tests); None: build it from settings again on next use."""
    global _router
    with _router_lock:
        _router = router


def configured_providers() -> set[str]:
    """Providers this deployment can call: "local" always, "openai"/"gemini" when their key is set."""
    return get_router().provider_names


def _providers_from_settings() -> dict[str, Provider]:
    # Each SDK is imported only when its key is set: importing them costs a second of start-up for nothing.
    settings = get_settings()
    providers: dict[str, Provider] = {"local": LocalProvider()}
    if settings.openai_api_key:
        from layers.ai.providers.openai_provider import OpenAIProvider

        providers["openai"] = OpenAIProvider(api_key=settings.openai_api_key, base_url=settings.openai_base_url)
    if settings.gemini_api_key:
        from layers.ai.providers.gemini_provider import GeminiProvider

        providers["gemini"] = GeminiProvider(api_key=settings.gemini_api_key, base_url=settings.gemini_base_url)
    return providers
