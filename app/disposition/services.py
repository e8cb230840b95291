"""Disposition: decide by the rules, confirm (or, for supervisors, override), move the unit and settle its refund."""
from __future__ import annotations

import json
from collections import namedtuple
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Any

from sqlalchemy import Select, Text, bindparam, cast, distinct, func, select
from sqlalchemy.orm import Session

from app.anomalies.queries import holding_flag
from app.auth.roles import Actor
from app.ledger.queries import ensure_unit_visible
from app.catalog.models import Location, Product, SalesChannel
from app.catalog.services import no_location
from app.rows import expire, write
from app.disposition import domain as rules_domain
from app.disposition.domain import DISPOSITION_LOCATION_TYPE, DISPOSITION_STATE, Decision, InspectionFacts, Rule, decide
from app.disposition.models import DispositionRule
from app.errors import AlreadyDisposed, NotFound, NotPermitted, ValidationFailed
from app.inspection.grading import Grading
from app.inspection.queries import current_checklist_columns, current_rules_column, is_kit_column
from app.ledger.idempotency import LateClaim, Result, run_idempotent
from app.ledger.domain import STATE_LABELS
from app.ledger.models import ReturnUnit
from app.ledger.services import check_version
from app.ledger.writer import move_unit
from app.orders.models import Order, Rma, RmaLine
from app.refunds.domain import hold_reasons
from app.refunds.models import RefundTrigger
from app.refunds.services import RefundPolicy
from app.refunds.writer import settle_refund
from app.settings.queries import threshold_for_rma
from app.words import N_


def load_rules(session: Session) -> list[Rule]:
    """The current rule set, in order (the seeded defaults when none is stored): one plain read."""
    rows = session.execute(_rules_statement(), {}).all()
    if not rows:
        return list(rules_domain.DEFAULT_RULES)
    return list(_built_rules(tuple(rows)))


@lru_cache(maxsize=1)
def _rules_statement() -> Select:
    r = DispositionRule.__table__
    return select(r.c.position, r.c.name, cast(r.c.conditions, Text).label("conditions"), r.c.disposition,
                  r.c.refund_action, r.c.restocking_fee_pct, r.c.enabled).order_by(r.c.position)


@lru_cache(maxsize=8)
def _built_rules(rows: tuple[Any, ...]) -> tuple[Rule, ...]:
    """The rules of a rule set as read, built (validated, conditions parsed) once per distinct set:
    building them costs more than reading them, and the set rarely changes. Rules are immutable."""
    return tuple(Rule(position, name, (json.loads(conditions) if conditions else None) or {}, disposition, action,
                      Decimal(fee), enabled)
                 for position, name, conditions, disposition, action, fee, enabled in rows)


def _history_counts(customer_id: Any) -> tuple[Any, Any]:
    """(RMAs, orders) of a customer as scalar subqueries; `customer_id` may itself be a subquery."""
    rmas, orders = Rma.__table__, Order.__table__  # table columns: the reads that carry them stay plain reads
    return (select(func.count(distinct(rmas.c.id))).where(rmas.c.customer_id == customer_id).scalar_subquery(),
            select(func.count(orders.c.id)).where(orders.c.customer_id == customer_id).scalar_subquery())


def _history(returns: int | None, orders: int | None) -> tuple[int, float]:
    returns, orders = returns or 0, orders or 0
    prior = max(returns - 1, 0)  # this return is not a "prior" one
    return prior, (min(returns / orders, 1.0) if orders else 0.0)


def customer_history(session: Session, customer_id: int | None) -> tuple[int, float]:
    """(prior returns, return rate) of a customer: RMAs over orders. No contact data involved."""
    if customer_id is None:
        return 0, 0.0
    return _history(*session.execute(select(*_history_counts(customer_id))).one())


@lru_cache(maxsize=4)
def _facts_statement(lock: bool, screen: bool = False) -> Select:
    """A unit with what the rules look at (its product, channel, line's reason and customer's
    history, whether an anomaly flag holds its refund: app.anomalies) as one plain row; with `lock`, the unit's row lock (a use case's first statement);
    with `screen`, also what the handheld's unit screen shows (see unit_screen_row), its category's
    current checklist's items included (NULL: it has none)."""
    u, p = ReturnUnit.__table__, Product.__table__
    rma, line, channel = Rma.__table__.alias("unit_rma"), RmaLine.__table__, SalesChannel.__table__
    customer = select(rma.c.customer_id).where(rma.c.id == u.c.rma_id).correlate(u).scalar_subquery()
    returns, orders = _history_counts(customer)
    extra = (u.c.serial, u.c.decision_rule, p.c.sku, p.c.name, p.c.open_box_product_id,
             current_checklist_columns(p.c.category)[0], current_rules_column(p.c.category), is_kit_column(p.c.id)) if screen else ()
    stmt = (select(u.c.id, u.c.lpn, u.c.state, u.c.version, u.c.product_id, u.c.warehouse_id, u.c.location_id,
                   u.c.rma_id, u.c.rma_line_id, u.c.grade, u.c.packaging, u.c.serial_status, u.c.inspected_at,
                   u.c.inspected_by_id, u.c.grading, p.c.category, p.c.unit_value,
                   select(channel.c.code).join_from(rma, channel, channel.c.id == rma.c.channel_id)
                   .where(rma.c.id == u.c.rma_id).scalar_subquery().label("channel"),
                   select(line.c.reason_code).where(line.c.id == u.c.rma_line_id).scalar_subquery().label("reason_code"),
                   returns.label("customer_returns"), orders.label("customer_orders"),
                   threshold_for_rma(u.c.rma_id).label("refund_threshold"),
                   holding_flag(u.c.id, u.c.rma_id).label("fraud_flag"), *extra)
            .join_from(u, p, p.c.id == u.c.product_id).where(u.c.id == bindparam("unit_id")))
    return stmt.with_for_update(of=u) if lock else stmt


