"""Schemathesis against the live document: every operation of `GET /v1/openapi.json`, fuzzed through the WSGI
entry (`app.wsgi`, as granian calls it) with a real admin API key of a fresh workspace.

A bounded, reproducible run: a fixed number of generated requests per operation (valid and invalid ones),
derandomized, plus schemathesis's deterministic coverage cases (boundaries of each parameter). It fails on
a 5xx, an undocumented status, a content type or body the document does not describe, and an error that
is not problem+json (the contract of tests/support/contract.py checks every answer at the WSGI boundary).
"""
from __future__ import annotations

from collections.abc import Iterator

import hypothesis
import pytest
import schemathesis
from moto import mock_aws
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

import app as composition
from layers.aws.clients import client, reset_clients
from layers.queue.sqs import create_queues, use_queues
from shared.ids import new_id
from shared.settings import get_settings
from tests.support.api import Api, provision
from tests.support.contract import checked_wsgi
from tests.support.firebase_keys import FirebaseTestIssuer

EXAMPLES_PER_OPERATION = 10
MAX_IDEMPOTENCY_KEY = 255

schema = schemathesis.openapi.from_wsgi("/v1/openapi.json", checked_wsgi(composition.wsgi))
# Fuzzing generates valid and invalid requests; the coverage phase adds the boundary values of every parameter
# (valid ones only: its invalid variants doubled the run's time and found nothing that fuzzing's invalid ones missed).
schema.config.phases.update(phases=["fuzzing", "coverage"])
schema.config.phases.coverage.generation.modes = [schemathesis.GenerationMode.POSITIVE]


@pytest.fixture(scope="module")
def offline_aws() -> Iterator[None]:
    """moto for the whole module (the per-test `aws` fixture would cost more than the fuzzing itself)."""
    with mock_aws():
        reset_clients()
        use_queues(create_queues(max_receives=3, visibility_timeout=30))
        client("s3").create_bucket(Bucket=get_settings().files_bucket)
        yield
        use_queues(None)
        reset_clients()


@pytest.fixture
def workspace(offline_aws: None, firebase_issuer: FirebaseTestIssuer) -> Api:
    """A fresh workspace per operation (S3 and SQS on moto, Firebase offline: nothing leaves the process)."""
    return provision(name="Fuzz")


@schema.parametrize()
@hypothesis.settings(
    max_examples=EXAMPLES_PER_OPERATION, derandomize=True, deadline=None, database=None,
    suppress_health_check=list(hypothesis.HealthCheck), print_blob=True,
)
def test_every_operation_answers_as_documented(case: schemathesis.Case, workspace: Api) -> None:
    headers = {"Authorization": f"Bearer {workspace.api_key}", "X-Workspace-Id": workspace.workspace_id}
    key = (case.headers or {}).get("Idempotency-Key")
    if key is not None and len(key) <= MAX_IDEMPOTENCY_KEY:
        # Generated keys repeat across cases; a repeat with another body is a (documented) 422 that would hide
        # the handler from most requests.
        headers["Idempotency-Key"] = new_id()
    case.call_and_validate(
        headers=headers,
        checks=[not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance],
    )
