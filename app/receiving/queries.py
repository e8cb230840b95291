"""Receiving's reads: what a scanned code is, the parcel in hand and its card, the unit screen.

Read-only: the screens and the use cases in app.receiving.services read through here."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, NamedTuple

from sqlalchemy import Select, bindparam, or_, func, literal, literal_column, select, true, union_all
from sqlalchemy.orm import Session
from sqlalchemy.sql.base import ExecutableOption

from app.auth.roles import Actor
from app.auth.scoping import Scope, is_staff, org_merchants, scope_of, scope_warehouses, serves_merchant, visible
from app.catalog.models import Location, Merchant, Product, ProductBarcode, SalesChannel, Warehouse
from app.disposition.services import unit_screen_row
from app.errors import NotFound, ValidationFailed
from app.exceptions.models import EXCEPTION_LABELS
from app.ledger.models import ReturnUnit
from app.ledger.queries import ensure_unit_visible, scope_units
from app.orders.models import Customer, Order, OrderLine, Rma, RmaLine, ShippedSerial
from app.orders.queries import find_return
from app.receiving.models import Parcel
from app.catalog.domain import normalize_gtin, upc_e_to_gtin
from app.receiving.scan import ParsedScan, as_parsed
from app.words import N_


def scope_parcels(stmt: Select, actor: Actor | Scope) -> Select:
    """Limit a select over Parcel to the parcels the actor may see: at their warehouses and, for a
    parcel of a return, of a merchant they serve (a blind parcel has no merchant yet)."""
    parcels, rmas = Parcel.__table__, Rma.__table__  # table columns: a plain read stays a plain read
    served_rmas = select(rmas.c.id).where(rmas.c.merchant_id.in_(org_merchants(actor)))
    return stmt.where(visible(actor, parcels.c.warehouse_id),
                      or_(is_staff(actor), parcels.c.rma_id.is_(None), parcels.c.rma_id.in_(served_rmas)))


def load_parcel(session: Session, actor: Actor, parcel_id: int, *, options: Sequence[ExecutableOption] = ()) -> Parcel:
    """A parcel the actor may see, or NotFound; `options` (e.g. joinedload) ride along."""
    parcel = session.scalars(scope_parcels(select(Parcel).where(Parcel.id == parcel_id).options(*options), actor)).first()
    if parcel is None:
        raise NotFound(N_("No such parcel."))
    return parcel


@dataclass
class ScanResult:
    """What a scan turned out to be. kind: rma, product, lpn, location, serial or unknown."""

    kind: str
    code: str
    parsed: ParsedScan
    rma_id: int | None = None
    product_id: int | None = None
    unit_id: int | None = None
    location_id: int | None = None
    serial: str | None = None
    lot: str | None = None
    via: str = ""  # how a parcel was recognised: rma number, tracking number, order number
    extra: dict[str, Any] = field(default_factory=dict)
    # The product's row (find_product) when the lookup read it, so the caller need not read it again.
    product: Any = field(default=None, repr=False, compare=False)


def _barcode_keys(code: str) -> list[str]:
    keys = [code.upper()]
    gtin = normalize_gtin(code)
    if gtin:
        keys.insert(0, gtin)
    # A GS1-128 carton label carrying only (01): "01" + GTIN-14.
    if len(code) == 16 and code.startswith("01"):
        inner = normalize_gtin(code[2:])
        if inner:
            keys.append(inner)
    # A UPC-E finds the product kept under its UPC-A's GTIN.
    upc_a = upc_e_to_gtin(code)
    if upc_a and upc_a not in keys:
        keys.append(upc_a)
    return keys


def find_product(session: Session, code: str) -> Any:
    """A product by any of its barcodes (GTIN/UPC/EAN, normalised) or its SKU: a plain row of
    (id, sku, name, serial_tracked, merchant_id, lot_tracked), or None."""
    rows = session.execute(find_product_statement(), find_product_params(code)).all()
    return rows[0] if rows else None


def find_product_params(code: str) -> dict[str, str]:
    keys = _barcode_keys(code)
    assert 1 <= len(keys) <= _BARCODE_KEYS
    keys += keys[-1:] * (_BARCODE_KEYS - len(keys))
    return {**{f"key{i}": key for i, key in enumerate(keys)}, "sku": code.upper()}


_BARCODE_KEYS = 3  # the most _barcode_keys gives: the code, its GTIN, the GTIN inside a GS1 carton label or a UPC-E's


@lru_cache(maxsize=1)
def find_product_statement() -> Select:
    """find_product's query, built once: one round trip, a barcode match wins over a SKU match.

    The one winning id is picked first and the product then read by its key: joining the matches
    to products before the LIMIT lets PostgreSQL hash the whole catalogue on every scan."""
    keys = [bindparam(f"key{i}") for i in range(_BARCODE_KEYS)]
    products, barcodes = Product.__table__, ProductBarcode.__table__
    by_barcode = select(barcodes.c.product_id.label("product_id"), literal(1).label("rank")).where(barcodes.c.code.in_(keys))
    by_sku = select(products.c.id, literal(2)).where(products.c.sku == bindparam("sku"))
    matches = union_all(by_barcode, by_sku).subquery()
    best = select(matches.c.product_id).order_by(matches.c.rank, matches.c.product_id).limit(1).scalar_subquery()
    return select(products.c.id, products.c.sku, products.c.name, products.c.serial_tracked,
                  products.c.merchant_id, products.c.lot_tracked).where(products.c.id == best)


class ParcelRef(NamedTuple):
    """The parcel in hand as a scan needs it (parcel_ref)."""

    id: int
    status: str
    rma_id: int | None


class ProductRef(NamedTuple):
    """A product as a scan needs it (find_product)."""

    id: int
    sku: str
    name: str
    serial_tracked: bool
    merchant_id: int | None
    lot_tracked: bool = False  # received with its lot (a GS1 code's, or typed at the prompt)


class KnownProduct(NamedTuple):
    """What find_product gave for `key`, read ahead (parcel_and_product): product is None when nothing matched."""

    key: str
    product: ProductRef | None


def product_key(parsed: ParsedScan) -> str | None:
    """The code resolve_scan looks a product up by, if it looks one up at all: a GS1 string's GTIN,
    else the code itself (not an LPN or a location label, nor longer than any product code)."""
    if not parsed.raw or parsed.kind_hint in ("lpn", "location"):
        return None
    if parsed.kind_hint == "gs1" and parsed.gtin:
        return parsed.gtin
    return parsed.raw if len(parsed.raw) <= 64 else None


def parcel_and_product(session: Session, actor: Actor, parcel_id: int,
                       raw: str | ParsedScan) -> tuple[ParcelRef | None, KnownProduct | None]:
    """The parcel in hand (parcel_ref) and the product the scanned code names, if resolve_scan would
    look one up (find_product), in one round trip: an item scan needs both."""
    parsed = as_parsed(raw)
    key = product_key(parsed)
    if key is None:
        return parcel_ref(session, actor, parcel_id), None
    params = {"parcel_id": parcel_id, **find_product_params(key)}
    r = session.execute(_parcel_and_product_statement(scope_of(actor)), params).one()
    ref = ParcelRef(r.id, r.status, r.rma_id) if r.id is not None else None
    product = (ProductRef(r.product_id, r.sku, r.name, r.serial_tracked, r.merchant_id, r.lot_tracked)
               if r.product_id is not None else None)
    return ref, KnownProduct(key, product)


@lru_cache(maxsize=64)
def _parcel_and_product_statement(actor: Scope) -> Select:
    """parcel_ref's and find_product's queries side by side: one row, whichever of them found nothing."""
    ref = parcel_ref_statement(actor).subquery("parcel")
    product = find_product_statement().subquery("product")
    one = select(literal(1).label("one")).subquery("one")
    columns = [ref.c.id, ref.c.status, ref.c.rma_id, product.c.id.label("product_id"), product.c.sku, product.c.name,
               product.c.serial_tracked, product.c.merchant_id, product.c.lot_tracked]
    return select(*columns).select_from(one.outerjoin(ref, true()).outerjoin(product, true()))


def resolve_scan(session: Session, actor: Actor, raw: str | ParsedScan, *, parcel: Any = None,
                 known: KnownProduct | None = None) -> ScanResult:
    """What a scanned code is, for this actor. Inside an open parcel, item codes win over parcel
    codes. `parcel`: the parcel in hand (id, status, rma_id); `known`: its product lookup, read ahead."""
    parsed = as_parsed(raw)
    code = parsed.raw

    def product_of(key: str) -> Any:
        # A partner's scan knows only the products of the merchants its organisation serves: any
        # other is an unknown code, so that the scan box tells nothing about other merchants.
        product = known.product if known is not None and known.key == key else find_product(session, key)
        return product if product is not None and serves_merchant(session, actor, product.merchant_id) else None

    if not code:
        return ScanResult("unknown", code, parsed)
    if parsed.kind_hint == "lpn":
        unit_id = session.scalars(scope_units(select(ReturnUnit.id).where(ReturnUnit.lpn == code.upper()), actor)).first()
        return ScanResult("lpn" if unit_id else "unknown", code, parsed, unit_id=unit_id)
    if parsed.kind_hint == "location":
        loc = session.scalars(select(Location).where(Location.barcode == code,
                                                      visible(actor, Location.warehouse_id))).first()
        return ScanResult("location" if loc else "unknown", code, parsed, location_id=loc.id if loc else None)
    if parsed.kind_hint == "gs1" and parsed.gtin:
        product = product_of(parsed.gtin)
        if product is not None:
            return ScanResult("product", code, parsed, product_id=product.id, serial=parsed.serial, lot=parsed.lot,
                              product=product)
        return ScanResult("unknown", code, parsed)
    if len(code) > 64:
        return ScanResult("unknown", code, parsed)
    if parcel is None or parcel.status != "open":
        rma = find_return(session, actor, code)
        if rma is not None:
            return ScanResult("rma", code, parsed, rma_id=rma[0], via=rma[1])
    product = product_of(code)
    if product is not None:
        return ScanResult("product", code, parsed, product_id=product.id, product=product)
    if parcel is not None and parcel.rma_id is not None:
        hit = session.execute(
            select(OrderLine.product_id).join(ShippedSerial, ShippedSerial.order_line_id == OrderLine.id)
            .join(Rma, Rma.order_id == OrderLine.order_id)
            .where(Rma.id == parcel.rma_id, ShippedSerial.serial == code).limit(1)
        ).first()
        if hit is not None:
            return ScanResult("product", code, parsed, product_id=hit[0], serial=code, via="serial")
    if parcel is not None:
        rma = find_return(session, actor, code)
        if rma is not None:
            return ScanResult("rma", code, parsed, rma_id=rma[0], via=rma[1])
    return ScanResult("unknown", code, parsed)


@lru_cache(maxsize=64)
def parcel_ref_statement(actor: Scope) -> Select:
    r = Parcel.__table__
    return scope_parcels(select(r.c.id, r.c.status, r.c.rma_id).where(r.c.id == bindparam("parcel_id")), actor)


def parcel_ref(session: Session, actor: Actor, parcel_id: int) -> ParcelRef | None:
    """A parcel the actor may see, as (id, status, rma_id), or None."""
    row = session.execute(parcel_ref_statement(scope_of(actor)), {"parcel_id": parcel_id}).first()
    return ParcelRef(*row) if row else None


class Named(NamedTuple):
    name: str


class Numbered(NamedTuple):
    number: str


class CardRma(NamedTuple):
    """What the parcel card shows about the return (receiving/_parcel.html)."""

    number: str
    channel: Named
    merchant: Named
    customer: Named | None
    order: Numbered | None


class ParcelCard(NamedTuple):
    """The parcel in hand as the handheld shows it: the parcel, and its return if it has one."""

    id: int
    status: str
    rma_id: int | None
    scanned_code: str
    rma: CardRma | None


def parcel_card(session: Session, actor: Actor, parcel_id: int) -> ParcelCard | None:
    """A parcel the actor may see with what its card shows of its return (channel, merchant,
    customer, order), in one plain read; None when there is none."""
    rows = session.execute(_parcel_card_statement(scope_of(actor)), {"parcel_id": parcel_id}).all()
    if not rows:
        return None
    r = rows[0]
    rma = None
    if r.rma_id is not None:
        rma = CardRma(r.rma_number, Named(r.channel_name), Named(r.merchant_name),
                      Named(r.customer_name) if r.customer_name is not None else None,
                      Numbered(r.order_number) if r.order_number is not None else None)
    return ParcelCard(r.id, r.status, r.rma_id, r.scanned_code, rma)


@lru_cache(maxsize=64)
def _parcel_card_statement(scope: Scope) -> Select:
    rc, rma, ch, m, c, o = (Parcel.__table__, Rma.__table__, SalesChannel.__table__, Merchant.__table__,
                            Customer.__table__, Order.__table__)
    return scope_parcels(
        select(rc.c.id, rc.c.status, rc.c.rma_id, rc.c.scanned_code, rma.c.number.label("rma_number"),
               ch.c.name.label("channel_name"), m.c.name.label("merchant_name"), c.c.name.label("customer_name"),
               o.c.number.label("order_number"))
        .select_from(rc.outerjoin(rma, rma.c.id == rc.c.rma_id).outerjoin(ch, ch.c.id == rma.c.channel_id)
                     .outerjoin(m, m.c.id == rma.c.merchant_id).outerjoin(c, c.c.id == rma.c.customer_id)
                     .outerjoin(o, o.c.id == rma.c.order_id))
        .where(rc.c.id == bindparam("parcel_id")), scope)


@lru_cache(maxsize=1)
def line_counts_statement() -> Select:
    """Each line of a return with its product and how many units fill it: expected-but-not-received is
    derived, not stored. One statement whatever the return's size."""
    lines, units, products = RmaLine.__table__, ReturnUnit.__table__, Product.__table__
    got = (select(func.count()).where(units.c.rma_line_id == lines.c.id, units.c.rma_id == bindparam("rma_id"))
           .correlate(lines).scalar_subquery())
    return (select(lines.c.id, lines.c.product_id, lines.c.quantity.label("expected"), got.label("got"), lines.c.reason_code,
                   lines.c.order_line_id, products.c.sku, products.c.name, products.c.serial_tracked, products.c.unit_value)
            .join_from(lines, products, products.c.id == lines.c.product_id)
            .where(lines.c.rma_id == bindparam("rma_id")).order_by(lines.c.id))


