"""The desk's use cases through the services (no web layer), on SQLite and PostgreSQL.

The builders at the top are shared with tests/web/test_desk_views.py and tests/e2e/test_desk_e2e.py.
"""
from __future__ import annotations

import threading
import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.db import unit_of_work, utcnow
from app.desk import queries as dq
from app.desk import rules as dr
from app.desk import services as ds
from app.disposition.domain import DEFAULT_RULES
from app.disposition.models import DispositionRule, ReasonCode, RuleSetVersion
from app.disposition.services import confirm_disposition
from app.errors import Conflict, FourEyesViolation, NotPermitted, StaleVersion, ValidationFailed
from app.exceptions import services as es
from app.exceptions.models import ReturnException
from app.inspection.services import record_inspection
from app.inspection.storage import FolderStore
from app.ledger.models import AuditEntry, LedgerEntry, OutboxEvent, ReturnUnit
from app.ledger.services import balance_table, ledger_sums, lock_unit
from app.ledger.writer import move_unit
from app.orders.models import Rma
from app.receiving.linking import link_parcel_to_rma
from app.receiving.models import Parcel
from app.receiving.services import close_parcel, open_parcel, scan_item
from app.refunds.models import RefundEvent, RefundTrigger
from app.refunds.services import RefundPolicy, approve_refund, lock_refund
from app.refunds.writer import open_trigger, settle_refund
from app.rows import allocate_ids, update_row, write
from tests.helpers import arriving_unit, open_exception_now

POLICY = RefundPolicy(Decimal("250.00"))


# --------------------------------------------------------------------------- builders (shared)


def key(prefix: str = "desk") -> str:
    """A fresh idempotency key."""
    return f"{prefix}-{uuid.uuid4().hex}"


def row_counts(session: Session) -> dict[str, Any]:
    """Rows of everything a decision writes (the session's read is rolled back after)."""
    models = {"ledger": LedgerEntry, "audit": AuditEntry, "outbox": OutboxEvent, "refund_events": RefundEvent,
              "refunds": RefundTrigger, "exceptions": ReturnException, "rule_versions": RuleSetVersion,
              "rules": DispositionRule, "reasons": ReasonCode}
    out: dict[str, Any] = {name: session.scalar(select(func.count()).select_from(m)) for name, m in models.items()}
    out["states"] = tuple(session.scalars(select(ReturnUnit.state).order_by(ReturnUnit.id)))
    out["resolved"] = session.scalar(select(func.count()).select_from(ReturnException).where(ReturnException.status == "resolved"))
    out["refund_statuses"] = tuple(session.scalars(select(RefundTrigger.status).order_by(RefundTrigger.id)))
    session.rollback()
    return out


def make_units(session: Session, world, n: int, *, state: str = "quarantine", product: str = "shirt",  # type: ignore[no-untyped-def]
               inspector: str = "worker", pending_refund: bool = False, paid: str = "20.00",
               warehouse=None, aged_hours: float | None = None, with_refund: bool = True) -> list[int]:
    """n units, already inspected and moved to `state` (one transaction), each with a refund trigger:
    awaiting inspection, or pending approval when `pending_refund` (inspected by `inspector`).
    Written through the one writer of each concept (move_unit, open_trigger, settle_refund)."""
    actor = world.actor("worker")
    wh = warehouse or world.wh
    inspector_id = world.users[inspector].id
    dock = world.loc(wh, "dock")
    ids = []
    with unit_of_work(session):
        for _ in range(n):
            unit = arriving_unit(session, world.products[product].id, wh.id)
            write(session, move_unit(actor, unit, "received", reason="received at dock", to_location_id=dock.id,
                                     to_location_warehouse_id=dock.warehouse_id,
                                     values={"merchant_id": world.merchant.id, "rma_id": world.rma.id,
                                             "paid_price": Decimal(paid), "grade": "B", "packaging": "opened",
                                             "inspected_at": utcnow(), "inspected_by_id": inspector_id}))
            if state != "received":
                place = world.loc(wh, state if state != "available" else "stock")
                disposition = {"available": "restock", "quarantine": "quarantine", "refurbish": "refurbish"}.get(state, state)
                write(session, move_unit(actor, lock_unit(session, unit.id), state, reason="rules: test",
                                         to_location_id=place.id, to_location_warehouse_id=place.warehouse_id,
                                         values={"disposition": disposition,
                                                 "decision_rule": "rule 14: any unit -> quarantine"}))
            if with_refund:
                (refund_id,) = allocate_ids(session, RefundTrigger, 1)
                write(session, open_trigger(actor, refund_id, unit_id=unit.id, rma_id=world.rma.id, warehouse_id=wh.id,
                                            paid_amount=Decimal(paid), currency="USD"))
                if pending_refund:
                    _after, rows = settle_refund(actor, lock_refund(session, refund_id), amount=Decimal(paid),
                                                 refund_action="hold", hold=["the rule holds it for approval"],
                                                 unit_inspected_at=utcnow(), inspected_by_id=inspector_id,
                                                 reason="rules: hold")
                    write(session, rows)
            if aged_hours is not None:
                write(session, [update_row(ReturnUnit, {"id": unit.id},
                                           {"state_changed_at": utcnow() - timedelta(hours=aged_hours)})])
            ids.append(unit.id)
    return ids


