"""Migration 0002 (printers, print jobs) upgrades, downgrades and matches the models, on both databases."""
from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

import app.labels.models  # noqa: F401 - the label tables on the metadata
import app.models  # noqa: F401
from app.db import Base, make_engine
from app.migrate import downgrade, upgrade

LABEL_TABLES = {"printers", "print_jobs"}


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of its own (migrations here must not disturb the shared test database)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'migrate.db'}"
        return
    base = make_url(request.getfixturevalue("pg_url"))
    name = f"labels_mig_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _label_diffs(url: str) -> list[object]:
    """Differences between the database and the models that concern the label tables."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    finally:
        engine.dispose()
    return [d for d in diffs if any(t in repr(d) for t in LABEL_TABLES)]


def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_0002_round_trip(fresh_url: str) -> None:
    """0001 -> head creates the label tables as modelled; head -> 0001 removes them; up again works."""
    upgrade(fresh_url, "0002")
    assert LABEL_TABLES <= _tables(fresh_url)
    assert _label_diffs(fresh_url) == []
    downgrade(fresh_url, "0001")
    assert not LABEL_TABLES & _tables(fresh_url)
    upgrade(fresh_url, "head")
    assert LABEL_TABLES <= _tables(fresh_url)
    assert _label_diffs(fresh_url) == []
