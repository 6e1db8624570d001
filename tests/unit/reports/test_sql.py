"""The dialect-aware SQL of the deal reports: what each dialect is sent, and what SQLite computes."""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import Column, Date, DateTime, Integer, MetaData, Numeric, Table, create_engine, func, insert, select
from sqlalchemy.dialects import mysql, sqlite

from functions.deals.reports import ExactProduct, seconds_between, weighted, year_month
from layers.db.base import Money

METADATA = MetaData()
ROWS = Table("rows", METADATA, Column("id", Integer, primary_key=True), Column("day", Date),
             Column("start", DateTime), Column("end", DateTime), Column("amount", Money()),
             Column("probability", Numeric(5, 4)))


def sql(expression: object, dialect: object) -> str:
    return str(select(expression).compile(dialect=dialect))  # type: ignore[call-overload]


@pytest.mark.parametrize("dialect", [mysql.dialect(), mysql.dialect(is_mariadb=True)], ids=["mysql", "mariadb"])
def test_mysql_and_mariadb_get_native_functions_without_percent_signs(dialect: object) -> None:
    # GIVEN the three constructs WHEN compiled for MySQL/MariaDB
    month = sql(year_month(ROWS.c.day), dialect)
    seconds = sql(seconds_between(ROWS.c.start, ROWS.c.end), dialect)
    product = sql(weighted(ROWS.c.amount, ROWS.c.probability), dialect)
    # THEN they use EXTRACT / TIMESTAMPDIFF / a plain DECIMAL product, and no '%' the driver would misread
    assert "EXTRACT(YEAR_MONTH FROM `rows`.day)" in month
    assert "TIMESTAMPDIFF(SECOND, `rows`.start, `rows`.end)" in seconds
    assert "(`rows`.amount * `rows`.probability)" in product
    assert "%" not in month + seconds + product


def test_sqlite_gets_strftime_julianday_and_integer_arithmetic() -> None:
    # GIVEN the three constructs WHEN compiled for SQLite
    dialect = sqlite.dialect()
    # THEN they use strftime, julianday and integer ten-thousandths
    assert "CAST(strftime('%Y%m', rows.day) AS INTEGER)" in sql(year_month(ROWS.c.day), dialect)
    assert "julianday(rows.\"end\") - julianday(rows.start)" in sql(seconds_between(ROWS.c.start, ROWS.c.end),
                                                                     dialect)
    assert "CAST(ROUND(rows.probability * 10000) AS INTEGER)" in sql(weighted(ROWS.c.amount, ROWS.c.probability),
                                                                      dialect)


def test_sqlite_computes_months_seconds_and_exact_weighted_sums() -> None:
    # GIVEN rows on SQLite with amounts whose float products would not be exact
    engine = create_engine("sqlite://")
    METADATA.create_all(engine)
    with engine.begin() as connection:
        connection.execute(insert(ROWS), [
            {"day": date(2026, 3, 31), "start": datetime(2026, 1, 1), "end": datetime(2026, 1, 2, 0, 0, 30),
             "amount": Decimal("0.1234"), "probability": Decimal("0.1234")},
            {"day": date(2026, 3, 1), "start": datetime(2026, 1, 1), "end": datetime(2026, 1, 1, 12),
             "amount": Decimal("1234567.8901"), "probability": Decimal("0.3333")},
        ])
        # WHEN the constructs are evaluated and summed
        months = connection.execute(select(year_month(ROWS.c.day)).distinct()).scalars().all()
        seconds = connection.execute(select(seconds_between(ROWS.c.start, ROWS.c.end)).order_by(ROWS.c.id)).scalars()
        total = connection.execute(select(func.sum(weighted(ROWS.c.amount, ROWS.c.probability),
                                                   type_=ExactProduct()))).scalar_one()
    # THEN the month is one number, the durations are whole seconds, and the sum is exact
    assert months == [202603]
    assert list(seconds) == [86430, 43200]
    assert total == Decimal("0.1234") * Decimal("0.1234") + Decimal("1234567.8901") * Decimal("0.3333")