def serial_mismatch_case(session: Session, world) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """The real flow: a phone with a serial that was not shipped, inspected by the worker, quarantined
    by the rules with its refund held. Returns unit, refund and exception ids."""
    w = world.actor("worker")
    r = open_parcel(session, w, code="RMA-5001", warehouse_id=world.wh.id, idempotency_key=key())
    phone = scan_item(session, w, parcel_id=r.parcel_id, product_id=world.products["phone"].id, serial="SN-FAKE-9",
                      idempotency_key=key())
    record_inspection(session, w, unit_id=phone.unit_id, grade="A", packaging="opened", answers={}, notes=None,
                      idempotency_key=key())
    done = confirm_disposition(session, w, unit_id=phone.unit_id, idempotency_key=key(), policy=POLICY)
    assert done.state == "quarantine" and done.refund_status == "pending_approval"
    refund_id = session.scalar(select(RefundTrigger.id).where(RefundTrigger.unit_id == phone.unit_id))
    exc_id = session.scalar(select(ReturnException.id).where(ReturnException.unit_id == phone.unit_id,
                                                             ReturnException.type == "serial_mismatch"))
    session.rollback()
    return {"unit_id": phone.unit_id, "refund_id": refund_id, "exception_id": exc_id, "parcel_id": r.parcel_id}


def unidentified_parcel(session: Session, world, *, close: bool = False, items: tuple[str, ...] = ("shirt",)) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """A blind parcel (unknown label) with items in it: the unidentified_parcel exception."""
    w = world.actor("worker")
    r = open_parcel(session, w, code=f"NOLABEL-{uuid.uuid4().hex[:6]}", warehouse_id=world.wh.id,
                    idempotency_key=key(), blind=True)
    units = [scan_item(session, w, parcel_id=r.parcel_id, product_id=world.products[p].id,
                       serial="SN-PHONE-0001" if p == "phone" else None, idempotency_key=key()).unit_id for p in items]
    if close:
        close_parcel(session, w, parcel_id=r.parcel_id, idempotency_key=key())
    exc_id = session.scalar(select(ReturnException.id).where(ReturnException.parcel_id == r.parcel_id,
                                                             ReturnException.type == "unidentified_parcel"))
    session.rollback()
    return {"parcel_id": r.parcel_id, "unit_ids": units, "exception_id": exc_id}


# --------------------------------------------------------------------------- decisions on units


def test_release_writes_one_ledger_row_and_audit(session, world):
    [uid] = make_units(session, world, 1)
    sup = world.actor("super")
    before = row_counts(session)
    unit = session.get(ReturnUnit, uid)
    v = unit.version
    session.rollback()
    out = ds.decide_unit(session, sup, unit_id=uid, to_state="available", reason="checked: fine", idempotency_key=key(),
                         expected_version=v)
    assert out.state == "available" and out.location == "STOCK-01"
    after = row_counts(session)
    assert after["ledger"] == before["ledger"] + 1
    assert after["audit"] == before["audit"] + 1
    entry = session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc())).first()
    assert (entry.action, entry.reason, entry.actor_name) == ("unit.released", "checked: fine", "Super")
    unit = session.get(ReturnUnit, uid)
    assert unit.disposition == "restock" and unit.location_id == world.loc(world.wh, "stock").id
    assert ledger_sums(session) == balance_table(session)


@pytest.mark.parametrize("target,loc", [("refurbish", "refurbish"), ("vendor_return", "vendor_return"),
                                        ("liquidation", "liquidation"), ("disposed", "scrap")])
def test_route_to_the_warehouse_location_of_that_type(session, world, target, loc):
    [uid] = make_units(session, world, 1)
    out = ds.decide_unit(session, world.actor("super"), unit_id=uid, to_state=target, reason="route", idempotency_key=key())
    assert out.state == target
    assert session.get(ReturnUnit, uid).location_id == world.loc(world.wh, loc).id


def test_decisions_refused_write_nothing(session, world):
    [uid] = make_units(session, world, 1)
    sup = world.actor("super")
    before = row_counts(session)
    with pytest.raises(ValidationFailed, match="reason"):
        ds.decide_unit(session, sup, unit_id=uid, to_state="available", reason="  ", idempotency_key=key())
    with pytest.raises(ValidationFailed):
        ds.decide_unit(session, sup, unit_id=uid, to_state="sold", reason="x", idempotency_key=key())
    with pytest.raises(NotPermitted):
        ds.decide_unit(session, world.actor("worker"), unit_id=uid, to_state="available", reason="x", idempotency_key=key())
    with pytest.raises(NotPermitted):
        ds.decide_unit(session, world.actor("admin"), unit_id=uid, to_state="available", reason="x", idempotency_key=key())
    with pytest.raises(ValidationFailed):
        ds.decide_unit(session, sup, unit_id=uid, to_state="available", reason="x", idempotency_key="bad")
    with pytest.raises(StaleVersion):
        ds.decide_unit(session, sup, unit_id=uid, to_state="available", reason="x", idempotency_key=key(), expected_version=99)
    assert row_counts(session) == before


def test_stale_decision_names_the_winner(session, world):
    [uid] = make_units(session, world, 1)
    v = session.get(ReturnUnit, uid).version
    session.rollback()
    ds.decide_unit(session, world.actor("super"), unit_id=uid, to_state="available", reason="ok", idempotency_key=key(),
                   expected_version=v)
    with pytest.raises(StaleVersion, match="already decided by Super"):
        ds.decide_unit(session, world.actor("super2"), unit_id=uid, to_state="disposed", reason="no", idempotency_key=key(),
                       expected_version=v)


def test_retry_with_the_same_key_moves_once(session, world):
    [uid] = make_units(session, world, 1)
    k = key()
    first = ds.decide_unit(session, world.actor("super"), unit_id=uid, to_state="available", reason="ok", idempotency_key=k)
    again = ds.decide_unit(session, world.actor("super"), unit_id=uid, to_state="available", reason="ok", idempotency_key=k)
    assert again.replayed and (again.state, again.version) == (first.state, first.version)
    assert session.scalar(select(func.count()).select_from(LedgerEntry).where(LedgerEntry.unit_id == uid)) == 3


