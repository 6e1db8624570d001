"""The search language on a real (in-memory SQLite) table: every operator per kind, groups,
validation paths, keyset pages that never skip or repeat, and full-text per dialect."""
from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import JSON, Engine, Float, String, create_engine, select
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from layers.db.base import UTCDateTime
from layers.records.properties import PropertySpec, escape_like, query_words, text_match
from layers.records.search import (
    Filter,
    FilterGroup,
    SearchRequest,
    Sort,
    apply_keyset,
    next_cursor,
    signature,
    sort_keys,
    where_clause,
)
from shared.errors import ValidationFailed

SECRET = "unit-cursor-secret"


class _Base(DeclarativeBase):
    """Its own metadata: this table is not a tenant table and never reaches the app's schema."""


class Deal(_Base):
    __tablename__ = "unit_search_deals"

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(100))
    email: Mapped[str | None] = mapped_column(String(100))
    amount: Mapped[float | None] = mapped_column(Float)
    closes_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    stage: Mapped[str | None] = mapped_column(String(10))
    tags: Mapped[list[str] | None] = mapped_column(JSON(none_as_null=True))


PROPERTIES = {
    "name": PropertySpec("name", "string"),
    "email": PropertySpec("email", "string"),
    "amount": PropertySpec("amount", "number"),
    "closes_at": PropertySpec("closes_at", "datetime"),
    "stage": PropertySpec("stage", "enum", choices=("open", "won", "lost")),
    "tags": PropertySpec("tags", "tags", sortable=False),
}


def _at(day: str, hour: int = 0) -> datetime:
    return datetime.fromisoformat(day).replace(hour=hour, tzinfo=UTC)


ROWS = [
    Deal(id="r1", name="Ada Lovelace", email="ada@analytical.org", amount=10, closes_at=_at("2024-01-01"),
         stage="open", tags=["vip", "ml"]),
    Deal(id="r2", name="Grace Hopper", email="grace@navy.mil", amount=20, closes_at=_at("2024-02-01"),
         stage="won", tags=["navy"]),
    Deal(id="r3", name="alan turing", email="alan@bletchley.uk", amount=30, closes_at=_at("2024-03-01"),
         stage="lost", tags=[]),
    Deal(id="r4", name="", email=None, amount=None, closes_at=None, stage=None, tags=None),
    Deal(id="r5", name=None, email="five@example.com", amount=20, closes_at=_at("2024-02-01", 12),
         stage="open", tags=["ml"]),
    Deal(id="r6", name="100%_done", email=None, amount=None, closes_at=_at("2024-01-01"),
         stage="open", tags=["partner"]),
    Deal(id="r7", name="Barbara Liskov", email="barbara@mit.edu", amount=20, closes_at=None,
         stage="won", tags=["vip"]),
    Deal(id="r8", name="Ada Byron", email=None, amount=5, closes_at=_at("2023-12-31"),
         stage=None, tags=["ml", "navy"]),
]
ALL = {"r1", "r2", "r3", "r4", "r5", "r6", "r7", "r8"}


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    engine = create_engine("sqlite://")  # one connection per thread: the in-memory DB survives the module
    _Base.metadata.create_all(engine)
    with Session(engine) as session:
        session.add_all(ROWS)
        session.commit()
    yield engine
    engine.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with Session(engine) as session:
        yield session


def _groups(*groups: list[dict[str, Any]]) -> list[FilterGroup]:
    return [FilterGroup(filters=[Filter(**f) for f in group]) for group in groups]


def _ids(session: Session, groups: list[FilterGroup]) -> set[str]:
    condition = where_clause(groups, PROPERTIES, Deal)
    statement = select(Deal.id) if condition is None else select(Deal.id).where(condition)
    return set(session.scalars(statement))


def _one(prop: str, operator: str, **operands: Any) -> list[FilterGroup]:
    return _groups([{"property": prop, "operator": operator, **operands}])


# --- every operator, per kind -----------------------------------------------------------------

