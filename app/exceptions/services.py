"""Resolving receiving exceptions: each resolution is one audited transaction (run_idempotent).

- any type: resolve with a resolution code and a reason;
- wrong item: accept it as the SKU that actually arrived (optionally against an RMA line, with a credit);
- serial mismatch: confirm it as fraud (the unit stays in, or goes to, quarantine; its refund is rejected).

An unidentified parcel is linked to its return by receiving (app.receiving.linking), which locks
the exception here (lock_exception). Each use case reads what it changes as plain rows, locked,
and writes only through the writers (app.exceptions.writer, app.ledger.writer,
app.refunds.writer), all its rows together (app.rows.write).
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Self

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.roles import PERMISSIONS, Actor
from app.exceptions.queries import scope_exceptions
from app.catalog.models import Product
from app.catalog.services import location_of_type
from app.db import to_money, utcnow
from app.errors import Conflict, NotFound, NotPermitted, StaleVersion, ValidationFailed, require_reason
from app.exceptions import writer
from app.exceptions.models import EXCEPTION_LABELS, ReturnException
from app.ledger.idempotency import Result, run_idempotent
from app.ledger.models import ReturnUnit
from app.ledger.services import lock_unit
from app.ledger.writer import audit_row, move_unit
from app.orders.models import RmaLine
from app.refunds import domain as refunds_domain
from app.refunds.models import RefundTrigger
from app.refunds.services import check_four_eyes
from app.refunds.writer import open_trigger, settle_refund, step_refund
from app.rows import Row, allocate_ids, expire, update_row, write
from app.words import N_

# Resolution codes a supervisor may pick for the plain "resolve" action, per type.
RESOLUTIONS: dict[str, list[tuple[str, str]]] = {
    "unidentified_parcel": [("no_match_kept", N_("No return found: kept as unidentified stock"))],
    "wrong_item": [("returned_to_customer", N_("Sent back to the customer")), ("written_off", N_("Written off"))],
    "extra_item": [("accepted", N_("Accepted the extra item")), ("returned_to_customer", N_("Sent back to the customer"))],
    "missing_item": [("customer_kept", N_("Customer kept it (refund adjusted)")), ("arrived_later", N_("Arrived later")),
                     ("written_off", N_("Written off"))],
    "serial_mismatch": [("serial_accepted", N_("Serial accepted (e.g. a warranty swap)"))],
    "damaged_in_transit": [("carrier_claim_filed", N_("Carrier claim filed")), ("written_off", N_("Written off"))],
    "empty_box": [("carrier_claim_filed", N_("Carrier claim filed")), ("customer_contacted", N_("Customer contacted"))],
    "over_return": [("accepted", N_("Accepted")), ("returned_to_customer", N_("Sent back to the customer"))],
}


RESOLUTION_LABELS = {code: label for options in RESOLUTIONS.values() for code, label in options} | {
    "linked_to_rma": N_("Linked to its return"),
    "accepted_as_sku": N_("Accepted as the SKU that arrived"),
    "fraud_confirmed": N_("Confirmed as fraud"),
    "serial_matched": N_("Serial matches the linked return"),
}


def _require(actor: Actor) -> None:
    if not actor.can("resolve_exceptions"):
        raise NotPermitted(N_("Only a supervisor may resolve exceptions."))


def _resolver_name(session: Session, user_id: int | None) -> str:
    from app.auth.models import User

    name = session.scalar(select(User.name).where(User.id == user_id)) if user_id else None
    return name or "someone else"


def lock_exception(session: Session, actor: Actor, exception_id: int, expected_version: int | None) -> Any:
    """An open exception the actor may see, as a plain row (every column) locked FOR UPDATE; refuse
    one that does not exist for the actor, one already decided (saying by whom and how) and one that
    changed since the version the actor saw."""
    table = ReturnException.__table__
    exc = session.execute(scope_exceptions(select(table).where(table.c.id == exception_id), actor)
                          .with_for_update(of=table)).first()
    if exc is None:
        raise NotFound(N_("No such exception."))
    if exc.status != "open":
        label = RESOLUTION_LABELS.get(exc.resolution or "", exc.resolution or "resolved")
        raise StaleVersion(N_("This %(type)s was already decided by %(resolver_name)s: %(label)s. Nothing was changed."),
                           type=EXCEPTION_LABELS[exc.type].lower(), resolver_name=_resolver_name(session, exc.resolved_by_id),
                           label=label.lower())
    if expected_version is not None and exc.version != expected_version:
        raise StaleVersion(N_("This exception changed since you opened it. Nothing was changed: look again."))
    return exc


@dataclass(frozen=True)
class Resolved(Result):
    """What a use case that resolved an exception answers: the exception as it is now."""

    exception_id: int
    type: str
    status: str
    resolution: str
    version: int

    @classmethod
    def of(cls, exc: Any, resolution: str, **extra: Any) -> Self:
        """The answer of a use case that resolved the locked exception `exc` (the writer stepped its
        version), with what its subclass adds (`extra`)."""
        return cls(exception_id=exc.id, type=exc.type, status="resolved", resolution=resolution,
                   version=exc.version + 1, **extra)


@dataclass(frozen=True)
class AcceptedAsSku(Resolved):
    """accept_wrong_item's answer: the unit, the SKU it was accepted as, its refund trigger if one was opened."""

    unit_id: int
    sku: str
    refund_id: int | None


