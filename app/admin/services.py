"""The admin console's use cases. Logins (their one writer): create, set a password, switch off and
on, unlock after throttling, sign out everywhere; from the console and the command line (as
SYSTEM). The sites: warehouses with their locations, and partner organisations with the merchants
they serve. Product categories (added, renamed, retired; never deleted) and their inspection
checklists (each save, or restore, a new version). A kit's components (replaced whole from the
editor's text).

Each is a use case in one transaction (run_idempotent: the same key again is the first answer
again), audited with what the user was before and after. A password change, a switch-off and
"sign out everywhere" end every session of the user at once. The last active admin cannot be
switched off, so the console always has somebody to run it."""
from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session, aliased

from app.auth.models import SignInFailure, User
from app.auth.roles import ADMIN, PARTNER, ROLES, Actor
from app.auth.services import check_password, end_sessions
from app.catalog.domain import ComponentsInvalid, components_text, parse_components
from app.catalog.models import (LOCATION_TYPES, Category, Location, Merchant, PartnerOrg, Product, ProductComponent,
                                SalesChannel, Warehouse)
from app.errors import Conflict, NotFound, NotPermitted, ValidationFailed
from app.inspection.domain import ChecklistInvalid, items_text, parse_items
from app.inspection.grading import RulesInvalid, parse_rules, rules_text
from app.inspection.models import ChecklistVersion
from app.ledger.idempotency import Result, run_idempotent
from app.ledger.writer import audit_row
from app.rows import write
from app.words import N_


@dataclass(frozen=True)
class UserChanged(Result):
    """What an administration use case did to a login; `sessions_ended` when it ended any."""

    user_id: int
    username: str
    action: str
    sessions_ended: int = 0


def one_time_password() -> str:
    """A password to hand over once (shown once, never stored in clear): 16 characters."""
    return secrets.token_urlsafe(12)


def _allowed(actor: Actor) -> None:
    if not (actor.can("admin") or actor.role == "system"):
        raise NotPermitted("Only an admin can manage logins.")


def _user(session: Session, user: int | str) -> User:
    """The login, locked: by id (the console) or by username (the command line). An admin's row is
    locked with every active admin's, in id order, so that two admins switched off at once queue
    instead of deadlocking (see _keep_an_admin)."""
    where = User.id == user if isinstance(user, int) else User.username == str(user).strip().lower()
    found = session.execute(select(User.id, User.role).where(where)).first()
    if found is not None and found.role == ADMIN:
        session.scalars(select(User.id).where(User.role == ADMIN, User.active.is_(True)).order_by(User.id)
                        .with_for_update()).all()
    row = session.scalars(select(User).where(where).with_for_update()).first()
    if row is None:
        raise NotFound(f"No user {user}." if isinstance(user, int) else f"No user called {user}.")
    return row


def _facts(user: User) -> dict[str, Any]:
    return {"username": user.username, "name": user.name, "role": user.role, "active": user.active,
            "partner_org_id": user.partner_org_id, "home_warehouse_id": user.home_warehouse_id}


def _keep_an_admin(session: Session, user: User) -> None:
    """Refuse when `user` is the last active admin (_user locked the admins' rows for an admin)."""
    if user.role != ADMIN or not user.active:
        return
    admins = session.scalars(select(User.id).where(User.role == ADMIN, User.active.is_(True))).all()
    if set(admins) <= {user.id}:
        raise Conflict(f"{user.username} is the last active admin: make another admin first.")


def _audited(actor: Actor, action: str, user: User, before: dict[str, Any] | None, **extra: Any) -> list[Any]:
    return [audit_row(actor, f"user.{action}", "user", user.id,
                      details={"before": before, "after": _facts(user), **extra})]


