"""The supervisor desk's read side: queue counts, queue pages and the unit case file.

Every list goes through app.auth.scoping. A queue page is one SELECT (LIMIT/OFFSET, a stable
tie-breaker on the primary key) plus one COUNT; the COUNT joins only the tables its filters
need. The default order (oldest first) is served by the state/status indexes.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, and_, case, func, literal, or_, select, union_all
from sqlalchemy.orm import Session, aliased

from app.anomalies.domain import KIND_LABELS
from app.anomalies.models import AnomalyFlag
from app.anomalies.queries import first_open_flag, holding_flag, return_flags, unit_flags
from app.auth.models import User
from app.auth.roles import PERMISSIONS, Actor
from app.auth.scoping import scope_warehouses
from app.exceptions.queries import scope_exceptions
from app.catalog.queries import category_choices
from app.inspection.grading import component_items
from app.inspection.queries import checklist_for, kit_components, scope_photos
from app.ledger.queries import load_unit, scope_units
from app.catalog.models import Location, Merchant, Product, SalesChannel, Warehouse
from app.db import as_utc, utcnow
from app.errors import NotFound
from app.disposition.models import ReasonCode
from app.exceptions.domain import due_words
from app.exceptions.models import EXCEPTION_LABELS, EXCEPTION_TYPES, ReturnException
from app.inspection.models import Inspection, Photo
from app.ledger.domain import EDGES, STATE_LABELS
from app.ledger.models import AuditEntry, LedgerEntry, ReturnUnit
from app.orders.models import CarrierTracking, Customer, Order, OrderLine, Rma, RmaLine, ShippedSerial
from app.orders.queries import load_rma, scope_rmas
from app.receiving.models import Parcel
from app.receiving.queries import scope_parcels
from app.refunds import domain as refund_domain
from app.refunds.models import RefundEvent, RefundTrigger
from app.words import N_, Said

SORTS = ("age", "value")
ORDERS = ("desc", "asc")
PER_PAGE_CHOICES = (25, 50, 100)
MAX_PAGE = 100_000
QUEUES = ("quarantine", "refunds", *(f"exceptions/{t}" for t in EXCEPTION_TYPES))


# --------------------------------------------------------------------------- parameters


def _clean_code(value: object, max_len: int = 32) -> str | None:
    """A filter code from the query string: short, printable, lower case; junk becomes None."""
    if not isinstance(value, str):
        return None
    value = value.strip().lower()
    if not value or len(value) > max_len or not all(c.isalnum() or c in "_-" for c in value):
        return None
    return value


def _clean_int(value: object, lo: int = 1, hi: int = 2**62) -> int | None:
    """A positive integer from the query string, or None (never raises)."""
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return number if lo <= number <= hi else None


@dataclass(frozen=True)
class QueueQuery:
    """Sort, filters and page of a queue, parsed leniently from the query string.

    sort: "age" (time in the queue) or "value" (value at stake); order "desc" puts the
    oldest / most valuable first. `category` is the product type filter (`type=` in the URL).
    """

    sort: str = "age"
    order: str = "desc"
    warehouse_id: int | None = None
    category: str | None = None
    reason: str | None = None
    channel: str | None = None
    mine: bool = False  # an exception queue: only those the actor owns
    page: int = 1
    per_page: int = 50

    @classmethod
    def from_args(cls, args: Mapping[str, Any]) -> QueueQuery:
        """Parse request args; anything unknown or malformed falls back to the default."""
        sort = args.get("sort") if args.get("sort") in SORTS else "age"
        order = args.get("order") if args.get("order") in ORDERS else "desc"
        per_page = _clean_int(args.get("per_page"))
        category = _clean_code(args.get("type"))
        return cls(sort=sort, order=order, warehouse_id=_clean_int(args.get("warehouse")),
                   category=category,
                   reason=_clean_code(args.get("reason")), channel=_clean_code(args.get("channel")),
                   mine=args.get("mine") == "1", page=_clean_int(args.get("page"), hi=MAX_PAGE) or 1,
                   per_page=per_page if per_page in PER_PAGE_CHOICES else 50)

    def args(self, **changes: Any) -> dict[str, Any]:
        """Query-string arguments for url_for, defaults left out (short, shareable URLs)."""
        q = replace(self, **changes)
        out: dict[str, Any] = {}
        if q.sort != "age":
            out["sort"] = q.sort
        if q.order != "desc":
            out["order"] = q.order
        for key, value in (("warehouse", q.warehouse_id), ("type", q.category), ("reason", q.reason),
                           ("channel", q.channel)):
            if value is not None:
                out[key] = value
        if q.mine:
            out["mine"] = 1
        if q.page != 1:
            out["page"] = q.page
        if q.per_page != 50:
            out["per_page"] = q.per_page
        return out

    @property
    def filtered(self) -> bool:
        """True when any filter narrows the queue."""
        return self.mine or any(v is not None for v in (self.warehouse_id, self.category, self.reason, self.channel))


@dataclass
class QueueRow:
    """One item waiting for a supervisor, whatever the queue."""

    kind: str  # unit | refund | exception
    id: int  # the id of what is decided (unit, refund or exception)
    version: int
    unit_id: int | None
    lpn: str | None
    sku: str | None
    product_name: str | None
    category: str | None
    value: Decimal | None
    reason: str | None
    warehouse: str
    channel: str | None
    inspector: str | None
    entered_at: datetime
    aged: bool
    note: Said | str | None = None  # why it is here: the rule, the hold reasons, the exception's details
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def age_hours(self) -> float:
        """Hours since the item entered its queue."""
        return (utcnow() - as_utc(self.entered_at)).total_seconds() / 3600  # type: ignore[operator]


@dataclass
class QueuePage:
    """A page of a queue plus what the page header shows."""

    queue: str
    title: str
    rows: list[QueueRow]
    total: int
    aged_total: int
    query: QueueQuery
    ageing_hours: int

    @property
    def pages(self) -> int:
        """Number of pages (at least one)."""
        return max(1, -(-self.total // self.query.per_page))

    @property
    def has_prev(self) -> bool:
        """True when there is an earlier page."""
        return self.query.page > 1

    @property
    def has_next(self) -> bool:
        """True when there is a later page."""
        return self.query.page < self.pages


# --------------------------------------------------------------------------- counts


@dataclass
class QueueCount:
    """The landing page's figure for one queue."""

    queue: str
    label: str
    endpoint_args: dict[str, Any]
    total: int
    aged: int


def _cutoff(ageing_hours: int) -> datetime:
    return utcnow() - timedelta(hours=ageing_hours)


def queue_counts(session: Session, actor: Actor, ageing_hours: int) -> dict[str, Any]:
    """Open items and items past the ageing threshold, per queue: three aggregate queries."""
    cutoff = _cutoff(ageing_hours)
    aged_units = func.count(case((ReturnUnit.state_changed_at < cutoff, 1)))
    q_total, q_aged = session.execute(
        scope_units(select(func.count(), aged_units).select_from(ReturnUnit).where(ReturnUnit.state == "quarantine"), actor)
    ).one()
    since = func.coalesce(RefundTrigger.pending_since, RefundTrigger.created_at)
    r_total, r_aged = session.execute(
        scope_units(select(func.count(), func.count(case((since < cutoff, 1)))).select_from(RefundTrigger)
                    .join(ReturnUnit, ReturnUnit.id == RefundTrigger.unit_id)
                    .where(RefundTrigger.status == refund_domain.PENDING_APPROVAL), actor)
    ).one()
    rows = session.execute(
        scope_exceptions(select(ReturnException.type, func.count(), func.count(case((ReturnException.opened_at < cutoff, 1))))
                         .where(ReturnException.status == "open").group_by(ReturnException.type), actor)
    ).all()
    by_type = {t: (n, a) for t, n, a in rows}
    exceptions = [QueueCount(f"exceptions/{t}", EXCEPTION_LABELS[t], {"type_": t}, *by_type.get(t, (0, 0)))
                  for t in EXCEPTION_TYPES]
    return {
        "quarantine": QueueCount("quarantine", N_("Quarantine"), {}, q_total, q_aged),
        "refunds": QueueCount("refunds", N_("Refund approvals"), {}, r_total, r_aged),
        "exceptions": exceptions,
        "exceptions_total": sum(c.total for c in exceptions),
        "exceptions_aged": sum(c.aged for c in exceptions),
        "ageing_hours": ageing_hours,
    }


