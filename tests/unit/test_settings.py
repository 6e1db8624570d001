"""Settings: embedded defaults locally, and production refuses every one of them."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import ValidationError

from shared.settings import Settings

_ENV_NAMES = ("CRM_ENV", "DATABASE_URL", "REDIS_URL", "FIREBASE_AUTH_EMULATOR_HOST", "CURSOR_SECRET",
              "WEBHOOK_ALLOWED_PRIVATE_CIDRS")
SAFE_PRODUCTION: dict[str, Any] = {
    "CRM_ENV": "production",
    "DATABASE_URL": "mysql+pymysql://crm:pw@db.internal/crm",
    "REDIS_URL": "redis://cache.internal:6379/0",
    "CURSOR_SECRET": "a-real-secret",
}


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Only the keyword arguments of each test decide (the test conftest sets some of these variables)."""
    for name in _ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    yield


def _refusal(**values: Any) -> str:
    with pytest.raises(ValidationError) as caught:
        Settings(**values)
    return str(caught.value)


def test_production_with_real_services_is_accepted() -> None:
    # GIVEN every production setting pointing at a real service
    # WHEN settings are built
    settings = Settings(**SAFE_PRODUCTION)

    # THEN they are accepted as given
    assert settings.crm_env == "production"
    assert not settings.is_local
    assert settings.redis_url == "redis://cache.internal:6379/0"


def test_production_refuses_sqlite() -> None:
    # GIVEN production on the embedded SQLite WHEN built THEN refused, naming DATABASE_URL
    message = _refusal(**{**SAFE_PRODUCTION, "DATABASE_URL": "sqlite:///crm.db"})
    assert "refusing to start in production" in message
    assert "DATABASE_URL" in message


def test_production_refuses_missing_redis_url() -> None:
    # GIVEN production without REDIS_URL WHEN built THEN refused, naming REDIS_URL
    values = {k: v for k, v in SAFE_PRODUCTION.items() if k != "REDIS_URL"}
    message = _refusal(**values)
    assert "REDIS_URL" in message
    assert "DATABASE_URL" not in message  # only what is wrong is named


def test_production_refuses_the_firebase_emulator() -> None:
    # GIVEN production with the emulator host WHEN built THEN refused, naming the variable
    message = _refusal(**SAFE_PRODUCTION, FIREBASE_AUTH_EMULATOR_HOST="localhost:9099")
    assert "FIREBASE_AUTH_EMULATOR_HOST" in message


def test_production_refuses_the_default_cursor_secret() -> None:
    # GIVEN production without CURSOR_SECRET WHEN built THEN refused, naming it
    values = {k: v for k, v in SAFE_PRODUCTION.items() if k != "CURSOR_SECRET"}
    message = _refusal(**values)
    assert "CURSOR_SECRET" in message


def test_production_names_every_problem_at_once() -> None:
    # GIVEN production with nothing configured WHEN built THEN all four problems are named together
    message = _refusal(CRM_ENV="production", FIREBASE_AUTH_EMULATOR_HOST="localhost:9099")
    for name in ("DATABASE_URL", "REDIS_URL", "FIREBASE_AUTH_EMULATOR_HOST", "CURSOR_SECRET"):
        assert name in message


def test_production_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN production configured through environment variables, with the embedded database
    monkeypatch.setenv("CRM_ENV", "production")
    monkeypatch.setenv("DATABASE_URL", "sqlite:///crm.db")
    monkeypatch.setenv("REDIS_URL", "redis://cache.internal:6379/0")
    monkeypatch.setenv("CURSOR_SECRET", "a-real-secret")

    # WHEN / THEN the same refusal applies
    assert "DATABASE_URL" in _refusal()


def test_test_mode_refuses_the_firebase_emulator() -> None:
    # GIVEN test mode with the emulator host WHEN built THEN refused (it turns signature checks off)
    message = _refusal(CRM_ENV="test", FIREBASE_AUTH_EMULATOR_HOST="localhost:9099")
    assert "FIREBASE_AUTH_EMULATOR_HOST" in message


def test_local_mode_accepts_the_firebase_emulator() -> None:
    # GIVEN local mode with the emulator host
    # WHEN built
    settings = Settings(CRM_ENV="local", FIREBASE_AUTH_EMULATOR_HOST="localhost:9099")

    # THEN it is accepted
    assert settings.firebase_auth_emulator_host == "localhost:9099"
    assert settings.is_local


def test_local_defaults_are_the_embedded_ones() -> None:
    # GIVEN no configuration at all WHEN built THEN local mode on SQLite and the in-process Redis
    settings = Settings()
    assert settings.crm_env == "local"
    assert settings.database_url.startswith("sqlite")
    assert settings.redis_url is None


def test_unknown_environment_name_is_refused() -> None:
    # GIVEN a CRM_ENV that is not one of local/test/production WHEN built THEN refused
    with pytest.raises(ValidationError):
        Settings(CRM_ENV="staging")


def test_production_refuses_private_webhook_targets() -> None:
    # GIVEN production with private networks opened to webhooks WHEN built THEN refused, naming the setting
    message = _refusal(**{**SAFE_PRODUCTION, "WEBHOOK_ALLOWED_PRIVATE_CIDRS": ["10.0.0.0/8"]})
    assert "WEBHOOK_ALLOWED_PRIVATE_CIDRS" in message
