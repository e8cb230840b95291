"""Inspection and the confirmed disposition on plain rows (app.disposition.services.confirm_disposition,
app.inspection.services.record_inspection): the rows a confirm writes, in the order readers
expect, one effect under retries sent at once, a few statements."""
from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest
from sqlalchemy import select

from app.catalog.models import Location
from app.db import unit_of_work
from app.rows import update_row, write
from app.disposition.models import DispositionRule
from app.disposition.services import confirm_disposition
from app.errors import Conflict, StaleVersion
from app.inspection.models import Inspection
from app.ledger.models import AuditEntry, Balance, LedgerEntry, OutboxEvent, ReturnUnit
from app.ledger.services import balance_table, ledger_sums
from app.ledger.writer import event_row
from app.orders.models import Rma
from app.inspection.services import record_inspection
from app.receiving.services import open_parcel, scan_item
from app.refunds.models import RefundEvent, RefundTrigger
from app.refunds.services import RefundPolicy
from tests.helpers import counts, new_key, receive_unit
from tests.integration.ledger.test_concurrency import race, racing_sessions  # noqa: F401 - a fixture


POLICY = RefundPolicy(Decimal("250.00"))


SERIALS = {"phone": "SN-PHONE-0001"}  # what the world's order shipped


def _written(session, unit_id: int) -> dict:  # type: ignore[no-untyped-def]
    """What was written about one unit and its refund trigger: ledger, refund events, outbox and
    audit each in the order of their ids."""
    refund = session.scalars(select(RefundTrigger).where(RefundTrigger.unit_id == unit_id)
                             .execution_options(populate_existing=True)).one()
    about = lambda model, kind: ((getattr(model, f"{kind}_type") == "unit") & (getattr(model, f"{kind}_id") == unit_id)) | (  # noqa: E731
        (getattr(model, f"{kind}_type") == "refund") & (getattr(model, f"{kind}_id") == refund.id))
    out = {
        "unit": session.get(ReturnUnit, unit_id, populate_existing=True),
        "ledger": session.scalars(select(LedgerEntry).where(LedgerEntry.unit_id == unit_id).order_by(LedgerEntry.id)).all(),
        "refund": refund,
        "refund_events": session.scalars(select(RefundEvent).where(RefundEvent.refund_id == refund.id)
                                         .order_by(RefundEvent.id)).all(),
        "outbox": session.scalars(select(OutboxEvent).where(about(OutboxEvent, "aggregate")).order_by(OutboxEvent.id)).all(),
        "audit": session.scalars(select(AuditEntry).where(about(AuditEntry, "entity")).order_by(AuditEntry.id)).all(),
    }
    session.rollback()
    return out


def _inspected(session, world, worker, *, product="shirt", grade="A", packaging="sealed",  # type: ignore[no-untyped-def]
               on_return=False, with_refund=True) -> int:
    """A unit received and inspected (record_inspection); `on_return`: scanned out of a parcel of
    the world's return (scan_item), so its line's reason, channel and price are known."""
    if on_return:
        parcel = open_parcel(session, worker, code="RMA-5001", warehouse_id=world.wh.id, idempotency_key=new_key())
        unit_id = scan_item(session, worker, parcel_id=parcel.parcel_id, product_id=world.products[product].id,
                            serial=SERIALS.get(product), idempotency_key=new_key()).unit_id
    else:
        unit_id = receive_unit(session, world, product, worker, with_refund=with_refund).id
    record_inspection(session, worker, unit_id=unit_id, grade=grade, packaging=packaging, answers={}, notes=None,
                      idempotency_key=new_key())
    return unit_id


# (product, on the return?) -> the default rules' disposition, the unit's state and location, the
# refund's status and amount (the price paid: the order line's on the return, else the product's value).


CONFIRMS = [
    ("shirt", False, ("restock", "available", "STOCK-01"), ("released", "25.00")),
    ("phone", False, ("restock", "available", "STOCK-01"), ("pending_approval", "699.00")),
    ("shirt", True, ("restock", "available", "STOCK-01"), ("released", "20.00")),
    ("phone", True, ("return_to_vendor", "vendor_return", "VENDOR_RETURN-01"), ("pending_approval", "649.00")),
]


