"""The contract every test's answers are checked against: it must fail on each kind of mismatch, naming the
operation, or the functional tier's checking proves nothing."""
from __future__ import annotations

import json
from typing import Any

import pytest
from chalice.app import Response
from pydantic import BaseModel

from layers.http.chalice_app import CrmChalice
from layers.http.endpoint import endpoint
from layers.http.openapi import build_openapi
from tests.support.contract import Contract

JSON = {"Content-Type": "application/json"}
PROBLEM = {"Content-Type": "application/problem+json"}


class Widget(BaseModel):
    id: str
    size: int


@pytest.fixture(scope="module")
def contract() -> Contract:
    app = CrmChalice(app_name="contract-probe")

    @app.route("/widgets/{widget_id}", methods=["GET"], name="widgets_get")
    @endpoint(summary="Get a widget", permission="read", tag="Probe", response=Widget)
    def get_widget(widget_id: str) -> Response:
        return Response(body="{}")

    @app.route("/widgets/{widget_id}", methods=["DELETE"], name="widgets_delete")
    @endpoint(summary="Delete a widget", permission="write", tag="Probe", status=204)
    def delete_widget(widget_id: str) -> Response:
        return Response(body="")

    return Contract(build_openapi(app))


def problem(status: int) -> bytes:
    return json.dumps({"type": "urn:x", "title": "t", "status": status, "detail": "d", "instance": "i"}).encode()


def test_a_documented_answer_passes(contract: Contract) -> None:
    # GIVEN / WHEN answers as documented THEN nothing is raised
    contract.check("GET", "/widgets/w1", 200, JSON, b'{"id": "w1", "size": 3}')
    contract.check("GET", "/widgets/w1", 404, PROBLEM, problem(404))
    contract.check("DELETE", "/widgets/w1", 204, {}, b"")
    contract.check("GET", "/nowhere", 404, PROBLEM, problem(404))  # the gateway's unknown path


@pytest.mark.parametrize(("method", "status", "headers", "body", "message"), [
    pytest.param("GET", 418, JSON, b"{}", "answered 418, which the document does not list", id="undocumented-status"),
    pytest.param("GET", 200, JSON, b'{"id": "w1"}', "'size' is a required property", id="body-misses-a-field"),
    pytest.param("GET", 200, JSON, b'{"id": "w1", "size": "big"}', "at size", id="body-has-a-wrong-type"),
    pytest.param("GET", 200, {"Content-Type": "text/plain"}, b"hi", "came as 'text/plain'", id="wrong-media-type"),
    pytest.param("GET", 404, JSON, problem(404), "not application/problem+json", id="error-not-problem-json"),
    pytest.param("GET", 404, PROBLEM, b'{"status": 404}', "'type' is a required property", id="problem-incomplete"),
    pytest.param("DELETE", 204, JSON, b"{}", "no documented body", id="body-where-none-is-documented"),
    pytest.param("GET", 200, JSON, b"not json", "is not JSON", id="body-not-json"),
])
def test_each_kind_of_mismatch_fails_naming_the_operation(
    contract: Contract, method: str, status: int, headers: dict[str, str], body: bytes, message: str
) -> None:
    # GIVEN an answer the document does not describe WHEN it is checked THEN it fails, saying where and why
    with pytest.raises(AssertionError) as failure:
        contract.check(method, "/widgets/w1", status, headers, body)
    assert f"{method} /widgets/{{widget_id}} (widgets_" in str(failure.value)
    assert message in str(failure.value)


def test_an_answer_for_no_operation_must_be_the_gateways_problem(contract: Contract) -> None:
    # GIVEN a method the path does not have, answered with anything but a 405 problem
    # WHEN / THEN it fails
    answers: list[tuple[int, dict[str, Any], bytes]] = [(200, JSON, b"{}"), (405, JSON, b"{}")]
    for status, headers, body in answers:
        with pytest.raises(AssertionError):
            contract.check("PUT", "/widgets/w1", status, headers, body)
    contract.check("PUT", "/widgets/w1", 405, PROBLEM, problem(405))
