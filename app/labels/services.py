"""Label use cases: what a unit's label says, printing it (recorded exactly once), printers.

Every print is a mutation with an idempotency key: a double tap prints and records once.
A label sent to a network printer is recorded only after the printer took all of the ZPL;
when the printer refuses or does not answer, nothing at all is written.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import NamedTuple

from sqlalchemy import CompoundSelect, Integer, String, bindparam, func, literal, null, select, union_all
from sqlalchemy.orm import Session, joinedload

from app.auth.roles import Actor
from app.auth.scoping import scope_warehouses
from app.ledger.queries import load_unit, scope_units
from app.catalog.models import Product, ProductBarcode, Warehouse
from app.db import utcnow
from app.errors import DomainError, NotFound, NotPermitted, ValidationFailed
from app.labels.domain import (
    LABEL_KINDS,
    MAX_REASON_LENGTH,
    STOCKS,
    LabelContent,
    clean_text,
    display_gtin,
    humanise,
    sells_as_open_box,
    validate_barcode_value,
)
from app.labels.models import PRINTER_STOCKS, Printer, PrintJob
from app.labels.printer import PrinterError, PrinterNetworks, check_address, send_raw
from app.labels.zpl import render_zpl
from app.ledger.idempotency import Result, run_idempotent
from app.ledger.models import ReturnUnit
from app.ledger.services import lock_unit
from app.ledger.writer import audit_row
from app.rows import write
from app.words import N_

DEFAULT_TIMEOUT = 5.0
Sender = Callable[..., None]


class PrinterUnavailable(DomainError):
    """The printer refused, did not answer or dropped the connection: nothing was recorded."""

    status_code = 503
    code = "printer_unavailable"


# --- what a label says --------------------------------------------------------------------

# What a label shows of a unit besides its own columns: its product, location and warehouse.
UNIT_PLACE = (joinedload(ReturnUnit.product), joinedload(ReturnUnit.location), joinedload(ReturnUnit.warehouse))


def labelled_unit(session: Session, actor: Actor, unit_id: int) -> ReturnUnit:
    """A unit the actor may see with what its label shows (UNIT_PLACE), in one read; NotFound otherwise."""
    return load_unit(session, actor, unit_id, options=UNIT_PLACE)



def check_kind(kind: str | None) -> str:
    """Return a valid label kind or refuse with a message naming the choices."""
    if kind not in LABEL_KINDS:
        raise ValidationFailed(N_("Unknown label kind: choose an LPN label or a SKU (product) label."))
    return kind  # type: ignore[return-value]


def check_stock(stock: str | None, *, thermal: bool = False) -> str:
    """Return a valid stock key; ``thermal`` refuses the A4 sheet (ZPL is for thermal rolls)."""
    if stock not in STOCKS:
        raise ValidationFailed(N_("Unknown label size: choose 4x6, 2x1 or A4."))
    if thermal and not STOCKS[stock].is_thermal:
        raise ValidationFailed(N_("A4 sheets print from the browser; ZPL is for 4x6 and 2x1 thermal labels."))
    return stock  # type: ignore[return-value]


def sells_as(session: Session, unit: ReturnUnit) -> Product:
    """The product a unit now sells as: its open-box variant once inspected as not-new, else its own."""
    product = unit.product
    if product.open_box_product_id is not None and sells_as_open_box(unit.grade, unit.packaging):
        variant = session.get(Product, product.open_box_product_id)
        if variant is not None:
            return variant
    return product


def sku_barcode_value(sku: str, codes: Iterable[str]) -> str | None:
    """What a SKU label's barcode carries: the first of the product's barcodes (``codes``, oldest
    first) that Code128 can carry, as GTIN-13/UPC-A, else its SKU; None when neither can be carried."""
    for candidate in [display_gtin(code) for code in codes] + [sku]:
        try:
            return validate_barcode_value(candidate)
        except ValueError:
            continue
    return None


def product_barcode_value(session: Session, product: Product) -> str:
    """What a SKU label's barcode carries (sku_barcode_value), or a refusal saying what to fix."""
    codes = session.scalars(
        select(ProductBarcode.code).where(ProductBarcode.product_id == product.id).order_by(ProductBarcode.id)
    ).all()
    value = sku_barcode_value(product.sku, codes)
    if value is None:
        raise ValidationFailed(f"{clean_text(product.sku)} has no barcode or SKU a label can carry; add a barcode to the product.")
    return value


