"""Migration 0002 (printers, print jobs) upgrades, downgrades and matches the models, on both databases."""
from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

import app.labels.models  # noqa: F401 - the label tables on the metadata
import app.models  # noqa: F401
from app.db import Base, make_engine
from app.migrate import downgrade, upgrade

LABEL_TABLES = {"printers", "print_jobs"}


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
