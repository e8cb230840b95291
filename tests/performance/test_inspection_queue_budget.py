"""The inspection queue stays one statement and fast on PostgreSQL as the tables grow: 5,000 units
waiting at the warehouse among 45,000, 400 SKUs, 40,000 orders of 120,000 lines over two years.

Run with -s to see the figures: statements per request, the request's time (median of 10), and
the queue statement's plan (EXPLAIN ANALYZE), which names the indexes it uses."""
from __future__ import annotations

import statistics
import time

import pytest
from sqlalchemy import event, text

from app.db import db
from tests.conftest import login
from tests.helpers import statements_sent

pytestmark = pytest.mark.pg_only
HX = {"HX-Request": "true"}
WAITING = 5_000


def _load(session, world) -> None:  # type: ignore[no-untyped-def]
    ids = {"m": world.merchant.id, "other": world.other_merchant.id, "ch": world.channel.id, "c": world.customer.id,
           "wh": world.wh.id, "wh3": world.wh3pl.id}
    session.execute(text("""
        INSERT INTO products (sku, name, category, unit_value, serial_tracked, lot_tracked, merchant_id)
        SELECT 'PQ-' || g, 'Perf item ' || g, 'apparel', (g % 50) * 10 + 4.99, false, false, :m
        FROM generate_series(1, 400) g"""), ids)
    session.execute(text("""
        INSERT INTO orders (number, merchant_id, channel_id, customer_id, placed_at, currency)
        SELECT 'PO-' || g, :m, :ch, :c, now() - make_interval(days => g % 730, mins => g % 1440), 'USD'
        FROM generate_series(1, 40000) g"""), ids)
    session.execute(text("""
        INSERT INTO order_lines (order_id, product_id, quantity, unit_price)
        SELECT o.id, p.id, 1 + g % 3, 9.99
        FROM generate_series(1, 120000) g
        JOIN orders o ON o.number = 'PO-' || (1 + g % 40000)
        JOIN products p ON p.sku = 'PQ-' || (1 + (g::bigint * 7919) % 400)"""))

    def units(prefix: str, n: int, state: str, warehouse: str, inspected: bool, merchant: str = "m") -> None:
        session.execute(text(f"""
            INSERT INTO return_units (lpn, product_id, warehouse_id, merchant_id, state, serial_status, paid_price,
                                      grade, inspected_at, received_at, state_changed_at, version)
            SELECT '{prefix}' || g, p.id, :{warehouse}, :{merchant}, '{state}', 'not_tracked',
                   CASE WHEN g % 4 = 0 THEN NULL ELSE (g % 90) * 7 + 0.5 END,
                   {"'A'" if inspected else "NULL"}, {"now()" if inspected else "NULL"},
                   now() - make_interval(hours => g % 200), now(), 1
            FROM generate_series(1, {n}) g JOIN products p ON p.sku = 'PQ-' || (1 + (g * 31) % 400)"""), ids)

    units("PW", WAITING, "received", "wh", False)
    units("PI", 5_000, "received", "wh", True)  # inspected, waiting for their disposition
    units("PA", 30_000, "available", "wh", True)
    units("P3", 5_000, "received", "wh3", False, "other")
    session.commit()
    for table in ("products", "orders", "order_lines", "return_units"):
        session.execute(text(f"ANALYZE {table}"))
    session.commit()


def _timed(client, url: str, runs: int = 10) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        assert client.get(url, headers=HX).status_code == 200
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def test_the_queue_is_one_statement_and_fast_at_scale(app, client, session, world):
    _load(session, world)
    login(client, "worker")
    client.post("/receive/warehouse", data={"warehouse_id": world.wh.id}, headers=HX)
    figures = {}
    with app.app_context():
        for url in ("/receive/queue", "/receive/queue?page=200"):
            answers = []
            sent = statements_sent(db.session, lambda: answers.append(client.get(url, headers=HX)))
            assert answers[0].status_code == 200 and f"{WAITING:,}".replace(",", "") in answers[0].get_data(as_text=True)
            # at most the signed-in user (with the session's row) and the queue's page with its count
            assert len(sent) <= 2 and sum("FROM return_units" in s for s in sent) == 1, sent
            assert "order_lines" in sent[-1]
            print(f"\n{url}: {len(sent)} statement(s): " + " | ".join(s[:40] for s in sent))
            figures[url] = _timed(client, url)
        nxt = []
        sent = statements_sent(db.session, lambda: nxt.append(client.get("/receive/queue/next")))
        assert nxt[0].status_code == 302 and len(sent) <= 2, sent
        figures["/receive/queue/next"] = _timed_next(client)
        plan = _plan(db.session, lambda: client.get("/receive/queue", headers=HX))
    print("\ninspection queue on PostgreSQL, 5,000 waiting of 45,000 units, 120,000 order lines:")
    for url, ms in figures.items():
        print(f"  {url}: {ms:.1f} ms median of 10 (whole request through the Flask client)")
    print("\n".join(plan))
    # generous: the figures above are what to compare; this only catches a plan gone wrong
    assert max(figures.values()) < 1000, figures


def _plan(session, call) -> list[str]:  # type: ignore[no-untyped-def]
    """EXPLAIN (ANALYZE, BUFFERS) of the queue statement `call` sends, with the values it sent."""
    sent = []

    def keep(conn, cursor, statement, parameters, *args):  # type: ignore[no-untyped-def]
        if "FROM return_units" in statement:
            sent.append((statement, parameters))

    engine = session.get_bind()
    event.listen(engine, "before_cursor_execute", keep)
    try:
        call()
    finally:
        event.remove(engine, "before_cursor_execute", keep)
    statement, parameters = sent[-1]
    explain = "EXPLAIN (ANALYZE, BUFFERS) " + statement
    with engine.connect() as conn:
        return [row[0] for row in conn.exec_driver_sql(explain, parameters)]


def _timed_next(client, runs: int = 10) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        assert client.get("/receive/queue/next").status_code == 302
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)