def build_label(session: Session, unit: ReturnUnit, kind: str, *, today: date | None = None) -> LabelContent:
    """The content of a unit's label: an LPN label, or a SKU label of the product it now sells as."""
    check_kind(kind)
    if kind == "lpn":
        product, barcode = unit.product, unit.lpn
    else:
        product = sells_as(session, unit)
        barcode = product_barcode_value(session, product)
    try:
        return LabelContent(
            lpn=unit.lpn, sku=product.sku, product_name=product.name, grade=unit.grade,
            disposition=humanise(unit.disposition) or None,
            location=unit.location.code if unit.location is not None else None,
            warehouse=unit.warehouse.name, printed_on=today or utcnow().date(), barcode_value=barcode, kind=kind,
        )
    except ValueError as exc:  # an LPN a Code128 symbol cannot carry: never issued, but say so
        raise ValidationFailed(f"This label cannot be printed: {exc}.") from exc


def previous_prints(session: Session, unit_id: int, kind: str, barcode_value: str) -> int:
    """How many times this exact label (unit, kind, barcode) was printed before."""
    return int(session.scalar(
        select(func.count()).select_from(PrintJob)
        .where(PrintJob.unit_id == unit_id, PrintJob.kind == kind, PrintJob.barcode_value == barcode_value)
    ) or 0)


class LabelOffer(NamedTuple):
    """What a unit's print buttons offer (label_offer): the same labels build_label would make."""

    lpn_printed: bool  # the LPN label was printed before (False when the LPN cannot be carried)
    sku: str | None  # the SKU label's product SKU; None (and no barcode) when it has no label
    sku_barcode: str | None
    sku_printed: bool


def label_offer(session: Session, unit: ReturnUnit) -> LabelOffer:
    """What the print buttons of a unit need (templates/labels/_print_actions.html), in one read.

    The block is rendered after every inspection and disposition on the handheld; building both
    labels for it (sells_as, product_barcode_value, a count of the prints: two or three ORM statements and
    two LabelContents) cost over a tenth of those requests' CPU. This reads the same facts in one
    statement (_label_offer_statement, through read_rows) and decides by the same rules: the
    product as sells_as picks it, its barcode by sku_barcode_value, the LPN by
    validate_barcode_value (what LabelContent checks). Printing still goes through build_label.
    """
    product = unit.product
    open_box = product.open_box_product_id is not None and sells_as_open_box(unit.grade, unit.packaging)
    variant_id = product.open_box_product_id if open_box else None
    rows = session.execute(_label_offer_statement(),
                     {"unit_id": unit.id, "product_id": product.id, "variant_id": variant_id}).all()
    skus = {r.product_id: r.value for r in rows if r.part == "product"}
    sells_as_id = variant_id if variant_id in skus else product.id  # as sells_as: the variant if there is one
    codes = [r.value for r in sorted(rows, key=lambda r: r.n) if r.part == "barcode" and r.product_id == sells_as_id]
    printed = {(r.kind, r.value): r.n for r in rows if r.part == "printed"}
    try:
        lpn_printed = printed.get(("lpn", validate_barcode_value(unit.lpn)), 0) > 0
    except ValueError:  # an LPN Code128 cannot carry has no label (build_label refuses it)
        lpn_printed = False
    barcode = sku_barcode_value(skus[sells_as_id], codes)
    if barcode is None:
        return LabelOffer(lpn_printed, None, None, False)
    return LabelOffer(lpn_printed, skus[sells_as_id], barcode, printed.get(("sku", barcode), 0) > 0)


