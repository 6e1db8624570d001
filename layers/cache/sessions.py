"""Browser sessions: opaque tokens in an HttpOnly cookie, state in Redis, sliding expiry."""
from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import asdict, dataclass

import redis

from layers.cache.client import guarded
from shared.errors import ServiceUnavailable
from shared.settings import get_settings

COOKIE_NAME = "crm_session"


@dataclass(frozen=True)
class SessionData:
    user_id: str
    email: str | None


def _key(token: str) -> str:
    # Only a hash of the token is stored: a Redis dump does not hand out live sessions.
    return "sess:" + hashlib.sha256(token.encode()).hexdigest()


def _unavailable() -> None:
    raise ServiceUnavailable("sessions are unavailable right now", headers={"Retry-After": "1"})


def create(data: SessionData) -> str:
    token = secrets.token_urlsafe(32)
    ttl = get_settings().session_ttl_seconds
    guarded("sessions", lambda r: r.set(_key(token), json.dumps(asdict(data)), ex=ttl), _unavailable)
    return token


def touch(token: str) -> SessionData | None:
    """Return the session and push its expiry forward, or None if unknown/expired."""
    ttl = get_settings().session_ttl_seconds

    def read(client: redis.Redis) -> str | None:
        pipe = client.pipeline(transaction=False)
        pipe.get(_key(token))
        pipe.expire(_key(token), ttl)
        raw, _ = pipe.execute()
        return raw  # type: ignore[no-any-return]

    raw = guarded("sessions", read, _unavailable)
    return SessionData(**json.loads(raw)) if raw else None


def revoke(token: str) -> None:
    guarded("sessions", lambda r: r.delete(_key(token)), _unavailable)
