"""Run Alembic migrations programmatically (`crm migrate`, test fixtures, local mode)."""
from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, MetaData

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(engine: Engine | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    config = alembic_config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def autogenerate(message: str, rev_id: str, *, metadata: MetaData, replace: bool = False) -> Path:
    """Write a migration from the difference between `metadata` (every model's tables: the caller loads them,
    see tiers/models.py) and the current head, computed on a scratch SQLite database. `replace` regenerates an
    existing revision in place (while developing it)."""
    import tempfile

    from alembic.script import ScriptDirectory
    from sqlalchemy import create_engine

    existing = list((MIGRATIONS / "versions").glob(f"{rev_id}_*.py"))
    if existing and not replace:
        raise FileExistsError(f"revision {rev_id} exists: {existing[0].name}")
    for path in existing:
        path.unlink()
    with tempfile.TemporaryDirectory() as scratch:
        engine = create_engine(f"sqlite:///{scratch}/scratch.db")
        config = alembic_config(engine)
        config.attributes["target_metadata"] = metadata
        head = ScriptDirectory.from_config(config).get_current_head()
        if head:
            upgrade(engine, head)
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            script = command.revision(config, message=message, autogenerate=True, rev_id=rev_id)
        engine.dispose()
    return Path(script.path)  # type: ignore[union-attr]


def downgrade(engine: Engine, revision: str) -> None:
    config = alembic_config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)
