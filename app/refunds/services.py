"""Refund triggers are created and moved only here, along the lifecycle in app.refunds.domain."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.roles import Actor
from app.db import as_utc, to_money, utcnow
from app.rows import Insert, Update, insert_row, update_row
from app.errors import Conflict, FourEyesViolation, NotFound, NotPermitted, StaleVersion, ValidationFailed, require_reason
from app.ledger.idempotency import run_idempotent
from app.ledger.models import AuditEntry, OutboxEvent, ReturnUnit
from app.ledger.services import audit_values, lock_unit, outbox_values
from app.refunds import domain as d
from app.refunds.models import RefundEvent, RefundTrigger


@dataclass(frozen=True)
class RefundPolicy:
    """Settings that govern refunds: amounts over the threshold wait for a supervisor."""

    approval_threshold: Decimal = Decimal("250.00")


def _move(session: Session, actor: Actor, refund: RefundTrigger, to_status: str, *, reason: str | None,
          details: dict[str, Any] | None = None) -> None:
    """Take one lifecycle edge, writing the refund event, an outbox event and an audit entry."""
    fields, event, outbox, trail = _edge(actor, refund, refund.status, to_status, reason=reason, details=details)
    for name, value in fields.items():
        setattr(refund, name, value)
    # No flush here: the trigger's UPDATE and the rows below go out with the use case's next flush,
    # the rows of each table in one INSERT (version_id_col still checks the trigger then).
    session.add(RefundEvent(**event))
    session.add(OutboxEvent(**outbox))
    session.add(AuditEntry(**trail))


def _edge(actor: Actor, refund: Any, from_status: str, to_status: str, *, reason: str | None,
          details: dict[str, Any] | None) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], dict[str, Any]]:
    """One lifecycle edge of `refund` (an entity or a plain row: id, unit_id, rma_id, warehouse_id,
    currency, amount, inspected_at as they are after the change), from `from_status`: the trigger's
    changed columns, the refund event, the outbox event and the audit entry. Refused edges raise."""
    d.check_refund_edge(from_status, to_status)
    if to_status in (d.RELEASED, d.ACKNOWLEDGED) and refund.inspected_at is None:
        raise Conflict("A refund cannot be released before its unit has been inspected.")
    fields: dict[str, Any] = {"status": to_status}
    now = utcnow()
    if to_status == d.PENDING_APPROVAL:
        fields["pending_since"] = now
    if to_status == d.RELEASED:
        fields["released_at"] = now
    if to_status == d.ACKNOWLEDGED:
        fields["acknowledged_at"] = now
    event = {"refund_id": refund.id, "from_status": from_status, "to_status": to_status, "amount": refund.amount,
             "actor_id": actor.id, "reason": reason, "details": details or {}}
    outbox = outbox_values(f"refund.{to_status}", "refund", refund.id,
                           {"refund_id": refund.id, "unit_id": refund.unit_id, "rma_id": refund.rma_id, "status": to_status,
                            "amount": str(refund.amount), "currency": refund.currency})
    trail = audit_values(actor, f"refund.{to_status}", "refund", refund.id, warehouse_id=refund.warehouse_id,
                         reason=reason, details={"from": from_status, "to": to_status, "amount": str(refund.amount),
                                                 **(details or {})})
    return fields, event, outbox, trail


def open_refund(session: Session, actor: Actor, unit: ReturnUnit, *, paid_amount: Decimal | None = None,
                currency: str = "USD") -> RefundTrigger:
    """Create the unit's refund trigger, awaiting inspection, in the caller's transaction.

    The caller holds the unit's row lock; the unique constraint on unit_id is the backstop.
    """
    if session.scalars(select(RefundTrigger.id).where(RefundTrigger.unit_id == unit.id)).first() is not None:
        raise Conflict(f"Unit {unit.lpn} already has a refund trigger.")
    paid = to_money(paid_amount if paid_amount is not None else (unit.paid_price or 0))
    refund = RefundTrigger(**_trigger_values(unit.id, unit.rma_id, unit.warehouse_id, paid, currency))
    session.add(refund)
    session.flush()
    event, outbox, trail = _opened_values(actor, refund.id, unit.id, unit.rma_id, unit.warehouse_id, paid, currency)
    session.add(RefundEvent(**event))
    session.add(OutboxEvent(**outbox))
    session.add(AuditEntry(**trail))
    return refund


def _trigger_values(unit_id: int, rma_id: int | None, warehouse_id: int, paid: Decimal, currency: str) -> dict[str, Any]:
    return {"unit_id": unit_id, "rma_id": rma_id, "warehouse_id": warehouse_id, "status": d.AWAITING_INSPECTION,
            "currency": currency, "paid_amount": paid, "amount": paid}


def _opened_values(actor: Actor, refund_id: int, unit_id: int, rma_id: int | None, warehouse_id: int, paid: Decimal,
                   currency: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The refund event, outbox event and audit entry of a refund trigger being opened, as columns."""
    event = {"refund_id": refund_id, "from_status": None, "to_status": d.AWAITING_INSPECTION, "amount": paid,
             "actor_id": actor.id, "reason": "unit received"}
    outbox = outbox_values("refund.awaiting_inspection", "refund", refund_id,
                           {"refund_id": refund_id, "unit_id": unit_id, "rma_id": rma_id, "status": d.AWAITING_INSPECTION,
                            "amount": str(paid), "currency": currency})
    trail = audit_values(actor, "refund.opened", "refund", refund_id, warehouse_id=warehouse_id,
                         details={"unit_id": unit_id, "amount": str(paid)})
    return event, outbox, trail


