"""The OpenAPI document built from the route table: valid, complete, and honest about errors."""
from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from chalice.app import Response
from openapi_spec_validator import validate
from pydantic import BaseModel

from layers.http.chalice_app import CrmChalice
from layers.http.endpoint import Endpoint, endpoint, endpoint_of
from layers.http.openapi import SchemaNameClash, build_openapi

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


def test_every_operation_says_who_may_call_it_as_its_route_declares(crm_app: Any, document: dict[str, Any]) -> None:
    # GIVEN every route and its declared permission (the one the auth middleware enforces)
    seen = set()
    for path, method, spec in _routes(crm_app):
        operation = document["paths"][path][method.lower()]

        # THEN its operation publishes that permission, and says it in words
        assert operation["x-permission"] == spec.permission, f"{method} {path}"
        assert operation["description"].startswith("Who may call:"), f"{method} {path}"
        seen.add(spec.permission)
    # AND operations of one permission share one wording, different from the others'
    texts = {op["x-permission"]: op["description"] for _, _, op in _operations(document)}
    assert set(texts) == seen and len(set(texts.values())) == len(texts)
    assert "admin" in texts["admin"] and "API keys" in texts["read"]


def test_automation_rules_and_runs_are_for_admins_only(document: dict[str, Any]) -> None:
    # GIVEN the automations' operations (rules name webhook targets and job payloads)
    operations = [(p, m, op) for p, m, op in _operations(document) if p.startswith("/v1/automations")]

    # THEN every one of them, reads included, is for admins
    assert len(operations) >= 11
    assert {op["x-permission"] for _, _, op in operations} == {"admin"}


def test_posts_with_a_body_document_body_problems(crm_app: Any, document: dict[str, Any]) -> None:
    # GIVEN every POST that takes a body
    posts = [(path, spec) for path, method, spec in _routes(crm_app) if method == "POST" and spec.request is not None]
    assert posts

    for path, spec in posts:
        operation = document["paths"][path]["post"]

        # WHEN / THEN the body is documented, and so are 400/413/415/422
        assert operation["requestBody"]["required"] is spec.body_required
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


# ---- names: one component per type ------------------------------------------------------------------------
def _probe_app(*responses: type[BaseModel]) -> CrmChalice:
    """A small app with one GET route per response model."""
    app = CrmChalice(app_name="openapi-probe")
    for index, model in enumerate(responses):
        def view() -> Response:
            return Response(body="{}")

        app.route(f"/probe/{index}", methods=["GET"], name=f"probe_{index}")(
            endpoint(summary="A probe", permission="read", tag="Probe", response=model)(view))
    return app


def _clashing_models() -> tuple[type[BaseModel], type[BaseModel]]:
    """Two different models both named `Total`, as two capabilities' schemas modules could define them."""
    class Total(BaseModel):  # type: ignore[no-redef]
        currency: str
        total: str

    first = Total

    class Total(BaseModel):  # type: ignore[no-redef]
        currency: str
        count: int
        amount: str

    return first, Total


def test_two_top_level_models_with_one_name_fail_the_build() -> None:
    # GIVEN two routes answering different models that share a class name
    first, second = _clashing_models()

    # WHEN / THEN the document cannot be built, and the error names the clash
    with pytest.raises(SchemaNameClash, match="Total would name 2 different types"):
        build_openapi(_probe_app(first, second))


def test_a_clash_between_nested_models_fails_the_build_too() -> None:
    # GIVEN two distinctly named answers whose nested models (pydantic's $defs) share a name
    first, second = _clashing_models()

    class BoardAnswer(BaseModel):
        totals: list[first]  # type: ignore[valid-type]

    class ReportAnswer(BaseModel):
        totals: list[second]  # type: ignore[valid-type]

    # WHEN / THEN the build fails rather than publishing one of them under the other's name
    with pytest.raises(SchemaNameClash, match="Total"):
        build_openapi(_probe_app(BoardAnswer, ReportAnswer))


def test_one_model_used_by_several_routes_is_one_component() -> None:
    # GIVEN one model answered by two routes and nested in a third answer
    first, _ = _clashing_models()

    class Wrapper(BaseModel):
        total: first  # type: ignore[valid-type]

    # WHEN the document is built
    document = build_openapi(_probe_app(first, first, Wrapper))

    # THEN the model is one component, referenced from everywhere
    assert document["components"]["schemas"]["Total"]["required"] == ["currency", "total"]
    assert document["components"]["schemas"]["Wrapper"]["properties"]["total"] == {
        "$ref": "#/components/schemas/Total"}


