"""The processes `crm local` runs (API server, worker tier), each in a process group of its own, stopped
together within a deadline.

Why groups of their own: a terminal's Ctrl-C signals the whole foreground process group at once. With
the children in it, granian's worker got SIGINT from the terminal and SIGTERM from granian's main process
together, and now and then never ran its shutdown; granian then waited `workers_kill_timeout` (25 s) and
killed it. Out of the terminal's group, each child gets exactly one SIGTERM, from `crm local`, and a
group still running at the deadline is killed whole (granian's forked worker included), so nothing
outlives `crm local`.

A child also stops when `crm local` dies without stopping it (SIGKILL): `follow_parent()` asks the kernel
for SIGTERM when the parent goes (Linux), where a process group of its own would otherwise leave it running.
"""
from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

PARENT_ENV = "CRM_LOCAL_PARENT_PID"
_PR_SET_PDEATHSIG = 1


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    # A Python tier installs its SIGTERM handler first thing; SIGTERM before that kills it (-15) and the stop
    # reads as a failure. Such a child gets a moment to install it before it is signalled.
    handles_sigterm: bool = False

    @property
    def pid(self) -> int:
        return self.process.pid


@dataclass
class StopReport:
    """How the stop went: seconds it took, exit code per child, and which had to be killed."""

    seconds: float
    codes: dict[str, int | None] = field(default_factory=dict)
    killed: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.killed and all(code == 0 for code in self.codes.values())


class Children:
    def __init__(self) -> None:
        self.children: list[Child] = []

    def spawn(self, name: str, argv: list[str], *, handles_sigterm: bool = False) -> Child:
        """Start `argv` in a new session (its own process group), told who its parent is. `handles_sigterm`:
        the child installs a SIGTERM handler as it starts (the Python tiers), so a stop waits for it."""
        env = {**os.environ, PARENT_ENV: str(os.getpid())}
        child = Child(name, subprocess.Popen(argv, env=env, start_new_session=True),  # noqa: S603 - our own argv
                      handles_sigterm)
        self.children.append(child)
        return child

    def exited(self) -> Child | None:
        """A child that is no longer running, if any."""
        return next((c for c in self.children if c.process.poll() is not None), None)

    def stop(self, *, deadline_seconds: float) -> StopReport:
        """SIGTERM each child (its group leader only: granian's main stops its own workers), wait for all
        until the deadline, then SIGKILL the groups still running; also any process left in a group whose
        leader exited (an orphaned granian worker)."""
        started = time.monotonic()
        for child in self.children:
            if child.handles_sigterm:
                _wait_until_it_catches(child, signal.SIGTERM, until=started + min(2.0, deadline_seconds / 2))
        for child in self.children:
            if child.process.poll() is None:
                _signal(child.pid, signal.SIGTERM, group=False)
        report = StopReport(seconds=0.0)
        deadline = started + deadline_seconds
        for child in self.children:
            try:
                child.process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                report.killed.append(child.name)
                _signal(child.pid, signal.SIGKILL, group=True)
                child.process.wait()
        for child in self.children:
            if _group_alive(child.pid):  # the leader is gone, something it started is not
                if child.name not in report.killed:
                    report.killed.append(child.name)
                _signal(child.pid, signal.SIGKILL, group=True)
            report.codes[child.name] = child.process.returncode
        report.seconds = time.monotonic() - started
        return report


def follow_parent() -> None:
    """In a child started by `Children.spawn`: be sent SIGTERM when that parent dies; exit now if it
    already has. A no-op outside `crm local` and off Linux."""
    parent = os.environ.get(PARENT_ENV)
    if not parent or not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        log.warning("cannot ask to be stopped with the parent process", exc_info=True)
        return
    if os.getppid() != int(parent):  # it died before prctl took effect
        sys.exit(1)


def _wait_until_it_catches(child: Child, signum: int, *, until: float) -> None:
    """Until `child` has a handler for `signum` (its SigCgt mask, Linux), exits, or `until` passes."""
    status = f"/proc/{child.pid}/status"
    while child.process.poll() is None and time.monotonic() < until:
        try:
            with open(status) as lines:
                mask = next((line.split()[1] for line in lines if line.startswith("SigCgt:")), None)
        except OSError:
            return  # not Linux, or already gone
        if mask is None or int(mask, 16) >> (signum - 1) & 1:
            return
        time.sleep(0.01)


def _signal(pid: int, signum: int, *, group: bool) -> None:
    try:
        if group:
            os.killpg(pid, signum)  # the child leads its session, so its group id is its pid
        else:
            os.kill(pid, signum)
    except ProcessLookupError:
        pass


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
