"""Resolving receiving exceptions: each resolution is one audited transaction (run_idempotent).

- any type: resolve with a resolution code and a reason;
- unidentified parcel: link it to its RMA (the receipt, its units, their refund triggers);
- wrong item: accept it as the SKU that actually arrived (optionally against an RMA line, with a credit);
- serial mismatch: confirm it as fraud (the unit stays in, or goes to, quarantine; its refund is rejected).
"""
from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.catalog.services import location_of_type
from app.auth.roles import Actor
from app.auth.scoping import scope_exceptions, scope_rmas
from app.catalog.models import Product
from app.db import to_money, utcnow
from app.errors import Conflict, NotFound, NotPermitted, StaleVersion, ValidationFailed, require_reason
from app.exceptions.models import EXCEPTION_LABELS, EXCEPTION_TYPES, ReturnException
from app.ledger.idempotency import run_idempotent
from app.ledger.models import ReturnUnit
from app.ledger.services import apply_transition, audit, emit, lock_unit
from app.orders.models import CarrierTracking, Order, OrderLine, Rma, RmaLine, ShippedSerial
from app.receiving.models import Receipt
from app.refunds import domain as rd
from app.refunds.models import RefundTrigger
from app.refunds.services import _move as move_refund  # the refund lifecycle's one writer (see report)
from app.refunds.services import check_four_eyes, open_refund, refund_for_unit, settle_after_inspection

# Resolution codes a supervisor may pick for the plain "resolve" action, per type.
RESOLUTIONS: dict[str, list[tuple[str, str]]] = {
    "unidentified_parcel": [("no_match_kept", "No return found: kept as unidentified stock")],
    "wrong_item": [("returned_to_customer", "Sent back to the customer"), ("written_off", "Written off")],
    "extra_item": [("accepted", "Accepted the extra item"), ("returned_to_customer", "Sent back to the customer")],
    "missing_item": [("customer_kept", "Customer kept it (refund adjusted)"), ("arrived_later", "Arrived later"),
                     ("written_off", "Written off")],
    "serial_mismatch": [("serial_accepted", "Serial accepted (e.g. a warranty swap)")],
    "damaged_in_transit": [("carrier_claim_filed", "Carrier claim filed"), ("written_off", "Written off")],
    "empty_box": [("carrier_claim_filed", "Carrier claim filed"), ("customer_contacted", "Customer contacted")],
    "over_return": [("accepted", "Accepted"), ("returned_to_customer", "Sent back to the customer")],
}
RESOLUTION_LABELS = {code: label for options in RESOLUTIONS.values() for code, label in options} | {
    "linked_to_rma": "Linked to its return",
    "accepted_as_sku": "Accepted as the SKU that arrived",
    "fraud_confirmed": "Confirmed as fraud",
    "serial_matched": "Serial matches the linked return",
}


def _require(actor: Actor, permission: str = "resolve_exceptions") -> None:
    if not actor.can(permission):
        raise NotPermitted("Only a supervisor may resolve exceptions.")


def _resolver_name(session: Session, exc: ReturnException) -> str:
    from app.auth.models import User

    user = session.get(User, exc.resolved_by_id) if exc.resolved_by_id else None
    return user.name if user else "someone else"


def lock_exception(session: Session, actor: Actor, exception_id: int, expected_version: int | None) -> ReturnException:
    """Load an open exception the actor may see, row-locked; refuse one already decided or changed."""
    exc = session.scalars(scope_exceptions(select(ReturnException).where(ReturnException.id == exception_id), actor)
                          .with_for_update().execution_options(populate_existing=True)).first()
    if exc is None:
        raise NotFound("No such exception.")
    if exc.status != "open":
        label = RESOLUTION_LABELS.get(exc.resolution or "", exc.resolution or "resolved")
        raise StaleVersion(f"This {EXCEPTION_LABELS[exc.type].lower()} was already decided by "
                           f"{_resolver_name(session, exc)}: {label.lower()}. Nothing was changed.")
    if expected_version is not None and exc.version != expected_version:
        raise StaleVersion("This exception changed since you opened it. Nothing was changed: look again.")
    return exc