def test_received_units_go_through_disposition(session, world):
    [uid] = make_units(session, world, 1, state="received")
    with pytest.raises(ValidationFailed, match="not been disposed"):
        ds.decide_unit(session, world.actor("super"), unit_id=uid, to_state="available", reason="x", idempotency_key=key())
    with pytest.raises(ValidationFailed, match="reason"):
        ds.dispose_unit(session, world.actor("super"), unit_id=uid, disposition="refurbish", reason="",
                        idempotency_key=key(), policy=POLICY)
    out = ds.dispose_unit(session, world.actor("super"), unit_id=uid, disposition="refurbish", reason="screen scratched",
                          idempotency_key=key(), policy=POLICY)
    assert out.state == "refurbish" and "override by Super" in out.explanation
    refund = session.scalars(select(RefundTrigger).where(RefundTrigger.unit_id == uid)).one()
    assert refund.status == "pending_approval" and refund.override_by_id == world.users["super"].id
    with pytest.raises(ValidationFailed, match="already disposed"):
        ds.dispose_unit(session, world.actor("super"), unit_id=uid, disposition=None, reason=None,
                        idempotency_key=key(), policy=POLICY)
    [other] = make_units(session, world, 1, state="received")
    by_rules = ds.dispose_unit(session, world.actor("super"), unit_id=other, disposition="", reason="",
                               idempotency_key=key(), policy=POLICY)
    assert by_rules.state == "available" and by_rules.explanation.startswith("rule 11")  # grade B apparel


def test_regrade_records_an_inspection_and_audit(session, world):
    [uid] = make_units(session, world, 1)
    v = session.get(ReturnUnit, uid).version
    session.rollback()
    out = ds.regrade_unit(session, world.actor("super"), unit_id=uid, grade="a", packaging="sealed",
                          answers={"tags_attached": True, "bogus": True}, reason="tags were in the bag",
                          idempotency_key=key(), expected_version=v)
    assert out.grade == "A"
    unit = session.get(ReturnUnit, uid)
    assert (unit.grade, unit.packaging, unit.inspected_by_id, unit.state) == ("A", "sealed", world.users["super"].id, "quarantine")
    entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "unit.regraded")).one()
    assert entry.reason == "tags were in the bag" and entry.details["from_grade"] == "B"
    with pytest.raises(NotPermitted):
        ds.regrade_unit(session, world.actor("worker"), unit_id=uid, grade="A", packaging="sealed", answers={},
                        reason="x", idempotency_key=key())


def test_regrade_from_the_desk_form_records_an_unanswered_item_as_no(session, world):
    """The desk's re-grade form sends only the items the supervisor answered (form_answers): the
    inspection keeps every item of the unit's checklist, the unanswered ones as no."""
    from app.inspection.models import Inspection
    from app.inspection.queries import checklist_for
    from app.inspection.services import form_answers

    [uid] = make_units(session, world, 1)
    category = session.get(ReturnUnit, uid).product.category
    items = [item["key"] for item in checklist_for(session, category).items]
    session.rollback()
    form = {"q_" + items[0]: "yes", "q_bogus": "yes", "grade": "B", "reason": "looked again"}
    assert form_answers(form) == {items[0]: True, "bogus": True}
    out = ds.regrade_unit(session, world.actor("super"), unit_id=uid, grade="B", packaging="opened",
                          answers=form_answers(form), reason="looked again", idempotency_key=key(), unanswered_is_no=True)
    saved = session.get(Inspection, out.inspection_id)
    assert saved.answers == {k: k == items[0] for k in items} and saved.checklist_version == 1


# --------------------------------------------------------------------------- bulk


def test_bulk_release_of_200_units(session, world):
    ids = make_units(session, world, 200)
    versions = dict(session.execute(select(ReturnUnit.id, ReturnUnit.version).where(ReturnUnit.id.in_(ids))).all())
    session.rollback()
    ledger_before = session.scalar(select(func.count()).select_from(LedgerEntry))
    session.rollback()
    result = ds.bulk_decide_units(session, world.actor("super"), unit_ids=ids, to_state="available",
                                  reason="cage audit: all fine", idempotency_key=key(), versions=versions)
    assert len(result.done) == 200 and not result.refused
    moved = session.scalar(select(func.count()).select_from(LedgerEntry).where(
        LedgerEntry.unit_id.in_(ids), LedgerEntry.from_state == "quarantine", LedgerEntry.to_state == "available"))
    assert moved == 200
    assert session.scalar(select(func.count()).select_from(LedgerEntry)) == ledger_before + 200
    audits = session.scalars(select(AuditEntry).where(AuditEntry.action == "unit.released")).all()
    assert len(audits) == 200 and {a.entity_id for a in audits} == set(ids)
    assert len({a.details["bulk"] for a in audits}) == 1
    assert ledger_sums(session) == balance_table(session)
    assert set(session.scalars(select(ReturnUnit.state).where(ReturnUnit.id.in_(ids)))) == {"available"}


def test_bulk_refuses_items_one_by_one_and_replays(session, world):
    ids = make_units(session, world, 3)
    versions = dict(session.execute(select(ReturnUnit.id, ReturnUnit.version).where(ReturnUnit.id.in_(ids))).all())
    session.rollback()  # what the page showed before super2 acted:
    ds.decide_unit(session, world.actor("super2"), unit_id=ids[1], to_state="disposed", reason="x", idempotency_key=key())
    k = key()
    result = ds.bulk_decide_units(session, world.actor("super"), unit_ids=ids, to_state="available", reason="fine",
                                  idempotency_key=k, versions=versions)
    assert [d.unit_id for d in result.done] == [ids[0], ids[2]]
    assert result.refused[0][0] == ids[1] and "already decided by Super2" in result.refused[0][1]
    again = ds.bulk_decide_units(session, world.actor("super"), unit_ids=ids, to_state="available", reason="fine",
                                 idempotency_key=k, versions=versions)
    assert all(d.replayed for d in again.done) and len(again.done) == 2
    assert ledger_sums(session) == balance_table(session)
    with pytest.raises(ValidationFailed):
        ds.bulk_decide_units(session, world.actor("super"), unit_ids=[], to_state="available", reason="x", idempotency_key=key())