def open_refund_rows(actor: Actor, refund_id: int, unit: dict[str, Any], *, paid_amount: Decimal,
                           currency: str) -> list[Insert]:
    """open_refund for a unit created in the same transaction, as rows for write
    (its id allocated beforehand with next_id). The new unit has no trigger yet; the unique
    constraint on unit_id stays the backstop."""
    paid = to_money(paid_amount)
    event, outbox, trail = _opened_values(actor, refund_id, unit["id"], unit.get("rma_id"), unit["warehouse_id"], paid,
                                          currency)
    trigger = {"id": refund_id, **_trigger_values(unit["id"], unit.get("rma_id"), unit["warehouse_id"], paid, currency)}
    return [insert_row(RefundTrigger, trigger), insert_row(RefundEvent, event), insert_row(OutboxEvent, outbox),
            insert_row(AuditEntry, trail)]


def create_refund_trigger(session: Session, actor: Actor, *, unit_id: int, idempotency_key: str | None) -> dict[str, Any]:
    """Use case: open the refund trigger of a unit that has none (at most one per unit)."""
    if not actor.can("receive"):
        raise NotPermitted("You may not open refunds.")

    def work() -> dict[str, Any]:
        from app.auth.scoping import ensure_unit_visible

        unit = lock_unit(session, unit_id)
        ensure_unit_visible(session, actor, unit)
        refund = open_refund(session, actor, unit)
        return {"refund_id": refund.id, "status": refund.status}

    return run_idempotent(session, actor, idempotency_key, "create_refund_trigger", {"unit_id": unit_id}, work)


def refund_for_unit(session: Session, unit_id: int, *, lock: bool = False) -> RefundTrigger | None:
    """The unit's refund trigger, if any (optionally row-locked)."""
    stmt = select(RefundTrigger).where(RefundTrigger.unit_id == unit_id)
    if lock:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    return session.scalars(stmt).first()


def settle_after_inspection(session: Session, actor: Actor, refund: RefundTrigger, *, amount: Decimal,
                            refund_action: str, hold: list[str], inspected_by_id: int | None,
                            override_by_id: int | None = None, reason: str) -> None:
    """After the disposition: hold for approval, release, or reject (no refund), in the caller's transaction."""
    values, steps = _settlement(refund.status, refund.paid_amount, refund.unit.inspected_at, amount=amount,
                                refund_action=refund_action, hold=hold, inspected_by_id=inspected_by_id,
                                override_by_id=override_by_id, reason=reason)
    for name, value in values.items():
        setattr(refund, name, value)
    for to_status, why, details in steps:
        _move(session, actor, refund, to_status, reason=why, details=details)