def unit_screen_row(session: Session, unit_id: int) -> Any:
    """A unit as its screen shows it, with the rules' facts (decision_of), in one plain read; None
    when there is no such unit. Scope is the caller's to check."""
    rows = session.execute(_facts_statement(False, True), {"unit_id": unit_id}).all()
    return rows[0] if rows else None


def decision_of(session: Session, row: Any) -> Decision:
    """What the rules would decide now for a unit read by unit_screen_row (read-only)."""
    return decide(load_rules(session), _facts(row))


def _require_inspected(row: Any) -> None:
    if row.grade is None or row.packaging is None:
        raise ValidationFailed(N_("Inspect unit %(lpn)s (grade and packaging) before its disposition."), lpn=row.lpn)


def _facts(row: Any) -> InspectionFacts:
    """The rules' input from a _facts_statement row; an uninspected unit is refused."""
    _require_inspected(row)
    count, rate = _history(row.customer_returns, row.customer_orders)
    set_ = Grading.from_json(row.grading)
    return InspectionFacts(grade=row.grade, category=row.category, unit_value=row.unit_value,
                           grading_reasons=set_.reasons, deductions=set_.deductions,
                           reason_code=row.reason_code if row.rma_line_id is not None and row.reason_code else "unknown",
                           channel=row.channel if row.rma_id is not None and row.channel else "unknown",
                           serial_mismatch=row.serial_status == "mismatch", packaging=row.packaging,
                           customer_return_count=count, customer_return_rate=rate)


def facts_for(session: Session, unit: ReturnUnit) -> InspectionFacts:
    """What the rules look at for one inspected unit, in one plain read."""
    rows = session.execute(_facts_statement(False), {"unit_id": unit.id}).all()
    if not rows:
        raise NotFound(N_("No such unit."))
    return _facts(rows[0])


def preview(session: Session, actor: Actor, unit: ReturnUnit) -> Decision:
    """What the rules would decide for this unit now (read-only)."""
    return decide(load_rules(session), facts_for(session, unit))


@lru_cache(maxsize=8)
def _settle_statement(with_refund: bool) -> Select:
    """The confirm's second read, after the unit's lock: its key's record (LateClaim), the location
    of the decided type (bound as `location_type`) and, `with_refund`, the unit's refund trigger
    with its row lock. A unit without a trigger gets no row from the first form and reads the second."""
    loc = Location.__table__
    first = (select(loc.c.id).where(loc.c.warehouse_id == bindparam("warehouse_id"), loc.c.type == bindparam("location_type"))
             .order_by(loc.c.id).limit(1).scalar_subquery())
    columns = [*LateClaim.record_columns(),
               first.label("location_id"),
               select(loc.c.code).where(loc.c.id == first).scalar_subquery().label("location_code")]
    if not with_refund:
        return select(*columns)
    rt = RefundTrigger.__table__
    return (select(*columns, rt.c.id, rt.c.unit_id, rt.c.rma_id, rt.c.warehouse_id, rt.c.status, rt.c.currency,
                   rt.c.paid_amount, rt.c.amount, rt.c.resolution, rt.c.exchange_sku)
            .where(rt.c.unit_id == bindparam("unit_id")).with_for_update(of=rt))


@dataclass(frozen=True)
class DispositionConfirmed(Result):
    """confirm_disposition's answer: where the unit went and why, its refund's status and amount
    (as text) after, and the unit's version."""

    unit_id: int
    lpn: str
    state: str
    disposition: str
    location: str
    explanation: str
    refund_status: str | None
    refund_amount: str | None
    version: int


_Refund = namedtuple("_Refund", ("id", "unit_id", "rma_id", "warehouse_id", "status", "currency", "paid_amount", "amount"))


