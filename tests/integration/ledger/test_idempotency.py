"""Idempotency keys: a replayed mutation has one effect and returns the first result."""
from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import func, select

from app.errors import IdempotencyKeyReused, IllegalTransition, NotPermitted, ValidationFailed
from app.ledger.models import IdempotencyRecord, LedgerEntry
from app.ledger.services import UnitMoved, balance_table, ledger_sums, transition_unit
from app.refunds.models import RefundEvent
from app.refunds.services import RefundStatus, acknowledge_refund, approve_refund, create_refund_trigger
from tests.helpers import INTEGRATION, counts, inspect_and_dispose, new_key, receive_unit, refund_of


def _strip(result):  # type: ignore[no-untyped-def]
    return replace(result, replayed=False)


def test_same_key_ten_times_one_effect(session, world):
    unit = receive_unit(session, world, "shirt", world.actor("worker"))
    key = new_key()
    before = counts(session)
    results = [transition_unit(session, world.actor("worker"), unit_id=unit.id, to_state="available", reason="grade A",
                               idempotency_key=key) for _ in range(10)]
    after = counts(session)
    assert [r.replayed for r in results] == [False] + [True] * 9
    assert all(_strip(r) == _strip(results[0]) for r in results)
    for table, n in (("ledger", 1), ("audit", 1), ("outbox", 1), ("idempotency", 1)):
        assert after[table] - before[table] == n, table
    assert session.scalar(select(func.count()).select_from(LedgerEntry).where(LedgerEntry.idempotency_key == key)) == 1
    assert ledger_sums(session) == balance_table(session)


def test_same_key_different_params_refused_and_writes_nothing(session, world):
    unit = receive_unit(session, world, "shirt", world.actor("worker"))
    other = receive_unit(session, world, "shirt", world.actor("worker"))
    key = new_key()
    transition_unit(session, world.actor("worker"), unit_id=unit.id, to_state="refurbish", reason="scuffed",
                    idempotency_key=key)
    before = counts(session)
    variants = [
        dict(actor=world.actor("worker"), unit_id=other.id, to_state="refurbish", reason="scuffed"),
        dict(actor=world.actor("worker"), unit_id=unit.id, to_state="available", reason="scuffed"),
        dict(actor=world.actor("worker"), unit_id=unit.id, to_state="refurbish", reason="other words"),
        dict(actor=world.actor("worker2"), unit_id=unit.id, to_state="refurbish", reason="scuffed"),
    ]
    for v in variants:
        actor = v.pop("actor")
        with pytest.raises(IdempotencyKeyReused, match="already used"):
            transition_unit(session, actor, idempotency_key=key, **v)
    # Another operation under the same key is a reuse too.
    with pytest.raises(IdempotencyKeyReused):
        create_refund_trigger(session, world.actor("worker"), unit_id=unit.id, idempotency_key=key)
    assert counts(session) == before
    assert session.get(type(unit), other.id).state == "received"


BAD_KEYS = [None, "", "short", "x" * 200, "has space", "semi;colon!", "ключ-ключ-ключ", "tab\tinside-key"]


def test_bad_keys_refused(session, world):
    unit = receive_unit(session, world, "shirt", world.actor("worker"))
    refund = refund_of(session, unit.id)
    before = counts(session)
    for key in BAD_KEYS:
        with pytest.raises(ValidationFailed, match="idempotency key"):
            transition_unit(session, world.actor("worker"), unit_id=unit.id, to_state="available", reason="ok",
                            idempotency_key=key)
        with pytest.raises(ValidationFailed, match="idempotency key"):
            acknowledge_refund(session, INTEGRATION, refund_id=refund.id, payment_reference="PAY-0001", idempotency_key=key)
    assert counts(session) == before
    # The boundaries: 8 and 100 characters are fine.
    assert transition_unit(session, world.actor("worker"), unit_id=unit.id, to_state="refurbish", reason="ok",
                           idempotency_key="a" * 8).state == "refurbish"
    assert transition_unit(session, world.actor("worker"), unit_id=unit.id, to_state="available", reason="ok",
                           idempotency_key="b" * 100).state == "available"


