"""Who a Socket.io connection is: the same credentials, resolver and answers as the REST API's auth.

At connect: the `auth` payload's `token` (a workspace API key, or a Firebase ID token with `workspace_id`)
or the session cookie. The grant is kept, and checked again on a timer (`recheck`): a revoked key, an
ended session or a removed membership raises, and the server disconnects the client. A Firebase ID token
is verified once, at connect (it expires within the hour; the membership is what is checked again).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from layers.auth.firebase import FirebaseVerifier
from layers.auth.principals import API_KEY_PREFIX, CredentialResolver, UserPrincipal
from layers.cache import sessions
from shared.context import Scope
from shared.cursors import decode_cursor
from shared.errors import BadRequest, Forbidden, Unauthorized, ValidationFailed

MAX_FIELD_CHARS = 8192


@dataclass(frozen=True)
class Credentials:
    token: str | None = None
    workspace_id: str | None = None
    session: str | None = None


@dataclass(frozen=True)
class Grant:
    """What a connection authenticated with, kept to check it again."""

    via: Literal["api_key", "firebase", "session"]
    scope: Scope
    api_key: str | None = None
    user: UserPrincipal | None = None
    session: str | None = None


def credentials_from(auth: Any, environ: Mapping[str, Any]) -> Credentials:
    """The connect request's credentials: the `auth` payload first, else the session cookie."""
    payload = auth if isinstance(auth, dict) else {}
    token, workspace_id = payload.get("token"), payload.get("workspace_id")
    for name, value in (("token", token), ("workspace_id", workspace_id)):
        if value is not None and (not isinstance(value, str) or len(value) > MAX_FIELD_CHARS):
            raise BadRequest(f"auth.{name} must be a string")
    if isinstance(token, str) and token.lower().startswith("bearer "):
        token = token[7:]
    return Credentials(token=(token or "").strip() or None, workspace_id=workspace_id or None,
                       session=_cookie(str(environ.get("HTTP_COOKIE", "")), sessions.COOKIE_NAME))


def resume_position(auth: Any, cursor_secret: str) -> int | None:
    """`after` of the auth payload: an event-log cursor (`next_cursor` of GET /v1/events) or a sequence."""
    after = auth.get("after") if isinstance(auth, dict) else None
    if after is None:
        return None
    if isinstance(after, bool):
        raise _bad_after()
    if isinstance(after, int):
        if after < 0:
            raise _bad_after()
        return after
    if isinstance(after, str) and after.isdigit() and len(after) < 20:
        return int(after)
    if not isinstance(after, str) or len(after) > 200:
        raise _bad_after()
    position = decode_cursor(after, cursor_secret).get("after")  # 422 for a cursor we did not issue
    if not isinstance(position, int) or position < 0:
        raise _bad_after()
    return position


def _bad_after() -> ValidationFailed:
    return ValidationFailed("after: an event log cursor or a sequence number", errors=[
        {"field": "after", "message": "an event log cursor (`next_cursor`) or a sequence number", "code": "invalid"}])


class ConnectAuth:
    def __init__(self, resolver: CredentialResolver, verifier: Callable[[], FirebaseVerifier]) -> None:
        self._resolver = resolver
        self._verifier = verifier

    def authenticate(self, credentials: Credentials) -> Grant:
        """The grant, or the REST API's error for the same credentials (401, 403, 400)."""
        token = credentials.token
        if token and token.startswith(API_KEY_PREFIX):
            scope = self._resolver.resolve_api_key(token)
            if scope is None:
                raise Unauthorized("the API key is unknown or revoked")
            if credentials.workspace_id and credentials.workspace_id != scope.workspace_id:
                raise Forbidden("the API key belongs to another workspace")
            return Grant("api_key", replace(scope, source="realtime"), api_key=token)
        if token:
            user = self._resolver.resolve_user(self._verifier().verify(token))
            return Grant("firebase", self._membership(user, credentials.workspace_id), user=user)
        if credentials.session:
            user = self._session_user(credentials.session)
            return Grant("session", self._membership(user, credentials.workspace_id), user=user,
                         session=credentials.session)
        raise Unauthorized("send auth: {token: <API key or Firebase ID token>, workspace_id} or the session cookie")

    def recheck(self, grant: Grant) -> Scope:
        """The credential's scope now (visibility refreshed); raises when it no longer holds."""
        if grant.via == "api_key":
            assert grant.api_key is not None
            scope = self._resolver.resolve_api_key(grant.api_key)
            if scope is None:
                raise Unauthorized("the API key was revoked")
            return replace(scope, source="realtime")
        assert grant.user is not None
        if grant.via == "session":
            assert grant.session is not None
            self._session_user(grant.session)
        return self._membership(grant.user, grant.scope.workspace_id)

    def _membership(self, user: UserPrincipal, workspace_id: str | None) -> Scope:
        scope = self._resolver.membership_scope(user, workspace_id)
        if scope is None:
            if workspace_id:
                raise Forbidden("you are not a member of that workspace")
            raise BadRequest("auth.workspace_id is required: you belong to several workspaces or none")
        return replace(scope, source="realtime")

    @staticmethod
    def _session_user(token: str) -> UserPrincipal:
        data = sessions.touch(token)
        if data is None:
            raise Unauthorized("the session has expired or was revoked")
        return UserPrincipal(user_id=data.user_id, email=data.email, via="session")


def _cookie(header: str, name: str) -> str | None:
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name and value:
            return value
    return None


def client_address(environ: Mapping[str, Any], trusted_proxy_hops: int) -> str:
    """The client's IP: X-Forwarded-For counted `trusted_proxy_hops` from the right, as the REST adapter does."""
    forwarded = [p.strip() for p in str(environ.get("HTTP_X_FORWARDED_FOR", "")).split(",") if p.strip()]
    if forwarded and trusted_proxy_hops > 0:
        return forwarded[max(len(forwarded) - trusted_proxy_hops, 0)]
    return str(environ.get("REMOTE_ADDR") or "unknown")
