"""The deterministic `local` provider: rule functions instead of a model, for `crm local`, tests and any
workspace with no key configured.

The layer owns the mechanism, the capability owns the rules (they are domain logic): `app.py` calls
`use_local_rules(functions.ai.local_rules.RULES)`. A rule returns the answer as a dict; it is serialised to
JSON and validated by the router exactly like a model's text, so the local path proves the same contract.
"""
from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from typing import Any

from layers.ai import prompts
from layers.ai.errors import ProviderBadRequest
from layers.ai.types import AIRequest, Completion

LocalRule = Callable[[AIRequest[Any]], dict[str, Any]]
LOCAL_MODEL = "local-rules-1"

_rules: Mapping[str, LocalRule] = {}


def use_local_rules(rules: Mapping[str, LocalRule]) -> None:
    """Fill the port: the rules every LocalProvider built without its own consults (the composition root)."""
    global _rules
    _rules = dict(rules)


def local_rules() -> Mapping[str, LocalRule]:
    return _rules


class LocalProvider:
    name = "local"

    def __init__(self, rules: Mapping[str, LocalRule] | None = None) -> None:
        """`rules` None: read the port on every call, so `use_local_rules` may come after the router is built."""
        self._rules = rules

    def complete(self, request: AIRequest[Any], model: str, *, timeout: float) -> Completion:
        """Run the task's rule. Unknown task → ProviderBadRequest. Token counts are estimates (4 chars each),
        so usage views show the size of what was read; the local provider costs nothing."""
        rules = self._rules if self._rules is not None else _rules
        rule = rules.get(request.task)
        if rule is None:
            raise ProviderBadRequest(f"no local rule for task {request.task!r}")
        text = json.dumps(rule(request), ensure_ascii=False, default=str)
        return Completion(
            text=text,
            tokens_in=_estimate_tokens(prompts.render_user_content(request)),
            tokens_out=_estimate_tokens(text),
            model=LOCAL_MODEL,
        )


def _estimate_tokens(text: str) -> int:
    return math.ceil(len(text) / 4)
