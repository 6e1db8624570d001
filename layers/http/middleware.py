"""Cross-cutting HTTP concerns, registered once in app.py, in this order (outermost first):

errors → auth → rate limits → idempotency → conditional GET.
Every capability gets them by declaring its routes with `@endpoint`, never by writing them again.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from chalice import Chalice
from chalice.app import Request, Response

from layers.auth.firebase import FirebaseVerifier
from layers.auth.principals import API_KEY_PREFIX, CredentialResolver, UserPrincipal
from layers.cache import sessions
from layers.cache.ratelimit import FailureBudget, Limit, RateLimiter
from layers.db.errors import service_unavailable
from layers.http.context import InvocationContext
from layers.http.endpoint import Endpoint, endpoint_of
from layers.http.idempotency import KeyedRequest, request_fingerprint
from layers.http.problems import problem_response
from layers.http.requests import SCOPE_ATTRIBUTE, USER_ATTRIBUTE
from layers.observability.logging import get_logger
from layers.observability.metrics import DATABASE_REFUSED, RATE_LIMITED
from shared.context import Scope
from shared.errors import (
    AppError,
    BadRequest,
    Forbidden,
    MethodNotAllowed,
    NotFound,
    RateLimited,
    Unauthorized,
    UnsupportedMediaType,
)
from shared.ids import new_id
from shared.settings import Settings

GetResponse = Callable[[Request], Response]

_CHALICE_ERRORS: dict[int, type[AppError]] = {
    400: BadRequest, 403: Forbidden, 404: NotFound, 405: MethodNotAllowed, 415: UnsupportedMediaType,
}


def request_id_of(request: Request) -> str:
    context = request.lambda_context
    if isinstance(context, InvocationContext):
        return context.aws_request_id
    return getattr(context, "aws_request_id", None) or request.headers.get("x-request-id") or new_id()


def endpoint_for(app: Chalice, request: Request) -> Endpoint | None:
    entry = app.routes.get(request.path, {}).get(request.method)
    return endpoint_of(entry.view_function) if entry is not None else None


class ErrorMiddleware:
    """Typed errors → problem+json; anything else → a logged 500 with no internals; X-Request-Id always."""

    def __init__(self, capture: Callable[[BaseException], object] | None = None) -> None:
        self._capture = capture

    def __call__(self, request: Request, get_response: GetResponse) -> Response:
        request_id = request_id_of(request)
        try:
            response = get_response(request)
            response = self._from_chalice_error(response, request_id)
        except AppError as error:
            response = problem_response(error, request_id)
        except Exception as exc:  # the one place unexpected errors are caught
            response = problem_response(self._unexpected(exc, request_id), request_id)
        response.headers["X-Request-Id"] = request_id
        return response

    def _unexpected(self, exc: Exception, request_id: str) -> AppError:
        unavailable = service_unavailable(exc)
        if unavailable is not None:  # the database could not serve it: 503 + Retry-After, not a bug to report
            DATABASE_REFUSED.labels(reason=unavailable.reason.value).inc()
            get_logger().warning("database unavailable", extra={
                "request_id": request_id, "reason": unavailable.reason.value, "error": type(exc).__name__})
            return unavailable
        get_logger().exception("unhandled error", extra={"request_id": request_id})
        if self._capture is not None:
            self._capture(exc)
        return AppError("An unexpected error occurred; it has been reported.")

    @staticmethod
    def _from_chalice_error(response: Response, request_id: str) -> Response:
        # Chalice answers 405/415 itself with {"Code", "Message"}; speak problem+json there too.
        if response.status_code >= 400 and isinstance(response.body, dict) and "Code" in response.body:
            error_type = _CHALICE_ERRORS.get(response.status_code, AppError)
            translated = problem_response(error_type(str(response.body.get("Message", ""))), request_id)
            translated.headers.update({k: v for k, v in response.headers.items() if k.lower() == "allow"})
            return translated
        return response


def client_address(request: Request) -> str:
    """The client's IP as the adapter derived it (X-Forwarded-For, TRUSTED_PROXY_HOPS from the right)."""
    return str(request.context.get("identity", {}).get("sourceIp") or "unknown")


