"""Refund triggers: one per return unit, moved only by app.refunds.services."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, CheckConstraint, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base, BigIntPK, Money, utcnow
from app.ledger.models import ReturnUnit
from app.refunds.domain import REFUND_ACTIONS, REFUND_STATUSES


class RefundTrigger(Base):
    """What finance may pay for one returned unit, and where that decision stands."""

    __tablename__ = "refund_triggers"
    __table_args__ = (
        CheckConstraint(f"status IN {REFUND_STATUSES!r}", name="status"),
        CheckConstraint(f"refund_action IS NULL OR refund_action IN {REFUND_ACTIONS!r}", name="refund_action"),
        # Never released (or acknowledged) before the unit was inspected: enforced by the database too.
        CheckConstraint("status NOT IN ('released', 'acknowledged') OR inspected_at IS NOT NULL", name="released_after_inspection"),
        CheckConstraint("amount >= 0 AND amount <= paid_amount", name="amount_bounds"),
        Index("ix_refund_triggers_status_pending", "status", "pending_since"),
        Index("ix_refund_triggers_released_at", "released_at"),  # the dashboard's refund latency
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    # unique=True: at most one refund trigger per unit, whatever the code does.
    unit_id: Mapped[int] = mapped_column(ForeignKey("return_units.id"), unique=True)
    rma_id: Mapped[int | None] = mapped_column(ForeignKey("rmas.id"), index=True)
    warehouse_id: Mapped[int] = mapped_column(ForeignKey("warehouses.id"), index=True)
    status: Mapped[str] = mapped_column(String(24), index=True)
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    paid_amount: Mapped[Decimal] = mapped_column(Money)
    amount: Mapped[Decimal] = mapped_column(Money)
    refund_action: Mapped[str | None] = mapped_column(String(24))
    hold_reasons: Mapped[list[str]] = mapped_column(JSON, default=list)
    inspected_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    inspected_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    override_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    decision_reason: Mapped[str | None] = mapped_column(Text)
    pending_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    released_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    acknowledged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    payment_reference: Mapped[str | None] = mapped_column(String(64))  # finance's, given when it acknowledges
    # The return line's resolution: refund, store credit, or an exchange for `exchange_sku`.
    resolution: Mapped[str] = mapped_column(String(16), default="refund", server_default="refund")
    exchange_sku: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)
    __mapper_args__ = {"version_id_col": version}
    unit: Mapped[ReturnUnit] = relationship()


class RefundEvent(Base):
    """The history of a refund trigger, one row per status change."""

    __tablename__ = "refund_events"
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    refund_id: Mapped[int] = mapped_column(ForeignKey("refund_triggers.id"), index=True)
    from_status: Mapped[str | None] = mapped_column(String(24))
    to_status: Mapped[str] = mapped_column(String(24))
    amount: Mapped[Decimal] = mapped_column(Money)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    reason: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
