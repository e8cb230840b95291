"""A parcel: what is opened on the dock (its table keeps its first name, receipts)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.catalog.models import Warehouse
from app.db import Base, utcnow
from app.orders.models import Rma


class Parcel(Base):
    """A parcel opened at a dock: against an RMA, or blind when nobody knows what it is."""

    __tablename__ = "receipts"
    # No unique "one open parcel per return" index: a return may arrive in two boxes, and a blind
    # parcel linked later joins a return that may be open. open_parcel locks the return's row so
    # that two workers scanning its label at once share one parcel.
    # The worker's open parcel (current_parcel_id, after every open and close) is found through the few
    # open rows, not by reading every parcel ever received.
    __table_args__ = (CheckConstraint("status IN ('open', 'closed')", name="status"),
                      Index("ix_receipts_open_by_opener", "opened_by_id", postgresql_where=text("status = 'open'"),
                            sqlite_where=text("status = 'open'")))
    id: Mapped[int] = mapped_column(primary_key=True)
    warehouse_id: Mapped[int] = mapped_column(ForeignKey("warehouses.id"), index=True)
    rma_id: Mapped[int | None] = mapped_column(ForeignKey("rmas.id"), index=True)
    scanned_code: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default="open")
    opened_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    opened_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    warehouse: Mapped[Warehouse] = relationship()
    rma: Mapped[Rma | None] = relationship()