OPERATOR_CASES = [
    # string
    ("email", "EQ", {"value": "grace@navy.mil"}, {"r2"}),
    ("email", "NEQ", {"value": "grace@navy.mil"}, ALL - {"r2"}),  # NULL emails included
    ("email", "LT", {"value": "b"}, {"r1", "r3"}),
    ("email", "LTE", {"value": "barbara@mit.edu"}, {"r1", "r3", "r7"}),
    ("email", "GT", {"value": "five@example.com"}, {"r2"}),
    ("email", "GTE", {"value": "five@example.com"}, {"r2", "r5"}),
    ("email", "BETWEEN", {"value": "alan", "high_value": "c"}, {"r3", "r7"}),
    ("email", "IN", {"values": ["ada@analytical.org", "barbara@mit.edu"]}, {"r1", "r7"}),
    ("email", "NOT_IN", {"values": ["ada@analytical.org", "barbara@mit.edu"]}, ALL - {"r1", "r7"}),
    ("name", "HAS_PROPERTY", {}, ALL - {"r4", "r5"}),  # "" counts as not having the property
    ("name", "NOT_HAS_PROPERTY", {}, {"r4", "r5"}),
    ("name", "CONTAINS_TOKEN", {"value": "love"}, {"r1"}),
    ("name", "CONTAINS_TOKEN", {"value": "ADA"}, {"r1", "r8"}),
    ("name", "CONTAINS_TOKEN", {"value": "Ad*"}, {"r1", "r8"}),  # * is a wildcard: a prefix here
    ("name", "CONTAINS_TOKEN", {"value": "*ing"}, {"r3"}),
    ("name", "CONTAINS_TOKEN", {"value": "%"}, {"r6"}),  # LIKE's own wildcards are literal
    ("name", "CONTAINS_TOKEN", {"value": "_"}, {"r6"}),
    # number
    ("amount", "EQ", {"value": 20}, {"r2", "r5", "r7"}),
    ("amount", "EQ", {"value": 10.0}, {"r1"}),
    ("amount", "NEQ", {"value": 20}, {"r1", "r3", "r4", "r6", "r8"}),
    ("amount", "LT", {"value": 20}, {"r1", "r8"}),
    ("amount", "LTE", {"value": 20}, {"r1", "r2", "r5", "r7", "r8"}),
    ("amount", "GT", {"value": 20}, {"r3"}),
    ("amount", "GTE", {"value": 20}, {"r2", "r3", "r5", "r7"}),
    ("amount", "BETWEEN", {"value": 5, "high_value": 10}, {"r1", "r8"}),
    ("amount", "IN", {"values": [5, 30]}, {"r3", "r8"}),
    ("amount", "NOT_IN", {"values": [20]}, {"r1", "r3", "r4", "r6", "r8"}),
    ("amount", "HAS_PROPERTY", {}, ALL - {"r4", "r6"}),
    ("amount", "NOT_HAS_PROPERTY", {}, {"r4", "r6"}),
    # datetime: ISO 8601 (Z, offsets, naive = UTC) or epoch milliseconds
    ("closes_at", "EQ", {"value": "2024-02-01T00:00:00Z"}, {"r2"}),
    ("closes_at", "EQ", {"value": "2024-02-01T13:00:00+01:00"}, {"r5"}),
    ("closes_at", "EQ", {"value": "2024-02-01T12:00:00"}, {"r5"}),
    ("closes_at", "EQ", {"value": 1704067200000}, {"r1", "r6"}),
    ("closes_at", "NEQ", {"value": "2024-02-01T00:00:00Z"}, ALL - {"r2"}),
    ("closes_at", "LT", {"value": "2024-01-15T00:00:00Z"}, {"r1", "r6", "r8"}),
    ("closes_at", "LTE", {"value": "2024-01-01T00:00:00Z"}, {"r1", "r6", "r8"}),
    ("closes_at", "GT", {"value": "2024-02-01T00:00:00Z"}, {"r3", "r5"}),
    ("closes_at", "GTE", {"value": "2024-02-01T00:00:00Z"}, {"r2", "r3", "r5"}),
    ("closes_at", "BETWEEN", {"value": "2024-01-01T00:00:00Z", "high_value": "2024-02-01T00:00:00Z"},
     {"r1", "r2", "r6"}),
    ("closes_at", "HAS_PROPERTY", {}, ALL - {"r4", "r7"}),
    ("closes_at", "NOT_HAS_PROPERTY", {}, {"r4", "r7"}),
    # enum
    ("stage", "EQ", {"value": "open"}, {"r1", "r5", "r6"}),
    ("stage", "NEQ", {"value": "open"}, {"r2", "r3", "r4", "r7", "r8"}),
    ("stage", "IN", {"values": ["won", "lost"]}, {"r2", "r3", "r7"}),
    ("stage", "NOT_IN", {"values": ["won"]}, {"r1", "r3", "r4", "r5", "r6", "r8"}),
    ("stage", "HAS_PROPERTY", {}, ALL - {"r4", "r8"}),
    ("stage", "NOT_HAS_PROPERTY", {}, {"r4", "r8"}),
    # tags (a JSON array): element membership, never a substring
    ("tags", "EQ", {"value": "vip"}, {"r1", "r7"}),
    ("tags", "EQ", {"value": "vi"}, set()),
    ("tags", "CONTAINS_TOKEN", {"value": "ml"}, {"r1", "r5", "r8"}),
    ("tags", "IN", {"values": ["navy", "partner"]}, {"r2", "r6", "r8"}),
    ("tags", "NOT_IN", {"values": ["ml", "navy"]}, {"r3", "r4", "r6", "r7"}),  # NULL and [] included
    ("tags", "HAS_PROPERTY", {}, ALL - {"r3", "r4"}),
    ("tags", "NOT_HAS_PROPERTY", {}, {"r3", "r4"}),
]


