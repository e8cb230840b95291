"""Receiving: resolve a scan, open a parcel (receipt), match items, close the receipt."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, NamedTuple

from sqlalchemy import Boolean, Row, Select, and_, or_, bindparam, case, exists, false, func, literal, literal_column, null, select, true, union_all
from sqlalchemy.orm import Session, aliased, contains_eager, joinedload

from app.auth.roles import Actor
from app.auth.scoping import ensure_unit_visible, load_receipt, scope_receipts, scope_rmas, scope_units, serves_merchant
from app.catalog.models import Location, Merchant, Product, ProductBarcode, SalesChannel, Warehouse
from app.db import utcnow
from app.rows import expire, insert_row, next_id, update_row, write
from app.disposition.services import unit_screen_row
from app.errors import Conflict, NotFound, NotPermitted, ValidationFailed
from app.exceptions.models import EXCEPTION_LABELS
from app.exceptions.services import open_exception
from app.ledger.idempotency import LateClaim, run_idempotent
from app.ledger.models import AuditEntry, OutboxEvent, ReturnUnit
from app.ledger.services import audit, audit_values, format_lpn, next_number, outbox_values, receive_rows
from app.orders.models import CarrierTracking, Customer, Order, OrderLine, Rma, RmaLine, ShippedSerial
from app.receiving.models import Receipt
from app.refunds.models import RefundTrigger
from app.receiving.scan import ParsedScan, normalize_gtin, parse_scan
from app.refunds.services import open_refund_rows


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
    return keys


def find_product(session: Session, code: str) -> Any:
    """A product by any of its barcodes (GTIN/UPC/EAN, normalised) or its SKU: a plain row of
    (id, sku, name, serial_tracked, merchant_id), or None."""
    rows = session.execute(_find_product_statement(), _find_product_params(code)).all()
    return rows[0] if rows else None


def _find_product_params(code: str) -> dict[str, str]:
    keys = _barcode_keys(code)
    assert 1 <= len(keys) <= _BARCODE_KEYS
    keys += keys[-1:] * (_BARCODE_KEYS - len(keys))
    return {**{f"key{i}": key for i, key in enumerate(keys)}, "sku": code.upper()}


_BARCODE_KEYS = 3  # the most _barcode_keys gives: the code, its GTIN, the GTIN inside a GS1 carton label


@lru_cache(maxsize=1)
def _find_product_statement() -> Select:
    """find_product's query, built once: one round trip, a barcode match wins over a SKU match.

    The one winning id is picked first and the product then read by its key: joining the matches
    to products before the LIMIT lets PostgreSQL hash the whole catalogue on every scan."""
    keys = [bindparam(f"key{i}") for i in range(_BARCODE_KEYS)]
    by_barcode = select(ProductBarcode.product_id.label("product_id"), literal(1).label("rank")).where(ProductBarcode.code.in_(keys))
    by_sku = select(Product.id, literal(2)).where(Product.sku == bindparam("sku"))
    matches = union_all(by_barcode, by_sku).subquery()
    best = select(matches.c.product_id).order_by(matches.c.rank, matches.c.product_id).limit(1).scalar_subquery()
    products = Product.__table__
    return select(products.c.id, products.c.sku, products.c.name, products.c.serial_tracked,
                  products.c.merchant_id).where(products.c.id == best)


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


def parcel_and_product(session: Session, actor: Actor, receipt_id: int, raw: str) -> tuple[ParcelRef | None, KnownProduct | None]:
    """The parcel in hand (parcel_ref) and the product the scanned code names, if resolve_scan would
    look one up (find_product), in one round trip: an item scan needs both. A partner's parcel is
    read scoped, and their product lookup is left to resolve_scan."""
    parsed = parse_scan(raw if isinstance(raw, str) else "")
    key = product_key(parsed)
    if key is None or actor.is_partner:
        return parcel_ref(session, actor, receipt_id), None
    params = {"receipt_id": receipt_id, **_find_product_params(key)}
    r = session.execute(_parcel_and_product_statement(), params).all()[0]
    ref = ParcelRef(r.id, r.status, r.rma_id) if r.id is not None else None
    product = ProductRef(r.product_id, r.sku, r.name, r.serial_tracked, r.merchant_id) if r.product_id is not None else None
    return ref, KnownProduct(key, product)


@lru_cache(maxsize=1)
def _parcel_and_product_statement() -> Select:
    """parcel_ref's and find_product's queries side by side: one row, whichever of them found nothing."""
    ref = _parcel_ref_statement().subquery("parcel")
    product = _find_product_statement().subquery("product")
    one = select(literal(1).label("one")).subquery("one")
    columns = [ref.c.id, ref.c.status, ref.c.rma_id, product.c.id.label("product_id"), product.c.sku, product.c.name,
               product.c.serial_tracked, product.c.merchant_id]
    return select(*columns).select_from(one.outerjoin(ref, true()).outerjoin(product, true()))


def resolve_scan(session: Session, actor: Actor, raw: str, *, receipt: Any = None, known: KnownProduct | None = None) -> ScanResult:
    """Resolve one scan server-side. Inside an open receipt, item codes win over parcel codes.
    `receipt`: the parcel in hand (id, status, rma_id); `known`: its product lookup, read ahead."""
    parsed = parse_scan(raw if isinstance(raw, str) else "")
    code = parsed.raw

    def product_of(key: str) -> Any:
        return known.product if known is not None and known.key == key else find_product(session, key)

    if not code:
        return ScanResult("unknown", code, parsed)
    if parsed.kind_hint == "lpn":
        unit_id = session.scalars(scope_units(select(ReturnUnit.id).where(ReturnUnit.lpn == code.upper()), actor)).first()
        return ScanResult("lpn" if unit_id else "unknown", code, parsed, unit_id=unit_id)
    if parsed.kind_hint == "location":
        loc = session.scalars(select(Location).where(Location.barcode == code)).first()
        return ScanResult("location" if loc else "unknown", code, parsed, location_id=loc.id if loc else None)
    if parsed.kind_hint == "gs1" and parsed.gtin:
        product = product_of(parsed.gtin)
        if product is not None:
            return ScanResult("product", code, parsed, product_id=product.id, serial=parsed.serial, lot=parsed.lot,
                              product=product)
        return ScanResult("unknown", code, parsed)
    if len(code) > 64:
        return ScanResult("unknown", code, parsed)
    if receipt is None or receipt.status != "open":
        rma = _find_rma(session, actor, code)
        if rma is not None:
            return ScanResult("rma", code, parsed, rma_id=rma[0], via=rma[1])
    product = product_of(code)
    if product is not None:
        return ScanResult("product", code, parsed, product_id=product.id, product=product)
    if receipt is not None and receipt.rma_id is not None:
        hit = session.execute(
            select(OrderLine.product_id).join(ShippedSerial, ShippedSerial.order_line_id == OrderLine.id)
            .join(Rma, Rma.order_id == OrderLine.order_id)
            .where(Rma.id == receipt.rma_id, ShippedSerial.serial == code).limit(1)
        ).first()
        if hit is not None:
            return ScanResult("product", code, parsed, product_id=hit[0], serial=code, via="serial")
    if receipt is not None:
        rma = _find_rma(session, actor, code)
        if rma is not None:
            return ScanResult("rma", code, parsed, rma_id=rma[0], via=rma[1])
    return ScanResult("unknown", code, parsed)


_RMA_VIA = {1: "RMA number", 2: "tracking number", 3: "order number"}


def _find_rma(session: Session, actor: Actor, code: str) -> tuple[int, str] | None:
    """An RMA by its number, a carrier tracking number or the order number (newest open RMA).

    One round trip: the three lookups in one UNION ALL, the first kind that matches wins
    (RMA number, then tracking number, then the newest RMA of the order). Staff's statement is
    built once and read as a plain row; a partner's is scoped to what their organisation serves."""
    if actor.is_partner:
        scoped = _find_rma_statement(lambda stmt: scope_rmas(stmt, actor))
        row = session.execute(scoped, {"code": code.upper()}).first()
    else:
        rows = session.execute(_staff_find_rma_statement(), {"code": code.upper()}).all()
        row = rows[0] if rows else None
    if row is None:
        return None
    return row.rma_id, _RMA_VIA[row.rank]


