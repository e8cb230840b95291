"""The supervisor desk: queues, case files, decisions, rules. Thin views: parse, call a service, render.

Every route is guarded on the server (`require`), every list and load is scoped, every decision
is a service call with an idempotency key, the version the supervisor saw and a reason.
htmx requests get fragments (a decided row disappears, the counts refresh on `desk:changed`);
plain requests get pages and a redirect after a POST.
"""
from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, abort, current_app, flash, g, redirect, render_template, request, send_file, url_for
from flask_babel import gettext
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from app.inspection.queries import load_photo
from app.db import db
from app.desk import queries as desk_queries
from app.desk import rules as desk_rules
from app.desk import services as desk_services
from app.disposition.domain import DISPOSITION_STATE, DISPOSITIONS, explain_conditions
from app.errors import Conflict, NotFound, Unavailable, ValidationFailed
from app.exceptions import services as exception_services
from app.exceptions.models import EXCEPTION_TYPES
from app.ledger.domain import PACKAGING_STATES
from app.inspection.storage import StorageUnavailable
from app.ledger.domain import GRADES
from app.receiving.linking import link_parcel_to_rma
from app.refunds.domain import FRAUD_FLAG
from app.refunds.services import RefundPolicy
from app.disposition.domain import RESPONSIBLE_PARTIES
from app.settings.queries import setting
from app.web.i18n import EXCEPTION_NAMES, FLAG_NAMES, REFUND_NAMES, RESOLUTION_NAMES, STATE_NAMES, spoken
from app.web import as_id, actor, form_ids, form_int, is_htmx, render, require, safe_next
from app.words import N_

bp = Blueprint("desk", __name__, url_prefix="/desk")


@bp.before_request
def _session_expired() -> Response | None:
    """An htmx request (a poll, a decision) from a page whose session expired: reload the page,
    which takes the supervisor to sign in, instead of swapping the sign-in page into a fragment."""
    if not current_user.is_authenticated and is_htmx():
        resp = current_app.make_response(("", 204))
        resp.headers["HX-Refresh"] = "true"
        return resp
    return None


@bp.context_processor
def _desk_context() -> dict[str, Any]:
    """Helpers for desk templates: labels."""
    return {"state_labels": STATE_NAMES, "exception_labels": EXCEPTION_NAMES,
            "exception_types": EXCEPTION_TYPES, "refund_labels": REFUND_NAMES,
            "target_label": lambda state: gettext(desk_services.target_label(state)),
            "resolution_labels": RESOLUTION_NAMES, "receiving_home": _endpoint_url("receiving.scan_page"),
            "explain": lambda conditions: explain_conditions(conditions, gettext), "unit_url": unit_url,
            "resolutions_for": lambda type_: [(code, gettext(label))
                                              for code, label in exception_services.RESOLUTIONS.get(type_, [])],
            "qurl": lambda endpoint, endpoint_args, args: url_for(endpoint, **{**endpoint_args, **args}),
            "hold_words": hold_words}


def hold_words(reasons: list[str], flag_kinds: list[str]) -> str:
    """A held refund's reasons for the case page: the fraud flag named by the flags that hold it
    ("fraud flag: returned before, possible swap"), in the supervisor's language; the others as stored."""
    def said(reason: str) -> str:
        if reason != FRAUD_FLAG:
            return reason
        if not flag_kinds:
            return gettext("fraud flag")
        return gettext("fraud flag: %(flags)s", flags=", ".join(FLAG_NAMES.get(k, k).lower() for k in flag_kinds))
    return "; ".join(said(r) for r in reasons)


def _endpoint_url(endpoint: str) -> str | None:
    if endpoint not in current_app.view_functions:
        return None
    try:
        return url_for(endpoint)
    except Exception:  # noqa: BLE001 - an endpoint needing arguments is simply not linked
        return None


# --------------------------------------------------------------------------- small parsers


def _versions(ids: list[int]) -> dict[int, int]:
    out = {}
    for i in ids:
        v = form_int(f"v-{i}")
        if v is not None:
            out[i] = v
    return out


def _ageing() -> int:
    """The queues' ageing hours: the console's setting, else the environment's (one read a request)."""
    if "ageing_hours" not in g:
        g.ageing_hours = int(setting(db.session, "queue_ageing_hours", current_app.config))
    return g.ageing_hours