def open_exception(session: Session, actor: Actor, type_: str, *, warehouse_id: int, merchant_id: int | None = None,
                   rma_id: int | None = None, rma_line_id: int | None = None, unit_id: int | None = None,
                   receipt_id: int | None = None, product_id: int | None = None, quantity: int = 1,
                   value: Any = None, details: dict[str, Any] | None = None) -> ReturnException:
    """Open a typed exception in the caller's transaction (outbox event + audit entry)."""
    if type_ not in EXCEPTION_TYPES:
        raise ValidationFailed(f"Unknown exception type '{type_}'.")
    exc = ReturnException(type=type_, warehouse_id=warehouse_id, merchant_id=merchant_id, rma_id=rma_id,
                          rma_line_id=rma_line_id, unit_id=unit_id, receipt_id=receipt_id, product_id=product_id,
                          quantity=quantity, value=value, details=details or {}, opened_by_id=actor.id)
    session.add(exc)
    session.flush()
    emit(session, "exception.opened", "exception", exc.id, {"exception_id": exc.id, "type": type_, "rma_id": rma_id,
                                                            "unit_id": unit_id, "warehouse_id": warehouse_id})
    audit(session, actor, "exception.opened", "exception", exc.id, warehouse_id=warehouse_id,
          details={"type": type_, **(details or {})})
    return exc


def _close(session: Session, actor: Actor, exc: ReturnException, resolution: str, reason: str,
           details: dict[str, Any] | None = None) -> None:
    """Mark an exception resolved, with its outbox event and audit entry."""
    exc.status = "resolved"
    exc.resolution = resolution
    exc.resolution_reason = reason
    exc.resolved_at = utcnow()
    exc.resolved_by_id = actor.id
    if details:
        exc.details = {**(exc.details or {}), "resolution": details}
    session.flush()
    emit(session, "exception.resolved", "exception", exc.id,
         {"exception_id": exc.id, "type": exc.type, "resolution": resolution, "unit_id": exc.unit_id,
          "rma_id": exc.rma_id, "warehouse_id": exc.warehouse_id})
    audit(session, actor, "exception.resolved", "exception", exc.id, warehouse_id=exc.warehouse_id, reason=reason,
          details={"type": exc.type, "resolution": resolution, **(details or {})})


def _result(exc: ReturnException, **extra: Any) -> dict[str, Any]:
    return {"exception_id": exc.id, "type": exc.type, "status": exc.status, "resolution": exc.resolution,
            "version": exc.version, **extra}


def resolve_exception(session: Session, actor: Actor, *, exception_id: int, resolution: str, reason: str | None,
                      idempotency_key: str | None, expected_version: int | None = None) -> dict[str, Any]:
    """Use case: close an exception with one of its type's resolution codes and a reason."""
    _require(actor)
    reason = require_reason(reason)
    resolution = (resolution or "").strip()

    def work() -> dict[str, Any]:
        exc = lock_exception(session, actor, exception_id, expected_version)
        allowed = {code for code, _ in RESOLUTIONS.get(exc.type, [])}
        if resolution not in allowed:
            raise ValidationFailed("Pick how this exception was resolved.")
        _close(session, actor, exc, resolution, reason)
        return _result(exc)

    return run_idempotent(session, actor, idempotency_key, "resolve_exception",
                          {"exception_id": exception_id, "resolution": resolution, "reason": reason,
                           "v": expected_version}, work)


# --------------------------------------------------------------------------- unidentified parcel -> RMA


def find_rma(session: Session, actor: Actor, code: str) -> Rma | None:
    """An RMA the actor may see, by its number, a carrier tracking number or its order number."""
    up = code.strip().upper()
    if not up or len(up) > 64:
        return None
    for stmt in (select(Rma).where(Rma.number == up),
                 select(Rma).join(CarrierTracking, CarrierTracking.rma_id == Rma.id).where(CarrierTracking.tracking_number == up),
                 select(Rma).join(Order, Order.id == Rma.order_id).where(Order.number == up).order_by(Rma.id.desc())):
        rma = session.scalars(scope_rmas(stmt, actor).limit(1)).first()
        if rma is not None:
            return rma
    return None


