"""Label printing on the web: print pages, ZPL downloads, network printers, history, printer admin.

How a browser print is recorded (the print dialog cannot tell the server whether paper came
out): the page's "Print" button POSTs to /labels/unit/<id>/print, which records the print
(idempotent per tap, reprints need a reason) and redirects to the same page with
`autoprint=1`, which opens the print dialog. A plain GET of the page, or of the .zpl file,
is a preview and records nothing; the handheld's buttons always POST.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, current_app, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from markupsafe import Markup
from wtforms import SelectChoice
from werkzeug.wrappers import Response

from app.ledger.queries import unit_id_by_lpn
from app.db import db
from app.errors import DomainError, NotFound, NotPermitted, ValidationFailed
from app.labels import services
from app.labels.barcodes import code128_svg
from app.labels.domain import REPRINT_REASONS, STOCKS, LabelContent, clean_text, short_name, wrap_text
from app.labels.forms import (
    BROWSER_PREFIX,
    PRINTER_COOKIE,
    PRINTER_PREFIX,
    SHEET_POSITIONS,
    PrinterForm,
    parse_choice,
    parse_int,
    parse_remembered,
    parse_start,
    path_of,
    safe_next,
)
from app.labels.models import Printer
from app.ledger.models import ReturnUnit
from app.labels.printer import PrinterNetworks
from app.web import actor, is_htmx, new_key, render, require
from app.web.i18n import spoken

bp = Blueprint("labels", __name__, url_prefix="/labels")
COOKIE_MAX_AGE = 400 * 24 * 3600  # browsers cap cookies at 400 days


def _namespaced(action: str, key: str | None) -> str | None:
    """One page key serves each of its buttons once: the key is namespaced by the action."""
    return f"{action}:{key}" if key else None


def _timeout() -> float:
    """Seconds to wait for a network printer (LABEL_PRINTER_TIMEOUT, default 5)."""
    return float(current_app.config.get("LABEL_PRINTER_TIMEOUT", services.DEFAULT_TIMEOUT))


def _networks() -> PrinterNetworks:
    """The networks printers may be on (PRINTER_NETWORKS, from DOCKHAND_PRINTER_NETWORKS)."""
    return current_app.config["PRINTER_NETWORKS"]


def _current_path() -> str | None:
    """Where the person is looking: the page URL, or for htmx the URL of the page that asked."""
    if is_htmx():
        return path_of(request.headers.get("HX-Current-URL"))
    return safe_next(request.full_path.rstrip("?"))


# --- the fragment's helper --------------------------------------------------------------


@dataclass
class LabelActions:
    """What the print buttons of one unit need to know, for templates/labels/_print_actions.html."""

    unit: ReturnUnit
    printer: Printer | None = None
    browser_stock: str = "4x6"
    note: str | None = None
    reprint_lpn: bool = False
    reprint_sku: bool = False
    sku: str | None = None
    sku_barcode: str | None = None
    key: str = field(default_factory=new_key)
    next: str | None = None
    reasons: tuple[str, ...] = REPRINT_REASONS
    allowed: bool = True

    @property
    def reprint_any(self) -> bool:
        """A reason box is shown when either label was printed before."""
        return self.reprint_lpn or self.reprint_sku

    @property
    def zpl_stock(self) -> str:
        """The thermal stock a ZPL download is made for: the printer's, else the remembered size."""
        if self.printer is not None:
            return self.printer.stock
        return self.browser_stock if STOCKS[self.browser_stock].is_thermal else "4x6"

    @property
    def target(self) -> str:
        """A short description of where the label goes."""
        if self.printer is not None:
            return f"{self.printer.name} ({_(STOCKS[self.printer.stock].title)})"
        return _("this device's print dialog (%(stock)s)", stock=_(STOCKS[self.browser_stock].title))


def remembered_printer() -> tuple[Printer | None, str, str | None]:
    """The handheld's printer from its cookie: (printer or None, browser stock, note for the person)."""
    choice = parse_remembered(request.cookies.get(PRINTER_COOKIE))
    if choice.printer_id is None:
        return None, choice.browser_stock, None
    try:
        return services.get_printer(db.session, actor(), choice.printer_id), choice.browser_stock, None
    except DomainError:
        return None, choice.browser_stock, "The printer this device remembered is no longer available: choose another."