def _policy() -> RefundPolicy:
    return RefundPolicy.from_config(current_app.config)


def _safe_next(default: str) -> str:
    return safe_next(request.form.get("next")) or default


def _decided(message: str, *, default_next: str, fragment: str | None = None, **context: Any) -> Response:
    """The answer to a successful decision.

    htmx: the fragment (empty for a queue row, so the row disappears) plus the message out of
    band, and `desk:changed` so the counts refresh. A plain form post: flash and redirect.
    """
    if not is_htmx():
        flash(message, "success")
        return redirect(_safe_next(default_next))
    body = render_template(fragment, **context) if fragment else ""
    if _context_fragment() == "row":
        body += _queue_meta_oob()
    body += render_template("desk/_oob_messages.html", messages=[("success", message)])
    resp = current_app.make_response(body)
    resp.headers["HX-Trigger"] = json.dumps({"desk:changed": {}, "dockhand:ok": {}})
    resp.headers["Vary"] = "HX-Request"
    resp.headers["X-Keep-Messages"] = "1"  # it carries its own message: dockhand.js must not clear it
    return resp


def _queue_meta_oob() -> str:
    """After a row decision: the queue's header line (its total) recounted, out of band.
    The row's form says which queue and filters it was on (`next`)."""
    from urllib.parse import parse_qsl, urlsplit

    parts = urlsplit(request.form.get("next") or "")
    q = desk_queries.QueueQuery.from_args(dict(parse_qsl(parts.query)))
    path = parts.path.rstrip("/")
    if path == url_for("desk.quarantine"):
        page = desk_queries.quarantine_queue(db.session, actor(), q, _ageing())
    elif path == url_for("desk.refunds"):
        page = desk_queries.refund_queue(db.session, actor(), q, _ageing())
    elif path.startswith(url_for("desk.index") + "/exceptions/") and path.rsplit("/", 1)[-1] in EXCEPTION_TYPES:
        page = desk_queries.exception_queue(db.session, actor(), path.rsplit("/", 1)[-1], q, _ageing())
    else:
        return ""
    return render_template("desk/_queue_meta.html", qpage=page, oob=True)


def _context_fragment() -> str:
    """Where the decision was made: a queue row, a unit case, an exception case or a queue (bulk)."""
    ctx = request.form.get("context", "")
    return ctx if ctx in ("row", "unit", "exception", "queue") else "page"


# --------------------------------------------------------------------------- queues


@bp.get("")
@require("view_desk")
def index() -> Response:
    """The landing page: every queue with its count and how many are past the ageing threshold."""
    counts = desk_queries.queue_counts(db.session, actor(), _ageing())
    return render("desk/index.html", "desk/_counts.html", counts=counts)


@bp.get("/counts")
@require("view_desk")
def counts() -> Response:
    """The self-polling counts: the nav strip (default) or the landing page's cards."""
    data = desk_queries.queue_counts(db.session, actor(), _ageing())
    template = "desk/_counts.html" if request.args.get("view") == "cards" else "desk/_nav_counts.html"
    resp = current_app.make_response(render_template(template, counts=data))
    resp.headers["Vary"] = "HX-Request"
    resp.headers["X-Keep-Messages"] = "1"  # a background poll must not wipe the message on screen
    return resp


def _queue(page: desk_queries.QueuePage, endpoint: str, **endpoint_args: Any) -> Response:
    choices = desk_queries.filter_choices(db.session, actor())
    counts = desk_queries.queue_counts(db.session, actor(), _ageing()) if page.queue.startswith("exceptions/") else None
    return render("desk/queue.html", "desk/_queue.html", qpage=page, choices=choices, endpoint=endpoint,
                  endpoint_args=endpoint_args, counts=counts, dispositions=DISPOSITIONS)


@bp.get("/quarantine")
@require("view_desk")
def quarantine() -> Response:
    """Units in quarantine, oldest first unless sorted by value; filtered and paged."""
    q = desk_queries.QueueQuery.from_args(request.args)
    return _queue(desk_queries.quarantine_queue(db.session, actor(), q, _ageing()), "desk.quarantine")