def create_user(session: Session, actor: Actor, *, username: str, role: str, name: str, password: str,
                partner_org_id: int | None = None, partner_org_name: str | None = None,
                home_warehouse_id: int | None = None, idempotency_key: str | None) -> UserChanged:
    """A new login. A partner belongs to an organisation (by id or by name); a home warehouse, when
    given, must exist."""
    _allowed(actor)
    username = (username or "").strip().lower()
    name = (name or "").strip() or username
    if (not username or len(username) > 64 or not username.isascii()
            or not username.replace(".", "").replace("-", "").replace("_", "").isalnum()):
        raise ValidationFailed("A username is 1-64 letters, digits, '.', '-' or '_'.")
    if role not in ROLES:
        raise ValidationFailed(f"Role must be one of {', '.join(ROLES)}.")
    if len(name) > 120:
        raise ValidationFailed("A name is at most 120 characters.")
    check_password(password)

    def work() -> UserChanged:
        if session.scalars(select(User.id).where(User.username == username)).first() is not None:
            raise Conflict(f"User {username} exists already.")
        org_id = None
        if role == PARTNER:
            where = PartnerOrg.id == partner_org_id if partner_org_id else PartnerOrg.name == (partner_org_name or "")
            org_id = session.scalars(select(PartnerOrg.id).where(where)).first()
            if org_id is None:
                raise ValidationFailed("A partner login needs its partner organisation.")
        if home_warehouse_id is not None and session.get(Warehouse, home_warehouse_id) is None:
            raise ValidationFailed("No such warehouse.")
        user = User(username=username, role=role, name=name, partner_org_id=org_id, home_warehouse_id=home_warehouse_id)
        user.set_password(password)
        session.add(user)
        session.flush()
        write(session, _audited(actor, "created", user, None))
        return UserChanged(user.id, user.username, "created")

    params = {"username": username, "role": role, "name": name, "partner_org_id": partner_org_id,
              "partner_org_name": partner_org_name, "home_warehouse_id": home_warehouse_id}
    return run_idempotent(session, actor, idempotency_key, "create_user", params, work, result_type=UserChanged)


def set_password(session: Session, actor: Actor, *, user: int | str, password: str,
                 idempotency_key: str | None) -> UserChanged:
    """A new password (an admin's reset, or the command line's); every session of the user ends."""
    _allowed(actor)
    check_password(password)

    def work() -> UserChanged:
        row = _user(session, user)
        row.set_password(password)
        ended = end_sessions(session, row.id)
        session.flush()
        write(session, _audited(actor, "password_set", row, _facts(row), sessions_ended=ended))
        return UserChanged(row.id, row.username, "password_set", ended)

    return run_idempotent(session, actor, idempotency_key, "set_password", {"user": user}, work,
                          result_type=UserChanged)


def set_active(session: Session, actor: Actor, *, user: int | str, active: bool,
               idempotency_key: str | None) -> UserChanged:
    """Switch a login off (ending its sessions at once) or on again."""
    _allowed(actor)

    def work() -> UserChanged:
        row = _user(session, user)
        before = _facts(row)
        ended = 0
        if not active:
            _keep_an_admin(session, row)
            ended = end_sessions(session, row.id)
        row.active = active
        session.flush()
        action = "activated" if active else "deactivated"
        write(session, _audited(actor, action, row, before, sessions_ended=ended))
        return UserChanged(row.id, row.username, action, ended)

    return run_idempotent(session, actor, idempotency_key, "set_active", {"user": user, "active": active}, work,
                          result_type=UserChanged)


