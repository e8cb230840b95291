"""Receiving's use cases: a scan on the handheld, opening a parcel, receiving an item, closing the parcel.

Each use case is one transaction (run_idempotent) that takes its locks, decides with
app.receiving.domain's rules and writes through the one writer of each concept."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date
from decimal import Decimal
from functools import lru_cache
from types import SimpleNamespace
from typing import Any, NamedTuple

from sqlalchemy import (Boolean, Integer, Select, and_, bindparam, case, cast, exists, false, func, literal, literal_column, null,
                        or_, select, true)
from sqlalchemy.orm import Session, aliased

from app.anomalies.domain import PriorReturn, Shipment, customer_norm, empty_box, returned_before, swap
from app.anomalies.queries import customer_figures, customer_norm_columns
from app.anomalies.writer import flag_rows
from app.auth.roles import Actor
from app.auth.scoping import Scope, scope_of, serves_merchant
from app.catalog.models import Location, Product, Warehouse
from app.db import as_utc, unit_of_work, utcnow
from app.errors import Conflict, NotFound, NotPermitted, ValidationFailed
from app.exceptions.domain import BOX_PROBLEMS
from app.exceptions.models import ReturnException
from app.exceptions.writer import open_exception
from app.inspection.models import Photo
from app.inspection.services import discard_photo_files, keep_photo_files, processed_photos
from app.inspection.storage import PhotoStorage
from app.inspection.writer import photo_row
from app.ledger.idempotency import LateClaim, Result, run_idempotent
from app.ledger.domain import SERIAL_HELD
from app.ledger.models import ReturnUnit
from app.ledger.services import next_number
from app.ledger.writer import audit_row, event_row, format_lpn, move_unit
from app.orders.models import Order, OrderLine, Rma, RmaLine, ShippedSerial
from app.orders.queries import find_return
from app.receiving.domain import LineCount, place_unit
from app.receiving.models import Parcel
from app.receiving.queries import (KnownProduct, ParcelRef, ProductRef, current_parcel_id, find_product_params,
                                   find_product_statement, line_counts_statement, parcel_in_hand, parcel_ref,
                                   parcel_ref_statement, product_by_id, product_key, resolve_scan, scope_parcels)
from app.receiving.scan import ParsedScan, as_parsed, parse_scan
from app.refunds.models import RefundTrigger
from app.refunds.writer import open_trigger
from app.rows import Row, allocate_ids, expire, insert_row, next_id, update_row, write
from app.words import N_


@dataclass(frozen=True)
class OpenedParcel(Result):
    """open_parcel's answer: the parcel in hand now, the return it is of (None: blind), whether it
    is blind, whether it was already open (another worker's parcel of the return, joined)."""

    parcel_id: int
    rma_id: int | None
    blind: bool
    joined: bool


@dataclass(frozen=True)
class LineProgress:
    """A line of the return, as a scan filled it: how many units it has now of how many expected."""

    id: int
    got: int
    expected: int


@dataclass(frozen=True)
class ParcelProgress:
    """The units of the return received so far (on its lines), of how many expected."""

    got: int
    expected: int


@dataclass(frozen=True)
class Flagged:
    """An anomaly flag a scan raised on its unit (app.anomalies.domain), with what the handheld
    says of it: the serial, where it was before (the earlier return, or the other order) and when."""

    kind: str
    holds: bool
    explanation: str
    serial: str | None = None
    where: str | None = None
    date: str | None = None


@dataclass(frozen=True)
class ItemReceived(Result):
    """scan_item's answer: the new unit (enough for the handheld's answer without another read),
    the exceptions it raised, the line it filled and the return's progress; `parcel_rma_id`: the
    parcel's return as the scan's lock read it."""

    unit_id: int
    lpn: str
    sku: str
    name: str
    serial: str | None
    rma_line_id: int | None
    exceptions: tuple[str, ...]
    serial_status: str
    line: LineProgress | None
    parcel: ParcelProgress
    parcel_rma_id: int | None
    flags: tuple[Flagged, ...] = ()


@dataclass(frozen=True)
class Missing:
    """What a closed return still lacks of one SKU."""

    sku: str
    quantity: int


@dataclass(frozen=True)
class ParcelClosed(Result):
    """close_parcel's answer: what is missing (nothing while another parcel of the return is still
    open: `return_still_open`)."""

    parcel_id: int
    missing: tuple[Missing, ...]
    return_still_open: bool
    blind: bool = False  # a parcel of no return: nothing was expected


# What the scan screen says when a parcel opens, by how its label was found (app.orders.queries.HOW_FOUND).
PARCEL_MATCHED = {"RMA number": N_("Parcel %(code)s: matched by RMA number. Scan the items."),
                  "tracking number": N_("Parcel %(code)s: matched by tracking number. Scan the items."),
                  "order number": N_("Parcel %(code)s: matched by order number. Scan the items.")}
MAX_LOT = 20  # a GS1 batch/lot (AI 10) is at most 20 characters
PARCEL_JOINED = N_("Parcel %(code)s: joined the parcel another worker opened. Scan the items.")


@dataclass(frozen=True)
class ScanOutcome:
    """What one scan on the handheld did.

    kind: "unit" (an LPN: its screen opens), "parcel" (a parcel opened or joined: `opened`),
    "serial_needed" (a serial-tracked product waits for its serial: `pending_product_id`),
    "serial_cancelled", "lot_needed" (a lot-tracked product scanned without its lot waits for it),
    "lot_cancelled", "received" (an item became a unit: `received`, scan_item's result) or
    "unknown_parcel" (no parcel in hand and nothing matches: a blind parcel may start)."""

    kind: str
    code: str
    parcel_id: int | None = None
    unit_id: int | None = None
    message: str = ""  # English, with `%(name)s` for each of `figures`: the screen translates it
    figures: dict[str, str] = field(default_factory=dict)
    pending_product_id: int | None = None
    opened: OpenedParcel | None = None
    received: ItemReceived | None = None


def scan(session: Session, actor: Actor, *, code: str, parcel_id: int | None, pending_product_id: int | None,
         warehouse_id: int | None, idempotency_key: str | None, pending_lot: bool = False) -> ScanOutcome:
    """Use case: anything scanned on the handheld, resolved on the server to what it is.

    One unit of work: the code is parsed once; the parcel in hand (`parcel_id`, else the worker's
    open parcel) and the product the code names are read together, with the parcel's lock when the
    code is an item to receive into it (_parcel_in_hand_locked); then a parcel label opens its
    parcel (open_parcel), an item is received into the parcel in hand (scan_item's work), an LPN
    opens its unit, and a serial completes the serial-tracked product scanned before it
    (`pending_product_id`), or a lot the lot-tracked one (`pending_lot`)."""
    parsed = as_parsed(code)
    with unit_of_work(session):
        return _scan(session, actor, parsed, parcel_id, pending_product_id, warehouse_id, idempotency_key, pending_lot)


def _scan(session: Session, actor: Actor, parsed: ParsedScan, parcel_id: int | None, pending_product_id: int | None,
          warehouse_id: int | None, idempotency_key: str | None, pending_lot: bool = False) -> ScanOutcome:
    parcel, known, locked = _parcel_in_hand_locked(session, actor, parcel_id, parsed)
    if pending_product_id is not None and parcel is not None:
        if pending_lot:
            return _lot_of(session, actor, parsed, parcel, known, pending_product_id, idempotency_key)
        return _serial_of(session, actor, parsed, parcel, known, pending_product_id, idempotency_key)
    found = resolve_scan(session, actor, parsed, parcel=parcel, known=known)
    if found.kind == "lpn":
        return ScanOutcome("unit", found.code, unit_id=found.unit_id)
    if found.kind == "rma":
        if warehouse_id is None:
            raise ValidationFailed(N_("Pick your warehouse first."))
        opened = open_parcel(session, actor, code=parsed.raw, warehouse_id=warehouse_id,
                             idempotency_key=idempotency_key, found=(found.rma_id, found.via))
        message = PARCEL_JOINED if opened.joined else PARCEL_MATCHED.get(found.via, PARCEL_MATCHED["RMA number"])
        return ScanOutcome("parcel", found.code, parcel_id=opened.parcel_id, opened=opened,
                           message=message, figures={"code": found.code})
    if found.kind == "product":
        if parcel is None:
            raise ValidationFailed(N_("Scan the parcel label (RMA, tracking or order number) before its items."))
        product = found.product or product_by_id(session, found.product_id)
        if product.serial_tracked and not found.serial:
            return ScanOutcome("serial_needed", found.code, parcel_id=parcel.id, pending_product_id=product.id,
                               message=N_("%(sku)s is serial-tracked: scan its serial number."), figures={"sku": product.sku})
        if product.lot_tracked and not found.lot:
            return ScanOutcome("lot_needed", found.code, parcel_id=parcel.id, pending_product_id=product.id,
                               message=N_("%(sku)s is lot-tracked: scan or type its lot number."), figures={"sku": product.sku})
        received = _receive(session, actor, parcel_id=parcel.id, product_id=product.id, serial=found.serial,
                            lot=found.lot, expiry=parsed.expiry, idempotency_key=idempotency_key, locked=locked)
        return ScanOutcome("received", found.code, parcel_id=parcel.id, received=received)
    if found.kind == "location":
        raise ValidationFailed(N_("That is a location label. Scan a parcel or an item."))
    if parcel is None:
        return ScanOutcome("unknown_parcel", found.code or parsed.raw[:64])
    raise ValidationFailed(N_("Unknown code '%(code)s'. Try another barcode on the item, or type the SKU."),
                           code=found.code[:64])


def _serial_of(session: Session, actor: Actor, parsed: ParsedScan, parcel: ParcelRef, known: KnownProduct | None,
               product_id: int, idempotency_key: str | None) -> ScanOutcome:
    """The scan after a serial-tracked product: its serial (or CANCEL)."""
    if parsed.raw.upper() in ("", "CANCEL"):
        return ScanOutcome("serial_cancelled", parsed.raw, parcel_id=parcel.id, message=N_("Serial entry cancelled."))
    if parsed.kind_hint in ("lpn", "location"):
        raise ValidationFailed(N_("That is not a serial number. Scan the item's serial, or scan CANCEL."))
    if not parsed.serial:
        found = resolve_scan(session, actor, parsed, parcel=parcel, known=known)
        if found.kind == "rma" or (found.kind == "product" and found.via != "serial"):
            raise ValidationFailed(N_("That is a product or parcel code, not a serial number. "
                                      "Scan the serial, or scan CANCEL."))
    received = scan_item(session, actor, parcel_id=parcel.id, product_id=product_id,
                         serial=parsed.serial or parsed.raw, lot=parsed.lot, idempotency_key=idempotency_key)
    return ScanOutcome("received", parsed.raw, parcel_id=parcel.id, received=received)


def _lot_of(session: Session, actor: Actor, parsed: ParsedScan, parcel: ParcelRef, known: KnownProduct | None,
            product_id: int, idempotency_key: str | None) -> ScanOutcome:
    """The scan after a lot-tracked product: its lot (typed or scanned, or a GS1 code carrying it with
    its expiry), or CANCEL."""
    if parsed.raw.upper() in ("", "CANCEL"):
        return ScanOutcome("lot_cancelled", parsed.raw, parcel_id=parcel.id, message=N_("Lot entry cancelled."))
    if parsed.kind_hint in ("lpn", "location"):
        raise ValidationFailed(N_("That is not a lot number. Scan or type the item's lot, or scan CANCEL."))
    lot = parsed.lot
    if not lot:
        found = resolve_scan(session, actor, parsed, parcel=parcel, known=known)
        if found.kind in ("rma", "product"):
            raise ValidationFailed(N_("That is a product or parcel code, not a lot number. "
                                      "Scan or type the lot, or scan CANCEL."))
        lot = parsed.raw.strip().upper()
    if len(lot) > MAX_LOT or not lot.isprintable():
        raise ValidationFailed(N_("A lot number is at most %(max)s letters and digits."), max=str(MAX_LOT))
    received = scan_item(session, actor, parcel_id=parcel.id, product_id=product_id, lot=lot, expiry=parsed.expiry,
                         idempotency_key=idempotency_key)
    return ScanOutcome("received", parsed.raw, parcel_id=parcel.id, received=received)


def open_parcel(session: Session, actor: Actor, *, code: str, warehouse_id: int, idempotency_key: str | None,
                blind: bool = False, found: tuple[int, str] | None = None) -> OpenedParcel:
    """Use case: a parcel is scanned. Known -> a parcel against its RMA; unknown and `blind` ->
    a blind parcel with an `unidentified_parcel` exception. An RMA already being received joins its parcel.
    `found`: the (RMA id, how) the caller's resolve_scan of this code found for this actor, so the
    lookup is not made twice.

    A parcel of a return is opened in three statements, with its key's record (a late claim): the
    return's row locked, with the warehouse; then, after the lock, the return's open parcel, the
    key's record, the new parcel's id and the customer's figures against the merchant's norm; then
    one write of the parcel, the return's status, the audit entry, the outbox event, the record and,
    for a customer far above the norm, the return's `customer_norm` flag (app.anomalies)."""
    if not actor.can("receive"):
        raise NotPermitted(N_("You may not receive parcels."))
    code = parse_scan(code or "").raw
    if not code:
        raise ValidationFailed(N_("Scan the parcel's label."))

    def work(claim: LateClaim[OpenedParcel]) -> OpenedParcel:
        rma_found = found if found is not None else find_return(session, actor, code)
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
            raise Conflict(N_("Return %(number)s is %(status)s: it was already received. Ask a supervisor."),
                           number=rma.number, status=rma.status)
        if rma.warehouse_id != warehouse_id and actor.is_partner:
            raise NotPermitted(N_("That return is for another warehouse."))
        if not serves_merchant(session, actor, rma.merchant_id):  # `found` came from the caller
            raise ValidationFailed(N_("No return matches '%(code)s'. Check the label, or start a blind parcel."), code=code)
        if now.open_parcel_id is not None:
            result = OpenedParcel(now.open_parcel_id, rma.id, blind=False, joined=True)
            write(session, [claim.record(result)])
            return result
        parcel_id = now.parcel_id
        result = OpenedParcel(parcel_id, rma.id, blind=False, joined=False)
        figures = customer_figures(now)
        flag = (customer_norm(figures, factor=Decimal(str(now.norm_factor)), min_returns=int(now.norm_min_returns))
                if figures else None)
        write(session, [
            *flag_rows(actor, [flag] if flag else [], unit_id=None, rma_id=rma.id, warehouse_id=warehouse_id),
            insert_row(Parcel, {"id": parcel_id, "warehouse_id": warehouse_id, "rma_id": rma.id, "scanned_code": code,
                                "status": "open", "opened_by_id": actor.id}),
            update_row(Rma, {"id": rma.id}, {"status": "receiving"}),
            audit_row(actor, "parcel.opened", "parcel", parcel_id, warehouse_id=warehouse_id,
                      details={"rma": rma.number, "via": rma_found[1]}),
            # the published event keeps its payload's key (docs/integration-views.md)
            event_row("rma.receiving", "rma", rma.id, {"rma_id": rma.id, "number": rma.number, "receipt_id": parcel_id}),
            claim.record(result)])
        expire(session, (Rma, rma.id))
        return result

    return run_idempotent(session, actor, idempotency_key, "open_parcel",
                          {"code": code, "warehouse_id": warehouse_id, "blind": blind}, work, result_type=OpenedParcel,
                          late_claim=True)


def _open_blind_parcel(session: Session, actor: Actor, claim: LateClaim[OpenedParcel], code: str, warehouse_id: int,
                       blind: bool) -> OpenedParcel:
    """open_parcel for a code no return matches: a blind parcel with its `unidentified_parcel`
    exception, when the worker asked for one, with the key's record read first (a concurrent
    attempt with the same key fails on the record's primary key and replays)."""
    if (replay := claim.replayed_alone(session)) is not None:
        return replay
    _check_warehouse(session, actor, warehouse_id)
    if not blind:
        raise ValidationFailed(N_("No return matches '%(code)s'. Check the label, or start a blind parcel."), code=code)
    (parcel_id,), (exception_id,) = allocate_ids(session, Parcel, 1), allocate_ids(session, ReturnException, 1)
    result = OpenedParcel(parcel_id, None, blind=True, joined=False)
    write(session, [
        insert_row(Parcel, {"id": parcel_id, "warehouse_id": warehouse_id, "scanned_code": code, "status": "open",
                            "opened_by_id": actor.id}),
        *open_exception(actor, exception_id, "unidentified_parcel", warehouse_id=warehouse_id, parcel_id=parcel_id,
                        details={"scanned_code": code}),
        audit_row(actor, "parcel.opened", "parcel", parcel_id, warehouse_id=warehouse_id,
                  details={"blind": True, "code": code}),
        claim.record(result)])
    return result


def _check_warehouse(session: Session, actor: Actor, warehouse_id: int) -> None:
    """Refuse a warehouse that is not there, or that a partner's organisation does not run (one plain read)."""
    rows = session.execute(_warehouse_statement(), {"warehouse_id": warehouse_id}).all()
    _check_warehouse_row(actor, bool(rows), rows[0].partner_org_id if rows else None)


def _check_warehouse_row(actor: Actor, known: bool, partner_org_id: int | None) -> None:
    """_check_warehouse's rule on what was read of the warehouse: whether it is there, who runs it."""
    if not known:
        raise ValidationFailed(N_("Pick your warehouse first."))
    if actor.is_partner and partner_org_id != actor.partner_org_id:
        raise NotPermitted(N_("You do not work at that warehouse."))


@lru_cache(maxsize=1)
def _warehouse_statement() -> Select:
    w = Warehouse.__table__
    return select(w.c.partner_org_id).where(w.c.id == bindparam("warehouse_id"))


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
    there, the id the new parcel gets; with the customer's figures against the merchant's norm
    (app.anomalies.queries.customer_norm_columns)."""
    r = Parcel.__table__
    open_parcel = (select(r.c.id).where(r.c.rma_id == bindparam("rma_id"), r.c.status == literal_column("'open'"))
                   .order_by(r.c.id).limit(1).scalar_subquery())
    one = select(open_parcel.label("open_parcel_id"), *LateClaim.record_columns(),
                 *customer_norm_columns(bindparam("rma_id"))).subquery("one")
    fresh = and_(one.c.open_parcel_id.is_(None), one.c.rec_operation.is_(None))
    return select(one, case((fresh, next_id(dialect, r)), else_=null()).label("parcel_id"))


class _ScannedProduct(NamedTuple):
    id: int
    sku: str
    name: str
    serial_tracked: bool
    merchant_id: int | None
    unit_value: Any


def scan_item(session: Session, actor: Actor, *, parcel_id: int, product_id: int, serial: str | None = None,
              lot: str | None = None, expiry: date | None = None, idempotency_key: str | None) -> ItemReceived:
    """Use case: one physical item taken out of the parcel becomes a return unit with an LPN,
    `received`, matched to an expected line or recorded as a typed exception.

    Scans into one return queue on its row (lock_parcel), so that two never fill the same line;
    then everything the decision needs is read after the lock (_scan_context), and every row is
    written together (app.rows.write)."""
    return _receive(session, actor, parcel_id=parcel_id, product_id=product_id, serial=serial, lot=lot, expiry=expiry,
                    idempotency_key=idempotency_key, locked=None)


def _receive(session: Session, actor: Actor, *, parcel_id: int, product_id: int, serial: str | None,
             lot: str | None, idempotency_key: str | None, locked: ParcelLock | None,
             expiry: date | None = None) -> ItemReceived:
    """scan_item's work; `locked`: the parcel, locked by the scan's first read in the unit of work
    that is still open (scan), else the parcel's lock is taken here."""
    if not actor.can("receive"):
        raise NotPermitted(N_("You may not receive items."))
    serial = (serial or "").strip().upper() or None
    lot = (lot or "").strip().upper() or None
    if serial is not None and len(serial) > 64:
        raise ValidationFailed(N_("That serial number is too long."))

    def work(claim: LateClaim[ItemReceived]) -> ItemReceived:
        # Scans into one return queue on its row, so two of them never both fill the same line,
        # and a scan never lands in a parcel that is being closed.
        parcel = locked if locked is not None and locked.id == parcel_id else lock_parcel(session, actor, parcel_id)
        rows = _scan_context(session, claim, parcel, product_id, serial)
        head = rows[0]
        if (replay := claim.replayed(head)) is not None:
            return replay
        if head.parcel_status != "open":
            raise Conflict(N_("This parcel was already closed. Scan the next parcel."))
        if head.product_sku is None or not serves_merchant(session, actor, head.product_merchant_id):
            raise ValidationFailed(N_("Unknown product."))
        product = _ScannedProduct(product_id, head.product_sku, head.product_name, head.product_serial_tracked,
                                  head.product_merchant_id, head.product_unit_value)
        if product.serial_tracked and not serial:
            raise ValidationFailed(N_("%(sku)s is serial-tracked: scan its serial number."), sku=product.sku)
        if serial and head.serial_taken_by is not None:
            raise Conflict(N_("Serial %(serial)s is already in the building as %(unit)s, not yet sold on: the same item "
                              "cannot come in twice. Check that unit; a supervisor decides if it is a copy."),
                           serial=serial, unit=head.serial_taken_by)
        lines = [LineCount(r.line_id, r.expected, r.got) for r in rows if r.line_id is not None]
        placement = place_unit(on_return=parcel.rma_id is not None, lines=lines, bought=head.bought_quantity,
                               already=head.already)
        exc_type = placement.exception
        line = next((r for r in rows if r.line_id == placement.line_id), None) if placement.line_id else None
        if line is not None:
            order_line_id, paid, shipped = line.order_line_id, line.unit_price, bool(line.shipped)
        else:
            order_line_id, paid, shipped = head.bought_line_id, head.bought_price, bool(head.bought_shipped)
        serial_status = ("match" if shipped else "mismatch") if product.serial_tracked else "not_tracked"
        lpn = format_lpn(head.lpn_number if head.lpn_number is not None else next_number(session, "lpn"))
        merchant_id = parcel.merchant_id if parcel.rma_id else product.merchant_id
        unit = SimpleNamespace(id=head.unit_id, lpn=lpn, product_id=product.id, warehouse_id=parcel.warehouse_id,
                               state=None, location_id=head.dock_id)
        values = {"merchant_id": merchant_id, "rma_id": parcel.rma_id, "rma_line_id": line.line_id if line else None,
                  "parcel_id": parcel.id, "serial": serial, "lot": lot, "expiry": expiry, "serial_status": serial_status,
                  "paid_price": paid, "received_by_id": actor.id}
        writes = move_unit(actor, unit, "received", reason=f"received from parcel {parcel.scanned_code}",
                           action="unit.received", values=values, idempotency_key=claim.key,
                           details={"parcel_id": parcel.id, "match": exc_type or ("expected" if line else "blind")})
        # Nothing is refunded for more than was bought (over-return); an extra item is refunded
        # only after a supervisor's approval (see confirm_disposition's hold reasons).
        if order_line_id is not None and exc_type != "over_return":
            writes += open_trigger(actor, head.refund_id, unit_id=unit.id, rma_id=parcel.rma_id,
                                   warehouse_id=parcel.warehouse_id, paid_amount=paid, currency=parcel.currency,
                                   resolution=line.resolution if line else None, exchange_sku=line.exchange_sku if line else None)
        flagged = _serial_flags(head, serial, blind=parcel.rma_id is None)
        writes += flag_rows(actor, [f for f, _ in flagged], unit_id=unit.id, rma_id=parcel.rma_id,
                            warehouse_id=parcel.warehouse_id)
        exceptions = [e for e in (exc_type, "serial_mismatch" if serial_status == "mismatch" else None) if e]
        for exception_id, type_ in zip(allocate_ids(session, ReturnException, len(exceptions)), exceptions):
            details = {"sku": product.sku, **({"serial": serial} if type_ == "serial_mismatch" else {})}
            writes += open_exception(actor, exception_id, type_, warehouse_id=parcel.warehouse_id,
                                     merchant_id=merchant_id, rma_id=parcel.rma_id, unit_id=unit.id,
                                     rma_line_id=values["rma_line_id"] if type_ == "serial_mismatch" else None,
                                     parcel_id=parcel.id, product_id=product.id, value=product.unit_value,
                                     details=details)
        result = ItemReceived(unit.id, lpn, product.sku, product.name, serial, values["rma_line_id"], tuple(exceptions),
                              serial_status, LineProgress(line.line_id, line.got + 1, line.expected) if line else None,
                              ParcelProgress(head.received_total + (1 if line else 0), head.expected_total),
                              parcel.rma_id, tuple(note for _, note in flagged))
        write(session, [*writes, claim.record(result)])
        return result

    return run_idempotent(session, actor, idempotency_key, "scan_item",
                          {"parcel_id": parcel_id, "product_id": product_id, "serial": serial, "lot": lot,
                           "expiry": expiry.isoformat() if expiry else None}, work,
                          result_type=ItemReceived, late_claim=True)


def _serial_flags(head: Any, serial: str | None, *, blind: bool) -> list[tuple[Any, Flagged]]:
    """The anomaly flags of a serial received now (app.anomalies.domain's rules, on what
    _scan_context read): returned before, and, on a return, a swap. Each with its handheld note."""
    if not serial:
        return []
    shipped_on_order = bool(head.shipped_on_order)
    out: list[tuple[Any, Flagged]] = []
    prior = (PriorReturn(head.prior_lpn, head.prior_state, head.prior_rma_number, as_utc(head.prior_received_at))
             if head.prior_lpn is not None else None)
    before = returned_before(serial, prior, shipped_on_order=shipped_on_order,
                             order_placed_at=as_utc(head.order_placed_at) if head.order_placed_at else None)
    if before is not None and prior is not None:
        out.append((before, Flagged(before.kind, before.holds, before.explanation, serial, prior.rma_number,
                                    prior.received_at.strftime("%Y-%m-%d"))))
    if not blind:
        other = (Shipment(head.elsewhere_order, head.elsewhere_customer_id is not None
                          and head.elsewhere_customer_id == head.rma_customer_id)
                 if head.elsewhere_order is not None else None)
        swapped = swap(serial, other, shipped_on_order=shipped_on_order)
        if swapped is not None and other is not None:
            out.append((swapped, Flagged(swapped.kind, swapped.holds, swapped.explanation, serial, other.order_number)))
    return out


def _scan_context(session: Session, claim: LateClaim[ItemReceived], parcel: ParcelLock, product_id: int,
                  serial: str | None) -> list[Row]:
    """Everything a scan needs to decide, read in one statement after the parcel's lock (so it sees
    every scan that committed before): the key's record, ids for the new rows, the dock, the
    parcel's totals, the product (its columns are NULL when there is no such product), and one row
    per RMA line of this product with its received count, order line and whether the serial was
    shipped on it. A blind parcel gives one row with no line."""
    stmt = _scan_context_statement(session.get_bind().dialect.name, parcel.rma_id is None, serial is not None)
    params = {"parcel_id": parcel.id, "rma_id": parcel.rma_id, "product_id": product_id, "warehouse_id": parcel.warehouse_id,
              "serial": serial, "order_id": parcel.order_id, **claim.params}
    return session.execute(stmt, params).all()


@lru_cache(maxsize=16)
def _scan_context_statement(dialect: str, blind: bool, with_serial: bool) -> Select:
    """_scan_context's query, built once per shape (building it is most of its Python cost)."""
    rma_id, product_id, serial = bindparam("rma_id"), bindparam("product_id"), bindparam("serial")
    parcels, units, locations = Parcel.__table__, ReturnUnit.__table__, Location.__table__
    lines, order_lines, serials = RmaLine.__table__, OrderLine.__table__, ShippedSerial.__table__
    of_rma = false() if blind else units.c.rma_id == rma_id
    # A retry replays its record: it takes no new ids, so it leaves no gap in the LPNs.
    fresh = LateClaim.fresh()
    bought_line = (select(order_lines.c.id).where(order_lines.c.order_id == bindparam("order_id", type_=Integer()),
                                              order_lines.c.product_id == product_id)
                   .order_by(order_lines.c.id).limit(1).scalar_subquery())

    def allocate(value: Any) -> Any:
        return case((fresh, value), else_=null())

    head = [
        select(parcels.c.status).where(parcels.c.id == bindparam("parcel_id")).scalar_subquery().label("parcel_status"),
        *LateClaim.record_columns(),
        allocate(next_id(dialect, units)).label("unit_id"),
        allocate(next_id(dialect, RefundTrigger.__table__)).label("refund_id"),
        (allocate(func.nextval("lpn_seq")) if dialect == "postgresql" else null()).label("lpn_number"),
        select(locations.c.id).where(locations.c.warehouse_id == bindparam("warehouse_id"), locations.c.type == "dock")
        .order_by(locations.c.id).limit(1).scalar_subquery().label("dock_id"),
        (literal(0) if blind else select(func.coalesce(func.sum(lines.c.quantity), 0)).where(lines.c.rma_id == rma_id)
         .scalar_subquery()).label("expected_total"),
        select(func.count()).where(of_rma, units.c.rma_line_id.is_not(None)).scalar_subquery().label("received_total"),
        (select(units.c.lpn).where(units.c.serial == serial, units.c.product_id == product_id,
                                   units.c.state.in_(SERIAL_HELD)).limit(1)
         .scalar_subquery() if with_serial else null()).label("serial_taken_by"),
        # the anomaly flags' facts (app.anomalies.domain): the serial's latest earlier unit that
        # left the building, whether the return's order shipped it, and the latest other order that did
        (select(units.c.id).where(units.c.serial == serial, units.c.product_id == product_id,
                                  units.c.state.not_in(SERIAL_HELD)).order_by(units.c.id.desc()).limit(1)
         .scalar_subquery() if with_serial else null()).label("prior_unit_id"),
        (exists().where(serials.c.serial == serial, serials.c.order_line_id == order_lines.c.id,
                        order_lines.c.order_id == bindparam("order_id", type_=Integer()),
                        order_lines.c.product_id == product_id)
         if with_serial and not blind else false()).label("shipped_on_order"),
        (select(serials.c.order_line_id).join_from(serials, order_lines, order_lines.c.id == serials.c.order_line_id)
         .where(serials.c.serial == serial, order_lines.c.product_id == product_id,
                order_lines.c.order_id.is_distinct_from(bindparam("order_id", type_=Integer())))
         .order_by(serials.c.id.desc()).limit(1).scalar_subquery()
         if with_serial and not blind else cast(null(), Integer())).label("elsewhere_line_id"),
        (select(Order.__table__.c.placed_at).where(Order.__table__.c.id == bindparam("order_id", type_=Integer()))
         .scalar_subquery() if with_serial and not blind else null()).label("order_placed_at"),
        (select(Rma.__table__.c.customer_id).where(Rma.__table__.c.id == rma_id).scalar_subquery()
         if with_serial and not blind else null()).label("rma_customer_id"),
        # what place_unit needs when no line is short: the order line that sold the product, and
        # how many units of it are on the return already
        bought_line.label("bought_line_id"),
        select(order_lines.c.quantity).where(order_lines.c.id == bought_line).scalar_subquery().label("bought_quantity"),
        select(order_lines.c.unit_price).where(order_lines.c.id == bought_line).scalar_subquery().label("bought_price"),
        (exists().where(serials.c.order_line_id == bought_line, serials.c.serial == serial)
         if with_serial else false()).label("bought_shipped"),
        select(func.count()).where(of_rma, units.c.product_id == product_id).scalar_subquery().label("already"),
    ]
    one = select(*head).subquery("one")  # nextval is volatile: the subquery runs once, not per line
    # every unit on the line fills it (a wrong item a supervisor accepted onto it too), as the card
    # and the close count it (line_counts_statement)
    got = select(func.count()).where(units.c.rma_line_id == lines.c.id).correlate(lines).scalar_subquery()
    shipped = (exists().where(serials.c.order_line_id == lines.c.order_line_id, serials.c.serial == serial)
               if with_serial else false())
    on_line = false() if blind else and_(lines.c.rma_id == rma_id, lines.c.product_id == product_id)
    products = Product.__table__
    product = [products.c.sku.label("product_sku"), products.c.name.label("product_name"),
               products.c.serial_tracked.label("product_serial_tracked"), products.c.merchant_id.label("product_merchant_id"),
               products.c.unit_value.label("product_unit_value")]
    prior, prior_rma = units.alias("prior_unit"), Rma.__table__.alias("prior_rma")
    elsewhere, elsewhere_order = order_lines.alias("elsewhere_line"), Order.__table__.alias("elsewhere_order")
    anomaly = [prior.c.lpn.label("prior_lpn"), prior.c.state.label("prior_state"),
               prior.c.received_at.label("prior_received_at"), prior_rma.c.number.label("prior_rma_number"),
               elsewhere_order.c.number.label("elsewhere_order"), elsewhere_order.c.customer_id.label("elsewhere_customer_id")]
    joined = one.outerjoin(products, products.c.id == product_id)
    if with_serial:
        joined = (joined.outerjoin(prior, prior.c.id == one.c.prior_unit_id)
                  .outerjoin(prior_rma, prior_rma.c.id == prior.c.rma_id)
                  .outerjoin(elsewhere, elsewhere.c.id == one.c.elsewhere_line_id)
                  .outerjoin(elsewhere_order, elsewhere_order.c.id == elsewhere.c.order_id))
    else:
        anomaly = [null().label(c.name) for c in anomaly]
    return (select(one, *product, lines.c.id.label("line_id"), lines.c.quantity.label("expected"), got.label("got"),
                   lines.c.resolution, lines.c.exchange_sku,
                   order_lines.c.id.label("order_line_id"), order_lines.c.unit_price, shipped.label("shipped"), *anomaly)
            .select_from(joined.outerjoin(lines, on_line)
                         .outerjoin(order_lines, order_lines.c.id == lines.c.order_line_id))
            .order_by(lines.c.id))


def close_parcel(session: Session, actor: Actor, *, parcel_id: int, idempotency_key: str | None) -> ParcelClosed:
    """Use case: the parcel is empty. What is still expected becomes `missing_item` exceptions.

    Like the scan, it reads and writes plain rows, with its key's record (a late claim): the
    parcel's lock (the return first); then the parcel's own row locked, with the key's record and
    whether another parcel of the return is still open (a statement after the lock, so a retry
    that waited for it sees its winner's record); the lines with their counts; then one write of
    the updates, the outbox event, the audit entry and the record."""
    if not actor.can("receive"):
        raise NotPermitted(N_("You may not receive parcels."))

    def work(claim: LateClaim[ParcelClosed]) -> ParcelClosed:
        parcel = lock_parcel(session, actor, parcel_id)  # the return first: no scan is half-way through it
        head = session.execute(_close_head_statement(),
                         {"parcel_id": parcel.id, "rma_id": parcel.rma_id, **claim.params}).all()[0]  # then the parcel
        if (replay := claim.replayed(head)) is not None:
            return replay
        if head.status != "open":
            raise Conflict(N_("This parcel was already closed."))
        now, missing, rows = utcnow(), (), []
        # The return's other parcel (a second box, a blind parcel linked to it) may still be open:
        # what is still expected is missing only when the return's last open parcel closes.
        others_open = head.others_open  # false for a blind parcel (no return)
        if parcel.rma_id is not None and not others_open:
            missing, rows = close_return(session, actor, rma_id=parcel.rma_id, number=parcel.rma_number,
                                         merchant_id=parcel.merchant_id, warehouse_id=parcel.warehouse_id,
                                         parcel_id=parcel.id)
        result = ParcelClosed(parcel.id, missing, return_still_open=others_open, blind=parcel.rma_id is None)
        rows += [update_row(Parcel, {"id": parcel.id}, {"status": "closed", "closed_at": now, "closed_by_id": actor.id}),
                 audit_row(actor, "parcel.closed", "parcel", parcel.id, warehouse_id=parcel.warehouse_id,
                           details={"missing": [asdict(m) for m in missing]}),
                 claim.record(result)]
        write(session, rows)
        expire(session, (Parcel, parcel.id), (Rma, parcel.rma_id))
        return result

    return run_idempotent(session, actor, idempotency_key, "close_parcel", {"parcel_id": parcel_id}, work,
                          result_type=ParcelClosed, late_claim=True)


def close_return(session: Session, actor: Actor, *, rma_id: int, number: str, merchant_id: int | None,
                 warehouse_id: int, parcel_id: int) -> tuple[tuple[Missing, ...], list[Row]]:
    """The rows that close a return whose last parcel closes, the caller holding its lock: each line
    still short becomes a `missing_item` exception, the return is closed and `rma.closed` published.
    Returns what is missing and the rows."""
    short = [line for line in session.execute(line_counts_statement(), {"rma_id": rma_id}).all()
             if line.got < line.expected]
    missing: list[Missing] = []
    rows: list[Row] = []
    for exception_id, line in zip(allocate_ids(session, ReturnException, len(short)), short):
        quantity = line.expected - line.got
        missing.append(Missing(line.sku, quantity))
        rows += open_exception(actor, exception_id, "missing_item", warehouse_id=warehouse_id, merchant_id=merchant_id,
                               rma_id=rma_id, rma_line_id=line.id, parcel_id=parcel_id, product_id=line.product_id,
                               quantity=quantity, value=line.unit_value * quantity,
                               details={"sku": line.sku, "expected": line.expected, "received": line.got})
    rows += [update_row(Rma, {"id": rma_id}, {"status": "closed", "closed_at": utcnow()}),
             event_row("rma.closed", "rma", rma_id, {"rma_id": rma_id, "number": number,
                                                     "missing": [asdict(m) for m in missing]})]
    return tuple(missing), rows


@lru_cache(maxsize=1)
def _close_head_statement() -> Select:
    """The parcel's status, its row locked, with the close's key's record and whether another
    parcel of its return (bound `rma_id`, NULL for a blind parcel) is still open."""
    r = Parcel.__table__
    others = aliased(Parcel)
    return (select(r.c.status,
                   exists().where(others.rma_id == bindparam("rma_id", type_=r.c.rma_id.type),
                                  others.status == literal_column("'open'"),  # a literal: a generic plan still knows it
                                  others.id != r.c.id).label("others_open"),
                   *LateClaim.record_columns())
            .where(r.c.id == bindparam("parcel_id")).with_for_update(of=r))


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


@dataclass(frozen=True)
class BoxProblemReported(Result):
    """report_box_problem's answer: the exception opened and how many photos of the box it holds."""

    exception_id: int
    type: str
    photos: int


def report_box_problem(session: Session, actor: Actor, *, parcel_id: int, problem: str, note: str | None,
                       photos: list[bytes], store: PhotoStorage, max_bytes: int,
                       idempotency_key: str | None) -> BoxProblemReported:
    """Use case: the parcel in hand came empty, or damaged in transit. Opens that exception on the
    parcel (and its return), due by its type's hours, with photos of the box (at least one: the
    carrier claim and the desk need them) and the worker's note. The parcel stays open: what is in
    a damaged box is still scanned. An empty box of a return flags the return (app.anomalies): every
    refund of it waits for a supervisor. A retried report (same key) opens nothing twice."""
    if not actor.can("receive"):
        raise NotPermitted(N_("You may not receive parcels."))
    if problem not in BOX_PROBLEMS:
        raise ValidationFailed(N_("Say what is wrong with the box: it is empty, or it was damaged in transit."))
    note = " ".join((note or "").split())[:500] or None
    if not photos:
        raise ValidationFailed(N_("Take a photo of the box first: the carrier claim and the desk need it."))
    shots = processed_photos(photos, max_bytes=max_bytes)
    created: list[str] = []

    def work() -> BoxProblemReported:
        parcel = lock_parcel(session, actor, parcel_id)
        if session.scalar(select(Parcel.status).where(Parcel.id == parcel.id)) != "open":
            raise Conflict(N_("This parcel is closed: report a problem with its box while it is open."))
        (exception_id,) = allocate_ids(session, ReturnException, 1)
        photo_ids = allocate_ids(session, Photo, len(shots))
        keep_photo_files(session, store, shots, created)
        rows = open_exception(actor, exception_id, problem, warehouse_id=parcel.warehouse_id, merchant_id=parcel.merchant_id,
                              rma_id=parcel.rma_id, parcel_id=parcel.id,
                              details={"note": note, "photos": len(shots), "label": parcel.scanned_code})
        rows += [photo_row(actor, pid, shot, store.key_for(shot.sha256), exception_id=exception_id)
                 for pid, shot in zip(photo_ids, shots)]
        if problem == "empty_box" and parcel.rma_id is not None:  # a blind parcel's return is not known yet
            rows += flag_rows(actor, [empty_box(parcel.scanned_code, note)], unit_id=None, rma_id=parcel.rma_id,
                              warehouse_id=parcel.warehouse_id)
        write(session, rows)
        return BoxProblemReported(exception_id, problem, len(shots))

    try:
        return run_idempotent(session, actor, idempotency_key, "report_box_problem",
                              {"parcel_id": parcel_id, "problem": problem, "note": note,
                               "photos": sorted(s.sha256 for s in shots)}, work, result_type=BoxProblemReported)
    except BaseException:
        discard_photo_files(session, store, created)
        raise


def lock_parcel(session: Session, actor: Actor, parcel_id: int) -> ParcelLock:
    """Take the lock that scans and the close of a parcel queue on, and read the parcel with what
    they need of its RMA and order (NotFound when the actor may not see it).

    A return may be open in two parcels at once (two boxes, or a blind parcel linked to it later),
    and their scans fill the same lines: a return's parcels queue on the return's row. A blind
    parcel queues on its own row; one linked to a return between the two reads takes the return's
    (see docs/decisions/0001-locking.md for the order of locks). The parcel's row itself is not
    locked here: read its status afresh."""
    params, scope = {"parcel_id": parcel_id}, scope_of(actor)
    row = session.execute(_lock_parcel_statement(scope, blind=False), params).first()
    if row is not None:
        return ParcelLock(*row)
    # A blind parcel, as far as that read could tell. Its row is locked in a savepoint: if it was
    # linked to its return meanwhile, the savepoint gives the row back (holding it while waiting
    # for the return would invert the lock order and could deadlock) and the return is taken first.
    savepoint = session.begin_nested()
    row = session.execute(_lock_parcel_statement(scope, blind=True), params).first()
    if row is not None and row.rma_id is None:
        savepoint.commit()
        return ParcelLock(*row)
    savepoint.rollback()
    row = session.execute(_lock_parcel_statement(scope, blind=False), params).first() if row else None
    if row is None:
        raise NotFound(N_("No such parcel."))
    return ParcelLock(*row)


@lru_cache(maxsize=128)
def _lock_parcel_statement(scope: Scope, *, blind: bool) -> Select:
    """The parcel with its return's merchant, order and currency; locked on the return's row, or,
    for a `blind` parcel (no return), on its own."""
    r, m, o = Parcel.__table__, Rma.__table__, Order.__table__
    joined = r.outerjoin(m, m.c.id == r.c.rma_id) if blind else r.join(m, m.c.id == r.c.rma_id)
    return scope_parcels(
        select(r.c.id, r.c.rma_id, r.c.warehouse_id, r.c.scanned_code, m.c.merchant_id, m.c.order_id, o.c.currency,
               m.c.number.label("rma_number"))
        .select_from(joined.outerjoin(o, o.c.id == m.c.order_id))
        .where(r.c.id == bindparam("parcel_id")).with_for_update(of=r if blind else m), scope)


def _parcel_in_hand_locked(session: Session, actor: Actor, parcel_id: int | None,
                           parsed: ParsedScan) -> tuple[ParcelRef | None, KnownProduct | None, ParcelLock | None]:
    """The scan's first read, inside its unit of work: the parcel in hand and the product the code
    names (parcel_in_hand), and on PostgreSQL, when the code names a product to receive into an
    open parcel of a return (with its serial, for a serial-tracked product), the lock scans of that
    return queue on (lock_parcel's), all in one statement. Nothing is locked for anything else: a
    parcel label locks another return (open_parcel), a serial-tracked product without its serial
    only asks for it."""
    key = product_key(parsed)
    if parcel_id is None or key is None or session.get_bind().dialect.name != "postgresql":
        parcel, known = parcel_in_hand(session, actor, parcel_id, parsed)
        return parcel, known, None
    params = {"parcel_id": parcel_id, "with_serial": bool(parsed.serial), **find_product_params(key)}
    r = session.execute(_locking_read_statement(scope_of(actor)), params).one()
    known = KnownProduct(key, ProductRef(r.product_id, r.sku, r.name, r.serial_tracked, r.merchant_id, r.lot_tracked)
                         if r.product_id is not None else None)
    if r.id is None or r.status != "open":
        current = current_parcel_id(session, actor)
        return (parcel_ref(session, actor, current) if current is not None else None), known, None
    locked = None
    if r.held_rma_id is not None:
        locked = ParcelLock(r.id, r.held_rma_id, r.held_warehouse_id, r.held_scanned_code, r.held_merchant_id,
                            r.held_order_id, r.held_currency, r.held_rma_number)
    return ParcelRef(r.id, r.status, r.rma_id), known, locked


@lru_cache(maxsize=64)
def _locking_read_statement(scope: Scope) -> Select:
    """parcel_and_product's read with lock_parcel's, for a parcel of a return: a LATERAL subquery
    that locks the return's row only when the parcel is open and the code names a product to receive."""
    ref = parcel_ref_statement(scope).subquery("parcel")
    product = find_product_statement().subquery("product")
    one = select(literal(1).label("one")).subquery("one")
    r, m, o = Parcel.__table__.alias("held_parcel"), Rma.__table__, Order.__table__
    held = (select(r.c.rma_id.label("held_rma_id"), r.c.warehouse_id.label("held_warehouse_id"),
                   r.c.scanned_code.label("held_scanned_code"), m.c.merchant_id.label("held_merchant_id"),
                   m.c.order_id.label("held_order_id"), o.c.currency.label("held_currency"),
                   m.c.number.label("held_rma_number"))
            .select_from(r.join(m, m.c.id == r.c.rma_id).outerjoin(o, o.c.id == m.c.order_id))
            .where(r.c.id == ref.c.id, product.c.id.is_not(None), ref.c.status == literal_column("'open'"),
                   or_(product.c.serial_tracked.is_(False), bindparam("with_serial", type_=Boolean())))
            .with_for_update(of=m).lateral("held"))
    return (select(ref.c.id, ref.c.status, ref.c.rma_id, product.c.id.label("product_id"), product.c.sku,
                   product.c.name, product.c.serial_tracked, product.c.merchant_id, product.c.lot_tracked, *held.c)
            .select_from(one.outerjoin(ref, true()).outerjoin(product, true()).outerjoin(held, true())))
