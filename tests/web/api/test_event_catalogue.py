"""The event catalogue (app/api/events.py) is the whole truth: every type the code writes is in it
and in the OpenAPI document's webhooks, and no payload carries a field it does not list."""
from __future__ import annotations

import re
import uuid
from pathlib import Path

from sqlalchemy import select

from app.api.events import EVENT_TYPES
from app.api.services import create_api_key
from app.auth.roles import SYSTEM
from app.disposition.models import ReasonCode
from app.intake.domain import CARRIER_STATUSES
from app.ledger.models import OutboxEvent
from app.receiving.services import close_parcel, open_parcel, scan_item
from app.refunds.domain import REFUND_STATUSES
from tests.helpers import inspect_and_dispose

APP = Path(__file__).resolve().parents[3] / "app"
# The f-string event types in the code, and every value each can take.
EXPANSIONS = {'f"refund.{to_status}"': [f"refund.{s}" for s in REFUND_STATUSES],
              'f"rma.carrier_{e.status}"': [f"rma.carrier_{s}" for s in CARRIER_STATUSES]}


def key() -> str:
    return uuid.uuid4().hex


def test_every_type_the_code_writes_is_catalogued_and_documented(client, world):
    written: set[str] = set()
    for path in APP.rglob("*.py"):
        for literal in re.findall(r'event_row\((f?"[^"]+")', path.read_text()):
            if literal.startswith("f"):
                assert literal in EXPANSIONS, f"{path}: say which types {literal} can make (EXPANSIONS)"
                written.update(EXPANSIONS[literal])
            else:
                written.add(literal.strip('"'))
    assert written and written <= set(EVENT_TYPES), written - set(EVENT_TYPES)
    doc = client.get("/api/v1/openapi.json").get_json()
    assert set(doc["webhooks"]) == set(EVENT_TYPES)
    hook = doc["webhooks"]["unit.state_changed"]["post"]
    assert hook["requestBody"]["content"]["application/json"]["schema"]["properties"]["data"]["$ref"] == \
        "#/components/schemas/UnitStateChanged"
    assert "to_state" in doc["components"]["schemas"]["UnitStateChanged"]["properties"]


def test_the_payloads_written_carry_only_catalogued_fields(client, session, world):
    session.add_all([ReasonCode(code="defective", label="Defective"), ReasonCode(code="wrong_size", label="Wrong size")])
    session.commit()
    token = create_api_key(session, SYSTEM, name="Shop", scopes=["rmas:write", "carrier:write"], idempotency_key=key()).token
    h = {"Authorization": f"Bearer {token}"}
    assert client.post("/api/v1/rmas", headers={**h, "Idempotency-Key": key()}, json={
        "number": "RMA-CAT-1", "merchant": "ACME", "channel": "web", "warehouse": "WH1", "order_number": "SO-1001",
        "tracking_numbers": ["1ZCAT0000000001"],
        "lines": [{"sku": "TEE-BLU-M", "quantity": 1, "reason_code": "wrong_size", "resolution": "exchange",
                   "exchange_sku": "TEE-BLU-M"}]}).status_code == 201
    assert client.post("/api/v1/carrier-events", headers={**h, "Idempotency-Key": key()}, json={"events": [
        {"tracking_number": "1ZCAT0000000001", "status": "delivered", "at": "2026-12-01T10:00:00Z"}]}).status_code == 200
    worker = world.actor("worker")
    parcel = open_parcel(session, worker, code="RMA-CAT-1", warehouse_id=world.wh.id, idempotency_key=key())
    tee = scan_item(session, worker, parcel_id=parcel.parcel_id, product_id=world.products["shirt"].id, idempotency_key=key())
    scan_item(session, worker, parcel_id=parcel.parcel_id, product_id=world.products["cream"].id, idempotency_key=key())
    inspect_and_dispose(session, worker, tee.unit_id, "available", amount="20.00")
    close_parcel(session, worker, parcel_id=parcel.parcel_id, idempotency_key=key())
    session.rollback()
    events = session.scalars(select(OutboxEvent)).all()
    seen = {e.type for e in events}
    assert {"rma.created", "rma.carrier_delivered", "rma.receiving", "unit.state_changed", "refund.released",
            "exchange.ship_replacement", "exception.opened", "rma.closed"} <= seen, seen
    for e in events:
        model = EVENT_TYPES[e.type]
        undocumented = set(e.payload) - set(model.model_fields)
        assert not undocumented, (e.type, undocumented)
        model.model_validate(e.payload)
