"""Workspace isolation by the session, and the unit of work's commit-time callbacks."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from sqlalchemy import CursorResult, Engine, Executable, String, delete, func, select, update
from sqlalchemy.orm import DeclarativeBase, Mapped, aliased, mapped_column

from layers.db.base import RecordMixin
from layers.db.engine import get_engine, get_session_factory, make_engine, use_engine
from layers.db.tenancy import TenancyViolation
from layers.db.uow import UnitOfWork
from shared.context import system_scope
from tests.support.ids import named_id

A = system_scope(named_id("workspace-a"))
B = system_scope(named_id("workspace-b"))


class _Base(DeclarativeBase):
    """Own metadata, so this test table never joins the app's schema."""


class Note(RecordMixin, _Base):
    __tablename__ = "unit_tenancy_notes"

    title: Mapped[str] = mapped_column(String(50))


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    # A file, not :memory: — every pooled connection must see the same database.
    previous = get_engine()
    engine = make_engine(f"sqlite:///{tmp_path}/tenancy.db")
    _Base.metadata.create_all(engine)
    use_engine(engine)
    yield engine
    use_engine(previous)
    engine.dispose()


def _add(scope_workspace: str, title: str) -> str:
    with UnitOfWork(system_scope(scope_workspace)) as uow:
        note = Note(title=title)
        uow.session.add(note)
        uow.commit()
        return note.id


def _rowcount(uow: UnitOfWork, statement: Executable) -> int:
    return cast(CursorResult[Any], uow.session.execute(statement)).rowcount


def _titles(workspace_id: str) -> list[str]:
    with UnitOfWork(system_scope(workspace_id)) as uow:
        return sorted(uow.session.scalars(select(Note.title)))


# --- isolation ---------------------------------------------------------------------------------

def test_select_sees_only_the_scopes_workspace(engine: Engine) -> None:
    # GIVEN one note in each workspace
    _add(A.workspace_id, "a-note")
    _add(B.workspace_id, "b-note")

    # WHEN each workspace lists notes, by entity, by column, through an alias and as a count
    with UnitOfWork(B) as uow:
        entities = [n.title for n in uow.session.scalars(select(Note))]
        columns = list(uow.session.scalars(select(Note.title)))
        via_alias = [n.title for n in uow.session.scalars(select(aliased(Note)))]
        count = uow.session.scalar(select(func.count()).select_from(Note))

    # THEN only its own note is visible every way
    assert entities == columns == via_alias == ["b-note"]
    assert count == 1
    assert _titles(A.workspace_id) == ["a-note"]


def test_session_get_does_not_find_another_workspaces_row(engine: Engine) -> None:
    # GIVEN a note in workspace A
    note_id = _add(A.workspace_id, "secret")

    # WHEN workspace B fetches it by primary key
    with UnitOfWork(B) as uow:
        found = uow.session.get(Note, note_id)

    # THEN it is not found (while A does find it)
    assert found is None
    with UnitOfWork(A) as uow:
        assert uow.session.get(Note, note_id) is not None


def test_bulk_update_and_delete_cannot_touch_another_workspace(engine: Engine) -> None:
    # GIVEN a note in workspace A
    note_id = _add(A.workspace_id, "original")

    # WHEN workspace B updates and deletes it by id, and commits
    with UnitOfWork(B) as uow:
        updated = _rowcount(uow, update(Note).where(Note.id == note_id).values(title="hacked"))
        deleted = _rowcount(uow, delete(Note).where(Note.id == note_id))
        uow.commit()

    # THEN neither statement touched a row and A's note is unchanged
    assert (updated, deleted) == (0, 0)
    assert _titles(A.workspace_id) == ["original"]


def test_bulk_update_still_works_inside_the_workspace(engine: Engine) -> None:
    # GIVEN a note in A WHEN A updates it THEN exactly that row changes (the filter does not over-block)
    note_id = _add(A.workspace_id, "before")
    with UnitOfWork(A) as uow:
        assert _rowcount(uow, update(Note).where(Note.id == note_id).values(title="after")) == 1
        uow.commit()
    assert _titles(A.workspace_id) == ["after"]


