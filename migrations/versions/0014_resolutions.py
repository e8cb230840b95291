"""what the customer asked for per return line (refund, store credit, exchange for a SKU), carried
by the line's refund trigger

Revision ID: 0014
Revises: 0013
"""
import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


REFUNDS_VIEW = """
        SELECT r.id AS refund_id, r.unit_id, u.lpn, r.rma_id, r.status, r.currency, r.paid_amount, r.amount,
               r.refund_action, r.inspected_at, r.released_at, r.acknowledged_at, r.created_at, r.payment_reference{}
        FROM refund_triggers r JOIN return_units u ON u.id = r.unit_id"""


def upgrade() -> None:
    for table in ("rma_lines", "refund_triggers"):
        op.add_column(table, sa.Column("resolution", sa.String(16), nullable=False, server_default="refund"))
        op.add_column(table, sa.Column("exchange_sku", sa.String(64), nullable=True))
    op.execute("DROP VIEW v_refund_triggers")  # finance reads what each refund is: columns added at the end
    op.execute("CREATE VIEW v_refund_triggers AS " + REFUNDS_VIEW.format(", r.resolution, r.exchange_sku"))


def downgrade() -> None:
    op.execute("DROP VIEW v_refund_triggers")
    op.execute("CREATE VIEW v_refund_triggers AS " + REFUNDS_VIEW.format(""))
    for table in ("refund_triggers", "rma_lines"):  # in place: a table copy would break the views on them
        op.drop_column(table, "exchange_sku")
        op.drop_column(table, "resolution")
