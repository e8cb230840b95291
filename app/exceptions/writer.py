"""The one writer of receiving exceptions: opening one, and resolving it."""
from __future__ import annotations

from typing import Any

from app.auth.roles import Actor
from app.db import utcnow
from app.errors import ValidationFailed
from app.exceptions.domain import due_at
from app.exceptions.models import EXCEPTION_TYPES, ReturnException
from app.ledger.writer import audit_row, event_row
from app.rows import Row, insert_row, update_row
from app.words import N_


def open_exception(actor: Actor, exception_id: int, type_: str, *, warehouse_id: int, merchant_id: int | None = None,
                   rma_id: int | None = None, rma_line_id: int | None = None, unit_id: int | None = None,
                   parcel_id: int | None = None, product_id: int | None = None, quantity: int = 1,
                   value: Any = None, details: dict[str, Any] | None = None) -> list[Row]:
    """The rows of a new typed exception (its id allocated by the caller: app.rows.allocate_ids),
    with its outbox event and audit entry."""
    if type_ not in EXCEPTION_TYPES:
        raise ValidationFailed(N_("Unknown exception type '%(type)s'."), type=type_)
    now = utcnow()
    row = {"id": exception_id, "type": type_, "warehouse_id": warehouse_id, "merchant_id": merchant_id, "rma_id": rma_id,
           "rma_line_id": rma_line_id, "unit_id": unit_id, "parcel_id": parcel_id, "product_id": product_id,
           "quantity": quantity, "value": value, "details": details or {}, "opened_by_id": actor.id,
           "opened_at": now, "due_at": due_at(type_, now)}
    return [insert_row(ReturnException, row),
            event_row("exception.opened", "exception", exception_id, {"exception_id": exception_id, "type": type_,
                                                                      "rma_id": rma_id, "unit_id": unit_id,
                                                                      "warehouse_id": warehouse_id}),
            audit_row(actor, "exception.opened", "exception", exception_id, warehouse_id=warehouse_id,
                      details={"type": type_, **(details or {})})]


def resolve_exception(actor: Actor, exc: Any, resolution: str, reason: str, details: dict[str, Any] | None = None,
                      *, values: dict[str, Any] | None = None) -> list[Row]:
    """The rows that close an open exception the caller has locked (`exc`: id, type, warehouse_id,
    unit_id, rma_id, details) with a resolution and a reason (`values`: other columns set in the
    same write), with its outbox event and audit entry."""
    sets = {**(values or {}), "status": "resolved", "resolution": resolution, "resolution_reason": reason,
            "resolved_at": utcnow(), "resolved_by_id": actor.id}
    if details:
        sets["details"] = {**(exc.details or {}), "resolution": details}
    rma_id = sets.get("rma_id", exc.rma_id)
    return [update_row(ReturnException, {"id": exc.id}, sets, bump=("version",)),
            event_row("exception.resolved", "exception", exc.id,
                      {"exception_id": exc.id, "type": exc.type, "resolution": resolution, "unit_id": exc.unit_id,
                       "rma_id": rma_id, "warehouse_id": exc.warehouse_id}),
            audit_row(actor, "exception.resolved", "exception", exc.id, warehouse_id=exc.warehouse_id, reason=reason,
                      details={"type": exc.type, "resolution": resolution, **(details or {})})]


def assign_exception(actor: Actor, exc: Any, owner_id: int | None, owner_name: str | None) -> list[Row]:
    """The rows that give an exception the caller has locked (`exc`: id, warehouse_id, owner_id,
    version) to `owner_id` (None: to nobody), with its audit entry (before and after)."""
    return [update_row(ReturnException, {"id": exc.id, "version": exc.version}, {"owner_id": owner_id}, bump=("version",)),
            audit_row(actor, "exception.assigned", "exception", exc.id, warehouse_id=exc.warehouse_id,
                      details={"before": {"owner_id": exc.owner_id}, "after": {"owner_id": owner_id, "owner": owner_name}})]
