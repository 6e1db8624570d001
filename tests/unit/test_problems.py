"""Typed errors become RFC 9457 problem+json; pydantic errors become lists of fields."""
from __future__ import annotations

import json

import pytest
from pydantic import BaseModel, ValidationError

from layers.http.problems import PROBLEM_JSON, field_errors, problem_body, problem_response, validation_failed
from shared.errors import (
    AppError,
    Conflict,
    Forbidden,
    MalformedJson,
    NotFound,
    PayloadTooLarge,
    PreconditionFailed,
    RateLimited,
    Unauthorized,
    UniqueConflict,
    UnsupportedMediaType,
    ValidationFailed,
)
from shared.schemas import Problem, StrictModel


class Nested(StrictModel):
    count: int


class Body(StrictModel):
    name: str
    nested: Nested
    items: list[int] = []


def _validation_error(data: object, model: type[BaseModel] = Body) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(data)
    return caught.value


@pytest.mark.parametrize(
    ("error", "status", "type_uri"),
    [
        (MalformedJson(), 400, "urn:crm:problem:malformed-json"),
        (Unauthorized(), 401, "urn:crm:problem:unauthorized"),
        (Forbidden(), 403, "urn:crm:problem:forbidden"),
        (NotFound("no contact 1"), 404, "urn:crm:problem:not-found"),
        (Conflict(), 409, "urn:crm:problem:conflict"),
        (PreconditionFailed(), 412, "urn:crm:problem:precondition-failed"),
        (PayloadTooLarge(), 413, "urn:crm:problem:payload-too-large"),
        (UnsupportedMediaType(), 415, "urn:crm:problem:unsupported-media-type"),
        (ValidationFailed(), 422, "urn:crm:problem:validation-error"),
        (RateLimited(), 429, "urn:crm:problem:rate-limited"),
        (AppError(), 500, "urn:crm:problem:internal-error"),
    ],
)
def test_problem_body_has_the_rfc_9457_members(error: AppError, status: int, type_uri: str) -> None:
    # GIVEN a typed error
    # WHEN it becomes a problem body
    body = problem_body(error, "req-1")

    # THEN it has type, title, status, detail and instance, and fits the documented schema
    assert body["type"] == type_uri
    assert body["status"] == status
    assert body["title"] == type(error).title
    assert body["detail"] == error.detail
    assert body["instance"] == "req-1"
    Problem.model_validate(body)


def test_detail_defaults_to_the_title() -> None:
    # GIVEN an error raised without detail WHEN rendered THEN detail repeats the title
    body = problem_body(NotFound(), "r")
    assert body["detail"] == "Not found"


def test_detail_is_the_given_text() -> None:
    # GIVEN an error with a detail WHEN rendered THEN that detail is used
    assert problem_body(NotFound("no contact 01H"), "r")["detail"] == "no contact 01H"


def test_errors_member_only_when_there_are_field_errors() -> None:
    # GIVEN one error with fields and one without
    with_fields = ValidationFailed("bad", errors=[{"field": "name", "message": "required", "code": "missing"}])

    # WHEN both are rendered
    # THEN only the first has `errors`
    assert problem_body(with_fields, "r")["errors"] == [{"field": "name", "message": "required", "code": "missing"}]
    assert "errors" not in problem_body(NotFound(), "r")


def test_unique_conflict_names_the_existing_record() -> None:
    # GIVEN a clash on a unique property
    error = UniqueConflict(field="email", value="ada@example.com", existing_id="01HEXISTING")

    # WHEN it is rendered
    body = problem_body(error, "req-9")

    # THEN it is a 409 naming the existing record and the field at fault
    assert body["status"] == 409
    assert body["type"] == "urn:crm:problem:unique-conflict"
    assert body["existing_id"] == "01HEXISTING"
    assert body["field"] == "email"
    assert body["errors"] == [{"field": "email", "message": "must be unique in the workspace", "code": "unique"}]
    assert "01HEXISTING" in body["detail"]
    assert error.existing_id == "01HEXISTING"
    assert isinstance(error, Conflict)


def test_problem_response_is_problem_json_with_status_and_headers() -> None:
    # GIVEN an error that carries a header
    error = Unauthorized("token expired")

    # WHEN it becomes a response
    response = problem_response(error, "req-2")

    # THEN status, content type, the error's headers and the JSON body are all there
    assert response.status_code == 401
    assert response.headers["Content-Type"] == PROBLEM_JSON
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="crm"'
    assert json.loads(response.body)["detail"] == "token expired"


def test_rate_limited_keeps_its_retry_after_header() -> None:
    # GIVEN a 429 with Retry-After WHEN it becomes a response THEN the header is kept
    response = problem_response(RateLimited(headers={"Retry-After": "7"}), "r")
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "7"


def test_extra_forbidden_is_reported_as_unknown_field() -> None:
    # GIVEN a body with a field the schema does not know
    exc = _validation_error({"name": "Ada", "nested": {"count": 1}, "surname": "Lovelace"})

    # WHEN the pydantic error becomes field errors
    errors = field_errors(exc)

    # THEN the extra field is named with a plain message
    assert errors == [{"field": "surname", "message": "unknown field", "code": "extra_forbidden"}]


def test_field_paths_are_dotted_and_every_failure_is_listed() -> None:
    # GIVEN a body failing in several places, one of them nested and one in a list
    exc = _validation_error({"nested": {"count": "many", "extra": 1}, "items": [1, "x"]})

    # WHEN converted
    errors = field_errors(exc)

    # THEN every failing location is listed with a dotted path and pydantic's code
    by_field = {e["field"]: e["code"] for e in errors}
    assert by_field == {
        "name": "missing",
        "nested.count": "int_parsing",
        "nested.extra": "extra_forbidden",
        "items.1": "int_parsing",
    }


def test_prefix_is_prepended_to_field_paths() -> None:
    # GIVEN a failure in one input of a batch
    exc = _validation_error({"name": "Ada"})

    # WHEN converted with the input's position as a prefix
    errors = field_errors(exc, prefix=("inputs", 3))

    # THEN the path says which input
    assert [e["field"] for e in errors] == ["inputs.3.nested"]


def test_whole_body_error_is_reported_on_body() -> None:
    # GIVEN a body that is not an object at all
    exc = _validation_error([1, 2])

    # WHEN converted THEN the error sits on `body`
    assert [e["field"] for e in field_errors(exc)] == ["body"]


def test_validation_failed_counts_the_fields() -> None:
    # GIVEN two failures
    exc = _validation_error({"nested": {"count": 1}, "other": 1})

    # WHEN turned into the typed error
    error = validation_failed(exc)

    # THEN it is a 422 listing both
    assert error.status == 422
    assert error.detail == "2 field(s) failed validation"
    assert {e["field"] for e in error.errors or []} == {"name", "other"}


def test_validation_failed_says_what_is_wrong_when_one_field_is() -> None:
    # GIVEN one failure, in a query
    one = _validation_error({"nested": {"count": 1}})

    # WHEN turned into the typed error
    error = validation_failed(one, prefix=("query",))

    # THEN its detail names the field and the message (where a client reads first), and the list has it too
    (only,) = error.errors or []
    assert only["field"] == "query.name" and error.detail == f"query.name: {only['message']}"
