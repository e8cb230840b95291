"""Reading anomaly flags: a unit's (with its return's), a return's, and the SQL that tells whether
a unit has a flag holding its refund (the disposition's fraud flag, the desk queue's tag); the
customer's figures against the merchant's norm, read when a parcel of a return is opened."""
from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Numeric, and_, cast, distinct, exists, func, literal, or_, select
from sqlalchemy.orm import Session

from app.anomalies.domain import CUSTOMER_NORM, CustomerFigures
from app.anomalies.models import AnomalyFlag
from app.orders.models import Order, OrderLine, Rma, RmaLine
from app.settings.domain import SETTINGS
from app.settings.models import Setting


def _of_unit(unit_id: Any, rma_id: Any) -> ColumnElement[bool]:
    """A flag of this unit, or of its whole return (`rma_id` a column or a value; NULL: no return)."""
    f = AnomalyFlag.__table__
    return or_(f.c.unit_id == unit_id, and_(f.c.unit_id.is_(None), f.c.rma_id == rma_id))


def holding_flag(unit_id: Any, rma_id: Any) -> ColumnElement[bool]:
    """SQL: the unit (`unit_id`, of the return `rma_id`; columns or values) has a flag, not cleared,
    that holds its refund."""
    f = AnomalyFlag.__table__
    return exists().where(_of_unit(unit_id, rma_id), f.c.holds.is_(True), f.c.cleared_at.is_(None))


def first_open_flag(unit_id: Any, rma_id: Any) -> ColumnElement[str | None]:
    """SQL: the kind of the unit's first flag not cleared, a holding one first (NULL: none); with
    holding_flag, the desk queue's tag, read in the queue's own statement."""
    f = AnomalyFlag.__table__
    return (select(f.c.kind).where(_of_unit(unit_id, rma_id), f.c.cleared_at.is_(None))
            .order_by(f.c.holds.desc(), f.c.id).limit(1).scalar_subquery())


def unit_flags(session: Session, unit_id: int, rma_id: int | None) -> list[AnomalyFlag]:
    """A unit's flags and its return's, oldest first. The caller checked the actor may see the unit."""
    return list(session.scalars(select(AnomalyFlag).where(_of_unit(unit_id, rma_id)).order_by(AnomalyFlag.id)))


def open_unit_flag_ids(session: Session, unit_id: int, kind: str | None = None) -> list[int]:
    """The ids of the flags on the unit itself that are not cleared (a return's flags stay: they
    hold its other units' refunds too); with `kind`, of that kind only."""
    query = select(AnomalyFlag.id).where(AnomalyFlag.unit_id == unit_id, AnomalyFlag.cleared_at.is_(None))
    if kind is not None:
        query = query.where(AnomalyFlag.kind == kind)
    return list(session.scalars(query.order_by(AnomalyFlag.id)))


def return_flags(session: Session, rma_id: int) -> list[AnomalyFlag]:
    """Every flag of a return: its own and its units', oldest first. The caller checked the scope."""
    return list(session.scalars(select(AnomalyFlag).where(AnomalyFlag.rma_id == rma_id).order_by(AnomalyFlag.id)))


def _setting(name: str) -> ColumnElement[Any]:
    """SQL: a console setting's stored value as a number, else its default (app/settings/domain.py)."""
    s = Setting.__table__
    return func.coalesce(cast(select(s.c.value).where(s.c.name == name).scalar_subquery(), Numeric(12, 4)),
                         cast(literal(SETTINGS[name].default), Numeric(12, 4)))


def customer_norm_columns(rma_id: Any) -> list[ColumnElement[Any]]:
    """SQL columns, for the return `rma_id` (a bound parameter), of what the customer_norm rule
    (app.anomalies.domain.customer_norm) compares: the customer's returns, orders and value asked
    back with the return's merchant; the merchant's returns, orders, value asked back and returning
    customers; the settings' factor and minimum; and whether the return is flagged already. Plain
    aggregates over the merchant's returns and orders: read once per parcel opened, never per scan."""
    rmas, orders, lines, sold = Rma.__table__, Order.__table__, RmaLine.__table__, OrderLine.__table__
    the_rma = rmas.alias("norm_rma")
    customer = select(the_rma.c.customer_id).where(the_rma.c.id == rma_id).scalar_subquery()
    merchant = select(the_rma.c.merchant_id).where(the_rma.c.id == rma_id).scalar_subquery()
    value = func.coalesce(func.sum(lines.c.quantity * sold.c.unit_price), 0)
    asked = select(value).select_from(rmas.join(lines, lines.c.rma_id == rmas.c.id)
                                      .join(sold, sold.c.id == lines.c.order_line_id))
    f = AnomalyFlag.__table__
    return [
        select(func.count()).where(rmas.c.customer_id == customer, rmas.c.merchant_id == merchant)
        .scalar_subquery().label("norm_returns"),
        select(func.count()).where(orders.c.customer_id == customer, orders.c.merchant_id == merchant)
        .scalar_subquery().label("norm_orders"),
        asked.where(rmas.c.customer_id == customer, rmas.c.merchant_id == merchant).scalar_subquery().label("norm_value"),
        select(func.count()).where(rmas.c.merchant_id == merchant, rmas.c.customer_id.is_not(None))
        .scalar_subquery().label("norm_merchant_returns"),
        select(func.count()).where(orders.c.merchant_id == merchant).scalar_subquery().label("norm_merchant_orders"),
        asked.where(rmas.c.merchant_id == merchant, rmas.c.customer_id.is_not(None)).scalar_subquery()
        .label("norm_merchant_value"),
        select(func.count(distinct(rmas.c.customer_id))).where(rmas.c.merchant_id == merchant)
        .scalar_subquery().label("norm_merchant_customers"),
        _setting("anomaly_customer_factor").label("norm_factor"),
        _setting("anomaly_customer_min_returns").label("norm_min_returns"),
        exists().where(f.c.rma_id == rma_id, f.c.unit_id.is_(None), f.c.kind == CUSTOMER_NORM).label("norm_flagged"),
        customer.label("norm_customer_id"),
    ]


def customer_figures(row: Any) -> CustomerFigures | None:
    """The customer_norm rule's input from a row with customer_norm_columns; None when the return
    has no customer, or is flagged already."""
    if row.norm_customer_id is None or row.norm_flagged:
        return None
    rate = Decimal(row.norm_merchant_returns) / Decimal(row.norm_merchant_orders) if row.norm_merchant_orders else Decimal(0)
    per_customer = (Decimal(row.norm_merchant_value) / Decimal(row.norm_merchant_customers)
                    if row.norm_merchant_customers else Decimal(0))
    return CustomerFigures(int(row.norm_returns), int(row.norm_orders), Decimal(row.norm_value).quantize(Decimal("0.01")),
                           rate, per_customer.quantize(Decimal("0.01")))
