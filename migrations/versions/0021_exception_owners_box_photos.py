"""exceptions get an owner and a due time (by type); photos may be of an exception's box (a
parcel's empty or damaged box) instead of a unit

Existing exceptions are due their opening time plus their type's hours (app/exceptions/domain.py's
DUE_HOURS, frozen here).

Revision ID: 0021
Revises: 0020
"""
from datetime import timedelta

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

# v_exceptions (0013) reads return_exceptions: SQLite rebuilds the table to add a foreign key, which
# it refuses while a view names the table, so the view is dropped and made again, unchanged.
V_EXCEPTIONS = """
        SELECT e.id AS exception_id, e.type, e.status, w.code AS warehouse, e.warehouse_id, e.merchant_id, e.rma_id,
               e.receipt_id AS parcel_id, e.unit_id, u.lpn, p.sku, e.quantity, e.value, e.opened_at, e.resolved_at,
               e.resolution, e.resolution_reason
        FROM return_exceptions e JOIN warehouses w ON w.id = e.warehouse_id LEFT JOIN return_units u ON u.id = e.unit_id
        LEFT JOIN products p ON p.id = e.product_id"""
DUE_HOURS = {"empty_box": 24, "damaged_in_transit": 24, "serial_mismatch": 24, "unidentified_parcel": 48,
             "wrong_item": 48, "missing_item": 72, "extra_item": 72, "over_return": 72}


def upgrade() -> None:
    op.execute("DROP VIEW v_exceptions")
    with op.batch_alter_table("return_exceptions") as batch:
        batch.add_column(sa.Column("owner_id", sa.Integer(), sa.ForeignKey("users.id", name="fk_return_exceptions_owner_id_users"),
                                   nullable=True))
        batch.add_column(sa.Column("due_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_index("ix_return_exceptions_owner_id", ["owner_id"])
    op.execute(f"CREATE VIEW v_exceptions AS {V_EXCEPTIONS}")
    exceptions = sa.table("return_exceptions", sa.column("id", sa.Integer), sa.column("type", sa.String),
                          sa.column("opened_at", sa.DateTime(timezone=True)), sa.column("due_at", sa.DateTime(timezone=True)))
    bind = op.get_bind()
    for row in bind.execute(sa.select(exceptions.c.id, exceptions.c.type, exceptions.c.opened_at)).all():
        bind.execute(sa.update(exceptions).where(exceptions.c.id == row.id)
                     .values(due_at=row.opened_at + timedelta(hours=DUE_HOURS.get(row.type, 48))))
    with op.batch_alter_table("photos") as batch:
        batch.alter_column("unit_id", existing_type=sa.Integer(), nullable=True)
        batch.add_column(sa.Column("exception_id", sa.Integer(),
                                   sa.ForeignKey("return_exceptions.id", name="fk_photos_exception_id_return_exceptions"),
                                   nullable=True))
        batch.create_index("ix_photos_exception_id", ["exception_id"])
        batch.create_check_constraint(op.f("ck_photos_of_unit_or_exception"), "unit_id IS NOT NULL OR exception_id IS NOT NULL")


def downgrade() -> None:
    op.execute("DELETE FROM photos WHERE unit_id IS NULL")
    with op.batch_alter_table("photos") as batch:
        batch.drop_constraint(op.f("ck_photos_of_unit_or_exception"), type_="check")
        batch.drop_index("ix_photos_exception_id")
        batch.drop_column("exception_id")
        batch.alter_column("unit_id", existing_type=sa.Integer(), nullable=False)
    op.execute("DROP VIEW v_exceptions")
    with op.batch_alter_table("return_exceptions") as batch:
        batch.drop_index("ix_return_exceptions_owner_id")
        batch.drop_column("due_at")
        batch.drop_column("owner_id")
    op.execute(f"CREATE VIEW v_exceptions AS {V_EXCEPTIONS}")
