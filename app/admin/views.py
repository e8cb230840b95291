"""The admin console (desktop): logins, warehouses and their locations, partner organisations,
product categories and their inspection checklists (versioned), products and a kit's components,
API keys, webhook endpoints with their delivery log, and the admin audit log."""
from __future__ import annotations

import json

from flask import Blueprint, Response, current_app, redirect, request, url_for
from flask_babel import gettext, ngettext

from app.admin import queries
from app.api import queries as api_queries
from app.api.domain import SCOPES
from app.api.services import create_api_key, revoke_api_key
from app.webhooks import queries as webhook_queries
from app.settings import queries as settings_queries
from app.desk.rules import reason_codes
from app.disposition.domain import RESPONSIBLE_PARTIES
from app.settings.domain import SETTINGS
from app.settings.services import remove_threshold, save_settings, set_threshold
from app.webhooks.services import register_endpoint, resend, rotate_secret, set_endpoint_enabled
from app.admin.services import (ComponentsRefused, UserChanged, add_location, change_partner_org, change_user, change_warehouse,
                                create_category, create_coded, create_partner_org, create_user, create_warehouse,
                                one_time_password, rename_coded, restore_checklist, save_checklist, set_active,
                                save_components, set_password, sign_out_everywhere, unlock, update_category)
from app.auth.roles import ROLES
from app.db import db
from app.catalog.domain import MAX_COMPONENTS, components_text
from app.catalog.models import LOCATION_TYPES
from app.inspection.domain import MAX_ITEMS, MAX_LABEL, items_text
from app.inspection.grading import rules_text
from app.ledger.idempotency import Result
from app.errors import NotFound, ValidationFailed
from app.web.exports import csv_download
from app.web import actor, as_id, form_ids, form_int, render, require

bp = Blueprint("admin", __name__, url_prefix="/admin")


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
    """Change, deactivate, activate, reset the password, unlock or sign out everywhere one login."""
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
    elif action == "edit":
        result = change_user(db.session, actor(), user=user_id, role=request.form.get("role", ""),
                             name=request.form.get("name", ""), partner_org_id=form_int("partner_org_id"),
                             home_warehouse_id=form_int("home_warehouse_id"), idempotency_key=key)
    else:
        return _users_screen(404, notice=("error", "That action is not available here."))
    return _done(result, password)


def _done(result: UserChanged, password: str | None) -> Response:
    """The list again, saying what was done; a new password only when this request set it."""
    said = {"created": "created", "password_set": "has a new password; every session ended",
            "activated": "can sign in again", "deactivated": "is switched off; every session ended",
            "unlocked": "may try to sign in again", "signed_out_everywhere": "is signed out on every device",
            "changed": "is changed", "unchanged": "was already so: nothing changed"}
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
    """What admins changed, with before and after: filtered by what was changed and by text (who,
    what); `?format=csv` exports every entry the filters select."""
    kind = request.args.get("kind", "")
    f = queries.AuditFilter(kind=kind if kind in queries.ADMIN_ENTITIES else "", text=request.args.get("q", "").strip()[:64],
                            page=as_id(request.args.get("page")) or 1)
    if request.args.get("format") == "csv":
        return csv_download("dockhand-admin-audit.csv", ["at", "who", "action", "entity", "entity_id", "before", "after"],
                            [(e.at, e.actor_name, e.action, e.entity_type, e.entity_id, json.dumps(e.details.get("before")),
                              json.dumps(e.details.get("after"))) for e in queries.admin_audit_all(db.session, f)])
    return render("admin/audit.html", apage=queries.admin_audit(db.session, f), kinds=queries.ADMIN_ENTITIES)


def _wants_csv() -> bool:
    """A list screen asked as `?format=csv` (GET): its rows as a CSV download instead."""
    return request.method == "GET" and request.args.get("format") == "csv"