def confirm_disposition(session: Session, actor: Actor, *, unit_id: int, idempotency_key: str | None,
                        policy: RefundPolicy, override: str | None = None, override_reason: str | None = None,
                        expected_version: int | None = None) -> DispositionConfirmed:
    """Use case: apply the rules' decision (or a supervisor's override) to an inspected unit.

    One transaction: the ledger moves the unit to the disposition's state and location, and
    the refund trigger is settled (held for approval, released, or rejected). Plain rows, like the
    scan: the unit's lock with the rules' facts, the rules, the refund's lock with the key's record
    and the location, then every row in one write (write).
    """
    if not actor.can("dispose"):
        raise NotPermitted(N_("You may not dispose units."))
    override = (override or "").strip() or None
    if override is not None:
        if not actor.can("override_disposition"):
            raise NotPermitted(N_("Only a supervisor may override the disposition."))
        if override not in DISPOSITION_STATE:
            raise ValidationFailed(N_("Unknown disposition."))
        if not (override_reason or "").strip():
            raise ValidationFailed(N_("Say why you override the rules."))

    def work(claim: LateClaim[DispositionConfirmed]) -> DispositionConfirmed:
        rows = session.execute(_facts_statement(True), {"unit_id": unit_id}).all()
        if not rows:
            raise NotFound(N_("No such unit."))
        unit = rows[0]
        ensure_unit_visible(session, actor, unit)
        decision, overridden, location_type = None, False, None
        if unit.state == "received" and unit.grade is not None and unit.packaging is not None:
            decision = decide(load_rules(session), _facts(unit))
            overridden = override is not None and override != decision.disposition
            disposition = override if overridden else decision.disposition
            location_type = DISPOSITION_LOCATION_TYPE[disposition]
        # After the unit's lock, in a statement of its own: a same-key attempt that waited for the
        # lock sees the record its winner wrote, and replays it.
        params = {**claim.params, "unit_id": unit.id, "warehouse_id": unit.warehouse_id, "location_type": location_type}
        found = session.execute(_settle_statement(True), params).all()
        refund = _Refund(*(getattr(found[0], c) for c in _Refund._fields)) if found else None
        ctx = found[0] if found else session.execute(_settle_statement(False), params).all()[0]
        if (replay := claim.replayed(ctx)) is not None:
            return replay
        check_version(session, unit, expected_version)
        if unit.state != "received":
            raise AlreadyDisposed(N_("Unit %(unit)s was already disposed: it is %(now)s. Use the supervisor desk to move "
                                     "it on."), lpn=unit.lpn, state=unit.state, unit=unit.lpn,
                                  now=STATE_LABELS.get(unit.state, unit.state))
        _require_inspected(unit)
        assert decision is not None and location_type is not None
        if ctx.location_id is None:
            raise no_location(location_type)
        why = decision.explanation if not overridden else f"override by {actor.name}: {override_reason} (rules said: {decision.explanation})"
        writes = move_unit(actor, unit, DISPOSITION_STATE[disposition], reason=why, to_location_id=ctx.location_id,
                           action="unit.disposed", idempotency_key=claim.key,
                           details={"disposition": disposition, "rule": decision.explanation, "overridden": overridden},
                           values={"disposition": disposition, "decision_rule": why})
        refund_status = None
        refund_amount = str(refund.amount) if refund is not None else None
        if refund is not None and refund.status == "awaiting_inspection":
            action = "hold" if overridden and decision.refund_action != "none" else decision.refund_action
            amount = rules_domain.refund_amount(refund.paid_amount, action, restocking_fee_pct=decision.restocking_fee_pct,
                                                grade=unit.grade, deductions=decision.deductions)
            threshold = unit.refund_threshold if unit.refund_threshold is not None else policy.approval_threshold
            hold = hold_reasons(amount=amount, threshold=threshold, refund_action=action,
                                serial_mismatch=unit.serial_status == "mismatch", fraud_flag=bool(unit.fraud_flag),
                                overridden=overridden)
            if unit.rma_id is not None and unit.rma_line_id is None:
                hold.append("the item was not on the return authorisation")
            after, settled = settle_refund(actor, refund, unit_inspected_at=unit.inspected_at, amount=amount,
                                         refund_action=action, hold=hold, inspected_by_id=unit.inspected_by_id,
                                         override_by_id=actor.id if overridden else None, reason=why)
            writes += settled
            refund_status, refund_amount = after["status"], str(after["amount"])
        result = DispositionConfirmed(unit.id, unit.lpn, DISPOSITION_STATE[disposition], disposition, ctx.location_code,
                                      why, refund_status, refund_amount, unit.version + 1)
        write(session, [*writes, claim.record(result)])
        expire(session, (ReturnUnit, unit.id), (RefundTrigger, refund.id if refund is not None else None))
        return result

    params = {"unit_id": unit_id, "override": override, "override_reason": override_reason, "v": expected_version}
    return run_idempotent(session, actor, idempotency_key, "confirm_disposition", params, work,
                          result_type=DispositionConfirmed, late_claim=True)
