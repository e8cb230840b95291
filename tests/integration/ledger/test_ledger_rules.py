"""The ledger's and the refund lifecycle's rules, each proven against the service and the database."""
from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from app.auth.models import User
from app.db import unit_of_work
from app.errors import Conflict, FourEyesViolation, IllegalTransition, NotPermitted
from app.ledger.models import ReturnUnit
from app.ledger.services import balance_table, ledger_sums, lock_unit, transition_unit
from app.refunds.domain import hold_reasons
from app.refunds.models import RefundTrigger
from app.refunds.services import RefundPolicy, acknowledge_refund, approve_refund, create_refund_trigger, reject_refund
from app.refunds.writer import settle_refund
from app.rows import write
from tests.helpers import (INTEGRATION, counts, inspect_and_dispose, lock_refund, move_direct, new_key, receive_unit,
                           refund_of)

# product.md "Canonical unit states", written out independently of app.ledger.domain.
FLOOR = {"worker", "supervisor", "partner"}
SUP = {"supervisor"}
SPEC_EDGES: dict[str, dict[str, set[str]]] = {
    "received": {s: FLOOR for s in ("available", "quarantine", "refurbish", "vendor_return", "liquidation", "disposed")},
    "quarantine": {s: SUP for s in ("available", "refurbish", "vendor_return", "liquidation", "disposed")},
    "refurbish": {s: FLOOR for s in ("available", "liquidation", "disposed", "quarantine")},
    "available": {"quarantine": SUP},
    "vendor_return": {},
    "liquidation": {},
    "disposed": {},
}
STATES = list(SPEC_EDGES)
# How to get a unit into each state from "received" (supervisor moves).
PATHS = {"received": [], "quarantine": ["quarantine"], "refurbish": ["refurbish"], "available": ["available"],
         "vendor_return": ["vendor_return"], "liquidation": ["liquidation"], "disposed": ["disposed"]}
ACTORS = {"worker": "worker", "supervisor": "super", "partner": "partner", "admin": "admin"}


# ---- append-only tables ---------------------------------------------------------------------------

def test_history_tables_are_append_only(session, world, engine):
    receive_unit(session, world, "shirt", world.actor("worker"))  # a row in each history table
    for table in ("ledger_entries", "audit_entries", "refund_events"):
        for sql in (f"UPDATE {table} SET reason = 'rewritten'" if table != "refund_events"
                    else f"UPDATE {table} SET amount = 0", f"UPDATE {table} SET id = id", f"DELETE FROM {table}"):
            before = counts(session)
            with pytest.raises(DBAPIError, match="append-only"):
                with engine.begin() as conn:
                    conn.execute(text(sql))
            assert counts(session) == before, sql
    # INSERT is still allowed: appending is the only way to write history.
    receive_unit(session, world, "shirt", world.actor("worker"))


# ---- the state guard ------------------------------------------------------------------------------

def test_state_changes_only_through_the_ledger_writer(session, world):
    """A unit's state is written only by app.ledger.writer.move_unit: setting it on the entity is refused."""
    unit = receive_unit(session, world, "shirt", world.actor("worker"))
    with pytest.raises(RuntimeError, match=r"ReturnUnit\.state changes only through"):
        unit.state = "available"
    with pytest.raises(RuntimeError, match=r"ReturnUnit\.state changes only through"):
        ReturnUnit(lpn="LPX", product_id=unit.product_id, warehouse_id=unit.warehouse_id, state="available")
    session.rollback()
    assert session.get(ReturnUnit, unit.id).state == "received"


# ---- the edge x role matrix -----------------------------------------------------------------------

def _unit_in(session, world, state):  # type: ignore[no-untyped-def]
    # At the 3PL warehouse, for a merchant its org serves: every role (partner included) can see it.
    unit = receive_unit(session, world, "shirt", world.actor("super"), warehouse=world.wh3pl)
    for step in PATHS[state]:
        move_direct(session, world.actor("super"), unit.id, step)
    return unit


@pytest.mark.parametrize("from_state", STATES)
def test_edge_role_matrix(session, world, from_state):
    unit = _unit_in(session, world, from_state)
    for to_state in STATES:
        for role, username in ACTORS.items():
            allowed = role in SPEC_EDGES[from_state].get(to_state, set())
            before = counts(session)
            call = lambda: transition_unit(session, world.actor(username), unit_id=unit.id, to_state=to_state,  # noqa: E731
                                           reason="matrix", idempotency_key=new_key())
            if allowed:
                result = call()
                assert result.state == to_state
                unit = _unit_in(session, world, from_state)
                continue
            expected = IllegalTransition if to_state not in SPEC_EDGES[from_state] else NotPermitted
            with pytest.raises(expected) as err:
                call()
            assert err.value.message
            assert counts(session) == before, (from_state, to_state, role)
            if from_state in ("vendor_return", "liquidation", "disposed"):
                assert "final" in err.value.message
    session.rollback()
    assert ledger_sums(session) == balance_table(session)


