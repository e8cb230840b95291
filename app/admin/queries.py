"""What the admin console reads: logins (filtered, paged, exported), sites, categories and their
checklists' versions, products and a kit's components, and the admin audit log."""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session, aliased

from app.auth.models import SignInFailure, User
from app.catalog.models import Category, Location, Merchant, PartnerOrg, Product, SalesChannel, Warehouse
from app.db import utcnow
from app.catalog.models import ProductComponent
from app.inspection.grading import component_share
from app.inspection.models import ChecklistVersion
from app.ledger.models import AuditEntry
from app.orders.models import Rma

PER_PAGE = 50
ADMIN_ENTITIES = ("user", "warehouse", "location", "partner_org", "merchant", "sales_channel", "category", "checklist",
                  "setting", "reason_code", "csv_import", "product")
STATUSES = ("active", "inactive", "locked")


@dataclass(frozen=True)
class UserFilter:
    """The console's filters, read from the query string (anything unknown is no filter)."""

    text: str = ""
    role: str = ""
    status: str = ""
    page: int = 1

    def args(self, **changes: Any) -> dict[str, Any]:
        values = {"q": self.text, "role": self.role, "status": self.status, "page": self.page, **changes}
        return {k: v for k, v in values.items() if v and not (k == "page" and v == 1)}


@dataclass(frozen=True)
class UserRow:
    id: int
    username: str
    name: str
    role: str
    active: bool
    partner_org: str | None
    home_warehouse: str | None
    last_sign_in_at: datetime | None
    locked: bool
    partner_org_id: int | None = None
    home_warehouse_id: int | None = None


@dataclass(frozen=True)
class UsersPage:
    rows: list[UserRow]
    total: int
    page: int
    pages: int
    filter: UserFilter


def _users(session: Session, f: UserFilter, *, since: datetime, max_failures: int) -> Select[Any]:
    failures = (select(SignInFailure.key, func.count().label("n")).where(SignInFailure.scope == "account",
                                                                        SignInFailure.failed_at > since)
                .group_by(SignInFailure.key).subquery())
    home = aliased(Warehouse)
    stmt = (select(User.id, User.username, User.name, User.role, User.active, PartnerOrg.name.label("partner_org"),
                   home.code.label("home_warehouse"), User.last_sign_in_at,
                   (func.coalesce(failures.c.n, 0) >= max_failures).label("locked"), User.partner_org_id,
                   User.home_warehouse_id)
            .outerjoin(PartnerOrg, PartnerOrg.id == User.partner_org_id)
            .outerjoin(home, home.id == User.home_warehouse_id)
            .outerjoin(failures, failures.c.key == User.username))
    if f.text:
        text = f.text.lower()  # its own % and _ taken literally (autoescape)
        stmt = stmt.where(or_(func.lower(User.username).contains(text, autoescape=True),
                              func.lower(User.name).contains(text, autoescape=True)))
    if f.role:
        stmt = stmt.where(User.role == f.role)
    if f.status == "active":
        stmt = stmt.where(User.active.is_(True))
    elif f.status == "inactive":
        stmt = stmt.where(User.active.is_(False))
    elif f.status == "locked":
        stmt = stmt.where(func.coalesce(failures.c.n, 0) >= max_failures)
    return stmt


def users_page(session: Session, f: UserFilter, *, window_minutes: int, max_failures: int) -> UsersPage:
    """One page of logins, by username."""
    stmt = _users(session, f, since=utcnow() - timedelta(minutes=window_minutes), max_failures=max_failures)
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    pages = max(1, math.ceil(total / PER_PAGE))
    page = min(max(f.page, 1), pages)
    rows = session.execute(stmt.order_by(User.username).limit(PER_PAGE).offset((page - 1) * PER_PAGE)).all()
    return UsersPage([UserRow(**r._mapping) for r in rows], total, page, pages, f)


def all_users(session: Session, f: UserFilter, *, window_minutes: int, max_failures: int) -> list[UserRow]:
    """Every login the filters select, for the CSV export."""
    stmt = _users(session, f, since=utcnow() - timedelta(minutes=window_minutes), max_failures=max_failures)
    return [UserRow(**r._mapping) for r in session.execute(stmt.order_by(User.username)).all()]


def form_choices(session: Session) -> dict[str, list[tuple[int, str]]]:
    """Partner organisations and warehouses, for the create form."""
    return {"orgs": [(r.id, r.name) for r in session.execute(select(PartnerOrg.id, PartnerOrg.name).order_by(PartnerOrg.name))],
            "warehouses": [(r.id, f"{r.code} · {r.name}") for r in
                           session.execute(select(Warehouse.id, Warehouse.code, Warehouse.name).order_by(Warehouse.code))]}


@dataclass(frozen=True)
class AuditFilter:
    """The audit log's filters: what kind of thing was changed, text in who or what."""

    kind: str = ""
    text: str = ""
    page: int = 1

    def args(self, **changes: Any) -> dict[str, Any]:
        values = {"kind": self.kind, "q": self.text, "page": self.page, **changes}
        return {k: v for k, v in values.items() if v and not (k == "page" and v == 1)}