@bp.get("/refunds")
@require("view_desk")
def refunds() -> Response:
    """Refunds held for a supervisor's approval."""
    q = desk_queries.QueueQuery.from_args(request.args)
    return _queue(desk_queries.refund_queue(db.session, actor(), q, _ageing()), "desk.refunds")


@bp.get("/exceptions/<type_>")
@require("view_desk")
def exceptions(type_: str) -> Response:
    """Open exceptions of one type."""
    if type_ not in EXCEPTION_TYPES:
        raise NotFound(N_("No such exception queue."))
    q = desk_queries.QueueQuery.from_args(request.args)
    return _queue(desk_queries.exception_queue(db.session, actor(), type_, q, _ageing()), "desk.exceptions", type_=type_)


# --------------------------------------------------------------------------- case files


def _unit_context(unit_id: int) -> dict[str, Any]:
    from app.disposition.services import preview

    case = desk_queries.unit_case(db.session, actor(), unit_id)
    decision, decision_error = None, None
    if case.unit.grade is not None and case.unit.packaging is not None:
        try:
            decision = preview(db.session, actor(), case.unit)
        except Exception as exc:  # noqa: BLE001 - a preview that cannot run is shown, not fatal
            decision_error = getattr(exc, "message", str(exc))
    return {"case": case, "rules_decision": decision, "rules_error": decision_error, "grades": GRADES,
            "packaging_states": PACKAGING_STATES, "dispositions": DISPOSITIONS, "disposition_state": DISPOSITION_STATE,
            "resolutions": exception_services.RESOLUTIONS, "me": actor()}


@bp.get("/units/<int:unit_id>")
@require("view_desk")
def unit_case(unit_id: int) -> Response:
    """A unit's case file: photos, inspection, serials, rule, customer history, timeline, decisions."""
    return render("desk/case.html", "desk/_case.html", **_unit_context(unit_id))


def _exception_context(exception_id: int) -> dict[str, Any]:
    return {"xcase": desk_queries.exception_case(db.session, actor(), exception_id), "resolutions": exception_services.RESOLUTIONS}


@bp.get("/exception/<int:exception_id>")
@require("view_desk")
def exception_case(exception_id: int) -> Response:
    """An exception's case file (a parcel nobody recognised, a missing item...)."""
    ctx = _exception_context(exception_id)
    exc = ctx["xcase"].exception
    if exc.unit_id is not None and request.args.get("view") != "exception":
        return redirect(url_for("desk.unit_case", unit_id=exc.unit_id))  # its unit's case shows it, with context
    return render("desk/exception.html", "desk/_exception_case.html", **ctx)


def _photo(photo_id: int, thumb: bool) -> Response:
    if not (current_user.actor().can("inspect") or current_user.actor().can("view_desk")):
        abort(403)
    photo = load_photo(db.session, actor(), photo_id)
    try:
        stream = current_app.extensions["dockhand.photos"].open(photo.storage_key, thumb=thumb)
    except (ValueError, FileNotFoundError):
        raise NotFound(N_("That photo file is missing.")) from None
    except StorageUnavailable:
        raise Unavailable(N_("Photo storage cannot be reached just now. Try again in a minute.")) from None
    # The file under a key never changes (content-addressed): its key is its validator.
    resp = send_file(stream, mimetype="image/jpeg", max_age=3600, conditional=True,
                     etag=f"{photo.storage_key}{'-t' if thumb else ''}")
    resp.headers["Cache-Control"] = "private, max-age=3600"
    return resp


@bp.get("/photos/<int:photo_id>")
@login_required
def photo(photo_id: int) -> Response:
    """A unit photo at full size, to whoever may see its unit (inspectors, supervisors)."""
    return _photo(photo_id, thumb=False)


@bp.get("/photos/<int:photo_id>/thumb")
@login_required
def photo_thumb(photo_id: int) -> Response:
    """A unit photo's thumbnail."""
    return _photo(photo_id, thumb=True)


# --------------------------------------------------------------------------- search, a return's page, a customer's


def unit_url(unit_id: int) -> str | None:
    """Where a unit opens for the signed-in role: its case file at the desk, else the handheld's
    unit screen (None: nowhere this role may go)."""
    if actor().can("view_desk"):
        return url_for("desk.unit_case", unit_id=unit_id)
    if actor().can("inspect") and "receiving.unit_page" in current_app.view_functions:
        return url_for("receiving.unit_page", unit_id=unit_id)
    return None


