"""Reads of inspections' photos: what an actor may see of them."""
from __future__ import annotations

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session

from app.auth.roles import Actor
from app.auth.scoping import is_staff
from app.errors import NotFound
from app.inspection.models import Photo
from app.ledger.models import ReturnUnit
from app.ledger.queries import scope_units


def scope_photos(stmt: Select, actor: Actor) -> Select:
    """Limit a select over Photo to the photos of units the actor may see."""
    return stmt.where(or_(is_staff(actor), Photo.unit_id.in_(scope_units(select(ReturnUnit.id), actor))))


def load_photo(session: Session, actor: Actor, photo_id: int) -> Photo:
    """A photo the actor may see, or NotFound."""
    photo = session.scalars(scope_photos(select(Photo).where(Photo.id == photo_id), actor)).first()
    if photo is None:
        raise NotFound("No such photo.")
    return photo