def _find_rma_statement(scope: Callable[[Select], Select]) -> Select:
    """_find_rma's UNION ALL, each part limited by `scope`; the code is the bound parameter `code`."""
    code = bindparam("code")
    by_number = scope(select(Rma.id.label("rma_id"), literal(1).label("rank")).where(Rma.number == code))
    by_tracking = scope(select(Rma.id, literal(2)).join(CarrierTracking, CarrierTracking.rma_id == Rma.id)
                        .where(CarrierTracking.tracking_number == code))
    by_order = scope(select(Rma.id, literal(3)).join(Order, Order.id == Rma.order_id).where(Order.number == code))
    found = union_all(by_number, by_tracking, by_order).subquery()
    return select(found.c.rma_id, found.c.rank).order_by(found.c.rank, found.c.rma_id.desc()).limit(1)


@lru_cache(maxsize=1)
def _staff_find_rma_statement() -> Select:
    """Staff see every return: their lookup is built once."""
    return _find_rma_statement(lambda stmt: stmt)


def _check_warehouse(session: Session, actor: Actor, warehouse_id: int) -> None:
    """Refuse a warehouse that is not there, or that a partner's organisation does not run (one plain read)."""
    rows = session.execute(_warehouse_statement(), {"warehouse_id": warehouse_id}).all()
    _check_warehouse_row(actor, bool(rows), rows[0].partner_org_id if rows else None)