def label_actions(unit: ReturnUnit) -> LabelActions:
    """Everything `_print_actions.html` shows for a unit, read fresh (with a new key) each render.

    The handheld renders this after every inspection and disposition, so what can be printed is
    read in one statement (services.label_offer) rather than by building both labels."""
    if not (current_user.is_authenticated and current_user.actor().can("print_labels")):
        return LabelActions(unit=unit, allowed=False)
    printer, browser_stock, note = remembered_printer()
    if printer is not None and printer.warehouse_id != unit.warehouse_id:
        note = f"{printer.name} is at {printer.warehouse.name}; printing here from the browser instead."
        printer = None
    offer = services.label_offer(db.session, unit)
    return LabelActions(unit=unit, printer=printer, browser_stock=browser_stock, note=note, next=_current_path(),
                        reprint_lpn=offer.lpn_printed, reprint_sku=offer.sku_printed, sku=offer.sku,
                        sku_barcode=offer.sku_barcode)


@bp.app_context_processor
def _inject() -> dict[str, Any]:
    """Make `label_actions(unit)` available to every template (the receiving screens include the fragment)."""
    return {"label_actions": label_actions}


# --- print page -------------------------------------------------------------------------


def _lpn_font(text: str, width_in: float, max_in: float, min_in: float) -> str:
    """A font size (inches) at which ``text`` in a bold monospace face fits ``width_in``."""
    size = width_in / (max(len(text), 1) * 0.62)
    return f"{max(min_in, min(max_in, size)):.3f}in"


def _label_view(content: LabelContent, stock: str) -> dict[str, Any]:
    """The label's printable parts, sized for the stock (names shortened, big text fitted)."""
    big = content.lpn if content.kind == "lpn" else clean_text(content.sku)
    width = {"4x6": 3.7, "2x1": 1.85, "a4": 2.55}[stock]
    sizes = {"4x6": (0.65, 0.28), "2x1": (0.2, 0.12), "a4": (0.2, 0.11)}[stock]
    return {
        "content": content,
        "svg": Markup(code128_svg(content.barcode_value)),  # noqa: S704 - built from numbers and quoteattr
        "big": big,
        "big_size": _lpn_font(big, width, *sizes),
        "name_lines": wrap_text(content.product_name, 34, 3) if stock == "4x6" else [short_name(content.product_name, 30)],
        "sku": clean_text(content.sku),
        "show_value": content.barcode_value != big,
    }


def _print_options() -> tuple[str, str]:
    """Stock and kind from the query or form, defaulting to the remembered browser size and LPN."""
    values = request.form if request.method == "POST" else request.args
    _, browser_stock, _ = remembered_printer()
    stock = services.check_stock(values.get("stock") or browser_stock)
    kind = services.check_kind(values.get("kind") or "lpn")
    return stock, kind


def _print_page(unit: ReturnUnit, stock: str, kind: str, *, status: int = 200, error: str | None = None) -> Response:
    """Render the print page for one unit's label at one stock."""
    values = request.form if request.method == "POST" else request.args
    start = parse_start(values) if stock == "a4" else 1
    content = services.build_label(db.session, unit, kind)
    spec = STOCKS[stock]
    page_size = "A4" if stock == "a4" else f"{spec.width_mm / 25.4:g}in {spec.height_mm / 25.4:g}in"
    return render("labels/print.html", unit=unit, stock=stock, kind=kind, spec=spec, stocks=STOCKS,
                  page_size=page_size, label=_label_view(content, stock), start=start, positions=SHEET_POSITIONS,
                  autoprint=request.args.get("autoprint") == "1" and status == 200, key=new_key(),
                  reprint=services.previous_prints(db.session, unit.id, kind, content.barcode_value) > 0,
                  reasons=REPRINT_REASONS, next=safe_next(values.get("next")), error=error, status=status)


@bp.get("/unit/<int:unit_id>/print")
@require("print_labels")
def print_page(unit_id: int) -> Response:
    """The label as a page whose CSS @page matches the stock; ?autoprint=1 opens the print dialog."""
    unit = services.labelled_unit(db.session, actor(), unit_id)
    stock, kind = _print_options()
    return _print_page(unit, stock, kind)


@bp.post("/unit/<int:unit_id>/print")
@require("print_labels")
def record_browser_print(unit_id: int) -> Response:
    """Record a browser print (once per tap), then open the page with its print dialog."""
    unit = services.labelled_unit(db.session, actor(), unit_id)
    stock, kind = _print_options()
    start = parse_start(request.form) if stock == "a4" else None
    nxt = safe_next(request.form.get("next"))
    try:
        services.record_print(db.session, actor(), unit_id=unit.id, kind=kind, stock=stock, channel="browser",
                              reason=request.form.get("reason"),
                              idempotency_key=_namespaced("browser", request.form.get("idempotency_key")))
    except ValidationFailed as exc:
        db.session.rollback()
        return _print_page(unit, stock, kind, status=exc.status_code, error=spoken(exc))
    flash(f"Label {unit.lpn} recorded as printed. If the print dialog did not open, use your browser's Print.", "success")
    return redirect(url_for("labels.print_page", unit_id=unit.id, stock=stock, kind=kind, start=start, next=nxt,
                            autoprint=1), code=303)


