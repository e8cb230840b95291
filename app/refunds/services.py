"""Refund use cases: opening a unit's trigger, a supervisor's approval or rejection, finance's
acknowledgement. Each reads the trigger it changes as a plain row under its row lock and writes
only through app.refunds.writer, along the lifecycle in app.refunds.domain."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Any

from sqlalchemy import Select, bindparam, exists, or_, select
from sqlalchemy.orm import Session

from app.anomalies.queries import open_unit_flag_ids
from app.anomalies.writer import clear_rows
from app.auth.roles import Actor
from app.db import as_utc, to_money, utcnow
from app.errors import Conflict, FourEyesViolation, NotFound, NotPermitted, StaleVersion, ValidationFailed, require_reason
from app.inspection.models import Inspection
from app.ledger.idempotency import Result, run_idempotent
from app.ledger.models import ReturnUnit
from app.ledger.services import lock_unit
from app.refunds import domain
from app.orders.models import RmaLine
from app.refunds.models import RefundTrigger
from app.refunds.writer import open_trigger, step_refund
from app.rows import allocate_ids, expire, write
from app.words import N_


@dataclass(frozen=True)
class RefundPolicy:
    """Settings that govern refunds: amounts over the threshold wait for a supervisor."""

    approval_threshold: Decimal = Decimal("250.00")

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> RefundPolicy:
        """The policy the app is configured with (REFUND_APPROVAL_THRESHOLD, app.config)."""
        return cls(Decimal(str(config.get("REFUND_APPROVAL_THRESHOLD", cls.approval_threshold))))


@dataclass(frozen=True)
class RefundStatus(Result):
    """What a refund use case answers: the trigger's status now and, once a supervisor approved it,
    the amount released (as text: 49.90)."""

    refund_id: int
    status: str
    amount: str | None = None


@dataclass(frozen=True)
class _UnitRef:
    """The unit of a refund, as app.auth.scoping.ensure_unit_visible takes it."""

    id: int


@lru_cache(maxsize=1)
def _lock_refund_statement() -> Select:
    """A trigger's row (every column) under its row lock, with who last inspected its unit."""
    rt, u = RefundTrigger.__table__, ReturnUnit.__table__
    return (select(rt, u.c.inspected_by_id.label("unit_inspected_by_id"))
            .join_from(rt, u, u.c.id == rt.c.unit_id).where(rt.c.id == bindparam("refund_id")).with_for_update(of=rt))


def lock_refund(session: Session, refund_id: int) -> Any:
    """A refund trigger as a plain row, locked (SELECT ... FOR UPDATE) so that concurrent deciders
    queue; NotFound when there is none. The caller checks the actor's scope."""
    row = session.execute(_lock_refund_statement(), {"refund_id": refund_id}).first()
    if row is None:
        raise NotFound(N_("No such refund."))
    return row


def create_refund_trigger(session: Session, actor: Actor, *, unit_id: int, idempotency_key: str | None) -> RefundStatus:
    """Use case: open the refund trigger of a unit that has none (at most one per unit)."""
    if not actor.can("receive"):
        raise NotPermitted(N_("You may not open refunds."))

    def work() -> RefundStatus:
        from app.ledger.queries import ensure_unit_visible

        unit = lock_unit(session, unit_id)
        ensure_unit_visible(session, actor, unit)
        if session.scalar(select(RefundTrigger.id).where(RefundTrigger.unit_id == unit.id)) is not None:
            raise Conflict(N_("Unit %(lpn)s already has a refund trigger."), lpn=unit.lpn)
        (refund_id,) = allocate_ids(session, RefundTrigger, 1)
        line = session.execute(select(RmaLine.resolution, RmaLine.exchange_sku).where(RmaLine.id == unit.rma_line_id)).first() \
            if unit.rma_line_id is not None else None
        write(session, open_trigger(actor, refund_id, unit_id=unit.id, rma_id=unit.rma_id, warehouse_id=unit.warehouse_id,
                                    paid_amount=unit.paid_price, currency="USD", resolution=line.resolution if line else None,
                                    exchange_sku=line.exchange_sku if line else None))
        return RefundStatus(refund_id, domain.AWAITING_INSPECTION)

    return run_idempotent(session, actor, idempotency_key, "create_refund_trigger", {"unit_id": unit_id}, work,
                          result_type=RefundStatus)