def test_quarantine_release_needs_a_supervisor(session, world):
    unit = _unit_in(session, world, "quarantine")
    with pytest.raises(NotPermitted, match="supervisor"):
        transition_unit(session, world.actor("worker"), unit_id=unit.id, to_state="available", reason="looks fine",
                        idempotency_key=new_key())
    res = transition_unit(session, world.actor("super"), unit_id=unit.id, to_state="available", reason="released",
                          idempotency_key=new_key())
    assert res.state == "available"


# ---- one refund trigger per unit ------------------------------------------------------------------

def test_second_refund_trigger_refused_by_database(session, world, engine):
    unit = receive_unit(session, world, "shirt", world.actor("worker"))
    with pytest.raises(IntegrityError):
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO refund_triggers (unit_id, warehouse_id, status, currency, paid_amount, amount,"
                              " hold_reasons, created_at, version) VALUES (:u, :w, 'awaiting_inspection', 'USD', 1, 1,"
                              " '[]', CURRENT_TIMESTAMP, 1)"), {"u": unit.id, "w": unit.warehouse_id})
    assert len(session.scalars(select(RefundTrigger).where(RefundTrigger.unit_id == unit.id)).all()) == 1


def test_second_refund_trigger_refused_by_service(session, world):
    unit = receive_unit(session, world, "shirt", world.actor("worker"))
    before = counts(session)
    with pytest.raises(Conflict, match="already has a refund trigger"):
        create_refund_trigger(session, world.actor("worker"), unit_id=unit.id, idempotency_key=new_key())
    assert counts(session) == before


def test_create_refund_trigger_for_a_unit_without_one(session, world):
    unit = receive_unit(session, world, "shirt", world.actor("worker"), with_refund=False)
    res = create_refund_trigger(session, world.actor("worker"), unit_id=unit.id, idempotency_key=new_key())
    assert res.status == "awaiting_inspection"


# ---- never released before inspection ------------------------------------------------------------

def test_settle_refused_while_unit_not_inspected(session, world):
    """The refund writer refuses to settle (and so release) the refund of a unit nobody inspected."""
    unit = receive_unit(session, world, "shirt", world.actor("worker"))
    before = counts(session)
    with pytest.raises(Conflict, match="inspected"):
        with unit_of_work(session):
            locked = lock_unit(session, unit.id)
            refund = lock_refund(session, locked.id)
            _after, rows = settle_refund(world.actor("worker"), refund, amount=Decimal("20.00"), refund_action="full",
                                         hold=[], unit_inspected_at=locked.inspected_at,
                                         inspected_by_id=world.users["worker"].id, reason="no inspection")
            write(session, rows)
    assert counts(session) == before
    assert refund_of(session, unit.id).status == "awaiting_inspection"


def test_approve_refused_before_inspection(session, world):
    unit = receive_unit(session, world, "shirt", world.actor("worker"))
    refund = refund_of(session, unit.id)
    before = counts(session)
    with pytest.raises(Conflict, match="cannot be decided yet"):
        approve_refund(session, world.actor("super"), refund_id=refund.id, reason="pay it", idempotency_key=new_key())
    with pytest.raises(IllegalTransition):
        acknowledge_refund(session, INTEGRATION, refund_id=refund.id, payment_reference="PAY-0001", idempotency_key=new_key())
    assert counts(session) == before


def test_release_before_inspection_refused_by_database(session, world, engine):
    unit = receive_unit(session, world, "shirt", world.actor("worker"))
    refund_id = refund_of(session, unit.id).id
    session.rollback()
    for status in ("released", "acknowledged"):
        with pytest.raises(IntegrityError):
            with engine.begin() as conn:
                conn.execute(text("UPDATE refund_triggers SET status = :s WHERE id = :i"), {"s": status, "i": refund_id})
    assert refund_of(session, unit.id).status == "awaiting_inspection"


# ---- thresholds and four eyes ---------------------------------------------------------------------