# --------------------------------------------------------------------------- queue pages

Inspector = aliased(User, name="inspector")
Owner = aliased(User, name="owner")


def _order(stmt: Select, q: QueueQuery, entered: Any, value: Any, tiebreak: Any) -> Select:
    """ORDER BY age or value, with the primary key as a stable tie-breaker for paging."""
    if q.sort == "value":
        key = func.coalesce(value, 0)
        return stmt.order_by(key.desc() if q.order == "desc" else key.asc(), tiebreak.asc())
    # Oldest first = largest age first = smallest entry time first.
    return stmt.order_by(entered.asc() if q.order == "desc" else entered.desc(), tiebreak.asc())


def _page(stmt: Select, q: QueueQuery) -> Select:
    return stmt.limit(q.per_page).offset((q.page - 1) * q.per_page)


def _flag_columns(unit_id: Any, rma_id: Any) -> list[Any]:
    """The row's anomaly tag, read in the queue's own statement (app.anomalies.queries): the kind of
    its unit's first open flag (a holding one first) and whether an open flag holds the refund."""
    return [first_open_flag(unit_id, rma_id).label("flag_kind"), holding_flag(unit_id, rma_id).label("flag_holds")]


def _flag_of(row: Any) -> dict[str, Any]:
    """A queue row's `extra` for its anomaly tag: `flag` (a kind) and `flag_holds`; nothing when none is open."""
    return {"flag": row.flag_kind, "flag_holds": bool(row.flag_holds)} if row.flag_kind else {}


def _aged(entered: datetime | None, cutoff: datetime) -> bool:
    return entered is not None and as_utc(entered) < cutoff  # type: ignore[operator]


def quarantine_queue(session: Session, actor: Actor, q: QueueQuery, ageing_hours: int) -> QueuePage:
    """Units in quarantine: one page query and one count."""
    cutoff = _cutoff(ageing_hours)
    value = func.coalesce(ReturnUnit.paid_price, Product.unit_value)

    def filters(stmt: Select, *, joined: bool) -> Select:
        stmt = stmt.where(ReturnUnit.state == "quarantine")
        if q.warehouse_id is not None:
            stmt = stmt.where(ReturnUnit.warehouse_id == q.warehouse_id)
        stmt = _unit_attribute_filters(stmt, q, joined=joined)
        return scope_units(stmt, actor)

    stmt = (select(ReturnUnit.id, ReturnUnit.version, ReturnUnit.lpn, ReturnUnit.state_changed_at, ReturnUnit.decision_rule,
                   ReturnUnit.serial_status, Product.sku, Product.name, Product.category, value.label("value"),
                   RmaLine.reason_code, Warehouse.code.label("warehouse"), SalesChannel.code.label("channel"),
                   Inspector.name.label("inspector"), *_flag_columns(ReturnUnit.id, ReturnUnit.rma_id))
            .select_from(ReturnUnit)
            .join(Product, Product.id == ReturnUnit.product_id)
            .join(Warehouse, Warehouse.id == ReturnUnit.warehouse_id)
            .outerjoin(RmaLine, RmaLine.id == ReturnUnit.rma_line_id)
            .outerjoin(Rma, Rma.id == ReturnUnit.rma_id)
            .outerjoin(SalesChannel, SalesChannel.id == Rma.channel_id)
            .outerjoin(Inspector, Inspector.id == ReturnUnit.inspected_by_id))
    stmt = _page(_order(filters(stmt, joined=True), q, ReturnUnit.state_changed_at, value, ReturnUnit.id), q)
    rows = [QueueRow(kind="unit", id=r.id, version=r.version, unit_id=r.id, lpn=r.lpn, sku=r.sku, product_name=r.name,
                     category=r.category, value=r.value, reason=r.reason_code, warehouse=r.warehouse, channel=r.channel,
                     inspector=r.inspector, entered_at=r.state_changed_at, aged=_aged(r.state_changed_at, cutoff),
                     note=r.decision_rule, extra={"serial_status": r.serial_status, **_flag_of(r)})
            for r in session.execute(stmt)]
    count = filters(select(func.count(), func.count(case((ReturnUnit.state_changed_at < cutoff, 1)))).select_from(ReturnUnit),
                    joined=False)
    total, aged = session.execute(count).one()
    return QueuePage("quarantine", N_("Quarantine"), rows, total, aged, q, ageing_hours)


def refund_queue(session: Session, actor: Actor, q: QueueQuery, ageing_hours: int) -> QueuePage:
    """Refunds waiting for a supervisor's approval: one page query and one count."""
    cutoff = _cutoff(ageing_hours)
    since = func.coalesce(RefundTrigger.pending_since, RefundTrigger.created_at)

    def filters(stmt: Select, *, joined: bool) -> Select:
        stmt = stmt.where(RefundTrigger.status == refund_domain.PENDING_APPROVAL)
        if q.warehouse_id is not None:
            stmt = stmt.where(RefundTrigger.warehouse_id == q.warehouse_id)
        stmt = _unit_attribute_filters(stmt, q, joined=joined)
        return scope_units(stmt, actor)

    stmt = (select(RefundTrigger.id, RefundTrigger.version, RefundTrigger.amount, RefundTrigger.paid_amount,
                   RefundTrigger.currency, RefundTrigger.hold_reasons, since.label("since"), ReturnUnit.id.label("unit_id"),
                   ReturnUnit.lpn, ReturnUnit.state, Product.sku, Product.name, Product.category, RmaLine.reason_code,
                   Warehouse.code.label("warehouse"), SalesChannel.code.label("channel"), Inspector.name.label("inspector"),
                   *_flag_columns(ReturnUnit.id, ReturnUnit.rma_id))
            .select_from(RefundTrigger)
            .join(ReturnUnit, ReturnUnit.id == RefundTrigger.unit_id)
            .join(Product, Product.id == ReturnUnit.product_id)
            .join(Warehouse, Warehouse.id == RefundTrigger.warehouse_id)
            .outerjoin(RmaLine, RmaLine.id == ReturnUnit.rma_line_id)
            .outerjoin(Rma, Rma.id == ReturnUnit.rma_id)
            .outerjoin(SalesChannel, SalesChannel.id == Rma.channel_id)
            .outerjoin(Inspector, Inspector.id == RefundTrigger.inspected_by_id))
    stmt = _page(_order(filters(stmt, joined=True), q, since, RefundTrigger.amount, RefundTrigger.id), q)
    rows = [QueueRow(kind="refund", id=r.id, version=r.version, unit_id=r.unit_id, lpn=r.lpn, sku=r.sku,
                     product_name=r.name, category=r.category, value=r.amount, reason=r.reason_code,
                     warehouse=r.warehouse, channel=r.channel, inspector=r.inspector, entered_at=r.since,
                     aged=_aged(r.since, cutoff), note="; ".join(r.hold_reasons or []) or None,
                     extra={"paid": r.paid_amount, "currency": r.currency, "unit_state": r.state, **_flag_of(r)})
            for r in session.execute(stmt)]
    count = filters(select(func.count(), func.count(case((since < cutoff, 1)))).select_from(RefundTrigger)
                    .join(ReturnUnit, ReturnUnit.id == RefundTrigger.unit_id), joined=False)
    total, aged = session.execute(count).one()
    return QueuePage("refunds", N_("Refund approvals"), rows, total, aged, q, ageing_hours)


