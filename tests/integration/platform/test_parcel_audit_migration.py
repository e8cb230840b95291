"""Migration 0006 renames the audit trail's old words for a parcel, and back, on both databases;
audit_entries stays append-only either way."""
from __future__ import annotations

import json

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from app.db import make_engine
from app.migrate import downgrade, upgrade

OLD = [("receipt.opened", "receipt", {"rma": "RMA-1", "via": "rma"}),
       ("receipt.closed", "receipt", {"missing": [{"sku": "TEE", "quantity": 1}]}),
       ("receipt.linked_to_rma", "receipt", {"rma": "RMA-1", "units": ["LP00000001"]}),
       ("unit.received", "unit", {"from_state": None, "to_state": "received", "receipt_id": 7, "match": "expected"}),
       ("unit.received", "unit", {"receipt_id": 8, "note": 'a "receipt_id": in a string is not a key'}),
       ("unit.moved", "unit", {"receipt_id": 9})]
NEW = [("parcel.opened", "parcel", {"rma": "RMA-1", "via": "rma"}),
       ("parcel.closed", "parcel", {"missing": [{"sku": "TEE", "quantity": 1}]}),
       ("parcel.linked_to_rma", "parcel", {"rma": "RMA-1", "units": ["LP00000001"]}),
       ("unit.received", "unit", {"from_state": None, "to_state": "received", "parcel_id": 7, "match": "expected"}),
       ("unit.received", "unit", {"parcel_id": 8, "note": 'a "receipt_id": in a string is not a key'}),
       ("unit.moved", "unit", {"receipt_id": 9})]  # only a received unit's details name its parcel


def _audit(url: str) -> list[tuple[str, str, dict]]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT action, entity_type, details FROM audit_entries ORDER BY id")).all()
    finally:
        engine.dispose()
    return [(action, entity, details if isinstance(details, dict) else json.loads(details)) for action, entity, details in rows]


def _refuses_update(url: str) -> None:
    engine = make_engine(url)
    try:
        with engine.begin() as conn, pytest.raises(DBAPIError, match="append-only"):
            conn.execute(text("UPDATE audit_entries SET reason = 'changed'"))
    finally:
        engine.dispose()


def test_0007_renames_the_audit_trail_and_back(fresh_url: str) -> None:
    upgrade(fresh_url, "0006")
    engine = make_engine(fresh_url)
    try:
        with engine.begin() as conn:
            for i, (action, entity, details) in enumerate(OLD, start=1):
                conn.execute(text("INSERT INTO audit_entries (at, actor_name, action, entity_type, entity_id, details) "
                                  "VALUES (CURRENT_TIMESTAMP, 'worker', :action, :entity, :id, :details)"),
                             {"action": action, "entity": entity, "id": i, "details": json.dumps(details)})
    finally:
        engine.dispose()

    upgrade(fresh_url, "0007")
    assert _audit(fresh_url) == NEW
    assert list(_audit(fresh_url)[3][2]) == ["from_state", "to_state", "parcel_id", "match"]  # in its place
    _refuses_update(fresh_url)

    downgrade(fresh_url, "0006")
    assert _audit(fresh_url) == OLD
    _refuses_update(fresh_url)
    upgrade(fresh_url, "head")
    assert _audit(fresh_url) == NEW
