"""The handheld screens: one scan box, the parcel card, the unit's inspection and disposition."""
from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from flask import Blueprint, current_app, flash, g, redirect, render_template, request, session, url_for
from flask_babel import gettext
from werkzeug.wrappers import Response

from app.db import db
from app.words import N_
from app.disposition.services import confirm_disposition, decision_of
from app.errors import ValidationFailed
from app.exceptions.domain import BOX_PROBLEMS
from app.ledger.domain import PACKAGING_STATES
from app.inspection import grading
from app.inspection.queries import inspection_queue, kit_components, next_unit_id
from app.inspection.services import add_photos, form_answers, record_inspection
from app.receiving import queries, services
from app.refunds.services import RefundPolicy
from app.settings.queries import photo_max_bytes
from app.web import actor, as_id, form_int, is_htmx, render, require, safe_next
from app.web.i18n import REFUND_NAMES, money, number

bp = Blueprint("receiving", __name__, url_prefix="/receive")


def current_warehouse_id() -> int | None:
    """The warehouse this handheld works at: chosen in the session, else the user's home.

    Staff may work at any warehouse, and warehouses are never deleted: the one chosen (checked when
    chosen, choose_warehouse) or their home (a foreign key) needs no query. A partner's is checked
    against what their organisation runs now, once per request. The use cases check it again."""
    from flask_login import current_user

    if "warehouse_id" not in g:
        wid = session.get("warehouse_id") or current_user.home_warehouse_id
        if wid is not None and actor().is_partner:
            wid = queries.visible_warehouse(db.session, actor(), wid)
        g.warehouse_id = wid
    return g.warehouse_id


def _parcel() -> queries.ParcelCard | None:
    """The parcel in hand: kept in the session, so a reload (or a flaky tab) finds it again."""
    rid = as_id(session.get("parcel_id"))
    parcel = queries.parcel_card(db.session, actor(), rid) if rid else None
    if parcel is None or parcel.status != "open":
        current = queries.current_parcel_id(db.session, actor())
        # None too for a partner's parcel linked to a return of a merchant their org does not serve
        parcel = None if current is None else queries.parcel_card(db.session, actor(), current)
    if session.get("parcel_id") != (parcel.id if parcel else None):
        session["parcel_id"] = parcel.id if parcel else None
    return parcel


def _work_context(*, just_opened: bool = False, **extra: Any) -> dict[str, Any]:
    """Everything the work area (#work) shows, in a constant number of queries whatever the parcel's size.
    `just_opened`: the parcel was opened by this request, so it holds no units yet."""
    parcel = _parcel()
    lines, units = [], []
    if parcel is not None:
        if parcel.rma_id is not None:
            lines = queries.card_lines(db.session, parcel.rma_id)
            # Still-expected lines first; a huge RMA shows its first few and a count, so that
            # every scan's answer stays a few KB whatever the size of the return.
            lines = sorted(lines, key=lambda row: row[2] >= row[1])
        if not just_opened:
            units = queries.parcel_units(db.session, parcel.id)
    warehouse_id = current_warehouse_id()
    # the warehouse picker only shows while no warehouse is chosen
    warehouses = [] if warehouse_id else queries.warehouses(db.session, actor())
    ctx = {"parcel": parcel, "lines": lines, "units": units, "box_problems": BOX_PROBLEMS,
           "warehouse_id": warehouse_id, "warehouses": warehouses, "result": None, "prompt": None}
    ctx.update(extra)
    return ctx


def _work(status: int = 200, feedback: str | None = None, *, just_opened: bool = False, **extra: Any) -> Response:
    return _render_work(_work_context(just_opened=just_opened, **extra), status, feedback)


def _render_work(ctx: dict[str, Any], status: int = 200, feedback: str | None = None) -> Response:
    return render("receiving/scan.html", "receiving/_work.html", status=status,
                  trigger={f"dockhand:{feedback}": {}} if feedback else None, **ctx)


@bp.get("")
@require("receive")
def scan_page() -> Response:
    """The handheld home: the scan box and whatever parcel is in hand."""
    return _work()


@bp.post("/warehouse")
@require("receive")
def choose_warehouse() -> Response:
    """Pick the warehouse this handheld works at."""
    wid = form_int("warehouse_id")
    visible = queries.visible_warehouse(db.session, actor(), wid)
    if visible is None:
        raise ValidationFailed(N_("Pick one of your warehouses."))
    session["warehouse_id"] = visible
    back = safe_next(request.form.get("next"))
    if back is not None:  # a plain form from another screen (the queue's picker) goes back there
        return redirect(back)  # type: ignore[return-value]
    resp = _work(feedback="ok")
    if is_htmx():  # the header says where, too
        resp.set_data(resp.get_data(as_text=True) + render_template("home/_whereabouts.html", oob=True))
    return resp


