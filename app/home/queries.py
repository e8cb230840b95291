"""The header's reads: where a person may work, the parcel that keeps them where they are.

Read-only, scoped to the actor (app/auth/scoping.py)."""
from __future__ import annotations

from typing import NamedTuple

from sqlalchemy import case, literal, select
from sqlalchemy.orm import Session

from app.auth.roles import Actor
from app.auth.scoping import scope_warehouses
from app.catalog.models import Warehouse
from app.receiving.models import Parcel
from app.receiving.queries import scope_parcels

class Place(NamedTuple):
    """A warehouse as the header and the start pages name it."""

    id: int
    code: str
    name: str


def places(session: Session, actor: Actor) -> list[Place]:
    """The warehouses the actor may work at, by code: staff every one, a partner its organisation's."""
    w = Warehouse.__table__
    return [Place(*r) for r in session.execute(scope_warehouses(select(w.c.id, w.c.code, w.c.name), actor)
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
