"""The companies table."""
from __future__ import annotations

from sqlalchemy import Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from layers.db.base import Base, IdColumn, JSONType, OwnedMixin, RecordMixin


class Company(RecordMixin, OwnedMixin, Base):
    __tablename__ = "companies"
    __table_args__ = (
        # Unique on domain_key, not domain: a duplicate the client asked for keeps domain_key NULL.
        UniqueConstraint("workspace_id", "domain_key"),
        Index("ix_companies_domain", "workspace_id", "domain"),
        Index("ix_companies_list", "workspace_id", "archived_at", "id"),
        Index("ix_companies_created", "workspace_id", "created_at"),
        Index("ix_companies_name", "workspace_id", "name"),
        Index("ix_companies_fulltext", "name", "domain", "industry", mysql_prefix="FULLTEXT"),
    )

    name: Mapped[str] = mapped_column(String(255), nullable=False)
    domain: Mapped[str | None] = mapped_column(String(253), nullable=True)
    industry: Mapped[str | None] = mapped_column(String(100), nullable=True)
    employee_count: Mapped[int | None] = mapped_column(Integer, nullable=True)
    tags: Mapped[list[str]] = mapped_column(JSONType, nullable=False, default=list)
    custom: Mapped[dict[str, object]] = mapped_column(JSONType, nullable=False, default=dict)
    domain_key: Mapped[str | None] = mapped_column(String(253), nullable=True)
    merged_into_id: Mapped[str | None] = mapped_column(IdColumn(), nullable=True)
