"""AI schedules: every night, score the contacts that changed since their last lead score."""
from __future__ import annotations

from chalice.app import CloudWatchEvent

from functions.ai import service
from functions.ai.routes import bp


@bp.schedule("cron(30 2 * * ? *)", name="ai_score_contacts")
def ai_score_contacts(event: CloudWatchEvent) -> None:
    service.score_changed_contacts()