def settle_rows(actor: Actor, refund: Any, *, unit_inspected_at: datetime | None, amount: Decimal, refund_action: str,
                hold: list[str], inspected_by_id: int | None, override_by_id: int | None = None,
                reason: str) -> tuple[dict[str, Any], list[Insert | Update]]:
    """settle_after_inspection for a trigger the caller has locked and read as a plain row (its id,
    unit_id, rma_id, warehouse_id, status, currency, paid_amount), as rows for write: the
    trigger's UPDATE (its version stepped), then each edge's refund event, outbox event and audit
    entry, the rows the entity path writes. Returns the trigger's columns after the settlement too."""
    values, steps = _settlement(refund.status, refund.paid_amount, unit_inspected_at, amount=amount,
                                refund_action=refund_action, hold=hold, inspected_by_id=inspected_by_id,
                                override_by_id=override_by_id, reason=reason)
    after = SimpleNamespace(**{**refund._asdict(), **values})
    rows: list[Insert | Update] = []
    for to_status, why, details in steps:
        fields, event, outbox, trail = _edge(actor, after, after.status, to_status, reason=why, details=details)
        for name, value in fields.items():
            setattr(after, name, value)
            values[name] = value
        rows += [insert_row(RefundEvent, event), insert_row(OutboxEvent, outbox), insert_row(AuditEntry, trail)]
    return vars(after), [update_row(RefundTrigger, {"id": refund.id}, values, bump=("version",)), *rows]


def _settlement(status: str, paid_amount: Decimal, unit_inspected_at: datetime | None, *, amount: Decimal,
                refund_action: str, hold: list[str], inspected_by_id: int | None, override_by_id: int | None,
                reason: str) -> tuple[dict[str, Any], list[tuple[str, str, dict[str, Any] | None]]]:
    """What settling a trigger after its unit's disposition changes: its columns, then the edges to
    take, (to status, reason, details) each. Refuses a trigger not awaiting inspection."""
    if status != d.AWAITING_INSPECTION:
        raise Conflict(f"The refund is already {d.STATUS_LABELS[status]}.")
    if refund_action not in d.REFUND_ACTIONS:
        raise ValidationFailed(f"Unknown refund action '{refund_action}'.")
    if unit_inspected_at is None:
        raise Conflict("A refund cannot be settled before its unit has been inspected.")
    values: dict[str, Any] = {"amount": min(to_money(amount), paid_amount), "refund_action": refund_action,
                              "inspected_at": utcnow(), "inspected_by_id": inspected_by_id,
                              "override_by_id": override_by_id, "hold_reasons": list(hold)}
    if hold:
        return values, [(d.PENDING_APPROVAL, "; ".join(hold), None)]
    if refund_action == "none":
        values["amount"] = Decimal("0.00")
        return values, [(d.REJECTED, reason, None)]
    return values, [(d.APPROVED, reason, {"auto": True}), (d.RELEASED, reason, {"auto": True})]


def _load_for_decision(session: Session, actor: Actor, refund_id: int, expected_version: int | None) -> RefundTrigger:
    from app.auth.scoping import ensure_unit_visible

    refund = session.scalars(select(RefundTrigger).where(RefundTrigger.id == refund_id).with_for_update()
                             .execution_options(populate_existing=True)).first()
    if refund is None:
        raise NotFound("No such refund.")
    ensure_unit_visible(session, actor, refund.unit)
    if refund.status == d.AWAITING_INSPECTION:
        raise Conflict("This refund waits for its unit's inspection: it cannot be decided yet.")
    if refund.status != d.PENDING_APPROVAL:
        who = f" by {_decider(session, refund)}" if refund.decided_by_id else ""
        raise StaleVersion(f"This refund was already decided{who}: it is {d.STATUS_LABELS[refund.status]}.")
    if expected_version is not None and refund.version != expected_version:
        raise StaleVersion("This refund changed since you opened it. Look again.")
    return refund


def _decider(session: Session, refund: RefundTrigger) -> str:
    from app.auth.models import User

    user = session.get(User, refund.decided_by_id)
    return user.name if user else "someone else"


def check_four_eyes(session: Session, actor: Actor, refund: RefundTrigger) -> None:
    """Nobody approves the refund of a unit they inspected (ever, re-grades included) or an override
    they made. Runs inside the decision's transaction, with the refund row locked."""
    from app.inspection.models import Inspection

    if actor.id is None:
        return
    inspected = actor.id in (refund.inspected_by_id, refund.unit.inspected_by_id) or session.execute(
        select(Inspection.id).where(Inspection.unit_id == refund.unit_id, Inspection.inspector_id == actor.id).limit(1)
    ).first() is not None
    if inspected:
        raise FourEyesViolation("You inspected this unit: another supervisor must decide its refund.")
    if actor.id == refund.override_by_id:
        raise FourEyesViolation("You overrode this unit's disposition: another supervisor must decide its refund.")