@pytest.mark.parametrize("product, on_return, decided, settled", CONFIRMS)
def test_a_confirm_moves_the_unit_and_settles_its_refund_in_order(session, world, product, on_return, decided, settled):
    """One ledger row from received to the decided state and location, carrying the confirm's key;
    balances equal to the ledger; the refund settled (approved before released, or held over the
    threshold) with its events; the outbox and audit rows in the order readers expect (PostgreSQL
    runs a statement's CTEs last first: rows of one table share one INSERT to keep their order)."""
    w = world.actor("worker")
    unit_id = _inspected(session, world, w, product=product, on_return=on_return)
    before = _written(session, unit_id)
    dock = world.loc(world.wh, "dock").id
    paid = before["refund"].paid_amount
    key = new_key()
    done = confirm_disposition(session, w, unit_id=unit_id, idempotency_key=key, policy=POLICY)
    got = _written(session, unit_id)
    unit, refund, state = got["unit"], got["refund"], done.state
    place = session.get(Location, unit.location_id)
    session.rollback()

    # The unit: its new state, place and decision, its version stepped once more than the inspection's.
    want = settled[0]
    assert (done.disposition, state, done.location) == decided
    assert (done.refund_status, done.refund_amount) == (refund.status, str(refund.amount)) == settled
    assert (unit.state, unit.disposition, unit.decision_rule) == (state, done.disposition, done.explanation)
    assert (done.version, unit.version) == (3, 3)
    assert place.warehouse_id == world.wh.id and place.code == done.location and place.id != dock
    assert unit.grade == "A" and unit.inspected_by_id == w.id

    # One ledger row, with the confirm's idempotency key.
    assert got["ledger"][:-1] == before["ledger"] and len(got["ledger"]) == 2
    move = got["ledger"][-1]
    assert (move.from_state, move.to_state, move.from_location_id, move.to_location_id) == ("received", state, dock, place.id)
    assert (move.actor_id, move.actor_role, move.reason, move.idempotency_key) == (w.id, "worker", done.explanation, key)
    assert (move.product_id, move.warehouse_id) == (unit.product_id, world.wh.id)
    assert ledger_sums(session) == balance_table(session)
    assert balance_table(session)[(unit.product_id, world.wh.id, state)] == 1
    assert (unit.product_id, world.wh.id, "received") not in balance_table(session)

    # The refund, settled after the inspection: released at once, or held over the threshold.
    assert refund.inspected_at is not None and refund.inspected_by_id == w.id and refund.override_by_id is None
    assert str(refund.amount) == done.refund_amount and refund.amount <= paid
    statuses = [(e.from_status, e.to_status) for e in got["refund_events"]]
    if want == "released":
        assert refund.hold_reasons == [] and refund.released_at is not None
        assert statuses == [(None, "awaiting_inspection"), ("awaiting_inspection", "approved"), ("approved", "released")]
        assert [e.reason for e in got["refund_events"][1:]] == [done.explanation] * 2
        refund_steps = ["refund.approved", "refund.released"]
    else:
        assert any("threshold" in r for r in refund.hold_reasons) and refund.pending_since is not None
        assert refund.released_at is None
        assert statuses == [(None, "awaiting_inspection"), ("awaiting_inspection", "pending_approval")]
        assert got["refund_events"][1].reason == "; ".join(refund.hold_reasons)
        refund_steps = ["refund.pending_approval"]
    assert all(e.amount == refund.amount and e.actor_id == w.id for e in got["refund_events"][1:])

    # The outbox events and audit entries, the new ones after the old, in order.
    assert got["outbox"][:len(before["outbox"])] == before["outbox"]
    new_events = got["outbox"][len(before["outbox"]):]
    assert [e.type for e in new_events] == ["unit.state_changed", *refund_steps]
    assert new_events[0].payload == {"unit_id": unit_id, "lpn": unit.lpn, "product_id": unit.product_id,
                                     "warehouse_id": world.wh.id, "from_state": "received", "to_state": state,
                                     "location_id": place.id, "reason": done.explanation}
    assert [e.payload["status"] for e in new_events[1:]] == [s.split(".")[1] for s in refund_steps]
    assert all(e.payload["amount"] == done.refund_amount for e in new_events[1:])
    assert [a.action for a in before["audit"]] == ["unit.received", "refund.opened", "unit.inspected"]
    assert got["audit"][:3] == before["audit"]
    assert [a.action for a in got["audit"][3:]] == ["unit.disposed", *refund_steps]
    disposed = got["audit"][3]
    assert (disposed.actor_id, disposed.actor_name, disposed.reason) == (w.id, w.name, done.explanation)
    assert disposed.details == {"from_state": "received", "to_state": state, "disposition": done.disposition,
                                "rule": done.explanation, "overridden": False}


