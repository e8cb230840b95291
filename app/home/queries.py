"""The start pages' reads: what a person did today at a warehouse, where they may work, the parcel
that keeps them where they are.

Read-only, scoped to the actor (app/auth/scoping.py)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NamedTuple

from sqlalchemy import case, func, literal, select
from sqlalchemy.orm import Session

from app.auth.roles import Actor
from app.auth.scoping import scope_warehouses
from app.catalog.models import Warehouse
from app.ledger.models import AuditEntry
from app.receiving.models import Parcel
from app.receiving.queries import scope_parcels

# The audit actions counted as a person's work, by what the start page calls them.
WORK_ACTIONS = {"parcel.opened": "parcels", "unit.received": "received", "unit.inspected": "inspected",
                "unit.disposed": "disposed"}
# Audit ids grow with time (each entry's `at` is its writer's clock): the entries of today are
# those after the last one older than this margin before the day began, so the read walks the
# key back over today's entries instead of the whole trail, whatever clock skew between servers.
CLOCK_MARGIN = timedelta(hours=1)


@dataclass(frozen=True)
class WorkToday:
    """A person's own work at one warehouse since the day began: parcels opened, units received,
    units inspected, units given their disposition (each unit counted once per kind)."""

    parcels: int = 0
    received: int = 0
    inspected: int = 0
    disposed: int = 0


def work_today(session: Session, actor: Actor, warehouse_id: int, since: datetime) -> WorkToday:
    """What the actor did at `warehouse_id` since `since`, from the audit trail (every scan,
    inspection and disposition writes its entry in the transaction that makes it)."""
    a = AuditEntry.__table__
    older = (select(a.c.id).where(a.c.at < since - CLOCK_MARGIN).order_by(a.c.id.desc()).limit(1)
             .scalar_subquery())
    kind = case(*((a.c.action == action, literal(name)) for action, name in WORK_ACTIONS.items()))
    rows = session.execute(
        select(kind.label("kind"), func.count(func.distinct(a.c.entity_id)))
        .where(a.c.id > func.coalesce(older, 0), a.c.at >= since, a.c.actor_id == actor.id,
               a.c.warehouse_id == warehouse_id, a.c.action.in_(list(WORK_ACTIONS)))
        .group_by(kind)).all()
    return WorkToday(**{name: count for name, count in rows})


class Place(NamedTuple):
    """A warehouse as the header and the start pages name it."""

    id: int
    code: str
    name: str


def places(session: Session, actor: Actor) -> list[Place]:
    """The warehouses in use the actor may work at, by code: staff every one, a partner its
    organisation's (a retired warehouse is offered to nobody)."""
    w = Warehouse.__table__
    return [Place(*r) for r in session.execute(scope_warehouses(select(w.c.id, w.c.code, w.c.name)
                                                                .where(w.c.active.is_(True)), actor)
                                               .order_by(w.c.code)).all()]


class OpenParcel(NamedTuple):
    """A parcel still being received, where."""

    id: int
    scanned_code: str
    warehouse_id: int
    warehouse_code: str


def open_parcel(session: Session, actor: Actor, parcel_id: int | None) -> OpenParcel | None:
    """The open parcel this person has in hand: the handheld's (`parcel_id`) if it is still open,
    else the newest one they opened and have not closed; None when there is none."""
    p, w = Parcel.__table__, Warehouse.__table__
    mine = p.c.opened_by_id == actor.id
    in_hand = (p.c.id == parcel_id) | mine if parcel_id is not None else mine
    first = case((p.c.id == parcel_id, 0), else_=1) if parcel_id is not None else literal(1)
    row = session.execute(scope_parcels(
        select(p.c.id, p.c.scanned_code, p.c.warehouse_id, w.c.code).join_from(p, w, w.c.id == p.c.warehouse_id)
        .where(p.c.status == "open", in_hand).order_by(first, p.c.id.desc()).limit(1), actor)).first()
    return OpenParcel(*row) if row else None
