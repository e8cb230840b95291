"""Run Alembic from code: `flask migrate`, tests and `make run` all use this."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from alembic import command, op
from alembic.config import Config

ROOT = Path(__file__).resolve().parent.parent


def alembic_config(url: str) -> Config:
    """An Alembic config pointing at migrations/ and the given database."""
    cfg = Config()
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


@contextmanager
def views_set_aside(*tables: str) -> Iterator[None]:
    """Inside a migration: on SQLite, the views whose text names one of `tables` are dropped for the
    block and made again after it from their own stored text, unchanged. SQLite rebuilds a table to
    drop a column or change a constraint (batch_alter_table), and refuses to while a view names it.
    On other databases, nothing."""
    bind = op.get_bind()
    views: dict[str, str] = {}
    if bind.dialect.name == "sqlite":
        rows = bind.execute(sa.text("SELECT name, sql FROM sqlite_master WHERE type = 'view'")).all()
        views = {name: sql for name, sql in rows if any(table in sql for table in tables)}
    for name in views:
        op.execute(f"DROP VIEW {name}")
    yield
    for sql in views.values():
        op.execute(sql)


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at `url` up to `revision`."""
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    """Take the database at `url` down to `revision`."""
    command.downgrade(alembic_config(url), revision)


def current_revision(url: str) -> str | None:
    """The revision the database at `url` is at (None when it was never migrated)."""
    from alembic.runtime.migration import MigrationContext

    from app.db import make_engine

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()
