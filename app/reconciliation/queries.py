"""Reconciliation's reads: the ledger as of a time T (balances, the units behind them, the entries
around T, the moves between two times), what a snapshot names, the screens' lists scoped to the
actor, and expected against received."""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, case, func, literal, or_, select, union_all
from sqlalchemy.orm import Session

from app.auth.models import User
from app.auth.roles import Actor
from app.auth.scoping import org_warehouses, visible
from app.catalog.models import Merchant, Product, Warehouse
from app.intake.queries import _chunks, _in
from app.ledger.models import LedgerEntry, ReturnUnit
from app.orders.models import CarrierTracking, Rma, RmaLine
from app.reconciliation.domain import Key
from app.reconciliation.models import ReconCorrection, ReconSnapshot, ReconSource, ReconVariance

AROUND = timedelta(hours=72)  # the ledger's entries looked at on each side of T
UNITS_KEPT = 50  # units listed per variance line (all are counted)
ENTRIES_KEPT = 20


# ---- the ledger as of T --------------------------------------------------------------------------

def _moves(at_or_before: datetime, warehouse_ids: list[int]) -> Any:
    """+1 into each entry's to_state, -1 out of its from_state, for entries posted at or before T."""
    le = LedgerEntry.__table__
    where = and_(le.c.at <= at_or_before, le.c.warehouse_id.in_(warehouse_ids))
    into = select(le.c.unit_id, le.c.warehouse_id, le.c.product_id, le.c.to_state.label("state"),
                  literal(1).label("delta")).where(where)
    out = select(le.c.unit_id, le.c.warehouse_id, le.c.product_id, le.c.from_state.label("state"),
                 literal(-1).label("delta")).where(where, le.c.from_state.is_not(None))
    return union_all(into, out).subquery("moves")


_PRODUCTS = Product.__table__


def _merchant(units: Any) -> Any:
    """An item's merchant: the unit's, or (a unit that came without one, a blind parcel's) its SKU's,
    as a snapshot's row without a merchant means."""
    return func.coalesce(units.c.merchant_id, _PRODUCTS.c.merchant_id)


def balance_at(session: Session, t: datetime, warehouse_ids: Iterable[int]) -> dict[Key, int]:
    """Units per (warehouse, merchant, SKU, state) at T, summed from the ledger's rows posted up to
    T (not today's balances), the merchant being the unit's (else its SKU's)."""
    ids = sorted(set(warehouse_ids))
    if not ids:
        return {}
    moves = _moves(t, ids)
    units = ReturnUnit.__table__
    total, merchant = func.sum(moves.c.delta), _merchant(units)
    rows = session.execute(
        select(moves.c.warehouse_id, merchant, moves.c.product_id, moves.c.state, total)
        .join(units, units.c.id == moves.c.unit_id).join(_PRODUCTS, _PRODUCTS.c.id == units.c.product_id)
        .group_by(moves.c.warehouse_id, merchant, moves.c.product_id, moves.c.state)
        .having(total != 0)).all()
    return {(w, m, p, s): int(n) for w, m, p, s, n in rows}


def units_at(session: Session, t: datetime, warehouse_ids: Iterable[int], product_ids: Iterable[int]) -> dict[Key, list[str]]:
    """The units (LPNs) in each item at T: each unit's newest ledger row posted up to T."""
    le, units = LedgerEntry.__table__, ReturnUnit.__table__
    out: dict[Key, list[str]] = defaultdict(list)
    ids = sorted(set(warehouse_ids))
    for chunk in _chunks(product_ids):
        newest = (select(func.max(le.c.id).label("id")).where(le.c.at <= t, le.c.warehouse_id.in_(ids),
                                                              le.c.product_id.in_(chunk))
                  .group_by(le.c.unit_id).subquery())
        rows = session.execute(
            select(le.c.warehouse_id, _merchant(units), le.c.product_id, le.c.to_state, units.c.lpn)
            .join(newest, newest.c.id == le.c.id).join(units, units.c.id == le.c.unit_id)
            .join(_PRODUCTS, _PRODUCTS.c.id == units.c.product_id).order_by(units.c.lpn)).all()
        for w, m, p, s, lpn in rows:
            out[(w, m, p, s)].append(lpn)
    return out


