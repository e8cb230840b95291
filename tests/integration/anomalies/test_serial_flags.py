"""A serial that comes back: received and flagged (returned before, swap), not refused; a serial
still in the building is refused (issue 18, anomaly flags)."""
from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select

from app.anomalies.models import AnomalyFlag
from app.errors import Conflict
from app.ledger.models import AuditEntry, ReturnUnit
from app.orders.models import Customer, Order, OrderLine, Rma, RmaLine, ShippedSerial
from app.receiving.services import open_parcel, scan_item
from tests.helpers import counts, move_direct, new_key

SERIAL = "SN-PHONE-0001"


def second_return(session, world, *, number: str, serial_shipped: str | None, customer: Customer | None = None) -> Rma:  # type: ignore[no-untyped-def]
    """Another customer's order of the phone (shipping `serial_shipped`) and its return, `number`."""
    buyer = customer or Customer(external_ref=f"C-{number}", name="Robin Reseller")
    session.add(buyer)
    session.flush()
    order = Order(number=f"SO-{number}", merchant_id=world.merchant.id, channel_id=world.channel.id, customer_id=buyer.id)
    session.add(order)
    session.flush()
    line = OrderLine(order_id=order.id, product_id=world.products["phone"].id, quantity=1, unit_price=Decimal("599.00"))
    session.add(line)
    session.flush()
    if serial_shipped:
        session.add(ShippedSerial(order_line_id=line.id, serial=serial_shipped))
    rma = Rma(number=number, order_id=order.id, merchant_id=world.merchant.id, channel_id=world.channel.id,
              warehouse_id=world.wh.id, customer_id=buyer.id, status="in_transit")
    session.add(rma)
    session.flush()
    session.add(RmaLine(rma_id=rma.id, product_id=world.products["phone"].id, order_line_id=line.id, quantity=1,
                        reason_code="defective"))
    session.commit()
    return rma


def receive_phone(session, world, code: str, serial: str = SERIAL):  # type: ignore[no-untyped-def]
    w = world.actor("worker")
    parcel = open_parcel(session, w, code=code, warehouse_id=world.wh.id, idempotency_key=new_key())
    return scan_item(session, w, parcel_id=parcel.parcel_id, product_id=world.products["phone"].id, serial=serial,
                     idempotency_key=new_key())


def flags_of(session, unit_id: int) -> list[AnomalyFlag]:  # type: ignore[no-untyped-def]
    session.rollback()
    return list(session.scalars(select(AnomalyFlag).where(AnomalyFlag.unit_id == unit_id).order_by(AnomalyFlag.id)))


def test_a_serial_still_in_the_building_is_refused_and_writes_nothing(session, world):
    """The first unit is on the dock (received): the same serial again is the same item scanned
    twice, refused with the unit it is, and nothing is written."""
    first = receive_phone(session, world, "RMA-5001")
    again = second_return(session, world, number="RMA-7001", serial_shipped=SERIAL)
    parcel = open_parcel(session, world.actor("worker"), code=again.number, warehouse_id=world.wh.id,
                         idempotency_key=new_key())
    before = counts(session)
    with pytest.raises(Conflict, match=f"already in the building as {first.lpn}"):
        scan_item(session, world.actor("worker"), parcel_id=parcel.parcel_id, product_id=world.products["phone"].id,
                  serial=SERIAL, idempotency_key=new_key())
    session.rollback()
    assert counts(session) == before


