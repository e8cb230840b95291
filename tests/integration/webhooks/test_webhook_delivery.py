"""Webhooks delivered to a real HTTP receiver on 127.0.0.1 that verifies every signature with
the `standardwebhooks` library: retried with backoff until acknowledged once; two workers
deliver each event once; an endpoint down for three days is switched off, and resend delivers
everything when it is back; 410 switches it off at once; a rotated secret signs with both."""
from __future__ import annotations

import threading
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from app.auth.roles import SYSTEM
from app.db import unit_of_work, utcnow
from app.ledger.models import AuditEntry, OutboxEvent
from app.ledger.writer import event_row
from app.rows import write
from app.webhooks.models import WebhookDelivery, WebhookEndpoint
from app.webhooks.services import register_endpoint, resend, rotate_secret
from app.webhooks.worker import Sender, run, run_round
from tests.fakes import WebhookReceiver, closed_port


def key() -> str:
    return uuid.uuid4().hex


def emit(session, n: int, type_: str = "unit.state_changed") -> None:  # type: ignore[no-untyped-def]
    with unit_of_work(session):
        write(session, [event_row(type_, "unit", i, {"i": i}) for i in range(n)])


def make_due_now(session) -> None:  # type: ignore[no-untyped-def]
    """Time passes: every pending delivery is due."""
    with unit_of_work(session):
        session.execute(update(WebhookDelivery).where(WebhookDelivery.status == "pending").values(next_attempt_at=utcnow()))


@pytest.fixture
def sender():  # type: ignore[no-untyped-def]
    s = Sender(threads=8)
    yield s
    s.close()


def test_a_receiver_that_fails_three_times_gets_each_event_acknowledged_once(session, session_factory, sender):
    receiver = WebhookReceiver(answers=[500] * 6)  # the first three tries of each of two events fail
    try:
        made = register_endpoint(session, SYSTEM, url=receiver.url, event_types=["unit.*"], idempotency_key=key())
        receiver.secret = made.secret
        emit(session, 2)
        emit(session, 1, "refund.released")  # not a type the endpoint asked for
        for _ in range(4):
            run_round(session_factory, sender)
            make_due_now(session)
        assert run_round(session_factory, sender) == 0  # nothing more owed
        assert receiver.bad_signatures == 0
        ids = [wid for wid, _, _ in receiver.received]
        assert sorted(set(ids)) == sorted(ids[:2]) and len(ids) == 8  # two events, four tries each
        assert sorted(receiver.acknowledged()) == sorted(set(ids))  # each acknowledged exactly once
        assert all(body["type"] == "unit.state_changed" for _, status, body in receiver.received if status == 200)
        session.expire_all()
        deliveries = session.scalars(select(WebhookDelivery)).all()
        assert [(d.status, d.attempts) for d in deliveries] == [("delivered", 4), ("delivered", 4)]
    finally:
        receiver.close()


def test_backoff_grows_then_a_dead_endpoint_is_switched_off_and_resend_delivers_all(session, session_factory, sender):
    port = closed_port()
    made = register_endpoint(session, SYSTEM, url=f"http://127.0.0.1:{port}/hooks", event_types=[], idempotency_key=key())
    emit(session, 3)
    waits = []
    for _ in range(3):
        run_round(session_factory, sender)
        session.expire_all()
        d = session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)).first()
        waits.append((d.next_attempt_at - d.last_attempt_at).total_seconds())
        make_due_now(session)
    assert 15 <= waits[0] <= 30 and 30 <= waits[1] <= 60 and 60 <= waits[2] <= 120, waits
    assert "ConnectionRefused" in d.last_error or "NewConnectionError" in d.last_error
    # Three days of failures: the deliveries are given up and the endpoint switched off, and told.
    with unit_of_work(session):
        session.execute(update(WebhookDelivery).values(first_attempt_at=utcnow() - timedelta(days=3, minutes=1)))
        session.execute(update(WebhookEndpoint).values(failing_since=utcnow() - timedelta(days=3, minutes=1)))
    run_round(session_factory, sender)
    session.expire_all()
    assert {d.status for d in session.scalars(select(WebhookDelivery))} == {"dead"}
    ep = session.get(WebhookEndpoint, made.id)
    assert ep.disabled_at is not None and "3 days" in ep.disabled_reason
    assert session.scalars(select(OutboxEvent.type).where(OutboxEvent.type == "webhook_endpoint.disabled")).all()
    assert session.scalars(select(AuditEntry.action).where(AuditEntry.action == "webhook.disabled")).all()
    # The receiver is back (on the same URL): resend delivers everything, once.
    receiver = WebhookReceiver(secret=made.secret)
    try:
        with unit_of_work(session):
            session.execute(update(WebhookEndpoint).values(url=receiver.url))
        assert resend(session, SYSTEM, endpoint_id=made.id, idempotency_key=key()).deliveries == 3
        while run_round(session_factory, sender):
            pass
        assert len(receiver.acknowledged()) == len(set(receiver.acknowledged())) and receiver.bad_signatures == 0
        # The three events owed, and the notice that the endpoint had been switched off.
        assert sorted(body["type"] for _, status, body in receiver.received if status == 200) == \
            ["unit.state_changed"] * 3 + ["webhook_endpoint.disabled"]
        session.expire_all()
        assert session.get(WebhookEndpoint, made.id).disabled_at is None
    finally:
        receiver.close()


