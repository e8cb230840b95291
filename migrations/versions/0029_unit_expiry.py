"""a unit's lot expiry: return_units.expiry

return_units.expiry: the expiry date a lot-tracked item's GS1 code carried (AI 17); NULL when none
did. Units received before keep NULL.

Revision ID: 0029
Revises: 0028
"""
import sqlalchemy as sa
from alembic import op

from app.migrate import views_set_aside

revision = "0029"
down_revision = "0028"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("return_units") as batch:
        batch.add_column(sa.Column("expiry", sa.Date(), nullable=True))


def downgrade() -> None:
    with views_set_aside("return_units"), op.batch_alter_table("return_units") as batch:
        batch.drop_column("expiry")
