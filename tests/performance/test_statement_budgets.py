"""Statement budgets of the dock's use cases on PostgreSQL, inside their transaction: a use case
that grows a statement per line, per row written or per lookup fails here. The whole request's
budgets, through the web, are in test_handheld_budgets.py."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from app.disposition.services import confirm_disposition
from app.inspection.services import record_inspection
from app.orders.models import ShippedSerial
from app.receiving.services import close_parcel, open_parcel, scan_item
from tests.helpers import closed_events, new_key, opened_events, receive_unit, statements_sent
from tests.integration.disposition.test_inspect_and_confirm import POLICY

pytestmark = pytest.mark.pg_only  # SQLite sends its rows one statement at a time


def test_a_scan_is_four_statements_inside_its_transaction(session, world):
    """The return's lock, the read of everything the match needs, and the write of every row in
    two chains (each within psycopg's conversion cache: app.rows.CACHED_PARAMS)."""
    w = world.actor("worker")
    r = open_parcel(session, w, code="RMA-5001", warehouse_id=world.wh.id, idempotency_key=new_key())
    shirt = world.products["shirt"]
    statements = statements_sent(session, lambda: scan_item(session, w, parcel_id=r.parcel_id, product_id=shirt.id,
                                                            idempotency_key=new_key()))
    assert len(statements) == 4, statements
    assert "FOR UPDATE" in statements[0] and statements[2].startswith("WITH") and statements[3].startswith("WITH")


def test_a_close_is_four_statements_inside_its_transaction(session, world):
    """The return's lock; the parcel's lock with the key's record and its return's other open
    parcels; the lines' counts; one write. Here nothing is missing (every line received)."""
    w = world.actor("worker")
    r = open_parcel(session, w, code="RMA-5001", warehouse_id=world.wh.id, idempotency_key=new_key())
    for line in world.rma.lines:
        for _ in range(line.quantity):
            serial = None
            if line.product.serial_tracked:
                serial = session.scalars(select(ShippedSerial.serial).where(ShippedSerial.order_line_id == line.order_line_id)).first()
            scan_item(session, w, parcel_id=r.parcel_id, product_id=line.product_id, serial=serial, idempotency_key=new_key())
    key = new_key()
    statements = statements_sent(session, lambda: close_parcel(session, w, parcel_id=r.parcel_id, idempotency_key=key))
    assert len(statements) == 4, statements
    assert "FOR UPDATE" in statements[0] and "FOR UPDATE" in statements[1] and statements[3].startswith("WITH")
    assert closed_events(session, r.parcel_id, world.rma.id) == (1, 1)
    again = close_parcel(session, w, parcel_id=r.parcel_id, idempotency_key=key)
    assert again.replayed and again.missing == ()


def test_opening_a_parcel_is_three_statements_inside_its_transaction(session, world):
    """The return's lock (with the warehouse); the return's open parcel, the key's record and the
    new parcel's id, read after it; one write. Joining the parcel is three too; a retry replays."""
    w, wid, found = world.actor("worker"), world.wh.id, (world.rma.id, "RMA number")
    key = new_key()
    statements = statements_sent(session, lambda: open_parcel(session, w, code="RMA-5001", warehouse_id=wid,
                                                              idempotency_key=key, found=found))
    assert len(statements) == 3, statements
    assert "FOR UPDATE" in statements[0] and "idempotency_records" in statements[1] and statements[2].startswith("WITH")
    joined = statements_sent(session, lambda: open_parcel(session, w, code="RMA-5001", warehouse_id=wid,
                                                          idempotency_key=new_key(), found=found))
    assert len(joined) == 3, joined
    again = open_parcel(session, w, code="RMA-5001", warehouse_id=wid, idempotency_key=key)
    assert again.replayed and not again.joined
    assert opened_events(session, found[0]) == (1, 1, 1)


def test_an_inspection_is_two_statements_and_a_confirm_six(session, world):
    """Inspection: the lock (with the checklist and the key's record), the write. Confirm: the lock
    with the rules' facts, the rules, the refund's lock with the key's record and the location, the
    write in three chains (each within psycopg's conversion cache)."""
    w = world.actor("worker")
    unit_id = receive_unit(session, world, "shirt", w).id
    inspect = statements_sent(session, lambda: record_inspection(
        session, w, unit_id=unit_id, grade="A", packaging="sealed", answers={"tags_attached": True}, notes=None,
        idempotency_key=new_key()))
    assert len(inspect) == 2, inspect
    confirm = statements_sent(session, lambda: confirm_disposition(session, w, unit_id=unit_id, idempotency_key=new_key(),
                                                               policy=POLICY))
    assert len(confirm) == 6, confirm
    assert "FOR UPDATE" in inspect[0] and "FOR UPDATE" in confirm[0] and "FOR UPDATE" in confirm[2]
    assert inspect[1].startswith("WITH") and all(s.startswith("WITH") for s in confirm[3:])


def test_closing_a_return_with_hundreds_of_lines_missing_writes_in_bounded_statements(session, world):
    """A 500-line return closed with every line missing took one statement of thousands of CTEs,
    over gunicorn's 30 s. Its rows now go in small chains, each within psycopg's conversion cache."""
    from decimal import Decimal

    from app.db import unit_of_work
    from app.exceptions.models import ReturnException
    from app.orders.models import Order, OrderLine, Rma, RmaLine
    from app.rows import CACHED_PARAMS, CACHED_SQL_BYTES, CHAIN_ROWS

    shirt, n = world.products["shirt"], 200
    with unit_of_work(session):
        order = Order(number="SO-BIG", merchant_id=world.merchant.id, channel_id=world.channel.id,
                      customer_id=world.customer.id)
        session.add(order)
        session.flush()
        rma = Rma(number="RMA-BIG", order_id=order.id, merchant_id=world.merchant.id, channel_id=world.channel.id,
                  warehouse_id=world.wh.id, customer_id=world.customer.id, status="in_transit")
        session.add(rma)
        session.flush()
        for _ in range(n):
            line = OrderLine(order_id=order.id, product_id=shirt.id, quantity=1, unit_price=Decimal("20.00"))
            session.add(line)
            session.flush()
            session.add(RmaLine(rma_id=rma.id, product_id=shirt.id, order_line_id=line.id, quantity=1,
                                reason_code="wrong_size"))
    w = world.actor("worker")
    r = open_parcel(session, w, code="RMA-BIG", warehouse_id=world.wh.id, idempotency_key=new_key())
    statements = statements_sent(session, lambda: close_parcel(session, w, parcel_id=r.parcel_id,
                                                               idempotency_key=new_key()))
    writes = [s for s in statements if s.startswith("WITH")]
    assert len(writes) >= 2
    assert all(s.count(" AS (") <= CHAIN_ROWS and len(s) <= CACHED_SQL_BYTES and s.count("%(") <= CACHED_PARAMS
               for s in writes)
    missing = session.scalars(select(ReturnException.id).where(ReturnException.type == "missing_item",
                                                               ReturnException.rma_id == rma.id)).all()
    assert len(missing) == n