def approve_refund(session: Session, actor: Actor, *, refund_id: int, reason: str | None, idempotency_key: str | None,
                   amount: Decimal | str | None = None, expected_version: int | None = None) -> dict[str, Any]:
    """Use case: a supervisor approves (optionally adjusting the amount) a held refund, which releases it."""
    if not actor.can("approve_refunds"):
        raise NotPermitted("Only a supervisor may approve refunds.")
    reason = require_reason(reason)
    new_amount = _parse_amount(amount)

    def work() -> dict[str, Any]:
        refund = _load_for_decision(session, actor, refund_id, expected_version)
        check_four_eyes(session, actor, refund)
        details: dict[str, Any] = {}
        if new_amount is not None:
            if new_amount > refund.paid_amount:
                raise ValidationFailed(f"The refund cannot exceed what was paid ({refund.paid_amount}).")
            details = {"adjusted_from": str(refund.amount), "adjusted_to": str(new_amount)}
            refund.amount = new_amount
        refund.decided_by_id, refund.decided_at, refund.decision_reason = actor.id, utcnow(), reason
        _move(session, actor, refund, d.APPROVED, reason=reason, details=details)
        _move(session, actor, refund, d.RELEASED, reason=reason)
        return {"refund_id": refund.id, "status": refund.status, "amount": str(refund.amount)}

    params = {"refund_id": refund_id, "reason": reason, "amount": str(new_amount), "v": expected_version}
    return run_idempotent(session, actor, idempotency_key, "approve_refund", params, work)


def reject_refund(session: Session, actor: Actor, *, refund_id: int, reason: str | None, idempotency_key: str | None,
                  expected_version: int | None = None) -> dict[str, Any]:
    """Use case: a supervisor rejects a held refund."""
    if not actor.can("approve_refunds"):
        raise NotPermitted("Only a supervisor may reject refunds.")
    reason = require_reason(reason)

    def work() -> dict[str, Any]:
        refund = _load_for_decision(session, actor, refund_id, expected_version)
        check_four_eyes(session, actor, refund)
        refund.decided_by_id, refund.decided_at, refund.decision_reason = actor.id, utcnow(), reason
        refund.amount = Decimal("0.00")
        _move(session, actor, refund, d.REJECTED, reason=reason)
        return {"refund_id": refund.id, "status": refund.status}

    return run_idempotent(session, actor, idempotency_key, "reject_refund",
                          {"refund_id": refund_id, "reason": reason, "v": expected_version}, work)


def acknowledge_refund(session: Session, actor: Actor, *, refund_id: int, idempotency_key: str | None) -> dict[str, Any]:
    """Use case: finance (an integration) says it paid a released refund."""
    if not actor.can("acknowledge_refunds"):
        raise NotPermitted("Only finance may acknowledge refunds.")

    def work() -> dict[str, Any]:
        refund = session.scalars(select(RefundTrigger).where(RefundTrigger.id == refund_id).with_for_update()
                                 .execution_options(populate_existing=True)).first()
        if refund is None:
            raise NotFound("No such refund.")
        _move(session, actor, refund, d.ACKNOWLEDGED, reason="paid by finance")
        return {"refund_id": refund.id, "status": refund.status}

    return run_idempotent(session, actor, idempotency_key, "acknowledge_refund", {"refund_id": refund_id}, work)


def _parse_amount(amount: Decimal | str | None) -> Decimal | None:
    if amount is None or (isinstance(amount, str) and not amount.strip()):
        return None
    try:
        value = to_money(str(amount).strip().lstrip("$"))
    except ArithmeticError:
        raise ValidationFailed("The amount must be a number like 49.90.") from None
    if not value.is_finite() or value < 0:
        raise ValidationFailed("The amount must be zero or more.")
    return value


def age_seconds(refund: RefundTrigger) -> float:
    """How long a held refund has waited."""
    since = as_utc(refund.pending_since or refund.created_at)
    return (utcnow() - since).total_seconds() if since else 0.0
