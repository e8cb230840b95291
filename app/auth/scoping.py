"""The one rule that limits what an actor may list or load.

Staff see everything. A partner (3PL) user sees only the warehouses their organisation runs, and
within them only the merchants it serves (plus what has no merchant yet, such as a blind parcel).
Each package applies this rule to its own tables next to its models (app.ledger.queries.scope_units,
app.receiving.queries.scope_parcels, app.orders.queries.scope_rmas,
app.exceptions.queries.scope_exceptions, app.inspection.queries.scope_photos). For staff the clause
is `true`, which SQLAlchemy drops: a staff's statement carries no scope at all, and PostgreSQL plans
it as if there were none. Hot reads are built once per scope (`scope_of`, an lru_cache key).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Integer, Select, and_, bindparam, false, or_, select, true
from sqlalchemy.orm import Session

from app.auth.roles import Actor
from app.catalog.models import Warehouse, partner_org_merchants


@dataclass(frozen=True)
class Scope:
    """What limits an actor's reads, as a key for statements built once per scope (lru_cache)."""

    is_partner: bool
    partner_org_id: int | None


def scope_of(actor: Actor) -> Scope:
    """The actor's scope: staff share one, each partner organisation has its own."""
    return Scope(actor.is_partner, actor.partner_org_id if actor.is_partner else None)


def _org(actor: Actor | Scope) -> Any:
    return bindparam(None, actor.partner_org_id, type_=Integer())


def is_staff(actor: Actor | Scope) -> ColumnElement[bool]:
    """True for staff, false for a partner: a constant SQLAlchemy folds into the clause around it."""
    return false() if actor.is_partner else true()


def org_warehouses(actor: Actor | Scope) -> Select[tuple[int]]:
    """The ids of the warehouses the actor's organisation runs."""
    warehouses = Warehouse.__table__
    return select(warehouses.c.id).where(warehouses.c.partner_org_id == _org(actor))


def org_merchants(actor: Actor | Scope) -> Select[tuple[int]]:
    """The ids of the merchants the actor's organisation serves."""
    return select(partner_org_merchants.c.merchant_id).where(partner_org_merchants.c.partner_org_id == _org(actor))


def visible(actor: Actor | Scope, warehouse_col: Any, merchant_col: Any = None) -> ColumnElement[bool]:
    """The scope clause: true for staff; for a partner, rows at their organisation's warehouses and,
    with `merchant_col`, of the merchants it serves (or of no merchant yet)."""
    if not actor.is_partner:
        return true()
    rule = warehouse_col.in_(org_warehouses(actor))
    if merchant_col is not None:
        rule = and_(rule, or_(merchant_col.is_(None), merchant_col.in_(org_merchants(actor))))
    return rule


def scope_warehouses(stmt: Select, actor: Actor) -> Select:
    """Limit a select over Warehouse."""
    return stmt.where(visible(actor, Warehouse.id))


def serves_merchant(session: Session, actor: Actor, merchant_id: int | None) -> bool:
    """Whether the actor may handle goods of this merchant (partners: only the merchants their org serves)."""
    if not actor.is_partner or merchant_id is None:
        return True
    return session.execute(org_merchants(actor).where(partner_org_merchants.c.merchant_id == merchant_id).limit(1)).first() is not None