@pytest.mark.parametrize(
    ("prop", "operator", "operands", "expected"),
    OPERATOR_CASES,
    ids=[f"{p}-{o}-{i}" for i, (p, o, _, _) in enumerate(OPERATOR_CASES)],
)
def test_operator_selects_the_right_rows(
    session: Session, prop: str, operator: str, operands: dict[str, Any], expected: set[str]
) -> None:
    # GIVEN the eight sample rows
    # WHEN one filter is applied
    ids = _ids(session, _one(prop, operator, **operands))

    # THEN exactly the expected rows match
    assert ids == expected


@pytest.mark.parametrize("prop", ["email", "amount", "stage", "tags"])
def test_in_with_no_values_matches_nothing_and_not_in_with_no_values_matches_everything(
    session: Session, prop: str
) -> None:
    # GIVEN / WHEN IN [] and NOT_IN [] are applied
    # THEN IN [] matches nothing and NOT_IN [] everything
    assert _ids(session, _one(prop, "IN", values=[])) == set()
    assert _ids(session, _one(prop, "NOT_IN", values=[])) == ALL


def test_a_group_matching_everything_keeps_every_row_in_the_or(session: Session) -> None:
    # GIVEN one group that matches every row (NOT_IN []) OR-ed with a narrow one
    groups = _groups(
        [{"property": "email", "operator": "NOT_IN", "values": []}],
        [{"property": "email", "operator": "EQ", "value": "grace@navy.mil"}],
    )

    # WHEN applied THEN every row matches (the first group does not vanish)
    assert _ids(session, groups) == ALL


def test_groups_are_or_and_filters_within_a_group_are_and(session: Session) -> None:
    # GIVEN (stage = open AND amount >= 10) OR (tags has navy)
    groups = _groups(
        [{"property": "stage", "operator": "EQ", "value": "open"},
         {"property": "amount", "operator": "GTE", "value": 10}],
        [{"property": "tags", "operator": "EQ", "value": "navy"}],
    )

    # WHEN applied THEN the union of both groups' intersections matches
    assert _ids(session, groups) == {"r1", "r5", "r2", "r8"}


def test_no_groups_means_no_condition() -> None:
    # GIVEN / WHEN / THEN an empty filter list adds no WHERE at all
    assert where_clause([], PROPERTIES, Deal) is None


# --- validation paths --------------------------------------------------------------------------

def _field_of(groups: list[FilterGroup]) -> tuple[str, str]:
    with pytest.raises(ValidationFailed) as caught:
        where_clause(groups, PROPERTIES, Deal)
    errors = caught.value.errors or []
    assert caught.value.status == 422 and len(errors) == 1
    return errors[0]["field"], errors[0]["code"]


def test_unknown_property_names_its_path() -> None:
    # GIVEN an unknown property in the second filter of the first group
    groups = _groups([{"property": "name", "operator": "EQ", "value": "x"},
                      {"property": "salary", "operator": "EQ", "value": 1}])

    # WHEN / THEN the error points at it
    assert _field_of(groups) == ("filter_groups.0.filters.1.property", "unknown_property")