# --------------------------------------------------------------------------- refunds and four-eyes


def test_four_eyes_in_the_refund_service(session, world):
    [uid] = make_units(session, world, 1, inspector="super", pending_refund=True, paid="400.00")
    refund_id = session.scalar(select(RefundTrigger.id).where(RefundTrigger.unit_id == uid))
    session.rollback()
    before = row_counts(session)
    with pytest.raises(FourEyesViolation, match="You inspected this unit"):
        approve_refund(session, world.actor("super"), refund_id=refund_id, reason="ok", idempotency_key=key())
    with pytest.raises(FourEyesViolation):
        ds.decide_refund(session, world.actor("super"), refund_id=refund_id, decision="reject", reason="no",
                         idempotency_key=key())
    assert row_counts(session) == before
    out = ds.decide_refund(session, world.actor("super2"), refund_id=refund_id, decision="approve", reason="ok",
                           idempotency_key=key(), amount="350")
    assert out.status == "released" and out.amount == "350.00"


def test_four_eyes_for_an_override(session, world):
    [uid] = make_units(session, world, 1, state="received")
    ds.dispose_unit(session, world.actor("super"), unit_id=uid, disposition="dispose", reason="smells",
                    idempotency_key=key(), policy=POLICY)
    refund_id = session.scalar(select(RefundTrigger.id).where(RefundTrigger.unit_id == uid))
    session.rollback()
    with pytest.raises(FourEyesViolation, match="overrode"):
        ds.decide_refund(session, world.actor("super"), refund_id=refund_id, decision="approve", reason="ok",
                         idempotency_key=key())
    assert ds.decide_refund(session, world.actor("super2"), refund_id=refund_id, decision="reject", reason="hygiene",
                            idempotency_key=key()).status == "rejected"


def test_four_eyes_covers_a_later_regrade(session, world):
    [uid] = make_units(session, world, 1, pending_refund=True)
    ds.regrade_unit(session, world.actor("super"), unit_id=uid, grade="C", packaging="damaged", answers={},
                    reason="dent", idempotency_key=key())
    refund_id = session.scalar(select(RefundTrigger.id).where(RefundTrigger.unit_id == uid))
    session.rollback()
    with pytest.raises(FourEyesViolation):
        ds.decide_refund(session, world.actor("super"), refund_id=refund_id, decision="approve", reason="ok",
                         idempotency_key=key())


def test_refund_decisions_validate(session, world):
    [uid] = make_units(session, world, 1, pending_refund=True, paid="30.00")
    refund_id = session.scalar(select(RefundTrigger.id).where(RefundTrigger.unit_id == uid))
    session.rollback()
    sup = world.actor("super2")
    for amount in ("abc", "-1", "31", "NaN"):
        with pytest.raises(ValidationFailed):
            ds.decide_refund(session, sup, refund_id=refund_id, decision="approve", reason="x", idempotency_key=key(),
                             amount=amount)
    with pytest.raises(ValidationFailed):
        ds.decide_refund(session, sup, refund_id=refund_id, decision="maybe", reason="x", idempotency_key=key())
    with pytest.raises(ValidationFailed):
        ds.decide_refund(session, sup, refund_id=refund_id, decision="reject", reason="x", idempotency_key=key(), amount="3")
    with pytest.raises(NotPermitted):
        ds.decide_refund(session, world.actor("worker"), refund_id=refund_id, decision="approve", reason="x",
                         idempotency_key=key())
    ds.decide_refund(session, sup, refund_id=refund_id, decision="approve", reason="x", idempotency_key=key())
    with pytest.raises(StaleVersion, match="already decided by Super2"):
        ds.decide_refund(session, world.actor("super"), refund_id=refund_id, decision="reject", reason="x",
                         idempotency_key=key())


def test_bulk_refunds_check_four_eyes_each(session, world):
    mine = make_units(session, world, 2, inspector="super", pending_refund=True)
    theirs = make_units(session, world, 2, inspector="worker", pending_refund=True)
    rids = list(session.scalars(select(RefundTrigger.id).where(RefundTrigger.unit_id.in_(mine + theirs)).order_by(RefundTrigger.id)))
    session.rollback()
    result = ds.bulk_decide_refunds(session, world.actor("super"), refund_ids=rids, decision="approve", reason="batch",
                                    idempotency_key=key())
    assert len(result.done) == 2 and len(result.refused) == 2
    assert all("inspected" in msg for _, msg in result.refused)


# --------------------------------------------------------------------------- exceptions


def test_link_unidentified_parcel_to_its_rma(session, world):
    parcel = unidentified_parcel(session, world, items=("shirt", "cream"))
    sup = world.actor("super")
    out = link_parcel_to_rma(session, sup, exception_id=parcel["exception_id"], rma_code="rma-5001",
                             reason="packing slip inside", idempotency_key=key())
    assert out.rma_number == "RMA-5001" and out.exceptions_raised == ("extra_item",)
    assert len(out.refunds_opened) == 2  # shirt (on the RMA) and cream (bought, not expected): both were paid
    linked = session.get(Parcel, parcel["parcel_id"])
    assert linked.rma_id == world.rma.id
    shirt, cream = (session.get(ReturnUnit, i) for i in parcel["unit_ids"])
    assert shirt.rma_id == world.rma.id and shirt.rma_line_id is not None and shirt.paid_price == Decimal("20.00")
    assert cream.rma_line_id is None and cream.merchant_id == world.merchant.id
    refund = session.scalars(select(RefundTrigger).where(RefundTrigger.unit_id == shirt.id)).one()
    assert (refund.status, refund.paid_amount) == ("awaiting_inspection", Decimal("20.00"))
    exc = session.get(ReturnException, parcel["exception_id"])
    assert (exc.status, exc.resolution, exc.resolved_by_id) == ("resolved", "linked_to_rma", world.users["super"].id)
    assert session.get(Rma, world.rma.id).status == "receiving"
    actions = set(session.scalars(select(AuditEntry.action)))
    assert {"exception.resolved", "parcel.linked_to_rma", "unit.linked_to_rma"} <= actions
    with pytest.raises(StaleVersion, match="already decided by Super"):
        link_parcel_to_rma(session, world.actor("super2"), exception_id=parcel["exception_id"], rma_code="RMA-5001",
                           reason="x", idempotency_key=key())


