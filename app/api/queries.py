"""Reading API keys (the admin's list, the key a request presents), and what other systems read
through the API: units, their ledger, returns with their receipt, refund triggers."""
from __future__ import annotations

import hmac
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, true, tuple_
from sqlalchemy.orm import Session

from app.api.domain import parse_token, secret_hash
from app.api.models import ApiKey
from app.auth.roles import Actor
from app.catalog.models import Location, Merchant, Product, Warehouse
from app.auth.scoping import visible
from app.ledger.models import Balance, LedgerEntry, ReturnUnit
from app.ledger.queries import scope_units
from app.orders.models import CarrierTracking, Rma, RmaLine
from app.orders.queries import scope_rmas
from app.refunds.models import RefundTrigger


def key_for_token(session: Session, token: str) -> ApiKey | None:
    """The live key whose token this is, or None (malformed, unknown, wrong secret or revoked)."""
    key_id = parse_token(token)
    if key_id is None:
        return None
    key = session.scalars(select(ApiKey).where(ApiKey.key_id == key_id)).first()
    if key is None or key.revoked_at is not None or not hmac.compare_digest(key.secret_hash, secret_hash(token)):
        return None
    return key


def list_keys(session: Session) -> list[ApiKey]:
    """Every key, live first, newest first."""
    return list(session.scalars(select(ApiKey).order_by(ApiKey.revoked_at.is_not(None), ApiKey.id.desc())))


# ---------------------------------------------------------------- what other systems read

def _merchant_limit(actor: Actor, column: Any) -> Any:
    """A key limited to merchants reads only theirs."""
    return true() if actor.merchant_ids is None else column.in_(sorted(actor.merchant_ids))


def units_page(session: Session, actor: Actor, *, state: str | None, warehouse: str | None, merchant: str | None = None,
               updated_since: datetime | None, after: int, limit: int) -> list[Any]:
    """Units in id order after `after`, filtered, as the actor may see them."""
    u = ReturnUnit.__table__
    stmt = (select(u.c.id, u.c.lpn, Product.sku, u.c.state, Warehouse.code.label("warehouse"), Location.code.label("location"),
                   Merchant.code.label("merchant"), Rma.number.label("rma"), u.c.serial, u.c.lot, u.c.grade, u.c.disposition,
                   u.c.received_at, u.c.inspected_at, u.c.state_changed_at)
            .join(Product, Product.id == u.c.product_id).join(Warehouse, Warehouse.id == u.c.warehouse_id)
            .outerjoin(Location, Location.id == u.c.location_id).outerjoin(Merchant, Merchant.id == u.c.merchant_id)
            .outerjoin(Rma, Rma.id == u.c.rma_id)
            .where(u.c.id > after, _merchant_limit(actor, u.c.merchant_id)).order_by(u.c.id).limit(limit))
    if state:
        stmt = stmt.where(u.c.state == state)
    if warehouse:
        stmt = stmt.where(Warehouse.code == warehouse.upper())
    if merchant:
        stmt = stmt.where(Merchant.code == merchant.upper())
    if updated_since:
        stmt = stmt.where(u.c.state_changed_at >= updated_since)
    return list(session.execute(scope_units(stmt, actor)))


def unit_ledger(session: Session, actor: Actor, lpn: str) -> list[Any] | None:
    """A unit's ledger entries, oldest first; None when the actor may not see such a unit."""
    u = ReturnUnit.__table__
    unit_id = session.scalar(scope_units(select(u.c.id).where(u.c.lpn == lpn.upper(), _merchant_limit(actor, u.c.merchant_id)), actor))
    if unit_id is None:
        return None
    return list(session.execute(select(LedgerEntry.id, LedgerEntry.from_state, LedgerEntry.to_state, LedgerEntry.reason,
                                       LedgerEntry.actor_role, LedgerEntry.at)
                                .where(LedgerEntry.unit_id == unit_id).order_by(LedgerEntry.id)))