@dataclass(frozen=True)
class AuditPage:
    rows: list[Any]
    page: int
    pages: int
    total: int
    filter: AuditFilter


def _audit(f: AuditFilter) -> Select[Any]:
    stmt = (select(AuditEntry.at, AuditEntry.actor_name, AuditEntry.action, AuditEntry.entity_type, AuditEntry.entity_id,
                   AuditEntry.details)
            .where(AuditEntry.entity_type.in_([f.kind] if f.kind else ADMIN_ENTITIES)))
    if f.text:
        text = f.text.lower()  # its own % and _ taken literally (autoescape)
        stmt = stmt.where(or_(func.lower(AuditEntry.actor_name).contains(text, autoescape=True),
                              func.lower(AuditEntry.action).contains(text, autoescape=True)))
    return stmt


def admin_audit(session: Session, f: AuditFilter) -> AuditPage:
    """What admins (and the command line) changed, newest first, one page."""
    stmt = _audit(f)
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    pages = max(1, math.ceil(total / PER_PAGE))
    page = min(max(f.page, 1), pages)
    rows = session.execute(stmt.order_by(AuditEntry.id.desc()).limit(PER_PAGE).offset((page - 1) * PER_PAGE)).all()
    return AuditPage(list(rows), page, pages, total, f)


def admin_audit_all(session: Session, f: AuditFilter) -> list[Any]:
    """Every entry the filters select, newest first (the CSV export)."""
    return list(session.execute(_audit(f).order_by(AuditEntry.id.desc())).all())


def warehouses(session: Session) -> list[Any]:
    """Every warehouse with its 3PL and how many locations it has."""
    counts = select(Location.warehouse_id, func.count().label("n")).group_by(Location.warehouse_id).subquery()
    return list(session.execute(
        select(Warehouse.id, Warehouse.code, Warehouse.name, PartnerOrg.name.label("partner_org"),
               func.coalesce(counts.c.n, 0).label("locations"), Warehouse.active)
        .outerjoin(PartnerOrg, PartnerOrg.id == Warehouse.partner_org_id)
        .outerjoin(counts, counts.c.warehouse_id == Warehouse.id).order_by(Warehouse.code)).all())


def warehouse(session: Session, warehouse_id: int) -> tuple[Any, list[Any]] | None:
    """One warehouse and its locations, by type then code."""
    row = session.execute(select(Warehouse.id, Warehouse.code, Warehouse.name, PartnerOrg.name.label("partner_org"),
                                 Warehouse.partner_org_id, Warehouse.active)
                          .outerjoin(PartnerOrg, PartnerOrg.id == Warehouse.partner_org_id)
                          .where(Warehouse.id == warehouse_id)).first()
    if row is None:
        return None
    locations = session.execute(select(Location.code, Location.type, Location.barcode)
                                .where(Location.warehouse_id == warehouse_id).order_by(Location.type, Location.code)).all()
    return row, list(locations)


def partner_orgs(session: Session) -> list[dict[str, Any]]:
    """Every partner organisation with the merchants it serves and the warehouses it runs."""
    orgs = session.scalars(select(PartnerOrg).order_by(PartnerOrg.name)).all()
    runs: dict[int, list[str]] = {}
    for org_id, code in session.execute(select(Warehouse.partner_org_id, Warehouse.code)
                                        .where(Warehouse.partner_org_id.is_not(None)).order_by(Warehouse.code)):
        runs.setdefault(org_id, []).append(code)
    return [{"id": o.id, "name": o.name, "merchants": sorted(m.name for m in o.merchants),
             "merchant_ids": {m.id for m in o.merchants},
             "warehouses": runs.get(o.id, [])} for o in orgs]


def channels(session: Session) -> list[tuple[int, str]]:
    return [(r.id, f"{r.name} ({r.code})") for r in session.execute(select(SalesChannel.id, SalesChannel.code, SalesChannel.name)
                                                                   .order_by(SalesChannel.name))]


def merchants(session: Session) -> list[tuple[int, str]]:
    return [(r.id, f"{r.name} ({r.code})") for r in session.execute(select(Merchant.id, Merchant.code, Merchant.name)
                                                                   .order_by(Merchant.name))]


def coded(session: Session) -> dict[str, list[Any]]:
    """Merchants and sales channels with how many returns each has (the merchants screen)."""
    out: dict[str, list[Any]] = {}
    for kind, model, column in (("merchant", Merchant, Rma.merchant_id), ("sales_channel", SalesChannel, Rma.channel_id)):
        counts = select(column.label("id"), func.count().label("n")).group_by(column).subquery()
        out[kind] = list(session.execute(select(model.id, model.code, model.name, func.coalesce(counts.c.n, 0).label("returns"))
                                         .outerjoin(counts, counts.c.id == model.id).order_by(model.name)).all())
    return out


def _newest_versions() -> Any:
    return (select(ChecklistVersion.category, func.max(ChecklistVersion.version).label("version"))
            .group_by(ChecklistVersion.category).subquery())