def test_reports_document_what_they_send_and_the_board_its_own_totals(document: dict[str, Any]) -> None:
    # GIVEN the reports and the board WHEN their per-currency items are read
    schemas = document["components"]["schemas"]
    summary = schemas["PipelineSummary"]["properties"]["totals"]["items"]["$ref"]
    win_rate = schemas["WinRate"]["properties"]["won_amounts"]["items"]["$ref"]
    board = schemas["BoardStage"]["properties"]["amounts"]["items"]["$ref"]

    # THEN reports reference {currency, count, amount} and the board {currency, total}
    assert summary == win_rate == "#/components/schemas/CurrencyAmount"
    assert set(schemas["CurrencyAmount"]["required"]) == {"currency", "count", "amount"}
    assert board == "#/components/schemas/CurrencyTotal"
    assert set(schemas["CurrencyTotal"]["required"]) == {"currency", "total"}


# ---- request bodies as the handlers read them ---------------------------------------------------------------
def _request_schema(document: dict[str, Any], path: str, media_type: str = "application/json") -> dict[str, Any]:
    ref = document["paths"][path]["post"]["requestBody"]["content"][media_type]["schema"]["$ref"]
    return document["components"]["schemas"][ref.rsplit("/", 1)[1]]  # type: ignore[no-any-return]


def _items(document: dict[str, Any], batch: dict[str, Any]) -> dict[str, Any]:
    ref = batch["properties"]["inputs"]["items"]["$ref"]
    return document["components"]["schemas"][ref.rsplit("/", 1)[1]]  # type: ignore[no-any-return]


@pytest.mark.parametrize("object_type", ["contacts", "companies", "deals", "activities"])
def test_batch_update_inputs_take_an_id_and_batch_archive_inputs_only_an_id(
    document: dict[str, Any], object_type: str
) -> None:
    # GIVEN the batch update and archive bodies of an object
    update = _items(document, _request_schema(document, f"/v1/{object_type}/batch/update"))
    archive = _items(document, _request_schema(document, f"/v1/{object_type}/batch/archive"))
    patch_ref = document["paths"][f"/v1/{object_type}/{{record_id}}"]["patch"]["requestBody"]["content"][
        "application/json"]["schema"]["$ref"]
    patch = document["components"]["schemas"][patch_ref.rsplit("/", 1)[1]]

    # WHEN / THEN an update input is the PATCH body plus a required id, unknown fields refused
    assert update["required"] == ["id"]
    assert set(update["properties"]) == set(patch["properties"]) | {"id"}
    assert update["additionalProperties"] is False
    # ... and an archive input is exactly {"id"}
    assert archive["required"] == ["id"] and set(archive["properties"]) == {"id"}
    assert archive["additionalProperties"] is False


def test_imports_document_the_multipart_form_beside_the_json_one(document: dict[str, Any]) -> None:
    # GIVEN POST /v1/imports WHEN its bodies are read
    content = document["paths"]["/v1/imports"]["post"]["requestBody"]["content"]
    form = _request_schema(document, "/v1/imports", "multipart/form-data")

    # THEN JSON and multipart are both there, the form with its binary `file` and the object type
    assert set(content) == {"application/json", "multipart/form-data"}
    assert form["properties"]["file"]["format"] == "binary"
    assert {"file", "object_type"} <= set(form["required"])


def test_a_route_accepting_an_undocumented_media_type_fails_the_build() -> None:
    # GIVEN a route that reads multipart bodies but documents only its JSON one
    class Body(BaseModel):
        name: str

    app = CrmChalice(app_name="openapi-probe")

    @app.route("/upload", methods=["POST"], content_types=["application/json", "multipart/form-data"])
    @endpoint(summary="Upload", permission="write", tag="Probe", request=Body)
    def upload() -> Response:
        return Response(body="{}")

    # WHEN / THEN the document cannot be built
    with pytest.raises(ValueError, match="multipart/form-data"):
        build_openapi(app)


def test_the_association_body_is_optional(document: dict[str, Any]) -> None:
    # GIVEN linking two records WHEN its body is read THEN it may be left out (the handler has defaults)
    operation = document["paths"]["/v1/contacts/{record_id}/associations/{to_object}/{to_id}"]["post"]
    assert operation["requestBody"]["required"] is False


# ---- statuses the layers in front of every handler add --------------------------------------------------------
NO_DATABASE = {("/health", "get"), ("/metrics", "get"), ("/docs", "get"), ("/v1/openapi.json", "get")}


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, ops in document["paths"].items():
        for method, operation in ops.items():
            yield path, method, operation


