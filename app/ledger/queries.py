"""Reads of units shared by the use cases and screens: what an actor may see of them."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, literal_column, select, tuple_
from sqlalchemy.orm import Session
from sqlalchemy.sql.base import ExecutableOption

from app.auth.roles import Actor
from app.auth.scoping import visible
from app.errors import NotFound
from app.ledger.domain import FeedCursor
from app.ledger.models import OutboxEvent, ReturnUnit


def scope_units(stmt: Select, actor: Actor) -> Select:
    """Limit a select over ReturnUnit to what the actor may see (app.auth.scoping)."""
    units = ReturnUnit.__table__  # table columns: a plain read stays a plain read
    return stmt.where(visible(actor, units.c.warehouse_id, units.c.merchant_id))


def ensure_unit_visible(session: Session, actor: Actor, unit: Any) -> None:
    """Raise NotFound (not 403: no leaking of existence) for a unit outside the actor's scope.
    `unit`: anything with the unit's `id`."""
    if actor.is_partner and session.execute(
            scope_units(select(ReturnUnit.id).where(ReturnUnit.id == unit.id), actor).limit(1)).first() is None:
        raise NotFound("No such unit.")


def load_unit(session: Session, actor: Actor, unit_id: int, *, options: Sequence[ExecutableOption] = ()) -> ReturnUnit:
    """A unit the actor may see, or NotFound; `options` (e.g. joinedload) ride along."""
    unit = session.scalars(scope_units(select(ReturnUnit).where(ReturnUnit.id == unit_id).options(*options), actor)).first()
    if unit is None:
        raise NotFound("No such unit.")
    return unit


def unit_id_by_lpn(session: Session, actor: Actor, lpn: str) -> int | None:
    """The id of the unit with this licence plate, if the actor may see it."""
    return session.scalars(scope_units(select(ReturnUnit.id).where(ReturnUnit.lpn == lpn), actor)).first()


# Every transaction with an id below this one has ended (PostgreSQL): no event of theirs can appear later.
_OLDEST_RUNNING = literal_column("pg_snapshot_xmin(pg_current_snapshot())::text::bigint")


def feed_page(session: Session, after: FeedCursor, limit: int) -> list[tuple[FeedCursor, Any]]:
    """The events after `after`, in feed order, at most `limit`, each with its cursor (rows with
    id, tx, at, type, aggregate_type, aggregate_id, payload: plain rows, no ORM objects to build).

    An event id is taken at insert, so a transaction that commits late can make a smaller id
    visible after a reader went past it. On PostgreSQL the feed is ordered by (writing transaction,
    id) and hands out only the events of transactions older than every one still running: a late
    commit holds the feed back instead of being skipped. SQLite's writers take turns, so its ids
    are in commit order already."""
    e = OutboxEvent.__table__
    columns = select(e.c.id, e.c.tx, e.c.at, e.c.type, e.c.aggregate_type, e.c.aggregate_id, e.c.payload)
    if session.get_bind().dialect.name == "postgresql":
        stmt = (columns.where(tuple_(e.c.tx, e.c.id) > tuple_(after.tx, after.id), e.c.tx < _OLDEST_RUNNING)
                .order_by(e.c.tx, e.c.id).limit(limit))
        return [(FeedCursor(row.tx or 0, row.id), row) for row in session.execute(stmt)]
    stmt = columns.where(e.c.id > after.id).order_by(e.c.id).limit(limit)
    return [(FeedCursor(0, row.id), row) for row in session.execute(stmt)]
