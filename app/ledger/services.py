"""The ledger service: the only code path that changes a unit's state.

`apply_transition` does the governed write inside the caller's transaction;
`transition_unit` is the stand-alone use case (one transaction, idempotent).
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session, joinedload

from app.auth.roles import Actor
from app.catalog.models import Location
from app.db import utcnow
from app.rows import Insert, Update, insert_row, update_row, write
from app.errors import NotFound, StaleVersion, ValidationFailed
from app.ledger.domain import STATE_LABELS, check_transition
from app.ledger.idempotency import run_idempotent
from app.ledger.models import AuditEntry, Balance, Counter, LedgerEntry, OutboxEvent, ReturnUnit, ledger_writing


def audit(session: Session, actor: Actor, action: str, entity_type: str, entity_id: int, *,
          warehouse_id: int | None = None, reason: str | None = None, details: dict[str, Any] | None = None) -> AuditEntry:
    """Append an audit entry in the caller's transaction."""
    entry = AuditEntry(**audit_values(actor, action, entity_type, entity_id, warehouse_id=warehouse_id, reason=reason,
                                      details=details))
    session.add(entry)
    return entry


def audit_values(actor: Actor, action: str, entity_type: str, entity_id: int, *, warehouse_id: int | None = None,
                 reason: str | None = None, details: dict[str, Any] | None = None) -> dict[str, Any]:
    """The columns of one audit entry (the ORM path and write write the same row)."""
    return {"actor_id": actor.id, "actor_name": actor.name, "action": action, "entity_type": entity_type,
            "entity_id": entity_id, "warehouse_id": warehouse_id, "reason": reason, "details": details or {},
            "at": utcnow()}


def emit(session: Session, type_: str, aggregate_type: str, aggregate_id: int, payload: dict[str, Any]) -> OutboxEvent:
    """Append an outbox event in the caller's transaction (delivered to others later)."""
    event = OutboxEvent(**outbox_values(type_, aggregate_type, aggregate_id, payload))
    session.add(event)
    return event


def outbox_values(type_: str, aggregate_type: str, aggregate_id: int, payload: dict[str, Any]) -> dict[str, Any]:
    """The columns of one outbox event."""
    return {"type": type_, "aggregate_type": aggregate_type, "aggregate_id": aggregate_id, "payload": payload}


def next_number(session: Session, name: str) -> int:
    """The next value of a named counter: a sequence on PostgreSQL, a counter row on SQLite."""
    if session.get_bind().dialect.name == "postgresql":
        return int(session.execute(text(f"SELECT nextval('{name}_seq')")).scalar_one())
    value = session.execute(update(Counter).where(Counter.name == name).values(value=Counter.value + 1).returning(Counter.value)).scalar()
    if value is None:
        session.add(Counter(name=name, value=1))
        session.flush()
        return 1
    return int(value)


def format_lpn(number: int) -> str:
    """The licence plate number of a counter value: 'LP' and at least eight digits."""
    return f"LP{int(number):08d}"


def _bump_balance(session: Session, product_id: int, warehouse_id: int, state: str, delta: int) -> None:
    """Add delta to the (SKU, warehouse, state) balance: an atomic upsert in, a guarded update out."""
    if delta < 0:
        done = session.execute(
            update(Balance).where(Balance.product_id == product_id, Balance.warehouse_id == warehouse_id,
                                  Balance.state == state).values(quantity=Balance.quantity + delta)
        ).rowcount
        if done != 1:
            raise RuntimeError(f"balance ({product_id}, {warehouse_id}, {state}) missing: ledger and balances disagree")
        return
    write(session, [_balance_row(product_id, warehouse_id, state, delta)])


def _balance_row(product_id: int, warehouse_id: int, state: str, delta: int) -> Insert:
    """The balance upsert as a row for write: created at delta, or delta added."""
    return insert_row(Balance, {"product_id": product_id, "warehouse_id": warehouse_id, "state": state, "quantity": delta},
                      conflict=("product_id", "warehouse_id", "state"), add="quantity")


# A unit with what its screens, labels and moves show about it: product, location, warehouse.
WITH_PLACE = (joinedload(ReturnUnit.product), joinedload(ReturnUnit.location), joinedload(ReturnUnit.warehouse))


def lock_unit(session: Session, unit_id: int) -> ReturnUnit:
    """Load a unit with a row lock (SELECT ... FOR UPDATE) so concurrent movers queue.

    Its product, location and warehouse ride along: the refresh would otherwise drop the ones the
    request had loaded, and every use case and screen that locks a unit shows them."""
    unit = session.scalars(
        select(ReturnUnit).where(ReturnUnit.id == unit_id).with_for_update(of=ReturnUnit)
        .options(*WITH_PLACE)
        .execution_options(populate_existing=True)
    ).first()
    if unit is None:
        raise NotFound("No such unit.")
    return unit


