"""Stored settings and refund approval thresholds."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, Money, utcnow


class Setting(Base):
    """One console setting's stored value (text, checked by app/settings/domain.py)."""

    __tablename__ = "settings"
    name: Mapped[str] = mapped_column(String(48), primary_key=True)
    value: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class RefundThreshold(Base):
    """Refunds above `amount` wait for a supervisor: for everything (scope "all"), or for one
    merchant's or one sales channel's returns. The most specific applies; when a merchant's and a
    channel's both apply, the lower."""

    __tablename__ = "refund_thresholds"
    __table_args__ = (CheckConstraint("merchant_id IS NULL OR channel_id IS NULL", name="one_target"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    scope: Mapped[str] = mapped_column(String(40), unique=True)
    merchant_id: Mapped[int | None] = mapped_column(ForeignKey("merchants.id"), index=True)
    channel_id: Mapped[int | None] = mapped_column(ForeignKey("sales_channels.id"), index=True)
    amount: Mapped[Decimal] = mapped_column(Money)
