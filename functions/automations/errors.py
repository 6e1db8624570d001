"""Typed errors of automations."""
from __future__ import annotations

from shared.errors import AppError, Conflict


class ActionFailed(AppError):
    """An action could not do its work (recorded on the run's step; never an HTTP answer by itself)."""

    status, slug, title = 422, "automation-action-failed", "The automation's action failed"


class RunNotRetriable(Conflict):
    slug, title = "automation-run-not-retriable", "Only a failed run can be retried"