@bp.post("/scan")
@require("receive")
def scan() -> Response:
    """Everything scanned lands here and is resolved server-side to what it is (services.scan)."""
    pending = session.get("pending_product_id")
    outcome = services.scan(db.session, actor(), code=request.form.get("code", ""), parcel_id=as_id(session.get("parcel_id")),
                      pending_product_id=as_id(pending), warehouse_id=current_warehouse_id(),
                      idempotency_key=request.form.get("key") or None, pending_lot=bool(session.get("pending_lot")))
    if outcome.kind == "unit":
        return _go(url_for("receiving.unit_page", unit_id=outcome.unit_id))
    if outcome.kind == "unknown_parcel":
        return _work(status=422, feedback="error", unknown_parcel=outcome.code)
    session.pop("pending_product_id", None)
    session.pop("pending_lot", None)
    if outcome.kind in ("serial_needed", "lot_needed"):
        session["pending_product_id"] = outcome.pending_product_id
        if outcome.kind == "lot_needed":
            session["pending_lot"] = True
        return _work(feedback="ok", prompt={"text": said(outcome)})
    if outcome.kind in ("serial_cancelled", "lot_cancelled"):
        return _work(feedback="ok", result={"kind": "info", "text": said(outcome)})
    if outcome.kind == "parcel":
        session["parcel_id"] = outcome.parcel_id
        assert outcome.opened is not None
        return _work(feedback="ok", result={"kind": "parcel", "text": said(outcome)},
                     just_opened=not outcome.opened.joined and not outcome.opened.replayed)
    assert outcome.kind == "received" and outcome.received is not None
    return _received(outcome.parcel_id, outcome.received)


def said(outcome: services.ScanOutcome) -> str:
    """What a scan's outcome says, in the worker's language."""
    return gettext(outcome.message, **outcome.figures) if outcome.figures else gettext(outcome.message)


def _received(parcel_id: int | None, result: services.ItemReceived) -> Response:
    """The answer to an item received. When this parcel's card is on screen as it is now (scan.js
    sends the parcel and return the card shows: a blind parcel linked meanwhile needs a new card),
    htmx gets only what changed (receiving/_scanned.html), rendered from the use case's result with
    no further query. Otherwise (another screen, a plain form post) and for a replay, whose stored
    answer may be older than the screen, the whole work area is rendered afresh."""
    unit = {"id": result.unit_id, "lpn": result.lpn, "sku": result.sku, "name": result.name, "serial": result.serial}
    flags = [{"kind": f.kind, "holds": f.holds, "serial": f.serial, "where": f.where,
              "day": date.fromisoformat(f.date) if f.date else None} for f in result.flags]
    shown = {"kind": "unit", "unit": unit, "exceptions": result.exceptions, "flags": flags}
    feedback = "error" if result.exceptions or any(f.holds for f in result.flags) else "ok"
    on_screen = request.headers.get("X-Dockhand-Parcel")
    rma_id = result.parcel_rma_id  # as the scan's lock read it: a blind parcel may have been linked since
    if not is_htmx() or result.replayed or on_screen != f"{parcel_id}:{rma_id or ''}":
        return _work(feedback=feedback, result=shown)
    row = {"id": result.unit_id, "lpn": result.lpn, "sku": result.sku, "state": "received",
           "serial_status": result.serial_status, "unexpected": rma_id is not None and not result.rma_line_id}
    resp = render("receiving/_scanned.html", result=shown, row=row, line=result.line, progress=result.parcel,
                  trigger={f"dockhand:{feedback}": {}})
    resp.headers["HX-Retarget"] = "#result"
    return resp


def _go(url: str) -> Response:
    """Navigate: htmx follows HX-Location (no full reload); plain posts get a redirect."""
    if request.headers.get("HX-Request") == "true":
        resp = Response("", 204)
        resp.headers["HX-Location"] = url
        return resp
    return redirect(url)  # type: ignore[return-value]


@bp.post("/blind")
@require("receive")
def blind() -> Response:
    """Open a blind parcel: one nobody expected, which a supervisor identifies later."""
    wid = current_warehouse_id()
    if wid is None:
        raise ValidationFailed(N_("Pick your warehouse first."))
    result = services.open_parcel(db.session, actor(), code=request.form.get("code", ""), warehouse_id=wid,
                             idempotency_key=request.form.get("key"), blind=True)
    session["parcel_id"] = result.parcel_id
    return _work(feedback="ok", result={"kind": "parcel", "text": gettext("Blind parcel opened: a supervisor will identify it. Scan the items.")})


