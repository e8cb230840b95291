"""The CSV imports' table: an uploaded file, kept in the database between its preview and its
apply so that any app server behind the proxy can answer either."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, DateTime, ForeignKey, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, utcnow


class CsvImport(Base):
    """One uploaded CSV file: its bytes and hash, what the preview found (`preview`: counts and the
    bad rows) and, once applied, what each use case did (`result`). `status`: previewed, applying
    (claimed by one apply; another waits for its result), applied."""

    __tablename__ = "csv_imports"
    __table_args__ = (CheckConstraint("kind IN ('products', 'orders', 'rmas')", name="kind"),
                      CheckConstraint("status IN ('previewed', 'applying', 'applied')", name="status"),
                      Index("ix_csv_imports_sha256", "sha256"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    filename: Mapped[str] = mapped_column(String(200))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    content: Mapped[bytes] = mapped_column(LargeBinary)
    status: Mapped[str] = mapped_column(String(16), default="previewed")
    preview: Mapped[dict[str, Any]] = mapped_column(JSON)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    applied_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    apply_started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    applied_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
