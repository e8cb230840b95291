"""What other systems read: units (paged, filtered), a unit's ledger, a return with its receipt,
refund triggers; each limited to what the key may see (merchants, a partner's warehouses) and a
partner's key never sees money."""
from __future__ import annotations

import uuid

from app.api.services import create_api_key
from app.auth.roles import SYSTEM
from app.ledger.models import ReturnUnit
from tests.helpers import inspect_and_dispose, receive_unit


def key() -> str:
    return uuid.uuid4().hex


def api(session, *scopes, merchants=None, partner_org_id=None):  # type: ignore[no-untyped-def]
    made = create_api_key(session, SYSTEM, name="Reader", scopes=list(scopes), merchant_codes=merchants,
                          partner_org_id=partner_org_id, idempotency_key=key())
    return {"Authorization": f"Bearer {made.token}"}


def test_units_page_by_page_and_filtered(client, session, world):
    worker = world.actor("worker")
    units = [receive_unit(session, world, p, worker) for p in ("shirt", "cream", "shirt")]
    inspect_and_dispose(session, worker, units[0].id, "available", amount="20.00")
    h = api(session, "units:read")
    first = client.get("/api/v1/units?limit=2", headers=h).get_json()
    assert [u["lpn"] for u in first["units"]] == [units[0].lpn, units[1].lpn] and first["has_more"]
    rest = client.get(f"/api/v1/units?limit=2&after={first['next']}", headers=h).get_json()
    assert [u["lpn"] for u in rest["units"]] == [units[2].lpn] and not rest["has_more"]
    available = client.get("/api/v1/units?state=available", headers=h).get_json()["units"]
    assert [(u["lpn"], u["sku"], u["warehouse"], u["merchant"]) for u in available] == [(units[0].lpn, "TEE-BLU-M", "WH1", "ACME")]
    assert client.get("/api/v1/units?state=lost", headers=h).status_code == 422
    assert client.get("/api/v1/units?warehouse=3PL1", headers=h).get_json()["units"] == []
    assert len(client.get("/api/v1/units?merchant=acme", headers=h).get_json()["units"]) == 3
    assert client.get("/api/v1/units?merchant=GLOBEX", headers=h).get_json()["units"] == []
    ledger = client.get(f"/api/v1/units/{units[0].lpn.lower()}/ledger", headers=h).get_json()
    assert [(e["from_state"], e["to_state"]) for e in ledger["entries"]] == [(None, "received"), ("received", "available")]
    assert client.get("/api/v1/units/LP99999999/ledger", headers=h).status_code == 404
    # Another merchant's key sees none of it.
    globex = api(session, "units:read", merchants=["GLOBEX"])
    assert client.get("/api/v1/units", headers=globex).get_json()["units"] == []
    assert client.get(f"/api/v1/units/{units[0].lpn}/ledger", headers=globex).status_code == 404


def test_a_return_with_its_receipt(client, session, world):
    unit = receive_unit(session, world, "phone", world.actor("worker"))
    line = next(ln for ln in world.rma.lines if ln.product_id == world.products["phone"].id)
    session.execute(ReturnUnit.__table__.update().where(ReturnUnit.id == unit.id).values(rma_id=world.rma.id, rma_line_id=line.id))
    session.commit()
    h = api(session, "units:read")
    rma = client.get("/api/v1/rmas/rma-5001", headers=h)
    assert rma.status_code == 200, rma.data
    body = rma.get_json()
    assert body["number"] == "RMA-5001" and body["merchant"] == "ACME" and body["warehouse"] == "WH1"
    assert {(ln["sku"], ln["expected"], ln["received"]) for ln in body["lines"]} >= {("PHN-X1-128", 1, 1)}
    assert body["trackings"][0]["tracking_number"] == "1Z999AA10123456784"
    assert client.get("/api/v1/rmas/NOPE", headers=h).status_code == 404
    assert client.get("/api/v1/rmas/RMA-5001", headers=api(session, "units:read", merchants=["GLOBEX"])).status_code == 404


def test_refunds_for_finance_and_no_money_for_a_partner(client, session, world):
    unit = receive_unit(session, world, "shirt", world.actor("worker"))
    inspect_and_dispose(session, world.actor("worker"), unit.id, "available", amount="20.00")
    finance = client.get("/api/v1/refunds?status=released", headers=api(session, "refunds:read")).get_json()["refunds"]
    assert [(r["lpn"], r["amount"]) for r in finance] == [(unit.lpn, {"amount": "20.00", "currency": "USD"})]
    partner = api(session, "refunds:read", partner_org_id=world.org.id)
    seen = client.get("/api/v1/refunds", headers=partner).get_json()["refunds"]
    assert all(r["amount"] is None and r["paid"] is None for r in seen)
    assert unit.lpn not in [r["lpn"] for r in seen]  # received at WH1, which the partner does not run


def test_balances_as_the_ledger_sums_them_page_by_page(client, session, world):
    worker = world.actor("worker")
    units = [receive_unit(session, world, p, worker) for p in ("shirt", "shirt", "cream")]
    inspect_and_dispose(session, worker, units[0].id, "available", amount="20.00")
    receive_unit(session, world, "cream", world.actor("partner"), warehouse=world.wh3pl)
    h = api(session, "units:read")
    first = client.get("/api/v1/balances?limit=1", headers=h).get_json()
    assert first["has_more"] and len(first["balances"]) == 1
    everything = first["balances"] + client.get(f"/api/v1/balances?after={first['next']}", headers=h).get_json()["balances"]
    got = {(b["warehouse"], b["sku"]): b["quantities"] for b in everything}
    assert got == {("WH1", "TEE-BLU-M"): {"received": 1, "available": 1}, ("WH1", "HB-CREAM-50"): {"received": 1},
                   ("3PL1", "HB-CREAM-50"): {"received": 1}}
    only = client.get("/api/v1/balances?warehouse=3pl1", headers=h).get_json()["balances"]
    assert [(b["warehouse"], b["sku"]) for b in only] == [("3PL1", "HB-CREAM-50")]
    partner = api(session, "units:read", partner_org_id=world.org.id)
    assert {b["warehouse"] for b in client.get("/api/v1/balances", headers=partner).get_json()["balances"]} == {"3PL1"}
    assert client.get("/api/v1/balances", headers=api(session, "units:read", merchants=["GLOBEX"])).get_json()["balances"] == []
    assert client.get("/api/v1/balances?after=99999999999.1", headers=h).status_code == 422
