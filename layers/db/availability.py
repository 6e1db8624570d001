"""Fail fast while the database is unreachable, and notice within a second that it is back.

1. An error that means the server cannot be reached (refused, dropped, no answer within the socket
   timeout, gone away) marks the engine's database away (engine event `handle_error`). SQLAlchemy has
   already invalidated the pool's connections, so every later checkout needs a new connection.
2. While it is away, new connections are not attempted (dialect event `do_connect`): the caller gets
   DatabaseUnreachable at once (a 503), so a frozen server does not hold a thread per request for a
   socket timeout each. One caller at a time, at most every PROBE_INTERVAL_SECONDS, first probes the
   server on a throwaway connection whose socket timeouts are PROBE_TIMEOUT_SECONDS.
3. A probe that answers marks the database back, and that caller connects as usual. The first probe
   after a loss is due at once, so one dropped connection (an idle timeout, a proxy) costs nothing.

A statement already waiting on the server when it froze still waits out its socket timeout (the
statement limit plus a margin, see engine.py): that is the longest a frozen database costs a request.
The probe is also how readiness and the worker ask "does the database answer now?" (`answers`).
"""
from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Callable

from sqlalchemy import Engine, text

from layers.db.errors import DatabaseUnreachable
from layers.observability.metrics import DATABASE_AVAILABLE

log = logging.getLogger(__name__)

PROBE_INTERVAL_SECONDS = 0.5
PROBE_TIMEOUT_SECONDS = 1.0


class Availability:
    """One engine's view of whether its database answers (thread-safe)."""

    def __init__(self, probe: Callable[[], None], *, probe_interval: float = PROBE_INTERVAL_SECONDS) -> None:
        self._probe = probe
        self._probe_interval = probe_interval
        self._lock = threading.Lock()
        self._away = False
        self._probing = False
        self._next_probe = 0.0

    @property
    def away(self) -> bool:
        return self._away

    def lost(self) -> None:
        """A connection failed in a way that means the server cannot be reached."""
        with self._lock:
            if self._away:
                return
            self._away = True
            self._next_probe = 0.0
        DATABASE_AVAILABLE.set(0)
        log.warning("database unreachable: new connections fail fast until a probe answers")

    def before_connect(self) -> None:
        """Raise DatabaseUnreachable instead of letting a new connection wait on an unreachable server."""
        with self._lock:
            if not self._away:
                return
            if self._probing or time.monotonic() < self._next_probe:
                raise DatabaseUnreachable("the database is unreachable")
            self._probing = True
        try:
            answered = self.answers()
        finally:
            with self._lock:
                self._probing = False
                self._next_probe = time.monotonic() + self._probe_interval
        if not answered:
            raise DatabaseUnreachable("the database is unreachable")

    def answers(self) -> bool:
        """Probe the server now, within the probe's own short timeouts; an answer marks it back."""
        try:
            self._probe()
        except Exception as error:  # whatever the driver raises, the answer is "no"
            log.debug("database probe failed", extra={"error": type(error).__name__})
            return False
        with self._lock:
            was_away, self._away = self._away, False
        if was_away:
            DATABASE_AVAILABLE.set(1)
            log.warning("database answers again")
        return True


_registry: weakref.WeakKeyDictionary[Engine, Availability] = weakref.WeakKeyDictionary()
_registry_lock = threading.Lock()


def install(engine: Engine, availability: Availability) -> None:
    with _registry_lock:
        _registry[engine] = availability


def availability_of(engine: Engine) -> Availability:
    """The engine's Availability; an engine make_engine did not build gets one that probes through its pool."""
    with _registry_lock:
        found = _registry.get(engine)
        if found is None:
            found = _registry[engine] = Availability(_select_one(weakref.ref(engine)))
        return found


def _select_one(engine: weakref.ref[Engine]) -> Callable[[], None]:
    def probe() -> None:
        live = engine()
        if live is None:
            raise RuntimeError("the engine is gone")
        with live.connect() as connection:
            connection.execute(text("SELECT 1"))

    return probe
