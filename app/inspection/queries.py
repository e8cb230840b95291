"""Reads of inspections: what an actor may see of their photos; the current checklist of a category."""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import Select, bindparam, or_, select
from sqlalchemy.orm import Session

from app.auth.roles import Actor
from app.auth.scoping import is_staff
from app.errors import NotFound
from app.inspection.models import ChecklistVersion, Photo
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


@dataclass(frozen=True)
class Checklist:
    """A category's checklist as the handheld shows it: its newest version (None, with no items,
    when the category has none yet)."""

    version: int | None
    items: list[dict[str, Any]]


def checklist_for(session: Session, category: str) -> Checklist:
    """The current checklist of a category (no items when it has none)."""
    row = session.execute(_checklist_statement(), {"category": category}).first()
    return Checklist(row.version, list(row.items)) if row is not None else Checklist(None, [])


@lru_cache(maxsize=1)
def _checklist_statement() -> Select:
    v = ChecklistVersion.__table__
    return (select(v.c.version, v.c["items"]).where(v.c.category == bindparam("category"))
            .order_by(v.c.version.desc()).limit(1))


def current_checklist_columns(category: Any) -> tuple[Any, Any]:
    """Two scalar subqueries for a statement that reads a product (`category`: its category column):
    the current checklist's items (`checklist`) and version (`checklist_version`), NULL when none."""
    v = ChecklistVersion.__table__

    def newest(column: Any) -> Any:
        return select(column).where(v.c.category == category).order_by(v.c.version.desc()).limit(1).scalar_subquery()

    return newest(v.c["items"]).label("checklist"), newest(v.c.version).label("checklist_version")
