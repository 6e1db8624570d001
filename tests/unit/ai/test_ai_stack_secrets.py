"""The provider keys reach the tiers that call providers as Secrets Manager secrets, never as plain variables."""
from __future__ import annotations

from typing import Any

import pytest

from tests.unit.test_templates import ROOT_TEMPLATE, container, list_items, load, stack

AI_SECRETS = {"OPENAI_API_KEY", "GEMINI_API_KEY"}


def _container(name: str) -> dict[str, Any]:
    return container(stack(name), name)


@pytest.mark.parametrize("name", ["api", "worker"])
def test_tiers_that_call_providers_get_the_keys_as_secrets(name: str) -> None:
    # GIVEN the tier's container definition
    container = _container(name)

    # WHEN its secrets and environment are read
    secrets = {item["Name"] for item in list_items(container["Secrets"])}
    environment = {item["Name"] for item in list_items(container.get("Environment", []))}

    # THEN both keys come from Secrets Manager and neither is a plain variable
    assert secrets >= AI_SECRETS and not AI_SECRETS & environment


def test_realtime_tier_gets_no_provider_key() -> None:
    # GIVEN the realtime tier, which never calls a provider
    container = _container("realtime")

    # THEN it holds no AI key (least privilege)
    assert not AI_SECRETS & {item["Name"] for item in list_items(container["Secrets"])}


def test_keys_are_no_echo_parameters_and_optional() -> None:
    # GIVEN the root template and the data stack
    for template in (load(ROOT_TEMPLATE), stack("data")):
        for name in ("OpenAIApiKey", "GeminiApiKey"):
            parameter = template["Parameters"][name]
            # THEN the key never shows in the console and may be left empty (the local provider still works)
            assert parameter["NoEcho"] is True and parameter["Default"] == ""
