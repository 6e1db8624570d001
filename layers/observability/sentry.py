"""Sentry: initialised before the app module is imported (its Chalice integration needs that).

What it may collect is said with `data_collection` (sentry-sdk 2.x's replacement for the deprecated
`send_default_pii`): no user identity, cookies, request bodies, query or queue payloads, and no stack
frame variables, since the records our code holds are contacts' personal data. Headers and query
parameters go through the SDK's sensitive denylist, and `_scrub` removes credentials besides.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shared.settings import Settings

if TYPE_CHECKING:
    from sentry_sdk._types import DataCollectionUserOptions

DATA_COLLECTION: DataCollectionUserOptions = {
    "user_info": False,
    "cookies": {"mode": "off"},
    "http_headers": {"request": {"mode": "denylist", "terms": ["forwarded", "-ip", "remote-", "via", "-user"]}},
    "http_bodies": [],
    "url_query_params": {"mode": "denylist"},
    "graphql": {"document": False, "variables": False},
    "gen_ai": {"inputs": False, "outputs": False},
    "database_query_data": False,
    "queues": False,
    "stack_frame_variables": False,
}

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
        data_collection=DATA_COLLECTION,
        traces_sample_rate=settings.sentry_traces_sample_rate,
        integrations=[ChaliceIntegration()],
        before_send=_scrub,  # type: ignore[arg-type]
        max_request_body_size="never",
    )
    return True