@bp.get("/search")
@require("look_up")
def search() -> Response:
    """One box: a unit by LPN or serial, a return by RMA, tracking or order number, a customer by
    name or reference. One hit opens its page; several are listed by kind; none says what was searched."""
    result = desk_queries.search(db.session, actor(), request.args.get("q"))
    only = result.only
    if only is not None:
        kind, id_ = only
        target = {"unit": lambda: unit_url(id_), "return": lambda: url_for("desk.return_page", rma_id=id_),
                  "customer": lambda: url_for("desk.customer_page", customer_id=id_)}[kind]()
        if target is not None:
            return redirect(target)
    return render("desk/search.html", result=result)


@bp.get("/returns/<int:rma_id>")
@require("look_up")
def return_page(rma_id: int) -> Response:
    """A return: its lines, parcels, units, exceptions, refund triggers and one timeline."""
    return render("desk/return.html", rpage=desk_queries.return_page(db.session, actor(), rma_id))


@bp.get("/customers/<int:customer_id>")
@require("look_up")
def customer_page(customer_id: int) -> Response:
    """A customer's returns (a partner: those in their scope)."""
    return render("desk/customer.html", cpage=desk_queries.customer_page(db.session, actor(), customer_id))


# --------------------------------------------------------------------------- unit decisions


def _after_unit_decision(message: str, unit_id: int) -> Response:
    ctx = _context_fragment()
    default = url_for("desk.unit_case", unit_id=unit_id)
    if ctx == "row":
        return _decided(message, default_next=default)
    if ctx == "unit" and is_htmx():
        return _decided(message, default_next=default, fragment="desk/_case.html", **_unit_context(unit_id))
    return _decided(message, default_next=default)


@bp.post("/units/<int:unit_id>/decide")
@require("release_quarantine")
def decide_unit(unit_id: int) -> Response:
    """Release a unit to stock or route it elsewhere, with a reason."""
    result = desk_services.decide_unit(db.session, actor(), unit_id=unit_id, to_state=request.form.get("to_state", ""),
                            reason=request.form.get("reason"), idempotency_key=request.form.get("key"),
                            expected_version=form_int("version"))
    return _after_unit_decision(gettext("Unit %(lpn)s: %(state)s (%(where)s).", lpn=result.lpn, state=STATE_NAMES[result.state],
                                        where=result.location), unit_id)


@bp.post("/units/<int:unit_id>/regrade")
@require("override_disposition")
def regrade_unit(unit_id: int) -> Response:
    """Re-grade (re-inspect) a unit, with a reason."""
    from app.inspection.services import form_answers

    result = desk_services.regrade_unit(db.session, actor(), unit_id=unit_id, grade=request.form.get("grade", ""),
                             packaging=request.form.get("packaging", ""), answers=form_answers(request.form),
                             reason=request.form.get("reason"), idempotency_key=request.form.get("key"),
                             expected_version=form_int("version"), unanswered_is_no=True)
    return _after_unit_decision(gettext("Re-graded: grade %(grade)s, packaging %(packaging)s.", grade=result.grade,
                                        packaging=result.packaging), unit_id)


@bp.post("/units/<int:unit_id>/dispose")
@require("override_disposition")
def dispose_unit(unit_id: int) -> Response:
    """Apply the rules' disposition to a received unit, or override it, with a reason."""
    result = desk_services.dispose_unit(db.session, actor(), unit_id=unit_id, disposition=request.form.get("disposition"),
                             reason=request.form.get("reason"), idempotency_key=request.form.get("key"),
                             policy=_policy(), expected_version=form_int("version"))
    return _after_unit_decision(gettext("Unit %(lpn)s: %(state)s.", lpn=result.lpn, state=STATE_NAMES[result.state])
                                + f" {result.explanation}", unit_id)