@pytest.mark.parametrize(
    ("prop", "operator", "operands"),
    [
        ("stage", "LT", {"value": "open"}),
        ("stage", "CONTAINS_TOKEN", {"value": "op"}),
        ("closes_at", "IN", {"values": ["2024-01-01T00:00:00Z"]}),
        ("closes_at", "CONTAINS_TOKEN", {"value": "2024"}),
        ("amount", "CONTAINS_TOKEN", {"value": 1}),
        ("tags", "NEQ", {"value": "vip"}),
        ("tags", "GT", {"value": "vip"}),
    ],
)
def test_operator_not_allowed_for_the_kind_names_its_path(prop: str, operator: str, operands: dict[str, Any]) -> None:
    # GIVEN an operator that makes no sense for the property's kind, in the second group
    groups = _groups([{"property": "name", "operator": "EQ", "value": "x"}],
                     [{"property": prop, "operator": operator, **operands}])

    # WHEN / THEN it is refused at that filter's operator
    assert _field_of(groups) == ("filter_groups.1.filters.0.operator", "operator")


@pytest.mark.parametrize(
    ("prop", "operands", "field"),
    [
        ("stage", {"operator": "EQ", "value": "pending"}, "value"),
        ("amount", {"operator": "EQ", "value": "ten"}, "value"),
        ("amount", {"operator": "EQ", "value": True}, "value"),
        ("email", {"operator": "EQ", "value": {"a": 1}}, "value"),
        ("closes_at", {"operator": "GT", "value": "next tuesday"}, "value"),
        ("amount", {"operator": "BETWEEN", "value": 1, "high_value": "lots"}, "high_value"),
        ("stage", {"operator": "IN", "values": ["open", "pending"]}, "values.1"),
    ],
)
def test_values_that_do_not_fit_the_kind_name_their_path(prop: str, operands: dict[str, Any], field: str) -> None:
    # GIVEN a value of the wrong type for the property
    groups = _groups([{"property": prop, **operands}])

    # WHEN / THEN the error names the value's path
    path, _ = _field_of(groups)
    assert path == f"filter_groups.0.filters.0.{field}"


@pytest.mark.parametrize(
    "data",
    [
        {"property": "name", "operator": "IN"},  # IN needs values
        {"property": "name", "operator": "NOT_IN", "value": "x"},
        {"property": "amount", "operator": "BETWEEN", "value": 1},  # needs high_value
        {"property": "amount", "operator": "BETWEEN", "high_value": 1},
        {"property": "name", "operator": "HAS_PROPERTY", "value": "x"},  # takes no value
        {"property": "name", "operator": "NOT_HAS_PROPERTY", "values": ["x"]},
        {"property": "name", "operator": "EQ"},  # needs value
        {"property": "name", "operator": "LIKE", "value": "x"},  # not an operator
        {"property": "name", "operator": "EQ", "value": "x", "comment": "extra"},  # unknown field
        {"property": "name", "operator": "IN", "values": list(range(501))},  # too many
    ],
)
def test_filter_model_refuses_wrong_operands(data: dict[str, Any]) -> None:
    # GIVEN / WHEN a filter with the wrong operands for its operator is parsed THEN it is refused
    with pytest.raises(ValidationError):
        Filter.model_validate(data)


@pytest.mark.parametrize(
    "data",
    [
        {"property": "name", "operator": "IN", "values": []},
        {"property": "amount", "operator": "BETWEEN", "value": 1, "high_value": 2},
        {"property": "name", "operator": "HAS_PROPERTY"},
        {"property": "name", "operator": "EQ", "value": "x"},
    ],
)
def test_filter_model_accepts_right_operands(data: dict[str, Any]) -> None:
    # GIVEN / WHEN a well-formed filter is parsed THEN it is accepted
    assert Filter.model_validate(data).operator == data["operator"]


@pytest.mark.parametrize(
    "data",
    [
        {"filter_groups": [{"filters": []}]},
        {"filter_groups": [{"filters": [{"property": "a", "operator": "HAS_PROPERTY"}]}] * 6},
        {"sorts": [{"property": "name", "direction": "up"}]},
        {"limit": 0},
        {"limit": 201},
        {"query": "x" * 201},
    ],
)
def test_search_request_bounds(data: dict[str, Any]) -> None:
    # GIVEN / WHEN a request outside the documented bounds THEN it is refused
    with pytest.raises(ValidationError):
        SearchRequest.model_validate(data)


def test_sorting_by_an_unknown_or_unsortable_property_is_refused() -> None:
    # GIVEN a second sort on an unknown property, and a sort on tags
    # WHEN / THEN each is refused at its own path
    with pytest.raises(ValidationFailed) as unknown:
        sort_keys([Sort(property="name"), Sort(property="salary")], PROPERTIES, Deal)
    with pytest.raises(ValidationFailed) as unsortable:
        sort_keys([Sort(property="tags")], PROPERTIES, Deal)
    assert (unknown.value.errors or [])[0]["field"] == "sorts.1.property"
    assert (unsortable.value.errors or [])[0]["field"] == "sorts.0.property"
    assert (unsortable.value.errors or [])[0]["code"] == "not_sortable"