def change_user(session: Session, actor: Actor, *, user: int | str, role: str, name: str,
                partner_org_id: int | None, home_warehouse_id: int | None, idempotency_key: str | None) -> UserChanged:
    """Change a login's role, name, partner organisation or home warehouse; it holds at the user's
    next request (each request reads the login). The last active admin cannot be made anything
    else; a partner needs its organisation, and only a partner has one."""
    _allowed(actor)
    name = (name or "").strip()
    if role not in ROLES:
        raise ValidationFailed(f"Role must be one of {', '.join(ROLES)}.")
    if not name or len(name) > 120:
        raise ValidationFailed("A name is 1-120 characters.")
    if role == PARTNER and partner_org_id is None:
        raise ValidationFailed("A partner login needs its partner organisation.")

    def work() -> UserChanged:
        row = _user(session, user)
        before = _facts(row)
        if role != ADMIN:
            _keep_an_admin(session, row)
        if role == PARTNER and session.get(PartnerOrg, partner_org_id) is None:
            raise ValidationFailed("No such partner organisation.")
        if home_warehouse_id is not None and session.get(Warehouse, home_warehouse_id) is None:
            raise ValidationFailed("No such warehouse.")
        row.role, row.name, row.home_warehouse_id = role, name, home_warehouse_id
        row.partner_org_id = partner_org_id if role == PARTNER else None
        if _facts(row) == before:
            return UserChanged(row.id, row.username, "unchanged")
        session.flush()
        write(session, _audited(actor, "changed", row, before))
        return UserChanged(row.id, row.username, "changed")

    params = {"user": user, "role": role, "name": name, "partner_org_id": partner_org_id,
              "home_warehouse_id": home_warehouse_id}
    return run_idempotent(session, actor, idempotency_key, "change_user", params, work, result_type=UserChanged)


def unlock(session: Session, actor: Actor, *, user: int | str, idempotency_key: str | None) -> UserChanged:
    """Forget the account's recent wrong passwords, so that it may sign in again at once."""
    _allowed(actor)

    def work() -> UserChanged:
        row = _user(session, user)
        cleared = session.execute(delete(SignInFailure).where(SignInFailure.scope == "account",
                                                              SignInFailure.key == row.username)).rowcount or 0
        write(session, _audited(actor, "unlocked", row, _facts(row), failures_cleared=cleared))
        return UserChanged(row.id, row.username, "unlocked")

    return run_idempotent(session, actor, idempotency_key, "unlock_user", {"user": user}, work, result_type=UserChanged)


def sign_out_everywhere(session: Session, actor: Actor, *, user: int | str, idempotency_key: str | None) -> UserChanged:
    """End every session and remember-me cookie of the user, on every device."""
    _allowed(actor)

    def work() -> UserChanged:
        row = _user(session, user)
        ended = end_sessions(session, row.id)
        write(session, _audited(actor, "signed_out_everywhere", row, _facts(row), sessions_ended=ended))
        return UserChanged(row.id, row.username, "signed_out_everywhere", ended)

    return run_idempotent(session, actor, idempotency_key, "sign_out_everywhere", {"user": user}, work,
                          result_type=UserChanged)


@dataclass(frozen=True)
class Created(Result):
    """What a console use case made: its id and what the screen calls it."""

    id: int
    label: str


def _code(value: str, what: str, limit: int) -> str:
    code = (value or "").strip().upper()
    if not code or len(code) > limit or not code.isascii() or not code.replace("-", "").replace("_", "").isalnum():
        raise ValidationFailed(f"A {what} code is 1-{limit} letters, digits, '-' or '_'.")
    return code


def _name(value: str, what: str) -> str:
    name = (value or "").strip()
    if not name or len(name) > 120:
        raise ValidationFailed(f"A {what} needs a name of 1-120 characters.")
    return name


def create_warehouse(session: Session, actor: Actor, *, code: str, name: str, partner_org_id: int | None,
                     idempotency_key: str | None) -> Created:
    """A warehouse with one location of each type (dock, inspection, stock, quarantine, ...), so that
    it can receive and dispose at once; a 3PL's when `partner_org_id` is given."""
    _allowed(actor)
    code, name = _code(code, "warehouse", 16), _name(name, "warehouse")

    def work() -> Created:
        if session.scalars(select(Warehouse.id).where(Warehouse.code == code)).first() is not None:
            raise Conflict(f"Warehouse {code} exists already.")
        if partner_org_id is not None and session.get(PartnerOrg, partner_org_id) is None:
            raise ValidationFailed("No such partner organisation.")
        warehouse = Warehouse(code=code, name=name, partner_org_id=partner_org_id)
        session.add(warehouse)
        session.flush()
        locations = [Location(warehouse_id=warehouse.id, code=f"{type_.upper().replace('_', '-')}-01", type=type_,
                              barcode=f"LOC:{code}-{type_.upper().replace('_', '-')}-01") for type_ in LOCATION_TYPES]
        session.add_all(locations)
        session.flush()
        write(session, [audit_row(actor, "warehouse.created", "warehouse", warehouse.id, warehouse_id=warehouse.id,
                                  details={"before": None, "after": {"code": code, "name": name,
                                                                     "partner_org_id": partner_org_id,
                                                                     "locations": [loc.code for loc in locations]}})])
        return Created(warehouse.id, f"{code} · {name}")

    return run_idempotent(session, actor, idempotency_key, "create_warehouse",
                          {"code": code, "name": name, "partner_org_id": partner_org_id}, work, result_type=Created)