def exception_queue(session: Session, actor: Actor, type_: str, q: QueueQuery, ageing_hours: int) -> QueuePage:
    """Open exceptions of one type: one page query and one count."""
    if type_ not in EXCEPTION_TYPES:
        raise ValueError(type_)
    cutoff = _cutoff(ageing_hours)
    line_id = func.coalesce(ReturnException.rma_line_id, ReturnUnit.rma_line_id)

    def filters(stmt: Select, *, joined: bool) -> Select:
        stmt = stmt.where(ReturnException.status == "open", ReturnException.type == type_)
        if q.mine:
            stmt = stmt.where(ReturnException.owner_id == actor.id)
        if q.warehouse_id is not None:
            stmt = stmt.where(ReturnException.warehouse_id == q.warehouse_id)
        if q.category is not None:
            if not joined:
                stmt = stmt.join(Product, Product.id == ReturnException.product_id)
            stmt = stmt.where(Product.category == q.category)
        if q.reason is not None:
            if not joined:
                stmt = (stmt.outerjoin(ReturnUnit, ReturnUnit.id == ReturnException.unit_id)
                        .join(RmaLine, RmaLine.id == line_id))
            stmt = stmt.where(RmaLine.reason_code == q.reason)
        if q.channel is not None:
            if not joined:
                stmt = stmt.join(Rma, Rma.id == ReturnException.rma_id).join(SalesChannel, SalesChannel.id == Rma.channel_id)
            stmt = stmt.where(SalesChannel.code == q.channel)
        return scope_exceptions(stmt, actor)

    stmt = (select(ReturnException.id, ReturnException.version, ReturnException.opened_at, ReturnException.value,
                   ReturnException.quantity, ReturnException.details, ReturnException.parcel_id,
                   ReturnUnit.id.label("unit_id"), ReturnUnit.lpn, Product.sku, Product.name, Product.category,
                   RmaLine.reason_code, Warehouse.code.label("warehouse"), SalesChannel.code.label("channel"),
                   Inspector.name.label("inspector"), Rma.number.label("rma_number"), ReturnException.due_at,
                   Owner.name.label("owner"), *_flag_columns(ReturnException.unit_id, ReturnException.rma_id))
            .select_from(ReturnException)
            .join(Warehouse, Warehouse.id == ReturnException.warehouse_id)
            .outerjoin(ReturnUnit, ReturnUnit.id == ReturnException.unit_id)
            .outerjoin(Product, Product.id == ReturnException.product_id)
            .outerjoin(RmaLine, RmaLine.id == line_id)
            .outerjoin(Rma, Rma.id == ReturnException.rma_id)
            .outerjoin(SalesChannel, SalesChannel.id == Rma.channel_id)
            .outerjoin(Inspector, Inspector.id == func.coalesce(ReturnUnit.inspected_by_id, ReturnException.opened_by_id))
            .outerjoin(Owner, Owner.id == ReturnException.owner_id))
    stmt = _page(_order(filters(stmt, joined=True), q, ReturnException.opened_at, ReturnException.value,
                        ReturnException.id), q)
    rows, now = [], utcnow()
    for r in session.execute(stmt):
        details = dict(r.details or {})
        note = _exception_note(type_, details, r.quantity, r.rma_number)
        due, overdue = due_words(as_utc(r.due_at), now)
        rows.append(QueueRow(kind="exception", id=r.id, version=r.version, unit_id=r.unit_id, lpn=r.lpn,
                             sku=r.sku or details.get("sku"), product_name=r.name, category=r.category, value=r.value,
                             reason=r.reason_code, warehouse=r.warehouse, channel=r.channel, inspector=r.inspector,
                             entered_at=r.opened_at, aged=_aged(r.opened_at, cutoff), note=note,
                             extra={"type": type_, "parcel_id": r.parcel_id, "rma_number": r.rma_number,
                                    "owner": r.owner, "due": due, "overdue": overdue, **_flag_of(r)}))
    count = filters(select(func.count(), func.count(case((ReturnException.opened_at < cutoff, 1)))).select_from(ReturnException),
                    joined=False)
    total, aged = session.execute(count).one()
    return QueuePage(f"exceptions/{type_}", EXCEPTION_LABELS[type_], rows, total, aged, q, ageing_hours)


def _exception_note(type_: str, details: dict[str, Any], quantity: int, rma_number: str | None) -> Said | None:
    """One line saying what the exception is about."""
    if type_ == "unidentified_parcel":
        return Said(N_("label scanned: %(code)s"), {"code": details.get("scanned_code", "?")})
    if type_ == "missing_item":
        counts = {"expected": quantity, "received": details.get("received", 0)}
        return (Said(N_("%(expected)s expected, %(received)s received on %(rma)s"), {**counts, "rma": rma_number})
                if rma_number else Said(N_("%(expected)s expected, %(received)s received"), counts))
    if type_ == "serial_mismatch":
        return Said(N_("serial %(serial)s was not shipped on this order"), {"serial": details.get("serial", "?")})
    return Said(N_("on %(rma)s"), {"rma": rma_number}) if rma_number else None


# --------------------------------------------------------------------------- filter choices


@dataclass
class FilterChoices:
    """What the filter drop-downs offer."""

    warehouses: list[tuple[int, str]]
    categories: list[tuple[str, str]]
    reasons: list[tuple[str, str]]
    channels: list[tuple[str, str]]


def filter_choices(session: Session, actor: Actor) -> FilterChoices:
    """Warehouses the actor sees, product types, reason codes and channels (small lookup tables)."""
    warehouses = [(w.id, f"{w.code} · {w.name}") for w in
                  session.scalars(scope_warehouses(select(Warehouse).order_by(Warehouse.code), actor))]
    reasons = [(r.code, r.label) for r in session.scalars(select(ReasonCode).order_by(ReasonCode.label))]
    channels = [(c.code, c.name) for c in session.scalars(select(SalesChannel).order_by(SalesChannel.name))]
    return FilterChoices(warehouses, category_choices(session), reasons, channels)


# --------------------------------------------------------------------------- the case file


# What each step of a timeline is about, as the timeline names it.
TIMELINE_KINDS = {"unit": N_("unit"), "refund": N_("refund"), "exception": N_("exception"), "parcel": N_("parcel"),
                  "return": N_("return")}


@dataclass
class TimelineItem:
    """One thing that happened to a unit, its refund or its exceptions: `said` in words (a screen says
    them in the reader's language; `title` is the English), with a `detail` that is either more words
    or a person's own text (a reason, a label scanned), shown as written."""

    at: datetime
    kind: str  # a key of TIMELINE_KINDS
    said: Said
    detail: Said | str | None
    who: str | None
    order: int = 0

    @property
    def title(self) -> str:
        return str(self.said)

    @property
    def kind_label(self) -> str:
        return TIMELINE_KINDS.get(self.kind, self.kind)


