"""Router policy with small fake providers: order, failover, retry counts, Retry-After cap, invalid output,
tokens and cost. No network, no real waiting (the sleeper records, the clock is fake)."""
from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from pydantic import BaseModel

from layers.ai.errors import (
    ProviderBadRequest,
    ProviderError,
    ProviderRateLimited,
    ProviderRefused,
    ProviderServerError,
    ProviderTimeout,
)
from layers.ai.router import AIRouter, configured_providers, price, use_router
from layers.ai.types import AIFailed, AIRequest, Completion, ModelChoice, ProviderPolicy
from shared.settings import reset_settings

VALID = '{"answer": "fine"}'


class Answer(BaseModel):
    answer: str


class FakeProvider:
    """Answers from a script (a Completion text or a ProviderError per call; the last repeats)."""

    def __init__(self, name: str, *script: str | ProviderError, tokens: tuple[int, int] = (10, 5)) -> None:
        self.name = name
        self._script = list(script)
        self._tokens = tokens
        self.calls: list[tuple[str, float]] = []

    def complete(self, request: AIRequest[Any], model: str, *, timeout: float) -> Completion:
        self.calls.append((model, timeout))
        step = self._script.pop(0) if len(self._script) > 1 else self._script[0]
        if isinstance(step, ProviderError):
            raise step
        return Completion(text=step, tokens_in=self._tokens[0], tokens_out=self._tokens[1], model=f"{model}-0001")


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        self.now += 0.01  # every reading moves time on a little, so latencies are positive
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def _flat_price(provider: str, model: str, tokens_in: int, tokens_out: int) -> Decimal:
    return Decimal("0.001") * tokens_in + Decimal("0.002") * tokens_out


def _router(*providers: FakeProvider, clock: FakeClock | None = None) -> tuple[AIRouter, FakeClock]:
    clock = clock or FakeClock()
    router = AIRouter({p.name: p for p in providers}, sleep=clock.sleep, clock=clock, pricer=_flat_price)
    return router, clock


def _policy(*providers: str, **options: Any) -> ProviderPolicy:
    return ProviderPolicy([ModelChoice(p, f"{p}-model") for p in providers], **options)  # type: ignore[arg-type]


REQUEST = AIRequest(task="summary", prompt_version="summary/1", system_prompt="Summarise.", output_schema=Answer)


def test_primary_answers_and_secondary_is_not_called() -> None:
    # GIVEN two healthy providers, gemini first in the policy
    openai, gemini = FakeProvider("openai", VALID), FakeProvider("gemini", VALID)
    router, _ = _router(openai, gemini)

    # WHEN a request runs
    result = router.run(REQUEST, _policy("gemini", "openai", timeout_seconds=7))

    # THEN the primary answered, with the policy's model and timeout, and the other got nothing
    assert result.output == Answer(answer="fine") and result.provider == "gemini"
    assert gemini.calls == [("gemini-model", 7)] and openai.calls == []
    assert result.model == "gemini-model-0001" and result.raw_text == VALID
    assert [a.outcome for a in result.attempts] == ["ok"] and result.attempts[0].latency_ms > 0


def test_provider_not_in_policy_is_never_called() -> None:
    # GIVEN a workspace that enabled only openai, which fails
    openai, gemini = FakeProvider("openai", ProviderServerError("500")), FakeProvider("gemini", VALID)
    router, _ = _router(openai, gemini)

    # WHEN the run fails
    with pytest.raises(AIFailed):
        router.run(REQUEST, _policy("openai"))

    # THEN gemini (configured, healthy, but not enabled) received nothing
    assert gemini.calls == []


