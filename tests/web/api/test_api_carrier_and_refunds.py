"""Carrier events and finance's refund acknowledgements through the API."""
from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select

from app.api.services import create_api_key
from app.auth.roles import SYSTEM
from app.ledger.models import OutboxEvent
from app.orders.models import CarrierTracking, Rma
from app.refunds.models import RefundEvent, RefundTrigger
from tests.helpers import inspect_and_dispose, receive_unit, refund_of


def key() -> str:
    return uuid.uuid4().hex


def api(session, *scopes, merchants=None):  # type: ignore[no-untyped-def]
    made = create_api_key(session, SYSTEM, name="Connector", scopes=list(scopes), merchant_codes=merchants, idempotency_key=key())
    return {"Authorization": f"Bearer {made.token}"}


def test_carrier_events_keep_the_newest_status_and_move_the_return(client, session, world):
    headers = {**api(session, "carrier:write")}
    tracking = session.scalars(select(CarrierTracking).where(CarrierTracking.rma_id == world.rma.id)).first()
    session.execute(CarrierTracking.__table__.update().values(status="label_created", last_event_at=None))
    session.execute(Rma.__table__.update().where(Rma.id == world.rma.id).values(status="authorized"))
    session.commit()
    number = tracking.tracking_number
    events = [{"tracking_number": number.lower(), "status": "delivered", "at": "2026-12-01T15:00:00Z"},
              {"tracking_number": number, "status": "in_transit", "at": "2026-11-30T09:00:00+01:00"}]
    k = key()
    resp = client.post("/api/v1/carrier-events", json={"events": events}, headers={**headers, "Idempotency-Key": k})
    assert resp.status_code == 200, resp.data
    assert [i["outcome"] for i in resp.get_json()["items"]] == ["updated", "updated"]  # applied oldest first
    session.rollback()
    session.expire_all()
    t = session.get(CarrierTracking, tracking.id)
    assert t.status == "delivered" and t.last_event_at.isoformat().startswith("2026-12-01T15:00")
    assert session.get(Rma, world.rma.id).status == "in_transit"
    kinds = session.scalars(select(OutboxEvent.type).where(OutboxEvent.type.like("rma.carrier_%")).order_by(OutboxEvent.id)).all()
    assert kinds == ["rma.carrier_in_transit", "rma.carrier_delivered"]
    # An older event, sent late, changes nothing; the same call again is a replay.
    late = client.post("/api/v1/carrier-events", json={"events": [{"tracking_number": number, "status": "out_for_delivery",
                                                                   "at": "2026-12-01T08:00:00Z"}]},
                       headers={**headers, "Idempotency-Key": key()})
    assert late.get_json()["items"][0]["outcome"] == "unchanged"
    again = client.post("/api/v1/carrier-events", json={"events": events}, headers={**headers, "Idempotency-Key": k})
    assert again.headers["Idempotent-Replayed"] == "true"
    session.rollback()
    session.expire_all()
    assert session.get(CarrierTracking, tracking.id).status == "delivered"
    assert session.scalar(select(func.count()).select_from(OutboxEvent).where(OutboxEvent.type.like("rma.carrier_%"))) == 2


@pytest.mark.parametrize("event, field", [
    ({"tracking_number": "NOPE123", "status": "delivered", "at": "2026-12-01T15:00:00Z"}, "events.0.tracking_number"),
    ({"tracking_number": "X1", "status": "lost", "at": "2026-12-01T15:00:00Z"}, "events.0.status"),
    ({"tracking_number": "X1", "status": "delivered", "at": "2026-12-01T15:00:00"}, "events.0.at"),
    ({"tracking_number": "X1", "status": "delivered", "at": "soon"}, "events.0.at"),
    ({"tracking_number": "X1", "status": "delivered", "at": "9999-12-31T23:59:59-23:00"}, "events.0.at"),
])
def test_a_bad_carrier_event_writes_nothing(client, session, world, event, field):
    headers = api(session, "carrier:write")
    before = session.scalar(select(func.count()).select_from(OutboxEvent))
    resp = client.post("/api/v1/carrier-events", json={"events": [event]}, headers={**headers, "Idempotency-Key": key()})
    assert resp.status_code == 422 and any(e["field"] == field for e in resp.get_json()["errors"]), resp.data
    session.rollback()
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(OutboxEvent)) == before


def test_finance_acknowledges_a_released_refund_once_with_its_reference(client, session, world):
    unit = receive_unit(session, world, "shirt", world.actor("worker"))
    inspect_and_dispose(session, world.actor("worker"), unit.id, "available", amount="20.00")
    refund = refund_of(session, unit.id)
    assert refund.status == "released"
    headers = api(session, "refunds:ack")
    k = key()
    url = f"/api/v1/refunds/{refund.id}/acknowledge"
    first = client.post(url, json={"payment_reference": "PAY-778"}, headers={**headers, "Idempotency-Key": k})
    assert first.status_code == 200 and first.get_json() == {"id": refund.id, "status": "acknowledged"}, first.data
    assert client.post(url, json={"payment_reference": "PAY-778"}, headers={**headers, "Idempotency-Key": k}).headers["Idempotent-Replayed"] == "true"
    twice = client.post(url, json={"payment_reference": "PAY-779"}, headers={**headers, "Idempotency-Key": key()})
    assert twice.status_code == 409 and twice.mimetype == "application/problem+json"
    session.rollback()
    session.expire_all()
    assert session.get(RefundTrigger, refund.id).payment_reference == "PAY-778"
    assert session.scalar(select(func.count()).select_from(RefundEvent).where(
        RefundEvent.refund_id == refund.id, RefundEvent.to_status == "acknowledged")) == 1
    assert client.post("/api/v1/refunds/999999/acknowledge", json={"payment_reference": "X"},
                       headers={**headers, "Idempotency-Key": key()}).status_code == 404


def test_a_refund_is_not_acknowledged_by_the_wrong_key(client, session, world):
    unit = receive_unit(session, world, "shirt", world.actor("worker"))
    inspect_and_dispose(session, world.actor("worker"), unit.id, "available", amount="20.00")
    refund = refund_of(session, unit.id)
    url = f"/api/v1/refunds/{refund.id}/acknowledge"
    body = {"payment_reference": "PAY-1"}
    assert client.post(url, json=body, headers={**api(session, "refunds:read"), "Idempotency-Key": key()}).status_code == 403
    other = api(session, "refunds:ack", merchants=["GLOBEX"])
    assert client.post(url, json=body, headers={**other, "Idempotency-Key": key()}).status_code == 404
    session.rollback()
    session.expire_all()
    assert session.get(RefundTrigger, refund.id).status == "released"


def test_a_merchants_key_does_not_acknowledge_a_refund_of_no_merchant(client, session, world):
    unit = receive_unit(session, world, "shirt", world.actor("worker"), merchant=None)  # a blind receipt
    inspect_and_dispose(session, world.actor("worker"), unit.id, "available", amount="20.00")
    refund = refund_of(session, unit.id)
    acme = api(session, "refunds:ack", merchants=["ACME"])
    resp = client.post(f"/api/v1/refunds/{refund.id}/acknowledge", json={"payment_reference": "PAY-2"},
                       headers={**acme, "Idempotency-Key": key()})
    assert resp.status_code == 404
