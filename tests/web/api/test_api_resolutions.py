"""What the customer asked for per line, through to the refund: a refund, store credit, or an
exchange for another SKU. All three follow the refund lifecycle; an exchange, once released,
publishes exchange.ship_replacement for the order system."""
from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from app.api.services import create_api_key
from app.auth.roles import SYSTEM
from app.disposition.models import ReasonCode
from app.ledger.models import OutboxEvent
from app.receiving.services import open_parcel, scan_item
from tests.helpers import inspect_and_dispose, refund_of


def key() -> str:
    return uuid.uuid4().hex


@pytest.fixture
def shop(session, world):  # type: ignore[no-untyped-def]
    session.add_all([ReasonCode(code="wrong_size", label="Wrong size"), ReasonCode(code="defective", label="Defective")])
    session.commit()
    made = create_api_key(session, SYSTEM, name="Portal", scopes=["rmas:write", "refunds:read"], idempotency_key=key())
    return {"Authorization": f"Bearer {made.token}"}


def test_an_exchange_and_store_credit_are_carried_to_their_refunds(client, session, world, shop):
    rma = client.post("/api/v1/rmas", headers={**shop, "Idempotency-Key": key()}, json={
        "number": "RMA-SWAP-1", "merchant": "ACME", "channel": "web", "warehouse": "WH1", "order_number": "SO-1001",
        "lines": [{"sku": "TEE-BLU-M", "quantity": 1, "reason_code": "wrong_size", "resolution": "exchange",
                   "exchange_sku": "tee-blu-m"},
                  {"sku": "HB-CREAM-50", "quantity": 1, "reason_code": "defective", "resolution": "store_credit"}]})
    assert rma.status_code == 201, rma.data
    assert [(ln["resolution"], ln["exchange_sku"]) for ln in rma.get_json()["lines"]] == [("exchange", "TEE-BLU-M"),
                                                                                          ("store_credit", None)]
    worker = world.actor("worker")
    parcel = open_parcel(session, worker, code="RMA-SWAP-1", warehouse_id=world.wh.id, idempotency_key=key())
    tee = scan_item(session, worker, parcel_id=parcel.parcel_id, product_id=world.products["shirt"].id, idempotency_key=key())
    cream = scan_item(session, worker, parcel_id=parcel.parcel_id, product_id=world.products["cream"].id, idempotency_key=key())
    for unit in (tee, cream):
        inspect_and_dispose(session, worker, unit.unit_id, "available", amount="20.00")
    session.rollback()
    swap, credit = refund_of(session, tee.unit_id), refund_of(session, cream.unit_id)
    assert (swap.status, swap.resolution, swap.exchange_sku) == ("released", "exchange", "TEE-BLU-M")
    assert (credit.status, credit.resolution) == ("released", "store_credit")
    ship = session.scalars(select(OutboxEvent).where(OutboxEvent.type == "exchange.ship_replacement")).all()
    assert [(e.aggregate_id, e.payload["exchange_sku"]) for e in ship] == [(swap.id, "TEE-BLU-M")]
    released = {e.aggregate_id: e.payload for e in session.scalars(select(OutboxEvent).where(OutboxEvent.type == "refund.released"))}
    assert released[credit.id]["resolution"] == "store_credit" and "exchange_sku" not in released[credit.id]
    listed = {r["id"]: r for r in client.get("/api/v1/refunds?status=released", headers=shop).get_json()["refunds"]}
    assert (listed[swap.id]["resolution"], listed[swap.id]["exchange_sku"]) == ("exchange", "TEE-BLU-M")


@pytest.mark.parametrize("line, says", [
    ({"sku": "TEE-BLU-M", "quantity": 1, "reason_code": "wrong_size", "resolution": "exchange"}, "names the SKU"),
    ({"sku": "TEE-BLU-M", "quantity": 1, "reason_code": "wrong_size", "exchange_sku": "HB-CREAM-50"}, "only an exchange"),
    ({"sku": "TEE-BLU-M", "quantity": 1, "reason_code": "wrong_size", "resolution": "exchange", "exchange_sku": "NOPE"},
     "Unknown SKU NOPE"),
    ({"sku": "TEE-BLU-M", "quantity": 1, "reason_code": "wrong_size", "resolution": "voucher"}, "see errors"),
])
def test_a_resolution_that_does_not_add_up_is_refused(client, session, world, shop, line, says):
    resp = client.post("/api/v1/rmas", headers={**shop, "Idempotency-Key": key()}, json={
        "number": "RMA-SWAP-2", "merchant": "ACME", "channel": "web", "warehouse": "WH1", "lines": [line]})
    assert resp.status_code == 422 and says in resp.get_json()["detail"], resp.data
    session.rollback()
    from app.orders.models import Rma
    assert session.scalars(select(Rma).where(Rma.number == "RMA-SWAP-2")).first() is None