# --- ZPL --------------------------------------------------------------------------------


def _zpl_response(zpl: str, unit: ReturnUnit, stock: str, kind: str) -> Response:
    """Serve ZPL as a download named after the LPN."""
    resp = current_app.response_class(zpl, mimetype="application/zpl")
    resp.headers["Content-Disposition"] = f'attachment; filename="{unit.lpn}-{kind}-{stock}.zpl"'
    return resp


@bp.get("/unit/<int:unit_id>.zpl")
@require("print_labels")
def zpl_preview(unit_id: int) -> Response:
    """The unit's label as a ZPL file (a preview: not recorded as printed)."""
    unit = services.labelled_unit(db.session, actor(), unit_id)
    stock = services.check_stock(request.args.get("stock") or "4x6", thermal=True)
    kind = services.check_kind(request.args.get("kind") or "lpn")
    from app.labels.zpl import render_zpl

    return _zpl_response(render_zpl(services.build_label(db.session, unit, kind), stock), unit, stock, kind)


@bp.post("/unit/<int:unit_id>.zpl")
@require("print_labels")
def zpl_download(unit_id: int) -> Response:
    """Record a ZPL download (once per tap) and serve the file."""
    unit = services.labelled_unit(db.session, actor(), unit_id)
    stock = services.check_stock(request.form.get("zpl_stock") or request.form.get("stock") or "4x6", thermal=True)
    kind = services.check_kind(request.form.get("kind") or "lpn")
    result = services.record_print(db.session, actor(), unit_id=unit.id, kind=kind, stock=stock,
                                   channel="zpl_download", reason=request.form.get("reason"),
                                   idempotency_key=_namespaced("zpl", request.form.get("idempotency_key")))
    assert result.zpl is not None
    return _zpl_response(result.zpl, unit, stock, kind)


# --- network printers -------------------------------------------------------------------


@bp.post("/unit/<int:unit_id>/send")
@require("print_labels")
def send(unit_id: int) -> Response:
    """Send the label to a network printer; answer with the print buttons and what happened."""
    unit = services.labelled_unit(db.session, actor(), unit_id)
    kind = request.form.get("kind") or "lpn"
    try:
        raw_printer = request.form.get("printer_id")
        if raw_printer:
            printer_id = parse_int(raw_printer, "The printer")
        else:
            printer_id = parse_remembered(request.cookies.get(PRINTER_COOKIE)).printer_id
            if printer_id is None:
                raise ValidationFailed("Choose a printer first.")
        result = services.send_to_printer(
            db.session, actor(), unit_id=unit.id, printer_id=printer_id, kind=kind,
            stock=request.form.get("stock") or None, reason=request.form.get("reason"),
            idempotency_key=_namespaced("send", request.form.get("idempotency_key")), timeout=_timeout(),
            networks=_networks())
    except DomainError as exc:
        db.session.rollback()
        if isinstance(exc, NotPermitted):
            raise
        return render("labels/unit.html", "labels/_print_actions.html", status=exc.status_code, unit=unit,
                      label_error=spoken(exc), trigger={"dockhand:error": {"message": spoken(exc)}})
    what = "LPN label" if result.kind == "lpn" else "SKU label"
    again = " (already sent: this tap was a repeat)" if result.replayed else ""
    message = f"{what} {result.barcode_value} sent to {result.printer}{again}."
    return render("labels/unit.html", "labels/_print_actions.html", unit=unit, label_result=message,
                  trigger={"dockhand:ok": {"message": message}})


@bp.get("/unit/<int:unit_id>")
@require("print_labels")
def unit_page(unit_id: int) -> Response:
    """A unit's labels: the print buttons (also the htmx fragment) and a link to the history."""
    unit = services.labelled_unit(db.session, actor(), unit_id)
    return render("labels/unit.html", "labels/_print_actions.html", unit=unit)


@bp.get("/unit/<int:unit_id>/history")
@require("print_labels")
def history(unit_id: int) -> Response:
    """Every label printed for the unit: who, when, which printer, which label, and why again."""
    unit, jobs = services.print_history(db.session, actor(), unit_id)
    return render("labels/history.html", unit=unit, jobs=jobs, stocks=STOCKS)


