"""Sentry starts only with a DSN, and what it would send carries no personal data."""
from __future__ import annotations

from layers.observability.sentry import _scrub, init_sentry
from shared.settings import Settings


def test_sentry_stays_off_without_a_dsn() -> None:
    # GIVEN settings without SENTRY_DSN / WHEN initialising / THEN nothing starts
    assert init_sentry(Settings(CRM_ENV="test")) is False


def test_sentry_starts_with_a_dsn_and_without_default_pii() -> None:
    # GIVEN a DSN (a local address: nothing is sent in this test)
    import sentry_sdk

    started = init_sentry(Settings(CRM_ENV="test", SENTRY_DSN="http://public@127.0.0.1:9/1"))
    try:
        # THEN the client runs with personal data off and our scrubber installed
        client = sentry_sdk.get_client()
        assert started is True
        assert client.options["send_default_pii"] is False
        assert client.options["before_send"] is _scrub
    finally:
        sentry_sdk.init(dsn=None)


def test_scrub_removes_credentials_bodies_cookies_and_user() -> None:
    # GIVEN an event as the Chalice integration would build it
    event = {
        "request": {
            "headers": {"Authorization": "Bearer crm_secret", "Cookie": "crm_session=abc", "Accept": "json"},
            "cookies": {"crm_session": "abc"},
            "data": {"email": "ada@example.com"},
        },
        "user": {"email": "ada@example.com"},
    }
    # WHEN it is scrubbed
    scrubbed = _scrub(event, {})
    # THEN no credential, cookie, body or user survives; harmless headers do
    headers = scrubbed["request"]["headers"]
    assert headers["Authorization"] == "[scrubbed]" and headers["Cookie"] == "[scrubbed]"
    assert headers["Accept"] == "json"
    assert "cookies" not in scrubbed["request"] and "data" not in scrubbed["request"]
    assert "user" not in scrubbed
