"""indexes for the returns dashboard (app/reports): each KPI ranges over one date column

Revision ID: 0020
Revises: 0019
"""
import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

OPEN = "status IN ('authorized', 'in_transit')"


def upgrade() -> None:
    op.create_index("ix_return_units_received_at", "return_units", ["received_at"])
    op.create_index("ix_refund_triggers_released_at", "refund_triggers", ["released_at"])
    op.create_index("ix_return_exceptions_opened_at", "return_exceptions", ["opened_at"])
    op.create_index("ix_rmas_created_at", "rmas", ["created_at"])
    op.create_index("ix_rmas_open", "rmas", ["status"], postgresql_where=sa.text(OPEN), sqlite_where=sa.text(OPEN))
    op.create_index("ix_carrier_trackings_carrier", "carrier_trackings", ["carrier"])


def downgrade() -> None:
    op.drop_index("ix_carrier_trackings_carrier", table_name="carrier_trackings")
    op.drop_index("ix_rmas_open", table_name="rmas")
    op.drop_index("ix_rmas_created_at", table_name="rmas")
    op.drop_index("ix_return_exceptions_opened_at", table_name="return_exceptions")
    op.drop_index("ix_refund_triggers_released_at", table_name="refund_triggers")
    op.drop_index("ix_return_units_received_at", table_name="return_units")
