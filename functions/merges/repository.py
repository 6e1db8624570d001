"""Queries of the merges capability: candidate duplicate groups (computed in SQL), merges by id and page.

Candidates are found by one window query per key (`COUNT(*) OVER (PARTITION BY key)`), so only records
that share a key with another live record are loaded into Python — never the whole table. The keys are
built from the same character maps as rules.py; MariaDB's case- and accent-insensitive collation groups
a little more than SQLite does, and rules.py decides every pair either way.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import ColumnElement, String, and_, case, func, or_, select, type_coerce
from sqlalchemy.orm import Session

from functions.merges import rules
from functions.merges.models import Merge
from layers.db.uow import UnitOfWork

MAX_GROUP = 50  # a key shared by more records (a switchboard number, info@) identifies no one
_CHUNK = 500

Expression = ColumnElement[Any]


def _text(expression: Any) -> Expression:
    return type_coerce(expression, String())


def _is_mysql(session: Session) -> bool:
    return session.get_bind().dialect.name in ("mysql", "mariadb")


class _SqliteKeys:
    """SQLite cannot split strings or use regular expressions: the rules themselves, as SQL functions
    registered on the connection (cheap, and exactly the Python keys)."""

    def __init__(self, session: Session) -> None:
        raw: Any = session.connection().connection.dbapi_connection
        for name, function in (("crm_local_key", rules.local_key), ("crm_email_domain", _email_domain),
                               ("crm_phone_key", rules.phone_key), ("crm_company_name_key", rules.company_name_key),
                               ("crm_domain_root", rules.domain_root)):
            raw.create_function(name, 1, function, deterministic=True)

    def local_part(self, email: Any) -> Expression:
        return _text(func.crm_local_key(email))

    def email_domain(self, email: Any) -> Expression:
        return _text(func.crm_email_domain(email))

    def phone(self, phone: Any) -> Expression:
        return _text(func.crm_phone_key(phone))

    def company_name(self, name: Any) -> Expression:
        return _text(func.crm_company_name_key(name))

    def domain_root(self, domain: Any) -> Expression:
        return _text(func.crm_domain_root(domain))


def _email_domain(email: str | None) -> str | None:
    parts = rules.email_parts(email)
    return parts[1] if parts else None


class _MysqlKeys:
    """The same keys as rules.py, in MySQL 8 / MariaDB SQL (REGEXP_REPLACE, SUBSTRING_INDEX). The
    integration tier checks them against the rules on tricky values, so the two cannot drift apart."""

    def local_part(self, email: Any) -> Expression:
        local = func.substring_index(func.lower(email), "@", 1)
        return _text(func.replace(func.substring_index(local, "+", 1), ".", ""))

    def email_domain(self, email: Any) -> Expression:
        return _text(func.substring_index(func.lower(email), "@", -1))

    def phone(self, phone: Any) -> Expression:
        number = func.regexp_replace(func.lower(phone), "[xe].*$", "")  # no extension
        digits = func.regexp_replace(number, "[^0-9]", "")
        tail = rules.PHONE_TAIL
        return _text(case((func.char_length(digits) < rules.MIN_PHONE_DIGITS, None),
                          else_=func.right(digits, tail)))

    def company_name(self, name: Any) -> Expression:
        dropped = "[" + "".join(rules.NAME_DROPPED) + "]"
        text = func.regexp_replace(func.lower(name), dropped, "")
        text = func.trim(func.regexp_replace(text, "[^[:alnum:]]+", " "))
        suffixes = "|".join(rules.LEGAL_SUFFIXES)
        return _text(func.nullif(func.regexp_replace(text, f"( ({suffixes}))+$", ""), ""))

    def domain_root(self, domain: Any) -> Expression:
        last = func.substring_index(domain, ".", -1)
        second = func.substring_index(func.substring_index(domain, ".", -2), ".", 1)
        third = func.substring_index(func.substring_index(domain, ".", -3), ".", 1)
        dots = func.length(domain) - func.length(func.replace(domain, ".", ""))
        return _text(case((and_(dots >= 2, func.char_length(last) == 2, second.in_(rules.GENERIC_SECOND_LEVEL)), third),
                          else_=second))


def _keys(session: Session) -> _SqliteKeys | _MysqlKeys:
    return _MysqlKeys() if _is_mysql(session) else _SqliteKeys(session)


def contact_keys(session: Session, model: Any) -> list[tuple[list[Expression], list[Expression]]]:
    """(partition key, where) per duplicate rule for contacts."""
    sql = _keys(session)
    has_email = model.email.like("_%@_%")
    first = _text(func.lower(func.trim(func.coalesce(model.first_name, ""))))
    last = _text(func.lower(func.trim(func.coalesce(model.last_name, ""))))
    return [
        ([sql.local_part(model.email), sql.email_domain(model.email)], [has_email]),  # same / similar email
        ([model.company_id, first, last],  # same name at the same company
         [model.company_id.is_not(None), model.first_name.is_not(None) | model.last_name.is_not(None)]),
        ([model.company_id, sql.local_part(model.email)], [model.company_id.is_not(None), has_email]),
        ([sql.phone(model.phone)], [model.phone.is_not(None)]),
    ]


def company_keys(session: Session, model: Any) -> list[tuple[list[Expression], list[Expression]]]:
    sql = _keys(session)
    return [
        ([sql.company_name(model.name)], []),
        ([sql.domain_root(model.domain)], [model.domain.is_not(None)]),  # also catches the very same domain
    ]


def candidate_groups(uow: UnitOfWork, model: Any, keys: list[tuple[list[Expression], list[Expression]]]) -> list[
        list[str]]:
    """Ids of live records sharing a key with 1..MAX_GROUP-1 others, one list per rule and shared key value.

    One scan: every key is computed once per row (a derived table), then one window per rule counts and
    names its groups, and only rows in a group of 2..MAX_GROUP come back. A group is named by the database
    (its lowest id), not by the key's text: MariaDB's collation puts "Société" and "societe" in one
    partition, which Python would split again. Tenancy and record-level visibility apply to the scan."""
    columns: list[Any] = [model.id.label("id")]
    for rule, (partition, where) in enumerate(keys):
        usable = and_(*where, *[k.is_not(None) for k in partition], *[k != "" for k in partition])
        columns.append(case((usable, 1), else_=0).label(f"v{rule}"))
        columns += [k.label(f"k{rule}_{i}") for i, k in enumerate(partition)]
    keyed = select(*columns).where(model.archived_at.is_(None)).subquery()
    windows: list[Any] = [keyed.c.id]
    for rule, (partition, _) in enumerate(keys):
        over = [keyed.c[f"v{rule}"], *[keyed.c[f"k{rule}_{i}"] for i in range(len(partition))]]
        windows += [keyed.c[f"v{rule}"], func.min(keyed.c.id).over(partition_by=over).label(f"g{rule}"),
                    func.count().over(partition_by=over).label(f"n{rule}")]
    counted = select(*windows).subquery()
    wanted = [and_(counted.c[f"v{rule}"] == 1, counted.c[f"n{rule}"].between(2, MAX_GROUP))
              for rule in range(len(keys))]
    statement = select(counted).where(or_(*wanted))
    by_group: dict[tuple[int, str], list[str]] = {}
    for row in uow.session.execute(statement).mappings():
        for rule in range(len(keys)):
            if row[f"v{rule}"] == 1 and 2 <= row[f"n{rule}"] <= MAX_GROUP:
                by_group.setdefault((rule, row[f"g{rule}"]), []).append(row["id"])
    return [sorted(ids) for _, ids in sorted(by_group.items()) if len(ids) > 1]


def load(uow: UnitOfWork, model: Any, ids: list[str]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for chunk in _chunks(sorted(set(ids))):
        found.update({row.id: row for row in uow.session.scalars(select(model).where(model.id.in_(chunk)))})
    return found


def _chunks(ids: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(ids), _CHUNK):
        yield ids[start:start + _CHUNK]


def get(uow: UnitOfWork, merge_id: str) -> Merge | None:
    return uow.session.get(Merge, merge_id)


def page(uow: UnitOfWork, *, object_type: str | None, before: str | None, limit: int) -> list[Merge]:
    """Newest first (ids are time-ordered)."""
    statement = select(Merge).order_by(Merge.id.desc()).limit(limit + 1)
    if object_type is not None:
        statement = statement.where(Merge.object_type == object_type)
    if before is not None:
        statement = statement.where(Merge.id < before)
    return list(uow.session.scalars(statement))
