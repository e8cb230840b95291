"""The one writer of a unit's state, and of the audit trail and the outbox.

A unit changes state only through `move_unit`, which returns every row of the move: the unit's
own row, the immutable ledger entry, both balances, the outbox event and the audit entry. The
use case sends them with the rest of its rows (app.rows.write), in its one transaction, so that
they are all written or none is. The edge and the actor's role are checked first
(app.ledger.domain): a refused move builds nothing.
"""
from __future__ import annotations

from typing import Any, Protocol

from app.auth.roles import Actor
from app.db import utcnow
from app.errors import ValidationFailed
from app.ledger.domain import check_transition
from app.ledger.models import AuditEntry, Balance, LedgerEntry, OutboxEvent, ReturnUnit
from app.rows import Insert, Row, insert_row, update_row


class UnitRef(Protocol):
    """What a move needs of a unit as it is now (a locked row): state None for a unit not yet in the building."""

    id: int
    lpn: str
    product_id: int
    warehouse_id: int
    state: str | None
    location_id: int | None


def audit_row(actor: Actor, action: str, entity_type: str, entity_id: int, *, warehouse_id: int | None = None,
              reason: str | None = None, details: dict[str, Any] | None = None) -> Insert:
    """One audit entry: who did what to which entity, when and why."""
    return insert_row(AuditEntry, {"actor_id": actor.id, "actor_name": actor.name, "action": action,
                                   "entity_type": entity_type, "entity_id": entity_id, "warehouse_id": warehouse_id,
                                   "reason": reason, "details": details or {}, "at": utcnow()})


def event_row(type_: str, aggregate_type: str, aggregate_id: int, payload: dict[str, Any]) -> Insert:
    """One outbox event, for the systems that follow Dockhand (delivered after the commit)."""
    return insert_row(OutboxEvent, {"type": type_, "aggregate_type": aggregate_type, "aggregate_id": aggregate_id,
                                    "payload": payload})


def format_lpn(number: int) -> str:
    """The licence plate number of a counter value: 'LP' and at least eight digits."""
    return f"LP{int(number):08d}"


def move_unit(actor: Actor, unit: UnitRef, to_state: str, *, reason: str | None, to_location_id: int | None = None,
              to_location_warehouse_id: int | None = None, action: str = "unit.moved",
              details: dict[str, Any] | None = None, values: dict[str, Any] | None = None,
              idempotency_key: str | None = None, correction: bool = False) -> list[Row]:
    """The rows of one move of `unit` to `to_state` (and `to_location_id`, if given).

    A unit not yet in the building (`unit.state` None) is inserted, `values` holding its columns;
    otherwise its row is updated (with `values`, other columns set in the same write) and its
    version stepped, and the caller must hold its row lock. Raises a DomainError, building nothing,
    for a move the state machine or the actor's role refuses, without a reason, or to a location
    of another warehouse. `correction`: a reconciliation's move to `missing` or back (its edges only)."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed("A reason is required.")
    check_transition(unit.state, to_state, actor.role, correction=correction)
    if to_location_warehouse_id is not None and to_location_warehouse_id != unit.warehouse_id:
        raise ValidationFailed("That location is in another warehouse.")
    now = utcnow()
    location_id = to_location_id if to_location_id is not None else unit.location_id
    from_location_id = unit.location_id if unit.state is not None else None
    sets = {**(values or {}), "state": to_state, "state_changed_at": now, "location_id": location_id}
    if unit.state is None:
        unit_row: Row = insert_row(ReturnUnit, {**sets, "id": unit.id, "lpn": unit.lpn, "product_id": unit.product_id,
                                                "warehouse_id": unit.warehouse_id, "received_at": now, "version": 1})
    else:
        unit_row = update_row(ReturnUnit, {"id": unit.id}, sets, bump=("version",))
    ledger = {"unit_id": unit.id, "product_id": unit.product_id, "warehouse_id": unit.warehouse_id,
              "from_state": unit.state, "to_state": to_state, "from_location_id": from_location_id,
              "to_location_id": location_id, "actor_id": actor.id, "actor_role": actor.role, "reason": reason,
              "idempotency_key": idempotency_key}
    payload = {"unit_id": unit.id, "lpn": unit.lpn, "product_id": unit.product_id, "warehouse_id": unit.warehouse_id,
               "from_state": unit.state, "to_state": to_state, "location_id": location_id, "reason": reason}
    rows: list[Row] = [unit_row, insert_row(LedgerEntry, ledger)]
    if unit.state is not None:
        rows.append(update_row(Balance, {"product_id": unit.product_id, "warehouse_id": unit.warehouse_id,
                                         "state": unit.state}, {}, add=("quantity", -1)))
    rows += [insert_row(Balance, {"product_id": unit.product_id, "warehouse_id": unit.warehouse_id, "state": to_state,
                                  "quantity": 1}, conflict=("product_id", "warehouse_id", "state"), add="quantity"),
             event_row("unit.state_changed", "unit", unit.id, payload),
             audit_row(actor, action, "unit", unit.id, warehouse_id=unit.warehouse_id, reason=reason,
                       details={"from_state": unit.state, "to_state": to_state, **(details or {})})]
    return rows