def _load_for_decision(session: Session, actor: Actor, refund_id: int, expected_version: int | None) -> Any:
    """The held refund a supervisor decides, locked, as a plain row; refused when it is not (or no
    longer) waiting for a decision, or changed since the supervisor saw it."""
    from app.ledger.queries import ensure_unit_visible

    refund = lock_refund(session, refund_id)
    ensure_unit_visible(session, actor, _UnitRef(refund.unit_id))
    if refund.status == domain.AWAITING_INSPECTION:
        raise Conflict(N_("This refund waits for its unit's inspection: it cannot be decided yet."))
    if refund.status != domain.PENDING_APPROVAL:
        status = domain.STATUS_LABELS[refund.status]
        if refund.decided_by_id:
            raise StaleVersion(N_("This refund was already decided by %(who)s: it is %(status)s."),
                               who=_decider(session, refund), status=status)
        raise StaleVersion(N_("This refund was already decided: it is %(status)s."), status=status)
    if expected_version is not None and refund.version != expected_version:
        raise StaleVersion(N_("This refund changed since you opened it. Look again."))
    return refund


def _decider(session: Session, refund: Any) -> str:
    from app.auth.models import User

    name = session.scalar(select(User.name).where(User.id == refund.decided_by_id))
    return name if name else "someone else"


def check_four_eyes(session: Session, actor: Actor, refund: Any) -> None:
    """Nobody decides the refund of a unit they inspected (ever, re-grades included) or an override
    they made. `refund`: a trigger (unit_id, inspected_by_id, override_by_id) the caller has locked;
    runs inside the decision's transaction."""
    if actor.id is None:
        return
    inspected = actor.id == refund.inspected_by_id or session.execute(
        select(ReturnUnit.id).where(ReturnUnit.id == refund.unit_id, or_(
            ReturnUnit.inspected_by_id == actor.id,
            exists().where(Inspection.unit_id == ReturnUnit.id, Inspection.inspector_id == actor.id)))
    ).first() is not None
    if inspected:
        if domain.FRAUD_FLAG in (getattr(refund, "hold_reasons", None) or []):
            raise FourEyesViolation(N_("A fraud flag holds this refund and you inspected the unit: only a supervisor "
                                       "who did not inspect it may release it."))
        raise FourEyesViolation(N_("You inspected this unit: another supervisor must decide its refund."))
    if actor.id == refund.override_by_id:
        raise FourEyesViolation(N_("You overrode this unit's disposition: another supervisor must decide its refund."))


def approve_refund(session: Session, actor: Actor, *, refund_id: int, reason: str | None, idempotency_key: str | None,
                   amount: Decimal | str | None = None, expected_version: int | None = None) -> RefundStatus:
    """Use case: a supervisor approves (optionally adjusting the amount) a held refund, which releases it."""
    if not actor.can("approve_refunds"):
        raise NotPermitted(N_("Only a supervisor may approve refunds."))
    reason = require_reason(reason)
    new_amount = _parse_amount(amount)

    def work() -> RefundStatus:
        refund = _load_for_decision(session, actor, refund_id, expected_version)
        check_four_eyes(session, actor, refund)
        values: dict[str, Any] = {"decided_by_id": actor.id, "decided_at": utcnow(), "decision_reason": reason}
        details: dict[str, Any] = {}
        if new_amount is not None:
            if new_amount > refund.paid_amount:
                raise ValidationFailed(N_("The refund cannot exceed what was paid (%(paid_amount)s)."),
                                       paid_amount=refund.paid_amount)
            details = {"adjusted_from": str(refund.amount), "adjusted_to": str(new_amount)}
            values["amount"] = new_amount
        after, rows = step_refund(actor, refund, [(domain.APPROVED, reason, details), (domain.RELEASED, reason, None)],
                                  values=values)
        write(session, [*rows, *clear_rows(actor, open_unit_flag_ids(session, refund.unit_id))])
        expire(session, (RefundTrigger, refund.id))
        return RefundStatus(refund.id, after["status"], str(after["amount"]))

    params = {"refund_id": refund_id, "reason": reason, "amount": str(new_amount), "v": expected_version}
    return run_idempotent(session, actor, idempotency_key, "approve_refund", params, work, result_type=RefundStatus)


