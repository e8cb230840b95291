"""Reads of returns and orders shared by the use cases."""
from __future__ import annotations

from functools import lru_cache

from sqlalchemy import Select, bindparam, literal, select, union_all
from sqlalchemy.orm import Session

from app.auth.roles import Actor
from app.auth.scoping import Scope, scope_of, visible
from app.errors import NotFound
from app.orders.models import CarrierTracking, Order, Rma
from app.words import N_

def scope_rmas(stmt: Select, actor: Actor | Scope) -> Select:
    """Limit a select over Rma to the returns the actor may see (app.auth.scoping)."""
    rmas = Rma.__table__  # table columns: a plain read stays a plain read
    return stmt.where(visible(actor, rmas.c.warehouse_id, rmas.c.merchant_id))


def load_rma(session: Session, actor: Actor, rma_id: int) -> Rma:
    """A return the actor may see, or NotFound."""
    rma = session.scalars(scope_rmas(select(Rma).where(Rma.id == rma_id), actor)).first()
    if rma is None:
        raise NotFound("No such return.")
    return rma


HOW_FOUND = {1: N_("RMA number"), 2: N_("tracking number"), 3: N_("order number")}


def find_return(session: Session, actor: Actor, code: str) -> tuple[int, str] | None:
    """The return a label names, among those the actor may see, as (its id, how it was found): by
    its RMA number, else a carrier tracking number, else its order's number (the newest return of
    that order). None when nothing matches. One statement."""
    code = (code or "").strip().upper()
    if not code or len(code) > 64:
        return None
    row = session.execute(_find_return_statement(scope_of(actor)), {"code": code}).first()
    return (row.rma_id, HOW_FOUND[row.rank]) if row is not None else None


@lru_cache(maxsize=64)
def _find_return_statement(actor: Scope) -> Select:
    code, rmas, tracking, orders = bindparam("code"), Rma.__table__, CarrierTracking.__table__, Order.__table__
    by_number = scope_rmas(select(rmas.c.id.label("rma_id"), literal(1).label("rank")).where(rmas.c.number == code), actor)
    by_tracking = scope_rmas(select(rmas.c.id, literal(2)).join(tracking, tracking.c.rma_id == rmas.c.id)
                             .where(tracking.c.tracking_number == code), actor)
    by_order = scope_rmas(select(rmas.c.id, literal(3)).join(orders, orders.c.id == rmas.c.order_id)
                          .where(orders.c.number == code), actor)
    found = union_all(by_number, by_tracking, by_order).subquery()
    return select(found.c.rma_id, found.c.rank).order_by(found.c.rank, found.c.rma_id.desc()).limit(1)