@bp.post("/quarantine/bulk")
@require("release_quarantine")
def quarantine_bulk() -> Response:
    """The same decision for every ticked unit: each its own transaction, ledger row and audit entry."""
    ids = form_ids("unit_ids")
    result = desk_services.bulk_decide_units(db.session, actor(), unit_ids=ids, to_state=request.form.get("to_state", ""),
                                  reason=request.form.get("reason"), idempotency_key=request.form.get("key"),
                                  versions=_versions(ids))
    message = f"{desk_services.target_label(request.form.get('to_state', ''))}: {result.summary}."
    return _after_bulk(message, result, desk_queries.quarantine_queue, "desk.quarantine")


def _after_bulk(message: str, result: desk_services.BulkResult, loader: Any, endpoint: str) -> Response:
    if not result.done:
        raise Conflict(N_("Nothing was done. %(why)s"), why=result.summary.split(': ', 1)[-1])
    if is_htmx():
        q = desk_queries.QueueQuery.from_args(request.args)
        page = loader(db.session, actor(), q, _ageing())
        choices = desk_queries.filter_choices(db.session, actor())
        resp = _decided(message, default_next=url_for(endpoint), fragment="desk/_queue.html", qpage=page,
                        choices=choices, endpoint=endpoint, endpoint_args={}, counts=None, dispositions=DISPOSITIONS)
        if result.refused:
            body = resp.get_data(as_text=True).replace("msg msg-success", "msg msg-warning")
            resp.set_data(body)
        return resp
    flash(message, "warning" if result.refused else "success")
    return redirect(url_for(endpoint, **desk_queries.QueueQuery.from_args(request.args).args()))


# --------------------------------------------------------------------------- refund decisions


@bp.post("/refunds/<int:refund_id>/decide")
@require("approve_refunds")
def decide_refund(refund_id: int) -> Response:
    """Approve (optionally with an adjusted amount) or reject a held refund, with a reason."""
    decision = request.form.get("decision", "")
    result = desk_services.decide_refund(db.session, actor(), refund_id=refund_id, decision=decision,
                              reason=request.form.get("reason"), idempotency_key=request.form.get("key"),
                              amount=request.form.get("amount") if decision == "approve" else None,
                              expected_version=form_int("version"))
    status = REFUND_NAMES.get(result.status, result.status)
    message = (gettext("Refund %(status)s: %(amount)s.", status=status, amount=result.amount) if result.amount
               else gettext("Refund %(status)s.", status=status))
    unit_id = form_int("unit_id")
    ctx = _context_fragment()
    case = _case_after_decision(unit_id) if ctx == "unit" and is_htmx() else None
    if case is not None:
        return _decided(message, default_next=url_for("desk.unit_case", unit_id=unit_id), fragment="desk/_case.html",
                        **case)
    return _decided(message, default_next=url_for("desk.refunds"))


def _case_after_decision(unit_id: int | None) -> dict[str, Any] | None:
    """The case page to show after a decision that already committed; None when the form's unit id
    is not one this person may see (the decision stands, the message says so, no error)."""
    if not unit_id:
        return None
    try:
        return _unit_context(unit_id)
    except NotFound:
        db.session.rollback()
        return None


@bp.post("/refunds/bulk")
@require("approve_refunds")
def refunds_bulk() -> Response:
    """Approve or reject every ticked refund: each its own transaction (four-eyes checked for each)."""
    ids = form_ids("refund_ids")
    decision = request.form.get("decision", "")
    result = desk_services.bulk_decide_refunds(db.session, actor(), refund_ids=ids, decision=decision,
                                    reason=request.form.get("reason"), idempotency_key=request.form.get("key"),
                                    versions=_versions(ids))
    word = {"approve": "Approved", "reject": "Rejected"}.get(decision, decision)
    return _after_bulk(f"{word}: {result.summary}.", result, desk_queries.refund_queue, "desk.refunds")


# --------------------------------------------------------------------------- exception decisions


