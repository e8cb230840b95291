"""indexes for the supervisor queues, the case timeline and the rules preview

Revision ID: 0003
Revises: 0002
"""
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

INDEXES = {
    "ix_return_units_state_changed": ("return_units", ["state", "state_changed_at"]),
    "ix_return_units_inspected_at": ("return_units", ["inspected_at"]),
    "ix_refund_triggers_status_pending": ("refund_triggers", ["status", "pending_since"]),
    "ix_outbox_events_aggregate": ("outbox_events", ["aggregate_type", "aggregate_id"]),
}


def upgrade() -> None:
    for name, (table, cols) in INDEXES.items():
        op.create_index(name, table, cols)


def downgrade() -> None:
    for name, (table, _cols) in INDEXES.items():
        op.drop_index(name, table_name=table)
