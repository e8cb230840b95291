"""CSV imports: the file an admin uploaded, kept between its preview and its apply (any app server
may answer either), what the preview found and what the apply did

Revision ID: 0015
Revises: 0014
"""
import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "csv_imports",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("filename", sa.String(200), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("preview", sa.JSON(), nullable=False),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("created_by", sa.Integer(), sa.ForeignKey("users.id"), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("applied_by", sa.Integer(), sa.ForeignKey("users.id"), nullable=True),
        sa.Column("apply_started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("kind IN ('products', 'orders', 'rmas')", name="ck_csv_imports_kind"),
        sa.CheckConstraint("status IN ('previewed', 'applying', 'applied')", name="ck_csv_imports_status"),
    )
    op.create_index("ix_csv_imports_sha256", "csv_imports", ["sha256"])


def downgrade() -> None:
    op.drop_index("ix_csv_imports_sha256", table_name="csv_imports")
    op.drop_table("csv_imports")
