"""The contacts table."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from layers.db.base import Base, IdColumn, JSONType, OwnedMixin, RecordMixin, UTCDateTime


class Contact(RecordMixin, OwnedMixin, Base):
    __tablename__ = "contacts"
    __table_args__ = (
        # Unique on email_key, not email: a duplicate the client asked for keeps email_key NULL.
        UniqueConstraint("workspace_id", "email_key"),
        Index("ix_contacts_email", "workspace_id", "email"),
        Index("ix_contacts_phone", "workspace_id", "phone"),
        Index("ix_contacts_list", "workspace_id", "archived_at", "id"),
        Index("ix_contacts_created", "workspace_id", "created_at"),
        Index("ix_contacts_company", "workspace_id", "company_id", "id"),
        Index("ix_contacts_owner", "workspace_id", "owner_id"),
        Index("ix_contacts_last_name", "workspace_id", "last_name"),
        Index("ix_contacts_ai_score", "workspace_id", "ai_score"),
        Index("ix_contacts_fulltext", "first_name", "last_name", "email", "job_title", mysql_prefix="FULLTEXT"),
    )

    first_name: Mapped[str | None] = mapped_column(String(100), nullable=True)
    last_name: Mapped[str | None] = mapped_column(String(100), nullable=True)
    email: Mapped[str | None] = mapped_column(String(320), nullable=True)
    phone: Mapped[str | None] = mapped_column(String(64), nullable=True)
    job_title: Mapped[str | None] = mapped_column(String(150), nullable=True)
    lifecycle_stage: Mapped[str | None] = mapped_column(String(16), nullable=True)
    company_id: Mapped[str | None] = mapped_column(IdColumn(), nullable=True)
    tags: Mapped[list[str]] = mapped_column(JSONType, nullable=False, default=list)
    custom: Mapped[dict[str, object]] = mapped_column(JSONType, nullable=False, default=dict)
    email_key: Mapped[str | None] = mapped_column(String(320), nullable=True)
    merged_into_id: Mapped[str | None] = mapped_column(IdColumn(), nullable=True)
    # Read-only: written by the AI capability's lead score (functions/ai), never by create/update.
    ai_score: Mapped[int | None] = mapped_column(Integer, nullable=True)
    ai_scored_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
