"""Reads of receiving exceptions: what an actor may see of them."""
from __future__ import annotations

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from app.auth.roles import Actor
from app.auth.scoping import visible
from app.errors import NotFound
from app.exceptions.models import ReturnException
from app.words import N_


def scope_exceptions(stmt: Select, actor: Actor) -> Select:
    """Limit a select over ReturnException to what the actor may see (app.auth.scoping)."""
    table = ReturnException.__table__  # table columns: a plain read stays a plain read
    return stmt.where(visible(actor, table.c.warehouse_id, table.c.merchant_id))


def load_exception(session: Session, actor: Actor, exception_id: int) -> ReturnException:
    """An exception the actor may see, or NotFound."""
    exc = session.scalars(scope_exceptions(select(ReturnException).where(ReturnException.id == exception_id), actor)).first()
    if exc is None:
        raise NotFound(N_("No such exception."))
    return exc
