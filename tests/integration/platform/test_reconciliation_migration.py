"""Migration 0019 on both databases: units may be `missing`, the reconciliation tables come and go,
the units' other rules and the integration views that read them survive SQLite's table rebuild."""
from __future__ import annotations

import pytest
from sqlalchemy.exc import IntegrityError

from app.migrate import downgrade, upgrade
from tests.integration.platform.test_categories_migration import _run

UNIT = ("INSERT INTO return_units (id, lpn, product_id, warehouse_id, state, serial_status, serial, received_at, "
        "state_changed_at, version) VALUES (:id, :lpn, 1, 1, :state, 'not_tracked', :serial, CURRENT_TIMESTAMP, "
        "CURRENT_TIMESTAMP, 1)")


def test_0019_allows_missing_and_round_trips(fresh_url: str) -> None:
    upgrade(fresh_url, "0018")
    _run(fresh_url, "INSERT INTO warehouses (id, code, name, active) VALUES (1, 'WH1', 'Main', true)")
    _run(fresh_url, "INSERT INTO products (id, sku, name, category, unit_value, serial_tracked, lot_tracked) "
                    "VALUES (1, 'TEE', 'Tee', 'apparel', 5, false, false)")
    with pytest.raises(IntegrityError):
        _run(fresh_url, UNIT, id=1, lpn="LP1", state="missing", serial=None)
    upgrade(fresh_url, "0019")
    _run(fresh_url, UNIT, id=1, lpn="LP1", state="missing", serial="S-1")
    with pytest.raises(IntegrityError):  # the state CHECK still refuses what is not a state
        _run(fresh_url, UNIT, id=2, lpn="LP2", state="lost", serial=None)
    with pytest.raises(IntegrityError):  # the partial unique index on serials survived the rebuild
        _run(fresh_url, UNIT, id=3, lpn="LP3", state="received", serial="S-1")
    assert _run(fresh_url, "SELECT count(*) FROM v_return_units") == [(1,)]
    assert _run(fresh_url, "SELECT count(*) FROM recon_snapshots") == [(0,)]
    _run(fresh_url, "UPDATE return_units SET state = 'received' WHERE id = 1")
    downgrade(fresh_url, "0018")
    with pytest.raises(IntegrityError):
        _run(fresh_url, "UPDATE return_units SET state = 'missing' WHERE id = 1")
    upgrade(fresh_url, "head")
    assert _run(fresh_url, "SELECT state FROM v_return_units") == [("received",)]
