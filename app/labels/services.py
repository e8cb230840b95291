"""Label use cases: what a unit's label says, printing it (recorded exactly once), printers.

Every print is a mutation with an idempotency key: a double tap prints and records once.
A label sent to a network printer is recorded only after the printer took all of the ZPL;
when the printer refuses or does not answer, nothing at all is written.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from sqlalchemy import func, select, tuple_
from sqlalchemy.orm import Session

from app.auth.roles import Actor
from app.auth.scoping import ensure_unit_visible, load_unit, scope_warehouses
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
from app.labels.printer import PrinterError, check_address, send_raw
from app.labels.zpl import render_zpl
from app.ledger.idempotency import run_idempotent
from app.ledger.models import ReturnUnit
from app.ledger.services import audit, lock_unit

DEFAULT_TIMEOUT = 5.0
Sender = Callable[..., None]


class PrinterUnavailable(DomainError):
    """The printer refused, did not answer or dropped the connection: nothing was recorded."""

    status_code = 503
    code = "printer_unavailable"


# --- what a label says --------------------------------------------------------------------


def check_kind(kind: str | None) -> str:
    """Return a valid label kind or refuse with a message naming the choices."""
    if kind not in LABEL_KINDS:
        raise ValidationFailed("Unknown label kind: choose an LPN label or a SKU (product) label.")
    return kind  # type: ignore[return-value]


def check_stock(stock: str | None, *, thermal: bool = False) -> str:
    """Return a valid stock key; ``thermal`` refuses the A4 sheet (ZPL is for thermal rolls)."""
    if stock not in STOCKS:
        raise ValidationFailed("Unknown label size: choose 4x6, 2x1 or A4.")
    if thermal and not STOCKS[stock].is_thermal:
        raise ValidationFailed("A4 sheets print from the browser; ZPL is for 4x6 and 2x1 thermal labels.")
    return stock  # type: ignore[return-value]


def sells_as(session: Session, unit: ReturnUnit) -> Product:
    """The product a unit now sells as: its open-box variant once inspected as not-new, else its own."""
    product = unit.product
    if product.open_box_product_id is not None and sells_as_open_box(unit.grade, unit.packaging):
        variant = session.get(Product, product.open_box_product_id)
        if variant is not None:
            return variant
    return product


def product_barcode_value(session: Session, product: Product) -> str:
    """What a SKU label's barcode carries: the product's first barcode as GTIN-13/UPC-A, else its SKU."""
    codes = session.scalars(
        select(ProductBarcode.code).where(ProductBarcode.product_id == product.id).order_by(ProductBarcode.id)
    ).all()
    for candidate in [display_gtin(code) for code in codes] + [product.sku]:
        try:
            return validate_barcode_value(candidate)
        except ValueError:
            continue
    raise ValidationFailed(f"{clean_text(product.sku)} has no barcode or SKU a label can carry; add a barcode to the product.")


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


def print_counts(session: Session, unit_id: int, labels: list[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """previous_prints of several labels (kind, barcode) of one unit, in one query."""
    if not labels:
        return {}
    rows = session.execute(
        select(PrintJob.kind, PrintJob.barcode_value, func.count()).where(
            PrintJob.unit_id == unit_id, tuple_(PrintJob.kind, PrintJob.barcode_value).in_(labels))
        .group_by(PrintJob.kind, PrintJob.barcode_value)).all()
    return {(k, b): n for k, b, n in rows}


def _check_reason(session: Session, unit: ReturnUnit, content: LabelContent, reason: str | None) -> tuple[bool, str | None]:
    """Decide reprint or first print; a reprint needs a reason of at most 200 characters."""
    text = clean_text(reason) or None
    if text is not None and len(text) > MAX_REASON_LENGTH:
        raise ValidationFailed(f"Keep the reprint reason under {MAX_REASON_LENGTH} characters.")
    reprint = previous_prints(session, unit.id, content.kind, content.barcode_value) > 0
    if reprint and text is None:
        what = "LPN" if content.kind == "lpn" else "SKU"
        raise ValidationFailed(f"The {what} label of {unit.lpn} was printed before: choose a reason for the reprint.")
    return reprint, text


def _lock_visible(session: Session, actor: Actor, unit_id: int) -> ReturnUnit:
    """Lock the unit (so two first prints queue) and check the actor may see it."""
    if not actor.can("print_labels"):
        raise NotPermitted("You are not allowed to print labels.")
    unit = lock_unit(session, unit_id)
    ensure_unit_visible(session, actor, unit)
    return unit


def _write_job(session: Session, actor: Actor, unit: ReturnUnit, content: LabelContent, *, stock: str, channel: str,
               printer: Printer | None, reprint: bool, reason: str | None, idempotency_key: str | None) -> PrintJob:
    """Append the print job and its audit entry in the caller's transaction."""
    job = PrintJob(unit_id=unit.id, printer_id=printer.id if printer else None, stock=stock, kind=content.kind,
                   barcode_value=content.barcode_value, channel=channel, reprint=reprint, reason=reason,
                   actor_id=actor.id, idempotency_key=idempotency_key)
    session.add(job)
    session.flush()
    audit(session, actor, "label.reprinted" if reprint else "label.printed", "print_job", job.id,
          warehouse_id=unit.warehouse_id, reason=reason,
          details={"unit_id": unit.id, "lpn": unit.lpn, "kind": content.kind, "stock": stock, "channel": channel,
                   "barcode_value": content.barcode_value, "printer_id": printer.id if printer else None,
                   "printer": printer.name if printer else None})
    return job