def _check_warehouse_row(actor: Actor, known: bool, partner_org_id: int | None) -> None:
    """_check_warehouse's rule on what was read of the warehouse: whether it is there, who runs it."""
    if not known:
        raise ValidationFailed("Pick your warehouse first.")
    if actor.is_partner and partner_org_id != actor.partner_org_id:
        raise NotPermitted("You do not work at that warehouse.")


@lru_cache(maxsize=1)
def _warehouse_statement() -> Select:
    w = Warehouse.__table__
    return select(w.c.partner_org_id).where(w.c.id == bindparam("warehouse_id"))


def open_receipt(session: Session, actor: Actor, *, code: str, warehouse_id: int, idempotency_key: str | None,
                 blind: bool = False, found: tuple[int, str] | None = None) -> dict[str, Any]:
    """Use case: a parcel is scanned. Known -> a receipt against its RMA; unknown and `blind` ->
    a blind receipt with an `unidentified_parcel` exception. An RMA already being received joins its receipt.
    `found`: the (RMA id, how) the caller's resolve_scan of this code found for this actor, so the
    lookup is not made twice.

    A parcel of a return is opened in three statements, with its key's record (a late claim): the
    return's row locked, with the warehouse; then, after the lock, the return's open parcel, the
    key's record and the new parcel's id; then one write of the parcel, the return's status, the
    audit entry, the outbox event and the record."""
    if not actor.can("receive"):
        raise NotPermitted("You may not receive parcels.")
    code = parse_scan(code or "").raw
    if not code:
        raise ValidationFailed("Scan the parcel's label.")

    def work(claim: LateClaim) -> dict[str, Any]:
        rma_found = found if found is not None else _find_rma(session, actor, code)
        if rma_found is None:
            return _open_blind_parcel(session, actor, claim, code, warehouse_id, blind)
        # Lock the return first (with no open parcel yet there is no other row for FOR UPDATE to
        # hold), and check it as it is now.
        rma = session.execute(_lock_rma_statement(), {"rma_id": rma_found[0], "warehouse_id": warehouse_id}).all()[0]
        # After the lock (a statement's snapshot predates its wait): a parcel another worker opened
        # meanwhile, or this key's record when a retry waited for its first attempt.
        now = session.execute(_after_rma_lock_statement(session.get_bind().dialect.name), {"rma_id": rma.id, **claim.params}).all()[0]
        if (replay := claim.replayed(now)) is not None:
            return replay
        _check_warehouse_row(actor, rma.warehouse_known, rma.warehouse_partner_org_id)
        if rma.status in ("closed", "cancelled"):
            raise Conflict(f"Return {rma.number} is {rma.status}: it was already received. Ask a supervisor.")
        if rma.warehouse_id != warehouse_id and actor.is_partner:
            raise NotPermitted("That return is for another warehouse.")
        if not serves_merchant(session, actor, rma.merchant_id):  # `found` came from the caller
            raise ValidationFailed(f"No return matches '{code}'. Check the label, or start a blind receipt.")
        if now.open_parcel_id is not None:
            result = {"receipt_id": now.open_parcel_id, "rma_id": rma.id, "blind": False, "joined": True}
            write(session, [claim.record(result)])
            return result
        receipt_id = now.receipt_id
        result = {"receipt_id": receipt_id, "rma_id": rma.id, "blind": False, "joined": False}
        write(session, [
            insert_row(Receipt, {"id": receipt_id, "warehouse_id": warehouse_id, "rma_id": rma.id, "scanned_code": code,
                                 "status": "open", "opened_by_id": actor.id}),
            update_row(Rma, {"id": rma.id}, {"status": "receiving"}),
            insert_row(AuditEntry, audit_values(actor, "receipt.opened", "receipt", receipt_id, warehouse_id=warehouse_id,
                                                details={"rma": rma.number, "via": rma_found[1]})),
            insert_row(OutboxEvent, outbox_values("rma.receiving", "rma", rma.id,
                                                  {"rma_id": rma.id, "number": rma.number, "receipt_id": receipt_id})),
            claim.record(result)])
        expire(session, (Rma, rma.id))
        return result

    return run_idempotent(session, actor, idempotency_key, "open_receipt",
                          {"code": code, "warehouse_id": warehouse_id, "blind": blind}, work, late_claim=True)


def _open_blind_parcel(session: Session, actor: Actor, claim: LateClaim, code: str, warehouse_id: int,
                       blind: bool) -> dict[str, Any]:
    """open_receipt for a code no return matches: a blind parcel with its `unidentified_parcel`
    exception, when the worker asked for one. Rare: the ORM's way, with the key's record read first
    (a concurrent attempt with the same key fails on the record's primary key and replays)."""
    if (replay := claim.replayed_alone(session)) is not None:
        return replay
    _check_warehouse(session, actor, warehouse_id)
    if not blind:
        raise ValidationFailed(f"No return matches '{code}'. Check the label, or start a blind receipt.")
    receipt = Receipt(warehouse_id=warehouse_id, scanned_code=code, opened_by_id=actor.id)
    session.add(receipt)
    session.flush()
    open_exception(session, actor, "unidentified_parcel", warehouse_id=warehouse_id, receipt_id=receipt.id,
                   details={"scanned_code": code})
    audit(session, actor, "receipt.opened", "receipt", receipt.id, warehouse_id=warehouse_id, details={"blind": True, "code": code})
    result = {"receipt_id": receipt.id, "rma_id": None, "blind": True, "joined": False}
    write(session, [claim.record(result)])
    return result


