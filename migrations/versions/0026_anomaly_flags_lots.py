"""anomaly flags; a serial may come back once its earlier unit left the building

Revision ID: 0026
Revises: 0025
"""
import sqlalchemy as sa
from alembic import op

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None

KINDS = ("returned_before", "swap", "customer_norm", "empty_box")
SERIAL_WHERE = sa.text("serial IS NOT NULL")
IN_BUILDING_WHERE = sa.text("serial IS NOT NULL AND state IN ('received', 'quarantine', 'refurbish')")


def upgrade() -> None:
    op.create_table(
        "anomaly_flags",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=True),
        sa.Column("rma_id", sa.Integer(), nullable=True),
        sa.Column("holds", sa.Boolean(), nullable=False),
        sa.Column("explanation", sa.Text(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("cleared_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cleared_by_id", sa.Integer(), nullable=True),
        sa.CheckConstraint(f"kind IN {KINDS!r}", name=op.f("ck_anomaly_flags_kind")),
        sa.CheckConstraint("unit_id IS NOT NULL OR rma_id IS NOT NULL", name=op.f("ck_anomaly_flags_target")),
        sa.ForeignKeyConstraint(["unit_id"], ["return_units.id"], name=op.f("fk_anomaly_flags_unit_id_return_units")),
        sa.ForeignKeyConstraint(["rma_id"], ["rmas.id"], name=op.f("fk_anomaly_flags_rma_id_rmas")),
        sa.ForeignKeyConstraint(["created_by_id"], ["users.id"], name=op.f("fk_anomaly_flags_created_by_id_users")),
        sa.ForeignKeyConstraint(["cleared_by_id"], ["users.id"], name=op.f("fk_anomaly_flags_cleared_by_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_anomaly_flags")),
    )
    op.create_index("ix_anomaly_flags_unit_id", "anomaly_flags", ["unit_id"])
    op.create_index("ix_anomaly_flags_rma_id", "anomaly_flags", ["rma_id"])
    # A serial may come back (a resold item): only one unit with it may be in the building and not
    # sellable at once (app.anomalies.domain.IN_BUILDING).
    op.drop_index("uq_return_units_product_serial", table_name="return_units")
    op.create_index("uq_return_units_serial_in_building", "return_units", ["product_id", "serial"], unique=True,
                    postgresql_where=IN_BUILDING_WHERE, sqlite_where=IN_BUILDING_WHERE)


def downgrade() -> None:
    op.drop_index("uq_return_units_serial_in_building", table_name="return_units")
    op.create_index("uq_return_units_product_serial", "return_units", ["product_id", "serial"], unique=True,
                    postgresql_where=SERIAL_WHERE, sqlite_where=SERIAL_WHERE)
    op.drop_index("ix_anomaly_flags_rma_id", table_name="anomaly_flags")
    op.drop_index("ix_anomaly_flags_unit_id", table_name="anomaly_flags")
    op.drop_table("anomaly_flags")