@dataclass
class UnitCase:
    """Everything a supervisor needs to decide about one unit."""

    unit: ReturnUnit
    product: Product
    warehouse: Warehouse
    location: Location | None
    merchant: Merchant | None
    rma: Rma | None
    rma_line: RmaLine | None
    channel: SalesChannel | None
    parcel: Parcel | None
    photos: list[Photo]
    inspections: list[tuple[Inspection, str | None]]
    checklist_labels: dict[str, str]
    serials_expected: list[str]
    refund: RefundTrigger | None
    exceptions: list[ReturnException]
    history: tuple[int, float] | None
    timeline: list[TimelineItem]
    names: dict[int, str]
    targets: list[str]
    value: Decimal | None
    flags: list[AnomalyFlag] = field(default_factory=list)  # the unit's and its return's, oldest first

    @property
    def holding_kinds(self) -> list[str]:
        """The kinds of the flags that hold the refund (what its "fraud flag" is): those not cleared,
        else (the refund was decided, which cleared them) those that held it."""
        holding = [f for f in self.flags if f.holds]
        return list(dict.fromkeys(f.kind for f in ([f for f in holding if f.cleared_at is None] or holding)))

    @property
    def state_label(self) -> str:
        """The unit's state in words."""
        return STATE_LABELS.get(self.unit.state, self.unit.state)


def supervisor_targets(state: str) -> list[str]:
    """The states a supervisor may move a unit to from `state` (received units go through disposition)."""
    if state == "received":
        return []
    return [s for s, roles in EDGES.get(state, {}).items() if "supervisor" in roles]


def _names(session: Session, ids: set[int | None]) -> dict[int, str]:
    ids_ = {i for i in ids if i is not None}
    if not ids_:
        return {}
    return dict(session.execute(select(User.id, User.name).where(User.id.in_(ids_))).all())


def unit_case(session: Session, actor: Actor, unit_id: int) -> UnitCase:
    """Load one unit's case file (scoped: NotFound for a unit the actor may not see)."""
    from app.disposition.services import customer_history

    unit = load_unit(session, actor, unit_id)
    product = session.get(Product, unit.product_id)
    assert product is not None
    rma = session.get(Rma, unit.rma_id) if unit.rma_id else None
    rma_line = session.get(RmaLine, unit.rma_line_id) if unit.rma_line_id else None
    channel = session.get(SalesChannel, rma.channel_id) if rma else None
    parcel = session.get(Parcel, unit.parcel_id) if unit.parcel_id else None
    photos = list(session.scalars(scope_photos(select(Photo).where(Photo.unit_id == unit.id).order_by(Photo.id), actor)))
    inspections_rows = list(session.scalars(select(Inspection).where(Inspection.unit_id == unit.id)
                                            .order_by(Inspection.id.desc())))
    order_line_id = rma_line.order_line_id if rma_line else None
    if order_line_id is None and rma is not None and rma.order_id is not None:
        order_line_id = session.scalars(select(OrderLine.id).where(OrderLine.order_id == rma.order_id,
                                                                  OrderLine.product_id == unit.product_id)
                                        .order_by(OrderLine.id).limit(1)).first()
    serials = list(session.scalars(select(ShippedSerial.serial).where(ShippedSerial.order_line_id == order_line_id)
                                   .order_by(ShippedSerial.serial))) if order_line_id else []
    refund = session.scalars(select(RefundTrigger).where(RefundTrigger.unit_id == unit.id)).first()
    exceptions = list(session.scalars(select(ReturnException).where(ReturnException.unit_id == unit.id)
                                      .order_by(ReturnException.id)))
    history = customer_history(session, rma.customer_id) if rma and rma.customer_id else None
    flags = unit_flags(session, unit.id, unit.rma_id)
    timeline, names = _timeline(session, actor, unit, product, refund, exceptions)
    wanted: set[int | None] = {i.inspector_id for i in inspections_rows} | {unit.inspected_by_id, unit.received_by_id}
    wanted |= {e.resolved_by_id for e in exceptions}
    wanted |= {f.created_by_id for f in flags} | {f.cleared_by_id for f in flags}
    if refund is not None:
        wanted |= {refund.inspected_by_id, refund.override_by_id, refund.decided_by_id}
    names.update(_names(session, wanted - set(names)))
    return UnitCase(
        unit=unit, product=product, warehouse=session.get(Warehouse, unit.warehouse_id),  # type: ignore[arg-type]
        location=session.get(Location, unit.location_id) if unit.location_id else None,
        merchant=session.get(Merchant, unit.merchant_id) if unit.merchant_id else None,
        rma=rma, rma_line=rma_line, channel=channel, parcel=parcel, photos=photos,
        inspections=[(i, names.get(i.inspector_id or 0)) for i in inspections_rows],
        # the category's items, then a kit's one check per component (as the handheld asked them)
        checklist_labels={item["key"]: item["label"] for item in [*checklist_for(session, product.category).items,
                                                                   *component_items(kit_components(session, product.id))]},
        serials_expected=serials, refund=refund, exceptions=exceptions, history=history, timeline=timeline,
        names=names, targets=supervisor_targets(unit.state),
        value=unit.paid_price if unit.paid_price is not None else product.unit_value, flags=flags,
    )


def _timeline(session: Session, actor: Actor, unit: ReturnUnit, product: Product, refund: RefundTrigger | None,
              exceptions: list[ReturnException]) -> tuple[list[TimelineItem], dict[int, str]]:
    """The unit's steps in words, each told once (the return page's _Story): its moves from the
    ledger, its refund's events, its exceptions, and what the audit trail adds (inspections, photos)."""
    ledger = list(session.scalars(select(LedgerEntry).where(LedgerEntry.unit_id == unit.id).order_by(LedgerEntry.id)))
    refund_events = list(session.scalars(select(RefundEvent).where(RefundEvent.refund_id == refund.id)
                                         .order_by(RefundEvent.id))) if refund else []
    audits = list(session.scalars(select(AuditEntry).where(AuditEntry.entity_type == "unit", AuditEntry.entity_id == unit.id)
                                  .order_by(AuditEntry.id)))
    names = _names(session, {e.actor_id for e in ledger} | {e.actor_id for e in refund_events}
                   | {e.opened_by_id for e in exceptions} | {e.resolved_by_id for e in exceptions})
    story = _Story({unit.id: unit}, {product.id: product},
                   _by_id(session, Location, {e.to_location_id for e in ledger if e.to_location_id is not None}),
                   _by_id(session, Warehouse, {e.warehouse_id for e in ledger} | {unit.warehouse_id}), names,
                   actor.can("see_refund_amounts"))
    items = story.steps(ledger, [refund] if refund else [], refund_events, exceptions, audits)
    items.sort(key=lambda i: (as_utc(i.at), i.order))
    return items, names


@dataclass
class ExceptionCase:
    """An exception without (or beyond) a unit: the parcel, its units, the return it may belong to."""

    exception: ReturnException
    parcel: Parcel | None
    units: list[ReturnUnit]
    rma: Rma | None
    product: Product | None
    timeline: list[TimelineItem]
    names: dict[int, str]
    photo_ids: list[int] = field(default_factory=list)  # of the box (an empty or damaged parcel)
    due: str = ""
    overdue: bool = False
    owners: list[tuple[int, str]] = field(default_factory=list)  # who may own it: the active supervisors


