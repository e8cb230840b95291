"""The dashboard's reads: read-only SQL, every statement scoped to what the actor may see
(app.auth.scoping's rule: a partner, their organisation's warehouses and merchants) and to the
filters. Each KPI is one aggregate over one date column that an index ranges over (migration
0020), for the period and the period before in the same statement. Money is read only for staff."""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Float, Integer, String, and_, case, cast, func, literal, null, or_, select, true, union_all
from sqlalchemy.orm import Session

from app.auth.models import User
from app.auth.roles import Actor
from app.auth.scoping import org_merchants, scope_warehouses, visible
from app.catalog.models import Category, Merchant, Product, SalesChannel, Warehouse
from app.db import utcnow
from app.disposition.models import ReasonCode
from app.exceptions.models import ReturnException
from app.ledger.models import ReturnUnit
from app.orders.models import CarrierTracking, Order, OrderLine, Rma, RmaLine
from app.refunds.models import RefundTrigger
from app.reports import domain
from app.reports.domain import Figure, Filters, Metric, ParetoRow

u = ReturnUnit.__table__
p = Product.__table__
r = Rma.__table__
rl = RmaLine.__table__
ct = CarrierTracking.__table__
rt = RefundTrigger.__table__
ex = ReturnException.__table__
wh = Warehouse.__table__
users = User.__table__

DRILL_LIMIT = 200


# --------------------------------------------------------------------------- SQL helpers per dialect

def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def _seconds(dialect: str, later: Any, earlier: Any) -> ColumnElement[Any]:
    """later − earlier in seconds (a float)."""
    if dialect == "postgresql":
        return func.extract("epoch", later - earlier)
    return (func.julianday(later) - func.julianday(earlier)) * literal(86400.0, Float())


def _hour_key(dialect: str, col: Any) -> ColumnElement[Any]:
    """The UTC clock hour of a moment as a number a GROUP BY can hash (PostgreSQL: hours since
    1970, cheaper than formatting text; SQLite: 'YYYY-MM-DD HH')."""
    if dialect == "postgresql":
        return func.floor(func.extract("epoch", col) / 3600)
    return func.strftime("%Y-%m-%d %H", col)


def _day_text(dialect: str, col: Any) -> ColumnElement[str]:
    """The UTC day of a moment as text, 'YYYY-MM-DD'."""
    if dialect == "postgresql":
        return func.to_char(func.timezone("UTC", col), "YYYY-MM-DD")
    return func.strftime("%Y-%m-%d", col)


def _hour_of_day(dialect: str, col: Any) -> ColumnElement[int]:
    if dialect == "postgresql":
        return cast(func.extract("hour", func.timezone("UTC", col)), Integer)
    return cast(func.strftime("%H", col), Integer)