@dataclass(frozen=True)
class EntryNear:
    """A ledger row near T, as a variance line shows it."""

    id: int
    at: datetime
    lpn: str
    warehouse_id: int
    merchant_id: int | None
    product_id: int
    from_state: str | None
    to_state: str
    reason: str
    actor_role: str


def entries_around(session: Session, t: datetime, warehouse_ids: Iterable[int], product_ids: Iterable[int]) -> list[EntryNear]:
    """The ledger's rows of these products posted within AROUND of T, oldest first."""
    le, units = LedgerEntry.__table__, ReturnUnit.__table__
    ids = sorted(set(warehouse_ids))
    found: list[EntryNear] = []
    for chunk in _chunks(product_ids):
        found += [EntryNear(*row) for row in session.execute(
            select(le.c.id, le.c.at, units.c.lpn, le.c.warehouse_id, _merchant(units), le.c.product_id,
                   le.c.from_state, le.c.to_state, le.c.reason, le.c.actor_role)
            .join(units, units.c.id == le.c.unit_id).join(_PRODUCTS, _PRODUCTS.c.id == units.c.product_id)
            .where(le.c.warehouse_id.in_(ids), le.c.product_id.in_(chunk), le.c.at > t - AROUND,
                   le.c.at <= t + AROUND)).all()]
    return sorted(found, key=lambda e: e.id)


def moves_between(session: Session, after: datetime | None, until: datetime,
                  warehouse_ids: Iterable[int]) -> list[tuple[str | None, str, int]]:
    """(from_state, to_state, count) of the ledger's rows posted in (after, until] at these warehouses."""
    le = LedgerEntry.__table__
    where = [le.c.at <= until, le.c.warehouse_id.in_(sorted(set(warehouse_ids)))]
    if after is not None:
        where.append(le.c.at > after)
    return [(f, t, int(n)) for f, t, n in session.execute(
        select(le.c.from_state, le.c.to_state, func.count()).where(*where).group_by(le.c.from_state, le.c.to_state)).all()]


# ---- what a snapshot names ------------------------------------------------------------------------

def codes(session: Session, warehouses: Iterable[str], merchants: Iterable[str], skus: Iterable[str]) -> tuple[
        dict[str, tuple[int, int | None]], dict[str, int], dict[str, tuple[int, int | None, Decimal]]]:
    """Warehouses by code (id, partner org), merchants by code, products by SKU (id, merchant, value)."""
    wh = {c: (i, o) for c, i, o in _in(session, (Warehouse.code, Warehouse.id, Warehouse.partner_org_id), Warehouse.code,
                                        warehouses)}
    mer = dict(_in(session, (Merchant.code, Merchant.id), Merchant.code, merchants))
    prod = {s: (i, m, v) for s, i, m, v in _in(session, (Product.sku, Product.id, Product.merchant_id, Product.unit_value),
                                               Product.sku, skus)}
    return wh, mer, prod


def product_values(session: Session, product_ids: Iterable[int]) -> dict[int, Decimal]:
    return {i: v for i, v in _in(session, (Product.id, Product.unit_value), Product.id, product_ids)}


def serves(session: Session, partner_org_id: int, merchant_ids: Iterable[int]) -> set[int]:
    """Of these merchants, those the partner organisation serves."""
    from app.catalog.models import partner_org_merchants as pom

    return {m for (m,) in session.execute(select(pom.c.merchant_id).where(
        pom.c.partner_org_id == partner_org_id, pom.c.merchant_id.in_(sorted(set(merchant_ids))))).all()}


