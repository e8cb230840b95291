"""anomaly flags of a kit's missing components: the `missing_component` kind

anomaly_flags.kind's CHECK takes `missing_component` (app.anomalies.domain): a kit inspected with
components missing is flagged on its unit and return.

Revision ID: 0028
Revises: 0027
"""
import sqlalchemy as sa
from alembic import op

from app.migrate import views_set_aside

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None

BEFORE = ("returned_before", "swap", "customer_norm", "empty_box")
AFTER = (*BEFORE, "missing_component")


def upgrade() -> None:
    _kinds(AFTER)


def downgrade() -> None:
    op.execute(sa.text("DELETE FROM anomaly_flags WHERE kind = 'missing_component'"))
    _kinds(BEFORE)


def _kinds(kinds: tuple[str, ...]) -> None:
    """anomaly_flags' CHECK on kind, made again for `kinds` (SQLite rebuilds the table: the views
    that read it are set aside meanwhile)."""
    with views_set_aside("anomaly_flags"), op.batch_alter_table("anomaly_flags") as batch:
        batch.drop_constraint(op.f("ck_anomaly_flags_kind"), type_="check")
        batch.create_check_constraint(op.f("ck_anomaly_flags_kind"), f"kind IN {kinds!r}")