def exception_case(session: Session, actor: Actor, exception_id: int) -> ExceptionCase:
    """Load one exception's case (scoped)."""
    from app.exceptions.queries import load_exception

    exc = load_exception(session, actor, exception_id)
    parcel = session.get(Parcel, exc.parcel_id) if exc.parcel_id else None
    units: list[ReturnUnit] = []
    if parcel is not None:
        units = list(session.scalars(scope_units(select(ReturnUnit).where(ReturnUnit.parcel_id == parcel.id)
                                                 .order_by(ReturnUnit.id), actor)))
    elif exc.unit_id is not None:
        units = list(session.scalars(scope_units(select(ReturnUnit).where(ReturnUnit.id == exc.unit_id), actor)))
    about = [and_(AuditEntry.entity_type == "exception", AuditEntry.entity_id == exc.id)]
    if parcel is not None:
        about.append(and_(AuditEntry.entity_type == "parcel", AuditEntry.entity_id == parcel.id))
    audits = list(session.scalars(select(AuditEntry).where(or_(*about)).order_by(AuditEntry.id)))
    names = _names(session, {exc.opened_by_id, exc.resolved_by_id, parcel.opened_by_id if parcel else None,
                             parcel.closed_by_id if parcel else None})
    products = _by_id(session, Product, {u.product_id for u in units} | ({exc.product_id} if exc.product_id else set()))
    story = _Story({u.id: u for u in units}, products, {}, _by_id(session, Warehouse, {parcel.warehouse_id} if parcel else set()),
                   names, actor.can("see_refund_amounts"))
    items = story.merge(None, [parcel] if parcel else [], [], [], [], [exc], audits)
    # the exception is the actor's to see (load_exception): so are the photos of its box
    photo_ids = list(session.scalars(select(Photo.id).where(Photo.exception_id == exc.id).order_by(Photo.id)))
    owners = [(u.id, u.name) for u in session.execute(
        select(User.id, User.name).where(User.active.is_(True), User.role.in_(sorted(PERMISSIONS["resolve_exceptions"])))
        .order_by(User.name))]
    names.update(_names(session, {exc.owner_id} - set(names)))
    due, overdue = due_words(as_utc(exc.due_at), utcnow())
    return ExceptionCase(exception=exc, parcel=parcel, units=units,
                         rma=session.get(Rma, exc.rma_id) if exc.rma_id else None,
                         product=session.get(Product, exc.product_id) if exc.product_id else None,
                         timeline=items, names=names, photo_ids=photo_ids, due=due, overdue=overdue, owners=owners)


def _unit_attribute_filters(stmt: Select, q: QueueQuery, *, joined: bool) -> Select:
    """Filters on the unit's product category, reason code and sales channel (joining what the
    count query lacks; the list query has the joins already)."""
    if q.category is not None:
        if not joined:
            stmt = stmt.join(Product, Product.id == ReturnUnit.product_id)
        stmt = stmt.where(Product.category == q.category)
    if q.reason is not None:
        if not joined:
            stmt = stmt.join(RmaLine, RmaLine.id == ReturnUnit.rma_line_id)
        stmt = stmt.where(RmaLine.reason_code == q.reason)
    if q.channel is not None:
        if not joined:
            stmt = stmt.join(Rma, Rma.id == ReturnUnit.rma_id).join(SalesChannel, SalesChannel.id == Rma.channel_id)
        stmt = stmt.where(SalesChannel.code == q.channel)
    return stmt


# --------------------------------------------------------------------------- a return's page


@dataclass(frozen=True)
class LineView:
    """A line of a return: what was expected and how many units filled it."""

    sku: str
    product_name: str
    quantity: int
    received: int
    reason_code: str
    resolution: str
    exchange_sku: str | None


@dataclass(frozen=True)
class ParcelView:
    """A parcel of a return, named by its order of arrival and the label scanned."""

    number: int
    label: str
    warehouse: str
    status: str
    opened_at: datetime
    opened_by: str | None
    closed_at: datetime | None
    units: int


@dataclass(frozen=True)
class UnitView:
    """A unit of a return."""

    id: int
    lpn: str
    sku: str
    product_name: str
    serial: str | None
    state: str
    location: str | None
    grade: str | None
    value: Decimal | None  # None when the actor may not see money


@dataclass(frozen=True)
class ExceptionView:
    """An exception raised on a return, its units or parcels."""

    id: int
    type: str
    status: str
    lpn: str | None
    sku: str | None
    opened_at: datetime
    resolution: str | None


@dataclass(frozen=True)
class RefundView:
    """A unit's refund trigger; the amounts are None when the actor may not see money."""

    lpn: str
    status: str
    resolution: str
    exchange_sku: str | None
    amount: Decimal | None
    paid: Decimal | None
    currency: str


@dataclass
class ReturnPage:
    """Everything about one return: lines, parcels, units, exceptions, refunds, one timeline."""

    rma: Rma
    merchant: str
    channel: str
    warehouse: str
    customer: Customer | None
    order_number: str | None
    trackings: list[tuple[str, str, str]]  # (carrier, number, status)
    lines: list[LineView]
    parcels: list[ParcelView]
    units: list[UnitView]
    exceptions: list[ExceptionView]
    refunds: list[RefundView]
    timeline: list[TimelineItem]
    show_money: bool
    flags: list[tuple[AnomalyFlag, str | None]] = field(default_factory=list)  # each with its unit's LPN (None: the return's)
    names: dict[int, str] = field(default_factory=dict)  # who raised and cleared the flags


