"""AI settings: the issue's timeout ceilings are enforced at start-up, not trusted."""
from __future__ import annotations

import pytest
from pydantic import ValidationError

from shared.settings import Settings


@pytest.mark.parametrize(("name", "value"), [
    ("AI_REQUEST_TIMEOUT_SECONDS", "11"), ("AI_JOB_TIMEOUT_SECONDS", "61"), ("AI_REQUEST_TIMEOUT_SECONDS", "0"),
    ("AI_PRICE_CURRENCY", "usd"), ("AI_PRICES", '{"openai/m": {"input": "cheap"}}'),
])
def test_out_of_range_ai_settings_are_refused(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    # GIVEN a value beyond what the issue allows (or not a price)
    monkeypatch.setenv(name, value)

    # WHEN settings load THEN they refuse to
    with pytest.raises(ValidationError):
        Settings()


def test_ai_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN no AI configuration
    for name in ("OPENAI_API_KEY", "GEMINI_API_KEY", "AI_PRICES", "AI_REQUEST_TIMEOUT_SECONDS",
                 "AI_JOB_TIMEOUT_SECONDS", "AI_RETRY_AFTER_CAP_SECONDS", "AI_PRICE_CURRENCY"):
        monkeypatch.delenv(name, raising=False)

    # WHEN settings load
    settings = Settings()

    # THEN no provider key, the ceilings as defaults, USD, a 5 s Retry-After cap
    assert settings.openai_api_key is None and settings.gemini_api_key is None
    assert (settings.ai_request_timeout_seconds, settings.ai_job_timeout_seconds) == (10, 60)
    assert (settings.ai_price_currency, settings.ai_retry_after_cap_seconds, settings.ai_prices) == ("USD", 5, {})
