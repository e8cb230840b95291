"""product categories in a table (no longer a fixed three) and versioned inspection checklists per
category; an inspection keeps the checklist version it was answered against

The three codes the app knew become rows (with any other code a product or a stored checklist
already uses). Each category's checklist in use becomes its version 1: the stored checklist_templates
row, else the defaults the app fell back to. checklist_templates goes; downgrading rebuilds it from
each category's newest version.

Revision ID: 0017
Revises: 0016
"""
import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

NAMES = {"electronics": "Electronics", "apparel": "Apparel", "health_beauty": "Health & beauty"}
# What app/inspection/services.py fell back to when a category had no stored checklist (frozen here).
DEFAULTS = {
    "electronics": [
        {"key": "powers_on", "label": "Powers on"},
        {"key": "screen_ok", "label": "Screen free of cracks and dead pixels"},
        {"key": "accessories", "label": "Charger and accessories present"},
        {"key": "factory_reset", "label": "Account removed / factory reset"},
        {"key": "no_liquid", "label": "No liquid damage indicator"},
    ],
    "apparel": [
        {"key": "tags_attached", "label": "Original tags attached"},
        {"key": "unworn", "label": "Unworn, unwashed, no odour"},
        {"key": "no_stains", "label": "No stains, tears or pulls"},
        {"key": "size_matches", "label": "Size label matches the SKU"},
    ],
    "health_beauty": [
        {"key": "seal_intact", "label": "Safety seal intact"},
        {"key": "unused", "label": "Product unused"},
        {"key": "in_date", "label": "Within expiry date"},
        {"key": "lot_readable", "label": "Lot number readable"},
    ],
}
MIGRATED_NOTE = "The checklist in use before checklists were versioned."

templates = sa.table("checklist_templates", sa.column("category", sa.String), sa.column("items", sa.JSON))
products = sa.table("products", sa.column("category", sa.String))


def upgrade() -> None:
    bind = op.get_bind()
    categories = op.create_table(
        "categories",
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_categories")),
    )
    versions = op.create_table(
        "checklist_versions",
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("items", sa.JSON(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["category"], ["categories.code"], name=op.f("fk_checklist_versions_category_categories")),
        sa.ForeignKeyConstraint(["author_id"], ["users.id"], name=op.f("fk_checklist_versions_author_id_users")),
        sa.PrimaryKeyConstraint("category", "version", name=op.f("pk_checklist_versions")),
    )
    stored = {row.category: row.items for row in bind.execute(sa.select(templates.c.category, templates.c["items"]))}
    used = set(bind.scalars(sa.select(products.c.category).distinct()))
    codes = sorted(set(NAMES) | set(stored) | used)
    op.bulk_insert(categories, [{"code": c, "name": NAMES.get(c, c.replace("_", " ").capitalize()), "active": True}
                                for c in codes])
    now = bind.execute(sa.select(sa.func.current_timestamp())).scalar()
    op.bulk_insert(versions, [{"category": c, "version": 1, "items": stored.get(c, DEFAULTS.get(c)), "note": MIGRATED_NOTE,
                               "author_id": None, "created_at": now}
                              for c in codes if stored.get(c, DEFAULTS.get(c)) is not None])
    op.drop_table("checklist_templates")
    op.add_column("inspections", sa.Column("checklist_version", sa.Integer(), nullable=True))


def downgrade() -> None:
    bind = op.get_bind()
    op.drop_column("inspections", "checklist_version")
    restored = op.create_table(
        "checklist_templates",
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("items", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("category", name=op.f("pk_checklist_templates")),
    )
    versions = sa.table("checklist_versions", sa.column("category", sa.String), sa.column("version", sa.Integer),
                        sa.column("items", sa.JSON))
    newest = sa.select(versions.c.category, sa.func.max(versions.c.version).label("v")).group_by(versions.c.category).subquery()
    rows = bind.execute(sa.select(versions.c.category, versions.c["items"])
                        .join(newest, (newest.c.category == versions.c.category) & (newest.c.v == versions.c.version))).all()
    op.bulk_insert(restored, [{"category": r.category, "items": r.items} for r in rows])
    op.drop_table("checklist_versions")
    op.drop_table("categories")