def test_link_a_closed_parcel_closes_the_rma_and_rechecks_serials(session, world):
    parcel = unidentified_parcel(session, world, close=True, items=("phone",))
    phone = session.get(ReturnUnit, parcel["unit_ids"][0])
    assert phone.serial_status == "mismatch"  # nothing to compare with at the dock
    session.rollback()
    link_parcel_to_rma(session, world.actor("super"), exception_id=parcel["exception_id"], rma_code="1Z999AA10123456784",
                       reason="tracking number on the box", idempotency_key=key())
    phone = session.get(ReturnUnit, parcel["unit_ids"][0])
    assert phone.serial_status == "match"
    serial_exc = session.scalars(select(ReturnException).where(ReturnException.unit_id == phone.id,
                                                               ReturnException.type == "serial_mismatch")).one()
    assert serial_exc.status == "resolved" and serial_exc.resolution == "serial_matched"
    rma = session.get(Rma, world.rma.id)
    assert rma.status == "closed"
    missing = session.scalars(select(ReturnException).where(ReturnException.type == "missing_item")).all()
    assert [(m.details["sku"], m.quantity) for m in missing] == [("TEE-BLU-M", 2)]


def test_link_refusals_write_nothing(session, world):
    parcel = unidentified_parcel(session, world)
    sup = world.actor("super")
    before = row_counts(session)
    with pytest.raises(ValidationFailed, match="No return matches"):
        link_parcel_to_rma(session, sup, exception_id=parcel["exception_id"], rma_code="RMA-NOPE", reason="x",
                           idempotency_key=key())
    with pytest.raises(ValidationFailed):
        link_parcel_to_rma(session, sup, exception_id=parcel["exception_id"], rma_code="", reason="x", idempotency_key=key())
    with pytest.raises(ValidationFailed, match="reason"):
        link_parcel_to_rma(session, sup, exception_id=parcel["exception_id"], rma_code="RMA-5001", reason="",
                           idempotency_key=key())
    with pytest.raises(NotPermitted):
        link_parcel_to_rma(session, world.actor("worker"), exception_id=parcel["exception_id"], rma_code="RMA-5001",
                           reason="x", idempotency_key=key())
    assert row_counts(session) == before


def test_confirm_serial_mismatch_as_fraud(session, world):
    case = serial_mismatch_case(session, world)
    before = row_counts(session)
    out = es.confirm_serial_fraud(session, world.actor("super"), exception_id=case["exception_id"],
                                  reason="serial belongs to another customer's order", idempotency_key=key())
    assert out.unit_state == "quarantine" and out.refund_status == "rejected"
    refund = session.get(RefundTrigger, case["refund_id"])
    assert refund.amount == Decimal("0.00") and refund.decided_by_id == world.users["super"].id
    after = row_counts(session)
    assert after["ledger"] == before["ledger"]  # it stays in quarantine: no move
    assert after["resolved"] == before["resolved"] + 1
    assert session.get(ReturnException, case["exception_id"]).resolution == "fraud_confirmed"


def test_fraud_on_a_unit_the_supervisor_inspected_is_refused(session, world):
    [uid] = make_units(session, world, 1, inspector="super", pending_refund=True, product="phone", paid="649.00")
    with unit_of_work(session):
        unit = session.get(ReturnUnit, uid)
        exc = open_exception_now(session, world.actor("worker"), "serial_mismatch", warehouse_id=world.wh.id, unit_id=uid,
                                product_id=unit.product_id, details={"serial": "X"})
    before = row_counts(session)
    with pytest.raises(FourEyesViolation):
        es.confirm_serial_fraud(session, world.actor("super"), exception_id=exc.id, reason="fraud", idempotency_key=key())
    assert row_counts(session) == before
    out = es.confirm_serial_fraud(session, world.actor("super2"), exception_id=exc.id, reason="fraud", idempotency_key=key())
    assert out.refund_status == "rejected"


def test_fraud_puts_a_received_unit_in_quarantine(session, world):
    w = world.actor("worker")
    r = open_parcel(session, w, code="RMA-5001", warehouse_id=world.wh.id, idempotency_key=key())
    phone = scan_item(session, w, parcel_id=r.parcel_id, product_id=world.products["phone"].id, serial="SN-X",
                      idempotency_key=key())
    exc_id = session.scalar(select(ReturnException.id).where(ReturnException.type == "serial_mismatch"))
    session.rollback()
    decision = key()
    out = es.confirm_serial_fraud(session, world.actor("super"), exception_id=exc_id, reason="fake",
                                  idempotency_key=decision)
    assert out.unit_state == "quarantine" and out.refund_status == "rejected"
    hold = session.scalars(select(LedgerEntry).where(LedgerEntry.unit_id == phone.unit_id,
                                                     LedgerEntry.to_state == "quarantine")).one()
    assert hold.idempotency_key == decision  # the ledger row says which decision moved it
    unit = session.get(ReturnUnit, phone.unit_id)
    assert unit.location_id == world.loc(world.wh, "quarantine").id
    assert ledger_sums(session) == balance_table(session)