def _dec(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def _id_of(model: Any, code: str) -> Any:
    return select(model.id).where(model.code == code).scalar_subquery()


def _where(actor: Actor, f: Filters, *, warehouse: Any, merchant: Any, rma: Any, product: Any = None) -> list[Any]:
    """The scope and the dimension filters over one table's columns (no product column: a return
    is in a category when one of its lines is)."""
    conds: list[Any] = [visible(actor, warehouse, merchant)]
    if f.warehouse:
        conds.append(warehouse == _id_of(Warehouse, f.warehouse))
    if f.merchant:
        conds.append(merchant == _id_of(Merchant, f.merchant))
    if f.channel:
        conds.append(rma.in_(select(r.c.id).where(r.c.channel_id == _id_of(SalesChannel, f.channel))))
    if f.category:
        in_category = select(p.c.id).where(p.c.category == f.category)
        conds.append(product.in_(in_category) if product is not None
                     else rma.in_(select(rl.c.rma_id).where(rl.c.product_id.in_(in_category))))
    if f.carrier:
        conds.append(rma.in_(select(ct.c.rma_id).where(ct.c.carrier == f.carrier)))
    return conds


def _unit_where(actor: Actor, f: Filters) -> list[Any]:
    return _where(actor, f, warehouse=u.c.warehouse_id, merchant=u.c.merchant_id, rma=u.c.rma_id, product=u.c.product_id)


def _rma_where(actor: Actor, f: Filters) -> list[Any]:
    return _where(actor, f, warehouse=r.c.warehouse_id, merchant=r.c.merchant_id, rma=r.c.id)


def _exception_where(actor: Actor, f: Filters) -> list[Any]:
    return _where(actor, f, warehouse=ex.c.warehouse_id, merchant=ex.c.merchant_id, rma=ex.c.rma_id, product=ex.c.product_id)


def _window(col: Any, f: Filters) -> Any:
    """The period and the one before: [previous start, end)."""
    return and_(col >= f.previous().since, col < f.until)


def _cur(col: Any, f: Filters, value: Any) -> Any:
    return case((col >= f.since, value), else_=null())


def _prev(col: Any, f: Filters, value: Any) -> Any:
    return case((col < f.since, value), else_=null())


def _value() -> Any:
    """A unit's value: the price paid, else the product's list value."""
    return func.coalesce(u.c.paid_price, p.c.unit_value)


def _rate(rates: Mapping[str, Decimal]) -> Any:
    return case(*((u.c.state == s, literal(float(rates[s]), Float())) for s in domain.RECOVERY_STATES), else_=literal(0.0, Float()))


# --------------------------------------------------------------------------- filter choices

@dataclass(frozen=True)
class Choices:
    """What each filter offers the actor: (code, name) pairs."""

    warehouse: list[tuple[str, str]]
    merchant: list[tuple[str, str]]
    channel: list[tuple[str, str]]
    category: list[tuple[str, str]]
    carrier: list[tuple[str, str]]

    def codes(self) -> dict[str, list[str]]:
        return {d: [c for c, _ in getattr(self, d)] for d in domain.DIMENSIONS}


def filter_choices(session: Session, actor: Actor) -> Choices:
    """The codes each filter offers, in one statement (a partner: their warehouses and merchants)."""
    merchants = select(literal("merchant"), Merchant.code, Merchant.name)
    # The few carriers among a million trackings: a skip scan down ix_carrier_trackings_carrier (one
    # index probe a carrier) instead of reading every tracking for a DISTINCT.
    first = select(func.min(ct.c.carrier).label("carrier")).cte("carriers", recursive=True)
    carriers = first.union_all(select(select(func.min(ct.c.carrier)).where(ct.c.carrier > first.c.carrier).scalar_subquery())
                               .where(first.c.carrier.isnot(None)))
    parts = [
        scope_warehouses(select(literal("warehouse").label("d"), wh.c.code, wh.c.name), actor),
        merchants.where(Merchant.id.in_(org_merchants(actor))) if actor.is_partner else merchants,
        select(literal("channel"), SalesChannel.code, SalesChannel.name),
        select(literal("category"), Category.code, Category.name),
        select(literal("carrier"), carriers.c.carrier, carriers.c.carrier).where(carriers.c.carrier.isnot(None)),
    ]
    out: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for dim, code, name in session.execute(union_all(*parts)).all():
        out[dim].append((code, name))
    return Choices(**{d: sorted(out[d]) for d in domain.DIMENSIONS})


# --------------------------------------------------------------------------- the KPI tiles

def kpis(session: Session, actor: Actor, f: Filters, rates: Mapping[str, Decimal]) -> list[Figure]:
    """Every tile the actor may see, for the period and the one before (six statements)."""
    d = _dialect(session)
    figures: dict[str, Figure] = {}
    m = domain.METRIC_KEYS

    # 1. inspected in the window: cycle time and recovery
    cycle = _seconds(d, u.c.inspected_at, r.c.created_at) / 86400.0
    decided = u.c.state.in_(domain.RECOVERY_STATES)
    row = session.execute(
        select(func.sum(_cur(u.c.inspected_at, f, cycle)), func.count(_cur(u.c.inspected_at, f, r.c.id)),
               func.sum(_prev(u.c.inspected_at, f, cycle)), func.count(_prev(u.c.inspected_at, f, r.c.id)),
               func.sum(_cur(u.c.inspected_at, f, case((decided, _value() * _rate(rates))))),
               func.sum(_cur(u.c.inspected_at, f, case((decided, _value())))),
               func.count(_cur(u.c.inspected_at, f, case((decided, u.c.id)))),
               func.sum(_prev(u.c.inspected_at, f, case((decided, _value() * _rate(rates))))),
               func.sum(_prev(u.c.inspected_at, f, case((decided, _value())))))
        .select_from(u.join(p, p.c.id == u.c.product_id).outerjoin(r, r.c.id == u.c.rma_id))
        .where(_window(u.c.inspected_at, f), *_unit_where(actor, f))).one()
    figures["cycle_time"] = Figure(m["cycle_time"], domain.mean(row[0], row[1]), domain.mean(row[2], row[3]), row[1])
    if not actor.is_partner:
        rec, paid, n, rec_p, paid_p = _dec(row[4]), _dec(row[5]), row[6], _dec(row[7]), _dec(row[8])
        figures["recovery_rate"] = Figure(m["recovery_rate"], domain.ratio(rec, paid, scale=100),
                                          domain.ratio(rec_p, paid_p, scale=100), n)
        figures["recovery_value"] = Figure(m["recovery_value"], rec.quantize(Decimal("0.01")) if rec is not None else None,
                                           rec_p.quantize(Decimal("0.01")) if rec_p is not None else None, n)

    # 2. refunds released in the window
    hours = _seconds(d, rt.c.released_at, u.c.received_at) / 3600.0
    row = session.execute(
        select(func.sum(_cur(rt.c.released_at, f, hours)), func.count(_cur(rt.c.released_at, f, rt.c.id)),
               func.sum(_prev(rt.c.released_at, f, hours)), func.count(_prev(rt.c.released_at, f, rt.c.id)))
        .select_from(rt.join(u, u.c.id == rt.c.unit_id))
        .where(_window(rt.c.released_at, f), *_unit_where(actor, f))).one()
    figures["refund_latency"] = Figure(m["refund_latency"], domain.mean(row[0], row[1]), domain.mean(row[2], row[3]), row[1])

    # 3. restocked in the window
    hours = _seconds(d, u.c.state_changed_at, u.c.received_at) / 3600.0
    row = session.execute(
        select(func.sum(_cur(u.c.state_changed_at, f, hours)), func.count(_cur(u.c.state_changed_at, f, u.c.id)),
               func.sum(_prev(u.c.state_changed_at, f, hours)), func.count(_prev(u.c.state_changed_at, f, u.c.id)))
        .where(u.c.state == "available", _window(u.c.state_changed_at, f), *_unit_where(actor, f))).one()
    figures["restock_latency"] = Figure(m["restock_latency"], domain.mean(row[0], row[1]), domain.mean(row[2], row[3]), row[1])

    # 4. quarantine now: the mean age of what is there (a snapshot: no trend)
    now = utcnow()
    age = _seconds(d, literal(now, u.c.state_changed_at.type), u.c.state_changed_at) / 86400.0
    row = session.execute(select(func.sum(age), func.count()).where(u.c.state == "quarantine", *_unit_where(actor, f))).one()
    figures["quarantine_age"] = Figure(m["quarantine_age"], domain.mean(row[0], row[1]), None, row[1])

    # 5. exceptions opened in the window
    row = session.execute(
        select(func.count(_cur(ex.c.opened_at, f, ex.c.id)), func.count(_prev(ex.c.opened_at, f, ex.c.id)))
        .where(_window(ex.c.opened_at, f), *_exception_where(actor, f))).one()
    figures["exceptions"] = Figure(m["exceptions"], Decimal(row[0]), Decimal(row[1]), row[0])

    # 6. received in the window: units and worker-hours (grouped by worker and clock hour first:
    # a worker-hour is a group with a worker)
    before = case((u.c.received_at < f.since, 1), else_=0).label("before")
    hours = (select(before, u.c.received_by_id.label("who"), func.count().label("n"))
             .where(_window(u.c.received_at, f), *_unit_where(actor, f))
             .group_by(before, u.c.received_by_id, _hour_key(d, u.c.received_at)).subquery())
    got = {b: (int(n), int(h)) for b, n, h in session.execute(
        select(hours.c.before, func.sum(hours.c.n), func.count(hours.c.who)).group_by(hours.c.before)).all()}
    (n, h), (n_p, h_p) = got.get(0, (0, 0)), got.get(1, (0, 0))
    figures["units_per_hour"] = Figure(m["units_per_hour"], domain.ratio(n, h), domain.ratio(n_p, h_p), n)
    return [figures[x.key] for x in domain.metrics_for(actor.is_partner)]


def daily_received(session: Session, actor: Actor, f: Filters) -> list[tuple[date, int]]:
    """Units received per day of the period (every day, zeros included)."""
    d = _dialect(session)
    day = _day_text(d, u.c.received_at)
    got = dict(session.execute(select(day, func.count()).where(u.c.received_at >= f.since, u.c.received_at < f.until,
                                                               *_unit_where(actor, f)).group_by(day)).all())
    return [(f.start + timedelta(days=i), got.get((f.start + timedelta(days=i)).isoformat(), 0)) for i in range(f.days)]


# --------------------------------------------------------------------------- drill-down

@dataclass(frozen=True)
class DrillRow:
    unit_id: int | None
    lpn: str | None
    rma_id: int | None
    rma_number: str | None
    sku: str | None
    state: str | None
    at: datetime | None
    figure: Decimal | None  # the row's part of the metric (hours, days, value)
    value: Decimal | None  # money: None for partners
    exception_id: int | None = None
    label: str | None = None


@dataclass(frozen=True)
class Drill:
    metric: Metric
    previous: bool
    rows: list[DrillRow]
    total: int


def drill(session: Session, actor: Actor, f: Filters, metric: Metric, previous: bool,
          rates: Mapping[str, Decimal]) -> Drill:
    """The rows behind a tile's figure (the first DRILL_LIMIT, newest first, and how many)."""
    d = _dialect(session)
    g = f.previous() if previous else f
    money = not actor.is_partner
    if metric.key == "exceptions":
        stmt = (select(ex.c.unit_id, u.c.lpn, ex.c.rma_id, r.c.number, p.c.sku, ex.c.status, ex.c.opened_at,
                       literal(None), ex.c.value if money else literal(None), ex.c.id, ex.c.type, func.count().over())
                .select_from(ex.outerjoin(u, u.c.id == ex.c.unit_id).outerjoin(r, r.c.id == ex.c.rma_id)
                             .outerjoin(p, p.c.id == ex.c.product_id))
                .where(ex.c.opened_at >= g.since, ex.c.opened_at < g.until, *_exception_where(actor, f))
                .order_by(ex.c.opened_at.desc(), ex.c.id.desc()))
    else:
        base = u.join(p, p.c.id == u.c.product_id).outerjoin(r, r.c.id == u.c.rma_id)
        at, figure, extra = {
            "cycle_time": (u.c.inspected_at, _seconds(d, u.c.inspected_at, r.c.created_at) / 86400.0, [r.c.id.isnot(None)]),
            "recovery_rate": (u.c.inspected_at, _value() * _rate(rates), [u.c.state.in_(domain.RECOVERY_STATES)]),
            "recovery_value": (u.c.inspected_at, _value() * _rate(rates), [u.c.state.in_(domain.RECOVERY_STATES)]),
            "refund_latency": (rt.c.released_at, _seconds(d, rt.c.released_at, u.c.received_at) / 3600.0, []),
            "restock_latency": (u.c.state_changed_at, _seconds(d, u.c.state_changed_at, u.c.received_at) / 3600.0,
                                [u.c.state == "available"]),
            "quarantine_age": (u.c.state_changed_at,
                               _seconds(d, literal(utcnow(), u.c.state_changed_at.type), u.c.state_changed_at) / 86400.0,
                               [u.c.state == "quarantine"]),
            "units_per_hour": (u.c.received_at, literal(None), []),
        }[metric.key]
        if metric.key == "refund_latency":
            base = base.join(rt, rt.c.unit_id == u.c.id)
        window = [] if metric.key == "quarantine_age" else [at >= g.since, at < g.until]
        stmt = (select(u.c.id, u.c.lpn, u.c.rma_id, r.c.number, p.c.sku, u.c.state, at, figure,
                       _value() if money else literal(None), literal(None), literal(None), func.count().over())
                .select_from(base).where(*window, *extra, *_unit_where(actor, f))
                .order_by(at.desc(), u.c.id.desc()))
    rows = session.execute(stmt.limit(DRILL_LIMIT)).all()
    if metric.money and not money:
        rows = []
    out = [DrillRow(x[0], x[1], x[2], x[3], x[4], x[5], x[6], _dec(x[7]).quantize(Decimal("0.01")) if x[7] is not None else None,
                    _dec(x[8]), x[9], x[10]) for x in rows]
    return Drill(metric, previous, out, rows[0][-1] if rows else 0)


# --------------------------------------------------------------------------- reason analytics

def _carriers(since: datetime, until: datetime) -> Any:
    """Each return authorised in [since, until) that has a tracking, with its carrier (the first
    by name when it has several): one aggregate over those returns' trackings, joined once,
    instead of a lookup for every line."""
    window = r.alias("in_window")
    return (select(ct.c.rma_id, func.min(ct.c.carrier).label("carrier"))
            .where(ct.c.rma_id.in_(select(window.c.id).where(window.c.created_at >= since, window.c.created_at < until)))
            .group_by(ct.c.rma_id).cte("carrier_of").prefix_with("MATERIALIZED"))


def _reason_key(by: str, carriers: Any) -> tuple[Any, Any]:
    """The (key, label) columns of a dimension over return lines joined to products and returns
    (label None: the key names itself)."""
    return {
        "reason": (rl.c.reason_code, func.coalesce(ReasonCode.__table__.c.label, rl.c.reason_code)),
        "sku": (p.c.sku, p.c.name),
        "category": (p.c.category, p.c.category),
        "channel": (SalesChannel.__table__.c.code, SalesChannel.__table__.c.name),
        "carrier": (func.coalesce(carriers.c.carrier, "(none)") if carriers is not None else None, None),
    }[by]


def _lines_from(carriers: Any = None) -> Any:
    rc, sc = ReasonCode.__table__, SalesChannel.__table__
    lines = (rl.join(r, r.c.id == rl.c.rma_id).join(p, p.c.id == rl.c.product_id)
             .join(sc, sc.c.id == r.c.channel_id).outerjoin(rc, rc.c.code == rl.c.reason_code))
    return lines.outerjoin(carriers, carriers.c.rma_id == r.c.id) if carriers is not None else lines


@dataclass(frozen=True)
class Reasons:
    by: str
    rows: list[ParetoRow]
    total: int
    top_reason: dict[str, tuple[str, int]]  # key -> its most frequent reason and its units
    spikes: list[domain.Spike]
    stated_found: dict[str, dict[str, int]]  # reason -> finding -> units
    no_fault: list[tuple[str, str, str, int]]  # (sku, channel, reason, units): defective claims inspection did not confirm


def reasons(session: Session, actor: Actor, f: Filters, by: str) -> Reasons:
    """The Pareto of returned units by a dimension (returns authorised in the period), with the
    return rate against units shipped (orders placed in the period), the avoidable share, the
    spikes and what inspection found against the stated reason (three statements; four with
    shipped). The Pareto and the spikes are one pass over the lines of the period and of the
    week ending with it and the eight before, grouped by (key, reason) with a sum for each."""
    rc = ReasonCode.__table__
    start = f.until - timedelta(weeks=domain.SPIKE_WEEKS + 1)
    since = min(f.since, start)
    carriers = _carriers(since, f.until) if by == "carrier" else None
    key, label = _reason_key(by, carriers)
    where = [r.c.created_at >= since, r.c.created_at < f.until, *_rma_where(actor, f)]
    if f.category:
        where.append(p.c.category == f.category)
    avoidable = case((rc.c.avoidable.is_(True), rl.c.quantity), else_=0)
    in_period = r.c.created_at >= f.since
    # units a week by (key, reason): week w is (until - w - 1 weeks, until - w weeks], 0 the week
    # ending with the period, up to SPIKE_WEEKS before it
    weeks = [func.sum(case((and_(r.c.created_at > f.until - timedelta(weeks=w + 1),
                                 r.c.created_at <= f.until - timedelta(weeks=w)), rl.c.quantity)))
             for w in range(domain.SPIKE_WEEKS + 1)]
    named = func.min(label) if label is not None else null()
    grouped = session.execute(
        select(key, named, rl.c.reason_code, func.sum(case((in_period, rl.c.quantity))),
               func.sum(case((in_period, avoidable))), *weeks)
        .select_from(_lines_from(carriers)).where(*where).group_by(key, rl.c.reason_code)).all()
    units: dict[str, int] = defaultdict(int)
    labels: dict[str, str] = {}
    avoid: dict[str, int] = defaultdict(int)
    top: dict[str, tuple[str, int]] = {}
    weekly: dict[tuple[str, str], dict[int, int]] = defaultdict(dict)
    for k, lab, reason, n, a, *by_week in grouped:
        weekly[(k, reason)] = {w: int(x) for w, x in enumerate(by_week) if x}
        if n is None:  # only in the weeks before the period
            continue
        units[k] += int(n)
        avoid[k] += int(a or 0)
        labels[k] = lab or k
        if n > top.get(k, ("", 0))[1] or (n == top.get(k, ("", 0))[1] and reason < top[k][0]):
            top[k] = (reason, int(n))
    shipped = _shipped(session, actor, f, by)
    rows = domain.pareto([(k, labels[k], n, shipped.get(k, 0) if shipped is not None else None, avoid[k])
                          for k, n in units.items()])

    # stated against found: units inspected in the period, by their line's reason
    found = case(*((getattr(u.c, fact).in_(values), literal(name)) for name, fact, values in domain.FINDING_RULES),
                 else_=literal(domain.NO_FAULT))
    inspected = [u.c.inspected_at >= f.since, u.c.inspected_at < f.until, *_unit_where(actor, f)]
    src = u.join(rl, rl.c.id == u.c.rma_line_id).join(p, p.c.id == u.c.product_id).join(r, r.c.id == u.c.rma_id) \
        .join(SalesChannel.__table__, SalesChannel.__table__.c.id == r.c.channel_id)
    stated: dict[str, dict[str, int]] = defaultdict(dict)
    # the product, the return and its channel are not needed here: every unit with a return has them
    for reason, fnd, n in session.execute(select(rl.c.reason_code, found, func.count())
                                          .select_from(u.join(rl, rl.c.id == u.c.rma_line_id))
                                          .where(*inspected, u.c.rma_id.isnot(None)).group_by(rl.c.reason_code, found)).all():
        stated[reason][fnd] = int(n)
    no_fault = [(sku, ch, reason, int(n)) for sku, ch, reason, n in session.execute(
        select(p.c.sku, SalesChannel.__table__.c.code, rl.c.reason_code, func.count()).select_from(src)
        .where(*inspected, found == domain.NO_FAULT, rl.c.reason_code.in_(domain.FAULT_REASONS))
        .group_by(p.c.sku, SalesChannel.__table__.c.code, rl.c.reason_code)
        .order_by(func.count().desc(), p.c.sku).limit(20)).all()]
    return Reasons(by, rows, sum(units.values()), top, domain.spikes(weekly), dict(stated), no_fault)


def _shipped(session: Session, actor: Actor, f: Filters, by: str) -> dict[str, int] | None:
    """Units shipped on orders placed in the period by the dimension (None: orders do not carry it)."""
    if by in ("reason", "carrier"):
        return None
    o, ol, sc = Order.__table__, OrderLine.__table__, SalesChannel.__table__
    key = {"sku": p.c.sku, "category": p.c.category, "channel": sc.c.code}[by]
    where = [o.c.placed_at >= f.since, o.c.placed_at < f.until]
    if actor.is_partner:
        where.append(o.c.merchant_id.in_(org_merchants(actor)))
    if f.merchant:
        where.append(o.c.merchant_id == _id_of(Merchant, f.merchant))
    if f.channel:
        where.append(sc.c.code == f.channel)
    if f.category:
        where.append(p.c.category == f.category)
    return {k: int(n) for k, n in session.execute(
        select(key, func.sum(ol.c.quantity)).select_from(ol.join(o, o.c.id == ol.c.order_id).join(p, p.c.id == ol.c.product_id)
                                                          .join(sc, sc.c.id == o.c.channel_id)).where(*where).group_by(key)).all()}


# --------------------------------------------------------------------------- recovery (staff only)

@dataclass(frozen=True)
class RecoveryRow:
    state: str
    units: int
    paid: Decimal
    rate: Decimal
    recovered: Decimal


@dataclass(frozen=True)
class Recovery:
    rows: list[RecoveryRow]
    leakage_count: int
    leakage_amount: Decimal
    waiting: dict[str, tuple[int, Decimal]]  # "received" / "quarantine" -> units, value


def recovery(session: Session, actor: Actor, f: Filters, rates: Mapping[str, Decimal]) -> Recovery:
    """Recovered value by disposition for units decided in the period, the refund leakage
    (refunds released in the period for units found wrong, damaged or missing) and the value
    waiting in inspection and quarantine now (three statements)."""
    by_state = {s: (int(n), _dec(v) or Decimal(0)) for s, n, v in session.execute(
        select(u.c.state, func.count(), func.sum(_value())).select_from(u.join(p, p.c.id == u.c.product_id))
        .where(u.c.inspected_at >= f.since, u.c.inspected_at < f.until, u.c.state.in_(domain.RECOVERY_STATES),
               *_unit_where(actor, f)).group_by(u.c.state)).all()}
    rows = []
    for s in domain.RECOVERY_STATES:
        n, paid = by_state.get(s, (0, Decimal(0)))
        rows.append(RecoveryRow(s, n, paid.quantize(Decimal("0.01")), rates[s], (paid * rates[s]).quantize(Decimal("0.01"))))
    found_bad = or_(u.c.grade.in_(domain.LEAKAGE_GRADES), u.c.serial_status.in_(domain.LEAKAGE_SERIAL),
                    u.c.id.in_(select(ex.c.unit_id).where(ex.c.type.in_(domain.LEAKAGE_EXCEPTIONS), ex.c.unit_id.isnot(None))))
    n, amount = session.execute(
        select(func.count(), func.sum(rt.c.amount)).select_from(rt.join(u, u.c.id == rt.c.unit_id))
        .where(rt.c.released_at >= f.since, rt.c.released_at < f.until, rt.c.status.in_(("released", "acknowledged")),
               found_bad, *_unit_where(actor, f))).one()
    waiting = {s: (int(k), (_dec(v) or Decimal(0)).quantize(Decimal("0.01"))) for s, k, v in session.execute(
        select(u.c.state, func.count(), func.sum(_value())).select_from(u.join(p, p.c.id == u.c.product_id))
        .where(u.c.state.in_(("received", "quarantine")), *_unit_where(actor, f)).group_by(u.c.state)).all()}
    return Recovery(rows, int(n), (_dec(amount) or Decimal(0)).quantize(Decimal("0.01")),
                    {s: waiting.get(s, (0, Decimal("0.00"))) for s in ("received", "quarantine")})


# --------------------------------------------------------------------------- flow

def _bucket(hours: Any) -> Any:
    return case(*((hours < edge, literal(label)) for edge, label in zip(domain.BUCKET_EDGES_HOURS, domain.AGE_BUCKETS)),
                else_=literal(domain.AGE_BUCKETS[-1]))


def backlog(session: Session, actor: Actor, f: Filters) -> dict[str, dict[str, int]]:
    """What waits now at each stage, by ageing bucket (one statement). Dates do not filter a
    snapshot; the dimensions do."""
    d = _dialect(session)
    now = utcnow()

    def hours(col: Any) -> Any:
        return _seconds(d, literal(now, col.type), col) / 3600.0

    delivered = (select(literal("in_transit").label("stage"), _bucket(hours(ct.c.last_event_at)).label("bucket"))
                 .select_from(ct.join(r, r.c.id == ct.c.rma_id))
                 .where(ct.c.status == "delivered", r.c.status.in_(("authorized", "in_transit")), *_rma_where(actor, f)))
    received = (select(literal("received"), _bucket(hours(u.c.received_at)))
                .where(u.c.state == "received", u.c.inspected_at.is_(None), *_unit_where(actor, f)))
    quarantine = (select(literal("quarantine"), _bucket(hours(u.c.state_changed_at)))
                  .where(u.c.state == "quarantine", *_unit_where(actor, f)))
    exceptions = (select(literal("exceptions"), _bucket(hours(ex.c.opened_at)))
                  .where(ex.c.status == "open", *_exception_where(actor, f)))
    both = union_all(delivered, received, quarantine, exceptions).subquery()
    out = {stage: {b: 0 for b in domain.AGE_BUCKETS} for stage, _ in domain.STAGES}
    for stage, bucket, n in session.execute(select(both.c.stage, both.c.bucket, func.count())
                                            .group_by(both.c.stage, both.c.bucket)).all():
        out[stage][bucket] = int(n)
    return out


def throughput_by_hour(session: Session, actor: Actor, f: Filters) -> list[int]:
    """Units received in the period by hour of day (UTC), 0 to 23."""
    hour = _hour_of_day(_dialect(session), u.c.received_at)
    got = dict(session.execute(select(hour, func.count()).where(u.c.received_at >= f.since, u.c.received_at < f.until,
                                                                *_unit_where(actor, f)).group_by(hour)).all())
    return [int(got.get(h, 0)) for h in range(24)]


@dataclass(frozen=True)
class WorkerRow:
    user_id: int
    name: str
    units: int
    hours: int

    @property
    def per_hour(self) -> Decimal | None:
        return domain.ratio(self.units, self.hours)


def workers(session: Session, actor: Actor, f: Filters) -> list[WorkerRow]:
    """Units each worker received in the period and their worker-hours (a worker: only their own)."""
    d = _dialect(session)
    where = [u.c.received_at >= f.since, u.c.received_at < f.until, u.c.received_by_id.isnot(None), *_unit_where(actor, f)]
    if actor.role == "worker":
        where.append(u.c.received_by_id == actor.id)
    rows = session.execute(
        select(users.c.id, users.c.name, func.count(), func.count(func.distinct(_hour_key(d, u.c.received_at))))
        .select_from(u.join(users, users.c.id == u.c.received_by_id)).where(*where)
        .group_by(users.c.id, users.c.name).order_by(func.count().desc(), users.c.name)).all()
    return [WorkerRow(i, n, int(k), int(h)) for i, n, k, h in rows]


def _plus_days(dialect: str, col: Any, days: Any) -> Any:
    if dialect == "postgresql":
        return func.to_char(func.timezone("UTC", col) + func.make_interval(0, 0, 0, days), "YYYY-MM-DD")
    return func.date(col, cast(days, String) + literal(" days"))


def inbound(session: Session, actor: Actor, f: Filters) -> list[tuple[date, int]]:
    """Units on returns authorised or in transit, by the day their parcel is expected: the
    carrier's last event (else the authorisation) plus what its status still takes
    (domain.DAYS_TO_ARRIVE). One statement."""
    d = _dialect(session)
    latest = (select(ct.c.status, ct.c.last_event_at).where(ct.c.rma_id == r.c.id)
              .order_by(ct.c.last_event_at.desc(), ct.c.id.desc()).limit(1).correlate(r))
    qty = select(func.sum(rl.c.quantity)).where(rl.c.rma_id == r.c.id).correlate(r).scalar_subquery()
    # each return's latest tracking read once (a MATERIALIZED CTE: not inlined into each branch of
    # the CASE below, which also made PostgreSQL cost it high enough to JIT-compile it: half a second)
    per_rma = (select(func.coalesce(latest.with_only_columns(ct.c.status).scalar_subquery(), "label_created").label("status"),
                      func.coalesce(latest.with_only_columns(ct.c.last_event_at).scalar_subquery(), r.c.created_at).label("moment"),
                      qty.label("units"))
               .where(r.c.status.in_(("authorized", "in_transit")), *_rma_where(actor, f))
               .cte("per_rma").prefix_with("MATERIALIZED"))
    days = case(*((per_rma.c.status == s, n) for s, n in domain.DAYS_TO_ARRIVE.items()),
                else_=domain.DAYS_TO_ARRIVE["label_created"])
    day = _plus_days(d, per_rma.c.moment, days)
    rows = session.execute(select(day, func.sum(per_rma.c.units)).group_by(day)).all()
    return [(date.fromisoformat(day), int(n or 0)) for day, n in rows if day]
