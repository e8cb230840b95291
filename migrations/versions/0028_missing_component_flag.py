"""anomaly flags of a kit's missing components: the `missing_component` kind

anomaly_flags.kind's CHECK takes `missing_component` (app.anomalies.domain): a kit inspected with
components missing is flagged on its unit and return.

Revision ID: 0028
Revises: 0027
"""
import sqlalchemy as sa
from alembic import op

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
    """anomaly_flags' CHECK on kind, made again for `kinds`. On SQLite that rebuilds the table,
    which it refuses while a view names it: those views are dropped and made again from their own
    stored text, unchanged."""
    views = _views_reading(("anomaly_flags",))
    for name in views:
        op.execute(f"DROP VIEW {name}")
    with op.batch_alter_table("anomaly_flags") as batch:
        batch.drop_constraint(op.f("ck_anomaly_flags_kind"), type_="check")
        batch.create_check_constraint(op.f("ck_anomaly_flags_kind"), f"kind IN {kinds!r}")
    for sql in views.values():
        op.execute(sql)


def _views_reading(tables: tuple[str, ...]) -> dict[str, str]:
    """SQLite's views whose text names one of the tables, with the statement that made each."""
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return {}
    rows = bind.execute(sa.text("SELECT name, sql FROM sqlite_master WHERE type = 'view'")).all()
    return {name: sql for name, sql in rows if any(table in sql for table in tables)}