def test_refused_attempt_does_not_burn_the_key(session, world):
    unit = receive_unit(session, world, "shirt", world.actor("worker"))
    key = new_key()
    before = counts(session)
    for _ in range(3):  # refused every time, evaluated afresh, never recorded
        with pytest.raises(IllegalTransition, match="already received"):
            transition_unit(session, world.actor("worker"), unit_id=unit.id, to_state="received", reason="again",
                            idempotency_key=key)
    assert counts(session) == before
    # A legal action with a new key works.
    res = transition_unit(session, world.actor("worker"), unit_id=unit.id, to_state="refurbish", reason="fine",
                          idempotency_key=new_key())
    assert res.replayed is False and res.state == "refurbish"
    # The refused key is still free: were it burnt, this would be IdempotencyKeyReused.
    ok = transition_unit(session, world.actor("worker"), unit_id=unit.id, to_state="available", reason="fixed",
                         idempotency_key=key)
    assert ok.replayed is False and ok.state == "available"
    assert counts(session)["ledger"] == before["ledger"] + 2


def test_refused_then_legal_retry_with_same_key_takes_effect_once(session, world):
    """A refusal (worker may not release quarantine) followed by the same request from a supervisor's retry."""
    unit = receive_unit(session, world, "shirt", world.actor("super"))
    transition_unit(session, world.actor("super"), unit_id=unit.id, to_state="quarantine", reason="hold",
                    idempotency_key=new_key())
    key = new_key()
    before = counts(session)
    with pytest.raises(NotPermitted):
        transition_unit(session, world.actor("worker"), unit_id=unit.id, to_state="available", reason="release",
                        idempotency_key=key)
    assert counts(session) == before
    first = transition_unit(session, world.actor("super"), unit_id=unit.id, to_state="available", reason="release",
                            idempotency_key=key)
    again = transition_unit(session, world.actor("super"), unit_id=unit.id, to_state="available", reason="release",
                            idempotency_key=key)
    assert first.replayed is False and again.replayed is True and _strip(first) == _strip(again)
    assert counts(session)["ledger"] == before["ledger"] + 1


def test_the_record_keeps_the_result_as_a_json_object_of_its_fields(session, world):
    """A key's record keeps the use case's result as the JSON object of its fields, as records kept
    before results were typed hold it; a replay gives it back as the use case's type."""
    unit = receive_unit(session, world, "shirt", world.actor("worker"))
    key, worker = new_key(), world.actor("worker")
    first = transition_unit(session, worker, unit_id=unit.id, to_state="available", reason="grade A", idempotency_key=key)
    assert session.get(IdempotencyRecord, key).result == {"unit_id": unit.id, "state": "available", "version": 2}
    again = transition_unit(session, worker, unit_id=unit.id, to_state="available", reason="grade A", idempotency_key=key)
    assert (first, again) == (UnitMoved(unit.id, "available", 2), UnitMoved(unit.id, "available", 2, replayed=True))


def test_approve_refund_replayed_ten_times(session, world):
    unit = receive_unit(session, world, "phone", world.actor("worker"), paid_price="649.00")
    inspect_and_dispose(session, world.actor("worker"), unit.id, "available", amount="649.00")
    refund = refund_of(session, unit.id)
    assert refund.status == "pending_approval"
    key = new_key()
    before = counts(session)
    results = [approve_refund(session, world.actor("super"), refund_id=refund.id, reason="checked", amount="600.00",
                              idempotency_key=key) for _ in range(10)]
    assert [r.replayed for r in results] == [False] + [True] * 9
    assert all(_strip(r) == RefundStatus(refund.id, "released", "600.00") for r in results)
    events = session.scalars(select(RefundEvent.to_status).where(RefundEvent.refund_id == refund.id)
                             .order_by(RefundEvent.id)).all()
    assert events == ["awaiting_inspection", "pending_approval", "approved", "released"]
    after = counts(session)
    assert after["refund_events"] - before["refund_events"] == 2  # approved + released, once
    assert after["idempotency"] - before["idempotency"] == 1


def test_acknowledge_replayed(session, world):
    unit = receive_unit(session, world, "shirt", world.actor("worker"))
    inspect_and_dispose(session, world.actor("worker"), unit.id, "available", amount="20.00")
    refund = refund_of(session, unit.id)
    assert refund.status == "released"
    key = new_key()
    results = [acknowledge_refund(session, INTEGRATION, refund_id=refund.id, payment_reference="PAY-0001", idempotency_key=key) for _ in range(5)]
    assert [r.replayed for r in results] == [False] + [True] * 4
    n = session.scalar(select(func.count()).select_from(RefundEvent)
                       .where(RefundEvent.refund_id == refund.id, RefundEvent.to_status == "acknowledged"))
    assert n == 1
    # A fresh key is a new request and is refused (already paid), leaving no trace.
    before = counts(session)
    with pytest.raises(IllegalTransition):
        acknowledge_refund(session, INTEGRATION, refund_id=refund.id, payment_reference="PAY-0001", idempotency_key=new_key())
    assert counts(session) == before
