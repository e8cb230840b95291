"""Rows for the dashboard's tests (tests/integration/reports, tests/web/reports, tests/e2e): units,
refunds, exceptions and returns written straight to their tables at chosen moments, so that each
expected figure can be worked out by hand. The dashboard only reads; how these rows come about
through the use cases is tested elsewhere."""
from __future__ import annotations

import itertools
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from app.disposition.models import ReasonCode
from app.exceptions.models import ReturnException
from app.ledger.models import ReturnUnit
from app.orders.models import CarrierTracking, Order, OrderLine, Rma, RmaLine
from app.refunds.models import RefundTrigger
from app.reports.domain import Filters

# The period of the tests: the first week of November 2026; the one before: 25 to 31 October.
WEEK = Filters(date(2026, 11, 1), date(2026, 11, 7))
_seq = itertools.count(1)


def at(day: int, hour: int = 0, minute: int = 0, month: int = 11) -> datetime:
    """A moment in 2026 (UTC)."""
    return datetime(2026, month, day, hour, minute, tzinfo=timezone.utc)


def reason_codes(session: Session) -> None:
    session.add_all([ReasonCode(code="wrong_size", label="Wrong size", avoidable=True, responsible_party="product_content"),
                     ReasonCode(code="defective", label="Defective", avoidable=True, responsible_party="supplier"),
                     ReasonCode(code="no_longer_needed", label="No longer needed", avoidable=False, responsible_party="customer")])
    session.flush()


def rma(session: Session, world: Any, created: datetime, *, status: str = "closed", warehouse: Any = None,
        lines: tuple[tuple[str, int, str], ...] = (), carrier: tuple[str, str, datetime | None] | None = None) -> Rma:
    """A return authorised at `created`, with (product, quantity, reason) lines and a tracking
    (carrier, status, last event)."""
    n = next(_seq)
    r = Rma(number=f"RMA-T{n}", order_id=world.order.id, merchant_id=world.merchant.id, channel_id=world.channel.id,
            warehouse_id=(warehouse or world.wh).id, customer_id=world.customer.id, status=status, created_at=created)
    session.add(r)
    session.flush()
    for product, qty, reason in lines:
        session.add(RmaLine(rma_id=r.id, product_id=world.products[product].id, quantity=qty, reason_code=reason))
    if carrier:
        session.add(CarrierTracking(tracking_number=f"TRK-T{n}", carrier=carrier[0], rma_id=r.id, status=carrier[1],
                                    last_event_at=carrier[2]))
    session.flush()
    return r


def unit(session: Session, world: Any, *, state: str, received: datetime, product: str = "shirt", paid: str | None = "20.00",
         inspected: datetime | None = None, changed: datetime | None = None, rma_id: int | None = None,
         rma_line_id: int | None = None, by: str = "worker", warehouse: Any = None, grade: str | None = None,
         packaging: str | None = None, serial_status: str = "not_tracked") -> int:
    """One unit row as the ledger's writer leaves it."""
    n = next(_seq)
    w = warehouse or world.wh
    return session.execute(insert(ReturnUnit.__table__).values(
        lpn=f"LPN-T{n:05d}", product_id=world.products[product].id, warehouse_id=w.id, merchant_id=world.merchant.id,
        rma_id=rma_id, rma_line_id=rma_line_id, state=state, serial_status=serial_status,
        paid_price=Decimal(paid) if paid is not None else None, grade=grade, packaging=packaging,
        inspected_at=inspected, received_at=received, received_by_id=world.users[by].id,
        state_changed_at=changed or inspected or received, version=1).returning(ReturnUnit.__table__.c.id)).scalar_one()


def refund(session: Session, world: Any, unit_id: int, *, released: datetime | None, amount: str = "20.00",
           status: str = "released") -> None:
    session.execute(insert(RefundTrigger.__table__).values(
        unit_id=unit_id, warehouse_id=world.wh.id, status=status, currency="USD", paid_amount=Decimal(amount),
        amount=Decimal(amount), hold_reasons=[], inspected_at=released, released_at=released, version=1,
        created_at=released or at(1)))


def exception(session: Session, world: Any, opened: datetime, *, type_: str = "wrong_item", status: str = "open",
              warehouse: Any = None, unit_id: int | None = None) -> None:
    session.execute(insert(ReturnException.__table__).values(
        type=type_, status=status, warehouse_id=(warehouse or world.wh).id, merchant_id=world.merchant.id, quantity=1,
        details={}, opened_at=opened, unit_id=unit_id, version=1))


def order(session: Session, world: Any, placed: datetime, lines: tuple[tuple[str, int], ...]) -> None:
    n = next(_seq)
    o = Order(number=f"SO-T{n}", merchant_id=world.merchant.id, channel_id=world.channel.id,
              customer_id=world.customer.id, placed_at=placed)
    session.add(o)
    session.flush()
    session.add_all([OrderLine(order_id=o.id, product_id=world.products[p].id, quantity=q, unit_price=Decimal("20.00"))
                     for p, q in lines])
    session.flush()