@lru_cache(maxsize=1)
def _shipped_serials_statement() -> Select:
    """The serials shipped on a return's serial-tracked lines."""
    lines, serials, products = RmaLine.__table__, ShippedSerial.__table__, Product.__table__
    tracked = (select(lines.c.order_line_id).join(products, products.c.id == lines.c.product_id)
               .where(lines.c.rma_id == bindparam("rma_id"), products.c.serial_tracked == true()))
    # IN, not a join: two lines of one order line (two reasons) must not show its serials twice
    return select(serials.c.order_line_id, serials.c.serial).where(serials.c.order_line_id.in_(tracked)).order_by(serials.c.id)


class UnitProduct(NamedTuple):
    id: int
    sku: str
    name: str
    category: str
    open_box_product_id: int | None


class UnitOnScreen(NamedTuple):
    """A unit as the handheld's unit screen (receiving/_unit.html) and its print buttons show it."""

    id: int
    lpn: str
    state: str
    version: int
    warehouse_id: int
    serial: str | None
    serial_status: str
    grade: str | None
    packaging: str | None
    decision_rule: str | None
    product: UnitProduct
    facts: Any  # the row read, with what the rules look at: app.disposition.services.decision_of


def unit_on_screen(session: Session, actor: Actor, unit_id: int) -> UnitOnScreen:
    """The unit for its screen, with its product and the rules' facts, in one plain read (NotFound
    outside the actor's scope). The screen follows every inspection and disposition: an ORM load of
    the unit with its product, location and warehouse cost a fifth of an inspection's CPU."""
    r = unit_screen_row(session, unit_id)
    if r is None:
        raise NotFound(N_("No such unit."))
    if actor.is_partner:
        ensure_unit_visible(session, actor, r)
    return UnitOnScreen(r.id, r.lpn, r.state, r.version, r.warehouse_id, r.serial, r.serial_status, r.grade, r.packaging,
                        r.decision_rule, UnitProduct(r.product_id, r.sku, r.name, r.category, r.open_box_product_id), r)


