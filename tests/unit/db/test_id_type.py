"""Id columns: what may be bound as an id, and what may be stored as one."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy import Engine, String, create_engine, event, select
from sqlalchemy.dialects import mysql, sqlite
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from layers.db.base import UNMATCHABLE_ID, IdColumn, IdType, InvalidIdWrite, refuse_invalid_ids
from shared.ids import is_valid_id, new_id
from shared.schemas import RecordId, StrictModel

NOT_IDS = ["é", "A" * 300, "\x00\x01", "01arz3ndektsv4rrffq69g5fav", "01ARZ3NDEKTSV4RRFFQ69G5FAV\n",
           "01ARZ3NDEKTSV4RRFFQ69G5FAI", 7, b"x"]


@pytest.mark.parametrize("value", NOT_IDS)
def test_a_value_that_cannot_be_an_id_is_bound_as_one_that_matches_nothing(value: object) -> None:
    # GIVEN a value no id of ours can equal WHEN bound to an id column THEN it reaches the database as plain ASCII
    for dialect in (mysql.dialect(), sqlite.dialect()):
        assert IdType().process_bind_param(value, dialect) == UNMATCHABLE_ID
    assert UNMATCHABLE_ID.isascii() and not is_valid_id(UNMATCHABLE_ID)


def test_ids_and_null_are_bound_as_they_are() -> None:
    some_id = new_id()
    assert IdType().process_bind_param(some_id, mysql.dialect()) == some_id
    assert IdType().process_bind_param(None, mysql.dialect()) is None
    # "" is what keyset code binds for "before every id": it keeps meaning that
    assert IdType().process_bind_param("", mysql.dialect()) == ""


def test_the_column_is_ascii_bin_on_mysql() -> None:
    ddl = str(IdType().dialect_impl(mysql.dialect()).compile(dialect=mysql.dialect()))
    assert ddl == "CHAR(26) CHARACTER SET ascii COLLATE ascii_bin"


class _Base(DeclarativeBase):
    pass


class _Row(_Base):
    __tablename__ = "unit_id_rows"
    id: Mapped[str] = mapped_column(IdColumn(), primary_key=True)
    ref: Mapped[str | None] = mapped_column(IdColumn(), nullable=True)
    name: Mapped[str] = mapped_column(String(20), default="")


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = create_engine(f"sqlite:///{tmp_path}/ids.db")
    _Base.metadata.create_all(engine)
    # the guard listens on the app's Base; this table's own base gets it the same way
    for moment in ("before_insert", "before_update"):
        event.listen(_Base, moment, refuse_invalid_ids, propagate=True)
    yield engine
    engine.dispose()


def test_lookups_with_a_bad_id_find_nothing_and_writes_of_one_fail_loudly(engine: Engine) -> None:
    good = new_id()
    with Session(engine) as session:
        session.add(_Row(id=good, ref=None))
        session.commit()
        # WHEN looked up by values that cannot be ids THEN nothing is found (no error)
        assert session.get(_Row, "é") is None
        assert list(session.scalars(select(_Row).where(_Row.id.in_(["é", "A" * 300])))) == []
        assert [r.id for r in session.scalars(select(_Row).where(_Row.id != "é"))] == [good]
        # WHEN code tries to store one THEN the flush refuses it instead of storing an empty id
        session.add(_Row(id=new_id(), ref="not-an-id"))
        with pytest.raises(InvalidIdWrite):
            session.flush()
        session.rollback()
        row = session.get(_Row, good)
        assert row is not None
        row.ref = "é"
        with pytest.raises(InvalidIdWrite):
            session.flush()


class _Body(StrictModel):
    ref: RecordId | None = None
    refs: list[RecordId] = []


@pytest.mark.parametrize("value", [v for v in NOT_IDS if isinstance(v, str) and v.strip() == v])
def test_a_body_id_that_cannot_be_ours_is_a_validation_error(value: str) -> None:
    with pytest.raises(ValidationError) as caught:
        _Body.model_validate({"refs": [new_id(), value]})
    assert [(e["loc"], e["type"]) for e in caught.value.errors()] == [(("refs", 1), "invalid_id")]


def test_a_body_id_of_ours_is_accepted_and_documented_with_its_pattern() -> None:
    some_id = new_id()
    assert _Body.model_validate({"ref": some_id}).ref == some_id
    schema = _Body.model_json_schema()["properties"]["ref"]["anyOf"][0]
    assert schema["pattern"] == "^[0-9A-HJKMNP-TV-Z]{26}$" and schema["maxLength"] == 26
