"""Typed errors of the AI capability."""
from __future__ import annotations

from shared.errors import AppError, Conflict, ValidationFailed


class BudgetExceeded(AppError):
    """The workspace spent its monthly AI budget: 429 until the first day of next month (UTC)."""

    status, slug, title = 429, "ai-budget-exceeded", "The workspace's monthly AI budget is spent"


class ProviderNotConfigured(ValidationFailed):
    slug, title = "ai-provider-not-configured", "The provider has no key configured on this server"


class RunNotApplicable(Conflict):
    slug, title = "ai-run-not-applicable", "Only a succeeded run of a feature that writes can be applied"


class RunNotFinished(Conflict):
    slug, title = "ai-run-not-finished", "The run has not finished"