def photo_ids(session: Session, unit_id: int) -> list[Any]:
    """The unit's photos, oldest first, as rows with their `id` (what the unit screen links to)."""
    return session.execute(_photo_ids_statement(), {"unit_id": unit_id}).all()


@lru_cache(maxsize=1)
def _photo_ids_statement() -> Select:
    from app.inspection.models import Photo

    photos = Photo.__table__
    return select(photos.c.id).where(photos.c.unit_id == bindparam("unit_id")).order_by(photos.c.id)


@dataclass(frozen=True)
class CardLine:
    """One expected line as the parcel card shows it."""

    id: int
    sku: str
    name: str
    reason_code: str
    serials: tuple[str, ...]  # shipped on its order line, for a serial-tracked product


def card_lines(session: Session, rma_id: int) -> list[tuple[CardLine, int, int]]:
    """Each line of the return with (expected, received so far), for the parcel card: plain rows,
    two statements at most whatever the return's size (the second only for serial-tracked lines)."""
    rows = session.execute(line_counts_statement(), {"rma_id": rma_id}).all()
    shipped: dict[int, list[str]] = {}
    if any(r.serial_tracked for r in rows):
        for s in session.execute(_shipped_serials_statement(), {"rma_id": rma_id}).all():
            shipped.setdefault(s.order_line_id, []).append(s.serial)
    return [(CardLine(r.id, r.sku, r.name, r.reason_code,
                      tuple(shipped.get(r.order_line_id, ())) if r.serial_tracked else ()), r.expected, r.got) for r in rows]