def test_a_resold_serial_comes_back_received_and_flagged_without_holding(session, world):
    """The phone came back on RMA-5001, was made available and resold (shipped again, on a new
    order to another customer): its second return is received, flagged "returned before" with the
    earlier return and date, and, as it was shipped on this return's own order since, not held."""
    first = receive_phone(session, world, "RMA-5001")
    move_direct(session, world.actor("worker"), first.unit_id, "available")
    resold = second_return(session, world, number="RMA-7002", serial_shipped=SERIAL)
    second = receive_phone(session, world, resold.number)
    assert second.unit_id != first.unit_id and second.serial_status == "match" and second.exceptions == ()
    [note] = second.flags
    assert (note.kind, note.holds, note.serial, note.where) == ("returned_before", False, SERIAL, "RMA-5001")
    [flag] = flags_of(session, second.unit_id)
    assert (flag.kind, flag.holds, flag.rma_id, flag.cleared_at) == ("returned_before", False, resold.id, None)
    assert f"serial {SERIAL} was returned before, on RMA-5001, on " in flag.explanation
    assert f"unit {first.lpn}, now available" in flag.explanation and "resold" in flag.explanation
    audit = session.scalars(select(AuditEntry).where(AuditEntry.action == "anomaly.flagged")).all()
    assert [(a.entity_type, a.entity_id) for a in audit] == [("unit", second.unit_id)]
    units = session.scalars(select(ReturnUnit).where(ReturnUnit.serial == SERIAL).order_by(ReturnUnit.id)).all()
    assert [u.state for u in units] == ["available", "received"]


def test_a_serial_shipped_to_another_customer_is_a_swap_and_returned_before_holds(session, world):
    """The phone that came back on RMA-5001 (made available) arrives again on another customer's
    return whose order never shipped it: flagged returned before (held: not resold to them) and a
    swap (shipped on SO-1001, to another customer), with its serial mismatch exception."""
    first = receive_phone(session, world, "RMA-5001")
    move_direct(session, world.actor("worker"), first.unit_id, "available")
    other = second_return(session, world, number="RMA-7003", serial_shipped="SN-SOMETHING-ELSE")
    second = receive_phone(session, world, other.number)
    assert second.exceptions == ("serial_mismatch",)
    assert [(f.kind, f.holds, f.where) for f in second.flags] == [("returned_before", True, "RMA-5001"),
                                                                  ("swap", True, "SO-1001")]
    flags = flags_of(session, second.unit_id)
    assert [(f.kind, f.holds) for f in flags] == [("returned_before", True), ("swap", True)]
    assert "shipped on order SO-1001, to another customer, not on this return's order" in flags[1].explanation
    assert "a second refund for the same item" in flags[0].explanation


def test_a_serial_shipped_on_the_customers_other_order_is_a_swap(session, world):
    """A first-time serial, shipped on another order of the same customer, not on the return's:
    a swap "to this same customer"; not returned before."""
    mine = second_return(session, world, number="RMA-7004", serial_shipped=None, customer=world.customer)
    second = receive_phone(session, world, mine.number)
    assert [(f.kind, f.holds, f.where) for f in second.flags] == [("swap", True, "SO-1001")]
    [flag] = flags_of(session, second.unit_id)
    assert "to this same customer" in flag.explanation


def test_a_matching_first_time_serial_raises_no_flag(session, world):
    received = receive_phone(session, world, "RMA-5001")
    assert received.flags == () and flags_of(session, received.unit_id) == []


def test_a_flagged_scan_replayed_flags_once(session, world):
    """The same key again replays the first answer, flags included, and writes no second flag."""
    first = receive_phone(session, world, "RMA-5001")
    move_direct(session, world.actor("worker"), first.unit_id, "available")
    resold = second_return(session, world, number="RMA-7005", serial_shipped=SERIAL)
    w = world.actor("worker")
    parcel = open_parcel(session, w, code=resold.number, warehouse_id=world.wh.id, idempotency_key=new_key())
    key = new_key()
    answers = [scan_item(session, w, parcel_id=parcel.parcel_id, product_id=world.products["phone"].id, serial=SERIAL,
                         idempotency_key=key) for _ in range(3)]
    assert len({a.unit_id for a in answers}) == 1 and all(a.flags == answers[0].flags for a in answers)
    assert answers[-1].replayed and len(flags_of(session, answers[0].unit_id)) == 1