def test_new_rows_are_stamped_with_the_scopes_workspace(engine: Engine) -> None:
    # GIVEN a note added in workspace B without naming a workspace
    note_id = _add(B.workspace_id, "stamped")

    # WHEN it is read back without a scope (platform view)
    with UnitOfWork(unscoped=True) as uow:
        note = uow.session.get(Note, note_id)

    # THEN it belongs to B
    assert note is not None and note.workspace_id == B.workspace_id


def test_writing_a_row_of_another_workspace_is_refused(engine: Engine) -> None:
    # GIVEN workspace B's unit of work
    # WHEN it adds a row naming workspace A
    with UnitOfWork(B) as uow:
        uow.session.add(Note(title="smuggled", workspace_id=A.workspace_id))

        # THEN the flush refuses it
        with pytest.raises(TenancyViolation):
            uow.commit()

    # AND nothing reached A
    assert _titles(A.workspace_id) == []


def test_moving_a_row_to_another_workspace_is_refused(engine: Engine) -> None:
    # GIVEN a note of workspace B, loaded by B
    note_id = _add(B.workspace_id, "mine")
    with UnitOfWork(B) as uow:
        note = uow.session.get(Note, note_id)
        assert note is not None

        # WHEN B rewrites its workspace to A THEN the flush refuses it
        note.workspace_id = A.workspace_id
        with pytest.raises(TenancyViolation):
            uow.commit()

    assert _titles(A.workspace_id) == []
    assert _titles(B.workspace_id) == ["mine"]


def test_a_unit_of_work_needs_a_scope_or_an_explicit_unscoped_mark() -> None:
    # GIVEN / WHEN a unit of work is made with no scope and no unscoped mark THEN it is refused
    with pytest.raises(ValueError, match="scope"):
        UnitOfWork(None)


def test_a_bare_session_refuses_tenant_tables(engine: Engine) -> None:
    # GIVEN a note, and a session straight from the factory (no scope, no unscoped mark)
    note_id = _add(A.workspace_id, "a-note")
    session = get_session_factory()()
    try:
        # WHEN it queries, fetches or writes tenant rows THEN each is a TenancyViolation
        with pytest.raises(TenancyViolation):
            session.scalars(select(Note)).all()
        with pytest.raises(TenancyViolation):
            session.get(Note, note_id)
        with pytest.raises(TenancyViolation):
            session.execute(delete(Note))
        session.add(Note(title="x", workspace_id=A.workspace_id))
        with pytest.raises(TenancyViolation):
            session.flush()
    finally:
        session.close()
    assert _titles(A.workspace_id) == ["a-note"]


def test_unscoped_unit_of_work_sees_every_workspace_and_must_name_one_to_write(engine: Engine) -> None:
    # GIVEN notes in two workspaces
    _add(A.workspace_id, "a-note")
    _add(B.workspace_id, "b-note")

    # WHEN a platform (unscoped) unit of work reads, and writes with and without a workspace
    with UnitOfWork(unscoped=True) as uow:
        titles = sorted(uow.session.scalars(select(Note.title)))
        uow.session.add(Note(title="nowhere"))
        with pytest.raises(TenancyViolation):
            uow.session.flush()
    with UnitOfWork(unscoped=True) as uow:
        uow.session.add(Note(title="for-b", workspace_id=B.workspace_id))
        uow.commit()

    # THEN it sees both, the anonymous row is refused, the named one lands where it says
    assert titles == ["a-note", "b-note"]
    assert _titles(B.workspace_id) == ["b-note", "for-b"]


# --- commit callbacks --------------------------------------------------------------------------

def test_before_commit_runs_before_and_after_commit_after_the_write_is_durable(engine: Engine) -> None:
    # GIVEN callbacks that look at the database from another connection
    seen: dict[str, list[str]] = {}

    def look(moment: str) -> None:
        seen[moment] = _titles(A.workspace_id)

    with UnitOfWork(A) as uow:
        uow.session.add(Note(title="new"))
        uow.before_commit(lambda: look("before"))
        uow.after_commit(lambda: look("after"))
        assert seen == {}  # registering runs nothing

        # WHEN the unit of work commits
        uow.commit()

    # THEN before_commit saw nothing committed yet, and after_commit saw the row
    assert seen == {"before": [], "after": ["new"]}


