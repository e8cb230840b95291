"""A scan's answer stays small whatever the size of the return (the handheld is on dock Wi-Fi)."""
from __future__ import annotations

import re
from decimal import Decimal

import pytest

from app.catalog.models import Product
from app.db import db
from app.orders.models import OrderLine, RmaLine
from tests.conftest import login
from tests.helpers import statements_sent

HX = {"HX-Request": "true"}
PARCEL_ID_RE = re.compile(r'data-parcel-id="(\d+)"')
PARCEL_RE = re.compile(r'data-parcel="([0-9:]+)"')


def test_scan_answer_is_bounded_for_a_500_line_return(client, world, session):
    order, rma = world.order, world.rma
    for i in range(500):
        p = Product(sku=f"BULK-{i:04d}", name=f"Bulk item {i}", category="apparel", unit_value=Decimal("5.00"))
        session.add(p)
        session.flush()
        ol = OrderLine(order_id=order.id, product_id=p.id, quantity=1, unit_price=Decimal("5.00"))
        session.add(ol)
        session.flush()
        session.add(RmaLine(rma_id=rma.id, product_id=p.id, order_line_id=ol.id, quantity=1, reason_code="wrong_size"))
    session.commit()
    login(client, "worker")
    client.post("/receive/warehouse", data={"warehouse_id": world.wh.id}, headers=HX)
    opened = client.post("/receive/scan", data={"code": "RMA-5001", "key": "size-key-0001"}, headers=HX)
    card = {**HX, "X-Dockhand-Parcel": PARCEL_RE.search(opened.get_data(as_text=True)).group(1)}
    sizes = []
    for n in range(1, 16):
        resp = client.post("/receive/scan", data={"code": f"BULK-{n:04d}", "key": f"size-key-{n + 1:04d}"}, headers=card)
        assert resp.status_code == 200
        sizes.append(len(resp.data))
    assert max(sizes) < 4096, sizes
    # the answer updates the whole parcel's progress out of band, hidden lines included
    body = resp.get_data(as_text=True)
    lines = session.query(RmaLine).filter_by(rma_id=rma.id).all()
    expected = sum(line.quantity for line in lines)
    assert f'id="parcel-progress" hx-swap-oob="true">15 of {expected} expected units received' in body
    card = client.get("/receive", headers=HX).get_data(as_text=True)
    assert f"{len(lines) - 6} more lines not shown" in card
    assert f">15 of {expected} expected units received" in card


def test_an_item_scan_answers_only_what_changed_when_its_parcel_is_on_screen(client, world):
    """With the card on screen (scan.js sends its id) the answer is the result plus out-of-band
    updates; without it (the unit page is showing, say), or for a replay, the whole work area."""
    login(client, "worker")
    client.post("/receive/warehouse", data={"warehouse_id": world.wh.id}, headers=HX)
    opened = client.post("/receive/scan", data={"code": "RMA-5001", "key": "oob-key-0001"}, headers=HX)
    parcel_id = PARCEL_ID_RE.search(opened.get_data(as_text=True)).group(1)
    card = {**HX, "X-Dockhand-Parcel": PARCEL_RE.search(opened.get_data(as_text=True)).group(1)}
    assert card["X-Dockhand-Parcel"] == f"{parcel_id}:{world.rma.id}"

    partial = client.post("/receive/scan", data={"code": "TEE-BLU-M", "key": "oob-key-0002"}, headers=card)
    body = partial.get_data(as_text=True)
    assert partial.headers["HX-Retarget"] == "#result"
    assert 'data-lpn="' in body and 'hx-swap-oob="afterbegin:#units"' in body and 'id="parcel"' not in body

    elsewhere = client.post("/receive/scan", data={"code": "TEE-BLU-M", "key": "oob-key-0003"}, headers=HX)
    body = elsewhere.get_data(as_text=True)
    assert "HX-Retarget" not in elsewhere.headers
    assert f'data-parcel-id="{parcel_id}"' in body and body.count('data-lpn="') == 1 and "2/2" in body

    replay = client.post("/receive/scan", data={"code": "TEE-BLU-M", "key": "oob-key-0002"}, headers=card)
    body = replay.get_data(as_text=True)
    assert "HX-Retarget" not in replay.headers and "2/2" in body and "hx-swap-oob" not in body


@pytest.mark.pg_only
def test_an_item_scan_is_five_statements(app, client, world):
    """The item scan's statements on PostgreSQL: the signed-in user; the parcel in hand with the
    scanned product and the parcel's lock (the scan's first read, in its unit of work); what the
    match needs; the write, in two chains that psycopg keeps converted (app.rows.CACHED_PARAMS).
    The aim is at most six whatever the return's size (bench/README.md)."""
    login(client, "worker")
    client.post("/receive/warehouse", data={"warehouse_id": world.wh.id}, headers=HX)
    opened = client.post("/receive/scan", data={"code": "RMA-5001", "key": "four-key-0001"}, headers=HX)
    card = {**HX, "X-Dockhand-Parcel": PARCEL_RE.search(opened.get_data(as_text=True)).group(1)}
    answers = []
    with app.app_context():
        sent = statements_sent(db.session, lambda: answers.append(
            client.post("/receive/scan", data={"code": "TEE-BLU-M", "key": "four-key-0002"}, headers=card)))
        assert answers[0].status_code == 200 and 'data-lpn="' in answers[0].get_data(as_text=True)
        assert len(sent) == 5, sent
        assert "FROM products" in sent[1] and "FROM receipts" in sent[1] and "FOR UPDATE OF rmas" in sent[1]
        assert "idempotency_records" in sent[2] and sent[3].startswith("WITH") and sent[4].startswith("WITH")


@pytest.mark.pg_only
def test_a_parcel_scan_is_nine_statements(app, client, world):
    """The parcel scan that opens a parcel, on PostgreSQL: the signed-in user, the worker's open
    parcel (none), the return the label names; the return's lock, what is read after it (its open
    parcel, the key's record, the new parcel's id) and one write; then the card, its lines and the
    serials shipped on its serial-tracked line (a return without one needs eight)."""
    login(client, "worker")
    client.post("/receive/warehouse", data={"warehouse_id": world.wh.id}, headers=HX)
    answers = []
    with app.app_context():
        sent = statements_sent(db.session, lambda: answers.append(
            client.post("/receive/scan", data={"code": "RMA-5001", "key": "nine-key-0001"}, headers=HX)))
    assert answers[0].status_code == 200 and PARCEL_ID_RE.search(answers[0].get_data(as_text=True))
    assert len(sent) == 9, sent
    assert "FOR UPDATE" in sent[3] and "idempotency_records" in sent[4] and sent[5].startswith("WITH")
    assert "FROM shipped_serials" in sent[8]