def add_location(session: Session, actor: Actor, *, warehouse_id: int, code: str, type_: str,
                 idempotency_key: str | None) -> Created:
    """One more location of a type in a warehouse (a second dock door, another quarantine cage)."""
    _allowed(actor)
    code = _code(code, "location", 32)
    if type_ not in LOCATION_TYPES:
        raise ValidationFailed(f"A location's type is one of {', '.join(LOCATION_TYPES)}.")

    def work() -> Created:
        warehouse = session.get(Warehouse, warehouse_id)
        if warehouse is None:
            raise NotFound("No such warehouse.")
        barcode = f"LOC:{warehouse.code}-{code}"
        clash = select(Location.id).where((Location.barcode == barcode)
                                          | ((Location.warehouse_id == warehouse_id) & (Location.code == code)))
        if session.scalars(clash).first() is not None:
            raise Conflict(f"{warehouse.code} has a location {code} already.")
        location = Location(warehouse_id=warehouse_id, code=code, type=type_, barcode=barcode)
        session.add(location)
        session.flush()
        write(session, [audit_row(actor, "location.created", "location", location.id, warehouse_id=warehouse_id,
                                  details={"before": None, "after": {"warehouse": warehouse.code, "code": code,
                                                                     "type": type_, "barcode": barcode}})])
        return Created(location.id, f"{warehouse.code} {code}")

    return run_idempotent(session, actor, idempotency_key, "add_location",
                          {"warehouse_id": warehouse_id, "code": code, "type": type_}, work, result_type=Created)


def create_partner_org(session: Session, actor: Actor, *, name: str, merchant_ids: list[int],
                       idempotency_key: str | None) -> Created:
    """A 3PL and the merchants it receives returns for (its warehouses name it when created)."""
    _allowed(actor)
    name = _name(name, "partner organisation")
    merchant_ids = sorted(set(merchant_ids))

    def work() -> Created:
        if session.scalars(select(PartnerOrg.id).where(PartnerOrg.name == name)).first() is not None:
            raise Conflict(f"A partner organisation called {name} exists already.")
        merchants = session.scalars(select(Merchant).where(Merchant.id.in_(merchant_ids))).all()
        if len(merchants) != len(merchant_ids):
            raise ValidationFailed("One of those merchants does not exist.")
        org = PartnerOrg(name=name, merchants=list(merchants))
        session.add(org)
        session.flush()
        write(session, [audit_row(actor, "partner_org.created", "partner_org", org.id,
                                  details={"before": None, "after": {"name": name,
                                                                     "merchants": [m.code for m in merchants]}})])
        return Created(org.id, name)

    return run_idempotent(session, actor, idempotency_key, "create_partner_org",
                          {"name": name, "merchant_ids": merchant_ids}, work, result_type=Created)