def return_page(session: Session, actor: Actor, rma_id: int) -> ReturnPage:
    """Load one return's page (scoped: NotFound for a return the actor may not see, the same
    answer as for one that does not exist). Every read goes by an indexed foreign key."""
    rma = load_rma(session, actor, rma_id)
    show_money = actor.can("see_refund_amounts")
    merchant = session.get(Merchant, rma.merchant_id)
    channel = session.get(SalesChannel, rma.channel_id)
    warehouse = session.get(Warehouse, rma.warehouse_id)
    customer = session.get(Customer, rma.customer_id) if rma.customer_id else None
    order = session.get(Order, rma.order_id) if rma.order_id else None
    trackings = [(t.carrier, t.tracking_number, t.status) for t in
                 session.scalars(select(CarrierTracking).where(CarrierTracking.rma_id == rma.id).order_by(CarrierTracking.id))]

    units = list(session.scalars(scope_units(select(ReturnUnit).where(ReturnUnit.rma_id == rma.id)
                                             .order_by(ReturnUnit.id), actor)))
    unit_ids = [u.id for u in units]
    products = _by_id(session, Product, {u.product_id for u in units})
    line_rows = list(session.execute(select(RmaLine, Product).join(Product, Product.id == RmaLine.product_id)
                                     .where(RmaLine.rma_id == rma.id).order_by(RmaLine.id)))
    received = {}
    for u in units:
        if u.rma_line_id is not None:
            received[u.rma_line_id] = received.get(u.rma_line_id, 0) + 1
    lines = [LineView(p.sku, p.name, line.quantity, received.get(line.id, 0), line.reason_code, line.resolution,
                      line.exchange_sku) for line, p in line_rows]
    products.update({p.id: p for _, p in line_rows})

    parcels = list(session.scalars(scope_parcels(select(Parcel).where(Parcel.rma_id == rma.id).order_by(Parcel.opened_at, Parcel.id),
                                                 actor)))
    exc_where = [ReturnException.rma_id == rma.id]
    if unit_ids:
        exc_where.append(ReturnException.unit_id.in_(unit_ids))
    if parcels:
        exc_where.append(ReturnException.parcel_id.in_([p.id for p in parcels]))
    exceptions = list(session.scalars(scope_exceptions(select(ReturnException).where(or_(*exc_where))
                                                       .order_by(ReturnException.opened_at, ReturnException.id), actor)))
    refunds = list(session.scalars(select(RefundTrigger).where(RefundTrigger.unit_id.in_(unit_ids)).order_by(RefundTrigger.id))) \
        if unit_ids else []
    ledger = list(session.scalars(select(LedgerEntry).where(LedgerEntry.unit_id.in_(unit_ids)).order_by(LedgerEntry.id))) \
        if unit_ids else []
    refund_events = list(session.scalars(select(RefundEvent).where(RefundEvent.refund_id.in_([r.id for r in refunds]))
                                         .order_by(RefundEvent.id))) if refunds else []
    entities = [and_(AuditEntry.entity_type == "rma", AuditEntry.entity_id == rma.id)]
    if unit_ids:
        entities.append(and_(AuditEntry.entity_type == "unit", AuditEntry.entity_id.in_(unit_ids)))
    if parcels:
        entities.append(and_(AuditEntry.entity_type == "parcel", AuditEntry.entity_id.in_([p.id for p in parcels])))
    audits = list(session.scalars(select(AuditEntry).where(or_(*entities)).order_by(AuditEntry.id)))
    # the return's flags and those of its units the actor may see
    flags = [f for f in return_flags(session, rma.id) if f.unit_id is None or f.unit_id in set(unit_ids)]

    location_ids = {u.location_id for u in units} | {e.to_location_id for e in ledger}
    locations = _by_id(session, Location, {i for i in location_ids if i is not None})
    warehouses = _by_id(session, Warehouse, {rma.warehouse_id} | {p.warehouse_id for p in parcels} | {u.warehouse_id for u in units})
    products.update(_by_id(session, Product, {e.product_id for e in exceptions if e.product_id} - set(products)))
    names = _names(session, {e.actor_id for e in ledger} | {e.actor_id for e in refund_events}
                   | {p.opened_by_id for p in parcels} | {p.closed_by_id for p in parcels}
                   | {e.opened_by_id for e in exceptions} | {e.resolved_by_id for e in exceptions}
                   | {f.created_by_id for f in flags} | {f.cleared_by_id for f in flags})
    by_unit = {u.id: u for u in units}
    units_in_parcel: dict[int, int] = {}
    for u in units:
        if u.parcel_id is not None:
            units_in_parcel[u.parcel_id] = units_in_parcel.get(u.parcel_id, 0) + 1
    parcel_views = [ParcelView(n, p.scanned_code, warehouses[p.warehouse_id].name, p.status, p.opened_at,
                               names.get(p.opened_by_id or 0), p.closed_at, units_in_parcel.get(p.id, 0))
                    for n, p in enumerate(parcels, start=1)]
    unit_views = [UnitView(u.id, u.lpn, products[u.product_id].sku, products[u.product_id].name, u.serial, u.state,
                           locations[u.location_id].code if u.location_id in locations else None, u.grade,
                           (u.paid_price if u.paid_price is not None else products[u.product_id].unit_value) if show_money else None)
                  for u in units]
    exception_views = [ExceptionView(e.id, e.type, e.status, by_unit[e.unit_id].lpn if e.unit_id in by_unit else None,
                                     products[e.product_id].sku if e.product_id in products else None, e.opened_at,
                                     e.resolution) for e in exceptions]
    refund_views = [RefundView(by_unit[r.unit_id].lpn, r.status, r.resolution, r.exchange_sku,
                               r.amount if show_money else None, r.paid_amount if show_money else None, r.currency)
                    for r in refunds]
    story = _Story(by_unit, products, locations, warehouses, names, show_money)
    timeline = story.merge(rma, parcels, ledger, refunds, refund_events, exceptions, audits)
    return ReturnPage(rma=rma, merchant=merchant.name if merchant else "", channel=channel.name if channel else "",
                      warehouse=warehouse.name if warehouse else "", customer=customer,
                      order_number=order.number if order else None, trackings=trackings, lines=lines,
                      parcels=parcel_views, units=unit_views, exceptions=exception_views, refunds=refund_views,
                      timeline=timeline, show_money=show_money,
                      flags=[(f, by_unit[f.unit_id].lpn if f.unit_id in by_unit else None) for f in flags], names=names)


def _by_id(session: Session, model: Any, ids: set[int]) -> dict[int, Any]:
    if not ids:
        return {}
    return {row.id: row for row in session.scalars(select(model).where(model.id.in_(ids)))}


