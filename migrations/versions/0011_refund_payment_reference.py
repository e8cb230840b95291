"""refund_triggers.payment_reference: finance's reference of the payment, given when it acknowledges

Revision ID: 0011
Revises: 0010
"""
import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("refund_triggers", sa.Column("payment_reference", sa.String(64), nullable=True))


def downgrade() -> None:
    op.drop_column("refund_triggers", "payment_reference")  # in place: a table copy would break the view v_refunds