def test_server_errors_are_retried_then_fail_over() -> None:
    # GIVEN a primary answering 500 every time
    openai, gemini = FakeProvider("openai", ProviderServerError("500")), FakeProvider("gemini", VALID)
    router, clock = _router(openai, gemini)

    # WHEN a request runs with 3 calls allowed per provider
    result = router.run(REQUEST, _policy("openai", "gemini", max_attempts_per_provider=3))

    # THEN openai was called 3 times with backoff between, then gemini answered
    assert len(openai.calls) == 3 and result.provider == "gemini"
    assert clock.sleeps == [0.25, 0.5]
    assert [a.outcome for a in result.attempts] == ["server_error"] * 3 + ["ok"]


def test_timeout_fails_over_at_once() -> None:
    # GIVEN a primary that times out
    openai, gemini = FakeProvider("openai", ProviderTimeout()), FakeProvider("gemini", VALID)
    router, clock = _router(openai, gemini)

    # WHEN a request runs
    result = router.run(REQUEST, _policy("openai", "gemini"))

    # THEN the primary was called once (a retry would double the wait) and the secondary answered
    assert len(openai.calls) == 1 and clock.sleeps == [] and result.provider == "gemini"
    assert [a.outcome for a in result.attempts] == ["timeout", "ok"]


def test_retry_after_within_cap_is_honoured_on_the_same_provider() -> None:
    # GIVEN a primary that asks for 3 s once, then answers
    openai = FakeProvider("openai", ProviderRateLimited("429", retry_after=3.0), VALID)
    router, clock = _router(openai)

    # WHEN a request runs with a 5 s cap
    result = router.run(REQUEST, _policy("openai", retry_after_cap_seconds=5))

    # THEN the router waited exactly what was asked and the same provider answered
    assert clock.sleeps == [3.0] and result.provider == "openai" and len(openai.calls) == 2


def test_retry_after_beyond_cap_fails_over_without_waiting() -> None:
    # GIVEN a primary that asks for 30 s
    openai = FakeProvider("openai", ProviderRateLimited("429", retry_after=30.0))
    gemini = FakeProvider("gemini", VALID)
    router, clock = _router(openai, gemini)

    # WHEN a request runs with a 5 s cap
    result = router.run(REQUEST, _policy("openai", "gemini", retry_after_cap_seconds=5))

    # THEN nobody waited, openai was called once, gemini answered
    assert clock.sleeps == [] and len(openai.calls) == 1 and result.provider == "gemini"


def test_rate_limit_without_retry_after_backs_off_within_the_cap() -> None:
    # GIVEN a provider rate limited without saying for how long
    openai = FakeProvider("openai", ProviderRateLimited("429"), VALID)
    router, clock = _router(openai)

    # WHEN it runs with a cap below the backoff
    router.run(REQUEST, _policy("openai", retry_after_cap_seconds=0.1))

    # THEN the wait was capped
    assert clock.sleeps == [0.1]


@pytest.mark.parametrize("error", [ProviderRefused("refusal"), ProviderBadRequest("401")])
def test_refusal_and_bad_request_fail_over_without_retry(error: ProviderError) -> None:
    # GIVEN a primary that refuses
    openai, gemini = FakeProvider("openai", error), FakeProvider("gemini", VALID)
    router, clock = _router(openai, gemini)

    # WHEN a request runs
    result = router.run(REQUEST, _policy("openai", "gemini"))

    # THEN no retry, straight to the next provider
    assert len(openai.calls) == 1 and clock.sleeps == [] and result.provider == "gemini"
    assert result.attempts[0].outcome == error.outcome


def test_invalid_output_is_retried_once_then_next_provider() -> None:
    # GIVEN a primary answering text the schema refuses (not JSON, then the wrong shape)
    openai = FakeProvider("openai", "not json", '{"answer": 3}')
    gemini = FakeProvider("gemini", VALID)
    router, _ = _router(openai, gemini)

    # WHEN a request runs
    result = router.run(REQUEST, _policy("openai", "gemini"))

    # THEN openai got exactly one retry, gemini answered, and all three calls are counted and priced
    assert len(openai.calls) == 2 and result.provider == "gemini"
    assert [a.outcome for a in result.attempts] == ["invalid_output", "invalid_output", "ok"]
    assert (result.tokens_in, result.tokens_out) == (30, 15)
    assert result.cost == 3 * (Decimal("0.010") + Decimal("0.010"))


