"""Reconciliation's tables: the sources (a 3PL's or WMS's feed, with its bucket mapping), the
snapshots they send (every one kept, with its rows), the variance lines of a comparison with
their owner and resolution, and the lost or found corrections they lead to."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, BigIntPK, utcnow
from app.reconciliation.domain import KINDS, RESOLUTIONS

_RESOLUTION_CODES = tuple(RESOLUTIONS)


class ReconSource(Base):
    """A system that counts stock (a 3PL's WMS): its bucket names mapped to Dockhand's states
    (`buckets`: {BUCKET: state}); a partner organisation's source takes rows of its warehouses only."""

    __tablename__ = "recon_sources"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    partner_org_id: Mapped[int | None] = mapped_column(ForeignKey("partner_orgs.id"), index=True)
    buckets: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ReconSnapshot(Base):
    """A source's stock as of `as_of` (T). `status`: previewed (kept, not compared), accepted (the
    comparison ran: `summary`). Never deleted."""

    __tablename__ = "recon_snapshots"
    __table_args__ = (CheckConstraint("status IN ('previewed', 'accepted')", name="status"),
                      Index("ix_recon_snapshots_source_as_of", "source_id", "as_of"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("recon_sources.id"))
    as_of: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    origin: Mapped[str] = mapped_column(String(16))  # csv or api
    filename: Mapped[str | None] = mapped_column(String(200))
    sha256: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="previewed")
    rows: Mapped[int] = mapped_column(Integer)
    units: Mapped[int] = mapped_column(Integer)
    preview: Mapped[dict[str, Any]] = mapped_column(JSON)
    summary: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_by_name: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    compared_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ReconSnapshotLine(Base):
    """One row of a snapshot: an item's count in a bucket, with the state it maps to."""

    __tablename__ = "recon_snapshot_lines"
    __table_args__ = (Index("ix_recon_snapshot_lines_snapshot", "snapshot_id"),)
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    snapshot_id: Mapped[int] = mapped_column(ForeignKey("recon_snapshots.id"))
    line: Mapped[int] = mapped_column(Integer)
    warehouse_id: Mapped[int] = mapped_column(ForeignKey("warehouses.id"))
    merchant_id: Mapped[int | None] = mapped_column(ForeignKey("merchants.id"))
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    bucket: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))
    quantity: Mapped[int] = mapped_column(Integer)


class ReconVariance(Base):
    """One item of a comparison: the ledger's count at T against the snapshot's, its kind and
    likely cause (`details`: the units behind it and the ledger's entries around T), and the
    supervisor's owner, resolution and notes."""

    __tablename__ = "recon_variances"
    __table_args__ = (CheckConstraint(f"kind IN {KINDS!r}", name="kind"),
                      CheckConstraint(f"resolution IS NULL OR resolution IN {_RESOLUTION_CODES!r}", name="resolution"),
                      UniqueConstraint("snapshot_id", "warehouse_id", "merchant_id", "product_id", "state",
                                       name="uq_recon_variances_item"),
                      Index("ix_recon_variances_snapshot_kind", "snapshot_id", "kind"))
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    snapshot_id: Mapped[int] = mapped_column(ForeignKey("recon_snapshots.id"))
    warehouse_id: Mapped[int] = mapped_column(ForeignKey("warehouses.id"))
    merchant_id: Mapped[int | None] = mapped_column(ForeignKey("merchants.id"))
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    state: Mapped[str] = mapped_column(String(16))
    ledger_qty: Mapped[int] = mapped_column(Integer)
    snapshot_qty: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(8))
    cause: Mapped[str] = mapped_column(Text, default="")
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    resolution: Mapped[str | None] = mapped_column(String(16))
    notes: Mapped[str | None] = mapped_column(Text)
    resolved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    version: Mapped[int] = mapped_column(Integer, default=1)


class ReconCorrection(Base):
    """A lost or found unit, corrected through the ledger from a variance line: applied at once,
    or (above the value threshold) pending until a second supervisor approves."""

    __tablename__ = "recon_corrections"
    __table_args__ = (CheckConstraint("status IN ('pending', 'applied', 'rejected')", name="status"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    variance_id: Mapped[int] = mapped_column(ForeignKey("recon_variances.id"), index=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("return_units.id"), index=True)
    to_state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