@lru_cache(maxsize=1)
def _lock_rma_statement() -> Select:
    """The return's row locked, with whether the bound warehouse is there and which organisation runs it."""
    rmas, w = Rma.__table__, Warehouse.__table__
    warehouse = w.c.id == bindparam("warehouse_id")
    return (select(rmas.c.id, rmas.c.number, rmas.c.status, rmas.c.warehouse_id, rmas.c.merchant_id,
                   exists().where(warehouse).label("warehouse_known"),
                   select(w.c.partner_org_id).where(warehouse).scalar_subquery().label("warehouse_partner_org_id"))
            .where(rmas.c.id == bindparam("rma_id")).with_for_update(of=rmas))


@lru_cache(maxsize=2)
def _after_rma_lock_statement(dialect: str) -> Select:
    """Read after the return's lock: its first open parcel, the key's record and, when neither is
    there, the id the new parcel gets."""
    r = Receipt.__table__
    open_parcel = (select(r.c.id).where(r.c.rma_id == bindparam("rma_id"), r.c.status == literal_column("'open'"))
                   .order_by(r.c.id).limit(1).scalar_subquery())
    one = select(open_parcel.label("open_parcel_id"), *LateClaim.record_columns()).subquery("one")
    fresh = and_(one.c.open_parcel_id.is_(None), one.c.rec_operation.is_(None))
    return select(one, case((fresh, next_id(dialect, r)), else_=null()).label("receipt_id"))


def _scan_context(session: Session, claim: LateClaim, receipt: ParcelLock, product_id: int, serial: str | None) -> list[Row]:
    """Everything a scan needs to decide, read in one statement after the parcel's lock (so it sees
    every scan that committed before): the key's record, ids for the new rows, the dock, the
    parcel's totals, the product (its columns are NULL when there is no such product), and one row
    per RMA line of this product with its received count, order line and whether the serial was
    shipped on it. A blind parcel gives one row with no line."""
    stmt = _scan_context_statement(session.get_bind().dialect.name, receipt.rma_id is None, serial is not None)
    params = {"receipt_id": receipt.id, "rma_id": receipt.rma_id, "product_id": product_id, "warehouse_id": receipt.warehouse_id,
              "serial": serial, **claim.params}
    return session.execute(stmt, params).all()


@lru_cache(maxsize=16)
def _scan_context_statement(dialect: str, blind: bool, with_serial: bool) -> Select:
    """_scan_context's query, built once per shape (building it is most of its Python cost)."""
    rma_id, product_id, serial = bindparam("rma_id"), bindparam("product_id"), bindparam("serial")
    of_rma = false() if blind else ReturnUnit.rma_id == rma_id
    # A retry replays its record: it takes no new ids, so it leaves no gap in the LPNs.
    fresh = LateClaim.fresh()

    def allocate(value: Any) -> Any:
        return case((fresh, value), else_=null())

    head = [
        select(Receipt.status).where(Receipt.id == bindparam("receipt_id")).scalar_subquery().label("receipt_status"),
        *LateClaim.record_columns(),
        allocate(next_id(dialect, ReturnUnit.__table__)).label("unit_id"),
        allocate(next_id(dialect, RefundTrigger.__table__)).label("refund_id"),
        (allocate(func.nextval("lpn_seq")) if dialect == "postgresql" else null()).label("lpn_number"),
        select(Location.id).where(Location.warehouse_id == bindparam("warehouse_id"), Location.type == "dock")
        .order_by(Location.id).limit(1).scalar_subquery().label("dock_id"),
        (literal(0) if blind else select(func.coalesce(func.sum(RmaLine.quantity), 0)).where(RmaLine.rma_id == rma_id)
         .scalar_subquery()).label("expected_total"),
        select(func.count()).where(of_rma, ReturnUnit.rma_line_id.is_not(None)).scalar_subquery().label("received_total"),
        (select(ReturnUnit.lpn).where(ReturnUnit.serial == serial, ReturnUnit.product_id == product_id).limit(1)
         .scalar_subquery() if with_serial else null()).label("serial_taken_by"),
    ]
    one = select(*head).subquery("one")  # nextval is volatile: the subquery runs once, not per line
    # every unit on the line fills it (a wrong item a supervisor accepted onto it too), as the card
    # and the close count it (_line_counts_statement)
    got = select(func.count()).where(ReturnUnit.rma_line_id == RmaLine.id).correlate(RmaLine).scalar_subquery()
    shipped = (exists().where(ShippedSerial.order_line_id == RmaLine.order_line_id, ShippedSerial.serial == serial)
               if with_serial else false())
    on_line = false() if blind else and_(RmaLine.rma_id == rma_id, RmaLine.product_id == product_id)
    products = Product.__table__
    product = [products.c.sku.label("product_sku"), products.c.name.label("product_name"),
               products.c.serial_tracked.label("product_serial_tracked"), products.c.merchant_id.label("product_merchant_id"),
               products.c.unit_value.label("product_unit_value")]
    return (select(one, *product, RmaLine.id.label("line_id"), RmaLine.quantity.label("expected"), got.label("got"),
                   OrderLine.id.label("order_line_id"), OrderLine.unit_price, shipped.label("shipped"))
            .select_from(one.outerjoin(products, products.c.id == product_id).outerjoin(RmaLine, on_line)
                         .outerjoin(OrderLine, OrderLine.id == RmaLine.order_line_id))
            .order_by(RmaLine.id))