# ---- the screens, scoped ---------------------------------------------------------------------------

def _source_scope(actor: Actor) -> Any:
    return ReconSource.partner_org_id == actor.partner_org_id if actor.is_partner else literal(True)


def sources(session: Session, actor: Actor) -> list[ReconSource]:
    return list(session.scalars(select(ReconSource).where(_source_scope(actor)).order_by(ReconSource.code)))


def source(session: Session, actor: Actor, source_id: int) -> ReconSource | None:
    return session.scalars(select(ReconSource).where(ReconSource.id == source_id, _source_scope(actor))).first()


def source_by_code(session: Session, actor: Actor, code: str) -> ReconSource | None:
    return session.scalars(select(ReconSource).where(ReconSource.code == code, _source_scope(actor))).first()


def snapshots(session: Session, actor: Actor, limit: int = 50) -> list[Any]:
    return list(session.execute(
        select(ReconSnapshot, ReconSource.code.label("source_code"), ReconSource.name.label("source_name"))
        .join(ReconSource, ReconSource.id == ReconSnapshot.source_id).where(_source_scope(actor))
        .order_by(ReconSnapshot.id.desc()).limit(limit)).all())


def snapshot(session: Session, actor: Actor, snapshot_id: int) -> Any:
    return session.execute(
        select(ReconSnapshot, ReconSource.code.label("source_code"), ReconSource.name.label("source_name"))
        .join(ReconSource, ReconSource.id == ReconSnapshot.source_id)
        .where(ReconSnapshot.id == snapshot_id, _source_scope(actor))).first()


def previous_snapshot(session: Session, source_id: int, as_of: datetime) -> ReconSnapshot | None:
    """The source's accepted snapshot just before `as_of` (the roll-forward's opening)."""
    return session.scalars(select(ReconSnapshot).where(ReconSnapshot.source_id == source_id,
                                                       ReconSnapshot.status == "accepted", ReconSnapshot.as_of < as_of)
                           .order_by(ReconSnapshot.as_of.desc()).limit(1)).first()


def newest_snapshots(session: Session) -> list[ReconSnapshot]:
    """Each source's newest accepted snapshot (the timer's comparison)."""
    newest = (select(ReconSnapshot.source_id, func.max(ReconSnapshot.as_of).label("as_of"))
              .where(ReconSnapshot.status == "accepted").group_by(ReconSnapshot.source_id).subquery())
    return list(session.scalars(select(ReconSnapshot).join(newest, and_(newest.c.source_id == ReconSnapshot.source_id,
                                                                         newest.c.as_of == ReconSnapshot.as_of),
                                                           ).where(ReconSnapshot.status == "accepted")
                                .order_by(ReconSnapshot.source_id)))


@dataclass(frozen=True)
class VarianceRow:
    """A variance line as the review shows it."""

    id: int
    kind: str
    warehouse: str
    merchant: str | None
    sku: str
    product: str
    state: str
    ledger_qty: int
    snapshot_qty: int
    value: Decimal
    cause: str
    owner: str | None
    resolution: str | None
    notes: str | None
    version: int

    @property
    def difference(self) -> int:
        return self.snapshot_qty - self.ledger_qty


_OWNER = User.__table__.alias("owner")


def _variance_select() -> Any:
    v = ReconVariance.__table__
    return (select(v.c.id, v.c.kind, Warehouse.code, Merchant.code, Product.sku, Product.name, v.c.state, v.c.ledger_qty,
                   v.c.snapshot_qty, ((v.c.snapshot_qty - v.c.ledger_qty) * Product.unit_value), v.c.cause,
                   _OWNER.c.name, v.c.resolution, v.c.notes, v.c.version)
            .join(Warehouse, Warehouse.id == v.c.warehouse_id).join(Product, Product.id == v.c.product_id)
            .outerjoin(Merchant, Merchant.id == v.c.merchant_id).outerjoin(_OWNER, _OWNER.c.id == v.c.owner_id))


