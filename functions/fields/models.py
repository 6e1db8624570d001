"""Custom field definitions."""
from __future__ import annotations

from sqlalchemy import Boolean, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from layers.db.base import Base, JSONType, RecordMixin


class FieldDefinition(RecordMixin, Base):
    __tablename__ = "field_definitions"
    __table_args__ = (UniqueConstraint("workspace_id", "object_type", "key"),)

    object_type: Mapped[str] = mapped_column(String(16), nullable=False)  # contacts|companies|deals
    key: Mapped[str] = mapped_column(String(63), nullable=False)
    label: Mapped[str] = mapped_column(String(100), nullable=False)
    type: Mapped[str] = mapped_column(String(16), nullable=False)
    required: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False, server_default=text("0"))
    unique_values: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False, server_default=text("0"))
    options: Mapped[list[str]] = mapped_column(JSONType, nullable=False, default=list)
    description: Mapped[str | None] = mapped_column(String(500), nullable=True)
