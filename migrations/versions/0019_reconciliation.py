"""Reconciliation: sources with their bucket mappings, snapshots and their rows, variance lines
with owner and resolution, lost/found corrections; the unit state `missing`

Revision ID: 0019
Revises: 0018
"""
import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

_OLD = "('received', 'available', 'quarantine', 'refurbish', 'vendor_return', 'liquidation', 'disposed')"
_NEW = "('received', 'available', 'quarantine', 'refurbish', 'vendor_return', 'liquidation', 'disposed', 'missing')"
_BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _unit_states(states: str) -> None:
    """The unit states' CHECK, rewritten. SQLite rebuilds the table: legacy ALTER TABLE keeps the
    integration views that read it (migration 0013) from being parsed half way."""
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        op.execute("PRAGMA legacy_alter_table = ON")
    with op.batch_alter_table("return_units") as batch:
        batch.drop_constraint("state", type_="check")
        batch.create_check_constraint("state", f"state IN {states}")
    if sqlite:
        op.execute("PRAGMA legacy_alter_table = OFF")


def upgrade() -> None:
    _unit_states(_NEW)
    op.create_table(
        "recon_sources",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("code", sa.String(64), nullable=False, unique=True),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("partner_org_id", sa.Integer(), sa.ForeignKey("partner_orgs.id"), nullable=True),
        sa.Column("buckets", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_recon_sources_partner_org_id", "recon_sources", ["partner_org_id"])
    op.create_table(
        "recon_snapshots",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("source_id", sa.Integer(), sa.ForeignKey("recon_sources.id"), nullable=False),
        sa.Column("as_of", sa.DateTime(timezone=True), nullable=False),
        sa.Column("origin", sa.String(16), nullable=False),
        sa.Column("filename", sa.String(200), nullable=True),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("units", sa.Integer(), nullable=False),
        sa.Column("preview", sa.JSON(), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=True),
        sa.Column("created_by_name", sa.String(120), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("compared_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("status IN ('previewed', 'accepted')", name="ck_recon_snapshots_status"),
    )
    op.create_index("ix_recon_snapshots_source_as_of", "recon_snapshots", ["source_id", "as_of"])
    op.create_table(
        "recon_snapshot_lines",
        sa.Column("id", _BIG, primary_key=True, autoincrement=True),
        sa.Column("snapshot_id", sa.Integer(), sa.ForeignKey("recon_snapshots.id"), nullable=False),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column("warehouse_id", sa.Integer(), sa.ForeignKey("warehouses.id"), nullable=False),
        sa.Column("merchant_id", sa.Integer(), sa.ForeignKey("merchants.id"), nullable=True),
        sa.Column("product_id", sa.Integer(), sa.ForeignKey("products.id"), nullable=False),
        sa.Column("bucket", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
    )
    op.create_index("ix_recon_snapshot_lines_snapshot", "recon_snapshot_lines", ["snapshot_id"])
    op.create_table(
        "recon_variances",
        sa.Column("id", _BIG, primary_key=True, autoincrement=True),
        sa.Column("snapshot_id", sa.Integer(), sa.ForeignKey("recon_snapshots.id"), nullable=False),
        sa.Column("warehouse_id", sa.Integer(), sa.ForeignKey("warehouses.id"), nullable=False),
        sa.Column("merchant_id", sa.Integer(), sa.ForeignKey("merchants.id"), nullable=True),
        sa.Column("product_id", sa.Integer(), sa.ForeignKey("products.id"), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("ledger_qty", sa.Integer(), nullable=False),
        sa.Column("snapshot_qty", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("cause", sa.Text(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("owner_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=True),
        sa.Column("resolution", sa.String(16), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("resolved_by_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint("kind IN ('match', 'over', 'short')", name="ck_recon_variances_kind"),
        sa.CheckConstraint("resolution IS NULL OR resolution IN ('timing', 'count_error', 'lost_unit', 'found_unit', "
                           "'data_error')", name="ck_recon_variances_resolution"),
        sa.UniqueConstraint("snapshot_id", "warehouse_id", "merchant_id", "product_id", "state",
                            name="uq_recon_variances_item"),
    )
    op.create_index("ix_recon_variances_snapshot_kind", "recon_variances", ["snapshot_id", "kind"])
    op.create_table(
        "recon_corrections",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("variance_id", _BIG, sa.ForeignKey("recon_variances.id"), nullable=False),
        sa.Column("unit_id", sa.Integer(), sa.ForeignKey("return_units.id"), nullable=False),
        sa.Column("to_state", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("requested_by_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=True),
        sa.Column("decided_by_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("status IN ('pending', 'applied', 'rejected')", name="ck_recon_corrections_status"),
    )
    op.create_index("ix_recon_corrections_variance_id", "recon_corrections", ["variance_id"])
    op.create_index("ix_recon_corrections_unit_id", "recon_corrections", ["unit_id"])


def downgrade() -> None:
    for table in ("recon_corrections", "recon_variances", "recon_snapshot_lines", "recon_snapshots", "recon_sources"):
        op.drop_table(table)
    _unit_states(_OLD)
