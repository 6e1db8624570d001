"""Sentry starts only with a DSN, and what it would send carries no personal data."""
from __future__ import annotations

import warnings

from layers.observability.sentry import _scrub, init_sentry
from shared.settings import Settings


def test_sentry_stays_off_without_a_dsn() -> None:
    # GIVEN settings without SENTRY_DSN / WHEN initialising / THEN nothing starts
    assert init_sentry(Settings(CRM_ENV="test")) is False


def test_sentry_starts_with_a_dsn_and_collects_no_personal_data() -> None:
    # GIVEN a DSN (a local address: nothing is sent in this test)
    import sentry_sdk

    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)  # e.g. the deprecated send_default_pii option
        started = init_sentry(Settings(CRM_ENV="test", SENTRY_DSN="http://public@127.0.0.1:9/1"))
    try:
        # THEN the client runs with personal data off, said the way this SDK asks for, and our scrubber installed
        client = sentry_sdk.get_client()
        assert started is True
        assert client.options["send_default_pii"] is None and client.should_send_default_pii() is False
        collected = client.options["data_collection"]
        assert collected["provided_by_user"] is True
        assert collected["user_info"] is False and collected["http_bodies"] == []
        assert collected["cookies"]["mode"] == "off" and collected["stack_frame_variables"] is False
        assert collected["queues"] is False and collected["database_query_data"] is False
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
