"""Sentry: initialised before the app module is imported (its Chalice integration needs that)."""
from __future__ import annotations

from typing import Any

from shared.settings import Settings

_SENSITIVE_HEADERS = {"authorization", "cookie", "x-api-key", "set-cookie"}


def _scrub(event: dict[str, Any], _hint: dict[str, Any]) -> dict[str, Any]:
    request = event.get("request") or {}
    headers = request.get("headers") or {}
    for name in list(headers):
        if name.lower() in _SENSITIVE_HEADERS:
            headers[name] = "[scrubbed]"
    request.pop("cookies", None)
    request.pop("data", None)  # bodies hold contacts' personal data
    event.pop("user", None)
    return event


def init_sentry(settings: Settings) -> bool:
    """Start Sentry when SENTRY_DSN is set. Returns whether it started."""
    if not settings.sentry_dsn:
        return False
    import sentry_sdk
    from sentry_sdk.integrations.chalice import ChaliceIntegration

    sentry_sdk.init(
        dsn=settings.sentry_dsn,
        environment=settings.crm_env,
        send_default_pii=False,
        traces_sample_rate=settings.sentry_traces_sample_rate,
        integrations=[ChaliceIntegration()],
        before_send=_scrub,  # type: ignore[arg-type]
        max_request_body_size="never",
    )
    return True
