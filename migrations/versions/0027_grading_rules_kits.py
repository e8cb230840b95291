"""grading rules kept with each checklist version; a unit's grading (what its answers set); kits'
components (product_components)

checklist_versions.rules: the category's grading rules as saved with that version (NULL: none).
return_units.grading and inspections.grading: what the answers set, the grade and the deductions,
with the answers that set them (NULL: nothing; units inspected before keep NULL).
product_components: a kit product's components, each a product of the catalog or a name, a quantity
and the share of the refund a missing one deducts (NULL: its value's share of the kit's).

Revision ID: 0027
Revises: 0026
"""
import sqlalchemy as sa
from alembic import op

from app.migrate import views_set_aside

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("checklist_versions") as batch:
        batch.add_column(sa.Column("rules", sa.JSON(), nullable=True))
    with op.batch_alter_table("return_units") as batch:
        batch.add_column(sa.Column("grading", sa.JSON(), nullable=True))
    with op.batch_alter_table("inspections") as batch:
        batch.add_column(sa.Column("grading", sa.JSON(), nullable=True))
    op.create_table(
        "product_components",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("kit_product_id", sa.Integer(), sa.ForeignKey("products.id"), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("component_product_id", sa.Integer(), sa.ForeignKey("products.id"), nullable=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("deduction_pct", sa.Numeric(5, 4), nullable=True),
        sa.CheckConstraint("quantity BETWEEN 1 AND 999", name="ck_product_components_quantity"),
        sa.CheckConstraint("deduction_pct IS NULL OR (deduction_pct >= 0 AND deduction_pct <= 1)",
                           name="ck_product_components_deduction_pct"),
        sa.UniqueConstraint("kit_product_id", "position", name="uq_product_components_kit_position"),
    )


def downgrade() -> None:
    op.drop_table("product_components")
    # v_return_units, v_refund_triggers and v_exceptions read return_units: set aside on SQLite
    with views_set_aside("inspections", "return_units", "checklist_versions"):
        with op.batch_alter_table("inspections") as batch:
            batch.drop_column("grading")
        with op.batch_alter_table("return_units") as batch:
            batch.drop_column("grading")
        with op.batch_alter_table("checklist_versions") as batch:
            batch.drop_column("rules")