def _place_on_rma(session: Session, rma: Rma, unit: ReturnUnit) -> tuple[RmaLine | None, OrderLine | None, str | None]:
    """Which RMA line the unit fills, its order line, or the exception type it raises instead
    (the receiving rules: not bought -> wrong item; bought but not expected -> extra / over-return)."""
    lines = session.scalars(select(RmaLine).where(RmaLine.rma_id == rma.id, RmaLine.product_id == unit.product_id)
                            .order_by(RmaLine.id)).all()
    received = dict(session.execute(
        select(ReturnUnit.rma_line_id, func.count()).where(ReturnUnit.rma_id == rma.id, ReturnUnit.product_id == unit.product_id,
                                                           ReturnUnit.id != unit.id)
        .group_by(ReturnUnit.rma_line_id)).all())
    for line in lines:
        if received.get(line.id, 0) < line.quantity:
            return line, line.order_line, None
    order_line = None
    if rma.order_id is not None:
        order_line = session.scalars(select(OrderLine).where(OrderLine.order_id == rma.order_id,
                                                             OrderLine.product_id == unit.product_id)).first()
    if order_line is None:
        return None, None, "wrong_item"
    already = sum(received.values())
    return None, order_line, ("extra_item" if already < order_line.quantity else "over_return")


def _settle_late(session: Session, actor: Actor, unit: ReturnUnit, refund: RefundTrigger, why: str) -> None:
    """A refund opened after the unit's disposition waits for a supervisor (another one: four-eyes)."""
    if unit.state == "received" or unit.inspected_at is None:
        return  # the normal disposition will settle it
    settle_after_inspection(session, actor, refund, amount=refund.paid_amount, refund_action="hold", hold=[why],
                            inspected_by_id=unit.inspected_by_id, reason=why)


def link_parcel_to_rma(session: Session, actor: Actor, *, exception_id: int, rma_code: str | None, reason: str | None,
                       idempotency_key: str | None, expected_version: int | None = None) -> dict[str, Any]:
    """Use case: an unidentified parcel turns out to be a known return.

    One transaction: the receipt and its units get the RMA (and its merchant); each unit is placed
    on an RMA line (or raises the wrong/extra/over-return exception it would have raised at the dock);
    serials are re-checked against the order's shipment; each unit whose paid price is now known gets
    its refund trigger. The exception is resolved and audited.
    """
    _require(actor)
    reason = require_reason(reason)
    code = (rma_code or "").strip()
    if not code:
        raise ValidationFailed("Enter the RMA number, tracking number or order number of the return.")

    def work() -> dict[str, Any]:
        exc = lock_exception(session, actor, exception_id, expected_version)
        if exc.type != "unidentified_parcel" or exc.receipt_id is None:
            raise ValidationFailed("Only an unidentified parcel can be linked to a return.")
        receipt = session.scalars(select(Receipt).where(Receipt.id == exc.receipt_id).with_for_update()
                                  .execution_options(populate_existing=True)).one()
        if receipt.rma_id is not None:
            raise Conflict("This parcel is already linked to a return.")
        rma = find_rma(session, actor, code)
        if rma is None:
            raise ValidationFailed(f"No return matches '{code}'. Check the number and try again.")
        # the return's row, read afresh: scans into its other parcels fill the same lines (receiving.lock_parcel)
        rma = session.scalars(select(Rma).where(Rma.id == rma.id).with_for_update()
                              .execution_options(populate_existing=True)).one()
        if rma.status == "cancelled":
            raise Conflict(f"Return {rma.number} was cancelled: it cannot take a parcel.")
        currency = rma.order.currency if rma.order is not None else "USD"
        receipt.rma_id = rma.id
        unit_ids = session.scalars(select(ReturnUnit.id).where(ReturnUnit.receipt_id == receipt.id).order_by(ReturnUnit.id)).all()
        linked, raised, refunds = [], [], []
        for unit_id in unit_ids:  # locked in id order: no deadlock with another linker
            unit = lock_unit(session, unit_id)
            line, order_line, exc_type = _place_on_rma(session, rma, unit)
            unit.rma_id, unit.merchant_id = rma.id, rma.merchant_id
            unit.rma_line_id = line.id if line is not None else None
            if order_line is not None and unit.paid_price is None:
                unit.paid_price = order_line.unit_price
            product = session.get(Product, unit.product_id)
            assert product is not None
            if product.serial_tracked and unit.serial:
                shipped = order_line is not None and session.scalars(
                    select(ShippedSerial.id).where(ShippedSerial.order_line_id == order_line.id,
                                                   ShippedSerial.serial == unit.serial)).first() is not None
                unit.serial_status = "match" if shipped else "mismatch"
                if shipped:
                    for open_exc in session.scalars(select(ReturnException).where(
                            ReturnException.unit_id == unit.id, ReturnException.type == "serial_mismatch",
                            ReturnException.status == "open").with_for_update()):
                        _close(session, actor, open_exc, "serial_matched",
                               f"serial {unit.serial} was shipped on {rma.number}'s order")
            session.flush()
            if exc_type is not None:
                raised.append(exc_type)
                open_exception(session, actor, exc_type, warehouse_id=unit.warehouse_id, merchant_id=rma.merchant_id,
                               rma_id=rma.id, unit_id=unit.id, receipt_id=receipt.id, product_id=unit.product_id,
                               value=product.unit_value, details={"sku": product.sku, "linked_from_exception": exc.id})
            if order_line is not None and refund_for_unit(session, unit.id) is None:
                refund = open_refund(session, actor, unit, paid_amount=order_line.unit_price, currency=currency)
                _settle_late(session, actor, unit, refund, "linked to its return after its disposition")
                refunds.append(refund.id)
            linked.append(unit.lpn)
            audit(session, actor, "unit.linked_to_rma", "unit", unit.id, warehouse_id=unit.warehouse_id, reason=reason,
                  details={"rma": rma.number, "rma_line_id": unit.rma_line_id, "exception_id": exc.id})
        missing: list[dict[str, Any]] = []
        if rma.status in ("authorized", "in_transit"):
            if receipt.status == "open":
                rma.status = "receiving"
                emit(session, "rma.receiving", "rma", rma.id, {"rma_id": rma.id, "number": rma.number, "receipt_id": receipt.id})
            else:
                from app.receiving.services import open_missing_items

                missing = open_missing_items(session, actor, rma_id=rma.id, merchant_id=rma.merchant_id,
                                             warehouse_id=receipt.warehouse_id, receipt_id=receipt.id)
                rma.status, rma.closed_at = "closed", utcnow()
                emit(session, "rma.closed", "rma", rma.id, {"rma_id": rma.id, "number": rma.number, "missing": missing})
        exc.rma_id, exc.merchant_id = rma.id, rma.merchant_id
        audit(session, actor, "receipt.linked_to_rma", "receipt", receipt.id, warehouse_id=receipt.warehouse_id,
              reason=reason, details={"rma": rma.number, "units": linked})
        _close(session, actor, exc, "linked_to_rma", reason,
               {"rma": rma.number, "units": linked, "exceptions_raised": raised, "refunds_opened": len(refunds)})
        return _result(exc, rma_id=rma.id, rma_number=rma.number, units=linked, exceptions_raised=raised,
                       refunds_opened=refunds, missing=missing)

    return run_idempotent(session, actor, idempotency_key, "link_parcel_to_rma",
                          {"exception_id": exception_id, "rma_code": code.upper(), "reason": reason,
                           "v": expected_version}, work)