def change_warehouse(session: Session, actor: Actor, *, warehouse_id: int, name: str, partner_org_id: int | None,
                     active: bool, idempotency_key: str | None) -> Created:
    """Rename a warehouse, hand it to a 3PL (or take it back), or retire it: a retired warehouse is
    no longer offered to handhelds; its units, ledger and history stay."""
    _allowed(actor)
    name = _name(name, "warehouse")

    def work() -> Created:
        row = session.scalars(select(Warehouse).where(Warehouse.id == warehouse_id).with_for_update()).first()
        if row is None:
            raise NotFound("No such warehouse.")
        if partner_org_id is not None and session.get(PartnerOrg, partner_org_id) is None:
            raise ValidationFailed("No such partner organisation.")
        facts = lambda: {"code": row.code, "name": row.name, "partner_org_id": row.partner_org_id,  # noqa: E731
                         "active": row.active}
        before = facts()
        row.name, row.partner_org_id, row.active = name, partner_org_id, active
        if facts() != before:
            session.flush()
            write(session, [audit_row(actor, "warehouse.changed", "warehouse", row.id, warehouse_id=row.id,
                                      details={"before": before, "after": facts()})])
        return Created(row.id, f"{row.code} · {row.name}")

    return run_idempotent(session, actor, idempotency_key, "change_warehouse",
                          {"id": warehouse_id, "name": name, "partner_org_id": partner_org_id, "active": active},
                          work, result_type=Created)


def change_partner_org(session: Session, actor: Actor, *, org_id: int, name: str, merchant_ids: list[int],
                       idempotency_key: str | None) -> Created:
    """Rename a partner organisation or change the merchants it serves (its logins and keys see
    those merchants' returns at its warehouses from their next request)."""
    _allowed(actor)
    name = _name(name, "partner organisation")
    merchant_ids = sorted(set(merchant_ids))

    def work() -> Created:
        org = session.scalars(select(PartnerOrg).where(PartnerOrg.id == org_id).with_for_update()).first()
        if org is None:
            raise NotFound("No such partner organisation.")
        if session.scalars(select(PartnerOrg.id).where(PartnerOrg.name == name, PartnerOrg.id != org_id)).first():
            raise Conflict(f"A partner organisation called {name} exists already.")
        merchants = session.scalars(select(Merchant).where(Merchant.id.in_(merchant_ids))).all()
        if len(merchants) != len(merchant_ids):
            raise ValidationFailed("One of those merchants does not exist.")
        facts = lambda: {"name": org.name, "merchants": sorted(m.code for m in org.merchants)}  # noqa: E731
        before = facts()
        org.name, org.merchants = name, list(merchants)
        if facts() != before:
            session.flush()
            write(session, [audit_row(actor, "partner_org.changed", "partner_org", org.id,
                                      details={"before": before, "after": facts()})])
        return Created(org.id, name)

    return run_idempotent(session, actor, idempotency_key, "change_partner_org",
                          {"id": org_id, "name": name, "merchant_ids": merchant_ids}, work, result_type=Created)


# Merchants and sales channels: a code other systems use (never changed once made) and a name.
_CODED = {"merchant": (Merchant, "merchant"), "sales_channel": (SalesChannel, "sales channel")}


def create_coded(session: Session, actor: Actor, *, kind: str, code: str, name: str,
                 idempotency_key: str | None) -> Created:
    """A new merchant or sales channel (`kind`), by its code and name."""
    _allowed(actor)
    model, what = _CODED[kind]
    code, name = _code(code, what, 32), _name(name, what)
    if kind == "sales_channel":
        code = code.lower()  # channels go by lower-case codes (web, amazon); the API accepts either case

    def work() -> Created:
        if session.scalars(select(model.id).where(model.code.in_([code.upper(), code.lower()]))).first() is not None:
            raise Conflict(f"A {what} {code} exists already.")
        row = model(code=code, name=name)
        session.add(row)
        session.flush()
        write(session, [audit_row(actor, f"{kind}.created", kind, row.id,
                                  details={"before": None, "after": {"code": code, "name": name}})])
        return Created(row.id, f"{name} ({code})")

    return run_idempotent(session, actor, idempotency_key, f"create_{kind}", {"code": code, "name": name}, work,
                          result_type=Created)


def rename_coded(session: Session, actor: Actor, *, kind: str, row_id: int, name: str,
                 idempotency_key: str | None) -> Created:
    """A merchant's or sales channel's new name (its code stays: other systems send it)."""
    _allowed(actor)
    model, what = _CODED[kind]
    name = _name(name, what)

    def work() -> Created:
        row = session.scalars(select(model).where(model.id == row_id).with_for_update()).first()
        if row is None:
            raise NotFound(f"No such {what}.")
        if row.name != name:
            before, row.name = row.name, name
            session.flush()
            write(session, [audit_row(actor, f"{kind}.renamed", kind, row.id,
                                      details={"before": {"code": row.code, "name": before},
                                               "after": {"code": row.code, "name": name}})])
        return Created(row.id, f"{name} ({row.code})")

    return run_idempotent(session, actor, idempotency_key, f"rename_{kind}", {"id": row_id, "name": name}, work,
                          result_type=Created)


