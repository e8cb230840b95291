"""POST /api/v1/orders: orders with their lines, and the serials shipped, added when they ship;
the dock matches a returned serial against them."""
from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select

from app.api.services import create_api_key
from app.auth.roles import SYSTEM
from app.orders.models import Order, OrderLine, ShippedSerial


def key() -> str:
    return uuid.uuid4().hex


@pytest.fixture
def shop(session, world):  # type: ignore[no-untyped-def]
    made = create_api_key(session, SYSTEM, name="OMS", scopes=["orders:write"], idempotency_key=key())
    return {"Authorization": f"Bearer {made.token}"}


def put(client, headers, orders, k=None):  # type: ignore[no-untyped-def]
    return client.post("/api/v1/orders", json={"orders": orders}, headers={**headers, "Idempotency-Key": k or key()})


def order(number="so-7001", **over):  # type: ignore[no-untyped-def]
    o = {"number": number, "merchant": "ACME", "channel": "web", "customer_ref": "C-NEW-1", "customer_name": "Grace Hopper",
         "currency": "USD", "placed_at": "2026-11-28T10:15:00Z",
         "lines": [{"sku": "PHN-X1-128", "quantity": 2, "unit_price": "649.00", "serials": []},
                   {"sku": "TEE-BLU-M", "quantity": 1, "unit_price": "25.00"}]}
    o.update(over)
    return o


def state(session):  # type: ignore[no-untyped-def]
    session.rollback()
    return tuple(session.scalar(select(func.count()).select_from(m)) for m in (Order, OrderLine, ShippedSerial))


def test_an_order_is_placed_then_its_serials_added_when_it_ships(client, session, world, shop):
    placed = put(client, shop, [order()])
    assert placed.status_code == 200, placed.data
    assert placed.get_json()["items"][0]["outcome"] == "created"
    shipped = order(lines=[{"sku": "PHN-X1-128", "quantity": 2, "unit_price": "649.00", "serials": ["SN-A1", "SN-A2"]},
                           {"sku": "TEE-BLU-M", "quantity": 1, "unit_price": "25.00"}])
    k = key()
    first = put(client, shop, [shipped], k)
    assert first.get_json()["items"][0]["outcome"] == "updated"
    before = state(session)
    assert put(client, shop, [shipped], k).headers["Idempotent-Replayed"] == "true" and state(session) == before
    assert put(client, shop, [shipped]).get_json()["items"][0]["outcome"] == "unchanged" and state(session) == before
    so = session.scalars(select(Order).where(Order.number == "SO-7001")).one()
    assert sorted(s.serial for ln in so.lines for s in ln.serials) == ["SN-A1", "SN-A2"]
    assert so.placed_at.isoformat().startswith("2026-11-28T10:15") and so.customer.name == "Grace Hopper"


@pytest.mark.parametrize("orders, field, says", [
    ([order(lines=[{"sku": "NOPE", "quantity": 1, "unit_price": "1.00"}])], "orders.0.lines.0.sku", "unknown SKU NOPE"),
    ([order(lines=[{"sku": "TEE-BLU-M", "quantity": 1, "unit_price": "1.00", "serials": ["A", "B"]}])],
     "orders.0.lines.0.serials", "2 serials for a quantity of 1"),
    ([order(lines=[{"sku": "TEE-BLU-M", "quantity": 0, "unit_price": "1.00"}])], "orders.0.lines.0.quantity", "greater than or equal to 1"),
    ([order(lines=[{"sku": "TEE-BLU-M", "quantity": 1, "unit_price": "1.00"}] * 2)], "orders.0.lines.1.sku", "one line per SKU"),
    ([order(), order()], "orders.1.number", "also item 0"),
    ([order(merchant="GLOBEX")], "orders.0.lines.0.sku", "for merchant GLOBEX"),
    ([order(channel="fax")], "orders.0.channel", "no sales channel fax"),
    ([order(currency="usd")], "orders.0.currency", "String should match pattern"),
    ([order(placed_at="yesterday")], "orders.0.placed_at", "datetime"),
    ([order(placed_at="9999-12-31T23:59:59-23:00")], "orders.0.placed_at", "between 2000 and 2100"),
    ([order(placed_at="2026-11-28T10:15:00")], "orders.0.placed_at", "with its offset"),
    ([order(lines=[{"sku": "PHN-X1-128", "quantity": 1, "unit_price": "1.00", "serials": ["S" * 65]}])],
     "orders.0.lines.0.serials.0", "at most 64 characters"),
])
def test_a_bad_order_refuses_the_call_and_names_the_item(client, session, world, shop, orders, field, says):
    before = state(session)
    resp = put(client, shop, orders + [order("SO-GOOD")])
    assert resp.status_code == 422 and resp.mimetype == "application/problem+json", resp.data
    assert any(e["field"] == field and says in e["message"] for e in resp.get_json()["errors"]), resp.get_json()["errors"]
    assert state(session) == before


def test_an_order_is_not_changed_afterwards(client, session, world, shop):
    assert put(client, shop, [order()]).status_code == 200
    before = state(session)
    resp = put(client, shop, [order(lines=[{"sku": "TEE-BLU-M", "quantity": 3, "unit_price": "25.00"}])])
    assert resp.status_code == 422 and "exists with other lines" in resp.get_json()["errors"][0]["message"]
    assert state(session) == before


def test_an_order_sent_again_with_whole_prices_gets_its_serials(client, session, world, shop):
    lines = [{"sku": "PHN-X1-128", "quantity": 1, "unit_price": "649"}]
    assert put(client, shop, [order("SO-WHOLE", lines=lines)]).get_json()["items"][0]["outcome"] == "created"
    shipped = put(client, shop, [order("SO-WHOLE", lines=[{**lines[0], "serials": ["SN-W1"]}])])
    assert shipped.status_code == 200 and shipped.get_json()["items"][0]["outcome"] == "updated", shipped.data
