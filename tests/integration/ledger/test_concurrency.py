"""Real races on PostgreSQL: 20 threads, one winner, clear conflicts for the rest, nothing duplicated."""
from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from app.db import make_engine
from app.errors import Conflict, DomainError, IllegalTransition, StaleVersion
from app.ledger.idempotency import run_idempotent
from app.ledger.models import AuditEntry, LedgerEntry
from app.ledger.services import balance_table, ledger_sums, transition_unit
from app.refunds.models import RefundEvent, RefundTrigger
from app.refunds.services import RefundStatus, create_refund_trigger
from app.refunds.writer import open_trigger
from app.rows import allocate_ids, write
from tests.helpers import counts, new_key, receive_unit

pytestmark = pytest.mark.pg_only

N = 20
TIMEOUT = 60  # seconds: a deadlock fails the test instead of hanging it


@pytest.fixture
def racing_sessions(db_url):  # type: ignore[no-untyped-def]
    """A session factory whose pool holds every racer at once and whose locks time out."""
    eng = make_engine(db_url, pool_size=N + 5, max_overflow=5,
                      connect_args={"options": "-c lock_timeout=20000 -c statement_timeout=30000"})
    yield sessionmaker(bind=eng, expire_on_commit=False)
    eng.dispose()


def race(factory: sessionmaker[Session], n: int, job: Callable[[Session, int], Any]) -> list[tuple[str, Any]]:
    """Run job(session, i) in n threads released together; ('ok', result) or ('err', exception) each."""
    barrier = threading.Barrier(n, timeout=TIMEOUT)

    def one(i: int) -> tuple[str, Any]:
        s = factory()
        try:
            s.connection()  # check a connection out before the start line
            s.rollback()
            barrier.wait()
            return "ok", job(s, i)
        except Exception as exc:  # noqa: BLE001 - collected and asserted on by the caller
            return "err", exc
        finally:
            s.close()

    pool = ThreadPoolExecutor(max_workers=n)
    try:
        futures = [pool.submit(one, i) for i in range(n)]
        return [f.result(timeout=TIMEOUT) for f in futures]
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def _ledger_rows(session: Session, unit_id: int) -> int:
    n = session.scalar(select(func.count()).select_from(LedgerEntry).where(LedgerEntry.unit_id == unit_id))
    session.rollback()
    return int(n or 0)


def _split(outcomes):  # type: ignore[no-untyped-def]
    wins = [r for kind, r in outcomes if kind == "ok"]
    errors = [e for kind, e in outcomes if kind == "err"]
    unexpected = [e for e in errors if not isinstance(e, DomainError)]
    assert not unexpected, f"non-domain errors: {unexpected!r}"
    return wins, errors


def test_twenty_movers_with_expected_version(session, world, racing_sessions):
    unit = receive_unit(session, world, "shirt", world.actor("worker"))
    version = session.get(type(unit), unit.id).version
    session.rollback()
    actors = [world.actor("worker"), world.actor("worker2"), world.actor("super")]

    outcomes = race(racing_sessions, N, lambda s, i: transition_unit(
        s, actors[i % 3], unit_id=unit.id, to_state="available", reason=f"racer {i}",
        idempotency_key=new_key(f"race{i}"), expected_version=version))

    wins, errors = _split(outcomes)
    assert len(wins) == 1 and len(errors) == N - 1
    assert all(isinstance(e, StaleVersion) for e in errors), {type(e).__name__ for e in errors}
    for e in errors:
        assert "already decided" in e.message and "now available" in e.message and "Nothing was changed" in e.message
    assert _ledger_rows(session, unit.id) == 2  # received + the one move
    moved = session.scalar(select(func.count()).select_from(LedgerEntry)
                           .where(LedgerEntry.unit_id == unit.id, LedgerEntry.to_state == "available"))
    assert moved == 1
    assert ledger_sums(session) == balance_table(session)
    assert balance_table(session) == {(unit.product_id, world.wh.id, "available"): 1}


def test_twenty_movers_without_expected_version(session, world, racing_sessions):
    unit = receive_unit(session, world, "shirt", world.actor("worker"))
    worker = world.actor("worker")
    outcomes = race(racing_sessions, N, lambda s, i: transition_unit(
        s, worker, unit_id=unit.id, to_state="available", reason=f"racer {i}",
        idempotency_key=new_key(f"race{i}")))
    wins, errors = _split(outcomes)
    assert len(wins) == 1
    assert all(isinstance(e, IllegalTransition) and "already available" in e.message for e in errors), errors
    assert _ledger_rows(session, unit.id) == 2
    audits = session.scalar(select(func.count()).select_from(AuditEntry)
                            .where(AuditEntry.entity_type == "unit", AuditEntry.entity_id == unit.id))
    assert audits == 2
    assert ledger_sums(session) == balance_table(session) == {(unit.product_id, world.wh.id, "available"): 1}


