"""The unit of work's deferred commits (CommitDeferral) and its If-Match version checks, on the test database."""
from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from functions.contacts.models import Contact
from functions.contacts.schemas import ContactUpdate
from functions.contacts.service import contacts
from layers.db.uow import CommitDeferral, UnitOfWork
from layers.queue.receipts import JobReceipt
from shared.clock import utcnow
from shared.context import system_scope
from shared.errors import Conflict, PreconditionFailed
from shared.ids import new_id
from tests.support.api import Api


def _receipts(keys: list[str]) -> set[str]:
    """What is committed, read in a unit of work of its own (outside any deferral)."""
    with UnitOfWork(unscoped=True) as uow:
        return set(uow.session.scalars(select(JobReceipt.key).where(JobReceipt.key.in_(keys))))


def _write(key: str, log: list[str] | None = None) -> None:
    with UnitOfWork(unscoped=True) as uow:
        uow.session.add(JobReceipt(key=key, received_at=utcnow()))
        if log is not None:
            uow.after_commit(lambda: log.append(f"after {key}"))
        uow.commit()


def _adding(key: str) -> Callable[[Session], None]:
    return lambda session: session.add(JobReceipt(key=key, received_at=utcnow()))


def test_a_deferred_commit_stays_invisible_until_the_caller_commits_it_with_its_own_rows() -> None:
    # GIVEN a unit of work that commits while a deferral is active
    effect, record = f"test:{new_id()}", f"test:{new_id()}"
    log: list[str] = []
    deferral = CommitDeferral(on_early_commit=_adding(f"test:{new_id()}"))
    with deferral.active():
        _write(effect, log)
    # THEN nothing is committed yet, and the after-commit callbacks wait
    assert deferral.holding and _receipts([effect]) == set() and log == []
    # WHEN the caller adds its row and commits
    deferral.commit(_adding(record))
    # THEN both are committed together, then the callbacks ran; the early-commit hook was never needed
    assert _receipts([effect, record]) == {effect, record}
    assert log == [f"after {effect}"] and not deferral.committed_early and not deferral.holding


def test_a_rolled_back_deferral_leaves_nothing_and_runs_no_callback() -> None:
    # GIVEN a deferred commit
    effect = f"test:{new_id()}"
    log: list[str] = []
    deferral = CommitDeferral(on_early_commit=_adding(f"test:{new_id()}"))
    with deferral.active():
        _write(effect, log)
    # WHEN the caller rolls it back (the request failed after its service committed)
    deferral.rollback()
    # THEN nothing was ever committed
    assert _receipts([effect]) == set() and log == []


def test_a_failing_write_rolls_back_the_effects_with_it() -> None:
    # GIVEN a deferred commit
    effect = f"test:{new_id()}"
    deferral = CommitDeferral(on_early_commit=_adding(f"test:{new_id()}"))
    with deferral.active():
        _write(effect)

    # WHEN the caller's own row cannot be written
    def failing(session: Session) -> None:
        raise RuntimeError("the record could not be written")

    with pytest.raises(RuntimeError):
        deferral.commit(failing)
    # THEN the effects are not committed either
    assert _receipts([effect]) == set()


def test_a_new_unit_of_work_makes_the_held_one_commit_first_with_the_early_commit_rows_once() -> None:
    # GIVEN a request that commits, then works in a second and a third unit of work
    first, second, third = (f"test:{new_id()}" for _ in range(3))
    marker = f"test:{new_id()}"
    deferral = CommitDeferral(on_early_commit=_adding(marker))
    with deferral.active():
        _write(first)
        with UnitOfWork(unscoped=True) as uow:  # it must see what the first one wrote
            seen = set(uow.session.scalars(select(JobReceipt.key).where(JobReceipt.key == first)))
        _write(second)
        _write(third)
    # THEN the first committed (with the marker) before the second began, and saw it; the second committed
    # when the third began (no second marker); the third is still held
    assert seen == {first}
    assert deferral.committed_early and deferral.holding
    assert _receipts([first, second, third, marker]) == {first, second, marker}
    deferral.commit(lambda session: None)
    assert _receipts([third]) == {third}


def test_a_lost_version_race_is_412_under_if_match_and_409_without(api: Api) -> None:
    scope = system_scope(api.workspace_id)
    for expected_version, error in ((1, PreconditionFailed), (None, Conflict)):
        # GIVEN a contact read at version 1 by a request (with If-Match: "v1", or without)
        record_id = api.post("/v1/contacts", {"first_name": "Ada"}).json["id"]
        with UnitOfWork(scope) as uow:
            row = uow.session.get(Contact, record_id)
            assert row is not None
            uow.require_version(row, expected_version, "contact")
            # WHEN another request updates it first, and this one then writes
            contacts.update(scope, record_id, ContactUpdate(job_title="theirs"))
            row.job_title = "mine"
            # THEN the loser is told its precondition failed (412), or to retry (409)
            with pytest.raises(error):
                uow.flush("contact")
