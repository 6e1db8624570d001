"""The AI layer's one interface: a typed request in, a validated result (or a visible failure) out.

A capability builds an `AIRequest` (its task, the version of its system prompt, the records it may read —
already checked against the caller's visibility — and the pydantic model the answer must fill) and hands it
to `AIRouter.run` with the workspace's `ProviderPolicy`. The router tries the policy's providers in order
(primary first), with per-attempt timeouts, bounded retries and failover, validates the output against the
schema, and returns an `AIResult` — or raises `AIFailed` carrying every attempt and the last raw text.

Record data is never part of the system prompt: providers render `records` as delimited, escaped data
(layers/ai/prompts.py), and the model's output can only fill `output_schema`.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Generic, Literal, Protocol, TypeVar

from pydantic import BaseModel

from shared.errors import AppError

ProviderName = Literal["local", "openai", "gemini"]
Out = TypeVar("Out", bound=BaseModel)


@dataclass(frozen=True)
class RecordInput:
    """One record the request may read: what it is, its fields, and its timeline items (each with its id)."""

    object_type: str  # "contacts" | "companies" | "deals" | ...
    record_id: str
    fields: Mapping[str, Any]
    items: Sequence[Mapping[str, Any]] = ()  # activities / history entries, each with "id" and "kind"


@dataclass(frozen=True)
class AIRequest(Generic[Out]):
    task: str  # "summary" | "lead_score" | "next_action" | "draft_email" | "nl_search" | ...
    prompt_version: str  # e.g. "summary/1": recorded with every run
    system_prompt: str  # the instructions; never contains record text
    output_schema: type[Out]
    records: Sequence[RecordInput] = ()
    question: str = ""  # the person's own words (natural-language search), delimited like record data
    context: Mapping[str, Any] = field(default_factory=dict)  # non-personal facts the task needs (today's date, …)


@dataclass(frozen=True)
class ModelChoice:
    provider: ProviderName
    model: str


@dataclass(frozen=True)
class ProviderPolicy:
    """Which providers a workspace allows, in the order to try them (primary first). Nothing else is called."""

    choices: Sequence[ModelChoice]
    timeout_seconds: float = 10.0  # per attempt: ≤ 10 s when a request waits, ≤ 60 s in a job
    max_attempts_per_provider: int = 2
    retry_after_cap_seconds: float = 5.0


@dataclass(frozen=True)
class Attempt:
    provider: str
    model: str
    # "ok" | "timeout" | "rate_limited" | "server_error" | "invalid_output" | "refused" | "error"
    # | "unavailable" (the policy names a provider this deployment has no key for: skipped, nothing sent)
    outcome: str
    latency_ms: float
    detail: str = ""  # the error class / status, never prompt or output text


@dataclass(frozen=True)
class AIResult(Generic[Out]):
    output: Out
    provider: str
    model: str
    tokens_in: int
    tokens_out: int
    cost: Decimal  # in the price table's currency (configuration), for this result's attempts
    latency_ms: float
    raw_text: str
    attempts: Sequence[Attempt] = ()


class AIFailed(AppError):
    """Every allowed provider failed or answered with output the schema refused."""

    status, slug, title = 502, "ai-failed", "The AI provider did not produce a valid answer"

    def __init__(
        self,
        detail: str,
        *,
        attempts: Sequence[Attempt],
        raw_text: str = "",
        tokens_in: int = 0,
        tokens_out: int = 0,
        cost: Decimal = Decimal(0),
    ) -> None:
        super().__init__(detail, extra={"attempts": [a.__dict__ for a in attempts]})
        self.attempts = list(attempts)
        self.raw_text = raw_text
        # What the failed run still spent (answers the schema refused were billed): for usage and budgets.
        self.tokens_in, self.tokens_out, self.cost = tokens_in, tokens_out, cost


class Provider(Protocol):
    name: str

    def complete(self, request: AIRequest[Any], model: str, *, timeout: float) -> Completion:
        """One call. Raises ProviderError subclasses (layers/ai/errors.py) on timeout, 429, 5xx, refusal."""
        ...


@dataclass(frozen=True)
class Completion:
    """A provider's raw answer: text the router validates against the request's schema."""

    text: str
    tokens_in: int
    tokens_out: int
    model: str