# --------------------------------------------------------------------------- wrong item


def _parse_credit(raw: Decimal | str | None) -> Decimal | None:
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    try:
        value = to_money(str(raw).strip().lstrip("$"))
    except ArithmeticError:
        raise ValidationFailed("The credit must be an amount like 19.90.") from None
    if not value.is_finite() or value < 0 or value > Decimal("1000000"):
        raise ValidationFailed("The credit must be an amount between 0 and 1,000,000.")
    return value


def accept_wrong_item(session: Session, actor: Actor, *, exception_id: int, reason: str | None,
                      idempotency_key: str | None, credit_amount: Decimal | str | None = None,
                      rma_line_id: int | None = None, expected_version: int | None = None) -> dict[str, Any]:
    """Use case: accept a wrong item as the (different) SKU that actually arrived.

    The unit keeps the SKU it was received as (its stock and ledger stay true). Optionally it is
    accepted in place of one of the return's lines, and a credit amount opens its refund trigger
    (a wrong item has no paid price of its own).
    """
    _require(actor)
    reason = require_reason(reason)
    credit = _parse_credit(credit_amount)

    def work() -> dict[str, Any]:
        exc = lock_exception(session, actor, exception_id, expected_version)
        if exc.type != "wrong_item" or exc.unit_id is None:
            raise ValidationFailed("Only a wrong item with its unit can be accepted as another SKU.")
        unit = lock_unit(session, exc.unit_id)
        product = session.get(Product, unit.product_id)
        assert product is not None
        expected_skus = []
        if rma_line_id is not None:
            line = session.get(RmaLine, rma_line_id)
            if line is None or line.rma_id != unit.rma_id:
                raise ValidationFailed("That line is not on this unit's return.")
            if unit.rma_line_id is None:
                unit.rma_line_id = line.id
            expected_skus.append(line.product.sku)
        refund_id = None
        if credit is not None and credit > 0:
            if refund_for_unit(session, unit.id) is not None:
                raise Conflict(f"Unit {unit.lpn} already has a refund trigger: decide it in the refund queue.")
            refund = open_refund(session, actor, unit, paid_amount=credit)
            _settle_late(session, actor, unit, refund, "wrong item accepted after its disposition")
            refund_id = refund.id
        details = {"sku": product.sku, "instead_of": expected_skus, "credit": str(credit) if credit else None}
        audit(session, actor, "unit.accepted_as_sku", "unit", unit.id, warehouse_id=unit.warehouse_id, reason=reason,
              details=details)
        _close(session, actor, exc, "accepted_as_sku", reason, details)
        return _result(exc, unit_id=unit.id, sku=product.sku, refund_id=refund_id)

    return run_idempotent(session, actor, idempotency_key, "accept_wrong_item",
                          {"exception_id": exception_id, "reason": reason, "credit": str(credit),
                           "line": rma_line_id, "v": expected_version}, work)


