"""Choosing the warehouse a person works at.

The choice lives in the person's session (the views keep it): nothing is written to the database.
It is refused, changing nothing, for a warehouse the person may not work at, and while a parcel is
open at another warehouse: its items go on being received where it was opened, so the screens
must not show another place until it is closed."""
from __future__ import annotations

from sqlalchemy.orm import Session

from app.auth.roles import Actor
from app.errors import Conflict, NotPermitted, ValidationFailed
from app.home import queries
from app.home.queries import Place
from app.words import N_


def choose_place(session: Session, actor: Actor, warehouse_id: int | None, *, parcel_id: int | None) -> Place:
    """The warehouse `actor` may switch to now (`parcel_id`: the parcel the handheld holds), or a refusal."""
    if not actor.can("receive"):
        raise NotPermitted(N_("Only people who receive work at a warehouse."))
    allowed = {place.id: place for place in queries.places(session, actor)}
    place = allowed.get(warehouse_id) if warehouse_id is not None else None
    if place is None:
        raise ValidationFailed(N_("That is not one of your warehouses: pick one from the list. Nothing was changed."))
    parcel = queries.open_parcel(session, actor, parcel_id)
    if parcel is not None and parcel.warehouse_id != place.id:
        raise Conflict(N_("Parcel %(code)s is still open at %(open_at)s: close it before you switch to %(place)s. "
                          "Nothing was changed."), code=parcel.scanned_code, open_at=parcel.warehouse_code, place=place.code)
    return place
