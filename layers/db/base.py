"""Declarative base, column types and the mixins every tenant table uses."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Integer, MetaData, Numeric, String, TypeDecorator, event, inspect
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, Mapper, declared_attr, mapped_column

from shared.clock import as_utc, utcnow
from shared.ids import ID_LENGTH, is_valid_id, new_id

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Stores naive UTC with microseconds; always hands back aware UTC datetimes."""

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime())

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else as_utc(value).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else as_utc(value)


class Money(TypeDecorator[Decimal]):
    """An exact amount, DECIMAL(19,4). SQLite has no decimal type (it would keep a float), so there the
    column holds whole ten-thousandths in a BIGINT: reads, comparisons, sorts and SUM() stay exact."""

    impl = Numeric(19, 4)
    cache_ok = True
    SCALE = 4

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(BigInteger())
        return dialect.type_descriptor(Numeric(19, 4))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None or dialect.name != "sqlite":
            return value
        scaled = Decimal(str(value)).scaleb(self.SCALE)
        # A filter value may have more places than the column (a comparison, never a stored amount).
        return int(scaled) if scaled == scaled.to_integral_value() else float(scaled)

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        if dialect.name == "sqlite":
            return Decimal(int(value)).scaleb(-self.SCALE)
        return value if isinstance(value, Decimal) else Decimal(str(value))


# What an id that cannot be ours is bound as: plain ASCII, so MariaDB compares it with an ascii_bin column
# without "Illegal mix of collations" (1267/1271), and equal to no id. It is the empty string because keyset
# code already binds "" as "before every id" (`id > ''`), which must keep meaning that.
UNMATCHABLE_ID = ""


class IdType(TypeDecorator[str]):
    """A public id column: CHAR(26) ascii_bin on MySQL/MariaDB, VARCHAR(26) elsewhere.

    Every value bound to it — a path id, a filter, a body's reference, an IN list — goes through
    `process_bind_param`, the one place that decides what may reach the database as an id: a value that
    cannot be one of ours (shared/ids.py) becomes UNMATCHABLE_ID, so the query finds nothing and the route
    answers its usual 404, whatever bytes the client sent."""

    impl = String(ID_LENGTH)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.CHAR(ID_LENGTH, charset="ascii", collation="ascii_bin"))
        return dialect.type_descriptor(String(ID_LENGTH))

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        if value is None or value == UNMATCHABLE_ID or is_valid_id(value):
            return value  # type: ignore[no-any-return]
        return UNMATCHABLE_ID

    def process_result_value(self, value: Any, dialect: Dialect) -> str | None:
        return value  # type: ignore[no-any-return]

    @property
    def python_type(self) -> type[str]:
        return str


def IdColumn() -> Any:  # noqa: N802 - reads like a type at the call site
    return IdType()


JSONType = JSON().with_variant(mysql.JSON(), "mysql", "mariadb")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class InvalidIdWrite(ValueError):
    """Code tried to store something that is not an id in an id column (a bug: ids are ours, never a client's)."""


_ID_KEYS: dict[Mapper[Any], tuple[str, ...]] = {}


def _id_keys(mapper: Mapper[Any]) -> tuple[str, ...]:
    keys = _ID_KEYS.get(mapper)
    if keys is None:
        keys = _ID_KEYS[mapper] = tuple(
            prop.key for prop in mapper.column_attrs if any(isinstance(c.type, IdType) for c in prop.columns))
    return keys


@event.listens_for(Base, "before_insert", propagate=True)
@event.listens_for(Base, "before_update", propagate=True)
def refuse_invalid_ids(mapper: Mapper[Any], connection: Any, target: Any) -> None:
    """IdType binds a non-id as UNMATCHABLE_ID, which is right for a lookup and wrong for a write: an ORM
    insert of one, or an update setting one, fails here, loudly, instead of storing an empty id."""
    state = inspect(target)
    inserting = state.key is None
    for key in _id_keys(mapper):
        if inserting:
            values: Any = (state.dict.get(key),)  # only what is in memory: never a load in a flush
        else:
            values = state.attrs[key].history.added or ()  # what this update sets
        for value in values:
            if value is not None and not is_valid_id(value):
                raise InvalidIdWrite(f"{mapper.class_.__name__}.{key} = {value!r} is not an id")


class TenantMixin:
    """A row that belongs to one workspace. The unit of work filters and stamps it."""

    workspace_id: Mapped[str] = mapped_column(IdColumn(), nullable=False, index=False)


class OwnedMixin:
    """A record with an owner (a workspace member). Record-level visibility filters on it."""

    owner_id: Mapped[str | None] = mapped_column(IdColumn(), nullable=True)


class RecordMixin(TenantMixin):
    """A CRM record: public ULID id, timestamps, archive flag, optimistic version (the ETag)."""

    id: Mapped[str] = mapped_column(IdColumn(), primary_key=True, default=new_id)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)

    @declared_attr.directive
    def __mapper_args__(cls) -> dict[str, Any]:  # noqa: N805 - declared_attr passes the class
        # UPDATE ... WHERE version = :seen — a concurrent write fails instead of being lost.
        return {"version_id_col": cls.__table__.c.version}  # type: ignore[attr-defined]
