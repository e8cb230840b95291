"""photos.storage_key indexed: the photo sweep asks which stored files have a photo row

Revision ID: 0009
Revises: 0008
"""
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_photos_storage_key", "photos", ["storage_key"])


def downgrade() -> None:
    op.drop_index("ix_photos_storage_key", table_name="photos")
