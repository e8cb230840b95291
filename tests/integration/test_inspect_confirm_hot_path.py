"""Inspection and the confirmed disposition on plain rows (app.disposition.services.confirm_disposition,
app.inspection.services.record_inspection): the rows the entity path writes, in the order readers
expect, one effect under retries sent at once, a few statements."""
from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select

from app.catalog.services import location_of_type
from app.db import unit_of_work
from app.rows import update_row, write
from app.disposition.domain import DISPOSITION_LOCATION_TYPE, DISPOSITION_STATE
from app.disposition.models import DispositionRule
from app.disposition.services import confirm_disposition, preview
from app.errors import Conflict, StaleVersion
from app.inspection.models import Inspection
from app.ledger.models import AuditEntry, Balance, LedgerEntry, OutboxEvent, ReturnUnit
from app.ledger.services import apply_transition, balance_table, ledger_sums, lock_unit
from app.orders.models import Rma
from app.inspection.services import record_inspection
from app.refunds.domain import hold_reasons
from app.refunds.models import RefundEvent, RefundTrigger
from app.refunds.services import RefundPolicy, refund_for_unit, settle_after_inspection
from tests.helpers import counts, new_key, receive_unit, statements_sent
from tests.integration.test_concurrency import race, racing_sessions  # noqa: F401 - a fixture

POLICY = RefundPolicy(Decimal("250.00"))
RANDOM = {"id", "at", "created_at", "lpn", "unit_id", "refund_id", "aggregate_id", "entity_id", "state_changed_at",
          "inspected_at", "received_at", "released_at", "pending_since", "idempotency_key"}


def _columns(row) -> dict:  # type: ignore[no-untyped-def]
    return {c.key: getattr(row, c.key) for c in row.__table__.columns if c.key not in RANDOM}


def _masked(values: dict) -> dict:  # type: ignore[type-arg]
    """A payload or details with the values that differ between two units (ids, LPNs, times) masked."""
    return {k: "*" if k in RANDOM or k in ("inspection_id", "photo_id") else v for k, v in values.items()}


def _written(session, unit_id: int) -> dict:  # type: ignore[no-untyped-def]
    """What a disposition wrote about one unit, outbox and audit in the order of their ids."""
    refund = session.scalars(select(RefundTrigger).where(RefundTrigger.unit_id == unit_id)).one()
    unit_or_refund = lambda model, kind, ident: (getattr(model, f"{kind}_type") == "unit") & (getattr(model, f"{kind}_id") == unit_id) | (  # noqa: E731
        (getattr(model, f"{kind}_type") == "refund") & (getattr(model, f"{kind}_id") == refund.id))
    out = {
        "unit": _columns(session.get(ReturnUnit, unit_id)),
        "ledger": [_columns(e) for e in session.scalars(select(LedgerEntry).where(LedgerEntry.unit_id == unit_id)
                                                        .order_by(LedgerEntry.id))],
        "refund": _columns(refund),
        "refund_events": [_columns(e) for e in session.scalars(select(RefundEvent).where(RefundEvent.refund_id == refund.id)
                                                               .order_by(RefundEvent.id))],
        "outbox": [(e.type, _masked(e.payload)) for e in session.scalars(
            select(OutboxEvent).where(unit_or_refund(OutboxEvent, "aggregate", None)).order_by(OutboxEvent.id))],
        "audit": [(a.action, a.actor_name, a.reason, _masked(a.details)) for a in session.scalars(
            select(AuditEntry).where(unit_or_refund(AuditEntry, "entity", None)).order_by(AuditEntry.id))],
    }
    session.rollback()
    return out


def _inspected(session, world, worker, *, product="shirt", grade="A", packaging="sealed",  # type: ignore[no-untyped-def]
               on_return=False, with_refund=True) -> int:
    """A unit received and inspected; `on_return`: on the world's return, its line's reason and channel known."""
    unit = receive_unit(session, world, product, worker, with_refund=with_refund)
    if on_return:
        line = next(line for line in world.rma.lines if line.product_id == world.products[product].id)
        with unit_of_work(session):
            row = session.get(ReturnUnit, unit.id)
            row.rma_id, row.rma_line_id = world.rma.id, line.id
    record_inspection(session, worker, unit_id=unit.id, grade=grade, packaging=packaging, answers={}, notes=None,
                      idempotency_key=new_key())
    return unit.id


def _by_the_entity_path(session, actor, unit_id: int) -> None:  # type: ignore[no-untyped-def]
    """The disposition as the ledger and refund services' entity functions write it (the desk's and
    the exception queue's way): the reference for confirm_disposition's plain rows."""
    with unit_of_work(session):
        unit = lock_unit(session, unit_id)
        decision = preview(session, actor, unit)
        location = location_of_type(session, unit.warehouse_id, DISPOSITION_LOCATION_TYPE[decision.disposition])
        refund = refund_for_unit(session, unit.id, lock=True)
        unit.disposition, unit.decision_rule = decision.disposition, decision.explanation
        apply_transition(session, actor, unit, DISPOSITION_STATE[decision.disposition], reason=decision.explanation,
                         to_location=location, action="unit.disposed",
                         details={"disposition": decision.disposition, "rule": decision.explanation, "overridden": False})
        from app.disposition.domain import refund_amount

        amount = refund_amount(refund.paid_amount, decision.refund_action, restocking_fee_pct=decision.restocking_fee_pct,
                               grade=unit.grade)
        hold = hold_reasons(amount=amount, threshold=POLICY.approval_threshold, refund_action=decision.refund_action,
                            serial_mismatch=False, fraud_flag=False, overridden=False)
        settle_after_inspection(session, actor, refund, amount=amount, refund_action=decision.refund_action, hold=hold,
                                inspected_by_id=unit.inspected_by_id, reason=decision.explanation)


