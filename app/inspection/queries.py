"""Reads of inspections: what an actor may see of their photos; the current checklist of a
category; the inspection queue (the units received and not yet inspected, most urgent first)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any

from sqlalchemy import DateTime, Float, Select, bindparam, case, cast, extract, func, literal, literal_column, or_, select
from sqlalchemy.orm import Session

from app.auth.roles import Actor
from app.auth.scoping import Scope, is_staff, scope_of, visible
from app.catalog.models import Product, ProductComponent
from app.db import as_utc, utcnow
from app.errors import NotFound
from app.inspection import domain, grading
from app.inspection.domain import Priority
from app.inspection.models import ChecklistVersion, Photo
from app.ledger.models import ReturnUnit
from app.ledger.queries import scope_units
from app.words import N_, Translate, english
from app.orders.models import Order, OrderLine


def scope_photos(stmt: Select, actor: Actor) -> Select:
    """Limit a select over Photo to the photos of units the actor may see."""
    return stmt.where(or_(is_staff(actor), Photo.unit_id.in_(scope_units(select(ReturnUnit.id), actor))))


def load_photo(session: Session, actor: Actor, photo_id: int) -> Photo:
    """A photo the actor may see, or NotFound."""
    photo = session.scalars(scope_photos(select(Photo).where(Photo.id == photo_id), actor)).first()
    if photo is None:
        raise NotFound(N_("No such photo."))
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


def current_rules_column(category: Any) -> Any:
    """A scalar subquery for a statement that reads a product: its category's current checklist's
    grading rules (`checklist_rules`; NULL: none)."""
    v = ChecklistVersion.__table__
    return (select(v.c.rules).where(v.c.category == category).order_by(v.c.version.desc()).limit(1)
            .scalar_subquery().label("checklist_rules"))


def is_kit_column(product_id: Any) -> Any:
    """A boolean column for a statement that reads a product (`product_id`: its id column): whether
    it is a kit (has components), so that only a kit's use case reads them (kit_components)."""
    c = ProductComponent.__table__
    return select(c.c.id).where(c.c.kit_product_id == product_id).exists().label("is_kit")


def kit_components(session: Session, product_id: int) -> list[grading.Component]:
    """A kit's components in order, each with the share a missing one deducts (one plain read)."""
    rows = session.execute(_components_statement(), {"product_id": product_id}).all()
    return [grading.Component(r.position, r.name, r.quantity,
                              grading.component_share(r.deduction_pct, r.component_value, r.quantity, r.kit_value))
            for r in rows]


@lru_cache(maxsize=1)
def _components_statement() -> Select:
    c, part, kit = ProductComponent.__table__, Product.__table__.alias("part"), Product.__table__.alias("kit")
    return (select(c.c.position, c.c.name, c.c.quantity, c.c.deduction_pct, part.c.unit_value.label("component_value"),
                   kit.c.unit_value.label("kit_value"))
            .join_from(c, kit, kit.c.id == c.c.kit_product_id).outerjoin(part, part.c.id == c.c.component_product_id)
            .where(c.c.kit_product_id == bindparam("product_id")).order_by(c.c.position))


# --------------------------------------------------------------------------- the inspection queue

QUEUE_PER_PAGE = 25
QUEUE_MAX_PAGE = 100_000


@dataclass(frozen=True)
class QueueUnit:
    """One unit waiting for inspection as the queue shows it."""

    id: int
    lpn: str
    sku: str
    name: str
    value: Decimal | None
    shipped: int  # units of its SKU shipped over the last WINDOW_DAYS
    received_at: datetime
    age_hours: float
    priority: Priority

    @property
    def age(self) -> str:
        """How long it has waited, in words ("3 h")."""
        return self.age_in()

    def age_in(self, tr: Translate = english) -> str:
        """How long it has waited, in the words of the translator `tr`."""
        return domain.age_words(self.age_hours, tr)


@dataclass(frozen=True)
class InspectionQueue:
    """A page of the units waiting for inspection at a warehouse, first things first."""

    units: list[QueueUnit]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def _float(number: float) -> Any:
    return literal(float(number), Float())


def _capped(expr: Any, cap: float) -> Any:
    """least(expr, cap), written as a CASE both databases run alike."""
    return case((expr < _float(cap), expr), else_=_float(cap))


