"""Disposition rules (the current ordered list), their saved versions, and reason codes."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Integer, Numeric, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, utcnow


class DispositionRule(Base):
    """One rule of the current rule set; `position` orders evaluation."""

    __tablename__ = "disposition_rules"
    id: Mapped[int] = mapped_column(primary_key=True)
    position: Mapped[int] = mapped_column(Integer, unique=True)
    name: Mapped[str] = mapped_column(String(120))
    conditions: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    disposition: Mapped[str] = mapped_column(String(24))
    refund_action: Mapped[str] = mapped_column(String(24))
    restocking_fee_pct: Mapped[Decimal] = mapped_column(Numeric(5, 4), default=Decimal("0.15"))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)


class RuleSetVersion(Base):
    """A saved snapshot of the whole rule set: every change is versioned and audited."""

    __tablename__ = "rule_set_versions"
    id: Mapped[int] = mapped_column(primary_key=True)
    rules: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    note: Mapped[str] = mapped_column(Text)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ReasonCode(Base):
    """A customer-stated return reason."""

    __tablename__ = "reason_codes"
    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    label: Mapped[str] = mapped_column(String(120))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # For the reason analytics: could the return have been avoided, and by whom (RESPONSIBLE_PARTIES);
    # None until somebody says.
    avoidable: Mapped[bool | None] = mapped_column(Boolean)
    responsible_party: Mapped[str | None] = mapped_column(String(24))