class AuthMiddleware:
    """Bearer API key, Bearer Firebase ID token, or session cookie → Scope / UserPrincipal; then permission.

    With a FailureBudget, an address that failed authentication too often (401s: unknown keys, bad tokens,
    expired sessions, failed sign-ins) is refused with 429 until its window ends, before anything it sends
    is looked up."""

    def __init__(self, app: Chalice, resolver: CredentialResolver, verifier: Callable[[], FirebaseVerifier],
                 failures: FailureBudget | None = None) -> None:
        self._app = app
        self._resolver = resolver
        self._verifier = verifier
        self._failures = failures

    def __call__(self, request: Request, get_response: GetResponse) -> Response:
        spec = endpoint_for(self._app, request)
        if spec is None or (spec.permission == "public" and request.method in ("GET", "HEAD")):
            return get_response(request)
        if self._failures is None:
            return self._authenticated(request, spec, get_response)
        client = client_address(request)
        retry_after = self._failures.retry_after(client)
        if retry_after is not None:
            RATE_LIMITED.labels(limit="auth_failures").inc()
            raise RateLimited(
                f"too many failed authentications from this address: at most {self._failures.budget} per "
                f"{self._failures.window_seconds} s", headers={"Retry-After": str(retry_after)})
        try:
            return self._authenticated(request, spec, get_response)
        except Unauthorized:  # ours, or the handler's (a public sign-in whose token did not verify)
            self._failures.spend(client)
            raise

    def _authenticated(self, request: Request, spec: Endpoint, get_response: GetResponse) -> Response:
        if spec.permission == "public":
            return get_response(request)
        scope, user = self._authenticate(request, spec)
        if scope is not None:
            self._authorize(scope, spec)
            setattr(request, SCOPE_ATTRIBUTE, scope)
            context = request.lambda_context
            if isinstance(context, InvocationContext):
                context.workspace_id = scope.workspace_id
                context.credential_id = scope.actor.id
        if user is not None:
            setattr(request, USER_ATTRIBUTE, user)
        return get_response(request)

    def _authenticate(self, request: Request, spec: Endpoint) -> tuple[Scope | None, UserPrincipal | None]:
        request_id = request_id_of(request)
        workspace_header = request.headers.get("x-workspace-id")
        authorization = request.headers.get("authorization", "")
        if authorization:
            kind, _, token = authorization.partition(" ")
            if kind.lower() != "bearer" or not token.strip():
                raise Unauthorized("use Authorization: Bearer <token>")
            token = token.strip()
            if token.startswith(API_KEY_PREFIX):
                scope = self._resolver.resolve_api_key(token)
                if scope is None:
                    raise Unauthorized("the API key is unknown or revoked")
                if spec.permission == "user":
                    raise Forbidden("this endpoint is for people, not API keys")
                if workspace_header and workspace_header != scope.workspace_id:
                    raise Forbidden("the API key belongs to another workspace")
                return replace(scope, request_id=request_id), None
            user = self._resolver.resolve_user(self._verifier().verify(token))
        else:
            user = self._from_session(request)
        if spec.permission == "user":
            return None, user
        scope = self._resolver.membership_scope(user, workspace_header)
        if scope is None:
            if workspace_header:
                raise Forbidden("you are not a member of that workspace")
            raise BadRequest("X-Workspace-Id is required: you belong to several workspaces or none")
        return replace(scope, request_id=request_id), user

    @staticmethod
    def _from_session(request: Request) -> UserPrincipal:
        token = _cookie(request, sessions.COOKIE_NAME)
        if token is None:
            raise Unauthorized()
        if request.method not in ("GET", "HEAD", "OPTIONS") and not request.headers.get("x-requested-with"):
            # A custom header forces a CORS preflight: a cross-site form cannot ride the cookie.
            raise Forbidden("cookie-authenticated writes need the X-Requested-With header")
        data = sessions.touch(token)
        if data is None:
            raise Unauthorized("the session has expired or was revoked")
        return UserPrincipal(user_id=data.user_id, email=data.email, via="session")

    @staticmethod
    def _authorize(scope: Scope, spec: Endpoint) -> None:
        if spec.permission == "write" and not scope.can_write:
            raise Forbidden("this credential can only read")
        if spec.permission == "admin" and not scope.can_admin:
            raise Forbidden("only workspace admins can do this")


