"""The inspection queue's read (app.inspection.queries.inspection_queue) on SQLite and PostgreSQL:
what waits, in which order and why, for whom; one statement whatever the page."""
from __future__ import annotations

import random
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import update

from app.catalog.models import Product
from app.db import utcnow
from app.inspection.domain import priority
from app.inspection.queries import inspection_queue, next_unit_id
from app.ledger.models import ReturnUnit
from app.orders.models import Order, OrderLine
from tests.helpers import move_direct, receive_unit, statements_sent

UNITS = ReturnUnit.__table__


def _aged(session, unit_id: int, hours: float, now) -> None:
    session.execute(update(UNITS).where(UNITS.c.id == unit_id).values(received_at=now - timedelta(hours=hours)))
    session.commit()


def _sold(session, world, product: Product, quantity: int, days_ago: float, now, number: str) -> None:
    order = Order(number=number, merchant_id=world.merchant.id, channel_id=world.channel.id,
                  customer_id=world.customer.id, placed_at=now - timedelta(days=days_ago))
    session.add(order)
    session.flush()
    session.add(OrderLine(order_id=order.id, product_id=product.id, quantity=quantity, unit_price=product.unit_value))
    session.commit()


def test_the_queue_lists_what_waits_first_things_first_with_its_reason(session, world):
    now = utcnow()
    w = world.actor("worker")
    # the world's order (placed now) shipped 2 tees, 1 phone, 1 cream; 1062 more tees 3 days ago: 1064 in 28 days
    _sold(session, world, world.products["shirt"], 1062, 3, now, "SO-RECENT")
    _sold(session, world, world.products["phone"], 500, 40, now, "SO-OLD")  # outside the window: not counted
    tee = receive_unit(session, world, "shirt", w)
    phone = receive_unit(session, world, "phone", w)
    cream = receive_unit(session, world, "cream", w)
    inspected = receive_unit(session, world, "shirt", w)
    disposed = receive_unit(session, world, "shirt", w)
    elsewhere = receive_unit(session, world, "phone", w, warehouse=world.wh3pl)
    _aged(session, tee.id, 5, now)
    _aged(session, phone.id, 2, now)
    _aged(session, cream.id, 30, now)
    session.execute(update(UNITS).where(UNITS.c.id == inspected.id).values(grade="A", inspected_at=now))
    session.commit()
    move_direct(session, w, disposed.id, "available")

    queue = inspection_queue(session, w, world.wh.id, now=now)
    assert [u.id for u in queue.units] == [tee.id, phone.id, cream.id] and queue.total == 3
    first, second, third = queue.units
    # tee: $25 -> 5, 38 a day -> 100, 5 h -> 5; phone: $699 -> 100, 1 in 28 days -> 0.18, 2 h -> 2
    assert first.shipped == 1064 and first.priority.score == 110
    assert first.priority.reason == "fast seller: 38 shipped a day"
    assert second.shipped == 1 and second.priority.reason == "high value: $699"
    # cream: $40 -> 8, 1 in 28 days, 30 h -> 30: 38.18
    assert third.priority.reason == "waiting 30 h" and round(third.age_hours) == 30
    assert next_unit_id(session, w, world.wh.id) == tee.id
    assert [u.id for u in inspection_queue(session, w, world.wh3pl.id, now=now).units] == [elsewhere.id]


def test_a_partner_sees_only_their_organisations_units_and_no_amounts(session, world):
    now = utcnow()
    w = world.actor("worker")
    ours = receive_unit(session, world, "phone", w, warehouse=world.wh3pl)
    receive_unit(session, world, "phone", w, warehouse=world.wh3pl, merchant=world.other_merchant)
    receive_unit(session, world, "phone", w)  # at the staff's warehouse
    partner, outsider = world.actor("partner"), world.actor("outsider")
    queue = inspection_queue(session, partner, world.wh3pl.id, now=now)
    assert [u.id for u in queue.units] == [ours.id] and queue.total == 1
    assert queue.units[0].priority.reason == "high value"
    assert inspection_queue(session, partner, world.wh.id, now=now).units == []
    assert inspection_queue(session, outsider, world.wh3pl.id, now=now).total == 0
    assert next_unit_id(session, outsider, world.wh3pl.id) is None


def test_the_order_is_the_rules_order_and_pages_hold_it(session, world):
    """Forty units of twelve SKUs with random prices, sales and ages: the database's order is the
    one app.inspection.domain.priority gives, page after page, in one statement a page."""
    rng = random.Random(18)
    now = utcnow()
    w = world.actor("worker")
    products = []
    for i in range(12):
        p = Product(sku=f"Q-{i:02d}", name=f"Queue item {i}", category="apparel",
                    unit_value=Decimal(rng.choice(["4.99", "25.00", "120.00", "480.00", "900.00"])),
                    merchant_id=world.merchant.id)
        session.add(p)
        products.append(p)
    session.commit()
    for i, p in enumerate(products):
        if i % 3:
            _sold(session, world, p, rng.randint(1, 900), rng.uniform(0, 27), now, f"SO-Q-{i}")
    world.products.update({p.sku: p for p in products})
    for _ in range(40):
        u = receive_unit(session, world, rng.choice(products).sku, w,
                         paid_price=rng.choice([None, "1.00", "75.50", "300.00"]))
        _aged(session, u.id, rng.uniform(0, 200), now)
    seen = []
    for page in (1, 2, 3, 4):
        statements = statements_sent(session, lambda: seen.append(inspection_queue(session, w, world.wh.id, page=page,
                                                                                   per_page=15, now=now)))
        assert [s for s in statements if s != "BEGIN"] == statements[-1:], statements  # SQLite's BEGIN aside
    assert [q.total for q in seen] == [40, 40, 40, 0] and [len(q.units) for q in seen] == [15, 15, 10, 0]
    units = [u for q in seen for u in q.units]
    assert len({u.id for u in units}) == 40
    scores = [priority(u.value, u.shipped, u.age_hours).score for u in units]
    assert all(a >= b - 1e-6 for a, b in zip(scores, scores[1:])), scores