def _result(job: PrintJob, unit: ReturnUnit, printer: Printer | None, **extra: Any) -> dict[str, Any]:
    """What a print use case returns (and replays to a retry)."""
    return {"print_job_id": job.id, "unit_id": unit.id, "lpn": unit.lpn, "kind": job.kind, "stock": job.stock,
            "channel": job.channel, "barcode_value": job.barcode_value, "reprint": job.reprint,
            "printer_id": printer.id if printer else None, "printer": printer.name if printer else None, **extra}


# --- printing -----------------------------------------------------------------------------


def record_print(session: Session, actor: Actor, *, unit_id: int, kind: str, stock: str, channel: str,
                 reason: str | None, idempotency_key: str | None, today: date | None = None) -> dict[str, Any]:
    """Use case: record a label handed to the browser's print dialog or served as a ZPL file.

    For ``zpl_download`` the result carries the ZPL itself, so a retry gets the same file.
    """
    check_kind(kind)
    if channel not in ("browser", "zpl_download"):
        raise ValidationFailed("Unknown print channel.")
    check_stock(stock, thermal=channel == "zpl_download")
    params = {"unit_id": unit_id, "kind": kind, "stock": stock, "channel": channel, "reason": reason}

    def work() -> dict[str, Any]:
        unit = _lock_visible(session, actor, unit_id)
        content = build_label(session, unit, kind, today=today)
        reprint, text = _check_reason(session, unit, content, reason)
        zpl = render_zpl(content, stock) if channel == "zpl_download" else None
        job = _write_job(session, actor, unit, content, stock=stock, channel=channel, printer=None,
                         reprint=reprint, reason=text, idempotency_key=idempotency_key)
        return _result(job, unit, None, zpl=zpl)

    return run_idempotent(session, actor, idempotency_key, "labels.record_print", params, work)


def send_to_printer(session: Session, actor: Actor, *, unit_id: int, printer_id: int, kind: str,
                    stock: str | None, reason: str | None, idempotency_key: str | None,
                    timeout: float = DEFAULT_TIMEOUT, today: date | None = None,
                    sender: Sender = send_raw) -> dict[str, Any]:
    """Use case: render the ZPL, send it to a network printer and, only once it was taken, record it.

    A printer that refuses, times out or drops the connection raises PrinterUnavailable and
    nothing is written (the idempotency claim is rolled back too, so the same tap may retry).
    """
    check_kind(kind)
    if stock is not None:
        check_stock(stock, thermal=True)
    params = {"unit_id": unit_id, "printer_id": printer_id, "kind": kind, "stock": stock, "reason": reason}

    def work() -> dict[str, Any]:
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
            sender(printer.host, printer.port, payload, timeout=timeout)
        except PrinterError as exc:
            raise PrinterUnavailable(f"{exc.message}. Nothing was printed or recorded: check that {printer.name} "
                                     "is switched on, online and loaded, then try again.") from exc
        job = _write_job(session, actor, unit, content, stock=printer.stock, channel="zpl_socket", printer=printer,
                         reprint=reprint, reason=text, idempotency_key=idempotency_key)
        return _result(job, unit, printer)

    return run_idempotent(session, actor, idempotency_key, "labels.send_to_printer", params, work)


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
        raise NotFound("No such printer, or it was switched off by an admin. Choose another printer.")
    return printer


def save_printer(session: Session, actor: Actor, *, printer_id: int | None, name: str, warehouse_id: int,
                 host: str, port: int, stock: str, active: bool, idempotency_key: str | None) -> dict[str, Any]:
    """Use case (admin): add a printer, or change or deactivate one; audited, idempotent."""
    if not actor.can("admin"):
        raise NotPermitted("Only an admin may set up printers.")
    name, host = clean_text(name), (host or "").strip()
    if not name or len(name) > 80:
        raise ValidationFailed("Give the printer a name of 1 to 80 characters.")
    try:
        check_address(host, port)
    except PrinterError as exc:
        raise ValidationFailed(f"{exc.message}.") from exc
    if stock not in PRINTER_STOCKS:
        raise ValidationFailed("Choose the label stock loaded in the printer: 4x6 or 2x1.")
    params = {"printer_id": printer_id, "name": name, "warehouse_id": warehouse_id, "host": host, "port": port,
              "stock": stock, "active": bool(active)}

    def work() -> dict[str, Any]:
        warehouse = session.get(Warehouse, warehouse_id)
        if warehouse is None:
            raise ValidationFailed("Choose a warehouse.")
        printer = (session.get(Printer, printer_id, with_for_update=True, populate_existing=True)
                   if printer_id is not None else Printer())
        if printer is None:
            raise NotFound("No such printer.")
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
        audit(session, actor, action, "printer", printer.id, warehouse_id=warehouse_id,
              details={"before": before, "after": {k: params[k] for k in params if k != "printer_id"}})
        return {"printer_id": printer.id, "name": printer.name, "action": action}

    return run_idempotent(session, actor, idempotency_key, "labels.save_printer", params, work)