def current_parcel_id(session: Session, actor: Actor) -> int | None:
    """The parcel this worker has open (it survives a page reload), or None."""
    rows = session.execute(_current_parcel_statement(), {"opened_by_id": actor.id}).all()
    return rows[0].id if rows else None


@lru_cache(maxsize=1)
def _current_parcel_statement() -> Select:
    # 'open' written into the SQL, not bound: a prepared statement's generic plan can then use the
    # partial index on the open parcels (ix_receipts_open_by_opener) instead of reading them all.
    r = Parcel.__table__
    return (select(r.c.id).where(r.c.opened_by_id == bindparam("opened_by_id"), r.c.status == literal_column("'open'"))
            .order_by(r.c.id.desc()).limit(1))


def exception_label(type_: str) -> str:
    """Human name of an exception type."""
    return EXCEPTION_LABELS.get(type_, type_)


def parcel_in_hand(session: Session, actor: Actor, parcel_id: int | None,
                   parsed: ParsedScan) -> tuple[ParcelRef | None, KnownProduct | None]:
    """The open parcel a scan goes into (`parcel_id`, the one the handheld holds, else the worker's
    own open parcel), with the product the code names when it names one (read together)."""
    known = None
    if parcel_id is not None:
        ref, known = parcel_and_product(session, actor, parcel_id, parsed)
        if ref is not None and ref.status == "open":
            return ref, known
    current = current_parcel_id(session, actor)
    return (parcel_ref(session, actor, current) if current is not None else None), known


