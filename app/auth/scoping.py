"""The one place that limits what an actor may list or load.

Staff see everything. A partner (3PL) user sees only the warehouses their organisation
runs, and within them only the merchants it serves (plus blind receipts, whose merchant
is not known yet). Every list or load of returns, units, photos or exceptions goes through here.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from sqlalchemy import Boolean, ColumnElement, Integer, Select, and_, bindparam, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.base import ExecutableOption

from app.auth.roles import Actor
from app.catalog.models import Warehouse, partner_org_merchants
from app.errors import NotFound
from app.exceptions.models import ReturnException
from app.inspection.models import Photo
from app.ledger.models import ReturnUnit
from app.orders.models import Rma
from app.receiving.models import Receipt

T = TypeVar("T")


def _org(actor: Actor) -> Any:
    return bindparam(None, actor.partner_org_id, type_=Integer())


def _staff(actor: Actor) -> Any:
    """True for staff, as a bound value: a staff's and a partner's statement are the same SQL (one
    cached, prepared statement for both), and only the values differ."""
    return bindparam(None, not actor.is_partner, type_=Boolean())


def _org_warehouses(actor: Actor) -> Select[tuple[int]]:
    return select(Warehouse.id).where(Warehouse.partner_org_id == _org(actor))


def _org_merchants(actor: Actor) -> Select[tuple[int]]:
    return select(partner_org_merchants.c.merchant_id).where(partner_org_merchants.c.partner_org_id == _org(actor))


def visible(actor: Actor, warehouse_col: Any, merchant_col: Any = None) -> ColumnElement[bool]:
    """The scope clause: true for staff; for a partner, rows at their organisation's warehouses and,
    with `merchant_col`, of the merchants it serves (or of no merchant yet)."""
    rule = warehouse_col.in_(_org_warehouses(actor))
    if merchant_col is not None:
        rule = and_(rule, or_(merchant_col.is_(None), merchant_col.in_(_org_merchants(actor))))
    return or_(_staff(actor), rule)


def _limit(stmt: Select, actor: Actor, warehouse_col, merchant_col) -> Select:  # type: ignore[no-untyped-def]
    return stmt.where(visible(actor, warehouse_col, merchant_col))


def scope_units(stmt: Select, actor: Actor) -> Select:
    """Limit a select over ReturnUnit."""
    return _limit(stmt, actor, ReturnUnit.warehouse_id, ReturnUnit.merchant_id)


def scope_rmas(stmt: Select, actor: Actor) -> Select:
    """Limit a select over Rma."""
    return _limit(stmt, actor, Rma.warehouse_id, Rma.merchant_id)


def scope_exceptions(stmt: Select, actor: Actor) -> Select:
    """Limit a select over ReturnException."""
    return _limit(stmt, actor, ReturnException.warehouse_id, ReturnException.merchant_id)


def scope_receipts(stmt: Select, actor: Actor) -> Select:
    """Limit a select over Receipt: the partner's warehouses, and for a parcel opened against a
    return, only the merchants they serve (a blind parcel has no merchant yet)."""
    served_rmas = select(Rma.id).where(Rma.merchant_id.in_(_org_merchants(actor)))
    return _limit(stmt, actor, Receipt.warehouse_id, None).where(
        or_(_staff(actor), Receipt.rma_id.is_(None), Receipt.rma_id.in_(served_rmas)))


def scope_photos(stmt: Select, actor: Actor) -> Select:
    """Limit a select over Photo through the unit it shows."""
    return stmt.where(or_(_staff(actor), Photo.unit_id.in_(scope_units(select(ReturnUnit.id), actor))))


def scope_warehouses(stmt: Select, actor: Actor) -> Select:
    """Limit a select over Warehouse."""
    return _limit(stmt, actor, Warehouse.id, None)


def serves_merchant(session: Session, actor: Actor, merchant_id: int | None) -> bool:
    """Whether the actor may handle goods of this merchant (partners: only the merchants their org serves)."""
    if not actor.is_partner or merchant_id is None:
        return True
    return session.execute(_org_merchants(actor).where(partner_org_merchants.c.merchant_id == merchant_id).limit(1)).first() is not None


def _visible(session: Session, actor: Actor, stmt: Select) -> bool:
    return session.execute(stmt.limit(1)).first() is not None


def ensure_unit_visible(session: Session, actor: Actor, unit: ReturnUnit) -> None:
    """Raise NotFound (not 403: no leaking of existence) for a unit outside the actor's scope."""
    if actor.is_partner and not _visible(session, actor, scope_units(select(ReturnUnit.id).where(ReturnUnit.id == unit.id), actor)):
        raise NotFound("No such unit.")


def load_unit(session: Session, actor: Actor, unit_id: int, *, options: Sequence[ExecutableOption] = ()) -> ReturnUnit:
    """Load a unit the actor may see, or raise NotFound; `options` (e.g. joinedload) ride along."""
    unit = session.scalars(scope_units(select(ReturnUnit).where(ReturnUnit.id == unit_id).options(*options), actor)).first()
    if unit is None:
        raise NotFound("No such unit.")
    return unit


def load_rma(session: Session, actor: Actor, rma_id: int) -> Rma:
    """Load an RMA the actor may see, or raise NotFound."""
    rma = session.scalars(scope_rmas(select(Rma).where(Rma.id == rma_id), actor)).first()
    if rma is None:
        raise NotFound("No such return.")
    return rma


def load_exception(session: Session, actor: Actor, exception_id: int) -> ReturnException:
    """Load an exception the actor may see, or raise NotFound."""
    exc = session.scalars(scope_exceptions(select(ReturnException).where(ReturnException.id == exception_id), actor)).first()
    if exc is None:
        raise NotFound("No such exception.")
    return exc


def load_photo(session: Session, actor: Actor, photo_id: int) -> Photo:
    """Load a photo the actor may see, or raise NotFound."""
    photo = session.scalars(scope_photos(select(Photo).where(Photo.id == photo_id), actor)).first()
    if photo is None:
        raise NotFound("No such photo.")
    return photo


def load_receipt(session: Session, actor: Actor, receipt_id: int, *, options: Sequence[ExecutableOption] = (),
                 lock: bool = False) -> Receipt:
    """Load a receipt the actor may see, or raise NotFound; `options` (e.g. joinedload) ride along in
    the same query, and `lock` takes the receipt's row lock (fresh values) in that query too."""
    stmt = select(Receipt).where(Receipt.id == receipt_id).options(*options)
    if lock:
        stmt = stmt.with_for_update(of=Receipt).execution_options(populate_existing=True)
    receipt = session.scalars(scope_receipts(stmt, actor)).first()
    if receipt is None:
        raise NotFound("No such receipt.")
    return receipt
