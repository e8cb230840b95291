"""a serial is received once (partial unique index)

Revision ID: 0004
Revises: 0003
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

SERIAL_WHERE = sa.text("serial IS NOT NULL")


def upgrade() -> None:
    op.create_index("uq_return_units_product_serial", "return_units", ["product_id", "serial"], unique=True,
                    postgresql_where=SERIAL_WHERE, sqlite_where=SERIAL_WHERE)


def downgrade() -> None:
    op.drop_index("uq_return_units_product_serial", table_name="return_units")