def test_every_operation_documents_the_gateway_statuses(document: dict[str, Any]) -> None:
    # GIVEN / WHEN every operation THEN body size, content type, header size and 500 are documented
    for path, method, operation in _operations(document):
        assert {413, 415, 431, 500} <= _problem_statuses(operation), f"{method} {path}"


def test_every_operation_that_touches_the_database_documents_503_with_retry_after(document: dict[str, Any]) -> None:
    for path, method, operation in _operations(document):
        if (path, method) in NO_DATABASE:
            assert 503 not in _problem_statuses(operation), f"{method} {path}"
        else:
            assert 503 in _problem_statuses(operation), f"{method} {path}"
            assert "Retry-After" in operation["responses"]["503"]["headers"]


def test_every_operation_with_a_path_parameter_documents_404(document: dict[str, Any]) -> None:
    for path, method, operation in _operations(document):
        if "{" in path:
            assert 404 in _problem_statuses(operation), f"{method} {path}"


def test_authenticated_posts_document_the_idempotency_key_and_its_problems(
    crm_app: Any, document: dict[str, Any]
) -> None:
    # GIVEN every POST that needs credentials (restore, complete, test pings... bodies or not)
    for path, method, spec in _routes(crm_app):
        if method != "POST" or spec.permission == "public":
            continue
        operation = document["paths"][path]["post"]
        # WHEN / THEN the header is there, and its 400 (too long), 409 (running), 422 (reused), 503 (no Redis)
        assert "Idempotency-Key" in {p.get("name") for p in operation["parameters"]}, path
        assert {400, 409, 422, 503} <= _problem_statuses(operation), path


def test_restore_documents_422(document: dict[str, Any]) -> None:
    # GIVEN a restore (no body, no query) WHEN its problems are read THEN 422 is there (a reused Idempotency-Key)
    assert 422 in _problem_statuses(document["paths"]["/v1/contacts/{record_id}/restore"]["post"])


def test_public_writes_document_429(document: dict[str, Any]) -> None:
    # GIVEN the public session exchange WHEN its problems are read THEN the per-address limit's 429 is there
    assert 429 in _problem_statuses(document["paths"]["/v1/sessions"]["post"])


def test_every_way_bad_input_is_refused_is_documented(document: dict[str, Any]) -> None:
    # GIVEN every operation WHEN its problems are read THEN each answer bad input can get is there:
    for path, method, operation in _operations(document):
        statuses = _problem_statuses(operation)
        parameters = {p.get("in") for p in operation.get("parameters", [])}
        if "requestBody" in operation:  # JSON nested too deep (400), invalid or null or control characters (422)
            assert {400, 422} <= statuses, f"{method} {path}"
        if "query" in parameters:  # a query value that is not valid text or not valid for the parameter
            assert 422 in statuses, f"{method} {path}"
        if operation.get("security") != [] or method != "get":  # an address past its failed-auth budget
            assert 429 in statuses and "Retry-After" in operation["responses"]["429"]["headers"], f"{method} {path}"


def test_if_match_is_documented_wherever_412_is(document: dict[str, Any]) -> None:
    for path, method, operation in _operations(document):
        has_header = "If-Match" in {p.get("name") for p in operation.get("parameters", [])}
        assert has_header == (412 in _problem_statuses(operation)), f"{method} {path}"


def test_non_json_answers_are_documented_with_their_media_type(document: dict[str, Any]) -> None:
    # GIVEN the metrics, the docs page and the document itself WHEN their 200s are read
    metrics = document["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    docs = document["paths"]["/docs"]["get"]["responses"]["200"]["content"]
    openapi = document["paths"]["/v1/openapi.json"]["get"]["responses"]["200"]["content"]

    # THEN text, HTML, and a JSON object (not a string)
    assert set(metrics) == {"text/plain"} and set(docs) == {"text/html"}
    assert openapi["application/json"]["schema"] == {"$ref": "#/components/schemas/OpenApiDocument"}


# ---- words -------------------------------------------------------------------------------------------------
def test_generated_summaries_use_the_right_article(document: dict[str, Any]) -> None:
    # GIVEN every summary (many are generated from object names)
    summaries = [op["summary"] for _, _, op in _operations(document)]
    assert "Create an activity" in summaries and "Create a contact" in summaries

    # WHEN / THEN none says "a activity" or "an contact" (object names are lower case; "a URL" is right)
    for summary in summaries:
        assert not re.search(r"\ba [aeiou]", summary), summary
        assert not re.search(r"\ban [b-df-hj-np-tv-z]", summary), summary
        assert "one of the" not in summary, summary
