"""Migrations on a scratch MariaDB database: down to nothing, up again, and the result matches the models."""
from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, create_engine, inspect, text
from sqlalchemy.engine import make_url

from layers.db.engine import make_engine
from layers.db.migrate import downgrade, upgrade
from tiers.models import load_all_models

METADATA = load_all_models()  # what `crm makemigration` compares the migrations with


@pytest.fixture
def scratch_engine(mariadb_url: str) -> Iterator[Engine]:
    """An empty database of its own (per xdist worker), dropped afterwards."""
    url = make_url(mariadb_url)
    name = f"{url.database}_migrations_{os.getpid()}"
    server = create_engine(url.set(database="mysql"))
    with server.connect() as connection:
        connection.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"))
    engine = make_engine(url.set(database=name).render_as_string(hide_password=False), pool_size=2)
    try:
        yield engine
    finally:
        engine.dispose()
        with server.connect() as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
        server.dispose()


def _tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names())


def _differences(engine: Engine) -> list[Any]:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True, "compare_server_default": True})
        return compare_metadata(context, METADATA)


def test_downgrade_to_base_and_upgrade_to_head(scratch_engine: Engine) -> None:
    model_tables = set(METADATA.tables)

    # WHEN migrated up THEN every model table exists
    upgrade(scratch_engine)
    assert _tables(scratch_engine) == model_tables | {"alembic_version"}

    # WHEN migrated all the way down THEN nothing but alembic's bookkeeping is left
    downgrade(scratch_engine, "base")
    assert _tables(scratch_engine) == {"alembic_version"}

    # WHEN migrated up again THEN the schema is back, and matches the models exactly
    upgrade(scratch_engine)
    assert _tables(scratch_engine) == model_tables | {"alembic_version"}
    assert _differences(scratch_engine) == []

    # ... and the comparison is not vacuous: it notices a missing index, FULLTEXT ones included
    # (MariaDB reflects JSON, DATETIME(6) and the ascii CHAR ids as the models declare them, so
    # nothing needs ignoring)
    with scratch_engine.begin() as connection:
        connection.execute(text("DROP INDEX ix_contacts_owner ON contacts"))
        connection.execute(text("DROP INDEX ix_companies_fulltext ON companies"))
    missing = {diff[1].name for diff in _differences(scratch_engine) if diff[0] == "add_index"}
    assert missing == {"ix_contacts_owner", "ix_companies_fulltext"}


def test_the_migrated_schema_matches_the_models(mariadb_engine: Engine) -> None:
    # The session database was migrated by the fixture: autogenerate would have nothing to write.
    assert _differences(mariadb_engine) == []


def test_full_text_indexes_keep_stopwords_searchable(mariadb_engine: Engine) -> None:
    # 0002 rebuilt them without InnoDB's stopword list ("com", "the", "will" ...)
    with mariadb_engine.connect() as connection:
        fulltext = connection.execute(text(
            "SELECT table_name, index_name FROM information_schema.statistics "
            "WHERE table_schema = DATABASE() AND index_type = 'FULLTEXT' GROUP BY table_name, index_name"
        )).all()
    assert {tuple(row) for row in fulltext} == {("contacts", "ix_contacts_fulltext"),
                                                ("companies", "ix_companies_fulltext"),
                                                ("deals", "ix_deals_fulltext"),
                                                ("activities", "ix_activities_fulltext")}


def test_0013_spells_stored_automation_rules_object_types_in_the_plural(scratch_engine: Engine) -> None:
    # GIVEN the schema before 0013 and rules stored with the old, singular spelling (and one already plural)
    upgrade(scratch_engine, "0012")
    insert = text("INSERT INTO automation_rules (id, workspace_id, name, object_type, trigger_type, `trigger`, "
                  "actions, status, consecutive_failures, created_at, updated_at, version) VALUES (:id, 'W', 'R', "
                  ":object_type, 'record_created', '{}', '[]', 'active', 0, NOW(), NOW(), 3)")
    old = {"R1": "contact", "R2": "company", "R3": "deal", "R4": "activity", "R5": "contacts"}
    with scratch_engine.begin() as connection:
        for rule_id, object_type in old.items():
            connection.execute(insert, {"id": rule_id, "object_type": object_type})

    # WHEN migrated to head
    upgrade(scratch_engine)

    # THEN every rule names its object type in the plural, and each rewritten one moved its version on
    with scratch_engine.connect() as connection:
        rows = {row.id: f"{row.object_type}:{row.version}" for row in connection.execute(
            text("SELECT id, object_type, version FROM automation_rules"))}
    assert rows == {"R1": "contacts:4", "R2": "companies:4", "R3": "deals:4", "R4": "activities:4", "R5": "contacts:3"}

    # AND a downgrade spells them as before
    downgrade(scratch_engine, "0012")
    with scratch_engine.connect() as connection:
        assert set(connection.execute(text("SELECT object_type FROM automation_rules")).scalars()) == {
            "contact", "company", "deal", "activity"}