class ParcelLock(NamedTuple):
    """The parcel a scan or a close goes into, read with the lock they queue on (lock_parcel)."""

    id: int
    rma_id: int | None
    warehouse_id: int
    scanned_code: str
    merchant_id: int | None  # the return's
    order_id: int | None
    currency: str | None  # the order's
    rma_number: str | None


@lru_cache(maxsize=1)
def _lock_parcel_row_statement() -> Select:
    """lock_parcel's query for a parcel of a return, as plain columns, built once."""
    r, m, o = Receipt.__table__, Rma.__table__, Order.__table__
    return (select(r.c.id, r.c.rma_id, r.c.warehouse_id, r.c.scanned_code, m.c.merchant_id, m.c.order_id, o.c.currency,
                   m.c.number.label("rma_number"))
            .select_from(r.join(m, m.c.id == r.c.rma_id).outerjoin(o, o.c.id == m.c.order_id))
            .where(r.c.id == bindparam("receipt_id")).with_for_update(of=m))


@lru_cache(maxsize=1)
def _lock_parcel_statement() -> Select:
    """lock_parcel's query as entities, for a partner (scoped per request) and a blind parcel."""
    return (select(Receipt).join(Receipt.rma).where(Receipt.id == bindparam("receipt_id"))
            .options(contains_eager(Receipt.rma).joinedload(Rma.order))
            .with_for_update(of=Rma).execution_options(populate_existing=True))


def lock_parcel(session: Session, actor: Actor, receipt_id: int) -> ParcelLock:
    """Take the lock that scans and the close of a parcel queue on, and read the parcel with what
    they need of its RMA and order (NotFound when the actor may not see it).

    A return may be open in two parcels at once (two boxes, or a blind parcel linked to it later),
    and their scans fill the same lines: a return's parcels queue on the return's row. A blind
    parcel queues on its own row; one linked to a return between the two lookups also takes the
    return's. Locks are taken return first, then parcel, everywhere (open_receipt, close_receipt,
    link_parcel_to_rma). The parcel's row itself is not locked here: read its status afresh.
    One plain row, no ORM entity, on the hot path; a partner's parcel (scoped) takes the ORM's way.
    """
    params = {"receipt_id": receipt_id}
    if not actor.is_partner:
        rows = session.execute(_lock_parcel_row_statement(), params).all()
        if rows:
            return ParcelLock(*rows[0])
        receipt = None
    else:
        receipt = session.scalars(scope_receipts(_lock_parcel_statement(), actor), params).unique().first()
    if receipt is None:
        receipt = _lock_blind_parcel(session, actor, receipt_id)
    rma = receipt.rma
    return ParcelLock(receipt.id, receipt.rma_id, receipt.warehouse_id, receipt.scanned_code,
                      rma.merchant_id if rma else None, rma.order_id if rma else None,
                      rma.order.currency if rma and rma.order else None, rma.number if rma else None)


def _lock_blind_parcel(session: Session, actor: Actor, receipt_id: int) -> Receipt:
    """lock_parcel for a parcel that had no return at its first lookup."""
    stmt, params = scope_receipts(_lock_parcel_statement(), actor), {"receipt_id": receipt_id}
    # A blind parcel, as far as the first lookup could tell. Its row is locked in a savepoint: if it
    # was linked to its return meanwhile, the savepoint gives the row back (holding it while waiting
    # for the return would invert the order and could deadlock) and the return is taken first.
    savepoint = session.begin_nested()
    receipt = load_receipt(session, actor, receipt_id, options=(joinedload(Receipt.rma).joinedload(Rma.order),), lock=True)
    if receipt.rma_id is None:
        savepoint.commit()
        return receipt
    savepoint.rollback()
    receipt = session.scalars(stmt, params).unique().first()
    if receipt is None:
        raise NotFound("No such receipt.")
    return receipt


@lru_cache(maxsize=1)
def _parcel_ref_statement() -> Select:
    r = Receipt.__table__
    return select(r.c.id, r.c.status, r.c.rma_id).where(r.c.id == bindparam("receipt_id"))


