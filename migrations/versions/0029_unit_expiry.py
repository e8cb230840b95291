"""a unit's lot expiry: return_units.expiry

return_units.expiry: the expiry date a lot-tracked item's GS1 code carried (AI 17); NULL when none
did. Units received before keep NULL.

Revision ID: 0029
Revises: 0028
"""
import sqlalchemy as sa
from alembic import op

revision = "0029"
down_revision = "0028"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("return_units") as batch:
        batch.add_column(sa.Column("expiry", sa.Date(), nullable=True))


def downgrade() -> None:
    # SQLite drops a column by rebuilding the table, which it refuses while a view names it: the
    # views that read return_units are dropped and made again from their own stored text.
    views = _views_reading(("return_units",))
    for name in views:
        op.execute(f"DROP VIEW {name}")
    with op.batch_alter_table("return_units") as batch:
        batch.drop_column("expiry")
    for sql in views.values():
        op.execute(sql)


def _views_reading(tables: tuple[str, ...]) -> dict[str, str]:
    """SQLite's views whose text names one of the tables, with the statement that made each."""
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return {}
    rows = bind.execute(sa.text("SELECT name, sql FROM sqlite_master WHERE type = 'view'")).all()
    return {name: sql for name, sql in rows if any(table in sql for table in tables)}
