"""Uniquely named scratch databases on the shared MariaDB server, dropped when done.

Several test runs (CI, a developer, a second checkout) may share one server, so no test ever drops or
recreates a fixed name: every database a run makes is named `<base>_<run>_<label>_<random>` and dropped
by the run that made it.
"""
from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url


def unique_name(base: str, label: str) -> str:
    return f"{base}_{label}_{secrets.token_hex(4)}"[:64]


@contextmanager
def scratch_database(url: str, label: str) -> Iterator[str]:
    """Create an empty utf8mb4 database beside `url`'s and yield its URL; drop it afterwards.
    Raises sqlalchemy's OperationalError when the server is unreachable (callers skip or fail)."""
    parsed = make_url(url)
    name = unique_name(parsed.database or "crm_test", label)
    server = create_engine(parsed.set(database="mysql"))
    try:
        with server.connect() as connection:
            connection.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"))
    finally:
        server.dispose()
    try:
        yield parsed.set(database=name).render_as_string(hide_password=False)
    finally:
        server = create_engine(parsed.set(database="mysql"))
        try:
            with server.connect() as connection:
                connection.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
        finally:
            server.dispose()