def test_410_gone_switches_the_endpoint_off_at_once(session, session_factory, sender):
    receiver = WebhookReceiver(answers=[410])
    try:
        made = register_endpoint(session, SYSTEM, url=receiver.url, event_types=[], idempotency_key=key())
        receiver.secret = made.secret
        emit(session, 1)
        run_round(session_factory, sender)
        session.expire_all()
        ep = session.get(WebhookEndpoint, made.id)
        assert ep.disabled_at is not None and "410" in ep.disabled_reason
        notice = session.scalars(select(OutboxEvent).where(OutboxEvent.type == "webhook_endpoint.disabled")).one()
        assert "url" not in notice.payload  # the notice reaches every endpoint: no URL (they carry tokens)
        emit(session, 1)
        make_due_now(session)
        assert run_round(session_factory, sender) == 2  # the events (and the notice) are read; nothing is sent
        assert len(receiver.received) == 1
        # Switched on again, it gets what came while it was off.
        from app.webhooks.services import set_endpoint_enabled
        set_endpoint_enabled(session, SYSTEM, endpoint_id=made.id, enabled=True, idempotency_key=key())
        make_due_now(session)  # the first event's retry too
        while run_round(session_factory, sender):
            pass
        assert sorted(body["type"] for _, status, body in receiver.received if status == 200) == \
            ["unit.state_changed", "unit.state_changed", "webhook_endpoint.disabled"]
    finally:
        receiver.close()


def test_after_a_rotation_both_secrets_sign(session, session_factory, sender):
    old_receiver, new_receiver = WebhookReceiver(), WebhookReceiver()
    try:
        made = register_endpoint(session, SYSTEM, url=old_receiver.url, event_types=[], idempotency_key=key())
        rotated = rotate_secret(session, SYSTEM, endpoint_id=made.id, idempotency_key=key())
        assert rotated.secret and rotated.secret != made.secret
        old_receiver.secret, new_receiver.secret = made.secret, rotated.secret
        emit(session, 1)
        run_round(session_factory, sender)
        with unit_of_work(session):
            session.execute(update(WebhookEndpoint).values(url=new_receiver.url))
            session.execute(update(WebhookDelivery).values(status="pending", next_attempt_at=utcnow()))
        run_round(session_factory, sender)
        assert old_receiver.bad_signatures == new_receiver.bad_signatures == 0
        assert len(old_receiver.acknowledged()) == len(new_receiver.acknowledged()) == 1
        # The secret is on the answers that made it, never on a record.
        from app.ledger.models import IdempotencyRecord
        records = " ".join(str(r.result) for r in session.scalars(select(IdempotencyRecord)))
        assert made.secret not in records and rotated.secret not in records
    finally:
        old_receiver.close()
        new_receiver.close()


@pytest.mark.pg_only
def test_two_workers_deliver_each_event_once(session, session_factory):
    receiver = WebhookReceiver()
    try:
        made = register_endpoint(session, SYSTEM, url=receiver.url, event_types=[], idempotency_key=key())
        receiver.secret = made.secret
        emit(session, 300)
        senders = [Sender(threads=8), Sender(threads=8)]

        def work(sender: Sender) -> None:
            while run_round(session_factory, sender, batch=25):
                pass

        threads = [threading.Thread(target=work, args=(s,)) for s in senders]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for s in senders:
            s.close()
        ids = [wid for wid, _, _ in receiver.received]
        assert len(ids) == 300 == len(set(ids)) and receiver.bad_signatures == 0
    finally:
        receiver.close()


def test_a_one_off_run_reads_past_pages_of_events_nobody_wants(session, session_factory):
    receiver = WebhookReceiver()
    try:
        made = register_endpoint(session, SYSTEM, url=receiver.url, event_types=["refund.*"], idempotency_key=key())
        receiver.secret = made.secret
        emit(session, 1500)  # more than one fan-out page of events the endpoint does not want
        emit(session, 1, "refund.released")
        run(session_factory, once=True, threads=2)
        assert [body["type"] for _, _, body in receiver.received] == ["refund.released"]
    finally:
        receiver.close()