def rma_with_receipt(session: Session, actor: Actor, number: str) -> tuple[Any, list[Any], list[Any]] | None:
    """A return by its number (as the actor may see it) with each line's expected and received
    counts and its tracking numbers; None when there is none to see."""
    r = Rma.__table__
    rma = session.execute(scope_rmas(
        select(r.c.id, r.c.number, r.c.status, r.c.created_at, r.c.closed_at, Merchant.code.label("merchant"),
               Warehouse.code.label("warehouse"))
        .join(Merchant, Merchant.id == r.c.merchant_id).join(Warehouse, Warehouse.id == r.c.warehouse_id)
        .where(r.c.number == number.upper(), _merchant_limit(actor, r.c.merchant_id)), actor)).first()
    if rma is None:
        return None
    received = (select(func.count()).select_from(ReturnUnit).where(ReturnUnit.rma_line_id == RmaLine.id)
                .correlate(RmaLine).scalar_subquery())
    lines = list(session.execute(select(RmaLine.id, Product.sku, RmaLine.quantity, RmaLine.reason_code, received.label("received"))
                                 .join(Product, Product.id == RmaLine.product_id).where(RmaLine.rma_id == rma.id)
                                 .order_by(RmaLine.id)))
    trackings = list(session.execute(select(CarrierTracking.tracking_number, CarrierTracking.carrier, CarrierTracking.status,
                                            CarrierTracking.last_event_at)
                                     .where(CarrierTracking.rma_id == rma.id).order_by(CarrierTracking.id)))
    return rma, lines, trackings


def refunds_page(session: Session, actor: Actor, *, status: str | None, after: int, limit: int) -> list[Any]:
    """Refund triggers in id order after `after`, of the merchants the actor may read."""
    t = RefundTrigger.__table__
    stmt = (select(t.c.id, ReturnUnit.lpn, Rma.number.label("rma"), t.c.status, t.c.currency, t.c.amount, t.c.paid_amount,
                   t.c.refund_action, t.c.resolution, t.c.exchange_sku, t.c.released_at, t.c.acknowledged_at,
                   t.c.payment_reference, t.c.created_at)
            .join(ReturnUnit, ReturnUnit.id == t.c.unit_id).outerjoin(Rma, Rma.id == t.c.rma_id)
            .where(t.c.id > after, _merchant_limit(actor, ReturnUnit.merchant_id)).order_by(t.c.id).limit(limit))
    if status:
        stmt = stmt.where(t.c.status == status)
    return list(session.execute(scope_units(stmt, actor)))


def balances_page(session: Session, actor: Actor, *, warehouse: str | None, after: tuple[int, int], limit: int) -> list[Any]:
    """Balances (units per state) of each (warehouse, product) after `after` = (warehouse id,
    product id), in that order, at most `limit` pairs, of what the actor may see; zero rows left out."""
    b = Balance.__table__
    pairs = (select(b.c.warehouse_id, b.c.product_id).where(b.c.quantity > 0)
             .join(Product, Product.id == b.c.product_id)
             .where(tuple_(b.c.warehouse_id, b.c.product_id) > tuple_(*after), _merchant_limit(actor, Product.merchant_id),
                    visible(actor, b.c.warehouse_id, Product.merchant_id))
             .group_by(b.c.warehouse_id, b.c.product_id).order_by(b.c.warehouse_id, b.c.product_id).limit(limit))
    if warehouse:
        pairs = pairs.join(Warehouse, Warehouse.id == b.c.warehouse_id).where(Warehouse.code == warehouse.upper())
    chosen = pairs.subquery()
    return list(session.execute(
        select(b.c.warehouse_id, b.c.product_id, Warehouse.code.label("warehouse"), Product.sku, Merchant.code.label("merchant"),
               b.c.state, b.c.quantity)
        .join(chosen, (chosen.c.warehouse_id == b.c.warehouse_id) & (chosen.c.product_id == b.c.product_id))
        .join(Warehouse, Warehouse.id == b.c.warehouse_id).join(Product, Product.id == b.c.product_id)
        .outerjoin(Merchant, Merchant.id == Product.merchant_id)
        .where(b.c.quantity > 0).order_by(b.c.warehouse_id, b.c.product_id, b.c.state)))