# --------------------------------------------------------------------------- categories and checklists

_CATEGORY_CODE = re.compile(r"[a-z][a-z0-9_]{0,31}")


@dataclass(frozen=True)
class CategorySaved(Result):
    """What a category use case did: created, renamed, retired, activated or unchanged."""

    code: str
    name: str
    active: bool
    action: str


def _category_facts(row: Category) -> dict[str, Any]:
    return {"code": row.code, "name": row.name, "active": row.active}


def _category(session: Session, code: str) -> Category:
    """The category, locked (its checklist's versions are numbered under this lock), or NotFound."""
    row = None
    if _CATEGORY_CODE.fullmatch(code or ""):
        row = session.scalars(select(Category).where(Category.code == code).with_for_update()).first()
    if row is None:
        raise NotFound("No such category.")
    return row


def create_category(session: Session, actor: Actor, *, code: str, name: str, idempotency_key: str | None) -> CategorySaved:
    """A new product category, active: products may be put in it at once. Its code is for good."""
    _allowed(actor)
    code = (code or "").strip().lower()
    if not _CATEGORY_CODE.fullmatch(code):
        raise ValidationFailed("A category code is 1-32 lower-case letters, digits or '_', starting with a letter.")
    name = _name(name, "category")

    def work() -> CategorySaved:
        if session.get(Category, code) is not None:
            raise Conflict(f"Category {code} exists already.")
        row = Category(code=code, name=name, active=True)
        session.add(row)
        session.flush()
        write(session, [audit_row(actor, "category.created", "category", 0,
                                  details={"before": None, "after": _category_facts(row)})])
        return CategorySaved(code, name, True, "created")

    return run_idempotent(session, actor, idempotency_key, "create_category", {"code": code, "name": name}, work,
                          result_type=CategorySaved)


def update_category(session: Session, actor: Actor, *, code: str, name: str | None = None, active: bool | None = None,
                    idempotency_key: str | None) -> CategorySaved:
    """Rename a category, or retire it (offered for no new product; its products keep it, and its
    checklist still shows for them) or take it back into use."""
    _allowed(actor)
    name = _name(name, "category") if name is not None else None

    def work() -> CategorySaved:
        row = _category(session, code)
        before = _category_facts(row)
        if name is not None and name != row.name:
            row.name, action = name, "renamed"
        elif active is not None and active != row.active:
            row.active, action = active, "activated" if active else "retired"
        else:
            return CategorySaved(row.code, row.name, row.active, "unchanged")
        session.flush()
        write(session, [audit_row(actor, f"category.{action}", "category", 0,
                                  details={"before": before, "after": _category_facts(row)})])
        return CategorySaved(row.code, row.name, row.active, action)

    return run_idempotent(session, actor, idempotency_key, "update_category",
                          {"code": code, "name": name, "active": active}, work, result_type=CategorySaved)


@dataclass(frozen=True)
class ChecklistSaved(Result):
    """The checklist version a save or a restore made."""

    category: str
    version: int
    items: int
    restored_from: int | None = None


def _note(value: str | None) -> str:
    note = " ".join((value or "").split())
    if not note or len(note) > 200:
        raise ValidationFailed("Say in a note (1-200 characters) why the checklist changes.")
    return note


