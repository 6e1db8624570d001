"""Typed errors. Raised anywhere, translated to RFC 9457 problem+json once, by the HTTP layer."""
from __future__ import annotations

from typing import Any


class AppError(Exception):
    """Base of every error a client may see. `slug` names the problem type."""

    status: int = 500
    slug: str = "internal-error"
    title: str = "Internal server error"

    def __init__(
        self,
        detail: str | None = None,
        *,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.errors = errors
        self.headers = headers or {}
        self.extra = extra or {}

    @property
    def type_uri(self) -> str:
        return f"urn:crm:problem:{self.slug}"


class BadRequest(AppError):
    status, slug, title = 400, "bad-request", "Bad request"


class MalformedJson(BadRequest):
    slug, title = "malformed-json", "Malformed JSON body"


class JsonTooDeep(MalformedJson):
    slug, title = "json-too-deep", "JSON nested too deep"


class Unauthorized(AppError):
    status, slug, title = 401, "unauthorized", "Authentication required"

    def __init__(self, detail: str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"WWW-Authenticate": 'Bearer realm="crm"'})
        super().__init__(detail, **kwargs)


class Forbidden(AppError):
    status, slug, title = 403, "forbidden", "Forbidden"


class NotFound(AppError):
    status, slug, title = 404, "not-found", "Not found"


class MethodNotAllowed(AppError):
    status, slug, title = 405, "method-not-allowed", "Method not allowed"


class Conflict(AppError):
    status, slug, title = 409, "conflict", "Conflict"


class UniqueConflict(Conflict):
    """A unique property clashes with an existing record; names that record."""

    slug, title = "unique-conflict", "A record with this value already exists"

    def __init__(self, *, field: str, value: Any, existing_id: str) -> None:
        super().__init__(
            f"{field} {value!r} is already used by record {existing_id}",
            extra={"existing_id": existing_id, "field": field},
            errors=[{"field": field, "message": "must be unique in the workspace", "code": "unique"}],
        )
        self.existing_id = existing_id
        self.field = field


class IdempotencyInProgress(Conflict):
    slug, title = "idempotency-in-progress", "A request with this Idempotency-Key is still running"


class IdempotencyOutcomeUnknown(Conflict):
    """The keyed request took effect but its answer was not stored: repeating it must not run it again."""

    slug, title = "idempotency-outcome-unknown", "A request with this Idempotency-Key took effect; its answer is lost"


class Gone(AppError):
    status, slug, title = 410, "gone", "Gone"


class PreconditionFailed(AppError):
    status, slug, title = 412, "precondition-failed", "The record changed since you read it"


class PayloadTooLarge(AppError):
    status, slug, title = 413, "payload-too-large", "Request body too large"


class HeadersTooLarge(AppError):
    status, slug, title = 431, "headers-too-large", "Request headers too large"


class UnsupportedMediaType(AppError):
    status, slug, title = 415, "unsupported-media-type", "Unsupported media type"


class ValidationFailed(AppError):
    status, slug, title = 422, "validation-error", "The request is not valid"


class IdempotencyKeyReused(ValidationFailed):
    slug, title = "idempotency-key-reused", "Idempotency-Key was used with a different request"


class RateLimited(AppError):
    status, slug, title = 429, "rate-limited", "Too many requests"


class ServiceUnavailable(AppError):
    status, slug, title = 503, "service-unavailable", "Service unavailable"