def test_invalid_output_everywhere_raises_ai_failed_with_raw_text() -> None:
    # GIVEN providers that both answer with JSON the schema refuses
    openai = FakeProvider("openai", '{"wrong": 1}')
    gemini = FakeProvider("gemini", '{"still": "wrong"}')
    router, _ = _router(openai, gemini)

    # WHEN the run ends
    with pytest.raises(AIFailed) as failed:
        router.run(REQUEST, _policy("openai", "gemini"))

    # THEN the failure carries every attempt, the last raw text and what was spent
    assert failed.value.raw_text == '{"still": "wrong"}'
    assert [(a.provider, a.outcome) for a in failed.value.attempts] == [
        ("openai", "invalid_output"), ("openai", "invalid_output"),
        ("gemini", "invalid_output"), ("gemini", "invalid_output")]
    assert failed.value.tokens_in == 40 and failed.value.cost > 0
    # AND the attempt details carry no output text
    assert all("wrong" not in a.detail for a in failed.value.attempts)


def test_unconfigured_choice_is_recorded_and_skipped() -> None:
    # GIVEN a policy naming gemini, which this deployment has no key for
    openai = FakeProvider("openai", VALID)
    router, _ = _router(openai)

    # WHEN a request runs
    result = router.run(REQUEST, _policy("gemini", "openai"))

    # THEN gemini is an "unavailable" attempt and openai answered
    assert [(a.provider, a.outcome) for a in result.attempts] == [("gemini", "unavailable"), ("openai", "ok")]


def test_unexpected_provider_exception_fails_over() -> None:
    # GIVEN a provider whose SDK raised something we do not know
    class Broken(FakeProvider):
        def complete(self, request: AIRequest[Any], model: str, *, timeout: float) -> Completion:
            self.calls.append((model, timeout))
            raise RuntimeError("boom")

    broken, gemini = Broken("openai", VALID), FakeProvider("gemini", VALID)
    router, _ = _router(broken, gemini)

    # WHEN a request runs
    result = router.run(REQUEST, _policy("openai", "gemini"))

    # THEN it is an "error" attempt naming the class, and the next provider answered
    assert result.attempts[0].outcome == "error" and result.attempts[0].detail == "RuntimeError"
    assert result.provider == "gemini"


@pytest.fixture
def _ai_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    for name in ("OPENAI_API_KEY", "GEMINI_API_KEY", "AI_PRICES"):
        monkeypatch.delenv(name, raising=False)
    reset_settings()
    use_router(None)
    yield monkeypatch
    monkeypatch.undo()
    reset_settings()
    use_router(None)


def test_price_from_configuration_per_million_tokens(_ai_env: pytest.MonkeyPatch) -> None:
    # GIVEN prices per 1M tokens
    _ai_env.setenv("AI_PRICES", '{"openai/gpt-4o-mini": {"input": "0.15", "output": "0.60"}}')
    reset_settings()

    # WHEN calls are priced
    # THEN input and output tokens are priced separately; local and unpriced models cost 0
    assert price("openai", "gpt-4o-mini", 1_000_000, 500_000) == Decimal("0.45")
    assert price("openai", "gpt-unknown", 1000, 1000) == 0
    assert price("local", "local-rules-1", 1000, 1000) == 0


def test_configured_providers_follow_the_keys(_ai_env: pytest.MonkeyPatch) -> None:
    # GIVEN no keys
    # THEN only local is configured
    assert configured_providers() == {"local"}

    # WHEN the OpenAI key is set (and the router rebuilt)
    _ai_env.setenv("OPENAI_API_KEY", "sk-test")
    reset_settings()
    use_router(None)

    # THEN openai joins local
    assert configured_providers() == {"local", "openai"}
