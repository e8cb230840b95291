"""The lookups on every parcel and every item stay index lookups as the tables grow.

A dock keeps years of closed parcels and a catalogue of a thousand products or more. These tests load
enough rows that PostgreSQL's planner weighs its choices as it would in production, force each
kind of plan in turn (the custom plan of a statement sent with its values, and the generic plan a
prepared statement may get: psycopg prepares a statement on its sixth run on a connection), and
count the rows read from the table in this transaction (pg_stat_xact_user_tables: the rows that
sequential scans read plus the rows that index scans fetched)."""
from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from app.receiving.queries import current_parcel_id, find_product, parcel_and_product

pytestmark = pytest.mark.pg_only


def _rows_read(session: Session, table: str) -> int:
    """Rows of `table` read so far in this transaction, by sequential and by index scans."""
    return session.execute(text("SELECT seq_tup_read + coalesce(idx_tup_fetch, 0) FROM pg_stat_xact_user_tables "
                                "WHERE relname = :t"), {"t": table}).scalar_one()


PLANS = pytest.mark.parametrize("plans", ["force_custom_plan", "force_generic_plan"])


def _analyze(session: Session, plans: str, *tables: str) -> None:
    session.commit()  # the bulk rows are visible to ANALYZE
    for table in tables:
        session.execute(text(f"ANALYZE {table}"))
    session.execute(text(f"SET plan_cache_mode = {plans}"))


@PLANS
def test_the_workers_open_parcel_is_found_without_reading_every_parcel(session, world, plans):
    """current_parcel_id runs after every open and close. With 20,000 closed parcels a sequential
    scan costs milliseconds of the database's CPU each time; the partial index on the open ones
    makes it an index lookup, also in a prepared statement's generic plan."""
    w = world.actor("worker")
    session.execute(text("""
        INSERT INTO receipts (warehouse_id, scanned_code, status, opened_by_id, opened_at, closed_at)
        SELECT :wh, 'OLD-' || g, 'closed', :user, now(), now() FROM generate_series(1, 20000) g"""),
                    {"wh": world.wh.id, "user": w.id})
    session.execute(text("""INSERT INTO receipts (warehouse_id, scanned_code, status, opened_by_id, opened_at)
                            VALUES (:wh, 'NOW-1', 'open', :user, now())"""), {"wh": world.wh.id, "user": w.id})
    _analyze(session, plans, "receipts")
    before = _rows_read(session, "receipts")
    found = [current_parcel_id(session, w) for _ in range(8)]
    read = _rows_read(session, "receipts") - before
    now_id = session.execute(text("SELECT id FROM receipts WHERE scanned_code = 'NOW-1'")).scalar_one()
    assert set(found) == {now_id}
    # the usual case: the worker has just closed the parcel and holds none
    session.execute(text("UPDATE receipts SET status = 'closed' WHERE scanned_code = 'NOW-1'"))
    before = _rows_read(session, "receipts")
    none = [current_parcel_id(session, w) for _ in range(8)]
    read += _rows_read(session, "receipts") - before
    assert none == [None] * 8
    assert read <= 16, f"current_parcel_id read {read} parcels to find the one open parcel 16 times"


@PLANS
def test_a_product_is_found_without_reading_the_catalogue(session, world, plans):
    """find_product runs on every item scan (beside the parcel in hand). Its matches are ranked first and the one product then
    read by its key. Joined to products before the LIMIT, the planner hashed the whole catalogue of
    1,000 products (the benchmark's) on every scan."""
    session.execute(text("""
        INSERT INTO products (sku, name, category, unit_value, serial_tracked, lot_tracked, merchant_id)
        SELECT 'BULK-' || g, 'Bulk item ' || g, 'apparel', 10, false, false, :m FROM generate_series(1, 1000) g"""),
                    {"m": world.merchant.id})
    session.execute(text("""
        INSERT INTO product_barcodes (code, kind, product_id)
        SELECT lpad((70000000 + p.id)::text, 14, '0'), 'gtin', p.id FROM products p WHERE p.sku LIKE 'BULK-%'"""))
    _analyze(session, plans, "products", "product_barcodes")
    code = session.execute(text("SELECT b.code FROM product_barcodes b JOIN products p ON p.id = b.product_id "
                                "WHERE p.sku = 'BULK-432'")).scalar_one()
    before = _rows_read(session, "products")
    by_barcode = [find_product(session, code) for _ in range(7)]
    by_sku = [find_product(session, "bulk-77") for _ in range(7)]
    assert {p.sku for p in by_barcode} == {"BULK-432"}
    assert {p.sku for p in by_sku} == {"BULK-77"}
    read = _rows_read(session, "products") - before
    assert read <= 28, f"find_product read {read} products to find 14"
    # the item scan reads it beside the parcel in hand (parcel_and_product): still by its key
    w = world.actor("worker")
    before = _rows_read(session, "products")
    beside = [parcel_and_product(session, w, 0, code)[1].product for _ in range(7)]
    beside += [parcel_and_product(session, w, 0, "bulk-77")[1].product for _ in range(7)]
    assert [p.sku for p in beside] == ["BULK-432"] * 7 + ["BULK-77"] * 7
    read = _rows_read(session, "products") - before
    assert read <= 28, f"parcel_and_product read {read} products to find 14"
