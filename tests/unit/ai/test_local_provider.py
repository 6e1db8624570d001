"""The local provider: deterministic rules through the same contract as a model."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import BaseModel

from layers.ai.errors import ProviderBadRequest
from layers.ai.providers.local import LOCAL_MODEL, LocalProvider, local_rules, use_local_rules
from layers.ai.router import AIRouter
from layers.ai.types import AIRequest, ModelChoice, ProviderPolicy, RecordInput


class Count(BaseModel):
    records: int


def _count(request: AIRequest[Any]) -> dict[str, Any]:
    return {"records": len(request.records)}


def _request(task: str = "count") -> AIRequest[Count]:
    return AIRequest(task=task, prompt_version=f"{task}/1", system_prompt="Count.", output_schema=Count,
                     records=[RecordInput("contacts", "con_1", {"name": "Ada"})])


@pytest.fixture
def _port_rules() -> Iterator[None]:
    before = local_rules()
    use_local_rules({"count": _count})
    yield
    use_local_rules(before)


def test_local_rule_answers_through_the_router_labelled_local() -> None:
    # GIVEN a router with only the local provider and its rules
    router = AIRouter({"local": LocalProvider({"count": _count})})

    # WHEN a request for a known task runs
    result = router.run(_request(), ProviderPolicy([ModelChoice("local", LOCAL_MODEL)]))

    # THEN the answer is the rule's, validated, labelled local and free
    assert result.output == Count(records=1)
    assert (result.provider, result.model, result.cost) == ("local", LOCAL_MODEL, 0)
    assert result.tokens_in > 0 and result.tokens_out > 0


def test_unknown_task_is_a_bad_request() -> None:
    # GIVEN the local provider without a rule for the task
    provider = LocalProvider({"count": _count})

    # WHEN / THEN it refuses the request by type
    with pytest.raises(ProviderBadRequest):
        provider.complete(_request("poem"), LOCAL_MODEL, timeout=1)


@pytest.mark.usefixtures("_port_rules")
def test_provider_without_rules_reads_the_port_at_call_time() -> None:
    # GIVEN a LocalProvider built before the composition root filled the port (the fixture filled it)
    provider = LocalProvider()

    # WHEN it answers
    completion = provider.complete(_request(), LOCAL_MODEL, timeout=1)

    # THEN it used the port's rules
    assert Count.model_validate_json(completion.text) == Count(records=1)