def _new_version(session: Session, actor: Actor, category: str, items: list[dict[str, str]], note: str,
                 restored_from: int | None = None, rules: list[dict[str, Any]] | None = None) -> ChecklistSaved:
    """Add the category's next checklist version with its grading rules (the caller holds the
    category's lock), audited with the version before and after; refused when it would change nothing."""
    current = session.scalars(select(ChecklistVersion).where(ChecklistVersion.category == category)
                              .order_by(ChecklistVersion.version.desc()).limit(1)).first()
    rules = rules or None
    if current is not None and current.items == items and (current.rules or None) == rules:
        raise ValidationFailed(f"Those are version {current.version}'s items and grading rules already: nothing to save.")
    version = (current.version if current else 0) + 1
    session.add(ChecklistVersion(category=category, version=version, items=items, rules=rules, note=note, author_id=actor.id))
    session.flush()
    before = ({"code": category, "version": current.version, "items": items_text(current.items),
               "rules": rules_text(current.rules)} if current else None)
    after = {"code": category, "version": version, "items": items_text(items), "rules": rules_text(rules), "note": note}
    write(session, [audit_row(actor, "checklist.restored" if restored_from else "checklist.saved", "checklist", version,
                              details={"before": before, "after": after, "restored_from": restored_from})])
    return ChecklistSaved(category, version, len(items), restored_from)


def save_checklist(session: Session, actor: Actor, *, category: str, text: str, note: str | None,
                   idempotency_key: str | None, grading_text: str = "") -> ChecklistSaved:
    """A category's checklist as edited (one item a line, "key | label") with its grading rules
    (one a line, "key = yes -> grade A, skip the rest"; app/inspection/grading.py): its next version,
    which the handheld shows and grades by from now on. The versions before are kept."""
    _allowed(actor)
    try:
        items = parse_items(text or "")
    except ChecklistInvalid as exc:
        raise ValidationFailed(" ".join(exc.problems)) from exc
    try:
        rules = parse_rules(grading_text or "", items)
    except RulesInvalid as exc:
        raise ValidationFailed("Grading rules: " + " ".join(exc.problems)) from exc
    note = _note(note)

    def work() -> ChecklistSaved:
        _category(session, category)
        return _new_version(session, actor, category, items, note, rules=rules)

    params = {"category": category, "items": items, "note": note, **({"rules": rules} if rules else {})}
    return run_idempotent(session, actor, idempotency_key, "save_checklist", params, work, result_type=ChecklistSaved)


def restore_checklist(session: Session, actor: Actor, *, category: str, version: int | None, note: str | None,
                      idempotency_key: str | None) -> ChecklistSaved:
    """An older version's items again, as the category's next version."""
    _allowed(actor)
    note = " ".join((note or "").split())[:200] or f"Restored version {version}."

    def work() -> ChecklistSaved:
        _category(session, category)
        old = session.get(ChecklistVersion, (category, version)) if version else None
        if old is None:
            raise NotFound(f"Category {category} has no checklist version {version}.")
        return _new_version(session, actor, category, list(old.items), note, restored_from=old.version, rules=old.rules)

    return run_idempotent(session, actor, idempotency_key, "restore_checklist",
                          {"category": category, "version": version, "note": note}, work, result_type=ChecklistSaved)


# --------------------------------------------------------------------------- kits' components


class ComponentsRefused(ValidationFailed):
    """A components text refused: every problem, each an English template and its figures (a
    screen says each in the person's language)."""

    def __init__(self, problems: list[tuple[str, dict[str, object]]]) -> None:
        super().__init__(" ".join(t % f if f else t for t, f in problems))
        self.problems = problems


@dataclass(frozen=True)
class ComponentsSaved(Result):
    """A kit's components as saved: how many (0: a plain product again)."""

    product_id: int
    sku: str
    components: int


def _components_facts(session: Session, product_id: int) -> list[tuple[Any, ...]]:
    """A kit's components in order: (component product id, name, quantity, deduction, SKU or name)."""
    part = aliased(Product)
    rows = session.execute(select(ProductComponent.component_product_id, ProductComponent.name, ProductComponent.quantity,
                                  ProductComponent.deduction_pct, part.sku)
                           .outerjoin(part, part.id == ProductComponent.component_product_id)
                           .where(ProductComponent.kit_product_id == product_id)
                           .order_by(ProductComponent.position)).all()
    return [(r.component_product_id, r.name, r.quantity, None if r.deduction_pct is None else Decimal(r.deduction_pct),
             r.sku or r.name) for r in rows]