@pytest.mark.parametrize("product, on_return, want", [("shirt", False, "released"), ("phone", False, "pending_approval"),
                                                      ("shirt", True, "released"), ("phone", True, "pending_approval")])
def test_a_confirm_writes_what_the_entity_path_writes_in_order(session, world, product, on_return, want):
    """Same columns, payloads and details, the same events in the same order: a refund approved
    before it is released (PostgreSQL runs a statement's CTEs last first; the outbox rows share one INSERT)."""
    w = world.actor("worker")
    plain, reference = (_inspected(session, world, w, product=product, on_return=on_return) for _ in range(2))
    done = confirm_disposition(session, w, unit_id=plain, idempotency_key=new_key(), policy=POLICY)
    _by_the_entity_path(session, w, reference)
    got, ref = _written(session, plain), _written(session, reference)
    assert done["refund_status"] == got["refund"]["status"] == want
    assert got == ref
    if want == "released":
        assert [o[0] for o in got["outbox"]][-3:] == ["unit.state_changed", "refund.approved", "refund.released"]
        assert [e["to_status"] for e in got["refund_events"]][-2:] == ["approved", "released"]
    assert (done["version"], done["state"]) == (got["unit"]["version"], got["unit"]["state"])
    assert ledger_sums(session) == balance_table(session)


def test_the_rules_see_the_customers_history(session, world):
    """The facts' customer history comes from the unit's own return (a correlated subquery two levels down)."""
    w = world.actor("worker")
    session.add(DispositionRule(position=1, name="serial returner", conditions={"customer_return_count_gte": 3},
                                disposition="liquidate", refund_action="none"))
    session.commit()
    first = confirm_disposition(session, w, unit_id=_inspected(session, world, w), idempotency_key=new_key(), policy=POLICY)
    assert first["disposition"] == "quarantine"  # one return so far: no rule matches
    for n in range(3):
        session.add(Rma(number=f"RMA-H{n}", order_id=world.rma.order_id, merchant_id=world.merchant.id,
                        channel_id=world.rma.channel_id, warehouse_id=world.wh.id, customer_id=world.customer.id,
                        status="closed"))
    session.commit()
    unit_id = _inspected(session, world, w)
    with unit_of_work(session):
        session.get(ReturnUnit, unit_id).rma_id = world.rma.id
    second = confirm_disposition(session, w, unit_id=unit_id, idempotency_key=new_key(), policy=POLICY)
    assert second["disposition"] == "liquidate"
    assert "3+ prior returns" in second["explanation"]


@pytest.mark.pg_only
def test_an_inspection_is_two_statements_and_a_confirm_four(session, world):
    """Inspection: the lock (with the checklist and the key's record), the write. Confirm: the lock
    with the rules' facts, the rules, the refund's lock with the key's record and the location, the write."""
    w = world.actor("worker")
    unit_id = receive_unit(session, world, "shirt", w).id
    inspect = statements_sent(session, lambda: record_inspection(
        session, w, unit_id=unit_id, grade="A", packaging="sealed", answers={"tags_attached": True}, notes=None,
        idempotency_key=new_key()))
    assert len(inspect) == 2, inspect
    confirm = statements_sent(session, lambda: confirm_disposition(session, w, unit_id=unit_id, idempotency_key=new_key(),
                                                               policy=POLICY))
    assert len(confirm) == 4, confirm
    assert "FOR UPDATE" in inspect[0] and "FOR UPDATE" in confirm[0] and "FOR UPDATE" in confirm[2]
    assert inspect[1].startswith("WITH") and confirm[3].startswith("WITH")


def test_an_update_of_a_missing_row_writes_nothing(session, world):
    """write's updates must each change their row: a balance that is not there (ledger and
    balances disagree) stops the whole write, the rows and updates beside it included."""
    from app.rows import insert_row
    from app.ledger.services import outbox_values

    unit_id = receive_unit(session, world, "shirt", world.actor("worker")).id
    before = counts(session)
    with pytest.raises(RuntimeError, match="balances row"):
        with unit_of_work(session):
            write(session, [
                insert_row(OutboxEvent, outbox_values("test.event", "unit", unit_id, {})),
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
    assert (done["refund_status"], done["refund_amount"]) == (None, None) and done["state"] == "available"
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
    assert sum(1 for r in results if not r["replayed"]) == 1
    assert len({tuple(sorted((k, str(v)) for k, v in r.items() if k != "replayed")) for r in results}) == 1
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
    assert sum(1 for r in results if not r["replayed"]) == 1
    assert len({r["inspection_id"] for r in results}) == 1
    after = counts(session)
    assert (after["audit"] - before["audit"], after["idempotency"] - before["idempotency"]) == (1, 1)
    assert len(session.scalars(select(Inspection).where(Inspection.unit_id == unit_id)).all()) == 1
    assert session.get(ReturnUnit, unit_id).version == 2