def categories(session: Session) -> list[Any]:
    """Every category (active ones first, then by name) with how many products it has and its
    checklist's current version (None: no checklist yet), its item count, when and by whom."""
    products = select(Product.category, func.count().label("n")).group_by(Product.category).subquery()
    newest = _newest_versions()
    return list(session.execute(
        select(Category.code, Category.name, Category.active, func.coalesce(products.c.n, 0).label("products"),
               newest.c.version, ChecklistVersion.items, ChecklistVersion.created_at, User.name.label("author"))
        .outerjoin(products, products.c.category == Category.code)
        .outerjoin(newest, newest.c.category == Category.code)
        .outerjoin(ChecklistVersion, (ChecklistVersion.category == Category.code)
                   & (ChecklistVersion.version == newest.c.version))
        .outerjoin(User, User.id == ChecklistVersion.author_id)
        .order_by(Category.active.desc(), Category.name, Category.code)).all())


@dataclass(frozen=True)
class ChecklistScreen:
    category: Any
    versions: list[Any]  # newest first: version, note, created_at, author, item count
    current: Any | None  # the newest version (version, items, note, created_at, author)
    shown: Any | None  # the version asked for (?version=), else the newest


def checklist(session: Session, code: str, version: int | None = None) -> ChecklistScreen | None:
    """A category's checklist: every version (newest first), the current one and the one asked for;
    None when there is no such category."""
    category = session.execute(select(Category.code, Category.name, Category.active)
                               .where(Category.code == code)).first() if len(code) <= 32 else None
    if category is None:
        return None
    rows = session.execute(select(ChecklistVersion.version, ChecklistVersion.items, ChecklistVersion.rules, ChecklistVersion.note,
                                  ChecklistVersion.created_at, User.name.label("author"))
                           .outerjoin(User, User.id == ChecklistVersion.author_id)
                           .where(ChecklistVersion.category == code)
                           .order_by(ChecklistVersion.version.desc())).all()
    current = rows[0] if rows else None
    shown = next((r for r in rows if r.version == version), None) if version is not None else current
    return ChecklistScreen(category, list(rows), current, shown)


# --------------------------------------------------------------------------- products and kits


@dataclass(frozen=True)
class ProductsPage:
    rows: list[Any]  # id, sku, name, category, unit_value, components (0: not a kit)
    total: int
    page: int
    pages: int
    text: str
    kits: bool


def products_page(session: Session, text: str = "", *, kits: bool = False, page: int = 1) -> ProductsPage:
    """One page of products by SKU, each with its count of components; `text` in the SKU or the
    name, `kits`: only the products with components."""
    parts = (select(ProductComponent.kit_product_id, func.count().label("n"))
             .group_by(ProductComponent.kit_product_id).subquery())
    stmt = (select(Product.id, Product.sku, Product.name, Product.category, Product.unit_value,
                   func.coalesce(parts.c.n, 0).label("components"))
            .outerjoin(parts, parts.c.kit_product_id == Product.id))
    text = " ".join((text or "").split())[:64]
    if text:
        stmt = stmt.where(or_(func.lower(Product.sku).contains(text.lower(), autoescape=True),
                              func.lower(Product.name).contains(text.lower(), autoescape=True)))
    if kits:
        stmt = stmt.where(parts.c.n > 0)
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    pages = max(1, math.ceil(total / PER_PAGE))
    page = min(max(page, 1), pages)
    rows = session.execute(stmt.order_by(Product.sku).limit(PER_PAGE).offset((page - 1) * PER_PAGE)).all()
    return ProductsPage(list(rows), total, page, pages, text, kits)


@dataclass(frozen=True)
class KitScreen:
    product: Any  # id, sku, name, category, unit_value
    components: list[Any]  # position, name, sku (None: by name), quantity, deduction_pct, share (what a missing one deducts)
    part_of: list[str]  # the SKUs of the kits it is a component of


def kit(session: Session, product_id: int) -> KitScreen | None:
    """A product with its components in order, each with the share of the refund a missing one
    deducts (app.inspection.grading.component_share); None when there is no such product."""
    product = session.execute(select(Product.id, Product.sku, Product.name, Product.category, Product.unit_value)
                              .where(Product.id == product_id)).first()
    if product is None:
        return None
    part = aliased(Product)
    rows = session.execute(select(ProductComponent.position, ProductComponent.name, part.sku, ProductComponent.quantity,
                                  ProductComponent.deduction_pct, part.unit_value)
                           .outerjoin(part, part.id == ProductComponent.component_product_id)
                           .where(ProductComponent.kit_product_id == product_id)
                           .order_by(ProductComponent.position)).all()
    components = [{"position": r.position, "name": r.name, "sku": r.sku, "quantity": r.quantity,
                   "deduction_pct": r.deduction_pct,
                   "share": component_share(r.deduction_pct, r.unit_value, r.quantity, product.unit_value)} for r in rows]
    part_of = list(session.scalars(select(Product.sku).join(ProductComponent, ProductComponent.kit_product_id == Product.id)
                                   .where(ProductComponent.component_product_id == product_id).distinct()
                                   .order_by(Product.sku)))
    return KitScreen(product, components, part_of)