@lru_cache(maxsize=1)
def _label_offer_statement() -> CompoundSelect:
    """label_offer's query, built once: index lookups, told apart by `part`:
    'product': the unit's product and the open-box variant asked for (value = SKU);
    'barcode': the barcodes of both (value = code, n = id: their order);
    'printed': how often (n) each label (kind, value = barcode value) of the unit was printed."""
    products, barcodes, jobs = Product.__table__, ProductBarcode.__table__, PrintJob.__table__
    ids = [bindparam("variant_id", type_=Integer), bindparam("product_id", type_=Integer)]
    return union_all(
        select(literal("product").label("part"), products.c.id.label("product_id"), null().cast(String).label("kind"),
               products.c.sku.label("value"), products.c.id.label("n")).where(products.c.id.in_(ids)),
        select(literal("barcode"), barcodes.c.product_id, null().cast(String), barcodes.c.code, barcodes.c.id)
        .where(barcodes.c.product_id.in_(ids)),
        select(literal("printed"), null().cast(Integer), jobs.c.kind, jobs.c.barcode_value, func.count())
        .where(jobs.c.unit_id == bindparam("unit_id", type_=Integer)).group_by(jobs.c.kind, jobs.c.barcode_value),
    )


def _check_reason(session: Session, unit: ReturnUnit, content: LabelContent, reason: str | None) -> tuple[bool, str | None]:
    """Decide reprint or first print; a reprint needs a reason of at most 200 characters."""
    text = clean_text(reason) or None
    if text is not None and len(text) > MAX_REASON_LENGTH:
        raise ValidationFailed(N_("Keep the reprint reason under %(num)s characters."), num=MAX_REASON_LENGTH)
    reprint = previous_prints(session, unit.id, content.kind, content.barcode_value) > 0
    if reprint and text is None:
        what = "LPN" if content.kind == "lpn" else "SKU"
        raise ValidationFailed(N_("The %(what)s label of %(lpn)s was printed before: choose a reason for the reprint."),
                               what=what, lpn=unit.lpn)
    return reprint, text


def _lock_visible(session: Session, actor: Actor, unit_id: int) -> ReturnUnit:
    """Lock the unit's row (so two first prints queue), then read it as its label shows it, fresh,
    if the actor may see it."""
    if not actor.can("print_labels"):
        raise NotPermitted(N_("You are not allowed to print labels."))
    lock_unit(session, unit_id)
    unit = session.scalars(scope_units(select(ReturnUnit).where(ReturnUnit.id == unit_id).options(*UNIT_PLACE), actor)
                           .execution_options(populate_existing=True)).first()
    if unit is None:
        raise NotFound(N_("No such unit."))
    return unit


def _write_job(session: Session, actor: Actor, unit: ReturnUnit, content: LabelContent, *, stock: str, channel: str,
               printer: Printer | None, reprint: bool, reason: str | None, idempotency_key: str | None) -> PrintJob:
    """Append the print job and its audit entry in the caller's transaction."""
    job = PrintJob(unit_id=unit.id, printer_id=printer.id if printer else None, stock=stock, kind=content.kind,
                   barcode_value=content.barcode_value, channel=channel, reprint=reprint, reason=reason,
                   actor_id=actor.id, idempotency_key=idempotency_key)
    session.add(job)
    session.flush()
    write(session, [audit_row(actor, "label.reprinted" if reprint else "label.printed", "print_job", job.id,
                              warehouse_id=unit.warehouse_id, reason=reason,
                              details={"unit_id": unit.id, "lpn": unit.lpn, "kind": content.kind, "stock": stock,
                                       "channel": channel, "barcode_value": content.barcode_value,
                                       "printer_id": printer.id if printer else None,
                                       "printer": printer.name if printer else None})])
    return job


@dataclass(frozen=True)
class LabelPrinted(Result):
    """What a print use case answers (and replays to a retry): the print job as recorded; `zpl`, for
    a ZPL download, the file itself, so that a retry gets the same one."""

    print_job_id: int
    unit_id: int
    lpn: str
    kind: str
    stock: str
    channel: str
    barcode_value: str
    reprint: bool
    printer_id: int | None
    printer: str | None
    zpl: str | None = None

    @classmethod
    def of(cls, job: PrintJob, unit: ReturnUnit, printer: Printer | None, zpl: str | None = None) -> LabelPrinted:
        return cls(job.id, unit.id, unit.lpn, job.kind, job.stock, job.channel, job.barcode_value, job.reprint,
                   printer.id if printer else None, printer.name if printer else None, zpl)


