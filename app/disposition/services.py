"""Disposition: decide by the rules, confirm (or, for supervisors, override), move the unit and settle its refund."""
from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import distinct, func, select
from sqlalchemy.orm import Session

from app.catalog.services import location_of_type
from app.auth.roles import Actor
from app.auth.scoping import ensure_unit_visible
from app.catalog.models import SalesChannel
from app.disposition import domain as rules_domain
from app.disposition.domain import DISPOSITION_LOCATION_TYPE, DISPOSITION_STATE, Decision, InspectionFacts, Rule, decide
from app.disposition.models import DispositionRule
from app.errors import Conflict, NotPermitted, ValidationFailed
from app.ledger.idempotency import run_idempotent
from app.ledger.models import ReturnUnit
from app.ledger.services import apply_transition, check_version, lock_unit
from app.orders.models import Order, Rma, RmaLine
from app.refunds.domain import hold_reasons
from app.refunds.services import RefundPolicy, refund_for_unit, settle_after_inspection


def load_rules(session: Session) -> list[Rule]:
    """The current rule set, in order (the seeded defaults when none is stored)."""
    rows = session.scalars(select(DispositionRule).order_by(DispositionRule.position)).all()
    if not rows:
        return list(rules_domain.DEFAULT_RULES)
    return [Rule(r.position, r.name, dict(r.conditions or {}), r.disposition, r.refund_action,
                 Decimal(r.restocking_fee_pct), r.enabled) for r in rows]


def _history_counts(customer_id: Any) -> tuple[Any, Any]:
    """(RMAs, orders) of a customer as scalar subqueries; `customer_id` may itself be a subquery."""
    return (select(func.count(distinct(Rma.id))).where(Rma.customer_id == customer_id).scalar_subquery(),
            select(func.count(Order.id)).where(Order.customer_id == customer_id).scalar_subquery())


def _history(returns: int | None, orders: int | None) -> tuple[int, float]:
    returns, orders = returns or 0, orders or 0
    prior = max(returns - 1, 0)  # this return is not a "prior" one
    return prior, (min(returns / orders, 1.0) if orders else 0.0)


def customer_history(session: Session, customer_id: int | None) -> tuple[int, float]:
    """(prior returns, return rate) of a customer: RMAs over orders. No contact data involved."""
    if customer_id is None:
        return 0, 0.0
    return _history(*session.execute(select(*_history_counts(customer_id))).one())


def facts_for(session: Session, unit: ReturnUnit) -> InspectionFacts:
    """What the rules look at for one inspected unit (the product, then the rest in one query)."""
    if unit.grade is None or unit.packaging is None:
        raise ValidationFailed(f"Inspect unit {unit.lpn} (grade and packaging) before its disposition.")
    product = unit.product
    customer = select(Rma.customer_id).where(Rma.id == unit.rma_id).scalar_subquery()
    row = session.execute(select(
        select(SalesChannel.code).join(Rma, Rma.channel_id == SalesChannel.id).where(Rma.id == unit.rma_id).scalar_subquery(),
        select(RmaLine.reason_code).where(RmaLine.id == unit.rma_line_id).scalar_subquery(),
        *_history_counts(customer),
    )).one()
    channel = row[0] if unit.rma_id is not None and row[0] is not None else "unknown"
    reason = row[1] if unit.rma_line_id is not None and row[1] is not None else "unknown"
    count, rate = _history(row[2], row[3])
    return InspectionFacts(grade=unit.grade, category=product.category if product else "unknown",
                           unit_value=product.unit_value if product else Decimal(0), reason_code=reason,
                           channel=channel, serial_mismatch=unit.serial_status == "mismatch",
                           packaging=unit.packaging, customer_return_count=count, customer_return_rate=rate)


def preview(session: Session, actor: Actor, unit: ReturnUnit) -> Decision:
    """What the rules would decide for this unit now (read-only)."""
    return decide(load_rules(session), facts_for(session, unit))


def confirm_disposition(session: Session, actor: Actor, *, unit_id: int, idempotency_key: str | None,
                        policy: RefundPolicy, override: str | None = None, override_reason: str | None = None,
                        expected_version: int | None = None) -> dict[str, Any]:
    """Use case: apply the rules' decision (or a supervisor's override) to an inspected unit.

    One transaction: the ledger moves the unit to the disposition's state and location, and
    the refund trigger is settled (held for approval, released, or rejected).
    """
    if not actor.can("dispose"):
        raise NotPermitted("You may not dispose units.")
    override = (override or "").strip() or None
    if override is not None:
        if not actor.can("override_disposition"):
            raise NotPermitted("Only a supervisor may override the disposition.")
        if override not in DISPOSITION_STATE:
            raise ValidationFailed("Unknown disposition.")
        if not (override_reason or "").strip():
            raise ValidationFailed("Say why you override the rules.")

    def work() -> dict[str, Any]:
        unit = lock_unit(session, unit_id)
        ensure_unit_visible(session, actor, unit)
        check_version(session, unit, expected_version)
        if unit.state != "received":
            raise Conflict(f"Unit {unit.lpn} was already disposed: it is {unit.state.replace('_', ' ')}. "
                           "Use the supervisor desk to move it on.")
        decision = decide(load_rules(session), facts_for(session, unit))
        overridden = override is not None and override != decision.disposition
        disposition = override if overridden else decision.disposition
        assert disposition is not None
        why = decision.explanation if not overridden else f"override by {actor.name}: {override_reason} (rules said: {decision.explanation})"
        location = location_of_type(session, unit.warehouse_id, DISPOSITION_LOCATION_TYPE[disposition])
        # locked before the move, so the move's rows and the refund's go out in one flush at the end
        refund = refund_for_unit(session, unit.id, lock=True)
        # set before the move, so the unit row is written once (one UPDATE, one version step)
        unit.disposition = disposition
        unit.decision_rule = why
        apply_transition(session, actor, unit, DISPOSITION_STATE[disposition], reason=why, to_location=location,
                         action="unit.disposed", details={"disposition": disposition, "rule": decision.explanation,
                                                          "overridden": overridden})
        refund_status = None
        if refund is not None and refund.status == "awaiting_inspection":
            action = "hold" if overridden and decision.refund_action != "none" else decision.refund_action
            amount = rules_domain.refund_amount(refund.paid_amount, action, restocking_fee_pct=decision.restocking_fee_pct,
                                                grade=unit.grade)
            hold = hold_reasons(amount=amount, threshold=policy.approval_threshold, refund_action=action,
                                serial_mismatch=unit.serial_status == "mismatch", fraud_flag=False, overridden=overridden)
            if unit.rma_id is not None and unit.rma_line_id is None:
                hold.append("the item was not on the return authorisation")
            settle_after_inspection(session, actor, refund, amount=amount, refund_action=action, hold=hold,
                                    inspected_by_id=unit.inspected_by_id, override_by_id=actor.id if overridden else None,
                                    reason=why)
            refund_status = refund.status
        session.flush()
        return {"unit_id": unit.id, "lpn": unit.lpn, "state": unit.state, "disposition": disposition,
                "location": location.code, "explanation": why, "refund_status": refund_status,
                "refund_amount": str(refund.amount) if refund is not None else None, "version": unit.version}

    params = {"unit_id": unit_id, "override": override, "override_reason": override_reason, "v": expected_version}
    return run_idempotent(session, actor, idempotency_key, "confirm_disposition", params, work)
