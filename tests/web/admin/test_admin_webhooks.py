"""The console's webhooks: register (the secret shown once), switch off and on, rotate, see the
delivery log and send again; the API's webhooks:manage operations; nobody else may."""
from __future__ import annotations

import re
import uuid

import pytest
from sqlalchemy import select

from app.api.services import create_api_key
from app.auth.roles import SYSTEM
from app.db import unit_of_work
from app.ledger.writer import event_row
from app.rows import write
from app.webhooks.models import WebhookDelivery, WebhookEndpoint
from app.webhooks.services import fan_out
from tests.conftest import login

HX = {"HX-Request": "true"}


def key() -> str:
    return uuid.uuid4().hex


@pytest.mark.parametrize("username", ["worker", "super", "partner"])
def test_only_admins_manage_webhooks(client, world, session, username):
    login(client, username)
    assert client.get("/admin/webhooks").status_code == 403
    assert client.post("/admin/webhooks", data={"key": key(), "url": "http://127.0.0.1:9/x"}).status_code == 403
    assert session.scalars(select(WebhookEndpoint)).all() == []


def test_an_admin_registers_an_endpoint_and_works_its_log(client, world, session):
    login(client, "admin")
    form = {"key": key(), "url": "http://127.0.0.1:9/hooks", "event_types": "unit.state_changed, refund.*",
            "description": "ERP"}
    made = client.post("/admin/webhooks", data=form, headers=HX)
    secret = re.search(rb'<code class="token">(whsec_[^<]+)</code>', made.data).group(1).decode()
    again = client.post("/admin/webhooks", data=form, headers=HX)
    assert b"already registered" in again.data and secret.encode() not in again.data
    ep = session.scalars(select(WebhookEndpoint)).one()
    assert ep.event_types == ["refund.*", "unit.state_changed"] and ep.secret == secret
    with unit_of_work(session):
        write(session, [event_row("unit.state_changed", "unit", 1, {}), event_row("rma.created", "rma", 1, {})])
    fan_out(session)
    log = client.get(f"/admin/webhooks/{ep.id}")
    assert log.status_code == 200 and b"unit.state_changed" in log.data and b"rma.created" not in log.data
    off = client.post(f"/admin/webhooks/{ep.id}/disable", data={"key": key()}, headers=HX)
    assert b"switched off" in off.data
    rotated = client.post(f"/admin/webhooks/{ep.id}/rotate", data={"key": key()}, headers=HX)
    new_secret = re.search(rb'<code class="token">(whsec_[^<]+)</code>', rotated.data).group(1).decode()
    session.rollback()
    session.expire_all()
    ep = session.get(WebhookEndpoint, ep.id)
    assert ep.secret == new_secret and ep.previous_secret == secret and ep.disabled_at is not None
    d = session.scalars(select(WebhookDelivery)).one()
    resent = client.post(f"/admin/webhooks/{ep.id}/resend", data={"key": key(), "delivery_id": str(d.id)}, headers=HX)
    assert b"1 deliveries will be sent again" in resent.data
    session.rollback()
    session.expire_all()
    assert session.get(WebhookEndpoint, ep.id).disabled_at is None


def test_a_bad_endpoint_is_refused_clearly(client, world, session):
    login(client, "admin")
    for url in ("ftp://example.com/x", "not a url", "http:///nohost"):
        resp = client.post("/admin/webhooks", data={"key": key(), "url": url}, headers=HX)
        assert resp.status_code == 422 and b"http:// or https:// URL" in resp.data
    resp = client.post("/admin/webhooks", data={"key": key(), "url": "http://x.example/h", "event_types": "bad type!"}, headers=HX)
    assert resp.status_code == 422 and b"is not an event type" in resp.data
    assert session.scalars(select(WebhookEndpoint)).all() == []


def test_the_api_manages_webhooks_with_its_scope(client, world, session):
    made = create_api_key(session, SYSTEM, name="Ops", scopes=["webhooks:manage"], idempotency_key=key())
    h = {"Authorization": f"Bearer {made.token}"}
    reg = client.post("/api/v1/webhooks", json={"url": "http://127.0.0.1:9/in", "event_types": ["rma.*"]},
                      headers={**h, "Idempotency-Key": key()})
    assert reg.status_code == 201 and reg.get_json()["secret"].startswith("whsec_")
    listed = client.get("/api/v1/webhooks", headers=h).get_json()["webhooks"]
    assert [(w["url"], w["event_types"], w["pending"]) for w in listed] == [("http://127.0.0.1:9/in", ["rma.*"], 0)]
    assert "secret" not in listed[0]
    resent = client.post(f"/api/v1/webhooks/{reg.get_json()['id']}/resend", headers={**h, "Idempotency-Key": key()})
    assert resent.status_code == 200 and resent.get_json() == {"endpoint_id": reg.get_json()["id"], "deliveries": 0}
    assert client.post("/api/v1/webhooks/999/resend", headers={**h, "Idempotency-Key": key()}).status_code == 404
    reader = create_api_key(session, SYSTEM, name="Reader", scopes=["units:read"], idempotency_key=key())
    assert client.get("/api/v1/webhooks", headers={"Authorization": f"Bearer {reader.token}"}).status_code == 403
