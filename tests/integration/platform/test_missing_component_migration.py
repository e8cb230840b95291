"""Migration 0028: anomaly_flags' kind takes `missing_component`, on both databases (SQLite rebuilds
the table, keeping the views that read it); downgrading removes those flags and refuses the kind again."""
from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from app.db import make_engine
from app.migrate import downgrade, upgrade


def _run(url: str, sql: str, **params: object) -> list[tuple]:
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            result = conn.execute(text(sql), params)
            return [tuple(r) for r in result] if result.returns_rows else []
    finally:
        engine.dispose()


def _flag(url: str, kind: str) -> None:
    _run(url, "INSERT INTO anomaly_flags (kind, rma_id, holds, explanation, details, created_at) "
              "VALUES (:kind, (SELECT id FROM rmas), false, 'x', '{}', CURRENT_TIMESTAMP)", kind=kind)


def _views(url: str) -> set[str]:
    if url.startswith("sqlite"):
        return {r[0] for r in _run(url, "SELECT name FROM sqlite_master WHERE type = 'view'")}
    return {r[0] for r in _run(url, "SELECT table_name FROM information_schema.views WHERE table_schema = 'public'")}


def test_0028_takes_the_missing_component_kind_and_round_trips(fresh_url: str) -> None:
    upgrade(fresh_url, "0027")
    _run(fresh_url, "INSERT INTO merchants (code, name) VALUES ('M', 'M')")
    _run(fresh_url, "INSERT INTO sales_channels (code, name) VALUES ('web', 'Web')")
    _run(fresh_url, "INSERT INTO warehouses (code, name, active) VALUES ('W', 'W', true)")
    _run(fresh_url, "INSERT INTO rmas (number, merchant_id, channel_id, warehouse_id, status, created_at) "
                    "VALUES ('RMA-1', (SELECT id FROM merchants), (SELECT id FROM sales_channels), "
                    "(SELECT id FROM warehouses), 'authorized', CURRENT_TIMESTAMP)")
    views = _views(fresh_url)
    with pytest.raises(IntegrityError):
        _flag(fresh_url, "missing_component")
    _flag(fresh_url, "empty_box")
    upgrade(fresh_url, "0028")
    _flag(fresh_url, "missing_component")
    assert sorted(r[0] for r in _run(fresh_url, "SELECT kind FROM anomaly_flags")) == ["empty_box", "missing_component"]
    with pytest.raises(IntegrityError):
        _flag(fresh_url, "no_such_kind")
    assert _views(fresh_url) == views and _run(fresh_url, "SELECT count(*) FROM v_return_units") == [(0,)]
    downgrade(fresh_url, "0027")
    assert [r[0] for r in _run(fresh_url, "SELECT kind FROM anomaly_flags")] == ["empty_box"]
    with pytest.raises(IntegrityError):
        _flag(fresh_url, "missing_component")
    assert _views(fresh_url) == views
    upgrade(fresh_url, "head")
    _flag(fresh_url, "missing_component")
