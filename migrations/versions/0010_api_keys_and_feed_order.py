"""API keys; outbox events carry their writing transaction's id, the event feed's order

Revision ID: 0010
Revises: 0009
"""
import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("key_id", sa.String(16), nullable=False),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("merchant_ids", sa.JSON(), nullable=True),
        sa.Column("partner_org_id", sa.Integer(), sa.ForeignKey("partner_orgs.id"), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(120), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("key_id"),
    )
    # PostgreSQL stamps each event with the id of the transaction that writes it: the feed hands out
    # only events of transactions older than every one still running, so one that commits late is
    # never skipped. Events already written get this migration's id (they are all committed).
    postgres = op.get_bind().dialect.name == "postgresql"
    default = sa.text("(pg_current_xact_id()::text::bigint)") if postgres else None
    op.add_column("outbox_events", sa.Column("tx", sa.BigInteger(), nullable=True, server_default=default))
    op.create_index("ix_outbox_events_feed", "outbox_events", ["tx", "id"])


def downgrade() -> None:
    op.drop_index("ix_outbox_events_feed", table_name="outbox_events")
    op.drop_column("outbox_events", "tx")  # in place (SQLite 3.35+): a table copy would break the view v_events
    op.drop_table("api_keys")
