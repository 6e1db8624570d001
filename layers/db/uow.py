"""Unit of work: one session, one transaction, side effects only after commit.

A caller may also hold the commits of the units of work it runs (`CommitDeferral`): the Idempotency-Key
middleware does, to store a request's response in the transaction of the request's own effects.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from types import TracebackType
from typing import Protocol, Self

from sqlalchemy.orm import Session, SessionTransaction
from sqlalchemy.orm.exc import StaleDataError

from layers.db.engine import get_session_factory
from layers.db.tenancy import UNSCOPED_KEY, VISIBLE_OWNERS_KEY, WORKSPACE_KEY
from shared.context import Scope
from shared.errors import AppError, Conflict, PreconditionFailed

log = logging.getLogger(__name__)


class Versioned(Protocol):
    version: int


class UnitOfWork:
    """`with UnitOfWork(scope) as uow: ...; uow.commit()` — leaving without commit rolls back."""

    def __init__(self, scope: Scope | None = None, *, unscoped: bool = False) -> None:
        if scope is None and not unscoped:
            raise ValueError("a unit of work needs a workspace scope, or unscoped=True for platform tables")
        self.scope = scope
        self._unscoped = unscoped
        self._before_commit: list[Callable[[], None]] = []
        self._after_commit: list[Callable[[], None]] = []
        self._committed = False
        self._held = False  # its transaction waits in a CommitDeferral
        self._expected_version: tuple[str, int] | None = None  # If-Match: (what, the version the caller saw)

    def __enter__(self) -> Self:
        deferral = _deferral.get()
        if deferral is not None:
            # A new transaction could not see what a held one wrote (READ COMMITTED; SQLite's snapshot) and
            # could wait on its locks: what the request committed so far must really be committed first.
            deferral.release()
        self.session: Session = get_session_factory()()
        if self.scope is not None:
            self.session.info[WORKSPACE_KEY] = self.scope.workspace_id
            if self.scope.visible_owner_ids is not None:
                self.session.info[VISIBLE_OWNERS_KEY] = self.scope.visible_owner_ids
        else:
            self.session.info[UNSCOPED_KEY] = True
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._held:
            # The deferral commits or rolls back later; detach the rows now, as close() would, so nothing the
            # caller changes after the block can be flushed into that transaction.
            self.session.expunge_all()
            return
        # close() rolls back anything uncommitted and detaches rows *without* expiring them,
        # so what was read stays readable after the block.
        self.session.close()

    def savepoint(self) -> SessionTransaction:
        """A nested transaction: one batch input fails without undoing the others."""
        return self.session.begin_nested()

    def before_commit(self, callback: Callable[[], None]) -> None:
        """Run `callback` just before COMMIT (e.g. marking cache entries pending); its failure aborts."""
        self._before_commit.append(callback)

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run `callback` once the transaction is durable (cache writes, pushes); never before."""
        self._after_commit.append(callback)

    def require_version(self, row: Versioned, expected_version: int | None, what: str) -> None:
        """If-Match: 412 unless `row` is still at `expected_version` (None: no condition). The check reads
        without a lock, so a request that passes it may still lose the race at UPDATE … WHERE version; that
        loss is the same failed precondition (see `flush`)."""
        if expected_version is None:
            return
        self._expected_version = (what, expected_version)
        if row.version != expected_version:
            raise PreconditionFailed(f"the {what} is at version {row.version}, not {expected_version}")

    def flush(self, what: str = "record") -> None:
        """Flush; a versioned row that another request changed first is a 412 when the caller named the version
        it saw (If-Match), else a 409 to retry."""
        try:
            self.session.flush()
        except StaleDataError:
            raise self._lost_race(what) from None

    def _lost_race(self, what: str) -> AppError:
        if self._expected_version is not None:
            seen_what, seen = self._expected_version
            return PreconditionFailed(f"the {seen_what} was changed by another request after version {seen}")
        return Conflict(f"the {what} was changed by another request at the same time; retry")

    def commit(self) -> None:
        self.flush()
        for callback in self._before_commit:
            callback()
        self._before_commit = []
        deferral = _deferral.get()
        if deferral is not None:
            deferral.hold(self)  # its owner commits the transaction, or rolls it back
        else:
            self.session.commit()
            self._run_after_commit()
        self._committed = True

    def _run_after_commit(self) -> None:
        callbacks, self._after_commit = self._after_commit, []
        for callback in callbacks:
            try:
                callback()
            except Exception:  # the write is durable; a failed side effect must not turn it into a 500
                log.exception("after-commit callback failed")


_deferral: ContextVar[CommitDeferral | None] = ContextVar("crm_commit_deferral", default=None)


class CommitDeferral:
    """Holds the commits of the units of work run under `active()` so that the caller can add to that
    transaction and COMMIT it itself, or roll it back.

    1. Under `active()`, `UnitOfWork.commit()` flushes and runs its before-commit callbacks, then leaves its
       transaction open here (its after-commit callbacks wait too).
    2. `commit(write)` adds `write`'s rows to the held transaction, COMMITs, then runs the after-commit
       callbacks; if `write` or the COMMIT fails, the whole transaction is rolled back and the error raised.
    3. `rollback()` drops the held transaction: nothing of it was ever visible.
    4. A unit of work that begins while one is held (a service that commits, then works in a new unit of
       work) makes the held one commit first (`release()`): `on_early_commit` adds its rows to it once — the
       caller's record that its request has already taken effect. `committed_early` says so afterwards.
    """

    def __init__(self, on_early_commit: Callable[[Session], None]) -> None:
        self._on_early_commit = on_early_commit
        self._held: UnitOfWork | None = None
        self.committed_early = False

    @contextmanager
    def active(self) -> Iterator[Self]:
        token = _deferral.set(self)
        try:
            yield self
        finally:
            _deferral.reset(token)

    @property
    def holding(self) -> bool:
        return self._held is not None

    def hold(self, uow: UnitOfWork) -> None:
        if self._held is not None and self._held is not uow:
            self.release()  # nested units of work: the inner one committed first, so it goes first
        uow._held = True
        self._held = uow

    def release(self) -> None:
        """Commit the held transaction now (with `on_early_commit`'s rows the first time)."""
        held = self._take()
        if held is None:
            return
        with _closing(held):
            if not self.committed_early:
                self._on_early_commit(held.session)
            held.session.commit()
        self.committed_early = True
        held._run_after_commit()

    def commit(self, write: Callable[[Session], None]) -> None:
        held = self._take()
        if held is None:
            raise RuntimeError("no transaction is held")
        with _closing(held):
            write(held.session)
            held.session.commit()
        held._run_after_commit()

    def rollback(self) -> None:
        held = self._take()
        if held is not None:
            held.session.close()

    def _take(self) -> UnitOfWork | None:
        held, self._held = self._held, None
        if held is not None:
            held._held = False
        return held


@contextmanager
def _closing(uow: UnitOfWork) -> Iterator[None]:
    """Close the session whatever happens: a failed write or COMMIT rolls the transaction back."""
    try:
        yield
    finally:
        uow.session.close()
