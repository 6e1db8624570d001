"""A nudge for the relay after a commit that wrote outbox rows (Redis pub/sub), so events leave
within milliseconds instead of waiting for the relay's next idle poll. Best effort: a lost nudge
costs at most one poll interval, never an event."""
from __future__ import annotations

import logging
import threading
from typing import Any

from layers.cache.client import get_redis, guarded
from layers.db.uow import UnitOfWork

log = logging.getLogger(__name__)
CHANNEL = "crm:outbox"


def nudge_after_commit(uow: UnitOfWork) -> None:
    """Once per unit of work: publish on CHANNEL after COMMIT."""
    if getattr(uow, "_relay_nudged", False):
        return
    uow._relay_nudged = True  # type: ignore[attr-defined]
    uow.after_commit(_publish)


def _publish() -> None:
    guarded("outbox_nudge", lambda r: r.publish(CHANNEL, "1"), lambda: 0)


class Wakeup:
    """What the relay waits on between passes: a nudge or the idle timeout, whichever comes first."""

    def __init__(self) -> None:
        self._pubsub: Any = None
        self._lock = threading.Lock()

    def wait(self, timeout: float) -> None:
        try:
            if self._pubsub is None:
                self._pubsub = get_redis().pubsub(ignore_subscribe_messages=True)
                self._pubsub.subscribe(CHANNEL)
            message = self._pubsub.get_message(timeout=timeout)
            while message is not None:  # several commits may have nudged: one pass serves them all
                message = self._pubsub.get_message(timeout=0)
        except Exception:  # Redis away: plain polling still publishes everything
            log.debug("relay wake-up channel unavailable", exc_info=True)
            self._pubsub = None
            threading.Event().wait(timeout)
