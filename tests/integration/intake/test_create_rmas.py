"""create_rmas: a batch of returns (a CSV file's, RMA_BATCH at a time; the API's one) answers each
return on its own terms, writes each good one once with its key, and loses none of the batch to a
concurrent writer of one of its numbers."""
from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import func, select, text

from app.disposition.models import ReasonCode
from app.errors import Conflict, IdempotencyKeyReused, ValidationFailed
from app.intake.services import LineIn, RmaCreated, RmaRequest, create_rma, create_rmas
from app.ledger.models import AuditEntry, IdempotencyRecord, OutboxEvent
from app.orders.models import CarrierTracking, Customer, Rma, RmaLine
from tests.helpers import new_key


@pytest.fixture
def admin(session, world):  # type: ignore[no-untyped-def]
    session.add(ReasonCode(code="defective", label="Defective"))
    session.commit()
    return world.actor("admin")


def ask(number: str, *, sku: str = "TEE-BLU-M", customer: str | None = None, tracking: str | None = None,
        key: str | None = None) -> RmaRequest:
    return RmaRequest(key or new_key(), number, "ACME", "web", "WH1", [LineIn(sku, 1, "defective")],
                      customer_ref=customer, customer_name=customer and f"Name of {customer}",
                      tracking_numbers=[tracking] if tracking else None)


def count(session, model, *where) -> int:  # type: ignore[no-untyped-def]
    session.rollback()
    return session.scalar(select(func.count()).select_from(model).where(*where))


def test_each_return_of_a_batch_is_answered_on_its_own_and_the_good_ones_written_once(session, admin):
    answers = create_rmas(session, admin, [
        ask("B-1", customer="NEW-1", tracking="1ZB1"),
        ask("B-2", sku="NOPE"),
        ask("B-3", customer="NEW-1", tracking="1ZB1"),  # the tracking number B-1 took in this same batch
        ask("B-1"),  # the number B-1 took in this same batch
        ask("B-4", customer="NEW-1"),
    ])
    assert [type(a) for a in answers] == [RmaCreated, ValidationFailed, Conflict, Conflict, RmaCreated]
    assert "Unknown SKU NOPE" in answers[1].message and "1ZB1" in answers[2].message and "B-1" in answers[3].message
    assert count(session, Rma, Rma.number.like("B-%")) == 2
    assert count(session, RmaLine, RmaLine.rma_id.in_([answers[0].id, answers[4].id])) == 2
    assert count(session, CarrierTracking, CarrierTracking.tracking_number == "1ZB1") == 1
    assert count(session, Customer, Customer.external_ref == "NEW-1") == 1  # one new customer for both its returns
    both = session.scalars(select(Rma.customer_id).where(Rma.number.in_(["B-1", "B-4"]))).all()
    assert len(set(both)) == 1 and both[0] is not None
    assert count(session, AuditEntry, AuditEntry.action == "rma.created") == 2
    assert count(session, OutboxEvent, OutboxEvent.type == "rma.created") == 2
    made = answers[0]
    assert (made.number, made.status, made.customer_ref, made.tracking_numbers) == ("B-1", "authorized", "NEW-1", ("1ZB1",))
    assert [(ln.sku, ln.quantity) for ln in made.lines] == [("TEE-BLU-M", 1)]
    assert session.get(RmaLine, made.lines[0].id).rma_id == made.id


def test_a_batch_asked_again_replays_what_it_made_and_makes_the_rest(session, admin):
    first, second = ask("K-1"), ask("K-2")
    made = create_rmas(session, admin, [first])[0]
    again = create_rmas(session, admin, [first, second, RmaRequest(first.idempotency_key, "K-9", "ACME", "web", "WH1",
                                                                   [LineIn("TEE-BLU-M", 1, "defective")])])
    assert isinstance(again[0], RmaCreated) and again[0].replayed and again[0].id == made.id
    assert isinstance(again[1], RmaCreated) and not again[1].replayed
    assert isinstance(again[2], IdempotencyKeyReused)  # the key of K-1 with another return
    assert count(session, Rma, Rma.number.like("K-%")) == 2
    assert count(session, AuditEntry, AuditEntry.action == "rma.created") == 2
    # the API's single create with the key a batch used answers the batch's return
    replay = create_rma(session, admin, number="K-2", merchant="ACME", channel="web", warehouse="WH1",
                        lines=[LineIn("TEE-BLU-M", 1, "defective")], idempotency_key=second.idempotency_key)
    assert replay.replayed and replay.id == again[1].id


def test_a_refused_batch_writes_nothing(session, admin):
    before = count(session, IdempotencyRecord)
    answers = create_rmas(session, admin, [ask("X-1", sku="NOPE"), RmaRequest("short", "X-2", "ACME", "web", "WH1", [])])
    assert [type(a) for a in answers] == [ValidationFailed, ValidationFailed]
    assert count(session, IdempotencyRecord) == before and count(session, Rma, Rma.number.like("X-%")) == 0


@pytest.mark.pg_only
def test_a_batch_that_meets_a_concurrent_writer_of_one_of_its_numbers_loses_none_of_the_others(session, admin, session_factory):
    """Another transaction inserts C-2 and commits after the batch has read (and not seen) it: the
    batch's INSERT waits, fails on the unique number, and its returns are asked one by one."""
    other = session_factory()
    other.execute(text("INSERT INTO rmas (number, merchant_id, channel_id, warehouse_id, status, created_at) "
                       "SELECT 'C-2', merchant_id, channel_id, warehouse_id, 'authorized', now() FROM rmas LIMIT 1"))
    answers: list = []
    batch = threading.Thread(target=lambda: answers.extend(
        create_rmas(session_factory(), admin, [ask("C-1"), ask("C-2"), ask("C-3")])))
    batch.start()
    time.sleep(1.0)  # the batch has read and waits on C-2's index entry
    other.commit()
    other.close()
    batch.join(30)
    assert [type(a) for a in answers] == [RmaCreated, Conflict, RmaCreated], answers
    assert count(session, Rma, Rma.number.in_(["C-1", "C-2", "C-3"])) == 3
    assert count(session, AuditEntry, AuditEntry.action == "rma.created") == 2
