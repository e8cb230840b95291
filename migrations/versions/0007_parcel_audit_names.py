"""the audit trail says parcel: its actions, its entity type, a received unit's detail

What is opened on the dock is a parcel (app.receiving.models.Parcel). Audit entries written before
said receipt: the actions receipt.opened, receipt.closed and receipt.linked_to_rma, the entity type
receipt, and `receipt_id` in a received unit's details. They are renamed, so that the trail reads
one way whenever it was written (the desk's timeline looks parcels up by entity type). The tables,
their columns and the SQL views keep their names; no outbox event type says receipt.

audit_entries is append-only (0001's triggers): its UPDATE trigger is set aside for the rewrite,
inside the migration's transaction, and put back as it was.

Revision ID: 0007
Revises: 0006
"""
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

ACTIONS = {"receipt.opened": "parcel.opened", "receipt.closed": "parcel.closed",
           "receipt.linked_to_rma": "parcel.linked_to_rma"}
ENTITY_TYPES = {"receipt": "parcel"}
# a key of the details of the unit.received entries (app.receiving.services: scan_item)
DETAILS_KEYS = {"receipt_id": "parcel_id"}


def upgrade() -> None:
    _rename(ACTIONS, ENTITY_TYPES, DETAILS_KEYS)


def downgrade() -> None:
    _rename(*({new: old for old, new in names.items()} for names in (ACTIONS, ENTITY_TYPES, DETAILS_KEYS)))


def _rename(actions: dict[str, str], entity_types: dict[str, str], details_keys: dict[str, str]) -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    # details is JSON text as json.dumps wrote it: a key is `"name":` (a quote inside a string is escaped)
    details = "CAST(details AS TEXT)" if postgresql else "details"
    with _audit_entries_writable(postgresql):
        for old, new in actions.items():
            op.execute(sa.text("UPDATE audit_entries SET action = :new WHERE action = :old").bindparams(old=old, new=new))
        for old, new in entity_types.items():
            op.execute(sa.text("UPDATE audit_entries SET entity_type = :new WHERE entity_type = :old")
                       .bindparams(old=old, new=new))
        for old, new in details_keys.items():
            renamed = f"replace({details}, :old, :new)"
            op.execute(sa.text(f"UPDATE audit_entries SET details = {f'CAST({renamed} AS JSON)' if postgresql else renamed} "
                               f"WHERE action = 'unit.received' AND {details} LIKE :pattern")
                       .bindparams(old=f'"{old}":', new=f'"{new}":', pattern=f'%"{old}":%'))


@contextmanager
def _audit_entries_writable(postgresql: bool) -> Iterator[None]:
    """audit_entries' UPDATE trigger set aside, and put back as 0001 made it."""
    if postgresql:
        op.execute("ALTER TABLE audit_entries DISABLE TRIGGER audit_entries_append_only")
        yield
        op.execute("ALTER TABLE audit_entries ENABLE TRIGGER audit_entries_append_only")
        return
    op.execute("DROP TRIGGER audit_entries_no_update")
    yield
    op.execute("CREATE TRIGGER audit_entries_no_update BEFORE UPDATE ON audit_entries "
               "BEGIN SELECT RAISE(ABORT, 'audit_entries is append-only'); END")