def test_leaving_without_commit_rolls_back_and_runs_no_callback(engine: Engine) -> None:
    # GIVEN callbacks registered in a unit of work that is left without commit
    calls: list[str] = []
    with UnitOfWork(A) as uow:
        uow.session.add(Note(title="dropped"))
        uow.session.flush()
        uow.before_commit(lambda: calls.append("before"))
        uow.after_commit(lambda: calls.append("after"))

    # WHEN / THEN nothing ran and nothing was written
    assert calls == []
    assert _titles(A.workspace_id) == []


def test_an_exception_in_the_block_rolls_back_and_runs_no_callback(engine: Engine) -> None:
    # GIVEN a unit of work whose block fails before commit
    calls: list[str] = []
    with pytest.raises(RuntimeError), UnitOfWork(A) as uow:
        uow.session.add(Note(title="dropped"))
        uow.after_commit(lambda: calls.append("after"))
        raise RuntimeError("boom")

    # WHEN / THEN no callback ran and nothing was written
    assert calls == []
    assert _titles(A.workspace_id) == []


def test_a_failing_commit_runs_no_after_commit_callback(engine: Engine) -> None:
    # GIVEN a write that the tenancy guard refuses at flush
    calls: list[str] = []
    with UnitOfWork(B) as uow:
        uow.session.add(Note(title="smuggled", workspace_id=A.workspace_id))
        uow.before_commit(lambda: calls.append("before"))
        uow.after_commit(lambda: calls.append("after"))

        # WHEN commit fails
        with pytest.raises(TenancyViolation):
            uow.commit()

    # THEN neither callback ran
    assert calls == []


def test_a_failing_before_commit_aborts_the_commit(engine: Engine) -> None:
    # GIVEN a before_commit callback that fails
    calls: list[str] = []

    def fail() -> None:
        raise ConnectionError("cache unavailable")

    with UnitOfWork(A) as uow:
        uow.session.add(Note(title="aborted"))
        uow.before_commit(fail)
        uow.after_commit(lambda: calls.append("after"))

        # WHEN commit runs THEN the failure propagates
        with pytest.raises(ConnectionError):
            uow.commit()

    # AND nothing was written, and after_commit never ran
    assert calls == []
    assert _titles(A.workspace_id) == []


def test_a_failing_after_commit_callback_does_not_undo_or_fail_the_write(engine: Engine) -> None:
    # GIVEN two after_commit callbacks, the first of which fails
    calls: list[str] = []

    def fail() -> None:
        raise ConnectionError("push failed")

    with UnitOfWork(A) as uow:
        uow.session.add(Note(title="kept"))
        uow.after_commit(fail)
        uow.after_commit(lambda: calls.append("second"))

        # WHEN commit runs
        uow.commit()

    # THEN commit did not raise, the second callback still ran, and the row is durable
    assert calls == ["second"]
    assert _titles(A.workspace_id) == ["kept"]


def test_callbacks_run_once_even_if_commit_is_called_again(engine: Engine) -> None:
    # GIVEN one after_commit callback
    calls: list[str] = []
    with UnitOfWork(A) as uow:
        uow.session.add(Note(title="one"))
        uow.after_commit(lambda: calls.append("after"))

        # WHEN the unit of work commits twice
        uow.commit()
        uow.commit()

    # THEN the callback ran once
    assert calls == ["after"]


def test_rows_read_in_the_block_stay_readable_after_it(engine: Engine) -> None:
    # GIVEN a note read inside a unit of work
    _add(A.workspace_id, "readable")
    with UnitOfWork(A) as uow:
        note = uow.session.scalars(select(Note)).one()

    # WHEN / THEN its attributes are still readable after the session closed
    assert note.title == "readable"
    assert note.version == 1
