"""Logs carry outcomes and counts, never prompt or output text (the issue's Safety section)."""
from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from pydantic import BaseModel

from layers.ai.router import AIRouter
from layers.ai.types import AIFailed, AIRequest, ModelChoice, ProviderPolicy, RecordInput
from layers.observability.logging import get_logger
from tests.unit.ai.test_router import FakeClock, FakeProvider

SECRET_IN_RECORD = "Ada's card number is 4242"
SECRET_IN_ANSWER = "confidential margin 37 percent"


class Answer(BaseModel):
    answer: str


REQUEST = AIRequest(task="summary", prompt_version="summary/1", system_prompt="Summarise.", output_schema=Answer,
                    records=[RecordInput("contacts", "con_1", {"notes": SECRET_IN_RECORD})])


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.getMessage()} {record.__dict__}")


@pytest.fixture
def log_lines() -> Iterator[list[str]]:
    handler = _Lines()
    logger = logging.getLogger(get_logger().name)
    logger.addHandler(handler)
    yield handler.lines
    logger.removeHandler(handler)


def test_a_run_logs_outcomes_and_counts_only(log_lines: list[str]) -> None:
    # GIVEN a provider that first answers invalid JSON holding secret text, then a valid secret answer
    clock = FakeClock()
    provider = FakeProvider("openai", f'{{"nope": "{SECRET_IN_ANSWER}"}}', f'{{"answer": "{SECRET_IN_ANSWER}"}}')
    router = AIRouter({"openai": provider}, sleep=clock.sleep, clock=clock)

    # WHEN a run succeeds and another fails
    router.run(REQUEST, ProviderPolicy([ModelChoice("openai", "gpt-test")]))
    with pytest.raises(AIFailed):
        AIRouter({"openai": FakeProvider("openai", f'"{SECRET_IN_ANSWER}"')}, sleep=clock.sleep, clock=clock).run(
            REQUEST, ProviderPolicy([ModelChoice("openai", "gpt-test")]))

    # THEN both runs were logged with their outcomes, and no line holds record or answer text
    text = "\n".join(log_lines)
    assert "ai run ok" in text and "ai run failed" in text and "openai:invalid_output" in text
    assert SECRET_IN_RECORD not in text and SECRET_IN_ANSWER not in text