@dataclass
class _Story:
    """Turns the rows of one return into timeline steps in words: each step told once, by the
    record that owns it (a unit's moves by the ledger, a refund's by its events, a parcel and an
    exception by their own rows, the rest by the audit trail); no database ids."""

    units: dict[int, ReturnUnit]
    products: dict[int, Product]
    locations: dict[int, Location]
    warehouses: dict[int, Warehouse]
    names: dict[int, str]
    show_money: bool

    def unit(self, unit_id: int | None) -> str:
        u = self.units.get(unit_id or 0)
        if u is None:
            return "—"
        p = self.products.get(u.product_id)
        return f"{u.lpn} ({p.name})" if p else u.lpn

    def place(self, location_id: int | None, warehouse_id: int) -> Said | str:
        wh = self.warehouses.get(warehouse_id)
        loc = self.locations.get(location_id or 0)
        if loc is None:
            return wh.name if wh else ""
        if wh is None:
            return loc.code
        return Said(N_("%(warehouse)s %(type)s (%(code)s)"),
                    {"warehouse": wh.name, "type": LOCATION_TYPE_LABELS.get(loc.type, loc.type), "code": loc.code},
                    frozenset({"type"}))

    def who(self, user_id: int | None, fallback: str | None = None) -> str | None:
        return self.names.get(user_id or 0, fallback)

    def merge(self, rma: Rma | None, parcels: list[Parcel], ledger: list[LedgerEntry], refunds: list[RefundTrigger],
              refund_events: list[RefundEvent], exceptions: list[ReturnException],
              audits: list[AuditEntry]) -> list[TimelineItem]:
        items = self.steps(ledger, refunds, refund_events, exceptions, audits)
        if rma is not None and not any(a.action == "rma.created" for a in audits):
            items.append(TimelineItem(rma.created_at, "return", Said(N_("Return %(rma)s authorised"), {"rma": rma.number}),
                                      None, None, 0))
        if rma is not None and rma.closed_at is not None:
            items.append(TimelineItem(rma.closed_at, "return", Said(N_("Return %(rma)s closed"), {"rma": rma.number}),
                                      None, None, 6))
        for n, p in enumerate(parcels, start=1):
            wh = self.warehouses.get(p.warehouse_id)
            opened = (Said(N_("Parcel %(n)s opened at %(warehouse)s"), {"n": n, "warehouse": wh.name}) if wh
                      else Said(N_("Parcel %(n)s opened"), {"n": n}))
            items.append(TimelineItem(p.opened_at, "parcel", opened,
                                      Said(N_("label scanned: %(code)s"), {"code": p.scanned_code}), self.who(p.opened_by_id), 1))
            if p.closed_at is not None:
                items.append(TimelineItem(p.closed_at, "parcel", Said(N_("Parcel %(n)s closed"), {"n": n}), None,
                                          self.who(p.closed_by_id), 5))
        items.sort(key=lambda i: (as_utc(i.at), i.order))
        return items

    def steps(self, ledger: list[LedgerEntry], refunds: list[RefundTrigger], refund_events: list[RefundEvent],
              exceptions: list[ReturnException], audits: list[AuditEntry]) -> list[TimelineItem]:
        """The units' steps (moves, refunds, exceptions, and what the audit trail adds), unsorted."""
        from app.exceptions.services import RESOLUTION_LABELS

        items = [step for step in map(self.audit, audits) if step is not None]
        for e in ledger:
            what, where = self.unit(e.unit_id), self.place(e.to_location_id, e.warehouse_id)
            to = STATE_LABELS.get(e.to_state, e.to_state)
            if e.from_state is None:
                title = Said(N_("Received %(unit)s at %(place)s"), {"unit": what, "place": where})
            elif where:
                title = Said(N_("%(unit)s moved to %(state)s at %(place)s"), {"unit": what, "state": to, "place": where},
                             frozenset({"state"}))
            else:
                title = Said(N_("%(unit)s moved to %(state)s"), {"unit": what, "state": to}, frozenset({"state"}))
            items.append(TimelineItem(e.at, "unit", title, e.reason, self.who(e.actor_id, e.actor_role), 2))
        refund_units = {r.id: r for r in refunds}
        for e in refund_events:
            r = refund_units[e.refund_id]
            figures = {"unit": self.units[r.unit_id].lpn if r.unit_id in self.units else "—",
                       "status": refund_domain.STATUS_LABELS.get(e.to_status, e.to_status)}
            if self.show_money:
                title = Said(N_("Refund for %(unit)s %(status)s: %(amount)s %(currency)s"),
                             {**figures, "amount": e.amount, "currency": r.currency}, frozenset({"status"}),
                             frozenset({"amount"}))
            else:
                title = Said(N_("Refund for %(unit)s %(status)s"), figures, frozenset({"status"}))
            why = e.reason if self.show_money else None  # a hold's or a decision's reason may quote the amount
            items.append(TimelineItem(e.at, "refund", title, why, self.who(e.actor_id, "Dockhand"), 3))
        for x in exceptions:
            label = EXCEPTION_LABELS.get(x.type, x.type)
            product = self.products.get(x.product_id or 0)
            if x.unit_id in self.units:
                opened = Said(N_("Exception: %(type)s on %(unit)s"), {"type": label, "unit": self.unit(x.unit_id)},
                              frozenset({"type"}))
            elif product is not None:
                opened = Said(N_("Exception: %(type)s: %(product)s"), {"type": label, "product": product.name},
                              frozenset({"type"}))
            else:
                opened = Said(N_("Exception: %(type)s"), {"type": label}, frozenset({"type"}))
            counts = x.details or {}
            detail = (Said(N_("%(expected)s expected, %(received)s received"),
                           {"expected": counts.get("expected", "?"), "received": counts.get("received", "?")})
                      if x.type == "missing_item" else None)
            items.append(TimelineItem(x.opened_at, "exception", opened, detail, self.who(x.opened_by_id), 4))
            if x.resolved_at is not None:
                outcome = RESOLUTION_LABELS.get(x.resolution or "", (x.resolution or "resolved").replace("_", " "))
                items.append(TimelineItem(x.resolved_at, "exception",
                                          Said(N_("%(type)s resolved: %(outcome)s"), {"type": label, "outcome": outcome},
                                               frozenset({"type", "outcome"})),
                                          x.resolution_reason, self.who(x.resolved_by_id), 4))
        return items

    def audit(self, a: AuditEntry) -> TimelineItem | None:
        """The step an audit entry tells, or None when another record tells it (a unit's move, a
        parcel opened or closed) or it is not about the goods (a label printed)."""
        details = a.details or {}
        if a.action == "anomaly.flagged" and a.entity_type in ("unit", "rma"):
            kind = {"kind": KIND_LABELS.get(details.get("kind", ""), details.get("kind", "?"))}
            said = (Said(N_("%(unit)s flagged: %(kind)s"), {"unit": self.unit(a.entity_id), **kind}, frozenset({"kind"}))
                    if a.entity_type == "unit" else Said(N_("Return flagged: %(kind)s"), kind, frozenset({"kind"})))
            # no detail: the flag's card explains it in the reader's language, and keeps a customer's
            # amounts from those who may not see money
            return TimelineItem(a.at, "unit" if a.entity_type == "unit" else "return", said, None, a.actor_name, 2)
        if a.entity_type == "unit":
            if "to_state" in details:
                return None  # the ledger row tells the move
            what = {"unit": self.unit(a.entity_id)}
            if a.action in ("unit.inspected", "unit.regraded"):
                template = (N_("Inspected %(unit)s: grade %(grade)s, packaging %(packaging)s") if a.action == "unit.inspected"
                            else N_("Re-graded %(unit)s: grade %(grade)s, packaging %(packaging)s"))
                packaging = str(details.get("packaging", "?"))
                return TimelineItem(a.at, "unit", Said(template, {**what, "grade": details.get("grade", "?"),
                                                                  "packaging": PACKAGING_LABELS.get(packaging, packaging)},
                                                       frozenset({"packaging"})), a.reason, a.actor_name, 2)
            template = UNIT_STEPS.get(a.action)
            said = (Said(template, what) if template is not None
                    else Said("%(unit)s: %(step)s", {**what, "step": a.action.split(".", 1)[-1].replace("_", " ")}))
            return TimelineItem(a.at, "unit", said, a.reason, a.actor_name, 2)
        if a.entity_type == "parcel":
            if a.action == "parcel.linked_to_rma":
                return TimelineItem(a.at, "parcel", Said(N_("Blind parcel linked to this return")), a.reason, a.actor_name, 1)
            return None  # opened and closed: the parcel's row tells them
        if a.entity_type == "exception" and a.action == "exception.assigned":
            owner = (details.get("after") or {}).get("owner")
            said = Said(N_("Given to %(owner)s"), {"owner": owner}) if owner else Said(N_("Given back: nobody owns it"))
            return TimelineItem(a.at, "exception", said, a.reason, a.actor_name, 4)
        if a.entity_type == "rma":
            template = RETURN_STEPS.get(a.action)
            said = (Said(template) if template is not None
                    else Said(a.action.split(".", 1)[-1].replace("_", " ").capitalize()))
            return TimelineItem(a.at, "return", said, a.reason, a.actor_name, 0)
        return None


# The audit trail's steps of a unit and of a return that a timeline tells, in words.
UNIT_STEPS = {"unit.photo_added": N_("Photo added to %(unit)s"), "unit.linked_to_rma": N_("%(unit)s linked to this return"),
              "unit.accepted_as_sku": N_("%(unit)s accepted as another SKU")}
RETURN_STEPS = {"rma.created": N_("Return authorised"), "rma.cancelled": N_("Return cancelled"),
                "rma.lines_changed": N_("Return's items changed")}
LOCATION_TYPE_LABELS = {"dock": N_("dock"), "inspection": N_("inspection"), "stock": N_("stock"),
                        "quarantine": N_("quarantine"), "refurbish": N_("refurbish"), "vendor_return": N_("vendor return"),
                        "liquidation": N_("liquidation"), "scrap": N_("scrap")}
PACKAGING_LABELS = {"sealed": N_("sealed"), "opened": N_("opened"), "damaged": N_("damaged"), "missing": N_("missing")}


# --------------------------------------------------------------------------- a customer's returns


@dataclass(frozen=True)
class ReturnHit:
    """A return in a list: found by a search (`how`: by its RMA, tracking or order number), or a customer's."""

    id: int
    number: str
    status: str
    created_at: datetime
    warehouse: str
    customer: str | None
    how: str


@dataclass
class CustomerPage:
    """A customer and the returns of theirs the actor sees, newest first."""

    customer: Customer
    returns: list[ReturnHit]


