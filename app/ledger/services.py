"""Ledger use cases and the reads every use case that moves a unit starts with.

A unit moves only through app.ledger.writer.move_unit; this module locks units, checks the
version a person saw, allocates licence plates, and holds the stand-alone move (transition_unit).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import Select, bindparam, func, select, text, update
from sqlalchemy.orm import Session

from app.auth.roles import Actor
from app.catalog.models import Location
from app.errors import NotFound, StaleVersion, ValidationFailed
from app.ledger.domain import STATE_LABELS
from app.ledger.idempotency import Result, run_idempotent
from app.ledger.models import AuditEntry, Balance, Counter, LedgerEntry, ReturnUnit
from app.ledger.writer import move_unit
from app.rows import expire, write


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


@lru_cache(maxsize=1)
def _lock_unit_statement() -> Select:
    units = ReturnUnit.__table__
    return select(units).where(units.c.id == bindparam("unit_id")).with_for_update(of=units)


def lock_unit(session: Session, unit_id: int) -> Any:
    """A unit's row, locked (SELECT ... FOR UPDATE) so that concurrent movers queue: every column
    of the unit, as a plain row. NotFound when there is none; the caller checks the actor's scope."""
    row = session.execute(_lock_unit_statement(), {"unit_id": unit_id}).first()
    if row is None:
        raise NotFound("No such unit.")
    return row


def _last_mover(session: Session, unit_id: int) -> str:
    row = session.execute(
        select(AuditEntry.actor_name).where(AuditEntry.entity_type == "unit", AuditEntry.entity_id == unit_id)
        .order_by(AuditEntry.id.desc()).limit(1)
    ).first()
    return f"{row.actor_name}" if row else "someone else"


def check_version(session: Session, unit: Any, expected_version: int | None) -> None:
    """Optimistic check: refuse when the unit changed since the actor loaded it, saying who changed it."""
    if expected_version is not None and unit.version != expected_version:
        raise StaleVersion(
            f"Unit {unit.lpn} was already decided by {_last_mover(session, unit.id)}: it is now "
            f"{STATE_LABELS[unit.state]}. Nothing was changed."
        )


@dataclass(frozen=True)
class UnitMoved(Result):
    """transition_unit's answer: the unit's state and version after the move."""

    unit_id: int
    state: str
    version: int


def transition_unit(session: Session, actor: Actor, *, unit_id: int, to_state: str, reason: str,
                    idempotency_key: str | None, to_location_id: int | None = None,
                    expected_version: int | None = None) -> UnitMoved:
    """Use case: move one unit to a new state (and location), once, whatever the retries."""
    from app.ledger.queries import ensure_unit_visible

    params = {"unit_id": unit_id, "to_state": to_state, "reason": reason, "to_location_id": to_location_id,
              "expected_version": expected_version}

    def work() -> UnitMoved:
        unit = lock_unit(session, unit_id)
        ensure_unit_visible(session, actor, unit)
        check_version(session, unit, expected_version)
        location = session.get(Location, to_location_id) if to_location_id is not None else None
        if to_location_id is not None and location is None:
            raise ValidationFailed("No such location.")
        write(session, move_unit(actor, unit, to_state, reason=reason, to_location_id=to_location_id,
                                 to_location_warehouse_id=location.warehouse_id if location else None,
                                 idempotency_key=idempotency_key))
        expire(session, (ReturnUnit, unit.id))
        return UnitMoved(unit.id, to_state, unit.version + 1)

    return run_idempotent(session, actor, idempotency_key, "transition_unit", params, work, result_type=UnitMoved)


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

