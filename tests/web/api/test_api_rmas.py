"""POST /api/v1/rmas: a return authorised by another system, found by the dock, once only."""
from __future__ import annotations

import threading
import uuid

import pytest
from sqlalchemy import func, select

from app.api.services import create_api_key
from app.auth.roles import SYSTEM
from app.disposition.models import ReasonCode
from app.ledger.models import AuditEntry, OutboxEvent
from app.orders.models import CarrierTracking, Rma, RmaLine
from app.orders.queries import find_return


def key() -> str:
    return uuid.uuid4().hex


@pytest.fixture
def shop(session, world):  # type: ignore[no-untyped-def]
    session.add_all([ReasonCode(code="defective", label="Defective"), ReasonCode(code="wrong_size", label="Wrong size")])
    session.commit()
    made = create_api_key(session, SYSTEM, name="Storefront", scopes=["rmas:write"], idempotency_key=key())
    return {"Authorization": f"Bearer {made.token}"}


def body(**over):  # type: ignore[no-untyped-def]
    rma = {"number": "rma-9001", "merchant": "ACME", "channel": "web", "warehouse": "WH1", "order_number": None,
           "customer_ref": "C-77", "customer_name": "Ada Lovelace", "carrier": "UPS", "tracking_numbers": ["1zapi00000000001"],
           "lines": [{"sku": "TEE-BLU-M", "quantity": 2, "reason_code": "wrong_size"},
                     {"sku": "HB-CREAM-50", "quantity": 1, "reason_code": "defective"}]}
    rma.update(over)
    return rma


def counts(session):  # type: ignore[no-untyped-def]
    session.rollback()
    return tuple(session.scalar(select(func.count()).select_from(m)) for m in (Rma, RmaLine, CarrierTracking, OutboxEvent))


def test_a_return_put_in_is_found_by_the_dock_and_a_retry_makes_one(client, session, world, shop):
    k = key()
    first = client.post("/api/v1/rmas", json=body(), headers={**shop, "Idempotency-Key": k})
    assert first.status_code == 201, first.data
    made = first.get_json()
    assert made["number"] == "RMA-9001" and made["status"] == "authorized" and made["tracking_numbers"] == ["1ZAPI00000000001"]
    assert [(ln["sku"], ln["quantity"]) for ln in made["lines"]] == [("TEE-BLU-M", 2), ("HB-CREAM-50", 1)]
    before = counts(session)
    again = client.post("/api/v1/rmas", json=body(), headers={**shop, "Idempotency-Key": k})
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true" and again.get_json() == made
    assert counts(session) == before
    # The dock finds it by the tracking number on the parcel's label, as by its number.
    assert find_return(session, world.users["worker"].actor(), "1zapi00000000001") == (made["id"], "tracking number")
    event = session.scalars(select(OutboxEvent).where(OutboxEvent.type == "rma.created")).one()
    assert event.payload["number"] == "RMA-9001"
    audit = session.scalars(select(AuditEntry).where(AuditEntry.action == "rma.created")).one()
    assert audit.actor_name.startswith("API key Storefront")
    # The same key with another body is refused and writes nothing.
    other = client.post("/api/v1/rmas", json=body(number="RMA-9002"), headers={**shop, "Idempotency-Key": k})
    assert other.status_code == 422 and other.mimetype == "application/problem+json"
    assert counts(session) == before


@pytest.mark.parametrize("change, status, says", [
    ({"lines": [{"sku": "NOPE-1", "quantity": 1, "reason_code": "defective"}]}, 422, "Unknown SKU NOPE-1"),
    ({"lines": [{"sku": "TEE-BLU-M", "quantity": -1, "reason_code": "defective"}]}, 422, "see errors"),
    ({"lines": [{"sku": "TEE-BLU-M", "quantity": "two", "reason_code": "defective"}]}, 422, "see errors"),
    ({"lines": [{"sku": "TEE-BLU-M", "quantity": 1, "reason_code": "meh"}]}, 422, "Unknown reason code meh"),
    ({"lines": []}, 422, "see errors"),
    ({"merchant": "NOPE"}, 422, "No merchant NOPE"),
    ({"warehouse": "XX9"}, 422, "No warehouse XX9"),
    ({"order_number": "SO-NOPE"}, 422, "No order SO-NOPE"),
    ({"number": "bad number!"}, 422, "see errors"),
    ({"surprise": 1}, 422, "see errors"),
])
def test_bad_input_is_refused_as_problem_json_and_writes_nothing(client, session, world, shop, change, status, says):
    before = counts(session)
    resp = client.post("/api/v1/rmas", json=body(**change), headers={**shop, "Idempotency-Key": key()})
    assert resp.status_code == status and resp.mimetype == "application/problem+json", resp.data
    assert says in resp.get_json()["detail"]
    assert counts(session) == before


