"""Reads of returns and orders shared by the use cases."""
from __future__ import annotations

from sqlalchemy import Select, bindparam, literal, select, union_all
from sqlalchemy.orm import Session

from app.auth.roles import Actor
from app.auth.scoping import scope_rmas
from app.orders.models import CarrierTracking, Order, Rma

HOW_FOUND = {1: "RMA number", 2: "tracking number", 3: "order number"}


def find_return(session: Session, actor: Actor, code: str) -> tuple[int, str] | None:
    """The return a label names, among those the actor may see, as (its id, how it was found): by
    its RMA number, else a carrier tracking number, else its order's number (the newest return of
    that order). None when nothing matches. One statement."""
    code = (code or "").strip().upper()
    if not code or len(code) > 64:
        return None
    row = session.execute(_find_return_statement(actor), {"code": code}).first()
    return (row.rma_id, HOW_FOUND[row.rank]) if row is not None else None


def _find_return_statement(actor: Actor) -> Select:
    code = bindparam("code")
    by_number = scope_rmas(select(Rma.id.label("rma_id"), literal(1).label("rank")).where(Rma.number == code), actor)
    by_tracking = scope_rmas(select(Rma.id, literal(2)).join(CarrierTracking, CarrierTracking.rma_id == Rma.id)
                             .where(CarrierTracking.tracking_number == code), actor)
    by_order = scope_rmas(select(Rma.id, literal(3)).join(Order, Order.id == Rma.order_id).where(Order.number == code),
                          actor)
    found = union_all(by_number, by_tracking, by_order).subquery()
    return select(found.c.rma_id, found.c.rank).order_by(found.c.rank, found.c.rma_id.desc()).limit(1)
