"""Flags on a whole return: a customer far above the merchant's norm (raised when a parcel of the
return is opened) and an empty box (reported from the handheld); each holds every refund of the
return (issue 18)."""
from __future__ import annotations

import io
from decimal import Decimal

from PIL import Image
from sqlalchemy import select

from app.anomalies.models import AnomalyFlag
from app.inspection.storage import FolderStore
from app.orders.models import Customer, Order, OrderLine, Rma, RmaLine
from app.receiving.services import open_parcel, report_box_problem, scan_item
from app.settings.models import Setting
from tests.helpers import new_key, refund_of
from tests.integration.anomalies.test_fraud_hold import inspect_and_confirm


def quiet_customers(session, world, n: int = 20) -> None:  # type: ignore[no-untyped-def]
    """`n` customers of the merchant with one order each and no return: the merchant's norm."""
    for i in range(n):
        c = Customer(external_ref=f"Q-{i}", name=f"Quiet {i}")
        session.add(c)
        session.flush()
        session.add(Order(number=f"SO-Q{i}", merchant_id=world.merchant.id, channel_id=world.channel.id, customer_id=c.id))
    session.commit()


def another_return(session, world, number: str, price: str = "20.00") -> Rma:  # type: ignore[no-untyped-def]
    """The world's customer orders a shirt again and returns it as `number`."""
    order = Order(number=f"SO-{number}", merchant_id=world.merchant.id, channel_id=world.channel.id,
                  customer_id=world.customer.id)
    session.add(order)
    session.flush()
    line = OrderLine(order_id=order.id, product_id=world.products["shirt"].id, quantity=1, unit_price=Decimal(price))
    session.add(line)
    session.flush()
    rma = Rma(number=number, order_id=order.id, merchant_id=world.merchant.id, channel_id=world.channel.id,
              warehouse_id=world.wh.id, customer_id=world.customer.id, status="in_transit")
    session.add(rma)
    session.flush()
    session.add(RmaLine(rma_id=rma.id, product_id=world.products["shirt"].id, order_line_id=line.id, quantity=1,
                        reason_code="changed_mind"))
    session.commit()
    return rma


def open_(session, world, code: str) -> int:  # type: ignore[no-untyped-def]
    return open_parcel(session, world.actor("worker"), code=code, warehouse_id=world.wh.id,
                       idempotency_key=new_key()).parcel_id


def return_flags(session, rma_id: int) -> list[AnomalyFlag]:  # type: ignore[no-untyped-def]
    session.rollback()
    return list(session.scalars(select(AnomalyFlag).where(AnomalyFlag.rma_id == rma_id).order_by(AnomalyFlag.id)))


def test_a_customer_far_above_the_merchants_return_rate_is_flagged_when_a_parcel_opens(session, world):
    """The customer returns all 3 of their orders; the merchant's 23 orders came back 3 times (13%):
    their return is flagged, in words, on the return (not a unit), once."""
    quiet_customers(session, world)
    another_return(session, world, "RMA-6001")
    third = another_return(session, world, "RMA-6002")
    open_(session, world, third.number)
    [flag] = return_flags(session, third.id)
    assert (flag.kind, flag.unit_id, flag.holds) == ("customer_norm", None, True)
    assert "this customer is far above the merchant's norm (more than 3x): 3 returns on 3 orders (100%)" in flag.explanation
    assert "7.7x the merchant's 13%" in flag.explanation
    parcel_id = open_(session, world, third.number)  # joined: the same parcel, no second flag
    assert len(return_flags(session, third.id)) == 1 and parcel_id


def test_two_returns_or_a_higher_minimum_flag_nobody(session, world):
    quiet_customers(session, world)
    second = another_return(session, world, "RMA-6001")
    open_(session, world, second.number)
    assert return_flags(session, second.id) == []  # 2 returns: under the minimum of 3
    session.add(Setting(name="anomaly_customer_min_returns", value="4"))
    session.commit()
    third = another_return(session, world, "RMA-6002")
    open_(session, world, third.number)
    assert return_flags(session, third.id) == []


def test_a_customer_asking_back_far_more_than_the_norm_is_flagged(session, world):
    """Same rate as everybody (the merchant's customers all return), but the value: flagged on value."""
    for i in range(6):  # six other customers, one 20.00 return each
        c = Customer(external_ref=f"R-{i}", name=f"Returner {i}")
        session.add(c)
        session.flush()
        o = Order(number=f"SO-R{i}", merchant_id=world.merchant.id, channel_id=world.channel.id, customer_id=c.id)
        session.add(o)
        session.flush()
        ol = OrderLine(order_id=o.id, product_id=world.products["shirt"].id, quantity=1, unit_price=Decimal("20.00"))
        session.add(ol)
        session.flush()
        r = Rma(number=f"RMA-R{i}", order_id=o.id, merchant_id=world.merchant.id, channel_id=world.channel.id,
                warehouse_id=world.wh.id, customer_id=c.id, status="closed")
        session.add(r)
        session.flush()
        session.add(RmaLine(rma_id=r.id, product_id=world.products["shirt"].id, order_line_id=ol.id, quantity=1,
                            reason_code="changed_mind"))
    session.commit()
    another_return(session, world, "RMA-6001", price="900.00")
    third = another_return(session, world, "RMA-6002", price="900.00")
    open_(session, world, third.number)
    [flag] = return_flags(session, third.id)
    assert "asked back" in flag.explanation and "orders (" not in flag.explanation


def jpeg() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (320, 240), (120, 90, 60)).save(buf, "JPEG")
    return buf.getvalue()


def test_an_empty_box_flags_its_return_and_holds_its_units_refunds(session, world, tmp_path):
    """A worker reports the parcel of RMA-5001 empty (then finds a shirt in the packing): the return
    is flagged, and the shirt's refund, which nothing else would hold, waits for a supervisor."""
    parcel_id = open_(session, world, "RMA-5001")
    report_box_problem(session, world.actor("worker"), parcel_id=parcel_id, problem="empty_box", note="only paper",
                       photos=[jpeg()], store=FolderStore(tmp_path), max_bytes=10**7, idempotency_key=new_key())
    [flag] = return_flags(session, world.rma.id)
    assert (flag.kind, flag.unit_id, flag.holds) == ("empty_box", None, True)
    assert flag.explanation == ("parcel RMA-5001 was reported empty (\u201conly paper\u201d): every refund of this "
                                "return waits for a supervisor")
    shirt = scan_item(session, world.actor("worker"), parcel_id=parcel_id, product_id=world.products["shirt"].id,
                      idempotency_key=new_key())
    assert inspect_and_confirm(session, world, shirt.unit_id, inspector="worker").refund_status == "pending_approval"
    assert refund_of(session, shirt.unit_id).hold_reasons == ["fraud flag"]


def test_a_box_damaged_in_transit_flags_nothing(session, world, tmp_path):
    parcel_id = open_(session, world, "RMA-5001")
    report_box_problem(session, world.actor("worker"), parcel_id=parcel_id, problem="damaged_in_transit", note=None,
                       photos=[jpeg()], store=FolderStore(tmp_path), max_bytes=10**7, idempotency_key=new_key())
    assert return_flags(session, world.rma.id) == []
    shirt = scan_item(session, world.actor("worker"), parcel_id=parcel_id, product_id=world.products["shirt"].id,
                      idempotency_key=new_key())
    assert inspect_and_confirm(session, world, shirt.unit_id, inspector="worker").refund_status == "released"