def _last_mover(session: Session, unit: ReturnUnit) -> str:
    row = session.execute(
        select(AuditEntry.actor_name, AuditEntry.at).where(AuditEntry.entity_type == "unit", AuditEntry.entity_id == unit.id)
        .order_by(AuditEntry.id.desc()).limit(1)
    ).first()
    return f"{row.actor_name}" if row else "someone else"


def check_version(session: Session, unit: ReturnUnit, expected_version: int | None) -> None:
    """Optimistic check: refuse when the unit changed since the actor loaded it."""
    if expected_version is not None and unit.version != expected_version:
        raise StaleVersion(
            f"Unit {unit.lpn} was already decided by {_last_mover(session, unit)}: it is now {STATE_LABELS[unit.state]}. Nothing was changed."
        )


def apply_transition(session: Session, actor: Actor, unit: ReturnUnit, to_state: str, *, reason: str,
                     to_location: Location | None = None, idempotency_key: str | None = None,
                     action: str = "unit.moved", details: dict[str, Any] | None = None) -> LedgerEntry:
    """Move a (locked or new) unit along one edge, writing ledger, balance, outbox and audit.

    Must run inside the caller's transaction; raises a DomainError and writes nothing on refusal.
    """
    from_state = unit.state if unit.id is not None else None
    reason = _check_move(actor, from_state, to_state, reason, unit.warehouse_id,
                         to_location.warehouse_id if to_location is not None else None)
    from_location_id = unit.location_id if from_state is not None else None
    token = ledger_writing.set(True)
    try:
        unit.state = to_state
    finally:
        ledger_writing.reset(token)
    unit.state_changed_at = utcnow()
    if to_location is not None:
        unit.location_id = to_location.id
    if unit.id is None:
        session.add(unit)
    session.flush()  # version_id_col turns a concurrent write into StaleDataError here
    ledger, event, trail = _movement_values(actor, unit.id, unit.lpn, unit.product_id, unit.warehouse_id, from_state,
                                            to_state, from_location_id, unit.location_id, reason=reason, action=action,
                                            details=details, idempotency_key=idempotency_key)
    entry = LedgerEntry(**ledger)
    session.add(entry)
    if from_state is not None:
        _bump_balance(session, unit.product_id, unit.warehouse_id, from_state, -1)
    _bump_balance(session, unit.product_id, unit.warehouse_id, to_state, +1)
    # The ledger entry went out with the balance statements (autoflush), so entry.id is set; the
    # outbox event and audit entry go with the use case's next flush, batched with its other rows.
    session.add(OutboxEvent(**event))
    session.add(AuditEntry(**trail))
    return entry


def _check_move(actor: Actor, from_state: str | None, to_state: str, reason: str | None, warehouse_id: int | None,
                to_location_warehouse_id: int | None) -> str:
    """Refuse a move the rules do not allow (a DomainError, nothing written); the reason, stripped."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed("A reason is required.")
    check_transition(from_state, to_state, actor.role)
    if to_location_warehouse_id is not None and warehouse_id is not None and to_location_warehouse_id != warehouse_id:
        raise ValidationFailed("That location is in another warehouse.")
    return reason


def move_rows(actor: Actor, unit: Any, to_state: str, *, reason: str, to_location_id: int | None = None,
              to_location_warehouse_id: int | None = None, action: str = "unit.moved",
              details: dict[str, Any] | None = None, values: dict[str, Any] | None = None) -> list[Insert | Update]:
    """apply_transition for a unit the caller has locked and read as a plain row (`unit`: its id,
    lpn, product_id, warehouse_id, state and location_id), as rows for write: the unit's
    UPDATE (with `values`, other columns to set in the same write, and its version stepped), the
    ledger entry, both balances, the outbox event and the audit entry, the rows apply_transition
    writes. Raises a DomainError and builds nothing when refused."""
    reason = _check_move(actor, unit.state, to_state, reason, unit.warehouse_id, to_location_warehouse_id)
    location_id = to_location_id if to_location_id is not None else unit.location_id
    sets = {**(values or {}), "state": to_state, "state_changed_at": utcnow(), "location_id": location_id}
    ledger, event, trail = _movement_values(actor, unit.id, unit.lpn, unit.product_id, unit.warehouse_id, unit.state,
                                            to_state, unit.location_id, location_id, reason=reason, action=action,
                                            details=details, idempotency_key=None)
    return [update_row(ReturnUnit, {"id": unit.id}, sets, bump=("version",)), insert_row(LedgerEntry, ledger),
            update_row(Balance, {"product_id": unit.product_id, "warehouse_id": unit.warehouse_id, "state": unit.state},
                       {}, add=("quantity", -1)),
            _balance_row(unit.product_id, unit.warehouse_id, to_state, +1),
            insert_row(OutboxEvent, event), insert_row(AuditEntry, trail)]


def _movement_values(actor: Actor, unit_id: int, lpn: str, product_id: int, warehouse_id: int, from_state: str | None,
                     to_state: str, from_location_id: int | None, to_location_id: int | None, *, reason: str,
                     action: str, details: dict[str, Any] | None,
                     idempotency_key: str | None) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The ledger entry, outbox event and audit entry of one state change, as columns."""
    ledger = {"unit_id": unit_id, "product_id": product_id, "warehouse_id": warehouse_id, "from_state": from_state,
              "to_state": to_state, "from_location_id": from_location_id, "to_location_id": to_location_id,
              "actor_id": actor.id, "actor_role": actor.role, "reason": reason, "idempotency_key": idempotency_key}
    payload = {"unit_id": unit_id, "lpn": lpn, "product_id": product_id, "warehouse_id": warehouse_id,
               "from_state": from_state, "to_state": to_state, "location_id": to_location_id, "reason": reason}
    return (ledger, outbox_values("unit.state_changed", "unit", unit_id, payload),
            audit_values(actor, action, "unit", unit_id, warehouse_id=warehouse_id, reason=reason,
                         details={"from_state": from_state, "to_state": to_state, **(details or {})}))


