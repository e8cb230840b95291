"""Exactly once when the answer is lost: each mutation of the handheld and the desk commits, its
answer never reaches the client (tests.fakes.LosingProxy answers 502 instead), and the client
sends it again with the same key, as static/dockhand.js and static/scan.js do. The retry is
answered with the first result and changes nothing more; the idempotency key is on the ledger."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select, text

from app.db import Base, db
from tests.conftest import login
from tests.fakes import LosingProxy
from tests.helpers import add_printer, new_key, receive
from tests.integration.desk.test_desk_services import make_units

HX = {"HX-Request": "true"}
IGNORED = {"user_sessions", "sign_in_failures"}


@pytest.fixture
def proxy(app):  # type: ignore[no-untyped-def]
    app.wsgi_app = LosingProxy(app.wsgi_app)
    return app.wsgi_app


def _rows(app) -> dict[str, int]:
    """How many rows each table holds: what a mutation changed."""
    with app.app_context():
        counts = {t.name: db.session.scalar(select(func.count()).select_from(t))
                  for t in Base.metadata.sorted_tables if t.name not in IGNORED}
        counts["closed parcels"] = db.session.scalar(text("SELECT count(*) FROM receipts WHERE status = 'closed'"))
        db.session.rollback()
    return counts


def _lose_then_retry(app, client, proxy, path: str, data: dict, expect: bytes):  # type: ignore[no-untyped-def]
    """Send `data` to `path`, lose the answer, send it again: one effect, the first answer again."""
    before = _rows(app)
    proxy.lose_next("POST", path)
    lost = client.post(path, data=data, headers=HX)
    assert lost.status_code == 502 and proxy.lost[-1].startswith("200"), proxy.lost
    committed = _rows(app)
    assert committed != before, f"{path}: the first attempt wrote nothing"
    retry = client.post(path, data=data, headers=HX)
    assert retry.status_code == 200, retry.data[:300]
    assert expect in retry.data, retry.data[:500]
    assert _rows(app) == committed, f"{path}: the retry had an effect of its own"
    return retry


def _ledger_keys(app) -> list[str | None]:
    with app.app_context():
        keys = list(db.session.scalars(text("SELECT idempotency_key FROM ledger_entries ORDER BY id")))
        db.session.rollback()
    return keys


def test_the_handheld_flow_survives_every_answer_being_lost(app, client, proxy, world):
    login(client, "worker")
    client.post("/receive/warehouse", data={"warehouse_id": world.wh.id}, headers=HX)
    _lose_then_retry(app, client, proxy, "/receive/scan", {"code": "RMA-5001", "key": new_key()}, b"RMA-5001")
    scan_key = new_key()
    _lose_then_retry(app, client, proxy, "/receive/scan", {"code": "036000291452", "key": scan_key}, b"LP00000001")
    assert _ledger_keys(app) == [scan_key]
    _lose_then_retry(app, client, proxy, "/receive/units/1/inspect",
                     {"grade": "A", "packaging": "sealed", "key": new_key()}, b"LP00000001")
    confirm_key = new_key()
    _lose_then_retry(app, client, proxy, "/receive/units/1/dispose", {"key": confirm_key}, b"LP00000001")
    assert _ledger_keys(app) == [scan_key, confirm_key]
    _lose_then_retry(app, client, proxy, "/receive/close", {"parcel_id": 1, "key": new_key()}, b"closed")


def test_a_desk_decision_survives_its_answer_being_lost(app, client, proxy, session, world):
    [unit_id] = make_units(session, world, 1)
    session.rollback()
    login(client, "super")
    decision_key = new_key()
    _lose_then_retry(app, client, proxy, f"/desk/units/{unit_id}/decide",
                     {"to_state": "available", "reason": "Checked: complete", "key": decision_key}, b"available")
    assert _ledger_keys(app)[-1] == decision_key


def test_a_label_print_survives_its_answer_being_lost_and_prints_once(app, client, proxy, session, world, fake_printer):
    unit = receive(session, world)
    printer = add_printer(session, world, fake_printer.port)
    session.rollback()
    login(client, "worker")
    _lose_then_retry(app, client, proxy, f"/labels/unit/{unit.id}/send",
                     {"printer_id": printer.id, "kind": "lpn", "idempotency_key": new_key()}, b"Dock Zebra")
    assert len(fake_printer.wait_for(1)) == 1
    assert len(fake_printer.wait_for(2, timeout=0.5)) == 1  # one label on the dock, not two