def test_twenty_movers_to_different_states(session, world, racing_sessions):
    """Racers want different outcomes; exactly one decides, the rest are refused with the winner's state."""
    unit = receive_unit(session, world, "shirt", world.actor("worker"))
    sup = world.actor("super")
    targets = ["available", "quarantine", "refurbish", "vendor_return", "liquidation", "disposed"]
    outcomes = race(racing_sessions, N, lambda s, i: transition_unit(
        s, sup, unit_id=unit.id, to_state=targets[i % len(targets)], reason=f"racer {i}",
        idempotency_key=new_key(f"race{i}"), expected_version=1))
    wins, errors = _split(outcomes)
    assert len(wins) == 1 and all(isinstance(e, StaleVersion) for e in errors)
    assert _ledger_rows(session, unit.id) == 2
    assert ledger_sums(session) == balance_table(session) == {(unit.product_id, world.wh.id, wins[0].state): 1}


def test_twenty_refund_trigger_creators(session, world, racing_sessions):
    unit = receive_unit(session, world, "shirt", world.actor("worker"), with_refund=False)
    worker, unit_id = world.actor("worker"), unit.id  # plain values: threads must not touch `session`
    before = counts(session)
    outcomes = race(racing_sessions, N, lambda s, i: create_refund_trigger(
        s, worker, unit_id=unit_id, idempotency_key=new_key(f"refund{i}")))
    wins, errors = _split(outcomes)
    assert len(wins) == 1 and len(errors) == N - 1
    assert all(isinstance(e, Conflict) and "already has a refund trigger" in e.message for e in errors), errors
    assert session.scalar(select(func.count()).select_from(RefundTrigger).where(RefundTrigger.unit_id == unit.id)) == 1
    after = counts(session)
    assert after["refunds"] - before["refunds"] == 1
    assert after["refund_events"] - before["refund_events"] == 1
    assert after["idempotency"] - before["idempotency"] == 1


def test_unique_constraint_is_the_backstop_when_nobody_locks(session, world, racing_sessions):
    """Even without the row lock, the database keeps one trigger per unit and racers get a clear Conflict."""
    unit = receive_unit(session, world, "shirt", world.actor("worker"), with_refund=False)
    unit_id, lpn, worker = unit.id, unit.lpn, world.actor("worker")
    session.rollback()
    from app.ledger.models import ReturnUnit

    def job(s: Session, i: int) -> dict[str, Any]:
        def work() -> dict[str, Any]:
            units = ReturnUnit.__table__
            u = s.execute(select(units).where(units.c.id == unit_id)).one()  # deliberately no FOR UPDATE
            if s.scalar(select(RefundTrigger.id).where(RefundTrigger.unit_id == unit_id)) is not None:
                raise Conflict(f"Unit {u.lpn} already has a refund trigger.")
            (refund_id,) = allocate_ids(s, RefundTrigger, 1)
            write(s, open_trigger(worker, refund_id, unit_id=u.id, rma_id=u.rma_id, warehouse_id=u.warehouse_id,
                                  paid_amount=u.paid_price, currency="USD"))
            return RefundStatus(refund_id, "awaiting_inspection")
        return run_idempotent(s, worker, new_key(f"nolock{i}"), "create_refund_trigger",
                              {"unit_id": unit_id}, work, result_type=RefundStatus)

    wins, errors = _split(race(racing_sessions, N, job))
    assert len(wins) == 1
    assert all(isinstance(e, Conflict) for e in errors)
    assert {e.message for e in errors} <= {"Somebody else did this at the same moment. Nothing was changed: look again.",
                                           f"Unit {lpn} already has a refund trigger."}
    assert session.scalar(select(func.count()).select_from(RefundTrigger).where(RefundTrigger.unit_id == unit_id)) == 1
    assert session.scalar(select(func.count()).select_from(RefundEvent)
                          .join(RefundTrigger, RefundTrigger.id == RefundEvent.refund_id)
                          .where(RefundTrigger.unit_id == unit_id)) == 1


def test_same_key_replayed_concurrently(session, world, racing_sessions):
    unit = receive_unit(session, world, "shirt", world.actor("worker"))
    key, worker, unit_id = new_key("same"), world.actor("worker"), unit.id
    before = counts(session)
    outcomes = race(racing_sessions, 10, lambda s, i: transition_unit(
        s, worker, unit_id=unit_id, to_state="refurbish", reason="scratched", idempotency_key=key))
    wins, errors = _split(outcomes)
    assert not errors, errors
    assert len(wins) == 10
    assert sum(1 for r in wins if r.replayed is False) == 1
    assert all(replace(r, replayed=False) == replace(wins[0], replayed=False) for r in wins)
    after = counts(session)
    for table in ("ledger", "audit", "outbox", "idempotency"):
        assert after[table] - before[table] == 1, table
    assert ledger_sums(session) == balance_table(session)


def test_same_refund_key_replayed_concurrently(session, world, racing_sessions):
    unit = receive_unit(session, world, "shirt", world.actor("worker"), with_refund=False)
    key, worker = new_key("samerefund"), world.actor("worker")
    outcomes = race(racing_sessions, 10, lambda s, i: create_refund_trigger(
        s, worker, unit_id=unit.id, idempotency_key=key))
    wins, errors = _split(outcomes)
    assert not errors and len(wins) == 10
    assert sum(1 for r in wins if not r.replayed) == 1
    assert len({r.refund_id for r in wins}) == 1
    assert session.scalar(select(func.count()).select_from(RefundTrigger).where(RefundTrigger.unit_id == unit.id)) == 1