def test_the_rules_see_the_customers_history(session, world):
    """The facts' customer history comes from the unit's own return (a correlated subquery two levels down)."""
    w = world.actor("worker")
    session.add(DispositionRule(position=1, name="serial returner", conditions={"customer_return_count_gte": 3},
                                disposition="liquidate", refund_action="none"))
    session.commit()
    first = confirm_disposition(session, w, unit_id=_inspected(session, world, w), idempotency_key=new_key(), policy=POLICY)
    assert first.disposition == "quarantine"  # one return so far: no rule matches
    for n in range(3):
        session.add(Rma(number=f"RMA-H{n}", order_id=world.rma.order_id, merchant_id=world.merchant.id,
                        channel_id=world.rma.channel_id, warehouse_id=world.wh.id, customer_id=world.customer.id,
                        status="closed"))
    session.commit()
    unit_id = _inspected(session, world, w, on_return=True)  # scanned out of a parcel of the customer's return
    second = confirm_disposition(session, w, unit_id=unit_id, idempotency_key=new_key(), policy=POLICY)
    assert second.disposition == "liquidate"
    assert "3+ prior returns" in second.explanation


def test_an_update_of_a_missing_row_writes_nothing(session, world):
    """write's updates must each change their row: a balance that is not there (ledger and
    balances disagree) stops the whole write, the rows and updates beside it included."""
    unit_id = receive_unit(session, world, "shirt", world.actor("worker")).id
    before = counts(session)
    with pytest.raises(RuntimeError, match="balances row"):
        with unit_of_work(session):
            write(session, [
                event_row("test.event", "unit", unit_id, {}),
                update_row(ReturnUnit, {"id": unit_id}, {"grade": "D"}, bump=("version",)),
                update_row(Balance, {"product_id": world.products["shirt"].id, "warehouse_id": world.wh.id,
                                     "state": "liquidation"}, {}, add=("quantity", -1))])
    assert counts(session) == before
    assert (session.get(ReturnUnit, unit_id).grade, session.get(ReturnUnit, unit_id).version) == (None, 1)


def test_a_unit_without_a_refund_trigger_is_disposed_and_nothing_is_refunded(session, world):
    w = world.actor("worker")
    unit_id = _inspected(session, world, w, with_refund=False)
    before = counts(session)
    done = confirm_disposition(session, w, unit_id=unit_id, idempotency_key=new_key(), policy=POLICY)
    assert (done.refund_status, done.refund_amount) == (None, None) and done.state == "available"
    after = counts(session)
    assert (after["ledger"] - before["ledger"], after["refund_events"] - before["refund_events"]) == (1, 0)


def test_refusals_write_nothing(session, world):
    """An uninspected unit, a warehouse without the location the decision needs, a unit outside a
    partner's scope: a clear refusal each, nothing written."""
    from app.catalog.models import Location
    from app.errors import NotFound, ValidationFailed

    w = world.actor("worker")
    uninspected = receive_unit(session, world, "shirt", w).id
    inspected = _inspected(session, world, w)
    before = counts(session)
    with pytest.raises(ValidationFailed, match="Inspect unit"):
        confirm_disposition(session, w, unit_id=uninspected, idempotency_key=new_key(), policy=POLICY)
    for actor_name, unit_id in (("partner", inspected), ("outsider", inspected)):
        with pytest.raises(NotFound):
            confirm_disposition(session, world.actor(actor_name), unit_id=unit_id, idempotency_key=new_key(), policy=POLICY)
        with pytest.raises(NotFound):
            record_inspection(session, world.actor(actor_name), unit_id=unit_id, grade="D", packaging="damaged",
                              answers={}, notes=None, idempotency_key=new_key())
    with unit_of_work(session):
        for loc in session.scalars(select(Location).where(Location.warehouse_id == world.wh.id, Location.type == "stock")):
            loc.type = "inspection"
    with pytest.raises(ValidationFailed, match="no stock location"):
        confirm_disposition(session, w, unit_id=inspected, idempotency_key=new_key(), policy=POLICY)
    assert counts(session) == before
    assert session.get(ReturnUnit, inspected).grade == "A"


