"""The OpenAPI document built from the route table: valid, complete, and honest about errors."""
from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from openapi_spec_validator import validate

from layers.http.endpoint import Endpoint, endpoint_of
from layers.http.openapi import build_openapi

PROBLEM_REF = "#/components/schemas/Problem"


@pytest.fixture(scope="module")
def crm_app() -> Any:
    import app  # the composition root; the root conftest has set the test environment

    return app.app


@pytest.fixture(scope="module")
def document(crm_app: Any) -> dict[str, Any]:
    return build_openapi(crm_app)


def _routes(crm_app: Any) -> Iterator[tuple[str, str, Endpoint]]:
    for path, methods in crm_app.routes.items():
        for method, entry in methods.items():
            spec = endpoint_of(entry.view_function)
            assert spec is not None, f"{method} {path} has no @endpoint"
            yield path, method, spec


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def _problem_statuses(operation: dict[str, Any]) -> set[int]:
    return {
        int(status) for status, response in operation["responses"].items()
        if response.get("content", {}).get("application/problem+json", {}).get("schema", {}).get("$ref")
        == PROBLEM_REF
    }


def test_document_is_valid_openapi(document: dict[str, Any]) -> None:
    # GIVEN the document built from the app WHEN validated THEN it is valid OpenAPI 3.1
    assert document["openapi"] == "3.1.0"
    validate(document)


def test_every_route_appears_with_its_method(crm_app: Any, document: dict[str, Any]) -> None:
    # GIVEN the app's route table
    routes = {(path, method.lower()) for path, method, _ in _routes(crm_app)}

    # WHEN the document's operations are listed
    documented = {(path, method) for path, ops in document["paths"].items() for method in ops}

    # THEN they are exactly the routes (nothing missing, nothing invented)
    assert len(routes) > 20  # the inventory is real, not empty
    assert documented == routes


def test_operation_ids_are_unique(document: dict[str, Any]) -> None:
    # GIVEN / WHEN every operationId is collected THEN none repeats
    ids = [op["operationId"] for ops in document["paths"].values() for op in ops.values()]
    assert len(ids) == len(set(ids))


def test_every_path_parameter_is_declared(document: dict[str, Any]) -> None:
    # GIVEN every templated path WHEN its operations are read THEN each `{name}` is a required path parameter
    for path, ops in document["paths"].items():
        names = set(re.findall(r"{(\w+)}", path))
        for method, op in ops.items():
            declared = {p["name"] for p in op.get("parameters", []) if p.get("in") == "path" and p["required"]}
            assert declared == names, f"{method.upper()} {path}"


def test_non_public_operations_document_auth_limit_and_server_problems(crm_app: Any, document: dict[str, Any]) -> None:
    # GIVEN every operation WHEN its problem responses are read
    for path, method, spec in _routes(crm_app):
        operation = document["paths"][path][method.lower()]
        statuses = _problem_statuses(operation)

        # THEN 500 is always there, and 401/403/429/503 unless the route is public
        assert 500 in statuses, f"{method} {path}"
        if spec.permission != "public":
            assert {401, 403, 429, 503} <= statuses, f"{method} {path}"
            assert "RateLimit-Remaining" in operation["responses"][str(spec.status)]["headers"]
        else:
            assert operation["security"] == []


def test_posts_with_a_body_document_body_problems(crm_app: Any, document: dict[str, Any]) -> None:
    # GIVEN every POST that takes a body
    posts = [(path, spec) for path, method, spec in _routes(crm_app) if method == "POST" and spec.request is not None]
    assert posts

    for path, _spec in posts:
        operation = document["paths"][path]["post"]

        # WHEN / THEN the body is documented, and so are 400/413/415/422
        assert operation["requestBody"]["required"] is True
        assert "$ref" in operation["requestBody"]["content"]["application/json"]["schema"]
        assert {400, 413, 415, 422} <= _problem_statuses(operation), path


def test_every_ref_resolves_to_a_component(document: dict[str, Any]) -> None:
    # GIVEN every $ref in the document
    refs = set(_refs(document))
    assert PROBLEM_REF in refs

    # WHEN / THEN each names a component that exists
    for ref in refs:
        section, name = re.fullmatch(r"#/components/(\w+)/(.+)", ref).groups()  # type: ignore[union-attr]
        assert name in document["components"][section], ref


def test_list_and_search_answer_a_contact_page(document: dict[str, Any]) -> None:
    # GIVEN the contacts list and search operations
    list_op = document["paths"]["/v1/contacts"]["get"]
    search_op = document["paths"]["/v1/contacts/search"]["post"]
    company_contacts = document["paths"]["/v1/companies/{record_id}/contacts"]["get"]

    # WHEN their success bodies are read
    refs = {op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
            for op in (list_op, search_op, company_contacts)}

    # THEN all reference ContactPage, which has the records and the next cursor
    assert refs == {"#/components/schemas/ContactPage"}
    page = document["components"]["schemas"]["ContactPage"]
    assert page["properties"]["data"]["items"] == {"$ref": "#/components/schemas/ContactRead"}
    assert "next_cursor" in page["properties"]
    assert "data" in page["required"]
    assert search_op["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/SearchRequest"}


def test_list_documents_its_query_parameters(document: dict[str, Any]) -> None:
    # GIVEN the contacts list WHEN its query parameters are read
    # THEN limit, cursor, include_archived and the owner filter are there
    params = {p["name"] for p in document["paths"]["/v1/contacts"]["get"]["parameters"] if p.get("in") == "query"}
    assert params == {"limit", "cursor", "include_archived", "owned_by"}


def test_single_record_operations_document_etags(document: dict[str, Any]) -> None:
    # GIVEN the get and update of one contact
    get_op = document["paths"]["/v1/contacts/{record_id}"]["get"]
    patch_op = document["paths"]["/v1/contacts/{record_id}"]["patch"]

    # WHEN / THEN GET offers If-None-Match/304 and an ETag, PATCH offers If-Match/412
    assert "If-None-Match" in {p.get("name") for p in get_op["parameters"]}
    assert "304" in get_op["responses"]
    assert "ETag" in get_op["responses"]["200"]["headers"]
    assert "If-Match" in {p.get("name") for p in patch_op["parameters"]}
    assert 412 in _problem_statuses(patch_op)


def test_ready_documents_its_503_with_the_body_it_sends(document: dict[str, Any]) -> None:
    # GIVEN the readiness probe, which answers 503 with its checks (not a problem) when a dependency is down
    responses = document["paths"]["/ready"]["get"]["responses"]
    # THEN its 503 is documented with the same body as its 200
    assert responses["503"]["content"] == responses["200"]["content"]
    assert "$ref" in responses["503"]["content"]["application/json"]["schema"]
