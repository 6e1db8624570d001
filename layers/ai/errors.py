"""What a provider call can end in, besides an answer. The router decides by type, never by message text.

Each error carries `outcome` (the word recorded in `Attempt.outcome`) and a `detail` that names the error class
or HTTP status only — never prompt or output text, so it is safe to log and to store with a run.
"""
from __future__ import annotations


class ProviderError(Exception):
    """A provider call that produced no usable answer. `transient` says whether trying again may help."""

    outcome = "error"
    transient = False

    def __init__(self, detail: str = "") -> None:
        super().__init__(detail or type(self).__name__)
        self.detail = detail or type(self).__name__


class ProviderTimeout(ProviderError):
    """No answer within the attempt's timeout (or the connection could not be made in it)."""

    outcome, transient = "timeout", True


class ProviderRateLimited(ProviderError):
    """429. `retry_after` is the provider's requested wait in seconds, when it said one."""

    outcome, transient = "rate_limited", True

    def __init__(self, detail: str = "", *, retry_after: float | None = None) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class ProviderServerError(ProviderError):
    """5xx, or the provider could not be reached."""

    outcome, transient = "server_error", True


class ProviderRefused(ProviderError):
    """The model declined to answer (a refusal, a safety block): asking the same thing again will not help."""

    outcome = "refused"


class ProviderBadRequest(ProviderError):
    """The provider refused the request itself (4xx other than 429: a bad key, an unknown model, a task the
    local rules do not know). A configuration problem: no retry on this provider."""

    outcome = "error"