def save_components(session: Session, actor: Actor, *, product_id: int, text: str,
                    idempotency_key: str | None) -> ComponentsSaved:
    """A product's components as edited (one a line, "SKU or name | quantity | deduction %"),
    replacing the ones it had: a SKU of the catalog is that product, anything else a name. The
    inspection checks each from now on; none makes it a plain product again. Refused with every
    problem at once: a bad line, the kit as its own component, a component that is a kit itself, a
    kit that is some other kit's component, the same text again."""
    _allowed(actor)
    early: list[tuple[str, dict[str, object]]] = []
    try:
        lines = parse_components(text or "")
    except ComponentsInvalid as exc:  # what the lines name is checked too: every problem at once
        early, lines = exc.problems, exc.lines

    def work() -> ComponentsSaved:
        refs = {c.ref for c in lines}
        # the kit and every product the lines name, locked in one order: two admins making A a part of B
        # and B a part of A at once queue here, and the second sees the first's kit
        locked = session.scalars(select(Product).where(or_(Product.id == product_id, Product.sku.in_(refs)))
                                 .order_by(Product.id).with_for_update()).all()
        kit = next((p for p in locked if p.id == product_id), None)
        if kit is None:
            raise NotFound("No such product.")
        known = {r.sku: r for r in session.execute(
            select(Product.id, Product.sku, Product.name,
                   select(ProductComponent.id).where(ProductComponent.kit_product_id == Product.id).exists().label("is_kit"))
            .where(Product.sku.in_(refs))).all()} if refs else {}
        problems = list(early)
        for c in lines:
            part = known.get(c.ref)
            if part is not None and part.id == kit.id:
                problems.append((N_("Line %(line)s: a kit is not a component of itself."), {"line": c.line}))
            elif part is not None and part.is_kit:
                problems.append((N_("Line %(line)s: %(sku)s is a kit itself: list its components here instead."),
                                 {"line": c.line, "sku": part.sku}))
        if lines:
            inside = session.scalars(select(Product.sku).join(ProductComponent, ProductComponent.kit_product_id == Product.id)
                                     .where(ProductComponent.component_product_id == kit.id).order_by(Product.sku)).all()
            if inside:
                problems.append((N_("%(sku)s is a component of %(kits)s: a component cannot be a kit."),
                                 {"sku": kit.sku, "kits": ", ".join(dict.fromkeys(inside))}))
        if problems:
            raise ComponentsRefused(sorted(problems, key=lambda p: int(p[1].get("line", 10**6))))  # type: ignore[call-overload]
        before = _components_facts(session, kit.id)
        after = [(known[c.ref].id if c.ref in known else None, known[c.ref].name if c.ref in known else c.ref,
                  c.quantity, c.pct, c.ref) for c in lines]
        if [f[:4] for f in before] == [f[:4] for f in after]:
            raise ValidationFailed(N_("Those are %(sku)s's components already: nothing to save."), sku=kit.sku)
        session.execute(delete(ProductComponent).where(ProductComponent.kit_product_id == kit.id))
        session.add_all([ProductComponent(kit_product_id=kit.id, position=n, component_product_id=part_id, name=name,
                                          quantity=qty, deduction_pct=pct)
                         for n, (part_id, name, qty, pct, _) in enumerate(after, start=1)])
        session.flush()
        facts = {"sku": kit.sku, "name": kit.name}
        write(session, [audit_row(actor, "product.components_saved", "product", kit.id, details={
            "before": {**facts, "components": components_text([(f[4], f[2], f[3]) for f in before])} if before else None,
            "after": {**facts, "components": components_text([(f[4], f[2], f[3]) for f in after])}})])
        return ComponentsSaved(kit.id, kit.sku, len(after))

    params = {"product_id": product_id, "components": [[c.ref, c.quantity, None if c.pct is None else str(c.pct)]
                                                       for c in lines]}
    return run_idempotent(session, actor, idempotency_key, "save_components", params, work, result_type=ComponentsSaved)