def variances(session: Session, actor: Actor, snapshot_id: int, *, kind: str | None = None, open_only: bool = False,
              page: int = 1, per_page: int = 100) -> tuple[list[VarianceRow], int]:
    """A page of a snapshot's variance lines (the actor's warehouses), the differences first by value."""
    v = ReconVariance.__table__
    where = [v.c.snapshot_id == snapshot_id, visible(actor, v.c.warehouse_id, v.c.merchant_id)]
    if kind:
        where.append(v.c.kind == kind)
    if open_only:
        where.append(and_(v.c.kind != "match", v.c.resolution.is_(None)))
    total = session.scalar(select(func.count()).select_from(v).where(*where)) or 0
    stmt = (_variance_select().where(*where)
            .order_by(case((v.c.kind == "match", 1), else_=0),
                      func.abs((v.c.snapshot_qty - v.c.ledger_qty) * Product.unit_value).desc(), v.c.id)
            .limit(per_page).offset((max(page, 1) - 1) * per_page))
    return [VarianceRow(*r) for r in session.execute(stmt).all()], int(total)


def variance(session: Session, actor: Actor, variance_id: int) -> tuple[VarianceRow, ReconVariance] | None:
    """One variance line with its row (details: units and entries), in the actor's warehouses."""
    v = ReconVariance.__table__
    row = session.execute(_variance_select().where(v.c.id == variance_id,
                                                   visible(actor, v.c.warehouse_id, v.c.merchant_id))).first()
    if row is None:
        return None
    return VarianceRow(*row), session.get(ReconVariance, variance_id)


def corrections(session: Session, variance_id: int) -> list[Any]:
    requester, decider = User.__table__.alias("requester"), User.__table__.alias("decider")
    c = ReconCorrection.__table__
    return list(session.execute(
        select(c, ReturnUnit.lpn, ReturnUnit.state.label("unit_state"), requester.c.name.label("requested_by"),
               decider.c.name.label("decided_by"))
        .join(ReturnUnit, ReturnUnit.id == c.c.unit_id).outerjoin(requester, requester.c.id == c.c.requested_by_id)
        .outerjoin(decider, decider.c.id == c.c.decided_by_id).where(c.c.variance_id == variance_id)
        .order_by(c.c.id)).all())


def partner_orgs(session: Session) -> list[Any]:
    from app.catalog.models import PartnerOrg

    return list(session.execute(select(PartnerOrg.id, PartnerOrg.name).order_by(PartnerOrg.name)).all())


def supervisors(session: Session) -> list[Any]:
    return list(session.execute(select(User.id, User.name).where(User.role == "supervisor", User.active.is_(True))
                                .order_by(User.name)).all())


def variance_trend(session: Session, actor: Actor, limit: int = 12) -> list[Any]:
    """The KPI: per accepted snapshot, its lines that differ and their units and value (newest last)."""
    v = ReconVariance.__table__
    stmt = (select(ReconSnapshot.id, ReconSnapshot.as_of, ReconSource.code,
                   func.count().filter(v.c.kind != "match"),
                   func.coalesce(func.sum(func.abs(v.c.snapshot_qty - v.c.ledger_qty)), 0),
                   func.coalesce(func.sum(func.abs((v.c.snapshot_qty - v.c.ledger_qty) * Product.unit_value)), 0))
            .join(ReconSource, ReconSource.id == ReconSnapshot.source_id)
            .join(v, v.c.snapshot_id == ReconSnapshot.id).join(Product, Product.id == v.c.product_id)
            .where(_source_scope(actor), visible(actor, v.c.warehouse_id, v.c.merchant_id))
            .group_by(ReconSnapshot.id, ReconSnapshot.as_of, ReconSource.code)
            .order_by(ReconSnapshot.as_of.desc()).limit(limit))
    return list(reversed(session.execute(stmt).all()))