# --- keyset pagination -------------------------------------------------------------------------

def _walk_pages(session: Session, sorts: list[Sort], limit: int) -> tuple[list[str], int]:
    keys = sort_keys(sorts, PROPERTIES, Deal)
    sig = signature(keys)
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        rows = list(session.scalars(apply_keyset(select(Deal), keys, cursor, SECRET, sig, limit)))
        page, cursor = next_cursor(rows, keys, limit, SECRET, sig)
        assert len(page) <= limit
        seen += [row.id for row in page]
        pages += 1
        if cursor is None:
            return seen, pages
        assert pages <= len(ROWS), "pagination does not terminate"


SORT_CASES: list[list[tuple[str, str]]] = [
    [("amount", "asc")],  # nulls and duplicates
    [("amount", "desc")],
    [("closes_at", "asc")],  # datetimes in the cursor, nulls and duplicates
    [("closes_at", "desc")],
    [("closes_at", "asc"), ("amount", "desc")],  # mixed directions, nulls in both
    [("stage", "desc"), ("name", "asc")],
    [],  # the default: newest id first
]


@pytest.mark.parametrize("sorts", SORT_CASES, ids=[repr(s) for s in SORT_CASES])
@pytest.mark.parametrize("limit", [1, 2, 3])
def test_keyset_pages_visit_every_row_once_in_full_order(
    session: Session, sorts: list[tuple[str, str]], limit: int
) -> None:
    # GIVEN the order a single ORDER BY gives (NULL lowest; the id tie-break follows the first sort)
    columns: dict[str, Any] = {"amount": Deal.amount, "closes_at": Deal.closes_at, "stage": Deal.stage,
                               "name": Deal.name}
    first_descending = sorts[0][1] == "desc" if sorts else True
    ordering = [columns[p].desc() if d == "desc" else columns[p].asc() for p, d in sorts]
    ordering.append(Deal.id.desc() if first_descending else Deal.id.asc())
    expected = list(session.scalars(select(Deal.id).order_by(*ordering)))

    # WHEN every page is fetched, each after the previous page's cursor
    seen, pages = _walk_pages(session, [Sort(property=p, direction=d) for p, d in sorts], limit)

    # THEN every row comes exactly once, in that order, with no empty trailing page
    assert seen == expected
    assert pages == -(-len(ROWS) // limit)


def test_a_cursor_from_another_query_is_refused(session: Session) -> None:
    # GIVEN a cursor issued for amount ascending
    keys = sort_keys([Sort(property="amount")], PROPERTIES, Deal)
    rows = list(session.scalars(apply_keyset(select(Deal), keys, None, SECRET, signature(keys), 2)))
    _, cursor = next_cursor(rows, keys, 2, SECRET, signature(keys))
    assert cursor is not None

    # WHEN it is used with amount descending, with another filter signature, or with other sort keys
    desc_keys = sort_keys([Sort(property="amount", direction="desc")], PROPERTIES, Deal)
    name_keys = sort_keys([Sort(property="amount"), Sort(property="name")], PROPERTIES, Deal)
    attempts = [
        (desc_keys, signature(desc_keys)),
        (keys, signature(keys, "other filters")),
        (name_keys, signature(keys)),  # right signature text, wrong number of keys
    ]

    # THEN each is a 422 on `cursor`
    for attempt_keys, sig in attempts:
        with pytest.raises(ValidationFailed) as caught:
            apply_keyset(select(Deal), attempt_keys, cursor, SECRET, sig, 2)
        assert [e["field"] for e in caught.value.errors or []] == ["cursor"]


def test_signature_depends_on_sorts_and_query() -> None:
    # GIVEN the same sorts twice, opposite directions, and another query text
    asc = sort_keys([Sort(property="amount")], PROPERTIES, Deal)
    desc = sort_keys([Sort(property="amount", direction="desc")], PROPERTIES, Deal)

    # WHEN / THEN only identical queries share a signature
    assert signature(asc, "q") == signature(sort_keys([Sort(property="amount")], PROPERTIES, Deal), "q")
    assert signature(asc, "q") != signature(desc, "q")
    assert signature(asc, "q") != signature(asc, "r")


def test_a_forged_cursor_is_refused(session: Session) -> None:
    # GIVEN a cursor signed with another secret
    keys = sort_keys([], PROPERTIES, Deal)
    rows = list(session.scalars(apply_keyset(select(Deal), keys, None, "other-secret", signature(keys), 2)))
    _, cursor = next_cursor(rows, keys, 2, "other-secret", signature(keys))

    # WHEN / THEN it is refused
    with pytest.raises(ValidationFailed):
        apply_keyset(select(Deal), keys, cursor, SECRET, signature(keys), 2)


# --- full text ---------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("ada", {"r1", "r8"}),
        ("ADA love", {"r1"}),  # every word must match, case-insensitively
        ("alan bletchley", {"r3"}),  # words may match in different columns
        ("ada grace", set()),
        ("ada@analytical", {"r1"}),  # punctuation splits words
        ("byr", {"r8"}),
    ],
)
def test_text_match_on_sqlite(session: Session, query: str, expected: set[str]) -> None:
    # GIVEN the sample rows WHEN searched over name and email
    condition = text_match([Deal.name, Deal.email], query, "sqlite")
    assert condition is not None

    # THEN the rows containing every word match
    assert set(session.scalars(select(Deal.id).where(condition))) == expected