@dataclass(frozen=True)
class PrinterSaved(Result):
    """save_printer's answer: the printer, and what the save did (the audit action)."""

    printer_id: int
    name: str
    action: str


# --- printing -----------------------------------------------------------------------------


def record_print(session: Session, actor: Actor, *, unit_id: int, kind: str, stock: str, channel: str,
                 reason: str | None, idempotency_key: str | None, today: date | None = None) -> LabelPrinted:
    """Use case: record a label handed to the browser's print dialog or served as a ZPL file.

    For ``zpl_download`` the result carries the ZPL itself, so a retry gets the same file.
    """
    check_kind(kind)
    if channel not in ("browser", "zpl_download"):
        raise ValidationFailed(N_("Unknown print channel."))
    check_stock(stock, thermal=channel == "zpl_download")
    params = {"unit_id": unit_id, "kind": kind, "stock": stock, "channel": channel, "reason": reason}

    def work() -> LabelPrinted:
        unit = _lock_visible(session, actor, unit_id)
        content = build_label(session, unit, kind, today=today)
        reprint, text = _check_reason(session, unit, content, reason)
        zpl = render_zpl(content, stock) if channel == "zpl_download" else None
        job = _write_job(session, actor, unit, content, stock=stock, channel=channel, printer=None,
                         reprint=reprint, reason=text, idempotency_key=idempotency_key)
        return LabelPrinted.of(job, unit, None, zpl=zpl)

    return run_idempotent(session, actor, idempotency_key, "labels.record_print", params, work, result_type=LabelPrinted)


def send_to_printer(session: Session, actor: Actor, *, unit_id: int, printer_id: int, kind: str,
                    stock: str | None, reason: str | None, idempotency_key: str | None,
                    timeout: float = DEFAULT_TIMEOUT, networks: PrinterNetworks | None = None,
                    today: date | None = None, sender: Sender = send_raw) -> LabelPrinted:
    """Use case: render the ZPL, send it to a network printer and, only once it was taken, record it.

    A printer that is not on an allowed network (`networks`, default the private LAN ranges),
    refuses, times out or drops the connection raises PrinterUnavailable, one message for all, and
    nothing is written (the idempotency claim is rolled back too, so the same tap may retry).
    """
    networks = networks or PrinterNetworks.default()
    check_kind(kind)
    if stock is not None:
        check_stock(stock, thermal=True)
    params = {"unit_id": unit_id, "printer_id": printer_id, "kind": kind, "stock": stock, "reason": reason}

    def work() -> LabelPrinted:
        unit = _lock_visible(session, actor, unit_id)
        printer = get_printer(session, actor, printer_id)
        if printer.warehouse_id != unit.warehouse_id:
            raise ValidationFailed(f"Printer {printer.name} is at {printer.warehouse.name}, but unit {unit.lpn} is at "
                                   f"{unit.warehouse.name}. Choose a printer here.")
        if stock is not None and stock != printer.stock:
            raise ValidationFailed(f"Printer {printer.name} holds {STOCKS[printer.stock].title} labels, not "
                                   f"{STOCKS[stock].title}.")
        content = build_label(session, unit, kind, today=today)
        reprint, text = _check_reason(session, unit, content, reason)
        payload = render_zpl(content, printer.stock).encode("utf-8")
        try:
            sender(printer.host, printer.port, payload, timeout=timeout, networks=networks)
        except PrinterError as exc:
            raise PrinterUnavailable(f"{exc.message}. Nothing was printed or recorded: check that {printer.name} "
                                     "is switched on, online and loaded, then try again.") from exc
        job = _write_job(session, actor, unit, content, stock=printer.stock, channel="zpl_socket", printer=printer,
                         reprint=reprint, reason=text, idempotency_key=idempotency_key)
        return LabelPrinted.of(job, unit, printer)

    return run_idempotent(session, actor, idempotency_key, "labels.send_to_printer", params, work,
                          result_type=LabelPrinted)


