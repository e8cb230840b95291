"""Guided grading reaches the refund (app.disposition.services.confirm_disposition): the deductions the
checklist's answers set come off the refund once, and the disposition's explanation names the answers
that set the grade and each deduction. Figures worked by hand: 200.00 less 10% (20.00) and 15.00 is 165.00."""
from __future__ import annotations

from decimal import Decimal

from sqlalchemy import func, select

from app.admin.services import save_checklist
from app.disposition.services import confirm_disposition
from app.errors import AlreadyDisposed
from app.inspection.services import record_inspection
from app.refunds.models import RefundEvent
from app.refunds.services import RefundPolicy
from tests.helpers import new_key, receive_unit, refund_of

import pytest

POLICY = RefundPolicy(Decimal("250.00"))
ITEMS = "seal_intact | Seal intact\nall_parts | All parts present\npowers_on | Powers on"
RULES = "seal_intact = yes -> grade A, skip the rest\nall_parts = no -> deduct 10%\npowers_on = no -> deduct 15.00"


def _graded(session, world, answers: dict[str, bool], *, grade: str) -> int:  # type: ignore[no-untyped-def]
    """A phone bought for 200.00, received with its refund trigger and inspected against the electronics
    checklist and its grading rules (saved as a new version by the admin)."""
    save_checklist(session, world.actor("admin"), category="electronics", text=ITEMS, note="guided grading",
                   idempotency_key=new_key(), grading_text=RULES)
    w = world.actor("worker")
    unit_id = receive_unit(session, world, "phone", w, paid_price="200.00").id
    record_inspection(session, w, unit_id=unit_id, grade=grade, packaging="sealed", answers=answers, notes=None,
                      idempotency_key=new_key(), unanswered_is_no=True)
    return unit_id


def _events(session, refund_id: int) -> int:  # type: ignore[no-untyped-def]
    n = session.scalar(select(func.count()).select_from(RefundEvent).where(RefundEvent.refund_id == refund_id))
    session.rollback()
    return int(n or 0)


def test_the_answers_deductions_come_off_the_refund_once_and_are_named(session, world):
    unit_id = _graded(session, world, {"seal_intact": False, "all_parts": False, "powers_on": False}, grade="A")
    w = world.actor("worker")
    key = new_key()
    done = confirm_disposition(session, w, unit_id=unit_id, idempotency_key=key, policy=POLICY)
    # 200.00 less 10% of 200.00 (20.00) and 15.00: 165.00, released (under the 250.00 threshold)
    assert (done.refund_status, done.refund_amount) == ("released", "165.00")
    assert "All parts present: no -> less 10%" in done.explanation
    assert "Powers on: no -> less 15.00" in done.explanation
    refund = refund_of(session, unit_id)
    assert refund.amount == Decimal("165.00") and refund.paid_amount == Decimal("200.00")
    events = _events(session, refund.id)
    # the same confirm again (a lost answer resent): its first answer, nothing taken off twice
    again = confirm_disposition(session, w, unit_id=unit_id, idempotency_key=key, policy=POLICY)
    assert again.replayed and (again.refund_status, again.refund_amount, again.explanation) == (
        done.refund_status, done.refund_amount, done.explanation)
    assert refund_of(session, unit_id).amount == Decimal("165.00")
    assert _events(session, refund.id) == events
    # another key: refused, the refund as it was
    with pytest.raises(AlreadyDisposed):
        confirm_disposition(session, w, unit_id=unit_id, idempotency_key=new_key(), policy=POLICY)
    session.rollback()
    assert refund_of(session, unit_id).amount == Decimal("165.00") and _events(session, refund.id) == events


def test_a_grade_set_by_an_answer_is_named_and_the_skipped_answers_deduct_nothing(session, world):
    # the seal intact sets grade A over the B picked (B would quarantine a phone worth 699.00) and skips
    # the rest: their "no" takes nothing off
    unit_id = _graded(session, world, {"seal_intact": True, "all_parts": False, "powers_on": False}, grade="B")
    done = confirm_disposition(session, world.actor("worker"), unit_id=unit_id, idempotency_key=new_key(), policy=POLICY)
    assert done.disposition == "restock" and "Seal intact: yes -> grade A, the rest skipped" in done.explanation
    assert (done.refund_status, done.refund_amount) == ("released", "200.00")
    unit_refund = refund_of(session, unit_id)
    assert unit_refund.amount == Decimal("200.00")
    session.rollback()