def test_accept_wrong_item(session, world):
    w = world.actor("worker")
    other = world.products["cream"]
    # An order without cream: the cream is a wrong item on this RMA.
    from app.orders.models import Order, OrderLine, RmaLine

    with unit_of_work(session):
        order = Order(number="SO-2002", merchant_id=world.merchant.id, channel_id=world.channel.id, customer_id=world.customer.id)
        session.add(order)
        session.flush()
        ol = OrderLine(order_id=order.id, product_id=world.products["shirt"].id, quantity=1, unit_price=Decimal("22.00"))
        session.add(ol)
        rma = Rma(number="RMA-6001", order_id=order.id, merchant_id=world.merchant.id, channel_id=world.channel.id,
                  warehouse_id=world.wh.id, customer_id=world.customer.id, status="in_transit")
        session.add(rma)
        session.flush()
        line = RmaLine(rma_id=rma.id, product_id=world.products["shirt"].id, order_line_id=ol.id, quantity=1, reason_code="wrong_size")
        session.add(line)
        session.flush()
        line_id = line.id
    r = open_parcel(session, w, code="RMA-6001", warehouse_id=world.wh.id, idempotency_key=key())
    got = scan_item(session, w, parcel_id=r.parcel_id, product_id=other.id, idempotency_key=key())
    assert got.exceptions == ("wrong_item",)
    exc_id = session.scalar(select(ReturnException.id).where(ReturnException.type == "wrong_item"))
    session.rollback()
    with pytest.raises(ValidationFailed):
        es.accept_wrong_item(session, world.actor("super"), exception_id=exc_id, reason="x", credit_amount="lots",
                             idempotency_key=key())
    out = es.accept_wrong_item(session, world.actor("super"), exception_id=exc_id, reason="customer sent the cream instead",
                               credit_amount="15.00", rma_line_id=line_id, idempotency_key=key())
    assert out.sku == "HB-CREAM-50" and out.refund_id
    unit = session.get(ReturnUnit, got.unit_id)
    assert unit.product_id == other.id and unit.rma_line_id == line_id  # the SKU stays true; it fills the shirt's line
    refund = session.get(RefundTrigger, out.refund_id)
    assert refund.paid_amount == Decimal("15.00") and refund.status == "awaiting_inspection"
    assert ledger_sums(session) == balance_table(session)


def test_plain_resolution_and_its_choices(session, world):
    parcel = unidentified_parcel(session, world)
    with pytest.raises(ValidationFailed, match="Pick how"):
        es.resolve_exception(session, world.actor("super"), exception_id=parcel["exception_id"], resolution="carrier_claim_filed",
                             reason="x", idempotency_key=key())
    out = es.resolve_exception(session, world.actor("super"), exception_id=parcel["exception_id"],
                               resolution="no_match_kept", reason="no paperwork at all", idempotency_key=key())
    assert out.status == "resolved"
    with pytest.raises(StaleVersion, match="already decided"):
        es.resolve_exception(session, world.actor("super2"), exception_id=parcel["exception_id"],
                             resolution="no_match_kept", reason="x", idempotency_key=key())


# --------------------------------------------------------------------------- queues


def test_queues_count_filter_sort_and_page(session, world):
    make_units(session, world, 3, paid="10.00", aged_hours=100)
    make_units(session, world, 2, product="phone", paid="600.00")
    make_units(session, world, 2, pending_refund=True, paid="300.00")
    sup = world.actor("super")
    counts = dq.queue_counts(session, sup, 48)
    assert (counts["quarantine"].total, counts["quarantine"].aged) == (7, 3)
    assert counts["refunds"].total == 2
    page = dq.quarantine_queue(session, sup, dq.QueueQuery(per_page=25), 48)
    assert page.total == 7 and page.aged_total == 3 and [r.aged for r in page.rows[:3]] == [True] * 3
    by_value = dq.quarantine_queue(session, sup, dq.QueueQuery(sort="value"), 48)
    assert [r.value for r in by_value.rows][:2] == [Decimal("600.00")] * 2
    phones = dq.quarantine_queue(session, sup, dq.QueueQuery(category="electronics"), 48)
    assert phones.total == 2 and {r.sku for r in phones.rows} == {"PHN-X1-128"}
    web = dq.quarantine_queue(session, sup, dq.QueueQuery(channel="web", warehouse_id=world.wh.id), 48)
    assert web.total == 7
    none = dq.quarantine_queue(session, sup, dq.QueueQuery(reason="defective"), 48)
    assert none.total == 0
    paged = dq.quarantine_queue(session, sup, dq.QueueQuery.from_args({"per_page": "25", "page": "2"}), 48)
    assert paged.rows == [] and paged.total == 7
    refunds = dq.refund_queue(session, sup, dq.QueueQuery(), 48)
    assert refunds.total == 2 and refunds.rows[0].inspector == "Worker" and refunds.rows[0].value == Decimal("300.00")
    parcel = unidentified_parcel(session, world)
    exc_page = dq.exception_queue(session, sup, "unidentified_parcel", dq.QueueQuery(), 48)
    assert exc_page.total == 1 and exc_page.rows[0].id == parcel["exception_id"]


def test_queue_query_ignores_junk():
    q = dq.QueueQuery.from_args({"sort": "price; drop", "order": "sideways", "warehouse": "x", "type": "fo od",
                                 "reason": "<script>", "channel": "a" * 80, "page": "-3", "per_page": "7"})
    assert q == dq.QueueQuery()
    q = dq.QueueQuery.from_args({"page": "99999999999999999999999"})
    assert q.page == 1


