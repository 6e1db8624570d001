"""The availability breaker: new connections fail fast while the database is unreachable, one caller
at a time probes it, and an answer lets connections through again."""
from __future__ import annotations

import threading

import pytest

from layers.db.availability import Availability
from layers.db.errors import DatabaseUnreachable


class FakeServer:
    """A probe target: answers, refuses, or holds the probe until released."""

    def __init__(self) -> None:
        self.up = True
        self.probes = 0
        self.hold: threading.Event | None = None
        self.probing = threading.Event()

    def probe(self) -> None:
        self.probes += 1
        self.probing.set()
        if self.hold is not None:
            self.hold.wait(30)
        if not self.up:
            raise ConnectionRefusedError("refused")


def test_connections_pass_untouched_while_the_database_answers() -> None:
    server = FakeServer()
    availability = Availability(server.probe)
    availability.before_connect()
    assert server.probes == 0 and not availability.away


def test_after_a_loss_the_next_connection_probes_at_once_and_passes_when_it_answers() -> None:
    # GIVEN one dropped connection (an idle timeout) while the server is fine
    server = FakeServer()
    availability = Availability(server.probe, probe_interval=3600)
    availability.lost()
    # WHEN the pool reconnects THEN a probe goes first, it answers, and the connection is made
    availability.before_connect()
    assert server.probes == 1 and not availability.away


def test_while_unreachable_connections_fail_fast_between_probes() -> None:
    # GIVEN a server that does not answer, after a loss
    server = FakeServer()
    server.up = False
    availability = Availability(server.probe, probe_interval=3600)
    availability.lost()
    # WHEN connections are asked for THEN the first probes and fails; the others fail without probing
    for _ in range(3):
        with pytest.raises(DatabaseUnreachable):
            availability.before_connect()
    assert server.probes == 1 and availability.away


def test_a_due_probe_that_answers_brings_the_database_back() -> None:
    server = FakeServer()
    server.up = False
    availability = Availability(server.probe, probe_interval=0)  # every connection may probe
    availability.lost()
    with pytest.raises(DatabaseUnreachable):
        availability.before_connect()
    # WHEN the server answers again THEN the next connection's probe lets it through
    server.up = True
    availability.before_connect()
    assert server.probes == 2 and not availability.away


def test_only_one_caller_probes_at_a_time() -> None:
    # GIVEN a probe in progress that the server has not answered yet
    server = FakeServer()
    server.hold = threading.Event()
    availability = Availability(server.probe, probe_interval=0)
    availability.lost()
    outcome: list[BaseException | None] = []

    def connect() -> None:
        try:
            availability.before_connect()
            outcome.append(None)
        except DatabaseUnreachable as error:
            outcome.append(error)

    prober = threading.Thread(target=connect)
    prober.start()
    assert server.probing.wait(30)
    # WHEN another connection is asked for meanwhile THEN it fails at once instead of probing too
    with pytest.raises(DatabaseUnreachable):
        availability.before_connect()
    assert server.probes == 1
    # ... and when the probe is answered, the prober connects
    server.hold.set()
    prober.join(30)
    assert outcome == [None] and not availability.away


def test_answers_reports_the_probe_and_never_raises() -> None:
    server = FakeServer()
    availability = Availability(server.probe)
    assert availability.answers() is True
    server.up = False
    assert availability.answers() is False