def parcel_ref(session: Session, actor: Actor, receipt_id: int) -> ParcelRef | None:
    """A parcel the actor may see, as (id, status, rma_id), or None."""
    if actor.is_partner:
        row = session.execute(scope_receipts(select(Receipt.id, Receipt.status, Receipt.rma_id)
                                             .where(Receipt.id == receipt_id), actor)).first()
        return ParcelRef(*row) if row else None
    rows = session.execute(_parcel_ref_statement(), {"receipt_id": receipt_id}).all()
    return ParcelRef(*rows[0]) if rows else None


class Named(NamedTuple):
    name: str


class Numbered(NamedTuple):
    number: str


class CardRma(NamedTuple):
    """What the parcel card shows about the return (receiving/_receipt.html)."""

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


def parcel_card(session: Session, actor: Actor, receipt_id: int) -> ParcelCard | None:
    """A parcel the actor may see with what its card shows of its return (channel, merchant,
    customer, order), in one plain read; None when there is none. A partner's is checked first."""
    if actor.is_partner and parcel_ref(session, actor, receipt_id) is None:
        return None
    rows = session.execute(_parcel_card_statement(), {"receipt_id": receipt_id}).all()
    if not rows:
        return None
    r = rows[0]
    rma = None
    if r.rma_id is not None:
        rma = CardRma(r.rma_number, Named(r.channel_name), Named(r.merchant_name),
                      Named(r.customer_name) if r.customer_name is not None else None,
                      Numbered(r.order_number) if r.order_number is not None else None)
    return ParcelCard(r.id, r.status, r.rma_id, r.scanned_code, rma)


@lru_cache(maxsize=1)
def _parcel_card_statement() -> Select:
    rc, rma, ch, m, c, o = (Receipt.__table__, Rma.__table__, SalesChannel.__table__, Merchant.__table__,
                            Customer.__table__, Order.__table__)
    return (select(rc.c.id, rc.c.status, rc.c.rma_id, rc.c.scanned_code, rma.c.number.label("rma_number"),
                   ch.c.name.label("channel_name"), m.c.name.label("merchant_name"), c.c.name.label("customer_name"),
                   o.c.number.label("order_number"))
            .select_from(rc.outerjoin(rma, rma.c.id == rc.c.rma_id).outerjoin(ch, ch.c.id == rma.c.channel_id)
                         .outerjoin(m, m.c.id == rma.c.merchant_id).outerjoin(c, c.c.id == rma.c.customer_id)
                         .outerjoin(o, o.c.id == rma.c.order_id))
            .where(rc.c.id == bindparam("receipt_id")))


def _unmatched(session: Session, receipt: ParcelLock, product_id: int, serial: str | None) -> tuple[str | None, OrderLine | None, bool]:
    """A product that fills no expected line: which exception it raises, the order line it was bought
    on (if any), and whether the serial was shipped on that line. Blind parcels raise none here
    (the parcel's own exception covers them)."""
    if receipt.rma_id is None:
        return None, None, False
    order_line = None
    if receipt.order_id is not None:
        order_line = session.scalars(select(OrderLine).where(OrderLine.order_id == receipt.order_id,
                                                             OrderLine.product_id == product_id).order_by(OrderLine.id)).first()
    if order_line is None:
        return "wrong_item", None, False
    already = session.scalar(select(func.count()).where(ReturnUnit.rma_id == receipt.rma_id, ReturnUnit.product_id == product_id))
    shipped = bool(serial) and session.scalars(select(ShippedSerial.id).where(
        ShippedSerial.order_line_id == order_line.id, ShippedSerial.serial == serial)).first() is not None
    return ("extra_item" if (already or 0) < order_line.quantity else "over_return"), order_line, shipped


class _ScannedProduct(NamedTuple):
    id: int
    sku: str
    name: str
    serial_tracked: bool
    merchant_id: int | None
    unit_value: Any