def test_threshold_holds_for_approval(session, world):
    policy = RefundPolicy()
    assert hold_reasons(amount=Decimal("250.00"), threshold=policy.approval_threshold, refund_action="full",
                        serial_mismatch=False, fraud_flag=False, overridden=False) == []
    at = receive_unit(session, world, "phone", world.actor("worker"), paid_price="649.00")
    over = receive_unit(session, world, "phone", world.actor("worker"), paid_price="649.00")
    r_at = inspect_and_dispose(session, world.actor("worker"), at.id, "available", amount=policy.approval_threshold)
    r_over = inspect_and_dispose(session, world.actor("worker"), over.id, "available", amount=Decimal("250.01"))
    assert refund_of(session, at.id).status == "released"
    held = refund_of(session, over.id)
    assert held.status == "pending_approval" and held.pending_since is not None
    assert any("threshold" in r for r in held.hold_reasons)
    assert r_at.id != r_over.id


def _super3(session):  # type: ignore[no-untyped-def]
    u = User(username="super3", name="Super3", role="supervisor")
    u.set_password("password123")
    session.add(u)
    session.commit()
    return u.actor()


def test_four_eyes(session, world):
    sup, sup2, sup3 = world.actor("super"), world.actor("super2"), _super3(session)
    # Inspected by super, overridden by super2: neither may approve; a third supervisor may.
    unit = receive_unit(session, world, "shirt", world.actor("worker"))
    inspect_and_dispose(session, sup, unit.id, "refurbish", amount="20.00", override_by=sup2)
    refund = refund_of(session, unit.id)
    assert refund.status == "pending_approval" and refund.inspected_by_id == sup.id and refund.override_by_id == sup2.id
    before = counts(session)
    for who, words in ((sup, "inspected"), (sup2, "overrode")):
        for call in (approve_refund, reject_refund):
            with pytest.raises(FourEyesViolation, match=words):
                call(session, who, refund_id=refund.id, reason="mine", idempotency_key=new_key())
    for role in ("worker", "partner", "admin"):
        with pytest.raises(NotPermitted) as err:
            approve_refund(session, world.actor(role), refund_id=refund.id, reason="mine", idempotency_key=new_key())
        assert type(err.value) is NotPermitted
    assert counts(session) == before
    res = approve_refund(session, sup3, refund_id=refund.id, reason="checked", idempotency_key=new_key())
    assert res.status == "released"
    # Inspected by super only: super2 decides.
    other = receive_unit(session, world, "phone", world.actor("worker"), paid_price="649.00")
    inspect_and_dispose(session, sup, other.id, "available", amount="649.00")
    refund2 = refund_of(session, other.id)
    with pytest.raises(FourEyesViolation):
        approve_refund(session, sup, refund_id=refund2.id, reason="x", idempotency_key=new_key())
    assert reject_refund(session, sup2, refund_id=refund2.id, reason="worn", idempotency_key=new_key()).status == "rejected"
    assert refund_of(session, other.id).amount == Decimal("0.00")


def test_acknowledge_sees_the_latest_status(session_factory, world, session):
    """A finance session that read the refund earlier must not act on its stale copy."""
    unit = receive_unit(session, world, "phone", world.actor("worker"), paid_price="649.00")
    inspect_and_dispose(session, world.actor("super"), unit.id, "available", amount="649.00")
    finance = session_factory()
    try:
        early = refund_of(finance, unit.id)
        assert early.status == "pending_approval"
        finance.commit()  # expire_on_commit=False: the copy stays in finance's identity map
        approve_refund(session, world.actor("super2"), refund_id=early.id, reason="ok", idempotency_key=new_key())
        res = acknowledge_refund(finance, INTEGRATION, refund_id=early.id, payment_reference="PAY-0001", idempotency_key=new_key())
        assert res.status == "acknowledged"
    finally:
        finance.close()
    assert refund_of(session, unit.id).status == "acknowledged"


def test_a_move_out_of_a_balance_that_is_not_there_is_a_loud_bug_and_writes_nothing(session, world):
    """A from-state balance row that is missing means the ledger and the balances disagree: a bug,
    raised as one (not shown as a user's mistake), and the move writes nothing."""
    from app.ledger.models import Balance

    unit = receive_unit(session, world, "shirt", world.actor("worker"))
    session.execute(Balance.__table__.delete().where(Balance.product_id == unit.product_id,
                                                     Balance.state == "received"))
    session.commit()
    before = counts(session)
    with pytest.raises(RuntimeError, match=r"balances row .*'state': 'received'.* is missing"):
        transition_unit(session, world.actor("worker"), unit_id=unit.id, to_state="available", reason="grade A",
                        idempotency_key=new_key())
    session.rollback()
    assert counts(session) == before
