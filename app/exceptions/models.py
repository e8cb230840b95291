"""Typed, queued, aged receiving exceptions (product.md "Exceptions")."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, CheckConstraint, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.catalog.models import Product, Warehouse
from app.db import Base, Money, utcnow
from app.words import N_

EXCEPTION_TYPES = (
    "unidentified_parcel", "wrong_item", "extra_item", "missing_item",
    "serial_mismatch", "damaged_in_transit", "empty_box", "over_return",
)
EXCEPTION_LABELS = {
    "unidentified_parcel": N_("Unidentified parcel"),
    "wrong_item": N_("Wrong item"),
    "extra_item": N_("Extra item"),
    "missing_item": N_("Missing item"),
    "serial_mismatch": N_("Serial mismatch"),
    "damaged_in_transit": N_("Damaged in transit"),
    "empty_box": N_("Empty box"),
    "over_return": N_("Over-return"),
}


class ReturnException(Base):
    """Something on the dock that did not match what was expected."""

    __tablename__ = "return_exceptions"
    __table_args__ = (
        CheckConstraint(f"type IN {EXCEPTION_TYPES!r}", name="type"),
        CheckConstraint("status IN ('open', 'resolved')", name="status"),
        Index("ix_return_exceptions_status_type_opened", "status", "type", "opened_at"),
        Index("ix_return_exceptions_opened_at", "opened_at"),  # the dashboard's exception volume
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    type: Mapped[str] = mapped_column(String(24))
    status: Mapped[str] = mapped_column(String(16), default="open")
    warehouse_id: Mapped[int] = mapped_column(ForeignKey("warehouses.id"), index=True)
    merchant_id: Mapped[int | None] = mapped_column(ForeignKey("merchants.id"), index=True)
    rma_id: Mapped[int | None] = mapped_column(ForeignKey("rmas.id"), index=True)
    rma_line_id: Mapped[int | None] = mapped_column(ForeignKey("rma_lines.id"))
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("return_units.id"), index=True)
    # the parcel it came in; the column keeps its name (receipt_id), the attribute says parcel
    parcel_id: Mapped[int | None] = mapped_column("receipt_id", ForeignKey("receipts.id"), index=True, key="parcel_id")
    product_id: Mapped[int | None] = mapped_column(ForeignKey("products.id"))
    quantity: Mapped[int] = mapped_column(Integer, default=1)
    value: Mapped[Decimal | None] = mapped_column(Money)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    opened_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    opened_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    resolution: Mapped[str | None] = mapped_column(String(32))
    resolution_reason: Mapped[str | None] = mapped_column(Text)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)  # who is dealing with it
    due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # app.exceptions.domain.DUE_HOURS
    version: Mapped[int] = mapped_column(Integer, default=1)
    __mapper_args__ = {"version_id_col": version}
    warehouse: Mapped[Warehouse] = relationship()
    product: Mapped[Product | None] = relationship()