# --------------------------------------------------------------------------- serial mismatch -> fraud


def confirm_serial_fraud(session: Session, actor: Actor, *, exception_id: int, reason: str | None,
                         idempotency_key: str | None, expected_version: int | None = None) -> dict[str, Any]:
    """Use case: a serial mismatch is confirmed as fraud.

    One transaction: the unit stays in quarantine (or is put there, when it was not yet disposed,
    restocked or in refurbishment), its refund is rejected (four-eyes applies: the unit's inspector
    may not decide it), and the exception is resolved. A refund already paid cannot be rejected:
    the resolution records that it must be recovered.
    """
    _require(actor)
    if not actor.can("approve_refunds"):
        raise NotPermitted("Only a supervisor may reject refunds.")
    reason = require_reason(reason)

    def work() -> dict[str, Any]:
        exc = lock_exception(session, actor, exception_id, expected_version)
        if exc.type != "serial_mismatch" or exc.unit_id is None:
            raise ValidationFailed("Only a serial mismatch can be confirmed as fraud.")
        unit = lock_unit(session, exc.unit_id)
        moved = False
        if unit.state in ("received", "available", "refurbish"):
            apply_transition(session, actor, unit, "quarantine", reason=f"fraud confirmed: {reason}",
                             to_location=location_of_type(session, unit.warehouse_id, "quarantine"), action="unit.fraud_hold",
                             details={"exception_id": exc.id})
            unit.disposition = "quarantine"
            moved = True
        refund = refund_for_unit(session, unit.id, lock=True)
        refund_status = refund.status if refund else None
        note = None
        if refund is not None and refund.status in (rd.AWAITING_INSPECTION, rd.PENDING_APPROVAL):
            check_four_eyes(session, actor, refund)
            refund.decided_by_id, refund.decided_at, refund.decision_reason = actor.id, utcnow(), reason
            refund.amount = Decimal("0.00")
            refund.hold_reasons = [*(refund.hold_reasons or []), "fraud confirmed"]
            move_refund(session, actor, refund, rd.REJECTED, reason=f"fraud confirmed: {reason}",
                        details={"fraud": True, "exception_id": exc.id})
            refund_status = refund.status
        elif refund is not None and refund.status in (rd.APPROVED, rd.RELEASED, rd.ACKNOWLEDGED):
            note = f"refund already {rd.STATUS_LABELS[refund.status]}: recover it from the customer"
        _close(session, actor, exc, "fraud_confirmed", reason,
               {"unit": unit.lpn, "unit_state": unit.state, "moved_to_quarantine": moved, "refund": refund_status,
                "note": note})
        return _result(exc, unit_id=unit.id, unit_state=unit.state, refund_status=refund_status, note=note)

    return run_idempotent(session, actor, idempotency_key, "confirm_serial_fraud",
                          {"exception_id": exception_id, "reason": reason, "v": expected_version}, work)
