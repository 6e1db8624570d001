"""`crm local`'s children: a stop right after start still ends a Python tier cleanly."""
from __future__ import annotations

import sys

from layers.runtime.children import Children

# A tier that takes a while before its SIGTERM handler is in place (importing the app), then stops cleanly on it.
SLOW_STARTER = """
import signal, sys, time
time.sleep(0.5)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
while True:
    time.sleep(0.05)
"""


def test_a_child_still_starting_gets_to_install_its_handler_before_it_is_stopped() -> None:
    # GIVEN a child that handles SIGTERM once started, stopped before it had the chance
    children = Children()
    children.spawn("tier", [sys.executable, "-c", SLOW_STARTER], handles_sigterm=True)

    # WHEN crm local stops at once
    report = children.stop(deadline_seconds=10)

    # THEN it waited for the handler and the child exited 0 (not -15, a death by signal)
    assert report.codes == {"tier": 0}, report
    assert report.clean


def test_a_child_that_never_handles_sigterm_is_still_stopped_by_it() -> None:
    # GIVEN a child not marked as handling SIGTERM (granian's main handles its own)
    children = Children()
    children.spawn("plain", [sys.executable, "-c", "import time; time.sleep(60)"])

    # WHEN stopped: SIGTERM at once, no wait
    report = children.stop(deadline_seconds=10)

    # THEN it died of the signal, and nothing had to be killed
    assert report.codes == {"plain": -15}
    assert report.killed == []