@dataclass(frozen=True)
class FraudConfirmed(Resolved):
    """confirm_serial_fraud's answer: the unit's state and its refund's status now, and a note when
    the refund was already paid."""

    unit_id: int
    unit_state: str
    refund_status: str | None
    note: str | None


def resolve_exception(session: Session, actor: Actor, *, exception_id: int, resolution: str, reason: str | None,
                      idempotency_key: str | None, expected_version: int | None = None) -> Resolved:
    """Use case: close an exception with one of its type's resolution codes and a reason."""
    _require(actor)
    reason = require_reason(reason)
    resolution = (resolution or "").strip()

    def work() -> Resolved:
        exc = lock_exception(session, actor, exception_id, expected_version)
        allowed = {code for code, _ in RESOLUTIONS.get(exc.type, [])}
        if resolution not in allowed:
            raise ValidationFailed(N_("Pick how this exception was resolved."))
        write(session, writer.resolve_exception(actor, exc, resolution, reason))
        expire(session, (ReturnException, exc.id))
        return Resolved.of(exc, resolution)

    return run_idempotent(session, actor, idempotency_key, "resolve_exception",
                          {"exception_id": exception_id, "resolution": resolution, "reason": reason,
                           "v": expected_version}, work, result_type=Resolved)


def settle_late(session: Session, actor: Actor, unit: Any, refund_ids: list[int], why: str) -> list[Row]:
    """The rows that settle refund triggers just written for a unit already disposed (`unit`: its
    locked row): held for a supervisor's approval (another one than its inspector: four-eyes).
    Nothing for a unit still waiting for its disposition, which settles them. The triggers must
    have been written (a step updates the row): they are read back here."""
    if unit.state == "received" or unit.inspected_at is None or not refund_ids:
        return []
    triggers = RefundTrigger.__table__
    rows: list[Row] = []
    for refund in session.execute(select(triggers).where(triggers.c.id.in_(refund_ids)).order_by(triggers.c.id)):
        rows += settle_refund(actor, refund, amount=refund.paid_amount, refund_action="hold", hold=[why],
                              unit_inspected_at=unit.inspected_at, inspected_by_id=unit.inspected_by_id, reason=why)[1]
    return rows


# --------------------------------------------------------------------------- wrong item


def _parse_credit(raw: Decimal | str | None) -> Decimal | None:
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    try:
        value = to_money(str(raw).strip().lstrip("$"))
    except ArithmeticError:
        raise ValidationFailed(N_("The credit must be an amount like 19.90.")) from None
    if not value.is_finite() or value < 0 or value > Decimal("1000000"):
        raise ValidationFailed(N_("The credit must be an amount between 0 and 1,000,000."))
    return value


