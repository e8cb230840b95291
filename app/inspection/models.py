"""Inspections, photos and the per-category checklists."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, utcnow


class ChecklistVersion(Base):
    """One saved version of a category's inspection checklist (items: [{"key", "label"}, ...]); the
    highest version is the one the handheld shows. Saving, or restoring an older one, adds a version."""

    __tablename__ = "checklist_versions"
    category: Mapped[str] = mapped_column(ForeignKey("categories.code"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    items: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    # the grading rules saved with these items (app/inspection/grading.py; None: none)
    rules: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    note: Mapped[str] = mapped_column(Text)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Inspection(Base):
    """One look at one unit: answers, grade, packaging, notes. A re-grade adds another."""

    __tablename__ = "inspections"
    id: Mapped[int] = mapped_column(primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("return_units.id"), index=True)
    inspector_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    grade: Mapped[str] = mapped_column(String(1))
    packaging: Mapped[str] = mapped_column(String(16))
    answers: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    notes: Mapped[str | None] = mapped_column(Text)
    checklist_version: Mapped[int | None] = mapped_column(Integer)  # of the product's category, when it had one
    # what the answers set (app/inspection/grading.py's Grading.as_json; None: nothing)
    grading: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Photo(Base):
    """A photo of a unit, or of the box of a parcel an exception is about (an empty or damaged
    box), stored outside the database under `storage_key`."""

    __tablename__ = "photos"
    __table_args__ = (UniqueConstraint("unit_id", "sha256", name="uq_photos_unit_sha"),
                      CheckConstraint("unit_id IS NOT NULL OR exception_id IS NOT NULL", name="of_unit_or_exception"))
    id: Mapped[int] = mapped_column(primary_key=True)
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("return_units.id"), index=True)
    exception_id: Mapped[int | None] = mapped_column(ForeignKey("return_exceptions.id"), index=True)
    storage_key: Mapped[str] = mapped_column(String(200), index=True)
    sha256: Mapped[str] = mapped_column(String(64))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    uploaded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