def scan_item(session: Session, actor: Actor, *, receipt_id: int, product_id: int, serial: str | None = None,
              lot: str | None = None, idempotency_key: str | None) -> dict[str, Any]:
    """Use case: one physical item taken out of the parcel becomes a return unit with an LPN,
    `received`, matched to an expected line or recorded as a typed exception.

    Scans into one return queue on its row (lock_parcel), so that two never fill the same line;
    then everything the decision needs is read after the lock (_scan_context), and every row is
    written together (app.rows.write)."""
    if not actor.can("receive"):
        raise NotPermitted("You may not receive items.")
    serial = (serial or "").strip().upper() or None
    lot = (lot or "").strip().upper() or None
    if serial is not None and len(serial) > 64:
        raise ValidationFailed("That serial number is too long.")

    def work(claim: LateClaim) -> dict[str, Any]:
        # Scans into one return queue on its row, so two of them never both fill the same line,
        # and a scan never lands in a parcel that is being closed.
        receipt = lock_parcel(session, actor, receipt_id)
        rows = _scan_context(session, claim, receipt, product_id, serial)
        head = rows[0]
        if (replay := claim.replayed(head)) is not None:
            return replay
        if head.receipt_status != "open":
            raise Conflict("This parcel was already closed. Scan the next parcel.")
        if head.product_sku is None or not serves_merchant(session, actor, head.product_merchant_id):
            raise ValidationFailed("Unknown product.")
        product = _ScannedProduct(product_id, head.product_sku, head.product_name, head.product_serial_tracked,
                                  head.product_merchant_id, head.product_unit_value)
        if product.serial_tracked and not serial:
            raise ValidationFailed(f"{product.sku} is serial-tracked: scan its serial number.")
        if serial and head.serial_taken_by is not None:
            raise Conflict(f"Serial {serial} was already received as {head.serial_taken_by}.")
        line = next((r for r in rows if r.line_id is not None and r.got < r.expected), None)
        if line is not None:
            exc_type, order_line_id, paid, shipped = None, line.order_line_id, line.unit_price, bool(line.shipped)
        else:
            exc_type, order_line, shipped = _unmatched(session, receipt, product.id, serial)
            order_line_id = order_line.id if order_line else None
            paid = order_line.unit_price if order_line else None
        serial_status = ("match" if shipped else "mismatch") if product.serial_tracked else "not_tracked"
        lpn = format_lpn(head.lpn_number if head.lpn_number is not None else next_number(session, "lpn"))
        unit = {"id": head.unit_id, "lpn": lpn, "product_id": product.id, "warehouse_id": receipt.warehouse_id,
                "location_id": head.dock_id, "merchant_id": receipt.merchant_id if receipt.rma_id else product.merchant_id,
                "rma_id": receipt.rma_id, "rma_line_id": line.line_id if line else None, "receipt_id": receipt.id,
                "serial": serial, "lot": lot, "serial_status": serial_status, "paid_price": paid,
                "received_by_id": actor.id}
        writes = receive_rows(actor, unit, reason=f"received from parcel {receipt.scanned_code}",
                              details={"receipt_id": receipt.id, "match": exc_type or ("expected" if line else "blind")})
        # Nothing is refunded for more than was bought (over-return); an extra item is refunded
        # only after a supervisor's approval (see confirm_disposition's hold reasons).
        if order_line_id is not None and exc_type != "over_return":
            writes += open_refund_rows(actor, head.refund_id, unit, paid_amount=paid, currency=receipt.currency or "USD")
        exceptions = [e for e in (exc_type, "serial_mismatch" if serial_status == "mismatch" else None) if e]
        result = {"unit_id": unit["id"], "lpn": lpn, "sku": product.sku, "name": product.name, "serial": serial,
                  "rma_line_id": unit["rma_line_id"], "exceptions": exceptions, "serial_status": serial_status,
                  "line": {"id": line.line_id, "got": line.got + 1, "expected": line.expected} if line else None,
                  "parcel": {"got": head.received_total + (1 if line else 0), "expected": head.expected_total},
                  "parcel_rma_id": receipt.rma_id}
        write(session, [*writes, claim.record(result)])
        if exc_type is not None:
            open_exception(session, actor, exc_type, warehouse_id=receipt.warehouse_id, merchant_id=unit["merchant_id"],
                            rma_id=receipt.rma_id, unit_id=unit["id"], receipt_id=receipt.id, product_id=product.id,
                            value=product.unit_value, details={"sku": product.sku})
        if serial_status == "mismatch":
            open_exception(session, actor, "serial_mismatch", warehouse_id=receipt.warehouse_id,
                            merchant_id=unit["merchant_id"], rma_id=receipt.rma_id, rma_line_id=unit["rma_line_id"],
                            unit_id=unit["id"], receipt_id=receipt.id, product_id=product.id, value=product.unit_value,
                            details={"sku": product.sku, "serial": serial})
        return result

    return run_idempotent(session, actor, idempotency_key, "scan_item",
                          {"receipt_id": receipt_id, "product_id": product_id, "serial": serial, "lot": lot}, work,
                          late_claim=True)