def _cookie(request: Request, name: str) -> str | None:
    for part in request.headers.get("cookie", "").split(";"):
        key, _, value = part.strip().partition("=")
        if key == name and value:
            return value
    return None


class RateLimitMiddleware:
    """Per workspace and per credential; RateLimit-* headers on every answer, 429 + Retry-After past it."""

    def __init__(self, app: Chalice, settings: Settings) -> None:
        self._app = app
        self._settings = settings
        self._limiter = RateLimiter(
            window_seconds=settings.rate_limit_window_seconds, fallback_keys=settings.rate_limit_fallback_keys
        )

    def __call__(self, request: Request, get_response: GetResponse) -> Response:
        spec = endpoint_for(self._app, request)
        limits = self._limits(request, spec)
        if not limits:
            return get_response(request)
        decision = self._limiter.hit(limits)
        headers = {
            "RateLimit-Limit": str(decision.limit),
            "RateLimit-Remaining": str(decision.remaining),
            "RateLimit-Reset": str(decision.reset_seconds),
        }
        if not decision.allowed:
            RATE_LIMITED.labels(limit=decision.exceeded or "").inc()
            raise RateLimited(
                f"the {decision.exceeded} rate limit is {decision.limit} requests per "
                f"{self._settings.rate_limit_window_seconds} s",
                headers={**headers, "Retry-After": str(decision.reset_seconds)},
            )
        try:
            response = get_response(request)
        except AppError as error:  # a refused request spent its budget too: say so on the problem
            error.headers = {**headers, **error.headers}
            raise
        response.headers.update(headers)
        return response

    def _limits(self, request: Request, spec: Endpoint | None) -> list[Limit]:
        if spec is None:
            return []
        scope: Scope | None = getattr(request, SCOPE_ATTRIBUTE, None)
        user: UserPrincipal | None = getattr(request, USER_ATTRIBUTE, None)
        s = self._settings
        if scope is not None:
            return [
                Limit("workspace", scope.workspace_id, s.rate_limit_workspace),
                Limit("credential", scope.actor.id, s.rate_limit_credential),
            ]
        if user is not None:
            return [Limit("credential", user.user_id, s.rate_limit_credential)]
        if spec.permission == "public" and request.method != "GET":
            return [Limit("client", client_address(request), s.rate_limit_credential)]
        return []


class IdempotencyMiddleware:
    """`Idempotency-Key` on POST: the request takes effect once, repeats replay its answer (see KeyedRequest)."""

    def __init__(self, app: Chalice) -> None:
        self._app = app

    def __call__(self, request: Request, get_response: GetResponse) -> Response:
        key = request.headers.get("idempotency-key")
        if request.method != "POST" or not key:
            return get_response(request)
        if len(key) > 255:
            raise BadRequest("Idempotency-Key is at most 255 characters")
        scope: Scope | None = getattr(request, SCOPE_ATTRIBUTE, None)
        user: UserPrincipal | None = getattr(request, USER_ATTRIBUTE, None)
        owner = scope.workspace_id if scope else (f"user:{user.user_id}" if user else None)
        if owner is None:
            return get_response(request)  # public POSTs (session exchange) are not replayable
        fingerprint = request_fingerprint(request.method, request.context.get("path", request.path), request.raw_body)
        keyed = KeyedRequest(owner, key, fingerprint, request_id_of(request))
        return keyed.respond(lambda: get_response(request))


class ConditionalGetMiddleware:
    """If-None-Match on GET: 304 when the client already has this version."""

    def __call__(self, request: Request, get_response: GetResponse) -> Response:
        response = get_response(request)
        if request.method != "GET" or response.status_code != 200:
            return response
        tag = response.headers.get("ETag")
        wanted = request.headers.get("if-none-match")
        seen = [t.strip().removeprefix("W/") for t in (wanted or "").split(",")]
        if tag and wanted and (wanted.strip() == "*" or tag in seen):
            return Response(body="", status_code=304, headers={"ETag": tag})
        return response