def test_duplicates_bodies_and_keys_are_refused_clearly(client, session, world, shop):
    assert client.post("/api/v1/rmas", json=body(), headers={**shop, "Idempotency-Key": key()}).status_code == 201
    before = counts(session)
    dup = client.post("/api/v1/rmas", json=body(), headers={**shop, "Idempotency-Key": key()})
    assert dup.status_code == 409 and "exists already" in dup.get_json()["detail"]
    track = client.post("/api/v1/rmas", json=body(number="RMA-9003"), headers={**shop, "Idempotency-Key": key()})
    assert track.status_code == 409 and "belongs to another return" in track.get_json()["detail"]
    nokey = client.post("/api/v1/rmas", json=body(number="RMA-9004"), headers=shop)
    assert nokey.status_code == 422 and nokey.get_json()["errors"][0]["field"] == "Idempotency-Key"
    text = client.post("/api/v1/rmas", data="number=1", headers={**shop, "Idempotency-Key": key()},
                       content_type="application/x-www-form-urlencoded")
    assert text.status_code == 415 and text.mimetype == "application/problem+json"
    broken = client.post("/api/v1/rmas", data="{nope", headers={**shop, "Idempotency-Key": key()}, content_type="application/json")
    assert broken.status_code == 422 and "not valid JSON" in broken.get_json()["detail"]
    huge = client.post("/api/v1/rmas", data='{"x": "' + "a" * 2_000_000 + '"}', headers={**shop, "Idempotency-Key": key()},
                       content_type="application/json")
    assert huge.status_code == 413 and huge.mimetype == "application/problem+json"
    assert counts(session) == before


def test_a_key_limited_to_another_merchant_writes_nothing(client, session, world, shop):
    made = create_api_key(session, SYSTEM, name="Globex shop", scopes=["rmas:write"], merchant_codes=["GLOBEX"],
                          idempotency_key=key())
    before = counts(session)
    resp = client.post("/api/v1/rmas", json=body(), headers={"Authorization": f"Bearer {made.token}", "Idempotency-Key": key()})
    assert resp.status_code == 422 and "may not write for merchant ACME" in resp.get_json()["detail"]
    assert counts(session) == before


@pytest.mark.pg_only
def test_ten_concurrent_posts_with_one_key_make_one_return(app, session, world, shop):
    k = key()
    answers: list[tuple[int, dict]] = []
    start = threading.Barrier(10)

    def post() -> None:
        client = app.test_client()
        start.wait()
        resp = client.post("/api/v1/rmas", json=body(), headers={**shop, "Idempotency-Key": k})
        answers.append((resp.status_code, resp.get_json(force=True)))

    threads = [threading.Thread(target=post) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [status for status, _ in answers] == [201] * 10, answers
    assert len({a["id"] for _, a in answers}) == 1
    session.rollback()
    assert session.scalar(select(func.count()).select_from(Rma).where(Rma.number == "RMA-9001")) == 1
    assert session.scalar(select(func.count()).select_from(OutboxEvent).where(OutboxEvent.type == "rma.created")) == 1


def test_a_return_is_changed_or_cancelled_only_before_the_dock_receives_it(client, session, world, shop):
    made = client.post("/api/v1/rmas", json=body(), headers={**shop, "Idempotency-Key": key()}).get_json()
    k = key()
    changed = client.put("/api/v1/rmas/rma-9001/lines", json={"lines": [{"sku": "HB-CREAM-50", "quantity": 3,
                                                                           "reason_code": "defective"}]},
                         headers={**shop, "Idempotency-Key": k})
    assert changed.status_code == 200, changed.data
    assert [(ln["sku"], ln["quantity"]) for ln in changed.get_json()["lines"]] == [("HB-CREAM-50", 3)]
    session.rollback()
    assert [(ln.product.sku, ln.quantity) for ln in session.get(Rma, made["id"]).lines] == [("HB-CREAM-50", 3)]
    bad = client.put("/api/v1/rmas/RMA-9001/lines", json={"lines": [{"sku": "NOPE", "quantity": 1, "reason_code": "defective"}]},
                     headers={**shop, "Idempotency-Key": key()})
    assert bad.status_code == 422 and "Unknown SKU NOPE" in bad.get_json()["detail"]
    cancelled = client.post("/api/v1/rmas/RMA-9001/cancel", headers={**shop, "Idempotency-Key": key()})
    assert cancelled.status_code == 200 and cancelled.get_json()["status"] == "cancelled"
    again = client.post("/api/v1/rmas/RMA-9001/cancel", headers={**shop, "Idempotency-Key": key()})
    assert again.status_code == 409 and "is cancelled" in again.get_json()["detail"]
    assert client.post("/api/v1/rmas/NOPE-1/cancel", headers={**shop, "Idempotency-Key": key()}).status_code == 404
    # The world's RMA-5001 is being received once a parcel of it is open: it cannot be cancelled then.
    from app.receiving.models import Parcel
    session.rollback()
    session.add(Parcel(warehouse_id=world.wh.id, rma_id=world.rma.id, scanned_code="RMA-5001"))
    session.commit()
    busy = client.post("/api/v1/rmas/RMA-5001/cancel", headers={**shop, "Idempotency-Key": key()})
    assert busy.status_code == 409 and "being received" in busy.get_json()["detail"]
    session.rollback()
    assert session.get(Rma, world.rma.id).status != "cancelled"
    kinds = session.scalars(select(OutboxEvent.type).where(OutboxEvent.type.in_(["rma.lines_changed", "rma.cancelled"]))
                            .order_by(OutboxEvent.id)).all()
    assert kinds == ["rma.lines_changed", "rma.cancelled"]


def test_a_nul_character_anywhere_in_a_body_is_refused_on_both_databases(client, session, world, shop):
    before = counts(session)
    for rma in (body(number="RMA\u00009"), body(lines=[{"sku": "TEE\u0000", "quantity": 1, "reason_code": "defective"}]),
                {**body(), "customer_name": "Ada\u0000"}):
        resp = client.post("/api/v1/rmas", json=rma, headers={**shop, "Idempotency-Key": key()})
        assert resp.status_code in (400, 422) and "NUL" in resp.get_json()["detail"], resp.data
    assert counts(session) == before
