"""Typed errors of merges (409s a client tells apart by their problem type)."""
from __future__ import annotations

from shared.errors import Conflict


class UndoExpired(Conflict):
    slug, title = "merge-undo-expired", "This merge is too old to undo"


class UndoUnsafe(Conflict):
    slug, title = "merge-undo-unsafe", "The records changed since the merge; undoing it would lose those changes"


class AlreadyUndone(Conflict):
    slug, title = "merge-already-undone", "This merge was undone already"