def test_queue_page_is_one_query_plus_one_count(session, world, engine):
    from sqlalchemy import event

    make_units(session, world, 30)
    statements: list[str] = []

    def count(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        dq.quarantine_queue(session, world.actor("super"), dq.QueueQuery(per_page=25, category="apparel"), 48)
        dq.refund_queue(session, world.actor("super"), dq.QueueQuery(), 48)
        dq.exception_queue(session, world.actor("super"), "wrong_item", dq.QueueQuery(reason="defective"), 48)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert len(statements) == 6, statements


def test_unit_case_has_everything(session, world, tmp_path):
    import io

    from PIL import Image

    from app.inspection.services import add_photo

    case = serial_mismatch_case(session, world)
    buf = io.BytesIO()
    Image.new("RGB", (80, 60), (10, 200, 30)).save(buf, "JPEG")
    add_photo(session, world.actor("worker"), unit_id=case["unit_id"], data=buf.getvalue(), store=FolderStore(tmp_path),
              max_bytes=10**7, idempotency_key=key())
    c = dq.unit_case(session, world.actor("super"), case["unit_id"])
    assert c.serials_expected == ["SN-PHONE-0001"] and c.unit.serial == "SN-FAKE-9"
    assert len(c.photos) == 1 and c.inspections[0][1] == "Worker"
    assert "serial mismatch" in c.unit.decision_rule
    assert c.history == (0, 1.0)
    steps = [t.title for t in c.timeline]  # each step once, in words: the move, the inspection, the refund's
    unit = c.unit.lpn
    assert len(steps) == len(set(steps)) and steps[0].startswith(f"Received {unit}"), steps
    assert any(s.startswith(f"Inspected {unit}") for s in steps) and any(s.startswith(f"Refund for {unit}") for s in steps)
    assert any(s == f"Photo added to {unit} (Phone X1 128GB)" for s in steps), steps
    times = [t.at.replace(tzinfo=None) for t in c.timeline]
    assert times == sorted(times)
    assert c.targets == ["available", "refurbish", "vendor_return", "liquidation", "disposed"]
    with pytest.raises(Exception):
        dq.unit_case(session, world.actor("outsider"), case["unit_id"])


# --------------------------------------------------------------------------- rules and reason codes


def _drafts(**change: Any) -> list[dr.RuleDraft]:
    drafts = dr.drafts_from_rules(DEFAULT_RULES)
    for d in drafts:
        if d.name in change:
            for k, v in change[d.name].items():
                setattr(d, k, v)
    return drafts


def test_rules_validate_with_clear_messages(session, world):
    drafts = _drafts()
    drafts[0].conditions = {"grade_in": ["Z"], "value_gt": "lots"}
    drafts[1].name = ""
    drafts[2].disposition = "burn"
    with pytest.raises(dr.RulesInvalid) as err:
        dr.validate_drafts(session, drafts)
    assert set(err.value.errors) == {0, 1, 2}
    assert any("'Z' is not a grade" in m for m in err.value.errors[0])
    assert any("value_gt must be a money amount" in m for m in err.value.errors[0])
    assert err.value.errors[1] == ["give the rule a name"]
    assert any("unknown disposition 'burn'" in m for m in err.value.errors[2])
    every = _drafts()
    for d in every:
        d.remove = True
    with pytest.raises(dr.RulesInvalid) as err:
        dr.validate_drafts(session, every)
    assert err.value.general == ["Keep at least one rule."]


def test_rules_reorder_preview_and_save(session, world):
    make_units(session, world, 5, product="shirt")  # grade B opened apparel -> rule 11 restock today
    sup = world.actor("super")
    drafts = _drafts(**{"Good, open box": {"disposition": "liquidate", "position": "1"}})
    rules = dr.validate_drafts(session, drafts)
    assert rules[0].name == "Good, open box" and [r.position for r in rules] == list(range(1, 15))
    preview = dr.preview_rules(session, sup, rules, n=200)
    assert preview.total == 5 and preview.changed_vs_current == 5 and preview.changed_vs_decided == 5
    assert preview.transitions == [(("quarantine", "liquidate"), 5)]
    before = row_counts(session)
    out = dr.save_rules(session, sup, rules=rules, note="liquidate open apparel", base_version=0, idempotency_key=key())
    after = row_counts(session)
    assert after["rule_versions"] == before["rule_versions"] + 1 and after["rules"] == 14
    assert after["audit"] == before["audit"] + 1 and after["ledger"] == before["ledger"]
    audit = session.scalars(select(AuditEntry).where(AuditEntry.action == "rules.saved")).one()
    assert audit.entity_id == out.version_id and audit.reason == "liquidate open apparel"
    assert "Good, open box" in audit.details["moved"] and "Good, open box" in audit.details["changed"]
    from app.disposition.services import load_rules

    assert load_rules(session)[0].disposition == "liquidate"
    with pytest.raises(StaleVersion, match="already changed by Super"):
        dr.save_rules(session, world.actor("super2"), rules=rules, note="mine", base_version=0, idempotency_key=key())
    with pytest.raises(NotPermitted):
        dr.save_rules(session, world.actor("worker"), rules=rules, note="x", base_version=out.version_id,
                      idempotency_key=key())
    with pytest.raises(ValidationFailed):
        dr.save_rules(session, sup, rules=rules, note=" ", base_version=out.version_id, idempotency_key=key())


def test_reason_codes_add_rename_deactivate(session, world):
    sup = world.actor("super")
    dr.add_reason_code(session, sup, code="too_small", label="Too small", idempotency_key=key())
    with pytest.raises(Conflict):
        dr.add_reason_code(session, sup, code="too_small", label="Again", idempotency_key=key())
    for bad in ("", "Too Small", "x", "1abc", "a" * 40):
        with pytest.raises(ValidationFailed):
            dr.add_reason_code(session, sup, code=bad, label="x", idempotency_key=key())
    dr.update_reason_code(session, sup, code="too_small", label="Runs small", idempotency_key=key())
    dr.update_reason_code(session, sup, code="too_small", active=False, idempotency_key=key())
    rc = session.get(ReasonCode, "too_small")
    assert (rc.label, rc.active) == ("Runs small", False)
    actions = list(session.scalars(select(AuditEntry.action).where(AuditEntry.entity_type == "reason_code").order_by(AuditEntry.id)))
    assert actions == ["reason_code.added", "reason_code.renamed", "reason_code.deactivated"]
    with pytest.raises(NotPermitted):
        dr.add_reason_code(session, world.actor("worker"), code="other", label="Other", idempotency_key=key())
    # With reason codes configured, rules may only name known ones.
    drafts = _drafts()
    drafts[0].conditions = {"reason_in": "no_such_reason"}
    with pytest.raises(dr.RulesInvalid) as err:
        dr.validate_drafts(session, drafts)
    assert "unknown 'no_such_reason'" in err.value.errors[0][0]


# --------------------------------------------------------------------------- concurrency (PostgreSQL)


@pytest.mark.pg_only
def test_two_supervisors_decide_the_same_unit_at_once(session_factory, world):
    setup = session_factory()
    [uid] = make_units(setup, world, 1)
    version = setup.get(ReturnUnit, uid).version
    ledger_before = setup.scalar(select(func.count()).select_from(LedgerEntry).where(LedgerEntry.unit_id == uid))
    setup.close()
    barrier = threading.Barrier(2, timeout=30)
    results: dict[str, Any] = {}

    def decide(who: str, target: str) -> None:
        s = session_factory()
        try:
            s.connection()
            s.rollback()
            barrier.wait()
            results[who] = ds.decide_unit(s, world.actor(who), unit_id=uid, to_state=target, reason=f"{who} decides",
                                          idempotency_key=key(), expected_version=version)
        except Exception as exc:  # noqa: BLE001 - asserted below
            results[who] = exc
        finally:
            s.close()

    threads = [threading.Thread(target=decide, args=("super", "available")),
               threading.Thread(target=decide, args=("super2", "disposed"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    winners = [w for w, r in results.items() if isinstance(r, ds.UnitDecided)]
    losers = [w for w, r in results.items() if isinstance(r, StaleVersion)]
    assert len(winners) == 1 and len(losers) == 1, results
    winner_name = world.users[winners[0]].name
    assert f"already decided by {winner_name}" in results[losers[0]].message
    check = session_factory()
    assert check.scalar(select(func.count()).select_from(LedgerEntry).where(LedgerEntry.unit_id == uid)) == ledger_before + 1
    assert ledger_sums(check) == balance_table(check)
    check.close()


# --------------------------------------------------------------------------- scale (PostgreSQL)


@pytest.mark.pg_only
def test_queues_stay_fast_at_tens_of_thousands(session, world):
    """30,000 quarantined units, 30,000 held refunds, 10,000 open exceptions: every queue page
    (default order, by value, filtered, deep page) and the counts answer in well under a second."""
    import time

    from sqlalchemy import insert, text

    n = 30_000
    now = utcnow()
    wid, pid, phone = world.wh.id, world.products["shirt"].id, world.products["phone"].id
    session.execute(text("SET LOCAL synchronous_commit = off"))
    session.execute(insert(ReturnUnit), [
        {"lpn": f"LPX{i:08d}", "product_id": phone if i % 7 == 0 else pid, "warehouse_id": wid, "merchant_id": world.merchant.id,
         "rma_id": world.rma.id, "state": "quarantine", "serial_status": "not_tracked", "paid_price": Decimal(i % 900),
         "received_at": now, "state_changed_at": now - timedelta(minutes=i), "version": 1}
        for i in range(n)])
    ids = list(session.scalars(select(ReturnUnit.id).order_by(ReturnUnit.id)))
    session.execute(insert(RefundTrigger), [
        {"unit_id": uid, "rma_id": world.rma.id, "warehouse_id": wid, "status": "pending_approval", "currency": "USD",
         "paid_amount": Decimal(500), "amount": Decimal(i % 500), "hold_reasons": ["test"], "inspected_at": now,
         "pending_since": now - timedelta(minutes=i), "created_at": now, "version": 1}
        for i, uid in enumerate(ids)])
    session.execute(insert(ReturnException), [
        {"type": "wrong_item", "status": "open", "warehouse_id": wid, "rma_id": world.rma.id, "unit_id": ids[i],
         "product_id": pid, "quantity": 1, "value": Decimal(i % 300), "details": {}, "opened_at": now, "version": 1}
        for i in range(10_000)])
    session.commit()
    session.execute(text("ANALYZE"))
    session.commit()
    sup = world.actor("super")
    cases = {
        "counts": lambda: dq.queue_counts(session, sup, 48),
        "quarantine": lambda: dq.quarantine_queue(session, sup, dq.QueueQuery(), 48),
        "quarantine by value": lambda: dq.quarantine_queue(session, sup, dq.QueueQuery(sort="value"), 48),
        "quarantine filtered": lambda: dq.quarantine_queue(session, sup, dq.QueueQuery(category="electronics", channel="web",
                                                                                       reason="defective"), 48),
        "quarantine page 500": lambda: dq.quarantine_queue(session, sup, dq.QueueQuery(page=500), 48),
        "refunds": lambda: dq.refund_queue(session, sup, dq.QueueQuery(), 48),
        "refunds by value": lambda: dq.refund_queue(session, sup, dq.QueueQuery(sort="value", warehouse_id=wid), 48),
        "exceptions": lambda: dq.exception_queue(session, sup, "wrong_item", dq.QueueQuery(), 48),
    }
    timings = {}
    for name, run in cases.items():
        run()  # warm the plan cache
        started = time.perf_counter()
        result = run()
        timings[name] = time.perf_counter() - started
        session.rollback()
        if hasattr(result, "total") and name != "quarantine filtered":
            assert result.total in (n, 10_000) and len(result.rows) == 50
    print("queue timings (s):", {k: round(v, 3) for k, v in timings.items()})
    assert max(timings.values()) < 1.5, timings
