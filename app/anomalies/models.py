"""Anomaly flags: one row per anomaly found on a unit or a return, written by app.anomalies.writer."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, CheckConstraint, DateTime, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.anomalies.domain import KINDS
from app.db import Base, utcnow


class AnomalyFlag(Base):
    """What looks wrong (app.anomalies.domain's kinds) about one unit (`unit_id`) or a whole return
    (`unit_id` NULL: every unit of `rma_id`), explained in words; `holds`: it holds the refund for a
    supervisor's approval (the refund's fraud flag). Cleared when a supervisor decides the refund
    it held."""

    __tablename__ = "anomaly_flags"
    __table_args__ = (
        CheckConstraint(f"kind IN {KINDS!r}", name="kind"),
        CheckConstraint("unit_id IS NOT NULL OR rma_id IS NOT NULL", name="target"),
        Index("ix_anomaly_flags_unit_id", "unit_id"),
        Index("ix_anomaly_flags_rma_id", "rma_id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(24))
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("return_units.id"))
    rma_id: Mapped[int | None] = mapped_column(ForeignKey("rmas.id"))
    holds: Mapped[bool] = mapped_column(Boolean, default=True)
    explanation: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    cleared_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cleared_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