def accept_wrong_item(session: Session, actor: Actor, *, exception_id: int, reason: str | None,
                      idempotency_key: str | None, credit_amount: Decimal | str | None = None,
                      rma_line_id: int | None = None, expected_version: int | None = None) -> AcceptedAsSku:
    """Use case: accept a wrong item as the (different) SKU that actually arrived.

    The unit keeps the SKU it was received as (its stock and ledger stay true). Optionally it is
    accepted in place of one of the return's lines (it then fills that line), and a credit amount
    opens its refund trigger (a wrong item has no paid price of its own), held for approval when
    the unit was already disposed. Locks the exception, then the unit.
    """
    _require(actor)
    reason = require_reason(reason)
    credit = _parse_credit(credit_amount)

    def work() -> AcceptedAsSku:
        exc = lock_exception(session, actor, exception_id, expected_version)
        if exc.type != "wrong_item" or exc.unit_id is None:
            raise ValidationFailed(N_("Only a wrong item with its unit can be accepted as another SKU."))
        unit = lock_unit(session, exc.unit_id)
        sku = session.scalar(select(Product.sku).where(Product.id == unit.product_id))
        rows: list[Row] = []
        expected_skus = []
        if rma_line_id is not None:
            line = session.execute(select(RmaLine.id, RmaLine.rma_id, Product.sku)
                                   .join(Product, Product.id == RmaLine.product_id)
                                   .where(RmaLine.id == rma_line_id)).first()
            if line is None or line.rma_id != unit.rma_id:
                raise ValidationFailed(N_("That line is not on this unit's return."))
            if unit.rma_line_id is None:
                rows.append(update_row(ReturnUnit, {"id": unit.id}, {"rma_line_id": line.id}, bump=("version",)))
            expected_skus.append(line.sku)
        refund_id = None
        if credit is not None and credit > 0:
            if session.scalar(select(RefundTrigger.id).where(RefundTrigger.unit_id == unit.id)) is not None:
                raise Conflict(N_("Unit %(lpn)s already has a refund trigger: decide it in the refund queue."),
                               lpn=unit.lpn)
            [refund_id] = allocate_ids(session, RefundTrigger, 1)
            rows += open_trigger(actor, refund_id, unit_id=unit.id, rma_id=unit.rma_id, warehouse_id=unit.warehouse_id,
                                 paid_amount=credit, currency="USD")
        details = {"sku": sku, "instead_of": expected_skus, "credit": str(credit) if credit else None}
        rows += [audit_row(actor, "unit.accepted_as_sku", "unit", unit.id, warehouse_id=unit.warehouse_id, reason=reason,
                           details=details),
                 *writer.resolve_exception(actor, exc, "accepted_as_sku", reason, details)]
        write(session, rows)
        if refund_id is not None:  # its trigger is written now: a late one is held for approval
            write(session, settle_late(session, actor, unit, [refund_id], "wrong item accepted after its disposition"))
        expire(session, (ReturnException, exc.id), (ReturnUnit, unit.id), (RefundTrigger, refund_id))
        return AcceptedAsSku.of(exc, "accepted_as_sku", unit_id=unit.id, sku=sku, refund_id=refund_id)

    return run_idempotent(session, actor, idempotency_key, "accept_wrong_item",
                          {"exception_id": exception_id, "reason": reason, "credit": str(credit),
                           "line": rma_line_id, "v": expected_version}, work, result_type=AcceptedAsSku)


# --------------------------------------------------------------------------- serial mismatch -> fraud