def _hours_since(dialect: str, moment: Any, now: Any) -> Any:
    """Hours from `moment` to `now` (a bound datetime), in the database's own date arithmetic."""
    if dialect == "postgresql":
        return extract("epoch", now - moment) / _float(3600)
    return (func.julianday(now) - func.julianday(moment)) * _float(24)


@lru_cache(maxsize=16)
def _queue_statement(dialect: str, scope: Scope) -> Select:
    """The queue's one statement: the units in state `received` with no inspection yet at the
    warehouse (ix_return_units_state_warehouse), scoped; the units of their SKUs shipped on orders
    placed since `since`, one aggregate over those SKUs only (ix_order_lines_product_id, then the
    orders by key); ordered by app.inspection.domain's sum, the oldest first on a tie; the page
    with the whole queue's count (a window over the waiting units, before LIMIT)."""
    u, p, ol, o = ReturnUnit.__table__, Product.__table__, OrderLine.__table__, Order.__table__
    now = bindparam("now", type_=DateTime(timezone=True))
    waiting = visible(scope, u.c.warehouse_id, u.c.merchant_id)
    waiting_skus = select(u.c.product_id).where(u.c.state == literal_column("'received'"), u.c.inspected_at.is_(None),
                                                u.c.warehouse_id == bindparam("warehouse_id"), waiting)
    sold = (select(ol.c.product_id, func.sum(ol.c.quantity).label("shipped"))
            .join(o, o.c.id == ol.c.order_id)
            .where(o.c.placed_at >= bindparam("since", type_=DateTime(timezone=True)), ol.c.product_id.in_(waiting_skus))
            .group_by(ol.c.product_id).subquery("sold"))
    value = func.coalesce(u.c.paid_price, p.c.unit_value)
    shipped = func.coalesce(sold.c.shipped, 0)
    age = _hours_since(dialect, u.c.received_at, now)
    score = (_capped(cast(value, Float()), domain.VALUE_CAP) / _float(domain.VALUE_STEP)
             + _capped(cast(shipped, Float()) / _float(domain.WINDOW_DAYS), domain.SPEED_CAP) * _float(domain.SPEED_POINTS)
             + _capped(age, domain.AGE_CAP_HOURS))
    return (select(u.c.id, u.c.lpn, p.c.sku, p.c.name, value.label("value"), shipped.label("shipped"), u.c.received_at,
                   func.count().over().label("total"))
            .select_from(u.join(p, p.c.id == u.c.product_id).outerjoin(sold, sold.c.product_id == u.c.product_id))
            .where(u.c.state == literal_column("'received'"), u.c.inspected_at.is_(None),
                   u.c.warehouse_id == bindparam("warehouse_id"), waiting)
            .order_by(score.desc(), u.c.received_at, u.c.id)
            .limit(bindparam("limit")).offset(bindparam("offset")))


def inspection_queue(session: Session, actor: Actor, warehouse_id: int, *, page: int = 1,
                     per_page: int = QUEUE_PER_PAGE, now: datetime | None = None) -> InspectionQueue:
    """The units received at `warehouse_id` and not yet inspected that the actor may see, most
    urgent first (app.inspection.domain.priority), one page of them: one statement."""
    now = now or utcnow()
    page = min(max(page, 1), QUEUE_MAX_PAGE)
    dialect = session.get_bind().dialect.name
    rows = session.execute(_queue_statement(dialect, scope_of(actor)),
                           {"warehouse_id": warehouse_id, "now": now, "since": now - timedelta(days=domain.WINDOW_DAYS),
                            "limit": per_page, "offset": (page - 1) * per_page}).all()
    show_value = actor.can("see_refund_amounts")
    units = []
    for r in rows:
        age = max((now - as_utc(r.received_at)).total_seconds() / 3600, 0.0)  # type: ignore[operator]
        units.append(QueueUnit(r.id, r.lpn, r.sku, r.name, r.value, int(r.shipped), r.received_at, age,
                               domain.priority(r.value, int(r.shipped), age, show_value=show_value)))
    return InspectionQueue(units, rows[0].total if rows else 0, page, per_page)


def next_unit_id(session: Session, actor: Actor, warehouse_id: int) -> int | None:
    """The unit at the head of the queue ("Next unit"), or None when nothing waits."""
    head = inspection_queue(session, actor, warehouse_id, per_page=1)
    return head.units[0].id if head.units else None