def _csv(rows: list[queries.UserRow]) -> Response:
    return csv_download("dockhand-users.csv",
                        ["username", "name", "role", "active", "partner_org", "home_warehouse", "last_sign_in_at", "locked"],
                        [(r.username, r.name, r.role, r.active, r.partner_org, r.home_warehouse, r.last_sign_in_at, r.locked)
                         for r in rows])


# --------------------------------------------------------------------------- sites


@bp.get("/warehouses")
@require("admin")
def warehouses() -> Response:
    """The warehouses, and a form to add one (with a location of each type)."""
    return _warehouses_screen()


def _warehouses_screen(**extra: object) -> Response:
    if _wants_csv():
        return csv_download("dockhand-warehouses.csv", ["code", "name", "run_by", "active", "locations"],
                            [(w.code, w.name, w.partner_org or "us", w.active, w.locations)
                             for w in queries.warehouses(db.session)])
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


def _warehouse_screen(warehouse_id: int, fragment: str = "admin/_locations.html", **extra: object) -> Response:
    found = queries.warehouse(db.session, warehouse_id)
    if found is None:
        raise NotFound("No such warehouse.")
    return render("admin/warehouse.html", fragment, wh=found[0], locations=found[1], types=LOCATION_TYPES,
                  orgs=queries.form_choices(db.session)["orgs"], **extra)


@bp.post("/warehouses/<int:warehouse_id>")
@require("admin")
def warehouse_change(warehouse_id: int) -> Response:
    """Rename, hand to a 3PL, retire or bring back a warehouse."""
    result = change_warehouse(db.session, actor(), warehouse_id=warehouse_id, name=request.form.get("name", ""),
                              partner_org_id=form_int("partner_org_id"), active=request.form.get("active") == "on",
                              idempotency_key=request.form.get("key"))
    return _warehouse_screen(warehouse_id, "admin/_warehouse_form.html",
                             edit_notice=_notice(f"Warehouse {result.label} saved.", result))


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
    if _wants_csv():
        return csv_download("dockhand-partners.csv", ["name", "serves", "runs"],
                            [(o["name"], "; ".join(o["merchants"]), "; ".join(o["warehouses"]))
                             for o in queries.partner_orgs(db.session)])
    return render("admin/partners.html", "admin/_partners.html", rows=queries.partner_orgs(db.session),
                  merchants=queries.merchants(db.session), **extra)


@bp.post("/partners/<int:org_id>")
@require("admin")
def partner_change(org_id: int) -> Response:
    """Rename a partner organisation or change the merchants it serves."""
    result = change_partner_org(db.session, actor(), org_id=org_id, name=request.form.get("name", ""),
                                merchant_ids=form_ids("merchant_id"), idempotency_key=request.form.get("key"))
    return _partners_screen(notice=_notice(f"Partner organisation {result.label} saved.", result))


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
    if _wants_csv():  # never a secret: only its public id
        return csv_download("dockhand-api-keys.csv", ["name", "key_id", "scopes", "merchant_ids", "partner_org_id", "created_at",
                                                      "created_by", "last_used_at", "revoked_at"],
                            [(k.name, k.key_id, " ".join(k.scopes), " ".join(map(str, k.merchant_ids or [])),
                              k.partner_org_id, k.created_at, k.created_by, k.last_used_at, k.revoked_at)
                             for k in api_queries.list_keys(db.session)])
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
    if _wants_csv():  # never the signing secret
        return csv_download("dockhand-webhooks.csv", ["url", "description", "event_types", "switched_off_at", "failing_since",
                                                      "created_at", "created_by", "pending", "delivered", "given_up"],
                            [(ep.url, ep.description, " ".join(ep.event_types or []) or "every event", ep.disabled_at,
                              ep.failing_since, ep.created_at, ep.created_by, pending, delivered, dead)
                             for ep, pending, delivered, dead in webhook_queries.endpoints(db.session)])
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


# --------------------------------------------------------------------------- merchants and channels

CODED_KINDS = {"merchants": "merchant", "channels": "sales_channel"}


