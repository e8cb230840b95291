"""The scan's hot path (one read, one write of every row): the rows one scan writes, one effect
under retries, sequential and concurrent, and a few statements."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from app.ledger.models import AuditEntry, LedgerEntry, OutboxEvent, ReturnUnit
from app.ledger.services import balance_table, ledger_sums
from app.receiving.services import OpenedParcel, ParcelClosed, open_parcel, scan_item
from app.refunds.models import RefundEvent, RefundTrigger
from tests.helpers import closed_events, counts, new_key, opened_events


def test_a_scanned_unit_is_received_with_its_ledger_row_and_refund_trigger(session, world):
    """A shirt scanned out of a parcel of RMA-5001: the unit at the dock on the return's shirt line,
    one ledger row into `received` carrying the scan's key, balances equal to the ledger, the
    refund trigger for the price paid with its event, the outbox events and audit entries in order."""
    w = world.actor("worker")
    shirt, dock = world.products["shirt"], world.loc(world.wh, "dock")
    line = next(line for line in world.rma.lines if line.product_id == shirt.id)
    r = open_parcel(session, w, code="RMA-5001", warehouse_id=world.wh.id, idempotency_key=new_key())
    key = new_key()
    scanned = scan_item(session, w, parcel_id=r.parcel_id, product_id=shirt.id, idempotency_key=key)
    session.rollback()
    unit_id, reason = scanned.unit_id, "received from parcel RMA-5001"

    unit = session.get(ReturnUnit, unit_id)
    assert (unit.lpn, unit.state, unit.version, unit.location_id) == (scanned.lpn, "received", 1, dock.id)
    assert scanned.lpn == "LP00000001"
    assert (unit.product_id, unit.warehouse_id, unit.merchant_id) == (shirt.id, world.wh.id, world.merchant.id)
    assert (unit.rma_id, unit.rma_line_id, unit.parcel_id) == (world.rma.id, line.id, r.parcel_id)
    assert (unit.paid_price, unit.serial, unit.serial_status, unit.received_by_id) == (Decimal("20.00"), None, "not_tracked", w.id)
    assert unit.received_at is not None and unit.state_changed_at is not None
    assert (unit.grade, unit.packaging, unit.inspected_at, unit.disposition) == (None, None, None, None)

    ledger = session.scalars(select(LedgerEntry).where(LedgerEntry.unit_id == unit_id)).all()
    assert [(e.from_state, e.to_state, e.from_location_id, e.to_location_id) for e in ledger] == [(None, "received", None, dock.id)]
    assert (ledger[0].product_id, ledger[0].warehouse_id, ledger[0].actor_id, ledger[0].actor_role) == (shirt.id, world.wh.id, w.id, "worker")
    assert (ledger[0].reason, ledger[0].idempotency_key) == (reason, key)
    assert ledger_sums(session) == balance_table(session) == {(shirt.id, world.wh.id, "received"): 1}

    refund = session.scalars(select(RefundTrigger).where(RefundTrigger.unit_id == unit_id)).one()
    assert (refund.rma_id, refund.warehouse_id, refund.status, refund.currency) == (world.rma.id, world.wh.id, "awaiting_inspection", "USD")
    assert (refund.paid_amount, refund.amount, refund.inspected_at, refund.hold_reasons) == (Decimal("20.00"), Decimal("20.00"), None, [])
    events = session.scalars(select(RefundEvent).where(RefundEvent.refund_id == refund.id)).all()
    assert [(e.from_status, e.to_status, e.amount, e.actor_id, e.reason) for e in events] == [
        (None, "awaiting_inspection", Decimal("20.00"), w.id, "unit received")]

    outbox = session.scalars(select(OutboxEvent).where(
        ((OutboxEvent.aggregate_type == "unit") & (OutboxEvent.aggregate_id == unit_id))
        | ((OutboxEvent.aggregate_type == "refund") & (OutboxEvent.aggregate_id == refund.id))).order_by(OutboxEvent.id)).all()
    assert [e.type for e in outbox] == ["unit.state_changed", "refund.awaiting_inspection"]
    assert outbox[0].payload == {"unit_id": unit_id, "lpn": unit.lpn, "product_id": shirt.id, "warehouse_id": world.wh.id,
                                 "from_state": None, "to_state": "received", "location_id": dock.id, "reason": reason}
    assert outbox[1].payload == {"refund_id": refund.id, "unit_id": unit_id, "rma_id": world.rma.id,
                                 "status": "awaiting_inspection", "amount": "20.00", "currency": "USD",
                                 "resolution": "refund"}

    audit = session.scalars(select(AuditEntry).where(
        ((AuditEntry.entity_type == "unit") & (AuditEntry.entity_id == unit_id))
        | ((AuditEntry.entity_type == "refund") & (AuditEntry.entity_id == refund.id))).order_by(AuditEntry.id)).all()
    assert [(a.action, a.actor_id, a.actor_name, a.warehouse_id) for a in audit] == [
        ("unit.received", w.id, w.name, world.wh.id), ("refund.opened", w.id, w.name, world.wh.id)]
    assert audit[0].reason == reason
    assert audit[0].details == {"from_state": None, "to_state": "received", "parcel_id": r.parcel_id, "match": "expected"}
    assert audit[1].details == {"unit_id": unit_id, "amount": "20.00"}


def test_a_scan_replayed_ten_times_has_one_effect(session, world):
    w = world.actor("worker")
    r = open_parcel(session, w, code="RMA-5001", warehouse_id=world.wh.id, idempotency_key=new_key())
    key = new_key()
    before = counts(session)
    results = [scan_item(session, w, parcel_id=r.parcel_id, product_id=world.products["shirt"].id,
                         idempotency_key=key) for _ in range(10)]
    after = counts(session)
    assert [x.replayed for x in results] == [False] + [True] * 9
    assert len({x.unit_id for x in results}) == 1
    for table, n in (("ledger", 1), ("refunds", 1), ("refund_events", 1), ("audit", 2), ("outbox", 2), ("idempotency", 1)):
        assert after[table] - before[table] == n, table


@pytest.mark.pg_only
def test_the_same_scan_sent_six_times_at_once_has_one_effect(session, session_factory, world):
    """Retries of one scan racing each other: the parcel's lock queues them, the key's record (or
    its primary key, for a retry that read before the first committed) makes them replays."""
    w = world.actor("worker")
    r = open_parcel(session, w, code="RMA-5001", warehouse_id=world.wh.id, idempotency_key=new_key())
    session.commit()
    key, n = new_key(), 6
    barrier = threading.Barrier(n)

    def run(_i: int) -> dict:
        s = session_factory()
        try:
            barrier.wait(timeout=30)
            return scan_item(s, w, parcel_id=r.parcel_id, product_id=world.products["shirt"].id, idempotency_key=key)
        finally:
            s.close()

    with ThreadPoolExecutor(n) as pool:
        results = [f.result(timeout=60) for f in [pool.submit(run, i) for i in range(n)]]
    assert sorted(x.replayed for x in results) == [False] + [True] * (n - 1)
    assert len({x.unit_id for x in results}) == 1
    assert session.scalar(select(func.count()).select_from(ReturnUnit).where(ReturnUnit.parcel_id == r.parcel_id)) == 1


def _at_once(session_factory, calls: list) -> list:  # type: ignore[no-untyped-def]
    """Each call(session) started at the same moment, each on its own session: its result, or the
    error it raised."""
    barrier = threading.Barrier(len(calls))

    def run(call):  # type: ignore[no-untyped-def]
        s = session_factory()
        try:
            barrier.wait(timeout=30)
            return call(s)
        except Exception as exc:  # noqa: BLE001 - the refusal is the result here
            return exc
        finally:
            s.close()

    with ThreadPoolExecutor(len(calls)) as pool:
        return [f.result(timeout=60) for f in [pool.submit(run, c) for c in calls]]


def _closes_at_once(session_factory, w, parcel_id: int, keys: list[str]) -> list:  # type: ignore[no-untyped-def]
    """close_parcel sent with each key at the same moment: its result, or the error it raised."""
    from app.receiving.services import close_parcel

    return _at_once(session_factory, [lambda s, k=k: close_parcel(s, w, parcel_id=parcel_id, idempotency_key=k)
                                      for k in keys])


def test_the_same_close_sent_ten_times_at_once_has_one_effect(session, session_factory, world):
    """Retries of one close racing each other queue on the return's lock; the key's record is read
    after it, so every retry replays the winner's answer instead of being refused as already
    closed. Fails if the record is read with the lock (its snapshot predates the wait)."""
    w = world.actor("worker")
    r = open_parcel(session, w, code="RMA-5001", warehouse_id=world.wh.id, idempotency_key=new_key())
    session.commit()
    results = _closes_at_once(session_factory, w, r.parcel_id, [new_key()] * 10)
    assert all(isinstance(x, ParcelClosed) for x in results), results
    assert sorted(x.replayed for x in results) == [False] + [True] * 9
    assert len({replace(x, replayed=False) for x in results}) == 1
    assert results[0].missing  # nothing was scanned: the whole return is missing
    assert closed_events(session, r.parcel_id, world.rma.id) == (1, 1)


def test_ten_closes_of_one_parcel_with_their_own_keys_close_it_once(session, session_factory, world):
    from app.errors import Conflict

    w = world.actor("worker")
    r = open_parcel(session, w, code="RMA-5001", warehouse_id=world.wh.id, idempotency_key=new_key())
    session.commit()
    results = _closes_at_once(session_factory, w, r.parcel_id, [new_key() for _ in range(10)])
    done = [x for x in results if isinstance(x, ParcelClosed)]
    refused = [x for x in results if isinstance(x, Conflict)]
    assert len(done) == 1 and len(refused) == 9, results
    assert all("already closed" in x.message for x in refused)
    assert closed_events(session, r.parcel_id, world.rma.id) == (1, 1)


def _opens_at_once(session_factory, w, warehouse_id: int, keys: list[str], code: str = "RMA-5001",  # type: ignore[no-untyped-def]
                   blind: bool = False) -> list:
    """open_parcel of `code` sent with each key at the same moment: its result, or the error it raised."""
    return _at_once(session_factory, [
        lambda s, k=k: open_parcel(s, w, code=code, warehouse_id=warehouse_id, idempotency_key=k, blind=blind)
        for k in keys])


def test_the_same_open_sent_ten_times_at_once_has_one_effect(session, session_factory, world):
    """Retries of one parcel scan racing each other get one parcel and the winner's answer, not
    "joined the parcel another worker opened" (each retry queues on the return's lock and then
    reads the winner's record)."""
    results = _opens_at_once(session_factory, world.actor("worker"), world.wh.id, [new_key()] * 10)
    assert all(isinstance(x, OpenedParcel) for x in results), results
    assert sorted(x.replayed for x in results) == [False] + [True] * 9
    assert {(x.parcel_id, x.joined) for x in results} == {(results[0].parcel_id, False)}
    assert opened_events(session, world.rma.id) == (1, 1, 1)


def test_ten_opens_of_one_return_with_their_own_keys_open_one_parcel(session, session_factory, world):
    """Two workers scanning one label at once share a parcel: the open parcel is read after the
    return's lock. Fails on PostgreSQL when it is read before (checked)."""
    results = _opens_at_once(session_factory, world.actor("worker"), world.wh.id, [new_key() for _ in range(10)])
    assert all(isinstance(x, OpenedParcel) for x in results), results
    assert sorted(x.joined for x in results) == [False] + [True] * 9
    assert len({x.parcel_id for x in results}) == 1
    assert opened_events(session, world.rma.id) == (1, 1, 1)


def test_a_blind_parcel_sent_six_times_at_once_with_one_key_is_one_parcel(session, session_factory, world):
    """A blind parcel reads its key's record before any lock: the retries that missed the winner's
    record fail on its primary key and replay it, leaving no second parcel or exception."""
    from app.exceptions.models import ReturnException
    from app.receiving.models import Parcel

    results = _opens_at_once(session_factory, world.actor("worker"), world.wh.id, [new_key()] * 6, code="NOLABEL-42", blind=True)
    assert all(isinstance(x, OpenedParcel) for x in results), results
    assert sorted(x.replayed for x in results) == [False] + [True] * 5
    assert {(x.parcel_id, x.blind) for x in results} == {(results[0].parcel_id, True)}
    session.rollback()
    assert session.scalar(select(func.count()).select_from(Parcel).where(Parcel.scanned_code == "NOLABEL-42")) == 1
    assert session.scalars(select(ReturnException.type)).all() == ["unidentified_parcel"]


def _locked_elsewhere(session_factory, rma_id: int) -> bool:  # type: ignore[no-untyped-def]
    """Whether another transaction holds the return's row lock now (FOR UPDATE NOWAIT refused)."""
    from sqlalchemy.exc import OperationalError

    from app.orders.models import Rma

    other = session_factory()
    try:
        other.execute(select(Rma.id).where(Rma.id == rma_id).with_for_update(nowait=True)).all()
        return False
    except OperationalError:
        return True
    finally:
        other.rollback()
        other.close()


def test_an_open_retried_after_its_parcel_was_closed_replays(session, world):
    """A retry that arrives after the parcel and its return were closed gets the first answer, not
    "already received": the key's record is checked before the return's state."""
    from app.errors import IdempotencyKeyReused
    from app.receiving.services import close_parcel

    w, key = world.actor("worker"), new_key()
    first = open_parcel(session, w, code="RMA-5001", warehouse_id=world.wh.id, idempotency_key=key)
    close_parcel(session, w, parcel_id=first.parcel_id, idempotency_key=new_key())
    again = open_parcel(session, w, code="RMA-5001", warehouse_id=world.wh.id, idempotency_key=key)
    assert again.replayed and again.parcel_id == first.parcel_id and not again.joined
    with pytest.raises(IdempotencyKeyReused):
        open_parcel(session, w, code="SO-1001", warehouse_id=world.wh.id, idempotency_key=key)
    with pytest.raises(IdempotencyKeyReused):
        open_parcel(session, w, code="NOLABEL-5", warehouse_id=world.wh.id, idempotency_key=key, blind=True)


@pytest.mark.pg_only
def test_scans_through_the_scan_use_case_at_once_fill_a_line_once(session, session_factory, world):
    """Six scans of the same item at once through the handheld's use case (services.scan), whose
    first read takes the parcel's lock: the return expects 2 shirts, so two match and four are
    over-returns. Fails if that read hands on a parcel it did not lock (each scan would see the
    line unfilled)."""
    from app.receiving.services import scan

    w = world.actor("worker")
    r = open_parcel(session, w, code="RMA-5001", warehouse_id=world.wh.id, idempotency_key=new_key())
    session.commit()
    results = _at_once(session_factory, [
        lambda s, i=i: scan(s, w, code="TEE-BLU-M", parcel_id=r.parcel_id, pending_product_id=None,
                            warehouse_id=world.wh.id, idempotency_key=f"at-once-scan-{i:04d}")
        for i in range(6)])
    assert all(x.kind == "received" for x in results), results
    assert sorted(len(x.received.exceptions) for x in results) == [0, 0, 1, 1, 1, 1]
    session.rollback()
    assert session.scalar(select(func.count()).select_from(ReturnUnit).where(
        ReturnUnit.parcel_id == r.parcel_id, ReturnUnit.rma_line_id.is_not(None))) == 2
