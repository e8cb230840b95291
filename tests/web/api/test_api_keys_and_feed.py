"""API keys over HTTP: a live key with the scope reads the feed; no key, a wrong or revoked key
is 401, a key without the scope 403, all as problem+json; the token is never stored or logged;
the OpenAPI document and its reference page describe the operations."""
from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select, text

from app.api.models import ApiKey
from app.api.services import create_api_key, revoke_api_key
from app.auth.roles import SYSTEM
from app.db import unit_of_work
from app.errors import ValidationFailed
from app.ledger.models import AuditEntry, IdempotencyRecord
from app.ledger.writer import event_row
from app.rows import write


def key() -> str:
    return uuid.uuid4().hex


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _problem(resp, status: int) -> dict:  # type: ignore[no-untyped-def]
    assert resp.status_code == status, resp.data[:400]
    assert resp.mimetype == "application/problem+json"
    body = resp.get_json(force=True)
    assert body["status"] == status and body["detail"] and body["request_id"]
    return body


def test_a_key_reads_the_feed_and_only_a_live_key_with_the_scope_does(client, world, session, caplog):
    reader = create_api_key(session, SYSTEM, name="ERP", scopes=["events:read"], idempotency_key=key())
    other = create_api_key(session, SYSTEM, name="Storefront", scopes=["rmas:write"], idempotency_key=key())
    with unit_of_work(session):
        write(session, [event_row("test.happened", "test", i, {"i": i}) for i in range(3)])
    page = client.get("/api/v1/events?limit=2", headers=bearer(reader.token))
    assert page.status_code == 200 and page.mimetype == "application/json"
    body = page.get_json()
    assert [e["data"]["i"] for e in body["events"]] == [0, 1] and body["has_more"] is True
    rest = client.get(f"/api/v1/events?after={body['next']}", headers=bearer(reader.token)).get_json()
    assert [e["data"]["i"] for e in rest["events"]] == [2] and rest["has_more"] is False
    assert rest["events"][0]["at"].endswith("Z") and rest["events"][0]["id"].startswith("evt_")

    _problem(client.get("/api/v1/events"), 401)
    _problem(client.get("/api/v1/events", headers=bearer("dk_0123456789_" + "x" * 43)), 401)
    forged = reader.token[:-4] + ("aaaa" if not reader.token.endswith("aaaa") else "bbbb")
    _problem(client.get("/api/v1/events", headers=bearer(forged)), 401)
    assert "events:read" in _problem(client.get("/api/v1/events", headers=bearer(other.token)), 403)["detail"]
    revoke_api_key(session, SYSTEM, key=reader.key_id, idempotency_key=key())
    _problem(client.get("/api/v1/events", headers=bearer(reader.token)), 401)

    # The token is nowhere: not in the key's row, the audit log, the key's idempotency record, nor the logs.
    session.rollback()
    stored = " ".join(str(v) for k in session.scalars(select(ApiKey)) for v in k.__dict__.values())
    stored += " ".join(str(a.details) for a in session.scalars(select(AuditEntry)))
    stored += " ".join(str(r.result) for r in session.scalars(select(IdempotencyRecord)))
    for token in (reader.token, other.token):
        secret = token.rsplit("_", 1)[1]
        assert secret not in stored and secret not in caplog.text
    assert session.scalars(select(ApiKey).where(ApiKey.key_id == reader.key_id)).one().last_used_at is not None
    actions = [a.action for a in session.scalars(select(AuditEntry).where(AuditEntry.entity_type == "api_key"))]
    assert sorted(actions) == ["api_key.created", "api_key.created", "api_key.revoked"]


def test_a_lost_answer_makes_one_key_and_the_replay_does_not_show_the_token_again(session, world):
    k = key()
    first = create_api_key(session, SYSTEM, name="WMS", scopes=["units:read"], idempotency_key=k)
    again = create_api_key(session, SYSTEM, name="WMS", scopes=["units:read"], idempotency_key=k)
    assert first.token and again.replayed and again.token is None and again.key_id == first.key_id
    assert session.scalars(select(ApiKey)).all() and len(session.scalars(select(ApiKey)).all()) == 1