def close_receipt(session: Session, actor: Actor, *, receipt_id: int, idempotency_key: str | None) -> dict[str, Any]:
    """Use case: the parcel is empty. What is still expected becomes `missing_item` exceptions.

    Like the scan, it reads and writes plain rows, with its key's record (a late claim): the
    parcel's lock (the return first); then the parcel's own row locked, with the key's record and
    whether another parcel of the return is still open (a statement after the lock, so a retry
    that waited for it sees its winner's record); the lines with their counts; then one write of
    the updates, the outbox event, the audit entry and the record."""
    if not actor.can("receive"):
        raise NotPermitted("You may not receive parcels.")

    def work(claim: LateClaim) -> dict[str, Any]:
        parcel = lock_parcel(session, actor, receipt_id)  # the return first: no scan is half-way through it
        head = session.execute(_close_head_statement(),
                         {"receipt_id": parcel.id, "rma_id": parcel.rma_id, **claim.params}).all()[0]  # then the parcel
        if (replay := claim.replayed(head)) is not None:
            return replay
        if head.status != "open":
            raise Conflict("This parcel was already closed.")
        now, missing, rows = utcnow(), [], []
        # The return's other parcel (a second box, a blind parcel linked to it) may still be open:
        # what is still expected is missing only when the return's last open parcel closes.
        others_open = head.others_open  # false for a blind parcel (no return)
        if parcel.rma_id is not None and not others_open:
            missing = open_missing_items(session, actor, rma_id=parcel.rma_id, merchant_id=parcel.merchant_id,
                                         warehouse_id=parcel.warehouse_id, receipt_id=parcel.id)
            rows += [update_row(Rma, {"id": parcel.rma_id}, {"status": "closed", "closed_at": now}),
                     insert_row(OutboxEvent, outbox_values("rma.closed", "rma", parcel.rma_id, {
                         "rma_id": parcel.rma_id, "number": parcel.rma_number, "missing": missing}))]
        result = {"receipt_id": parcel.id, "missing": missing, "return_still_open": others_open}
        rows += [update_row(Receipt, {"id": parcel.id}, {"status": "closed", "closed_at": now, "closed_by_id": actor.id}),
                 insert_row(AuditEntry, audit_values(actor, "receipt.closed", "receipt", parcel.id,
                                                     warehouse_id=parcel.warehouse_id, details={"missing": missing})),
                 claim.record(result)]
        write(session, rows)
        expire(session, (Receipt, parcel.id), (Rma, parcel.rma_id))
        return result

    return run_idempotent(session, actor, idempotency_key, "close_receipt", {"receipt_id": receipt_id}, work,
                          late_claim=True)


def open_missing_items(session: Session, actor: Actor, *, rma_id: int, merchant_id: int | None, warehouse_id: int,
                       receipt_id: int) -> list[dict[str, Any]]:
    """The return's last parcel is closed: each line still short becomes a `missing_item` exception.
    Returns what is missing, as [{"sku", "quantity"}]."""
    missing = []
    for line in session.execute(_line_counts_statement(), {"rma_id": rma_id}).all():
        if line.got < line.expected:
            short = line.expected - line.got
            missing.append({"sku": line.sku, "quantity": short})
            open_exception(session, actor, "missing_item", warehouse_id=warehouse_id, merchant_id=merchant_id,
                           rma_id=rma_id, rma_line_id=line.id, receipt_id=receipt_id, product_id=line.product_id,
                           quantity=short, value=line.unit_value * short,
                           details={"sku": line.sku, "expected": line.expected, "received": line.got})
    return missing


@lru_cache(maxsize=1)
def _close_head_statement() -> Select:
    """The parcel's status, its row locked, with the close's key's record and whether another
    parcel of its return (bound `rma_id`, NULL for a blind parcel) is still open."""
    r = Receipt.__table__
    others = aliased(Receipt)
    return (select(r.c.status,
                   exists().where(others.rma_id == bindparam("rma_id", type_=r.c.rma_id.type),
                                  others.status == literal_column("'open'"),  # a literal: a generic plan still knows it
                                  others.id != r.c.id).label("others_open"),
                   *LateClaim.record_columns())
            .where(r.c.id == bindparam("receipt_id")).with_for_update(of=r))


@lru_cache(maxsize=1)
def _line_counts_statement() -> Select:
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
        raise NotFound("No such unit.")
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
    rows = session.execute(_line_counts_statement(), {"rma_id": rma_id}).all()
    shipped: dict[int, list[str]] = {}
    if any(r.serial_tracked for r in rows):
        for s in session.execute(_shipped_serials_statement(), {"rma_id": rma_id}).all():
            shipped.setdefault(s.order_line_id, []).append(s.serial)
    return [(CardLine(r.id, r.sku, r.name, r.reason_code,
                      tuple(shipped.get(r.order_line_id, ())) if r.serial_tracked else ()), r.expected, r.got) for r in rows]


def current_receipt_id(session: Session, actor: Actor) -> int | None:
    """The parcel this worker has open (it survives a page reload), or None."""
    rows = session.execute(_current_receipt_statement(), {"opened_by_id": actor.id}).all()
    return rows[0].id if rows else None


@lru_cache(maxsize=1)
def _current_receipt_statement() -> Select:
    # 'open' written into the SQL, not bound: a prepared statement's generic plan can then use the
    # partial index on the open parcels (ix_receipts_open_by_opener) instead of reading them all.
    r = Receipt.__table__
    return (select(r.c.id).where(r.c.opened_by_id == bindparam("opened_by_id"), r.c.status == literal_column("'open'"))
            .order_by(r.c.id.desc()).limit(1))


def exception_label(type_: str) -> str:
    """Human name of an exception type."""
    return EXCEPTION_LABELS.get(type_, type_)