@bp.get("/merchants")
@require("admin")
def merchants() -> Response:
    """Merchants and sales channels: their codes (what other systems send) and names."""
    return _merchants_screen()


def _merchants_screen(**extra: object) -> Response:
    if _wants_csv():
        rows = queries.coded(db.session)
        return csv_download("dockhand-merchants-and-channels.csv", ["kind", "code", "name", "returns"],
                            [(kind, r.code, r.name, r.returns) for kind in ("merchant", "sales_channel") for r in rows[kind]])
    return render("admin/merchants.html", "admin/_merchants.html", rows=queries.coded(db.session), **extra)


@bp.post("/<any(merchants, channels):kind>")
@require("admin")
def coded_create(kind: str) -> Response:
    result = create_coded(db.session, actor(), kind=CODED_KINDS[kind], code=request.form.get("code", ""),
                          name=request.form.get("name", ""), idempotency_key=request.form.get("key"))
    return _merchants_screen(notice=_notice(f"{result.label} added.", result))


@bp.post("/<any(merchants, channels):kind>/<int:row_id>")
@require("admin")
def coded_rename(kind: str, row_id: int) -> Response:
    result = rename_coded(db.session, actor(), kind=CODED_KINDS[kind], row_id=row_id, name=request.form.get("name", ""),
                          idempotency_key=request.form.get("key"))
    return _merchants_screen(notice=_notice(f"Renamed: {result.label}.", result))


@bp.get("/reasons")
@require("admin")
def reasons() -> Response:
    """Return reason codes: labels, whether such returns are avoidable, the party responsible (the
    same editor supervisors have beside the rules)."""
    if _wants_csv():
        return csv_download("dockhand-reason-codes.csv", ["code", "label", "active", "avoidable", "responsible_party"],
                            [(r.code, r.label, r.active, "" if r.avoidable is None else r.avoidable, r.responsible_party)
                             for r in reason_codes(db.session)])
    return render("admin/reasons.html", reasons=reason_codes(db.session), parties=RESPONSIBLE_PARTIES)


# --------------------------------------------------------------------------- settings


@bp.get("/settings")
@require("admin")
def settings() -> Response:
    """The settings that were environment-only: refund thresholds, queue ageing, photo size, the
    default restocking fee."""
    return _settings_screen()


def _settings_screen(status: int = 200, **extra: object) -> Response:
    return render("admin/settings.html", "admin/_settings.html", status=status,
                  settings=settings_queries.settings_rows(db.session, current_app.config),
                  thresholds=settings_queries.thresholds(db.session), merchants=queries.merchants(db.session),
                  channels=queries.channels(db.session), default_threshold=current_app.config["REFUND_APPROVAL_THRESHOLD"],
                  **extra)


@bp.post("/settings")
@require("admin")
def settings_save() -> Response:
    values = {name: request.form.get(name, "") for name in SETTINGS if name in request.form}
    result = save_settings(db.session, actor(), values=values, config=current_app.config,
                           idempotency_key=request.form.get("key"))
    said = f"Saved: {', '.join(SETTINGS[n].label.lower() for n in result.changed)}." if result.changed else "Nothing changed."
    return _settings_screen(notice=_notice(said, result))


@bp.post("/settings/thresholds")
@require("admin")
def threshold_set() -> Response:
    scope, _, target = request.form.get("target", "").partition(":")
    result = set_threshold(db.session, actor(), scope=scope, target_id=as_id(target) if target else None,
                           amount=request.form.get("amount"), idempotency_key=request.form.get("key"))
    return _settings_screen(notice=_notice(f"Refunds above {result.amount} for {result.target} now wait for approval.",
                                           result))


@bp.post("/settings/thresholds/<int:threshold_id>/remove")
@require("admin")
def threshold_remove(threshold_id: int) -> Response:
    result = remove_threshold(db.session, actor(), threshold_id=threshold_id, idempotency_key=request.form.get("key"))
    return _settings_screen(notice=_notice(f"The threshold for {result.target} is removed.", result))


