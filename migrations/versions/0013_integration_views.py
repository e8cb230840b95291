"""views other systems read: v_rmas, v_parcels, v_exceptions; v_events gains tx (the feed's
order), v_refund_triggers gains payment_reference (columns are only ever added, at the end)

Revision ID: 0013
Revises: 0012
"""
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

NEW = {
    "v_rmas": """
        SELECT r.id AS rma_id, r.number, r.status, m.code AS merchant, c.code AS channel, w.code AS warehouse,
               r.warehouse_id, o.number AS order_number, cu.external_ref AS customer_ref, r.created_at, r.closed_at,
               (SELECT COALESCE(SUM(l.quantity), 0) FROM rma_lines l WHERE l.rma_id = r.id) AS units_expected,
               (SELECT COUNT(*) FROM return_units u WHERE u.rma_id = r.id) AS units_received,
               (SELECT MAX(t.last_event_at) FROM carrier_trackings t WHERE t.rma_id = r.id AND t.status = 'delivered')
                   AS delivered_at
        FROM rmas r JOIN merchants m ON m.id = r.merchant_id JOIN sales_channels c ON c.id = r.channel_id
        JOIN warehouses w ON w.id = r.warehouse_id LEFT JOIN orders o ON o.id = r.order_id
        LEFT JOIN customers cu ON cu.id = r.customer_id""",
    "v_parcels": """
        SELECT p.id AS parcel_id, p.scanned_code, p.status, p.rma_id, w.code AS warehouse, p.warehouse_id,
               p.opened_at, p.closed_at,
               (SELECT COUNT(*) FROM return_units u WHERE u.receipt_id = p.id) AS units_received
        FROM receipts p JOIN warehouses w ON w.id = p.warehouse_id""",
    "v_exceptions": """
        SELECT e.id AS exception_id, e.type, e.status, w.code AS warehouse, e.warehouse_id, e.merchant_id, e.rma_id,
               e.receipt_id AS parcel_id, e.unit_id, u.lpn, p.sku, e.quantity, e.value, e.opened_at, e.resolved_at,
               e.resolution, e.resolution_reason
        FROM return_exceptions e JOIN warehouses w ON w.id = e.warehouse_id LEFT JOIN return_units u ON u.id = e.unit_id
        LEFT JOIN products p ON p.id = e.product_id""",
}
CHANGED = {
    "v_events": ("""SELECT id AS event_id, at, type, aggregate_type, aggregate_id, payload FROM outbox_events""",
                 """SELECT id AS event_id, at, type, aggregate_type, aggregate_id, payload, tx FROM outbox_events"""),
    "v_refund_triggers": ("""
        SELECT r.id AS refund_id, r.unit_id, u.lpn, r.rma_id, r.status, r.currency, r.paid_amount, r.amount,
               r.refund_action, r.inspected_at, r.released_at, r.acknowledged_at, r.created_at
        FROM refund_triggers r JOIN return_units u ON u.id = r.unit_id""", """
        SELECT r.id AS refund_id, r.unit_id, u.lpn, r.rma_id, r.status, r.currency, r.paid_amount, r.amount,
               r.refund_action, r.inspected_at, r.released_at, r.acknowledged_at, r.created_at, r.payment_reference
        FROM refund_triggers r JOIN return_units u ON u.id = r.unit_id"""),
}


def upgrade() -> None:
    for name, body in NEW.items():
        op.execute(f"CREATE VIEW {name} AS {body}")
    for name, (_, body) in CHANGED.items():
        op.execute(f"DROP VIEW {name}")
        op.execute(f"CREATE VIEW {name} AS {body}")


def downgrade() -> None:
    for name in NEW:
        op.execute(f"DROP VIEW {name}")
    for name, (body, _) in CHANGED.items():
        op.execute(f"DROP VIEW {name}")
        op.execute(f"CREATE VIEW {name} AS {body}")