def product_by_id(session: Session, product_id: int | None) -> ProductRef:
    products = Product.__table__
    row = session.execute(select(products.c.id, products.c.sku, products.c.name, products.c.serial_tracked,
                                 products.c.merchant_id, products.c.lot_tracked).where(products.c.id == product_id)).first()
    if row is None:
        raise ValidationFailed(N_("Unknown product."))
    return ProductRef(*row)


def visible_warehouse(session: Session, actor: Actor, warehouse_id: int | None) -> int | None:
    """`warehouse_id` when the actor may work there (staff at any warehouse in use, a partner at their
    own), else None."""
    if warehouse_id is None:
        return None
    return session.scalars(scope_warehouses(select(Warehouse.id).where(Warehouse.id == warehouse_id,
                                                                       Warehouse.active.is_(True)), actor)).first()


def warehouses(session: Session, actor: Actor) -> list[Warehouse]:
    """The warehouses in use the actor may work at, by code (the handheld's picker)."""
    return list(session.scalars(scope_warehouses(select(Warehouse).where(Warehouse.active.is_(True))
                                                 .order_by(Warehouse.code), actor)))


def parcel_units(session: Session, parcel_id: int) -> list[Any]:
    """The units received from a parcel so far, oldest first, with their SKU (the card's list)."""
    u, p = ReturnUnit.__table__, Product.__table__
    return session.execute(select(u.c.id, u.c.lpn, u.c.state, u.c.serial_status, u.c.rma_id, u.c.rma_line_id,
                                  p.c.sku).join_from(u, p, p.c.id == u.c.product_id)
                           .where(u.c.parcel_id == parcel_id).order_by(u.c.id)).all()


def last_inspection(session: Session, unit_id: int) -> dict[str, Any] | None:
    """The unit's newest inspection's answers and notes (they prefill the form), or None."""
    from app.inspection.models import Inspection

    row = session.execute(select(Inspection.answers, Inspection.notes).where(Inspection.unit_id == unit_id)
                          .order_by(Inspection.id.desc()).limit(1)).first()
    return {"answers": dict(row.answers or {}), "notes": row.notes} if row else None