# ---- expected against received ---------------------------------------------------------------------

@dataclass(frozen=True)
class Bucket:
    """One row of expected against received: how many, what value, and the rows behind it."""

    code: str
    label: str
    count: int
    value: Decimal


EXPECTED_LABELS = {
    "authorised": "Authorised, not shipped by the customer",
    "in_transit": "In transit with the carrier",
    "at_dock": "Delivered to the dock, not received (a dock problem)",
    "not_inspected": "Received, not inspected after {hours} hours",
    "wrong_warehouse": "Received at another warehouse than the return names",
}


def _expected_statements(actor: Actor, now: datetime, hours: int) -> dict[str, Any]:
    """Per bucket, a select of (id, reference, warehouse code, value, since) rows."""
    open_rmas = Rma.status.in_(("authorized", "in_transit"))
    line_value = (select(func.coalesce(func.sum(RmaLine.quantity * Product.unit_value), 0))
                  .join(Product, Product.id == RmaLine.product_id).where(RmaLine.rma_id == Rma.id).scalar_subquery())
    tracked = select(CarrierTracking.rma_id).where(CarrierTracking.status.in_(("in_transit", "out_for_delivery")))
    delivered = select(CarrierTracking.rma_id).where(CarrierTracking.status == "delivered")

    def rmas(*where: Any) -> Any:
        return (select(Rma.id, Rma.number, Warehouse.code, line_value, Rma.created_at)
                .join(Warehouse, Warehouse.id == Rma.warehouse_id)
                .where(open_rmas, visible(actor, Rma.warehouse_id, Rma.merchant_id), *where))

    def units(*where: Any) -> Any:
        return (select(ReturnUnit.id, ReturnUnit.lpn, Warehouse.code,
                       func.coalesce(ReturnUnit.paid_price, Product.unit_value), ReturnUnit.received_at)
                .join(Warehouse, Warehouse.id == ReturnUnit.warehouse_id).join(Product, Product.id == ReturnUnit.product_id)
                .where(visible(actor, ReturnUnit.warehouse_id, ReturnUnit.merchant_id), *where))

    return {
        "authorised": rmas(Rma.id.not_in(tracked), Rma.id.not_in(delivered)),
        "in_transit": rmas(Rma.id.in_(tracked), Rma.id.not_in(delivered)),
        "at_dock": rmas(Rma.id.in_(delivered)),
        "not_inspected": units(ReturnUnit.state == "received", ReturnUnit.inspected_at.is_(None),
                               ReturnUnit.received_at < now - timedelta(hours=hours)),
        "wrong_warehouse": units(ReturnUnit.rma_id.is_not(None), ReturnUnit.rma_id.in_(
            select(Rma.id).where(Rma.id == ReturnUnit.rma_id, Rma.warehouse_id != ReturnUnit.warehouse_id))),
    }


def expected_vs_received(session: Session, actor: Actor, now: datetime, hours: int) -> list[Bucket]:
    """Each bucket's count and value, in the actor's scope."""
    out = []
    for code, stmt in _expected_statements(actor, now, hours).items():
        sub = stmt.subquery()
        count, value = session.execute(select(func.count(), func.coalesce(func.sum(list(sub.c)[3]), 0))).one()
        out.append(Bucket(code, EXPECTED_LABELS[code].format(hours=hours), int(count), Decimal(value or 0)))
    return out


def expected_rows(session: Session, actor: Actor, code: str, now: datetime, hours: int, limit: int = 500) -> list[Any]:
    """The rows behind one bucket (returns or units), the oldest first."""
    stmt = _expected_statements(actor, now, hours)[code]
    return list(session.execute(stmt.order_by(list(stmt.selected_columns)[4]).limit(limit)).all())


def org_warehouse_ids(session: Session, actor: Actor) -> set[int]:
    return set(session.scalars(org_warehouses(actor)))


