"""An anomaly flag holds the refund (the fraud flag), and only a supervisor who did not inspect the
unit releases it (four-eyes); deciding the refund clears the unit's flags (issue 18)."""
from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select

from app.anomalies.models import AnomalyFlag
from app.disposition.services import confirm_disposition
from app.errors import FourEyesViolation
from app.inspection.services import record_inspection
from app.orders.models import Rma, RmaLine
from app.refunds.services import RefundPolicy, approve_refund, reject_refund
from tests.helpers import counts, move_direct, new_key, refund_of
from tests.integration.anomalies.test_serial_flags import SERIAL, receive_phone

POLICY = RefundPolicy(Decimal("10000.00"))  # no amount is over it: only the flag can hold


def same_order_again(session, world, number: str = "RMA-5009") -> Rma:  # type: ignore[no-untyped-def]
    """A second return of the world's order SO-1001 for its phone (the customer sends it back again)."""
    rma = Rma(number=number, order_id=world.order.id, merchant_id=world.merchant.id, channel_id=world.channel.id,
              warehouse_id=world.wh.id, customer_id=world.customer.id, status="in_transit")
    session.add(rma)
    session.flush()
    session.add(RmaLine(rma_id=rma.id, product_id=world.products["phone"].id,
                        order_line_id=world.extra["order_lines"]["phone"].id, quantity=1, reason_code="defective"))
    session.commit()
    return rma


def inspect_and_confirm(session, world, unit_id: int, inspector: str = "super"):  # type: ignore[no-untyped-def]
    who = world.actor(inspector)
    record_inspection(session, who, unit_id=unit_id, grade="A", packaging="sealed", answers={}, notes=None,
                      idempotency_key=new_key())
    return confirm_disposition(session, who, unit_id=unit_id, idempotency_key=new_key(), policy=POLICY)


def twice_returned_phone(session, world) -> int:  # type: ignore[no-untyped-def]
    """The phone of SO-1001 returned on RMA-5001, made available, then returned again on another
    return of the same order: its serial matches the order, but it was refunded once already."""
    first = receive_phone(session, world, "RMA-5001")
    move_direct(session, world.actor("worker"), first.unit_id, "available")
    again = receive_phone(session, world, same_order_again(session, world).number)
    assert [(f.kind, f.holds) for f in again.flags] == [("returned_before", True)]
    assert again.serial_status == "match" and again.exceptions == ()
    return again.unit_id


def test_an_unflagged_phone_is_released_at_once(session, world):
    """The control: the same phone, first time back, under the same policy, is not held."""
    unit_id = receive_phone(session, world, "RMA-5001").unit_id
    assert inspect_and_confirm(session, world, unit_id).refund_status == "released"


def test_a_flag_holds_the_refund_for_approval(session, world):
    unit_id = twice_returned_phone(session, world)
    confirmed = inspect_and_confirm(session, world, unit_id)
    assert confirmed.refund_status == "pending_approval"
    assert refund_of(session, unit_id).hold_reasons == ["fraud flag"]


def test_the_fraud_hold_is_released_only_by_a_supervisor_who_did_not_inspect_the_unit(session, world):
    """The supervisor who inspected the unit is refused, in words, and nothing is written; the other
    supervisor releases it, and the unit's flag is cleared by them."""
    unit_id = twice_returned_phone(session, world)
    inspect_and_confirm(session, world, unit_id, inspector="super")
    refund = refund_of(session, unit_id)
    before = counts(session)
    for decide in (approve_refund, reject_refund):
        with pytest.raises(FourEyesViolation, match="A fraud flag holds this refund and you inspected the unit: only "
                                                    "a supervisor who did not inspect it may release it"):
            decide(session, world.actor("super"), refund_id=refund.id, reason="looks fine", idempotency_key=new_key())
        session.rollback()
    assert counts(session) == before and refund_of(session, unit_id).status == "pending_approval"
    released = approve_refund(session, world.actor("super2"), refund_id=refund.id, reason="resold item, checked",
                              idempotency_key=new_key())
    assert released.status == "released"
    session.rollback()
    [flag] = session.scalars(select(AnomalyFlag).where(AnomalyFlag.unit_id == unit_id)).all()
    assert flag.cleared_by_id == world.users["super2"].id and flag.cleared_at is not None


def test_a_worker_inspected_fraud_hold_is_rejected_by_a_supervisor_and_clears_the_flag(session, world):
    unit_id = twice_returned_phone(session, world)
    inspect_and_confirm(session, world, unit_id, inspector="worker")
    refund = refund_of(session, unit_id)
    rejected = reject_refund(session, world.actor("super"), refund_id=refund.id, reason="refunded once already",
                             idempotency_key=new_key())
    assert rejected.status == "rejected"
    session.rollback()
    assert session.scalars(select(AnomalyFlag.cleared_by_id)).all() == [world.users["super"].id]
