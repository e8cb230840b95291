"""Linking an unidentified parcel to its return, once a supervisor knows which return it is.

A blind parcel (no label anybody recognised) raised an `unidentified_parcel` exception at the
dock. When the return turns up (a packing slip, a tracking number on the box), the parcel and its
units join it: each unit is placed on the return as the handheld would have placed it
(app.receiving.domain.place_unit), serials are checked against what the order shipped, units now
known to have been paid for get their refund triggers, and the exception is resolved.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.auth.roles import Actor
from app.catalog.models import Product
from app.errors import Conflict, NotPermitted, ValidationFailed, require_reason
from app.exceptions import writer as exception_writer
from app.exceptions.models import ReturnException
from app.exceptions.services import Resolved, lock_exception, settle_late
from app.ledger.idempotency import run_idempotent
from app.ledger.models import ReturnUnit
from app.ledger.writer import audit_row, event_row
from app.orders.models import Order, OrderLine, Rma, RmaLine, ShippedSerial
from app.orders.queries import find_return
from app.receiving.domain import LineCount, place_unit
from app.receiving.models import Parcel
from app.receiving.services import Missing, close_return
from app.refunds.models import RefundTrigger
from app.refunds.writer import open_trigger
from app.rows import Row, allocate_ids, expire, update_row, write
from app.words import N_

LATE = "linked to its return after its disposition"


@dataclass(frozen=True)
class ParcelLinked(Resolved):
    """link_parcel_to_rma's answer: the return, the units linked (LPNs), the exceptions raised on
    them, the refund triggers opened, and what the return still lacks when it closed."""

    rma_id: int
    rma_number: str
    units: tuple[str, ...]
    exceptions_raised: tuple[str, ...]
    refunds_opened: tuple[int, ...]
    missing: tuple[Missing, ...]


def link_parcel_to_rma(session: Session, actor: Actor, *, exception_id: int, rma_code: str | None, reason: str | None,
                       idempotency_key: str | None, expected_version: int | None = None) -> ParcelLinked:
    """Use case: an unidentified parcel turns out to be a known return.

    One transaction. Locks the exception, the parcel, then the return (the order documented in
    docs/schema.md: nobody holding a return waits for a blind parcel's row), then the parcel's
    units in id order. The parcel and its units get the return (and its merchant); each unit is
    placed on a line of the return or raises the wrong/extra/over-return exception it would have
    raised at the dock; serials are re-checked against the order's shipment (a match resolves the
    unit's serial mismatch); each unit whose paid price is now known gets its refund trigger, held
    for approval when the unit was already disposed. A return not yet being received starts being
    received, or, when the parcel was already closed, closes with what is still missing. The
    exception is resolved and audited.
    """
    if not actor.can("resolve_exceptions"):
        raise NotPermitted(N_("Only a supervisor may resolve exceptions."))
    reason = require_reason(reason)
    code = (rma_code or "").strip()
    if not code:
        raise ValidationFailed(N_("Enter the RMA number, tracking number or order number of the return."))

    def work() -> ParcelLinked:
        exc = lock_exception(session, actor, exception_id, expected_version)
        if exc.type != "unidentified_parcel" or exc.parcel_id is None:
            raise ValidationFailed(N_("Only an unidentified parcel can be linked to a return."))
        parcels = Parcel.__table__
        parcel = session.execute(select(parcels.c.id, parcels.c.rma_id, parcels.c.status, parcels.c.warehouse_id)
                                 .where(parcels.c.id == exc.parcel_id).with_for_update(of=parcels)).one()
        if parcel.rma_id is not None:
            raise Conflict(N_("This parcel is already linked to a return."))
        found = find_return(session, actor, code)
        if found is None:
            raise ValidationFailed(N_("No return matches '%(code)s'. Check the number and try again."), code=code)
        # the return's row, locked and read afresh: scans into its other parcels fill the same lines
        rmas, orders = Rma.__table__, Order.__table__
        rma = session.execute(select(rmas.c.id, rmas.c.number, rmas.c.status, rmas.c.merchant_id, rmas.c.order_id,
                                     orders.c.currency)
                              .select_from(rmas.outerjoin(orders, orders.c.id == rmas.c.order_id))
                              .where(rmas.c.id == found[0]).with_for_update(of=rmas)).one()
        if rma.status == "cancelled":
            raise Conflict(N_("Return %(number)s was cancelled: it cannot take a parcel."), number=rma.number)
        # the units' open serial mismatches before the units, as confirm_serial_fraud takes them
        mismatches = _open_serial_mismatches(session, parcel.id)
        units_table = ReturnUnit.__table__
        units = session.execute(select(units_table).where(units_table.c.parcel_id == parcel.id)
                                .order_by(units_table.c.id).with_for_update(of=units_table)).all()  # id order: no deadlock
        plan = _place(session, rma, units)

        rows: list[Row] = [update_row(Parcel, {"id": parcel.id}, {"rma_id": rma.id})]
        raised = [(unit, placed) for unit, placed in zip(units, plan) if placed.exception is not None]
        paid = [(unit, placed) for unit, placed in zip(units, plan) if placed.refund]
        exception_ids = dict(zip((unit.id for unit, _ in raised), allocate_ids(session, ReturnException, len(raised))))
        refund_ids = dict(zip((unit.id for unit, _ in paid), allocate_ids(session, RefundTrigger, len(paid))))
        matched = {unit.id: mismatches.get(unit.id, []) for unit, placed in zip(units, plan) if placed.serial_shipped}
        asked = {r.id: r for r in session.execute(select(RmaLine.id, RmaLine.resolution, RmaLine.exchange_sku)
                                                  .where(RmaLine.rma_id == rma.id))}
        for unit, placed in zip(units, plan):
            rows.append(update_row(ReturnUnit, {"id": unit.id}, placed.values, bump=("version",)))
            for open_exc in matched.get(unit.id, []):
                rows += exception_writer.resolve_exception(actor, open_exc, "serial_matched",
                                                           f"serial {unit.serial} was shipped on {rma.number}'s order")
            if unit.id in exception_ids:
                rows += exception_writer.open_exception(
                    actor, exception_ids[unit.id], placed.exception, warehouse_id=unit.warehouse_id,
                    merchant_id=rma.merchant_id, rma_id=rma.id, unit_id=unit.id, parcel_id=parcel.id,
                    product_id=unit.product_id, value=placed.product.unit_value,
                    details={"sku": placed.product.sku, "linked_from_exception": exc.id})
            if unit.id in refund_ids:
                line = asked.get(placed.values["rma_line_id"])
                rows += open_trigger(actor, refund_ids[unit.id], unit_id=unit.id, rma_id=rma.id,
                                     warehouse_id=unit.warehouse_id, paid_amount=placed.paid_price,
                                     currency=rma.currency or "USD", resolution=line.resolution if line else None,
                                     exchange_sku=line.exchange_sku if line else None)
            rows.append(audit_row(actor, "unit.linked_to_rma", "unit", unit.id, warehouse_id=unit.warehouse_id,
                                  reason=reason, details={"rma": rma.number, "rma_line_id": placed.values["rma_line_id"],
                                                          "exception_id": exc.id}))
        write(session, rows)

        # The triggers and the units' lines are written: settle the late triggers, count what is missing.
        rows = []
        for unit in units:
            if unit.id in refund_ids:
                rows += settle_late(session, actor, unit, [refund_ids[unit.id]], LATE)
        missing: tuple[Missing, ...] = ()
        if rma.status in ("authorized", "in_transit"):
            if parcel.status == "open":
                rows += [update_row(Rma, {"id": rma.id}, {"status": "receiving"}),
                         # the published event keeps its payload's key (docs/integration-views.md)
                         event_row("rma.receiving", "rma", rma.id, {"rma_id": rma.id, "number": rma.number,
                                                                    "receipt_id": parcel.id})]
            else:
                missing, closing = close_return(session, actor, rma_id=rma.id, number=rma.number,
                                                merchant_id=rma.merchant_id, warehouse_id=parcel.warehouse_id,
                                                parcel_id=parcel.id)
                rows += closing
        linked = [unit.lpn for unit in units]
        raised_types = [placed.exception for placed in plan if placed.exception is not None]
        rows += [audit_row(actor, "parcel.linked_to_rma", "parcel", parcel.id, warehouse_id=parcel.warehouse_id,
                           reason=reason, details={"rma": rma.number, "units": linked}),
                 *exception_writer.resolve_exception(
                     actor, exc, "linked_to_rma", reason,
                     {"rma": rma.number, "units": linked, "exceptions_raised": raised_types,
                      "refunds_opened": len(refund_ids)},
                     values={"rma_id": rma.id, "merchant_id": rma.merchant_id})]
        write(session, rows)
        expire(session, (ReturnException, exc.id), (Parcel, parcel.id), (Rma, rma.id),
               *((ReturnUnit, unit.id) for unit in units),
               *((ReturnException, e.id) for found_excs in matched.values() for e in found_excs))
        return ParcelLinked.of(exc, "linked_to_rma", rma_id=rma.id, rma_number=rma.number, units=tuple(linked),
                               exceptions_raised=tuple(raised_types), refunds_opened=tuple(refund_ids.values()),
                               missing=missing)

    return run_idempotent(session, actor, idempotency_key, "link_parcel_to_rma",
                          {"exception_id": exception_id, "rma_code": code.upper(), "reason": reason,
                           "v": expected_version}, work, result_type=ParcelLinked)


@dataclass(frozen=True)
class _Placed:
    """What linking does to one unit: its new columns, the exception it raises, whether it gets a
    refund trigger (and for how much), whether its serial was shipped on the return's order."""

    product: Any
    values: dict[str, Any]
    exception: str | None
    paid_price: Any
    refund: bool
    serial_shipped: bool


def _place(session: Session, rma: Any, units: list[Any]) -> list[_Placed]:
    """Place the parcel's units (locked rows, in id order) on the return, one after the other as if
    scanned in that order: each fills the first line of its product still short, or raises what
    place_unit says. Reads the return's lines with how many units fill each, what its order sold,
    the units of each product already on the return, the products, the serials shipped, and which
    units already have a refund trigger."""
    if not units:
        return []
    product_ids = {unit.product_id for unit in units}
    unit_ids = [unit.id for unit in units]
    got = select(func.count()).where(ReturnUnit.rma_line_id == RmaLine.id).correlate(RmaLine).scalar_subquery()
    lines = session.execute(select(RmaLine.id, RmaLine.product_id, RmaLine.quantity, RmaLine.order_line_id,
                                   OrderLine.unit_price, got.label("got"))
                            .outerjoin(OrderLine, OrderLine.id == RmaLine.order_line_id)
                            .where(RmaLine.rma_id == rma.id, RmaLine.product_id.in_(product_ids))
                            .order_by(RmaLine.id)).all()
    bought: dict[int, Any] = {}
    if rma.order_id is not None:
        for line in session.execute(select(OrderLine.id, OrderLine.product_id, OrderLine.quantity, OrderLine.unit_price)
                                    .where(OrderLine.order_id == rma.order_id, OrderLine.product_id.in_(product_ids))
                                    .order_by(OrderLine.id)):
            bought.setdefault(line.product_id, line)
    already = Counter(dict(session.execute(select(ReturnUnit.product_id, func.count())
                                           .where(ReturnUnit.rma_id == rma.id, ReturnUnit.product_id.in_(product_ids))
                                           .group_by(ReturnUnit.product_id)).all()))
    products = {p.id: p for p in session.execute(select(Product.id, Product.sku, Product.serial_tracked, Product.unit_value)
                                                 .where(Product.id.in_(product_ids)))}
    serials = {unit.serial for unit in units if unit.serial}
    shipped = {(row.order_line_id, row.serial) for row in session.execute(
        select(ShippedSerial.order_line_id, ShippedSerial.serial).where(ShippedSerial.serial.in_(serials)))} if serials else set()
    with_refund = set(session.scalars(select(RefundTrigger.unit_id).where(RefundTrigger.unit_id.in_(unit_ids))))

    filled = Counter({line.id: line.got for line in lines})
    plan = []
    for unit in units:
        product = products[unit.product_id]
        own = [line for line in lines if line.product_id == unit.product_id]
        sold = bought.get(unit.product_id)
        placement = place_unit(on_return=True, lines=[LineCount(line.id, line.quantity, filled[line.id]) for line in own],
                               bought=sold.quantity if sold is not None else None, already=already[unit.product_id])
        line = next((line for line in own if line.id == placement.line_id), None)
        if line is not None:
            filled[line.id] += 1
            order_line_id, price = line.order_line_id, line.unit_price
        else:
            order_line_id, price = (sold.id, sold.unit_price) if sold is not None else (None, None)
        already[unit.product_id] += 1
        values: dict[str, Any] = {"rma_id": rma.id, "merchant_id": rma.merchant_id, "rma_line_id": placement.line_id}
        if order_line_id is not None and unit.paid_price is None:
            values["paid_price"] = price
        serial_shipped = False
        if product.serial_tracked and unit.serial:
            serial_shipped = order_line_id is not None and (order_line_id, unit.serial) in shipped
            values["serial_status"] = "match" if serial_shipped else "mismatch"
        plan.append(_Placed(product, values, placement.exception, price,
                            refund=order_line_id is not None and unit.id not in with_refund,
                            serial_shipped=serial_shipped))
    return plan


def _open_serial_mismatches(session: Session, parcel_id: int) -> dict[int, list[Any]]:
    """The open serial mismatches of the parcel's units, locked, as plain rows, by unit."""
    table, units = ReturnException.__table__, ReturnUnit.__table__
    found: dict[int, list[Any]] = {}
    in_parcel = select(units.c.id).where(units.c.parcel_id == parcel_id)
    for exc in session.execute(select(table).where(table.c.unit_id.in_(in_parcel), table.c.type == "serial_mismatch",
                                                   table.c.status == "open")
                               .order_by(table.c.id).with_for_update(of=table)):
        found.setdefault(exc.unit_id, []).append(exc)
    return found