def confirm_serial_fraud(session: Session, actor: Actor, *, exception_id: int, reason: str | None,
                         idempotency_key: str | None, expected_version: int | None = None) -> FraudConfirmed:
    """Use case: a serial mismatch is confirmed as fraud.

    One transaction: the unit stays in quarantine (or is put there, when it was not yet disposed,
    restocked or in refurbishment), its refund is rejected (four-eyes applies: the unit's inspector
    may not decide it), and the exception is resolved. A refund already paid cannot be rejected:
    the resolution records that it must be recovered. Locks the exception, the unit, then its refund.
    """
    _require(actor)
    if not actor.can("approve_refunds"):
        raise NotPermitted(N_("Only a supervisor may reject refunds."))
    reason = require_reason(reason)

    def work() -> FraudConfirmed:
        exc = lock_exception(session, actor, exception_id, expected_version)
        if exc.type != "serial_mismatch" or exc.unit_id is None:
            raise ValidationFailed(N_("Only a serial mismatch can be confirmed as fraud."))
        unit = lock_unit(session, exc.unit_id)
        rows: list[Row] = []
        unit_state, moved = unit.state, False
        if unit.state in ("received", "available", "refurbish"):
            quarantine = location_of_type(session, unit.warehouse_id, "quarantine")
            rows += move_unit(actor, unit, "quarantine", reason=f"fraud confirmed: {reason}", to_location_id=quarantine.id,
                              to_location_warehouse_id=quarantine.warehouse_id, action="unit.fraud_hold",
                              details={"exception_id": exc.id}, values={"disposition": "quarantine"},
                              idempotency_key=idempotency_key)
            unit_state, moved = "quarantine", True
        triggers = RefundTrigger.__table__
        refund = session.execute(select(triggers).where(triggers.c.unit_id == unit.id).with_for_update(of=triggers)).first()
        refund_status = refund.status if refund is not None else None
        note = None
        if refund is not None and refund.status in (refunds_domain.AWAITING_INSPECTION, refunds_domain.PENDING_APPROVAL):
            check_four_eyes(session, actor, refund)
            values = {"decided_by_id": actor.id, "decided_at": utcnow(), "decision_reason": reason,
                      "amount": Decimal("0.00"), "hold_reasons": [*(refund.hold_reasons or []), "fraud confirmed"]}
            after, refund_rows = step_refund(actor, refund, [(refunds_domain.REJECTED, f"fraud confirmed: {reason}",
                                                              {"fraud": True, "exception_id": exc.id})], values=values)
            rows += refund_rows
            refund_status = after["status"]
        elif refund is not None and refund.status in (refunds_domain.APPROVED, refunds_domain.RELEASED,
                                                      refunds_domain.ACKNOWLEDGED):
            note = f"refund already {refunds_domain.STATUS_LABELS[refund.status]}: recover it from the customer"
        rows += writer.resolve_exception(actor, exc, "fraud_confirmed", reason,
                                         {"unit": unit.lpn, "unit_state": unit_state, "moved_to_quarantine": moved,
                                          "refund": refund_status, "note": note})
        write(session, rows)
        expire(session, (ReturnException, exc.id), (ReturnUnit, unit.id),
               (RefundTrigger, refund.id if refund is not None else None))
        return FraudConfirmed.of(exc, "fraud_confirmed", unit_id=unit.id, unit_state=unit_state,
                                 refund_status=refund_status, note=note)

    return run_idempotent(session, actor, idempotency_key, "confirm_serial_fraud",
                          {"exception_id": exception_id, "reason": reason, "v": expected_version}, work,
                          result_type=FraudConfirmed)


@dataclass(frozen=True)
class Assigned(Result):
    """assign_exception's answer: who owns the exception now (None: nobody) and its version."""

    exception_id: int
    owner_id: int | None
    owner: str | None
    version: int


def assign_exception(session: Session, actor: Actor, *, exception_id: int, owner_id: int | None, idempotency_key: str | None,
                     expected_version: int | None = None) -> Assigned:
    """Use case: give an open exception to a supervisor (who may resolve it; a supervisor takes
    one by giving it to themselves), or to nobody; audited with before and after."""
    _require(actor)
    from app.auth.models import User

    def work() -> Assigned:
        exc = lock_exception(session, actor, exception_id, expected_version)
        owner = None
        if owner_id is not None:
            owner = session.execute(select(User.id, User.name, User.role, User.active).where(User.id == owner_id)).first()
            if owner is None or not owner.active or owner.role not in PERMISSIONS["resolve_exceptions"]:
                raise ValidationFailed(N_("Give the exception to an active supervisor: only they resolve exceptions."))
        write(session, writer.assign_exception(actor, exc, owner_id, owner.name if owner else None))
        expire(session, (ReturnException, exc.id))
        return Assigned(exc.id, owner_id, owner.name if owner else None, exc.version + 1)

    return run_idempotent(session, actor, idempotency_key, "assign_exception",
                          {"exception_id": exception_id, "owner_id": owner_id, "v": expected_version}, work,
                          result_type=Assigned)
