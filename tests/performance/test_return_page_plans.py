"""A return's page stays index lookups as the tables grow (PostgreSQL).

20,000 customers, orders, returns, tracking numbers and units, and 40,000 audit entries and ledger
rows: a return's page reads a handful of rows of each table (pg_stat_xact_user_tables, as in
test_query_plans.py), in the custom and the generic plan."""
from __future__ import annotations

import pytest
from sqlalchemy import text

from app.desk.queries import return_page
from tests.performance.test_query_plans import PLANS, _analyze, _rows_read

pytestmark = pytest.mark.pg_only

N = 20_000
TABLES = ("customers", "orders", "rmas", "carrier_trackings", "return_units", "audit_entries", "ledger_entries",
          "refund_triggers", "return_exceptions", "receipts", "rma_lines")


def _bulk(session, world) -> None:  # type: ignore[no-untyped-def]
    ids = {"m": world.merchant.id, "c": world.channel.id, "wh": world.wh.id, "p": world.products["shirt"].id}
    session.execute(text("INSERT INTO customers (external_ref, name) SELECT 'BULK-C-' || g, 'Bulk Customer ' || g "
                         "FROM generate_series(1, :n) g"), {"n": N})
    session.execute(text("""INSERT INTO orders (number, merchant_id, channel_id, customer_id, placed_at, currency)
                            SELECT 'BULK-SO-' || c.id, :m, :c, c.id, now(), 'USD' FROM customers c
                            WHERE c.external_ref LIKE 'BULK-C-%'"""), ids)
    session.execute(text("""INSERT INTO rmas (number, order_id, merchant_id, channel_id, warehouse_id, customer_id, status, created_at)
                            SELECT 'BULK-RMA-' || o.id, o.id, :m, :c, :wh, o.customer_id, 'closed', now() FROM orders o
                            WHERE o.number LIKE 'BULK-SO-%'"""), ids)
    session.execute(text("""INSERT INTO carrier_trackings (tracking_number, carrier, rma_id, status)
                            SELECT 'BULK-1Z-' || r.id, 'UPS', r.id, 'delivered' FROM rmas r WHERE r.number LIKE 'BULK-RMA-%'"""))
    session.execute(text("""INSERT INTO return_units (lpn, product_id, warehouse_id, merchant_id, rma_id, state, serial,
                                                      serial_status, received_at, state_changed_at, version)
                            SELECT 'BULK-LP-' || r.id, :p, :wh, :m, r.id, 'available', 'BULK-SN-' || r.id, 'not_tracked',
                                   now(), now(), 1 FROM rmas r WHERE r.number LIKE 'BULK-RMA-%'"""), ids)
    session.execute(text("""INSERT INTO ledger_entries (unit_id, product_id, warehouse_id, from_state, to_state, actor_role, reason, at)
                            SELECT u.id, u.product_id, u.warehouse_id, s.f, s.t, 'worker', 'bulk', now()
                            FROM return_units u CROSS JOIN (VALUES (NULL, 'received'), ('received', 'available')) s(f, t)
                            WHERE u.lpn LIKE 'BULK-LP-%'"""))
    session.execute(text("""INSERT INTO audit_entries (at, actor_name, action, entity_type, entity_id, details)
                            SELECT now(), 'Bulk', a.action, a.kind, u.id, '{}' FROM return_units u
                            CROSS JOIN (VALUES ('unit.inspected', 'unit'), ('rma.created', 'rma')) a(action, kind)
                            WHERE u.lpn LIKE 'BULK-LP-%'"""))


@PLANS
def test_a_returns_page_reads_only_its_own_rows(session, world, plans):
    from tests.integration.desk.test_desk_services import serial_mismatch_case

    serial_mismatch_case(session, world)
    _bulk(session, world)
    _analyze(session, plans, *TABLES)
    before = {t: _rows_read(session, t) for t in TABLES}
    for _ in range(7):
        page = return_page(session, world.actor("super"), world.rma.id)
        assert len(page.units) == 1 and page.timeline
    read = {t: _rows_read(session, t) - before[t] for t in TABLES}
    for table, rows in read.items():
        assert rows <= 7 * 12, f"a return's page read {rows} rows of {table} in 7 loads: {read}"