def customer_page(session: Session, actor: Actor, customer_id: int) -> CustomerPage:
    """A customer with their returns (scoped). NotFound when the customer does not exist, or, for a
    partner, has no return in their scope (a partner never learns of a customer outside it)."""
    customer = session.get(Customer, customer_id)
    if customer is None:
        raise NotFound(N_("No such customer."))
    stmt = (scope_rmas(select(Rma.id, Rma.number, Rma.status, Rma.created_at, Warehouse.code.label("warehouse"))
                       .join(Warehouse, Warehouse.id == Rma.warehouse_id).where(Rma.customer_id == customer_id), actor)
            .order_by(Rma.created_at.desc(), Rma.id.desc()).limit(200))
    returns = [ReturnHit(r.id, r.number, r.status, r.created_at, r.warehouse, customer.name, "")
               for r in session.execute(stmt)]
    if actor.is_partner and not returns:
        raise NotFound(N_("No such customer."))
    return CustomerPage(customer, returns)


# --------------------------------------------------------------------------- search


SEARCH_MAX = 200  # longer than any code or name: answered without a query
NAME_MIN = 2  # a name is searched from two characters on
SEARCH_LIMIT = 20  # hits of one kind shown; more says "type more"


@dataclass(frozen=True)
class UnitHit:
    """A unit found by its LPN or serial."""

    id: int
    lpn: str
    serial: str | None
    sku: str
    product_name: str
    state: str
    warehouse: str
    rma_id: int | None
    rma_number: str | None
    how: str


@dataclass(frozen=True)
class CustomerHit:
    """A customer found by name or reference, with how many of their returns the actor sees."""

    id: int
    name: str
    external_ref: str
    returns: int


@dataclass
class SearchResult:
    """What one search found, by kind; `note` says why nothing was looked up (too long, too short)."""

    query: str
    units: list[UnitHit] = field(default_factory=list)
    returns: list[ReturnHit] = field(default_factory=list)
    customers: list[CustomerHit] = field(default_factory=list)
    note: str | None = None
    more: bool = False  # a kind had more hits than SEARCH_LIMIT

    @property
    def total(self) -> int:
        """Hits of every kind."""
        return len(self.units) + len(self.returns) + len(self.customers)

    @property
    def only(self) -> tuple[str, int] | None:
        """(kind, id) of the one thing found, when exactly one was."""
        if self.total != 1:
            return None
        for kind, hits in (("unit", self.units), ("return", self.returns), ("customer", self.customers)):
            if hits:
                return kind, hits[0].id
        return None


def _codes(text: str) -> list[str]:
    """The forms a typed code is looked up in: as typed and upper case (labels print upper case)."""
    return list(dict.fromkeys([text, text.upper()]))


def search(session: Session, actor: Actor, text: str | None) -> SearchResult:
    """Units by LPN or serial, returns by RMA, tracking or order number, customers by reference or
    name (prefix, any case), all scoped to the actor. Codes are looked up by equality on their unique
    or plain indexes (as typed and upper case); the name is a prefix, its wildcards escaped, looked
    for only when the text holds no digit."""
    query = " ".join((text or "").split())
    result = SearchResult(query=query)
    if not query:
        return result
    if len(query) > SEARCH_MAX:
        result.note = f"That is longer than any code or name ({SEARCH_MAX} characters at most)."
        return result
    codes = _codes(query)
    result.units = _unit_hits(session, actor, codes)
    result.returns = _return_hits(session, actor, codes)
    result.customers = _customer_hits(session, actor, codes, query)
    result.more = any(len(h) > SEARCH_LIMIT for h in (result.units, result.returns, result.customers))
    result.units, result.returns, result.customers = (result.units[:SEARCH_LIMIT], result.returns[:SEARCH_LIMIT],
                                                      result.customers[:SEARCH_LIMIT])
    return result


def _unit_hits(session: Session, actor: Actor, codes: list[str]) -> list[UnitHit]:
    units = ReturnUnit.__table__
    cols = (units.c.id, units.c.lpn, units.c.serial, units.c.state, units.c.product_id, units.c.warehouse_id, units.c.rma_id)
    by_lpn = scope_units(select(*cols, literal(N_("LPN")).label("how")).where(units.c.lpn.in_(codes)), actor)
    by_serial = scope_units(select(*cols, literal(N_("serial")).label("how")).where(units.c.serial.in_(codes)), actor)
    found = union_all(by_lpn, by_serial).subquery()
    stmt = (select(found, Product.sku, Product.name, Warehouse.code.label("warehouse"), Rma.number.label("rma_number"))
            .join(Product, Product.id == found.c.product_id).join(Warehouse, Warehouse.id == found.c.warehouse_id)
            .outerjoin(Rma, Rma.id == found.c.rma_id).order_by(found.c.lpn).limit(SEARCH_LIMIT * 2 + 1))
    hits: dict[int, UnitHit] = {}
    for r in session.execute(stmt):
        hits.setdefault(r.id, UnitHit(r.id, r.lpn, r.serial, r.sku, r.name, r.state, r.warehouse, r.rma_id,
                                      r.rma_number, r.how))
    return list(hits.values())


def _return_hits(session: Session, actor: Actor, codes: list[str]) -> list[ReturnHit]:
    rmas, tracking, orders = Rma.__table__, CarrierTracking.__table__, Order.__table__
    by_number = scope_rmas(select(rmas.c.id, literal(N_("RMA number")).label("how")).where(rmas.c.number.in_(codes)), actor)
    by_tracking = scope_rmas(select(rmas.c.id, literal(N_("tracking number"))).join(tracking, tracking.c.rma_id == rmas.c.id)
                             .where(tracking.c.tracking_number.in_(codes)), actor)
    by_order = scope_rmas(select(rmas.c.id, literal(N_("order number"))).join(orders, orders.c.id == rmas.c.order_id)
                          .where(orders.c.number.in_(codes)), actor)
    found = union_all(by_number, by_tracking, by_order).subquery()
    stmt = (select(found.c.how, Rma.id, Rma.number, Rma.status, Rma.created_at, Warehouse.code.label("warehouse"),
                   Customer.name.label("customer"))
            .join(Rma, Rma.id == found.c.id).join(Warehouse, Warehouse.id == Rma.warehouse_id)
            .outerjoin(Customer, Customer.id == Rma.customer_id)
            .order_by(Rma.created_at.desc(), Rma.id.desc()).limit(SEARCH_LIMIT + 1))
    hits: dict[int, ReturnHit] = {}
    for r in session.execute(stmt):
        hits.setdefault(r.id, ReturnHit(r.id, r.number, r.status, r.created_at, r.warehouse, r.customer, r.how))
    return list(hits.values())


def _customer_hits(session: Session, actor: Actor, codes: list[str], query: str) -> list[CustomerHit]:
    """Customers by reference (equality) or name (case-insensitive prefix, from NAME_MIN characters,
    and only for text without a digit: a code is never a name, and a name is the one search no index
    serves, so a scanned code never reads the customers table). A partner finds only customers with
    a return in their scope, and counts only those returns."""
    customers, rmas = Customer.__table__, Rma.__table__
    matches = customers.c.external_ref.in_(codes)
    if len(query) >= NAME_MIN and not any(c.isdigit() for c in query):
        matches = or_(matches, func.lower(customers.c.name).startswith(query.lower(), autoescape=True))
    seen = scope_rmas(select(func.count()).select_from(rmas).where(rmas.c.customer_id == customers.c.id), actor)
    returns = seen.scalar_subquery()
    stmt = select(customers.c.id, customers.c.name, customers.c.external_ref, returns.label("returns")).where(matches)
    if actor.is_partner:
        stmt = stmt.where(returns > 0)
    stmt = stmt.order_by(customers.c.name, customers.c.id).limit(SEARCH_LIMIT + 1)
    return [CustomerHit(r.id, r.name, r.external_ref, r.returns) for r in session.execute(stmt)]
