"""POST /api/v1/reconciliation/snapshots: a snapshot through the API, kept and compared in one
call; scope, partner's organisation, validation field by field, one effect per Idempotency-Key."""
from __future__ import annotations

import uuid

from sqlalchemy import func, select

from app.api.services import create_api_key
from app.auth.roles import SYSTEM
from app.reconciliation.models import ReconSnapshot, ReconSnapshotLine, ReconVariance
from tests.recon_scenario import build_history, make_source

ROWS = [{"warehouse": "3PL1", "merchant": "ACME", "sku": "TEE-BLU-M", "bucket": "SELLABLE", "quantity": 3},
        {"warehouse": "3PL1", "merchant": "ACME", "sku": "HB-CREAM-50", "bucket": "SELLABLE", "quantity": 1},
        {"warehouse": "3PL1", "merchant": "ACME", "sku": "HB-CREAM-50", "bucket": "DAMAGED", "quantity": 0},
        {"warehouse": "3PL1", "sku": "PHN-X1-128", "bucket": "SELLABLE", "quantity": 2}]


def token(session, scopes, org=None) -> dict[str, str]:  # type: ignore[no-untyped-def]
    made = create_api_key(session, SYSTEM, name=f"k-{uuid.uuid4().hex[:6]}", scopes=scopes,
                          partner_org_id=org.id if org is not None else None, idempotency_key=uuid.uuid4().hex)
    return {"Authorization": f"Bearer {made.token}"}


def snapshots(session) -> tuple[int, int, int]:  # type: ignore[no-untyped-def]
    session.rollback()
    return tuple(session.scalar(select(func.count()).select_from(m)) for m in (ReconSnapshot, ReconSnapshotLine, ReconVariance))


def test_a_partners_snapshot_is_kept_and_compared_once_per_key(client, session, world):
    make_source(session, world)
    t, _units = build_history(session, world)
    h = token(session, ["inventory:write"], world.org)
    body = {"source": "FASTLANE", "as_of": t.isoformat(), "rows": ROWS}
    key = {"Idempotency-Key": "snap-0001-abcdef"}
    first = client.post("/api/v1/reconciliation/snapshots", headers={**h, **key}, json=body)
    assert first.status_code == 201, first.get_json()
    got = first.get_json()
    assert (got["match"], got["over"], got["short"], got["roll_forward_holds"]) == (1, 2, 2, True)
    assert got["value_over"] is None and got["value_short"] is None  # a partner's key is told units, never money
    assert snapshots(session) == (1, 4, 5)
    again = client.post("/api/v1/reconciliation/snapshots", headers={**h, **key}, json=body)
    assert again.status_code == 201 and again.headers.get("Idempotent-Replayed") == "true"
    assert again.get_json() == got
    assert snapshots(session) == (1, 4, 5)  # one effect: without the key's record this would be (2, 8, 10)
    other = client.post("/api/v1/reconciliation/snapshots", headers={**h, **key}, json={**body, "rows": ROWS[:1]})
    assert other.status_code == 422


def test_refusals_name_the_row_and_keep_nothing(client, session, world):
    make_source(session, world)
    h = token(session, ["inventory:write"], world.org)
    url, as_of = "/api/v1/reconciliation/snapshots", "2026-01-01T00:00:00Z"

    def post(rows, headers=h):  # type: ignore[no-untyped-def]
        return client.post(url, headers={**headers, "Idempotency-Key": uuid.uuid4().hex},
                           json={"source": "FASTLANE", "as_of": as_of, "rows": rows})

    negative = post([{**ROWS[0], "quantity": -1}])
    assert negative.status_code == 422 and negative.get_json()["errors"][0]["field"].startswith("rows.0.quantity")
    unknown = post([{**ROWS[0], "sku": "NOPE-9"}, ROWS[1]])
    assert unknown.status_code == 422
    assert {"field": "line 1 sku", "message": "no SKU NOPE-9 in the catalog"} in unknown.get_json()["errors"]
    repeated = post([ROWS[0], ROWS[0]])
    assert repeated.status_code == 422 and "repeats line 1" in repeated.get_json()["errors"][0]["message"]
    elsewhere = post([{**ROWS[0], "warehouse": "WH1"}])
    assert elsewhere.status_code == 422 and "organisation" in elsewhere.get_json()["errors"][0]["message"]
    assert post(ROWS, token(session, ["units:read"], world.org)).status_code == 403
    assert post(ROWS, token(session, ["inventory:write"], world.other_org)).status_code == 404
    assert snapshots(session) == (0, 0, 0)


def test_the_operation_is_in_the_openapi_document(client):
    doc = client.get("/api/v1/openapi.json").get_json()
    op = doc["paths"]["/api/v1/reconciliation/snapshots"]["post"]
    assert "409" in op["responses"] and "reconciliation.completed" in doc["webhooks"]