@bp.post("/close")
@require("receive")
def close() -> Response:
    """Close the parcel: whatever is still expected becomes a missing-item exception."""
    rid = form_int("parcel_id")
    if rid is None:
        raise ValidationFailed(N_("No parcel is open."))
    result = services.close_parcel(db.session, actor(), parcel_id=rid, idempotency_key=request.form.get("key"))
    session.pop("parcel_id", None)
    session.pop("pending_product_id", None)
    session.pop("pending_lot", None)
    return _work(feedback="error" if result.missing else "ok", closed=result)


@bp.post("/problem")
@require("receive")
def box_problem() -> Response:
    """Report that the parcel in hand came empty or damaged in transit, with photos of its box."""
    rid = form_int("parcel_id")
    if rid is None:
        raise ValidationFailed(N_("No parcel is open."))
    limit = photo_max_bytes(db.session, current_app.config)
    files = [f for f in request.files.getlist("photo") if f and f.filename]
    done = services.report_box_problem(
        db.session, actor(), parcel_id=rid, problem=request.form.get("problem", ""), note=request.form.get("note"),
        photos=[f.stream.read(limit + 1) for f in files], store=current_app.extensions["dockhand.photos"], max_bytes=limit,
        idempotency_key=request.form.get("key"))
    said = BOX_PROBLEMS[done.type]
    return _work(feedback="ok", result={"kind": "problem", "text": f"{said}: reported to the desk with "
                                        f"{done.photos} photo{'s' if done.photos != 1 else ''}. Scan what the parcel holds, "
                                        "then close it."})


@bp.get("/queue")
@require("inspect")
def queue_page() -> Response:
    """The inspection queue: units received at this warehouse and not yet inspected, most urgent
    first, each with why (app.inspection.domain.priority); a page is one statement."""
    wid = current_warehouse_id()
    queue = inspection_queue(db.session, actor(), wid, page=as_id(request.args.get("page")) or 1) if wid else None
    warehouses = [] if wid else queries.warehouses(db.session, actor())
    return render("receiving/queue.html", "receiving/_queue.html", queue=queue, warehouse_id=wid, warehouses=warehouses)


@bp.get("/queue/next")
@require("inspect")
def next_unit() -> Response:
    """Open the unit at the head of the queue. No claim is taken: two workers pressing at the same
    moment get the same unit, and the second sees it graded once the first has saved."""
    wid = current_warehouse_id()
    unit_id = next_unit_id(db.session, actor(), wid) if wid else None
    if unit_id is None:
        flash(gettext("Nothing waits for inspection here.") if wid else gettext("Pick your warehouse first."),
              "success" if wid else "error")
        return redirect(url_for("receiving.queue_page"))  # type: ignore[return-value]
    return redirect(url_for("receiving.unit_page", unit_id=unit_id))  # type: ignore[return-value]


def _unit(unit_id: int) -> queries.UnitOnScreen:
    """The unit with what its screen and label buttons show, in one plain read."""
    return queries.unit_on_screen(db.session, actor(), unit_id)


def off_words(pct: Any, amount: Any) -> str:
    """What a deduction takes off, in the request's language: "10%", "15.00"."""
    return f"{number(Decimal(pct) * 100)}%" if pct is not None else money(amount)


def _guide_rules(rules: list[dict[str, Any]] | None,
                 components: list[grading.Component]) -> dict[str, dict[str, dict[str, Any]]]:
    """The grading rules as the form's script reads them (receiving/_unit.html, static/dockhand.js):
    item key -> answer ("yes", "no") -> the grade it sets, whether it skips the rest, what it takes off;
    a kit's component answered no is `missing` (its name) and takes its share off."""
    guide: dict[str, dict[str, dict[str, Any]]] = {}
    for r in rules or []:
        guide.setdefault(r["key"], {})["yes" if r["answer"] else "no"] = {
            "grade": r.get("grade"), "skip": bool(r.get("skip")),
            "off": off_words(r["pct"], r.get("amount")) if r.get("pct") is not None or r.get("amount") is not None else None}
    for c in components:
        guide[c.key] = {"no": {"grade": None, "skip": False, "off": off_words(c.pct, None), "missing": c.label}}
    return guide


def _draft() -> dict[str, Any] | None:
    """The inspection typed so far and not saved, sent along with a photo (the photo form includes the
    inspection form's answers): None when the request carries none (a photo sent without the script)."""
    form = request.form
    if not any(k.startswith("q_") or k in ("grade", "packaging", "notes") for k in form):
        return None
    return {"answers": form_answers(form), "notes": form.get("notes") or "",
            "grade": form.get("grade", ""), "packaging": form.get("packaging", "")}


