"""The one writer of refund triggers: opening one, and every step along its lifecycle.

Each step (app.refunds.domain's edges) writes the trigger's new columns, a refund event, an
outbox event and an audit entry, as rows the use case sends with the rest of its rows."""
from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace
from typing import Any

from app.auth.roles import Actor
from app.db import to_money, utcnow
from app.errors import Conflict
from app.ledger.writer import audit_row, event_row
from app.refunds import domain
from app.refunds.models import RefundEvent, RefundTrigger
from app.rows import Row, insert_row, update_row
from app.words import N_


def _payload(refund: Any, status: str) -> dict[str, Any]:
    resolution = getattr(refund, "resolution", None) or "refund"
    return {"refund_id": refund.id, "unit_id": refund.unit_id, "rma_id": refund.rma_id, "status": status,
            "amount": str(refund.amount), "currency": refund.currency, "resolution": resolution,
            **({"exchange_sku": refund.exchange_sku} if resolution == "exchange" else {})}


def open_trigger(actor: Actor, refund_id: int, *, unit_id: int, rma_id: int | None, warehouse_id: int,
                 paid_amount: Decimal | None, currency: str | None, resolution: str | None = None,
                 exchange_sku: str | None = None) -> list[Row]:
    """The rows of a unit's new refund trigger, awaiting inspection, for the amount paid, with its
    return line's resolution (refund when none). One per unit: the caller holds the unit's lock
    and knows it has none (a unique constraint is the backstop)."""
    paid = to_money(paid_amount or 0)
    resolution = resolution or "refund"
    trigger = SimpleNamespace(id=refund_id, unit_id=unit_id, rma_id=rma_id, warehouse_id=warehouse_id,
                              status=domain.AWAITING_INSPECTION, currency=currency or "USD", paid_amount=paid, amount=paid,
                              resolution=resolution, exchange_sku=exchange_sku if resolution == "exchange" else None)
    return [insert_row(RefundTrigger, vars(trigger)),
            insert_row(RefundEvent, {"refund_id": refund_id, "from_status": None, "to_status": domain.AWAITING_INSPECTION,
                                     "amount": paid, "actor_id": actor.id, "reason": "unit received"}),
            event_row("refund.awaiting_inspection", "refund", refund_id, _payload(trigger, domain.AWAITING_INSPECTION)),
            audit_row(actor, "refund.opened", "refund", refund_id, warehouse_id=warehouse_id,
                      details={"unit_id": unit_id, "amount": str(paid)})]


def step_refund(actor: Actor, refund: Any, steps: list[domain.Step], *, values: dict[str, Any] | None = None,
                inspected_at: Any = None) -> tuple[dict[str, Any], list[Row]]:
    """The rows of `steps`, lifecycle edges taken in order, for a trigger the caller has locked
    (`refund`: a row with id, unit_id, rma_id, warehouse_id, status, currency, paid_amount, amount,
    inspected_at), with `values`, other columns set in the same write. Returns the trigger's columns
    after the steps, and the rows: its UPDATE (version stepped), then each edge's refund event,
    outbox event and audit entry. Raises IllegalTransition for an edge the lifecycle lacks, and
    Conflict for a release before the unit's inspection."""
    after = SimpleNamespace(**{**refund._asdict(), **(values or {})})
    if inspected_at is not None:
        after.inspected_at = inspected_at
    changed = dict(values or {})
    rows: list[Row] = []
    for to_status, reason, details in steps:
        from_status = after.status
        domain.check_refund_edge(from_status, to_status)
        if to_status in (domain.RELEASED, domain.ACKNOWLEDGED) and after.inspected_at is None:
            raise Conflict(N_("A refund cannot be released before its unit has been inspected."))
        now = utcnow()
        fields: dict[str, Any] = {"status": to_status}
        if to_status == domain.PENDING_APPROVAL:
            fields["pending_since"] = now
        elif to_status == domain.RELEASED:
            fields["released_at"] = now
        elif to_status == domain.ACKNOWLEDGED:
            fields["acknowledged_at"] = now
        for name, value in fields.items():
            setattr(after, name, value)
        changed.update(fields)
        rows += [insert_row(RefundEvent, {"refund_id": refund.id, "from_status": from_status, "to_status": to_status,
                                          "amount": after.amount, "actor_id": actor.id, "reason": reason,
                                          "details": details or {}}),
                 event_row(f"refund.{to_status}", "refund", refund.id, _payload(after, to_status)),
                 *([event_row("exchange.ship_replacement", "refund", refund.id, _payload(after, to_status))]
                   if to_status == domain.RELEASED and getattr(after, "resolution", None) == "exchange" else []),
                 audit_row(actor, f"refund.{to_status}", "refund", refund.id, warehouse_id=refund.warehouse_id,
                           reason=reason, details={"from": from_status, "to": to_status, "amount": str(after.amount),
                                                   **(details or {})})]
    return vars(after), [update_row(RefundTrigger, {"id": refund.id}, changed, bump=("version",)), *rows]


def settle_refund(actor: Actor, refund: Any, *, amount: Decimal, refund_action: str, hold: list[str],
                  unit_inspected_at: Any, inspected_by_id: int | None, override_by_id: int | None = None,
                  reason: str) -> tuple[dict[str, Any], list[Row]]:
    """The rows of settling a locked trigger after its unit's disposition (app.refunds.domain.settlement):
    held for approval, released, or rejected; with who inspected and who overrode, for four-eyes."""
    values, steps = domain.settlement(refund.status, refund.paid_amount, amount=to_money(amount),
                                      refund_action=refund_action, hold=hold,
                                      unit_inspected=unit_inspected_at is not None, reason=reason)
    values.update({"inspected_at": utcnow(), "inspected_by_id": inspected_by_id, "override_by_id": override_by_id})
    return step_refund(actor, refund, steps, values=values)
