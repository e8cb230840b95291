"""labels: network printers and print jobs

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 12:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('printers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=80), nullable=False),
    sa.Column('warehouse_id', sa.Integer(), nullable=False),
    sa.Column('host', sa.String(length=253), nullable=False),
    sa.Column('port', sa.Integer(), nullable=False),
    sa.Column('stock', sa.String(length=8), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("stock IN ('4x6', '2x1')", name=op.f('ck_printers_stock')),
    sa.CheckConstraint('port BETWEEN 1 AND 65535', name=op.f('ck_printers_port')),
    sa.ForeignKeyConstraint(['warehouse_id'], ['warehouses.id'], name=op.f('fk_printers_warehouse_id_warehouses')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_printers')),
    sa.UniqueConstraint('warehouse_id', 'name', name='uq_printers_warehouse_name')
    )
    with op.batch_alter_table('printers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_printers_warehouse_id'), ['warehouse_id'], unique=False)

    op.create_table('print_jobs',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.Column('printer_id', sa.Integer(), nullable=True),
    sa.Column('stock', sa.String(length=8), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('barcode_value', sa.String(length=80), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('reprint', sa.Boolean(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('idempotency_key', sa.String(length=100), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("channel IN ('zpl_socket', 'zpl_download', 'browser')", name=op.f('ck_print_jobs_channel')),
    sa.CheckConstraint("kind IN ('lpn', 'sku')", name=op.f('ck_print_jobs_kind')),
    sa.CheckConstraint("stock IN ('4x6', '2x1', 'a4')", name=op.f('ck_print_jobs_stock')),
    sa.ForeignKeyConstraint(['actor_id'], ['users.id'], name=op.f('fk_print_jobs_actor_id_users')),
    sa.ForeignKeyConstraint(['printer_id'], ['printers.id'], name=op.f('fk_print_jobs_printer_id_printers')),
    sa.ForeignKeyConstraint(['unit_id'], ['return_units.id'], name=op.f('fk_print_jobs_unit_id_return_units')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_print_jobs'))
    )
    with op.batch_alter_table('print_jobs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_print_jobs_printer_id'), ['printer_id'], unique=False)
        batch_op.create_index('ix_print_jobs_unit_id_kind', ['unit_id', 'kind'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('print_jobs', schema=None) as batch_op:
        batch_op.drop_index('ix_print_jobs_unit_id_kind')
        batch_op.drop_index(batch_op.f('ix_print_jobs_printer_id'))

    op.drop_table('print_jobs')
    with op.batch_alter_table('printers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_printers_warehouse_id'))

    op.drop_table('printers')