@pytest.mark.pg_only
def test_the_same_confirm_sent_ten_times_at_once_has_one_effect(session, world, racing_sessions):  # noqa: F811
    """A double tap on flaky Wi-Fi: ten requests with one key, at once. One moves the unit; the nine
    that waited for its lock read its record afterwards and replay it."""
    w = world.actor("worker")
    unit_id = _inspected(session, world, w)
    key = new_key("confirm")
    before = counts(session)
    outcomes = race(racing_sessions, 10, lambda s, i: confirm_disposition(s, w, unit_id=unit_id, idempotency_key=key,
                                                                          policy=POLICY, expected_version=2))
    assert all(kind == "ok" for kind, _ in outcomes), outcomes
    results = [r for _, r in outcomes]
    assert sum(1 for r in results if not r.replayed) == 1
    assert len({replace(r, replayed=False) for r in results}) == 1
    after = counts(session)
    for table, n in (("ledger", 1), ("refund_events", 2), ("outbox", 3), ("audit", 3), ("idempotency", 1)):
        assert after[table] - before[table] == n, table
    assert ledger_sums(session) == balance_table(session)


@pytest.mark.pg_only
def test_ten_confirms_of_one_unit_with_their_own_keys_move_it_once(session, world, racing_sessions):  # noqa: F811
    w = world.actor("worker")
    unit_id = _inspected(session, world, w)
    outcomes = race(racing_sessions, 10, lambda s, i: confirm_disposition(
        s, w, unit_id=unit_id, idempotency_key=new_key(f"c{i}"), policy=POLICY, expected_version=2))
    wins = [r for kind, r in outcomes if kind == "ok"]
    errors = [e for kind, e in outcomes if kind == "err"]
    assert len(wins) == 1 and len(errors) == 9
    assert all(isinstance(e, (StaleVersion, Conflict)) for e in errors), errors
    assert len(session.scalars(select(LedgerEntry.id).where(LedgerEntry.unit_id == unit_id,
                                                             LedgerEntry.from_state == "received")).all()) == 1
    assert len(session.scalars(select(RefundEvent).join(RefundTrigger, RefundTrigger.id == RefundEvent.refund_id)
                               .where(RefundTrigger.unit_id == unit_id)).all()) == 3  # opened, approved, released
    assert ledger_sums(session) == balance_table(session)


@pytest.mark.pg_only
def test_the_same_inspection_sent_ten_times_at_once_has_one_effect(session, world, racing_sessions):  # noqa: F811
    """The lock and the key's record are one statement: attempts that waited for the lock miss the
    winner's record, and their write fails on its key, which replays the winner."""
    w = world.actor("worker")
    unit_id = receive_unit(session, world, "shirt", w).id
    key = new_key("inspect")
    before = counts(session)
    outcomes = race(racing_sessions, 10, lambda s, i: record_inspection(
        s, w, unit_id=unit_id, grade="B", packaging="opened", answers={"tags_attached": True}, notes="loose thread",
        idempotency_key=key))
    assert all(kind == "ok" for kind, _ in outcomes), outcomes
    results = [r for _, r in outcomes]
    assert sum(1 for r in results if not r.replayed) == 1
    assert len({r.inspection_id for r in results}) == 1
    after = counts(session)
    assert (after["audit"] - before["audit"], after["idempotency"] - before["idempotency"]) == (1, 1)
    assert len(session.scalars(select(Inspection).where(Inspection.unit_id == unit_id)).all()) == 1
    assert session.get(ReturnUnit, unit_id).version == 2
