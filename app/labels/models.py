"""Network label printers and the record of every label printed."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.auth.models import User
from app.catalog.models import Warehouse
from app.db import Base, BigIntPK, utcnow
from app.ledger.models import ReturnUnit

PRINTER_STOCKS = ("4x6", "2x1")
JOB_STOCKS = ("4x6", "2x1", "a4")
JOB_KINDS = ("lpn", "sku")
CHANNELS = ("zpl_socket", "zpl_download", "browser")


class Printer(Base):
    """A Zebra (or compatible) thermal printer taking raw ZPL on a TCP port, set up by an admin."""

    __tablename__ = "printers"
    __table_args__ = (
        UniqueConstraint("warehouse_id", "name", name="uq_printers_warehouse_name"),
        CheckConstraint(f"stock IN {PRINTER_STOCKS!r}", name="stock"),
        CheckConstraint("port BETWEEN 1 AND 65535", name="port"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80))
    warehouse_id: Mapped[int] = mapped_column(ForeignKey("warehouses.id"), index=True)
    host: Mapped[str] = mapped_column(String(253))
    port: Mapped[int] = mapped_column(Integer, default=9100)
    stock: Mapped[str] = mapped_column(String(8), default="4x6")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    warehouse: Mapped[Warehouse] = relationship()


class PrintJob(Base):
    """One label printed (or handed over for printing): who, when, where, which label, why again.

    Written only once the label left Dockhand: after the printer took the ZPL, when the ZPL
    file was served, or when a person asked the browser print page to print.
    """

    __tablename__ = "print_jobs"
    __table_args__ = (
        CheckConstraint(f"stock IN {JOB_STOCKS!r}", name="stock"),
        CheckConstraint(f"kind IN {JOB_KINDS!r}", name="kind"),
        CheckConstraint(f"channel IN {CHANNELS!r}", name="channel"),
        Index("ix_print_jobs_unit_id_kind", "unit_id", "kind"),
    )
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("return_units.id"))
    printer_id: Mapped[int | None] = mapped_column(ForeignKey("printers.id"), index=True)
    stock: Mapped[str] = mapped_column(String(8))
    kind: Mapped[str] = mapped_column(String(8))
    barcode_value: Mapped[str] = mapped_column(String(80))
    channel: Mapped[str] = mapped_column(String(16))
    reprint: Mapped[bool] = mapped_column(Boolean, default=False)
    reason: Mapped[str | None] = mapped_column(Text)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    idempotency_key: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    unit: Mapped[ReturnUnit] = relationship()
    printer: Mapped[Printer | None] = relationship()
    actor: Mapped[User | None] = relationship()
