"""Unit of work: one session, one transaction, side effects only after commit."""
from __future__ import annotations

import logging
from collections.abc import Callable
from types import TracebackType
from typing import Self

from sqlalchemy.orm import Session, SessionTransaction

from layers.db.engine import get_session_factory
from layers.db.tenancy import UNSCOPED_KEY, VISIBLE_OWNERS_KEY, WORKSPACE_KEY
from shared.context import Scope

log = logging.getLogger(__name__)


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

    def __enter__(self) -> Self:
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

    def commit(self) -> None:
        self.session.flush()
        for callback in self._before_commit:
            callback()
        self._before_commit = []
        self.session.commit()
        self._committed = True
        callbacks, self._after_commit = self._after_commit, []
        for callback in callbacks:
            try:
                callback()
            except Exception:  # the write is durable; a failed side effect must not turn it into a 500
                log.exception("after-commit callback failed")
