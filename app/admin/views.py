"""The admin console (desktop): logins, warehouses and their locations, partner organisations,
product categories and their inspection checklists (versioned), API keys, webhook endpoints with
their delivery log, and the admin audit log."""
from __future__ import annotations

import csv
import io

from flask import Blueprint, Response, current_app, redirect, request, url_for

from app.admin import queries
from app.api import queries as api_queries
from app.api.domain import SCOPES
from app.api.services import create_api_key, revoke_api_key
from app.webhooks import queries as webhook_queries
from app.webhooks.services import register_endpoint, resend, rotate_secret, set_endpoint_enabled
from app.admin.services import (UserChanged, add_location, create_category, create_partner_org, create_user,
                                create_warehouse, one_time_password, restore_checklist, save_checklist, set_active,
                                set_password, sign_out_everywhere, unlock, update_category)
from app.auth.roles import ROLES
from app.db import db
from app.catalog.models import LOCATION_TYPES
from app.inspection.domain import MAX_ITEMS, MAX_LABEL, items_text
from app.ledger.idempotency import Result
from app.errors import NotFound
from app.web import actor, as_id, form_ids, form_int, render, require

bp = Blueprint("admin", __name__, url_prefix="/admin")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # what a spreadsheet would run as a formula


def _filter() -> queries.UserFilter:
    role = request.args.get("role", "")
    status = request.args.get("status", "")
    return queries.UserFilter(text=request.args.get("q", "").strip()[:64], role=role if role in ROLES else "",
                              status=status if status in queries.STATUSES else "", page=as_id(request.args.get("page")) or 1)


def _throttle() -> dict[str, int]:
    cfg = current_app.config
    return {"window_minutes": cfg["SIGNIN_WINDOW_MINUTES"], "max_failures": cfg["SIGNIN_MAX_FAILURES"]}


def _users_screen(status: int = 200, **extra: object) -> Response:
    page = queries.users_page(db.session, _filter(), **_throttle())
    return render("admin/users.html", "admin/_users.html", status=status, upage=page, roles=ROLES,
                  statuses=queries.STATUSES, choices=queries.form_choices(db.session), **extra)


@bp.get("/")
@require("admin")
def index() -> Response:
    return redirect(url_for("admin.users"))


@bp.get("/users")
@require("admin")
def users() -> Response:
    """The logins, filtered and paged; `?format=csv` exports every login the filters select."""
    if request.args.get("format") == "csv":
        return _csv(queries.all_users(db.session, _filter(), **_throttle()))
    return _users_screen()


@bp.post("/users")
@require("admin")
def create() -> Response:
    """A new login; its one-time password is shown once, on this answer only."""
    password = one_time_password()
    result = create_user(db.session, actor(), username=request.form.get("username", ""),
                         role=request.form.get("role", ""), name=request.form.get("name", ""), password=password,
                         partner_org_id=form_int("partner_org_id"), home_warehouse_id=form_int("home_warehouse_id"),
                         idempotency_key=request.form.get("key"))
    return _done(result, password)


@bp.post("/users/<int:user_id>/<action>")
@require("admin")
def change(user_id: int, action: str) -> Response:
    """Deactivate, activate, reset the password, unlock or sign out everywhere one login."""
    key = request.form.get("key")
    password = None
    if action == "deactivate":
        result = set_active(db.session, actor(), user=user_id, active=False, idempotency_key=key)
    elif action == "activate":
        result = set_active(db.session, actor(), user=user_id, active=True, idempotency_key=key)
    elif action == "reset-password":
        password = one_time_password()
        result = set_password(db.session, actor(), user=user_id, password=password, idempotency_key=key)
    elif action == "unlock":
        result = unlock(db.session, actor(), user=user_id, idempotency_key=key)
    elif action == "sign-out":
        result = sign_out_everywhere(db.session, actor(), user=user_id, idempotency_key=key)
    else:
        return _users_screen(404, notice=("error", "That action is not available here."))
    return _done(result, password)


