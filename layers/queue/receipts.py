"""Receipts of jobs whose effects committed: what makes at-least-once delivery effective once."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from layers.db.base import Base, UTCDateTime


class JobReceipt(Base):
    """Platform table (keys name their workspace's records); purged after the queue's retention."""

    __tablename__ = "job_receipts"

    key: Mapped[str] = mapped_column(String(191), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, index=True)