def print_history(session: Session, actor: Actor, unit_id: int) -> tuple[ReturnUnit, list[PrintJob]]:
    """Every label printed for a unit the actor may see, newest first."""
    unit = load_unit(session, actor, unit_id)
    jobs = session.scalars(select(PrintJob).where(PrintJob.unit_id == unit.id).order_by(PrintJob.id.desc())).all()
    return unit, list(jobs)


# --- printers -----------------------------------------------------------------------------


def visible_warehouses(session: Session, actor: Actor) -> list[Warehouse]:
    """Warehouses the actor may see, by code."""
    return list(session.scalars(scope_warehouses(select(Warehouse), actor).order_by(Warehouse.code)).all())


def list_printers(session: Session, actor: Actor, *, include_inactive: bool = False) -> list[Printer]:
    """Printers at the warehouses the actor may see (active ones only unless asked)."""
    stmt = select(Printer).join(Warehouse).where(Printer.warehouse_id.in_(scope_warehouses(select(Warehouse.id), actor)))
    if not include_inactive:
        stmt = stmt.where(Printer.active.is_(True))
    return list(session.scalars(stmt.order_by(Warehouse.code, Printer.name)).all())


def get_printer(session: Session, actor: Actor, printer_id: int | None) -> Printer:
    """An active printer at a warehouse the actor may see, or NotFound."""
    printer = session.get(Printer, printer_id) if isinstance(printer_id, int) else None
    if printer is None or not printer.active or printer.warehouse_id not in {
            w.id for w in visible_warehouses(session, actor)}:
        raise NotFound(N_("No such printer, or it was switched off by an admin. Choose another printer."))
    return printer


def save_printer(session: Session, actor: Actor, *, printer_id: int | None, name: str, warehouse_id: int,
                 host: str, port: int, stock: str, active: bool, idempotency_key: str | None,
                 networks: PrinterNetworks | None = None) -> PrinterSaved:
    """Use case (admin): add a printer, or change or deactivate one; audited, idempotent. Its host
    must be on an allowed network (`networks`, default the private LAN ranges)."""
    if not actor.can("admin"):
        raise NotPermitted(N_("Only an admin may set up printers."))
    name, host = clean_text(name), (host or "").strip()
    if not name or len(name) > 80:
        raise ValidationFailed(N_("Give the printer a name of 1 to 80 characters."))
    try:
        check_address(host, port, networks or PrinterNetworks.default())
    except PrinterError as exc:
        raise ValidationFailed(f"{exc.message}.") from exc
    if stock not in PRINTER_STOCKS:
        raise ValidationFailed(N_("Choose the label stock loaded in the printer: 4x6 or 2x1."))
    params = {"printer_id": printer_id, "name": name, "warehouse_id": warehouse_id, "host": host, "port": port,
              "stock": stock, "active": bool(active)}

    def work() -> PrinterSaved:
        warehouse = session.get(Warehouse, warehouse_id)
        if warehouse is None:
            raise ValidationFailed(N_("Choose a warehouse."))
        printer = (session.get(Printer, printer_id, with_for_update=True, populate_existing=True)
                   if printer_id is not None else Printer())
        if printer is None:
            raise NotFound(N_("No such printer."))
        clash = session.scalar(select(Printer.id).where(Printer.warehouse_id == warehouse_id, Printer.name == name,
                                                         Printer.id != (printer_id or 0)))
        if clash is not None:
            raise ValidationFailed(f"{warehouse.name} already has a printer called {name}.")
        before = {"name": printer.name, "warehouse_id": printer.warehouse_id, "host": printer.host,
                  "port": printer.port, "stock": printer.stock, "active": printer.active} if printer_id else None
        printer.name, printer.warehouse_id, printer.host, printer.port = name, warehouse_id, host, port
        printer.stock, printer.active = stock, bool(active)
        session.add(printer)
        session.flush()
        action = "printer.created" if before is None else (
            "printer.deactivated" if before["active"] and not active else "printer.updated")
        write(session, [audit_row(actor, action, "printer", printer.id, warehouse_id=warehouse_id,
                                  details={"before": before, "after": {k: params[k] for k in params if k != "printer_id"}})])
        return PrinterSaved(printer.id, printer.name, action)

    return run_idempotent(session, actor, idempotency_key, "labels.save_printer", params, work, result_type=PrinterSaved)