@pytest.mark.parametrize("kwargs, message", [
    ({"name": "", "scopes": ["units:read"]}, "name"),
    ({"name": "X", "scopes": []}, "at least one scope"),
    ({"name": "X", "scopes": ["units:write"]}, "Unknown scope units:write"),
    ({"name": "X", "scopes": ["units:read"], "merchant_codes": ["NOPE"]}, "No merchant NOPE"),
    ({"name": "X", "scopes": ["events:read"], "merchant_codes": ["ACME"]}, "cannot hold events:read"),
])
def test_a_bad_key_request_is_refused_and_writes_nothing(session, world, kwargs, message):
    with pytest.raises(ValidationFailed, match=message):
        create_api_key(session, SYSTEM, idempotency_key=key(), **kwargs)
    session.rollback()
    assert session.scalars(select(ApiKey)).all() == []


def test_a_merchant_key_is_limited_to_its_merchants(session, world):
    made = create_api_key(session, SYSTEM, name="Acme shop", scopes=["rmas:write"], merchant_codes=["acme"],
                          idempotency_key=key())
    row = session.get(ApiKey, made.id)
    assert row.merchant_ids == [world.merchant.id]


def test_every_refusal_of_the_api_is_problem_json(client, world, session):
    made = create_api_key(session, SYSTEM, name="ERP", scopes=["events:read"], idempotency_key=key())
    body = _problem(client.get("/api/v1/events?limit=0", headers=bearer(made.token)), 422)
    assert body["errors"] == [{"field": "limit", "message": "Input should be greater than or equal to 1"}]
    _problem(client.get("/api/v1/events?after=nonsense", headers=bearer(made.token)), 422)
    _problem(client.get("/api/v1/nowhere", headers=bearer(made.token)), 404)
    _problem(client.post("/api/v1/events", headers=bearer(made.token), json={}), 405)
    _problem(client.get("/api/v1/events\x00", headers=bearer(made.token)), 400)


def test_the_openapi_document_and_its_reference_page(client, world):
    doc = client.get("/api/v1/openapi.json").get_json()
    assert doc["openapi"] == "3.1.0" and doc["info"]["title"] == "Dockhand API"
    events = doc["paths"]["/api/v1/events"]["get"]
    assert {p["name"] for p in events["parameters"]} == {"after", "limit"}
    assert set(events["responses"]) >= {"200", "401", "403", "422"}
    assert doc["components"]["securitySchemes"]["apiKey"] == {"type": "http", "scheme": "bearer"}
    page = client.get("/api/v1/docs")
    assert page.status_code == 200 and b"GET /api/v1/events" in page.data and b"events:read" in page.data


def test_the_key_table_is_migrated_with_the_feed_order_column(session):
    # The feed's order needs the writing transaction's id on PostgreSQL; SQLite leaves it empty.
    dialect = session.get_bind().dialect.name
    with unit_of_work(session):
        write(session, [event_row("test.happened", "test", 1, {})])
    tx = session.execute(text("SELECT tx FROM outbox_events")).scalar_one()
    assert (tx is not None and tx > 0) if dialect == "postgresql" else tx is None


def test_bodies_no_database_can_hold_are_refused_before_anything(client, world, session):
    made = create_api_key(session, SYSTEM, name="x" * 90, scopes=["rmas:write"], idempotency_key=key())
    h = {**bearer(made.token), "Idempotency-Key": key()}
    deep = _problem(client.post("/api/v1/rmas", headers=h, data="[" * 100_000 + "]" * 100_000,
                                content_type="application/json"), 422)
    assert "not valid JSON" in deep["detail"]
    nested = _problem(client.post("/api/v1/rmas", headers=h, data="[" * 500 + "]" * 500, content_type="application/json"), 422)
    assert "nested" in nested["detail"]
    lone = _problem(client.post("/api/v1/rmas", headers=h, data='{"number": "\\ud800"}', content_type="application/json"), 422)
    assert "surrogate" in lone["detail"]
    with pytest.raises(ValidationFailed, match="at most 90"):
        create_api_key(session, SYSTEM, name="y" * 91, scopes=["rmas:write"], idempotency_key=key())


def test_a_partners_key_only_reads(session, world):
    with pytest.raises(ValidationFailed, match="reads only"):
        create_api_key(session, SYSTEM, name="3PL", scopes=["units:read", "rmas:write"], partner_org_id=world.org.id,
                       idempotency_key=key())
