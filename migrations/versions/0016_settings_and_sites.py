"""console settings (refund thresholds per merchant or channel, queue ageing, photo size, default
restocking fee), retiring a warehouse, and reason codes' avoidability and responsible party

Revision ID: 0016
Revises: 0015
"""
import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "settings",
        sa.Column("name", sa.String(48), primary_key=True),
        sa.Column("value", sa.String(64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "refund_thresholds",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("scope", sa.String(40), nullable=False, unique=True),
        sa.Column("merchant_id", sa.Integer(), sa.ForeignKey("merchants.id"), nullable=True, index=True),
        sa.Column("channel_id", sa.Integer(), sa.ForeignKey("sales_channels.id"), nullable=True, index=True),
        sa.Column("amount", sa.Numeric(12, 2), nullable=False),
        sa.CheckConstraint("merchant_id IS NULL OR channel_id IS NULL", name=op.f("ck_refund_thresholds_one_target")),
    )
    # In place, not by a table copy: views read warehouses.
    op.add_column("warehouses", sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.true()))
    op.add_column("reason_codes", sa.Column("avoidable", sa.Boolean(), nullable=True))
    op.add_column("reason_codes", sa.Column("responsible_party", sa.String(24), nullable=True))


def downgrade() -> None:
    op.drop_column("reason_codes", "responsible_party")
    op.drop_column("reason_codes", "avoidable")
    op.drop_column("warehouses", "active")
    op.drop_table("refund_thresholds")
    op.drop_table("settings")
