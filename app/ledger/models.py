"""Return units, the append-only ledger, balances, the outbox, the audit trail, idempotency."""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, event, text, BigInteger, CheckConstraint, Date, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.catalog.models import Location, Merchant, Product, Warehouse
from app.db import Base, BigIntPK, Money, utcnow
from app.ledger.domain import SERIAL_HELD, STATES

SERIAL_STATUSES = ("not_tracked", "match", "mismatch", "missing")
IN_BUILDING_WHERE = f"serial IS NOT NULL AND state IN {SERIAL_HELD!r}"


class ReturnUnit(Base):
    """One physical returned item with its licence plate (LPN).

    `state` and `location_id` change only through app.ledger.writer.move_unit.
    """

    __tablename__ = "return_units"
    __table_args__ = (
        CheckConstraint(f"state IN {STATES!r}", name="state"),
        CheckConstraint(f"serial_status IN {SERIAL_STATUSES!r}", name="serial_status"),
        Index("ix_return_units_state_warehouse", "state", "warehouse_id"),
        Index("ix_return_units_state_changed", "state", "state_changed_at"),
        Index("ix_return_units_inspected_at", "inspected_at"),
        Index("ix_return_units_received_at", "received_at"),  # the dashboard's receiving figures
        # A serial may come back (a resold item), but only one unit with it is in the building and
        # not sellable at once (app.ledger.domain.SERIAL_HELD): the database refuses a second.
        Index("uq_return_units_serial_in_building", "product_id", "serial", unique=True,
              postgresql_where=text(IN_BUILDING_WHERE), sqlite_where=text(IN_BUILDING_WHERE)),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    lpn: Mapped[str] = mapped_column(String(32), unique=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"), index=True)
    warehouse_id: Mapped[int] = mapped_column(ForeignKey("warehouses.id"), index=True)
    location_id: Mapped[int | None] = mapped_column(ForeignKey("locations.id"))
    merchant_id: Mapped[int | None] = mapped_column(ForeignKey("merchants.id"), index=True)
    rma_id: Mapped[int | None] = mapped_column(ForeignKey("rmas.id"), index=True)
    rma_line_id: Mapped[int | None] = mapped_column(ForeignKey("rma_lines.id"), index=True)
    # the parcel it came in; the column keeps its name (receipt_id), the attribute says parcel
    parcel_id: Mapped[int | None] = mapped_column("receipt_id", ForeignKey("receipts.id"), index=True, key="parcel_id")
    state: Mapped[str] = mapped_column(String(16))
    serial: Mapped[str | None] = mapped_column(String(64), index=True)
    lot: Mapped[str | None] = mapped_column(String(64))
    # the lot's expiry, when the item's GS1 code carried it (AI 17)
    expiry: Mapped[date | None] = mapped_column(Date)
    serial_status: Mapped[str] = mapped_column(String(16), default="not_tracked")
    paid_price: Mapped[Decimal | None] = mapped_column(Money)
    grade: Mapped[str | None] = mapped_column(String(1))
    packaging: Mapped[str | None] = mapped_column(String(16))
    disposition: Mapped[str | None] = mapped_column(String(24))
    decision_rule: Mapped[str | None] = mapped_column(Text)
    # what the last inspection's answers set: a grade, deductions, missing kit components
    # (app/inspection/grading.py's Grading.as_json; None: nothing)
    grading: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    inspected_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    inspected_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    received_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    state_changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)
    __mapper_args__ = {"version_id_col": version}

    product: Mapped[Product] = relationship()
    warehouse: Mapped[Warehouse] = relationship()
    location: Mapped[Location | None] = relationship()
    merchant: Mapped[Merchant | None] = relationship()


class LedgerEntry(Base):
    """An immutable record of one unit state change (database triggers refuse UPDATE/DELETE)."""

    __tablename__ = "ledger_entries"
    __table_args__ = (Index("ix_ledger_entries_unit_id_id", "unit_id", "id"),)
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("return_units.id"))
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    warehouse_id: Mapped[int] = mapped_column(ForeignKey("warehouses.id"))
    from_state: Mapped[str | None] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    from_location_id: Mapped[int | None] = mapped_column(ForeignKey("locations.id"))
    to_location_id: Mapped[int | None] = mapped_column(ForeignKey("locations.id"))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    actor_role: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    idempotency_key: Mapped[str | None] = mapped_column(String(100))


class Balance(Base):
    """Units of a SKU in a state at a warehouse; always equals the ledger summed."""

    __tablename__ = "balances"
    __table_args__ = (CheckConstraint("quantity >= 0", name="quantity_not_negative"),)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"), primary_key=True)
    warehouse_id: Mapped[int] = mapped_column(ForeignKey("warehouses.id"), primary_key=True)
    state: Mapped[str] = mapped_column(String(16), primary_key=True)
    quantity: Mapped[int] = mapped_column(Integer, default=0)


class OutboxEvent(Base):
    """An event for other systems, written in the same transaction as the change it reports."""

    __tablename__ = "outbox_events"
    __table_args__ = (Index("ix_outbox_events_aggregate", "aggregate_type", "aggregate_id"),
                      Index("ix_outbox_events_feed", "tx", "id"))
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    # The writing transaction's id, filled by PostgreSQL (pg_current_xact_id(), migration 0010): the
    # feed's order (app/ledger/queries.py: feed_page). SQLite leaves it empty: its writers take turns.
    tx: Mapped[int | None] = mapped_column(BigInteger)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    type: Mapped[str] = mapped_column(String(64), index=True)
    aggregate_type: Mapped[str] = mapped_column(String(32))
    aggregate_id: Mapped[int] = mapped_column(BigInteger)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)


class AuditEntry(Base):
    """Who did what, when and why: every governed action writes one."""

    __tablename__ = "audit_entries"
    __table_args__ = (Index("ix_audit_entries_entity", "entity_type", "entity_id"),)
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    actor_name: Mapped[str] = mapped_column(String(120))
    action: Mapped[str] = mapped_column(String(64))
    entity_type: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[int] = mapped_column(BigInteger)
    warehouse_id: Mapped[int | None] = mapped_column(ForeignKey("warehouses.id"))
    reason: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class IdempotencyRecord(Base):
    """The first result of a mutation, replayed to any retry with the same key."""

    __tablename__ = "idempotency_records"
    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    operation: Mapped[str] = mapped_column(String(64))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    fingerprint: Mapped[str] = mapped_column(String(64))
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Counter(Base):
    """Named counters for numbers people read (LPNs, blind-parcel numbers)."""

    __tablename__ = "counters"
    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, default=0)


@event.listens_for(ReturnUnit.state, "set")
def _guard_state(_target: ReturnUnit, _value: str, _old: object, _initiator: object) -> None:
    """A unit's state is written only by app.ledger.writer.move_unit (with its ledger row, balances,
    outbox event and audit entry): setting it on an entity is refused."""
    raise RuntimeError("ReturnUnit.state changes only through app.ledger.writer.move_unit")
