"""Migration 0017: the categories table and versioned checklists, from the checklists in use, on
both databases; downgrading gives checklist_templates back with each category's newest items."""
from __future__ import annotations

import json

from sqlalchemy import text

from app.db import make_engine
from app.migrate import downgrade, upgrade

SMOKE = [{"key": "no_smoke", "label": "No smoke smell"}]


def _run(url: str, sql: str, **params: object) -> list[tuple]:
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            result = conn.execute(text(sql), params)
            return [tuple(r) for r in result] if result.returns_rows else []
    finally:
        engine.dispose()


def _items(value: object) -> object:
    return json.loads(value) if isinstance(value, str) else value


def test_0017_keeps_the_checklists_in_use_and_round_trips(fresh_url: str) -> None:
    upgrade(fresh_url, "0014")
    _run(fresh_url, "INSERT INTO checklist_templates (category, items) VALUES ('apparel', :items)", items=json.dumps(SMOKE))
    _run(fresh_url, "INSERT INTO products (sku, name, category, unit_value, serial_tracked, lot_tracked) "
                    "VALUES ('TOY-1', 'Toy', 'toys', 5, false, false)")
    upgrade(fresh_url, "0017")
    assert _run(fresh_url, "SELECT code, name FROM categories ORDER BY code") == [
        ("apparel", "Apparel"), ("electronics", "Electronics"), ("health_beauty", "Health & beauty"), ("toys", "Toys")]
    versions = {c: (v, _items(items)) for c, v, items in _run(fresh_url, "SELECT category, version, items FROM checklist_versions")}
    assert versions["apparel"] == (1, SMOKE)  # the stored checklist
    assert versions["electronics"][0] == 1 and versions["electronics"][1][0]["key"] == "powers_on"  # the defaults in use
    assert "toys" not in versions  # none was in use: an empty checklist
    _run(fresh_url, "INSERT INTO checklist_versions (category, version, items, note, created_at) "
                    "VALUES ('electronics', 2, :items, 'v2', CURRENT_TIMESTAMP)", items=json.dumps(SMOKE))
    downgrade(fresh_url, "0014")
    kept = {c: _items(items) for c, items in _run(fresh_url, "SELECT category, items FROM checklist_templates")}
    assert kept["electronics"] == SMOKE and kept["apparel"] == SMOKE and len(kept) == 3
    upgrade(fresh_url, "head")
    assert len(_run(fresh_url, "SELECT code FROM categories")) == 4