def _unit_context(unit: queries.UnitOnScreen, *, inspected: dict[str, Any] | None = None,
                  saved: bool = False, **extra: Any) -> dict[str, Any]:
    """The unit screen, for the unit as the request reads it after its use case (if any);
    `inspected` (the answers and notes just saved, or a draft typed and not saved yet) is what the
    view already has; `saved`: the inspection was just saved (the screen says what its answers set
    and brings the decision into view)."""
    product = unit.product
    # The checklist, photos and decision only show while the unit waits for its disposition
    # (receiving/_unit.html): once it is decided, they are not loaded.
    open_ = unit.state == "received" and extra.get("done") is None
    photos = queries.photo_ids(db.session, unit.id) if open_ else []
    decision = None
    if unit.grade and unit.state == "received":
        decision = decision_of(db.session, unit.facts)
    # the last inspection's answers prefill the form
    last = inspected
    if last is None and open_:
        last = queries.last_inspection(db.session, unit.id)
    # a kit: one check per component after the category's (app.inspection.grading.component_items)
    components = kit_components(db.session, unit.facts.product_id) if open_ and unit.facts.is_kit else []
    items = (unit.facts.checklist or []) if open_ else []
    checklist = [*items, *grading.component_items(components)]
    rules = (unit.facts.checklist_rules or []) if open_ else []
    answers = last["answers"] if last else {}
    ctx = {"unit": unit, "product": product, "answers": answers,
           "notes": (last["notes"] or "") if last else "", "checklist": checklist,
           "picked_grade": (last or {}).get("grade", unit.grade), "picked_packaging": (last or {}).get("packaging", unit.packaging),
           # what the answers on the form set now (the script keeps it up to date as they change) and what the saved ones set
           "guide": grading.evaluate(items, rules, answers, components), "guide_rules": _guide_rules(rules, components),
           "graded": grading.Grading.from_json(unit.facts.grading) if decision is not None else None, "saved": saved,
           "photos": photos, "decision": decision, "packaging_states": PACKAGING_STATES, "done": None,
           "off_words": off_words, "refund_names": REFUND_NAMES}
    ctx.update(extra)
    return ctx


@bp.get("/units/<int:unit_id>")
@require("inspect")
def unit_page(unit_id: int) -> Response:
    """Inspect one unit: checklist, grade, packaging, photos, then the rules' decision."""
    unit = _unit(unit_id)
    return render("receiving/unit.html", "receiving/_unit.html", **_unit_context(unit))


@bp.post("/units/<int:unit_id>/inspect")
@require("inspect")
def inspect(unit_id: int) -> Response:
    """Save the inspection and show what the rules decide. The use case checks the unit is there for
    this person and keeps the answers to its checklist; the screen then loads the unit as it is now."""
    saved = record_inspection(db.session, actor(), unit_id=unit_id, grade=request.form.get("grade", ""),
                              packaging=request.form.get("packaging", ""), answers=form_answers(request.form),
                              notes=request.form.get("notes"), idempotency_key=request.form.get("key"),
                              unanswered_is_no=True)
    # a retry of an older save replays it: the form then shows the newest inspection, read back
    inspected = {"answers": saved.answers, "notes": saved.notes} if not saved.replayed else None
    return render("receiving/unit.html", "receiving/_unit.html", trigger={"dockhand:ok": {}},
                  **_unit_context(_unit(unit_id), inspected=inspected, saved=True))


@bp.post("/units/<int:unit_id>/photos")
@require("inspect")
def photos(unit_id: int) -> Response:
    """Attach one or more photos from the device camera."""
    limit = photo_max_bytes(db.session, current_app.config)
    files = [f for f in request.files.getlist("photo") if f and f.filename is not None]
    add_photos(db.session, actor(), unit_id=unit_id, photos=[f.stream.read(limit + 1) for f in files],
               store=current_app.extensions["dockhand.photos"], max_bytes=limit, idempotency_key=request.form.get("key"))
    # the answers typed and not saved yet come back as they were (a photo never loses them)
    return render("receiving/unit.html", "receiving/_unit.html", trigger={"dockhand:ok": {}},
                  **_unit_context(_unit(unit_id), inspected=_draft()))


@bp.post("/units/<int:unit_id>/dispose")
@require("dispose")
def dispose(unit_id: int) -> Response:
    """Confirm the rules' decision (a supervisor may override): the unit moves, the refund follows.
    The use case checks the unit is there for this person; the screen then loads it as it is now."""
    policy = RefundPolicy.from_config(current_app.config)
    result = confirm_disposition(db.session, actor(), unit_id=unit_id, idempotency_key=request.form.get("key"),
                                 policy=policy, override=request.form.get("override") or None,
                                 override_reason=request.form.get("override_reason"),
                                 expected_version=form_int("version"))
    return render("receiving/unit.html", "receiving/_unit.html", trigger={"dockhand:ok": {}},
                  **_unit_context(_unit(unit_id), done=result))