def reject_refund(session: Session, actor: Actor, *, refund_id: int, reason: str | None, idempotency_key: str | None,
                  expected_version: int | None = None) -> RefundStatus:
    """Use case: a supervisor rejects a held refund."""
    if not actor.can("approve_refunds"):
        raise NotPermitted(N_("Only a supervisor may reject refunds."))
    reason = require_reason(reason)

    def work() -> RefundStatus:
        refund = _load_for_decision(session, actor, refund_id, expected_version)
        check_four_eyes(session, actor, refund)
        after, rows = step_refund(actor, refund, [(domain.REJECTED, reason, None)],
                                  values={"decided_by_id": actor.id, "decided_at": utcnow(), "decision_reason": reason,
                                          "amount": Decimal("0.00")})
        write(session, [*rows, *clear_rows(actor, open_unit_flag_ids(session, refund.unit_id))])
        expire(session, (RefundTrigger, refund.id))
        return RefundStatus(refund.id, after["status"])

    return run_idempotent(session, actor, idempotency_key, "reject_refund",
                          {"refund_id": refund_id, "reason": reason, "v": expected_version}, work,
                          result_type=RefundStatus)


def acknowledge_refund(session: Session, actor: Actor, *, refund_id: int, payment_reference: str,
                       idempotency_key: str | None) -> RefundStatus:
    """Use case: finance (an integration) says it paid a released refund, with its payment's reference."""
    if not actor.can("acknowledge_refunds"):
        raise NotPermitted(N_("Only finance may acknowledge refunds."))
    reference = (payment_reference or "").strip()
    if not reference or len(reference) > 64:
        raise ValidationFailed(N_("Give the payment's reference (1-64 characters)."))

    def work() -> RefundStatus:
        refund = lock_refund(session, refund_id)
        merchant_id = session.scalar(select(ReturnUnit.merchant_id).where(ReturnUnit.id == refund.unit_id))
        if actor.merchant_ids is not None and (merchant_id is None or not actor.serves(merchant_id)):
            raise NotFound(N_("No such refund."))
        after, rows = step_refund(actor, refund, [(domain.ACKNOWLEDGED, f"paid by finance: {reference}", None)],
                                  values={"payment_reference": reference})
        write(session, rows)
        expire(session, (RefundTrigger, refund.id))
        return RefundStatus(refund.id, after["status"])

    return run_idempotent(session, actor, idempotency_key, "acknowledge_refund",
                          {"refund_id": refund_id, "payment_reference": reference}, work, result_type=RefundStatus)


def _parse_amount(amount: Decimal | str | None) -> Decimal | None:
    if amount is None or (isinstance(amount, str) and not amount.strip()):
        return None
    try:
        value = to_money(str(amount).strip().lstrip("$"))
    except ArithmeticError:
        raise ValidationFailed(N_("The amount must be a number like 49.90.")) from None
    if not value.is_finite() or value < 0:
        raise ValidationFailed(N_("The amount must be zero or more."))
    return value


def age_seconds(refund: RefundTrigger) -> float:
    """How long a held refund has waited."""
    since = as_utc(refund.pending_since or refund.created_at)
    return (utcnow() - since).total_seconds() if since else 0.0