@pytest.mark.parametrize("query", ["", "   ", "@@ -- !!"])
def test_text_match_without_words_adds_no_condition(query: str) -> None:
    # GIVEN / WHEN a query without any word THEN there is no condition
    assert text_match([Deal.name], query, "sqlite") is None
    assert text_match([Deal.name], query, "mysql") is None


def test_text_match_on_mysql_uses_boolean_fulltext_with_prefix_words() -> None:
    # GIVEN a query with two long words and a short one
    condition = text_match([Deal.name, Deal.email], "Ada Lovelace x", "mysql")
    assert condition is not None

    # WHEN compiled for MySQL
    compiled = select(Deal.id).where(condition).compile(dialect=mysql.dialect())
    sql = " ".join(str(compiled).split())

    # THEN long words go through MATCH ... AGAINST in boolean mode as required prefixes,
    # and the short word (below InnoDB's token size) through LIKE on every column
    assert "MATCH (unit_search_deals.name, unit_search_deals.email) AGAINST" in sql
    assert "IN BOOLEAN MODE" in sql
    assert "+ada* +lovelace*" in compiled.params.values()
    assert "lower(unit_search_deals.name) LIKE" in sql
    assert "lower(unit_search_deals.email) LIKE" in sql
    assert list(compiled.params.values()).count("%x%") == 2


def test_text_match_on_mysql_with_only_short_words_does_not_use_match() -> None:
    # GIVEN only words shorter than three characters WHEN compiled for MySQL
    condition = text_match([Deal.name], "ab c", "mysql")
    assert condition is not None
    sql = str(select(Deal.id).where(condition).compile(dialect=mysql.dialect()))

    # THEN there is no MATCH (it would find nothing) and both words use LIKE
    assert "MATCH" not in sql
    assert sql.count("LIKE") == 2


def test_tags_compile_to_json_contains_on_mysql() -> None:
    # GIVEN a tags filter WHEN compiled for MySQL THEN it uses JSON_CONTAINS on a quoted value
    condition = where_clause(_one("tags", "EQ", value="vip"), PROPERTIES, Deal)
    assert condition is not None
    sql = str(select(Deal.id).where(condition).compile(dialect=mysql.dialect()))
    assert "JSON_CONTAINS(unit_search_deals.tags, JSON_QUOTE(" in sql


@pytest.mark.parametrize(("text", "escaped"), [
    ("50%", "50\\%"), ("snake_case", "snake\\_case"), ("a\\b", "a\\\\b"), ("\\%_", "\\\\\\%\\_"), ("plain", "plain"),
])
def test_escape_like_makes_wildcards_and_the_escape_character_literal(text: str, escaped: str) -> None:
    assert escape_like(text) == escaped


@pytest.mark.parametrize(("query", "words"), [
    ("Snake_Case fan", ["snake_case", "fan"]), ("100%", ["100%"]), ("%", ["%"]), ("globex.io", ["globex", "io"]),
    ("a\\b", ["a", "b"]), ("  ", []), ("Seán O'Brien", ["seán", "o", "brien"]),
])
def test_query_words_keep_percent_and_underscore_as_characters(query: str, words: list[str]) -> None:
    assert query_words(query) == words
