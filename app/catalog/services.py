"""Catalog lookups shared by the use cases."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.catalog.models import Location
from app.errors import ValidationFailed


def location_of_type(session: Session, warehouse_id: int, type_: str) -> Location:
    """The warehouse's location of a type (the first one, by id), or a clear refusal."""
    loc = session.scalars(select(Location).where(Location.warehouse_id == warehouse_id, Location.type == type_)
                          .order_by(Location.id).limit(1)).first()
    if loc is None:
        raise no_location(type_)
    return loc


def no_location(type_: str) -> ValidationFailed:
    """The refusal when a warehouse has no location of the type a move needs."""
    return ValidationFailed(f"This warehouse has no {type_.replace('_', ' ')} location. Ask an admin to add one.")
