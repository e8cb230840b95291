"""The SQL views other systems read keep their shape: every column pinned here is there, in this
order, with this type (PostgreSQL); a migration may only add columns after them."""
from __future__ import annotations

from sqlalchemy import text

# view -> [(column, PostgreSQL type)], as docs/integration-views.md lists them.
PINNED: dict[str, list[tuple[str, str]]] = {
    "v_return_units": [("unit_id", "integer"), ("lpn", "character varying"), ("sku", "character varying"),
                       ("product_id", "integer"), ("warehouse", "character varying"), ("warehouse_id", "integer"),
                       ("state", "character varying"), ("location", "character varying"), ("rma_id", "integer"),
                       ("serial", "character varying"), ("serial_status", "character varying"), ("grade", "character varying"),
                       ("disposition", "character varying"), ("received_at", "timestamp with time zone"),
                       ("inspected_at", "timestamp with time zone"), ("state_changed_at", "timestamp with time zone")],
    "v_balances": [("sku", "character varying"), ("product_id", "integer"), ("warehouse", "character varying"),
                   ("warehouse_id", "integer"), ("state", "character varying"), ("quantity", "integer")],
    "v_ledger": [("ledger_id", "bigint"), ("unit_id", "integer"), ("sku", "character varying"), ("warehouse_id", "integer"),
                 ("from_state", "character varying"), ("to_state", "character varying"), ("from_location_id", "integer"),
                 ("to_location_id", "integer"), ("actor_id", "integer"), ("actor_role", "character varying"),
                 ("reason", "text"), ("at", "timestamp with time zone")],
    "v_refund_triggers": [("refund_id", "integer"), ("unit_id", "integer"), ("lpn", "character varying"), ("rma_id", "integer"),
                          ("status", "character varying"), ("currency", "character varying"), ("paid_amount", "numeric"),
                          ("amount", "numeric"), ("refund_action", "character varying"),
                          ("inspected_at", "timestamp with time zone"), ("released_at", "timestamp with time zone"),
                          ("acknowledged_at", "timestamp with time zone"), ("created_at", "timestamp with time zone"),
                          ("payment_reference", "character varying"), ("resolution", "character varying"),
                          ("exchange_sku", "character varying")],
    "v_events": [("event_id", "bigint"), ("at", "timestamp with time zone"), ("type", "character varying"),
                 ("aggregate_type", "character varying"), ("aggregate_id", "bigint"), ("payload", "json"), ("tx", "bigint")],
    "v_rmas": [("rma_id", "integer"), ("number", "character varying"), ("status", "character varying"),
               ("merchant", "character varying"), ("channel", "character varying"), ("warehouse", "character varying"),
               ("warehouse_id", "integer"), ("order_number", "character varying"), ("customer_ref", "character varying"),
               ("created_at", "timestamp with time zone"), ("closed_at", "timestamp with time zone"),
               ("units_expected", "bigint"), ("units_received", "bigint"), ("delivered_at", "timestamp with time zone")],
    "v_parcels": [("parcel_id", "integer"), ("scanned_code", "character varying"), ("status", "character varying"),
                  ("rma_id", "integer"), ("warehouse", "character varying"), ("warehouse_id", "integer"),
                  ("opened_at", "timestamp with time zone"), ("closed_at", "timestamp with time zone"),
                  ("units_received", "bigint")],
    "v_exceptions": [("exception_id", "integer"), ("type", "character varying"), ("status", "character varying"),
                     ("warehouse", "character varying"), ("warehouse_id", "integer"), ("merchant_id", "integer"),
                     ("rma_id", "integer"), ("parcel_id", "integer"), ("unit_id", "integer"), ("lpn", "character varying"),
                     ("sku", "character varying"), ("quantity", "integer"), ("value", "numeric"),
                     ("opened_at", "timestamp with time zone"), ("resolved_at", "timestamp with time zone"),
                     ("resolution", "character varying"), ("resolution_reason", "text")],
}


def _columns(session, view: str) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    if session.get_bind().dialect.name == "postgresql":
        return [tuple(r) for r in session.execute(text(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = :v ORDER BY ordinal_position"),
            {"v": view})]
    return [(r[1], "") for r in session.execute(text(f"PRAGMA table_info({view})"))]


def test_every_view_keeps_its_columns_in_order_and_type(session, world):
    postgres = session.get_bind().dialect.name == "postgresql"
    for view, pinned in PINNED.items():
        actual = _columns(session, view)
        expected = pinned if postgres else [(name, "") for name, _ in pinned]
        assert actual[:len(expected)] == expected, view
        session.execute(text(f"SELECT * FROM {view} LIMIT 1")).all()  # and it runs


def test_the_return_view_counts_what_came_and_what_was_expected(session, world):
    row = session.execute(text("SELECT number, merchant, warehouse, units_expected, units_received FROM v_rmas "
                               "WHERE number = 'RMA-5001'")).one()
    assert row.merchant == "ACME" and row.warehouse == "WH1" and row.units_expected >= 1 and row.units_received == 0
