# PLACEHOLDER: replaced by branch ai-layer
"""The deterministic local provider: a capability's rules (task name → function) answer instead of a model."""
from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from layers.ai.types import AIRequest, Completion

Rule = Callable[[AIRequest[Any]], dict[str, Any]]
MODEL = "local-rules-1"
_rules: Mapping[str, Rule] = {}


def use_local_rules(rules: Mapping[str, Rule] | None) -> None:
    """The composition root fills the port with the capability's rules."""
    global _rules
    _rules = dict(rules or {})


class LocalProvider:
    name = "local"

    def __init__(self, rules: Mapping[str, Rule] | None = None) -> None:
        self._rules = rules

    def complete(self, request: AIRequest[Any], model: str, *, timeout: float) -> Completion:
        rules = self._rules if self._rules is not None else _rules
        rule = rules.get(request.task)
        if rule is None:
            raise LookupError(f"no local rule for task {request.task}")
        return Completion(text=json.dumps(rule(request), default=str), tokens_in=0, tokens_out=0, model=MODEL)