def _done(result: UserChanged, password: str | None) -> Response:
    """The list again, saying what was done; a new password only when this request set it."""
    said = {"created": "created", "password_set": "has a new password; every session ended",
            "activated": "can sign in again", "deactivated": "is switched off; every session ended",
            "unlocked": "may try to sign in again", "signed_out_everywhere": "is signed out on every device"}
    text = f"{result.username} {said.get(result.action, result.action)}."
    if result.replayed and password:  # this request's password was not set: the first request's was
        password = None
        text += " Its one-time password was shown with the first answer; if nobody saw it, reset the password again."
    return _users_screen(notice=_notice(text, result), shown_password=password, shown_for=result.username)


def _notice(text: str, result: Result) -> tuple[str, str]:
    """What was done, and that a repeat (a resent form) changed nothing."""
    return "success", text + (" (already done: the repeat changed nothing)" if result.replayed else "")


@bp.get("/audit")
@require("admin")
def audit() -> Response:
    """Who changed which login, with the login before and after."""
    page = queries.admin_audit(db.session, as_id(request.args.get("page")) or 1)
    return render("admin/audit.html", apage=page)


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def _csv(rows: list[queries.UserRow]) -> Response:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["username", "name", "role", "active", "partner_org", "home_warehouse", "last_sign_in_at", "locked"])
    for r in rows:
        writer.writerow([_cell(v) for v in (r.username, r.name, r.role, r.active, r.partner_org, r.home_warehouse,
                                             r.last_sign_in_at.isoformat() if r.last_sign_in_at else "", r.locked)])
    return Response(out.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": "attachment; filename=dockhand-users.csv"})


# --------------------------------------------------------------------------- sites


@bp.get("/warehouses")
@require("admin")
def warehouses() -> Response:
    """The warehouses, and a form to add one (with a location of each type)."""
    return _warehouses_screen()


def _warehouses_screen(**extra: object) -> Response:
    return render("admin/warehouses.html", "admin/_warehouses.html", rows=queries.warehouses(db.session),
                  orgs=queries.form_choices(db.session)["orgs"], **extra)


@bp.post("/warehouses")
@require("admin")
def warehouse_create() -> Response:
    result = create_warehouse(db.session, actor(), code=request.form.get("code", ""), name=request.form.get("name", ""),
                              partner_org_id=form_int("partner_org_id"), idempotency_key=request.form.get("key"))
    return _warehouses_screen(notice=_notice(f"Warehouse {result.label} created with a location of each type.", result))


@bp.get("/warehouses/<int:warehouse_id>")
@require("admin")
def warehouse(warehouse_id: int) -> Response:
    """One warehouse's locations, and a form to add one."""
    return _warehouse_screen(warehouse_id)


def _warehouse_screen(warehouse_id: int, **extra: object) -> Response:
    found = queries.warehouse(db.session, warehouse_id)
    if found is None:
        raise NotFound("No such warehouse.")
    return render("admin/warehouse.html", "admin/_locations.html", wh=found[0], locations=found[1],
                  types=LOCATION_TYPES, **extra)


@bp.post("/warehouses/<int:warehouse_id>/locations")
@require("admin")
def location_create(warehouse_id: int) -> Response:
    result = add_location(db.session, actor(), warehouse_id=warehouse_id, code=request.form.get("code", ""),
                          type_=request.form.get("type", ""), idempotency_key=request.form.get("key"))
    return _warehouse_screen(warehouse_id, notice=_notice(f"Location {result.label} added.", result))


@bp.get("/partners")
@require("admin")
def partners() -> Response:
    """Partner organisations: the merchants each serves and the warehouses it runs."""
    return _partners_screen()


def _partners_screen(**extra: object) -> Response:
    return render("admin/partners.html", "admin/_partners.html", rows=queries.partner_orgs(db.session),
                  merchants=queries.merchants(db.session), **extra)


@bp.post("/partners")
@require("admin")
def partner_create() -> Response:
    result = create_partner_org(db.session, actor(), name=request.form.get("name", ""),
                                merchant_ids=form_ids("merchant_id"), idempotency_key=request.form.get("key"))
    return _partners_screen(notice=_notice(f"Partner organisation {result.label} created.", result))


@bp.get("/api-keys")
@require("admin")
def api_keys() -> Response:
    """The integration API's keys: who has one, what it may do, when it was last used."""
    return _api_keys_screen()


def _api_keys_screen(**extra: object) -> Response:
    return render("admin/api_keys.html", "admin/_api_keys.html", rows=api_queries.list_keys(db.session),
                  merchants=queries.merchants(db.session), partners=queries.partner_orgs(db.session), scopes=SCOPES, **extra)


@bp.post("/api-keys")
@require("admin")
def api_key_create() -> Response:
    """A new key; its token is shown on this answer only."""
    result = create_api_key(db.session, actor(), name=request.form.get("name", ""), scopes=request.form.getlist("scope"),
                            merchant_ids=form_ids("merchant_id"), partner_org_id=form_int("partner_org_id"),
                            idempotency_key=request.form.get("key"))
    if result.replayed:
        text = (f"API key {result.key_id} ({result.name}) was already created by this form: its token was shown "
                "once and is not kept. If it was lost, revoke the key and create another.")
        return _api_keys_screen(notice=("warning", text))
    return _api_keys_screen(notice=("success", f"API key {result.key_id} ({result.name}) created."), shown_token=result.token)


@bp.post("/api-keys/<int:key_id>/revoke")
@require("admin")
def api_key_revoke(key_id: int) -> Response:
    result = revoke_api_key(db.session, actor(), key=key_id, idempotency_key=request.form.get("key"))
    return _api_keys_screen(notice=_notice(f"API key {result.key_id} ({result.name}) revoked: every call with it is refused.", result))


@bp.get("/webhooks")
@require("admin")
def webhooks() -> Response:
    """Webhook endpoints: what each wants, what it is owed, whether it is failing or switched off."""
    return _webhooks_screen()


def _webhooks_screen(**extra: object) -> Response:
    return render("admin/webhooks.html", "admin/_webhooks.html", rows=webhook_queries.endpoints(db.session), **extra)


@bp.post("/webhooks")
@require("admin")
def webhook_create() -> Response:
    types = [t for t in request.form.get("event_types", "").replace(",", " ").split() if t]
    made = register_endpoint(db.session, actor(), url=request.form.get("url", ""), event_types=types,
                             description=request.form.get("description", ""), idempotency_key=request.form.get("key"))
    if made.replayed:
        return _webhooks_screen(notice=("warning", f"Endpoint {made.url} was already registered by this form: its secret "
                                                   "was shown once. Rotate the secret to get a new one."))
    return _webhooks_screen(notice=("success", f"Endpoint {made.url} registered."), shown_secret=made.secret)


@bp.post("/webhooks/<int:endpoint_id>/<action>")
@require("admin")
def webhook_change(endpoint_id: int, action: str) -> Response:
    key = request.form.get("key")
    if action == "rotate":
        done = rotate_secret(db.session, actor(), endpoint_id=endpoint_id, idempotency_key=key)
        if done.replayed:
            return _webhooks_screen(notice=_notice(f"Secret of {done.url} rotated.", done))
        return _webhooks_screen(notice=("success", f"Secret of {done.url} rotated: the old one signs too for 24 hours."),
                                shown_secret=done.secret)
    if action in ("disable", "enable"):
        done = set_endpoint_enabled(db.session, actor(), endpoint_id=endpoint_id, enabled=action == "enable", idempotency_key=key)
        return _webhooks_screen(notice=_notice(f"Endpoint {done.url} {'switched on' if action == 'enable' else 'switched off'}.", done))
    if action == "resend":
        sent = resend(db.session, actor(), endpoint_id=endpoint_id, delivery_ids=form_ids("delivery_id") or None,
                      idempotency_key=key)
        return _webhook_log(endpoint_id, notice=_notice(f"{sent.deliveries} deliveries will be sent again now.", sent))
    raise NotFound("No such action.")


@bp.get("/webhooks/<int:endpoint_id>")
@require("admin")
def webhook_log(endpoint_id: int) -> Response:
    """An endpoint's delivery log: each event, its tries, the last answer; resend from here."""
    return _webhook_log(endpoint_id)


def _webhook_log(endpoint_id: int, **extra: object) -> Response:
    found = webhook_queries.endpoints(db.session, endpoint_id)
    if not found:
        raise NotFound("No such webhook endpoint.")
    status = request.args.get("status") if request.args.get("status") in ("pending", "delivered", "dead") else None
    return render("admin/webhook.html", "admin/_webhook_log.html", endpoint=found[0][0], counts=found[0][1:], status=status,
                  deliveries=webhook_queries.deliveries(db.session, endpoint_id, status=status), **extra)


# --------------------------------------------------------------------------- categories and checklists


@bp.get("/categories")
@require("admin")
def categories() -> Response:
    """The product categories: add, rename, retire (no new products) or take back into use."""
    return _categories_screen()


def _categories_screen(**extra: object) -> Response:
    return render("admin/categories.html", "admin/_categories.html", rows=queries.categories(db.session), **extra)


@bp.post("/categories")
@require("admin")
def category_create() -> Response:
    result = create_category(db.session, actor(), code=request.form.get("code", ""), name=request.form.get("name", ""),
                             idempotency_key=request.form.get("key"))
    return _categories_screen(notice=_notice(f"Category {result.name} ({result.code}) added: products may use it now.",
                                             result))


@bp.post("/categories/<code>/<action>")
@require("admin")
def category_change(code: str, action: str) -> Response:
    """Rename, retire or take back into use one category."""
    key = request.form.get("key")
    if action == "rename":
        result = update_category(db.session, actor(), code=code, name=request.form.get("name", ""), idempotency_key=key)
    elif action in ("retire", "activate"):
        result = update_category(db.session, actor(), code=code, active=action == "activate", idempotency_key=key)
    else:
        raise NotFound("No such action.")
    said = {"renamed": "renamed", "retired": "retired: no new product may use it; its products keep it",
            "activated": "back in use", "unchanged": "unchanged"}[result.action]
    return _categories_screen(notice=_notice(f"Category {result.name} ({result.code}) {said}.", result))


@bp.get("/checklists")
@require("admin")
def checklists() -> Response:
    """Each category's inspection checklist: its current version, and a link to edit it."""
    return render("admin/checklists.html", rows=queries.categories(db.session))


@bp.get("/checklists/<code>")
@require("admin")
def checklist(code: str) -> Response:
    """A category's checklist editor, its versions, and one version's items (`?version=`)."""
    return _checklist_screen(code, as_id(request.args.get("version")))


def _checklist_screen(code: str, version: int | None = None, *, status: int = 200, text: str | None = None,
                      note: str = "", **extra: object) -> Response:
    found = queries.checklist(db.session, code, version)
    if found is None:
        raise NotFound("No such category.")
    if text is None:
        text = items_text(found.current.items) if found.current else ""
    return render("admin/checklist.html", "admin/_checklist.html", status=status, c=found, text=text, note=note,
                  max_items=MAX_ITEMS, max_label=MAX_LABEL, **extra)


@bp.post("/checklists/<code>")
@require("admin")
def checklist_save(code: str) -> Response:
    """Save the edited items as the category's next version."""
    result = save_checklist(db.session, actor(), category=code, text=request.form.get("items", ""),
                            note=request.form.get("note"), idempotency_key=request.form.get("key"))
    return _checklist_screen(code, notice=_notice(f"Version {result.version} saved ({result.items} items): the handheld "
                                                  "shows it from now on.", result))


@bp.post("/checklists/<code>/restore")
@require("admin")
def checklist_restore(code: str) -> Response:
    """An older version's items again, as the next version."""
    result = restore_checklist(db.session, actor(), category=code, version=form_int("version"),
                               note=request.form.get("note"), idempotency_key=request.form.get("key"))
    return _checklist_screen(code, notice=_notice(f"Version {result.restored_from} restored as version {result.version}.",
                                                  result))
