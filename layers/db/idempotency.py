"""Idempotency-Key records: the database's word on whether a keyed request took effect, and its answer.

A record is written in the transaction of the request's own effects (layers/http/idempotency.py), so it
exists exactly when they committed. `status` is None when the request had to commit before its response
was known (it went on in a second unit of work): it took effect, but what it answered is not stored yet.
"""
from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from sqlalchemy import Integer, String, Text, delete, update
from sqlalchemy.dialects import mysql
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from layers.db.base import Base, JSONType, UTCDateTime
from layers.db.uow import UnitOfWork
from shared.clock import utcnow


def _ascii(length: int) -> String:
    return String(length).with_variant(mysql.VARCHAR(length, charset="ascii", collation="ascii_bin"),
                                       "mysql", "mariadb")


class IdempotencyRecord(Base):
    """Platform table: the owner is a workspace id, or `user:<id>` for a person's own POSTs (a new workspace)."""

    __tablename__ = "idempotency_records"

    owner: Mapped[str] = mapped_column(_ascii(64), primary_key=True)
    # SHA-256 of the key, not the key: any header bytes compare exactly (a *_bin collation still pads
    # spaces) and the primary key stays small whatever the key's length.
    key_digest: Mapped[str] = mapped_column(_ascii(64), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(_ascii(64), nullable=False)
    status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    headers: Mapped[dict[str, str] | None] = mapped_column(JSONType, nullable=True)
    body: Mapped[str | None] = mapped_column(Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb"),
                                             nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, index=True)


class KeyTaken(Exception):
    """A concurrent request with the same key committed its record first."""


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def find(owner: str, key: str, *, now: datetime | None = None) -> IdempotencyRecord | None:
    """The key's record, or None. An expired one (not purged yet) is deleted: the key may be used afresh."""
    now = now or utcnow()
    with UnitOfWork(unscoped=True) as uow:
        record = uow.session.get(IdempotencyRecord, (owner, key_digest(key)))
        if record is None or record.expires_at > now:
            return record
        uow.session.execute(delete(IdempotencyRecord).where(
            IdempotencyRecord.owner == owner, IdempotencyRecord.key_digest == record.key_digest,
            IdempotencyRecord.expires_at <= now))
        uow.commit()
    return None


def insert(session: Session, *, owner: str, key: str, fingerprint: str, ttl_seconds: int,
           status: int | None = None, headers: dict[str, str] | None = None, body: str | None = None) -> None:
    """Add the record to `session`'s transaction; KeyTaken when another transaction holds or committed it
    (MariaDB makes this INSERT wait for that transaction, so the answer is final)."""
    now = utcnow()
    session.add(IdempotencyRecord(owner=owner, key_digest=key_digest(key), fingerprint=fingerprint, status=status,
                                  headers=headers, body=body, created_at=now,
                                  expires_at=now + timedelta(seconds=ttl_seconds)))
    try:
        session.flush()
    except IntegrityError:
        raise KeyTaken(key) from None


def set_response(session: Session, *, owner: str, key: str, status: int, headers: dict[str, str], body: str) -> None:
    """Store the response of a request whose record was committed without one."""
    session.execute(update(IdempotencyRecord)
                    .where(IdempotencyRecord.owner == owner, IdempotencyRecord.key_digest == key_digest(key))
                    .values(status=status, headers=headers, body=body)
                    .execution_options(synchronize_session=False))


def store_response(*, owner: str, key: str, status: int, headers: dict[str, str], body: str) -> None:
    """`set_response` in a transaction of its own."""
    with UnitOfWork(unscoped=True) as uow:
        set_response(uow.session, owner=owner, key=key, status=status, headers=headers, body=body)
        uow.commit()