@bp.post("/exception/<int:exception_id>/resolve")
@require("resolve_exceptions")
def resolve_exception(exception_id: int) -> Response:
    """Resolve an exception: plainly, by linking a parcel to its RMA, by accepting a wrong item,
    or by confirming a serial mismatch as fraud. Always with a reason."""
    action = request.form.get("action", "resolve")
    common = {"exception_id": exception_id, "reason": request.form.get("reason"),
              "idempotency_key": request.form.get("key"), "expected_version": form_int("version")}
    s, a = db.session, actor()
    if action == "link":
        linked = link_parcel_to_rma(s, a, rma_code=request.form.get("rma"), **common)
        message = gettext("Parcel linked to %(rma)s: %(num)s unit(s)", rma=linked.rma_number, num=len(linked.units))
        if linked.refunds_opened:
            message += gettext(", %(num)s refund trigger(s) opened", num=len(linked.refunds_opened))
        if linked.exceptions_raised:
            message += gettext("; new exceptions: %(types)s",
                               types=", ".join(EXCEPTION_NAMES[t].lower() for t in linked.exceptions_raised))
        message += "."
    elif action == "accept":
        accepted = exception_services.accept_wrong_item(s, a, credit_amount=request.form.get("credit"),
                                        rma_line_id=form_int("rma_line_id"), **common)
        message = (gettext("Accepted as %(sku)s with a refund trigger.", sku=accepted.sku) if accepted.refund_id
                   else gettext("Accepted as %(sku)s.", sku=accepted.sku))
    elif action == "fraud":
        fraud = exception_services.confirm_serial_fraud(s, a, **common)
        message = gettext("Fraud confirmed: unit %(state)s", state=STATE_NAMES.get(fraud.unit_state, fraud.unit_state))
        if fraud.refund_status:
            message += gettext(", refund %(status)s", status=REFUND_NAMES.get(fraud.refund_status, fraud.refund_status))
        message += "." + (f" Note: {fraud.note}." if fraud.note else "")
    else:
        resolved = exception_services.resolve_exception(s, a, resolution=request.form.get("resolution", ""), **common)
        message = gettext("Resolved: %(resolution)s.",
                          resolution=RESOLUTION_NAMES.get(resolved.resolution, resolved.resolution).lower())
    ctx = _context_fragment()
    default = url_for("desk.exception_case", exception_id=exception_id, view="exception")
    if is_htmx() and ctx == "unit":
        case = _case_after_decision(form_int("unit_id"))
        if case is not None:
            return _decided(message, default_next=default, fragment="desk/_case.html", **case)
    if is_htmx() and ctx == "exception":
        return _decided(message, default_next=default, fragment="desk/_exception_case.html",
                        **_exception_context(exception_id))
    return _decided(message, default_next=default)


@bp.post("/exception/<int:exception_id>/assign")
@require("resolve_exceptions")
def assign_exception(exception_id: int) -> Response:
    """Give an exception to a supervisor ("me": take it), or to nobody."""
    raw = request.form.get("owner", "")
    owner_id = actor().id if raw == "me" else None if raw == "" else as_id(raw)
    if raw not in ("", "me") and owner_id is None:
        raise ValidationFailed(N_("Pick who owns this exception."))
    done = exception_services.assign_exception(db.session, actor(), exception_id=exception_id, owner_id=owner_id,
                                               idempotency_key=request.form.get("key"),
                                               expected_version=form_int("version"))
    message = (gettext("%(name)s owns this exception now.", name=done.owner) if done.owner
               else gettext("Nobody owns this exception now."))
    return _decided(message, default_next=url_for("desk.exception_case", exception_id=exception_id, view="exception"),
                    fragment="desk/_exception_case.html", **_exception_context(exception_id))


# --------------------------------------------------------------------------- rules and reason codes


def _rules_context(drafts: list[desk_rules.RuleDraft] | None = None, *, errors: dict[int, list[str]] | None = None,
                   general: list[str] | None = None, base_version: int | None = None,
                   preview: desk_rules.Preview | None = None, preview_n: int = desk_rules.PREVIEW_DEFAULT,
                   note: str = "") -> dict[str, Any]:
    if drafts is None:
        drafts = desk_rules.drafts_from_rules(desk_rules.load_rules(db.session))
    else:
        desk_rules.mark_changes(db.session, drafts)
    if not drafts or not drafts[-1].is_new:
        last = max([int(d.position) for d in drafts if d.position.isdigit()] or [0])
        drafts = [*drafts, desk_rules.empty_draft(last + 1, fee=str(setting(db.session, 'restocking_fee_pct', current_app.config)))]
    latest = desk_rules.latest_version(db.session)
    return {"drafts": drafts, "errors": errors or {}, "general": general or [],
            "base_version": base_version if base_version is not None else (latest.id if latest else 0),
            "latest": latest, "versions": desk_rules.versions(db.session), "preview": preview, "preview_n": preview_n,
            "known": desk_rules.known_codes(db.session), "reasons": desk_rules.reason_codes(db.session), "note": note,
            "parties": RESPONSIBLE_PARTIES,
            **desk_rules.editor_choices(db.session)}