def receive_rows(actor: Actor, unit: dict[str, Any], *, reason: str, action: str = "unit.received",
                 details: dict[str, Any] | None = None) -> list[Insert]:
    """A new unit entering `received`, as rows for write: the unit row, its ledger
    entry, the balance, the outbox event and the audit entry, the same rows apply_transition writes.

    `unit` holds the unit's columns, its id and lpn included (allocated beforehand with next_id and
    the lpn sequence). Raises a DomainError and builds nothing when the edge is refused.
    """
    reason = _check_move(actor, None, "received", reason, None, None)
    now = utcnow()
    row = {**unit, "state": "received", "state_changed_at": now, "received_at": now, "version": 1}
    ledger, event, trail = _movement_values(actor, row["id"], row["lpn"], row["product_id"], row["warehouse_id"], None,
                                            "received", None, row.get("location_id"), reason=reason, action=action,
                                            details=details, idempotency_key=None)
    return [insert_row(ReturnUnit, row), insert_row(LedgerEntry, ledger),
            _balance_row(row["product_id"], row["warehouse_id"], "received", +1),
            insert_row(OutboxEvent, event), insert_row(AuditEntry, trail)]


def transition_unit(session: Session, actor: Actor, *, unit_id: int, to_state: str, reason: str,
                    idempotency_key: str | None, to_location_id: int | None = None,
                    expected_version: int | None = None) -> dict[str, Any]:
    """Use case: move one unit to a new state, once, whatever the retries."""
    params = {"unit_id": unit_id, "to_state": to_state, "reason": reason, "to_location_id": to_location_id,
              "expected_version": expected_version}

    def work() -> dict[str, Any]:
        from app.auth.scoping import ensure_unit_visible

        unit = lock_unit(session, unit_id)
        ensure_unit_visible(session, actor, unit)
        check_version(session, unit, expected_version)
        location = session.get(Location, to_location_id) if to_location_id is not None else None
        if to_location_id is not None and location is None:
            raise ValidationFailed("No such location.")
        entry = apply_transition(session, actor, unit, to_state, reason=reason, to_location=location,
                                 idempotency_key=idempotency_key)
        return {"unit_id": unit.id, "ledger_id": entry.id, "state": unit.state, "version": unit.version}

    return run_idempotent(session, actor, idempotency_key, "transition_unit", params, work)


def ledger_sums(session: Session) -> dict[tuple[int, int, str], int]:
    """Balances recomputed from the ledger: +1 into a state, -1 out of it."""
    sums: dict[tuple[int, int, str], int] = {}
    rows = session.execute(
        select(LedgerEntry.product_id, LedgerEntry.warehouse_id, LedgerEntry.to_state, func.count())
        .group_by(LedgerEntry.product_id, LedgerEntry.warehouse_id, LedgerEntry.to_state)
    ).all()
    for p, w, s, n in rows:
        sums[(p, w, s)] = sums.get((p, w, s), 0) + n
    rows = session.execute(
        select(LedgerEntry.product_id, LedgerEntry.warehouse_id, LedgerEntry.from_state, func.count())
        .where(LedgerEntry.from_state.is_not(None))
        .group_by(LedgerEntry.product_id, LedgerEntry.warehouse_id, LedgerEntry.from_state)
    ).all()
    for p, w, s, n in rows:
        sums[(p, w, s)] = sums.get((p, w, s), 0) - n
    return {k: v for k, v in sums.items() if v != 0}


def balance_table(session: Session) -> dict[tuple[int, int, str], int]:
    """The balances table as a dict, zero rows left out."""
    return {(b.product_id, b.warehouse_id, b.state): b.quantity for b in session.scalars(select(Balance)) if b.quantity}