# --------------------------------------------------------------------------- categories and checklists


@bp.get("/categories")
@require("admin")
def categories() -> Response:
    """The product categories: add, rename, retire (no new products) or take back into use."""
    return _categories_screen()


def _categories_csv() -> Response:
    return csv_download("dockhand-categories.csv", ["code", "name", "active", "products", "checklist_version", "checklist_items"],
                        [(c.code, c.name, c.active, c.products, c.version, len(c.items or []))
                         for c in queries.categories(db.session)])


def _categories_screen(**extra: object) -> Response:
    if _wants_csv():
        return _categories_csv()
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
    if _wants_csv():
        return _categories_csv()
    return render("admin/checklists.html", rows=queries.categories(db.session))


@bp.get("/checklists/<code>")
@require("admin")
def checklist(code: str) -> Response:
    """A category's checklist editor, its versions, and one version's items (`?version=`)."""
    return _checklist_screen(code, as_id(request.args.get("version")))


def _checklist_screen(code: str, version: int | None = None, *, status: int = 200, text: str | None = None,
                      note: str = "", **extra: object) -> Response:
    """The checklist editor: the current version's items and grading rules in their text, its versions."""
    found = queries.checklist(db.session, code, version)
    if found is None:
        raise NotFound("No such category.")
    if text is None:
        text = items_text(found.current.items) if found.current else ""
    rules = rules_text(found.current.rules) if found.current else ""
    return render("admin/checklist.html", "admin/_checklist.html", status=status, c=found, text=text, note=note,
                  rules=rules, rules_text=rules_text, max_items=MAX_ITEMS, max_label=MAX_LABEL, **extra)


@bp.post("/checklists/<code>")
@require("admin")
def checklist_save(code: str) -> Response:
    """Save the edited items as the category's next version."""
    result = save_checklist(db.session, actor(), category=code, text=request.form.get("items", ""),
                            note=request.form.get("note"), idempotency_key=request.form.get("key"),
                            grading_text=request.form.get("rules", ""))
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


# --------------------------------------------------------------------------- products and kits


@bp.get("/products")
@require("admin")
def products() -> Response:
    """The products, by SKU: found by SKU or name, kits only; each a link to its components."""
    found = queries.products_page(db.session, request.args.get("q", ""), kits=request.args.get("kits") == "1",
                                  page=as_id(request.args.get("page")) or 1)
    return render("admin/products.html", "admin/_products.html", ppage=found)


@bp.get("/products/<int:product_id>")
@require("admin")
def product(product_id: int) -> Response:
    """A product's components editor: what the inspection checks for it, one a line."""
    return _kit_screen(product_id)


def _kit_screen(product_id: int, **extra: object) -> Response:
    found = queries.kit(db.session, product_id)
    if found is None:
        raise NotFound("No such product.")
    text = components_text([(c["sku"] or c["name"], c["quantity"], c["deduction_pct"]) for c in found.components])
    return render("admin/product.html", "admin/_components.html", k=found, text=text, max_components=MAX_COMPONENTS,
                  **extra)


@bp.post("/products/<int:product_id>/components")
@require("admin")
def components_save(product_id: int) -> Response:
    """Save the edited components: the inspection checks each from now on."""
    try:
        result = save_components(db.session, actor(), product_id=product_id, text=request.form.get("components", ""),
                                 idempotency_key=request.form.get("key"))
    except ComponentsRefused as exc:  # every problem, each in the person's language
        raise ValidationFailed(" ".join(gettext(t, **f) if f else gettext(t) for t, f in exc.problems)) from exc
    said = (ngettext("%(sku)s has %(num)s component: the handheld checks it from now on.",
                     "%(sku)s has %(num)s components: the handheld checks each one from now on.", result.components,
                     sku=result.sku) if result.components
            else gettext("%(sku)s has no components now: a plain product again.", sku=result.sku))
    return _kit_screen(product_id, notice=_notice(said, result))