@bp.get("/rules")
@require("edit_rules")
def rules() -> Response:
    """The rules editor and the reason codes."""
    return render("desk/rules.html", "desk/_rules_editor.html", **_rules_context())


@bp.post("/rules/preview")
@require("edit_rules")
def rules_preview() -> Response:
    """How the last N inspected units would be decided by the edited rules (nothing is saved)."""
    drafts = desk_rules.drafts_from_form(request.form)
    n = desk_rules.parse_preview_n(request.form.get("n"))
    try:
        edited = desk_rules.validate_drafts(db.session, drafts)
    except desk_rules.RulesInvalid as exc:
        return render("desk/rules.html", "desk/_rules_editor.html", status=422,
                      **_rules_context(drafts, errors=exc.errors, general=[spoken(exc), *exc.general],
                                       base_version=form_int("base_version") or 0, preview_n=n,
                                       note=request.form.get("note", "")))
    result = desk_rules.preview_rules(db.session, actor(), edited, n)
    return render("desk/rules.html", "desk/_rules_editor.html",
                  **_rules_context(drafts, base_version=form_int("base_version") or 0, preview=result, preview_n=n,
                                   note=request.form.get("note", "")))


@bp.post("/rules")
@require("edit_rules")
def rules_save() -> Response:
    """Save the edited rule set: validated, versioned, audited."""
    drafts = desk_rules.drafts_from_form(request.form)
    base = form_int("base_version") or 0
    try:
        edited = desk_rules.validate_drafts(db.session, drafts)
    except desk_rules.RulesInvalid as exc:
        db.session.rollback()
        return render("desk/rules.html", "desk/_rules_editor.html", status=422,
                      **_rules_context(drafts, errors=exc.errors, general=[spoken(exc), *exc.general], base_version=base,
                                       note=request.form.get("note", "")))
    result = desk_rules.save_rules(db.session, actor(), rules=edited, note=request.form.get("note"), base_version=base,
                           idempotency_key=request.form.get("key"))
    message = gettext("Rules saved as version %(version)s (%(num)s rules).", version=result.version_id, num=result.rules)
    return _decided(message, default_next=url_for("desk.rules"), fragment="desk/_rules_editor.html", **_rules_context())


@bp.post("/reasons")
@require("edit_reason_codes")
def reason_add() -> Response:
    """Add a reason code (a supervisor at the rules, an admin in the console)."""
    result = desk_rules.add_reason_code(db.session, actor(), code=request.form.get("code"), label=request.form.get("label"),
                                        avoidable=request.form.get("avoidable"),
                                        responsible_party=request.form.get("responsible_party"),
                                        idempotency_key=request.form.get("key"))
    return _reasons_answer(f"Reason code '{result.code}' added.")


@bp.post("/reasons/<code>")
@require("edit_reason_codes")
def reason_update(code: str) -> Response:
    """Rename, classify (avoidable, party responsible), deactivate or reactivate a reason code."""
    action = request.form.get("action", "rename")
    active = {"deactivate": False, "activate": True}.get(action)
    label = request.form.get("label") if action == "rename" else None
    classify = ({"avoidable": request.form.get("avoidable"), "responsible_party": request.form.get("responsible_party")}
                if action == "classify" else {})
    result = desk_rules.update_reason_code(db.session, actor(), code=code[:32], label=label, active=active,
                                           idempotency_key=request.form.get("key"), **classify)
    word = {"rename": "renamed", "classify": "saved"}.get(action) or ("reactivated" if result.active else "deactivated")
    return _reasons_answer(f"Reason code '{result.code}' {word}.")


def _reasons_answer(message: str) -> Response:
    return _decided(message, default_next=url_for("desk.rules"), fragment="desk/_reasons.html",
                    reasons=desk_rules.reason_codes(db.session), parties=RESPONSIBLE_PARTIES)