@bp.get("/")
@require("print_labels")
def index() -> Response:
    """Find a unit by its LPN to (re)print its label."""
    lpn = clean_text(request.args.get("lpn")).upper()
    if lpn:
        unit_id = unit_id_by_lpn(db.session, actor(), lpn)
        if unit_id is not None:
            return redirect(url_for("labels.unit_page", unit_id=unit_id))
        return render("labels/index.html", status=404, lpn=lpn, error=f"No unit with LPN {lpn[:40]} here.")
    return render("labels/index.html", lpn="", error=None)


@bp.get("/printer")
@require("print_labels")
def picker() -> Response:
    """Choose this device's printer (remembered in a cookie)."""
    printer, browser_stock, note = remembered_printer()
    current = f"{PRINTER_PREFIX}{printer.id}" if printer else f"{BROWSER_PREFIX}{browser_stock}"
    return render("labels/picker.html", printers=services.list_printers(db.session, actor()), current=current,
                  note=note, stocks=STOCKS, next=safe_next(request.args.get("next")))


@bp.post("/printer")
@require("print_labels")
def choose() -> Response:
    """Remember the chosen printer (or browser size) on this device, then go back."""
    choice = parse_choice(request.form.get("choice"))
    if choice.startswith(PRINTER_PREFIX):
        printer = services.get_printer(db.session, actor(), int(choice[len(PRINTER_PREFIX):]))
        flash(_("This device prints to %(printer)s (%(stock)s).", printer=printer.name,
                stock=_(STOCKS[printer.stock].title)), "success")
    else:
        flash(_("This device prints from the browser on %(stock)s.",
                stock=_(STOCKS[choice[len(BROWSER_PREFIX):]].title)), "success")
    resp = redirect(safe_next(request.form.get("next")) or url_for("labels.picker"), code=303)
    resp.set_cookie(PRINTER_COOKIE, choice, max_age=COOKIE_MAX_AGE, httponly=True, samesite="Lax",
                    secure=bool(current_app.config.get("SESSION_COOKIE_SECURE")))
    return resp


# --- printer admin ----------------------------------------------------------------------


def _printer_form(printer: Printer | None = None) -> PrinterForm:
    """The printer form with the warehouse choices filled in."""
    form = PrinterForm(obj=printer) if printer is not None and request.method == "GET" else PrinterForm()
    form.warehouse_id.choices = [SelectChoice(w.id, f"{w.code} · {w.name}") for w in services.visible_warehouses(db.session, actor())]
    if request.method == "GET":
        form.idempotency_key.data = new_key()
    return form


def _save(form: PrinterForm, printer_id: int | None) -> services.PrinterSaved:
    """Validate the form and run the save use case (refusals raise DomainError)."""
    if not form.validate_on_submit():
        raise ValidationFailed(form.first_error())
    return services.save_printer(
        db.session, actor(), printer_id=printer_id, name=form.name.data or "", warehouse_id=form.warehouse_id.data,
        host=form.host.data or "", port=form.port.data, stock=form.stock.data, active=bool(form.active.data),
        idempotency_key=form.idempotency_key.data, networks=_networks())


@bp.route("/printers", methods=["GET", "POST"])
@require("admin")
def printers() -> Response:
    """Admin: the printers, and a form to add one."""
    form = _printer_form()
    status, error = 200, None
    if request.method == "POST":
        try:
            result = _save(form, None)
            flash(f"Printer {result.name} saved.", "success")
            return redirect(url_for("labels.printers"), code=303)
        except DomainError as exc:
            db.session.rollback()
            status, error = exc.status_code, spoken(exc)
    return render("labels/printers.html", form=form, error=error, status=status, stocks=STOCKS,
                  printers=services.list_printers(db.session, actor(), include_inactive=True))


@bp.route("/printers/<int:printer_id>", methods=["GET", "POST"])
@require("admin")
def edit_printer(printer_id: int) -> Response:
    """Admin: change a printer, or deactivate it (untick Active)."""
    printer = db.session.get(Printer, printer_id)
    if printer is None:
        raise NotFound("No such printer.")
    form = _printer_form(printer)
    status, error = 200, None
    if request.method == "POST":
        try:
            result = _save(form, printer_id)
            flash(f"Printer {result.name} saved.", "success")
            return redirect(url_for("labels.printers"), code=303)
        except DomainError as exc:
            db.session.rollback()
            status, error = exc.status_code, spoken(exc)
    return render("labels/printer_edit.html", form=form, printer=printer, error=error, status=status)


@bp.app_template_filter("label_when")
def _label_when(value: Any) -> str:
    """A print time for the history table, in UTC."""
    from app.db import as_utc

    value = as_utc(value)
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else ""

