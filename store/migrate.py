"""Schema migrations: Alembic's scripts in store/migrations, run on the engine's own
connection (async engines hand it over with run_sync).

A database made before migrations existed has its tables (made by create_all) and no
alembic_version table: the baseline revision creates only the tables and indexes it lacks,
so such a database is adopted with every row kept. A new revision goes in
migrations/versions; tests/test_migrations.py checks that the revisions add up to the
models."""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, MetaData, inspect, text

log = logging.getLogger(__name__)
SCRIPTS = Path(__file__).resolve().with_name("migrations")
VERSION_TABLE = "alembic_version"
# one migration at a time on a server that the engine and a command line share
_PG_LOCK_KEY = 0x6D61646F


def config(connection: Connection | None = None,
           metadata: MetaData | None = None) -> Config:
    """Alembic's configuration without an ini file; `connection` is the one to migrate."""
    cfg = Config()
    cfg.set_main_option("script_location", str(SCRIPTS))
    if connection is not None:
        cfg.attributes["connection"] = connection
    if metadata is not None:
        cfg.attributes["target_metadata"] = metadata
    return cfg


def head() -> str:
    found = ScriptDirectory.from_config(config()).get_current_head()
    assert found is not None, f"no revision in {SCRIPTS}"
    return found


def current(connection: Connection) -> str | None:
    """The database's revision; None when it has none (empty, or made before migrations)."""
    return MigrationContext.configure(connection).get_current_revision()


def unversioned_tables(connection: Connection) -> list[str]:
    """Tables of a database with no revision: made by a release before migrations."""
    names = inspect(connection).get_table_names()
    return [] if VERSION_TABLE in names else sorted(names)


def upgrade(connection: Connection, revision: str = "head") -> None:
    """Bring the schema to `revision`, in the caller's transaction."""
    if connection.dialect.name == "postgresql":
        # released at the end of the transaction; a second migrator waits, then finds
        # nothing left to do
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
    before = current(connection)
    found = unversioned_tables(connection)
    if found:
        log.info("database tables from before schema migrations (%s): adopted by the "
                 "baseline revision, rows kept", ", ".join(found))
    command.upgrade(config(connection), revision)
    after = current(connection)
    if after != before:
        log.info("database schema upgraded from revision %s to %s", before or "none", after)
