"""Reads for the CSV import: what a file names that the database does not have (so that the
preview can name the line), the imports for the console's screens."""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Integer, String, cast, literal, null, select, union_all
from sqlalchemy.orm import Session

from app.auth.models import User
from app.catalog.models import Merchant, Product, ProductBarcode, SalesChannel, Warehouse
from app.disposition.models import ReasonCode
from app.intake.domain import Item, RowError
from app.intake.models import CsvImport
from app.ledger.models import IdempotencyRecord
from app.orders.models import CarrierTracking, Customer, Order, OrderLine, Rma

_CHUNK = 900  # values per IN list: within SQLite's limit on bound parameters


def _chunks(values: Iterable[Any]) -> Iterator[list[Any]]:
    values = sorted(set(values))
    for i in range(0, len(values), _CHUNK):
        yield values[i:i + _CHUNK]


def _in(session: Session, columns: tuple[Any, ...], key: Any, values: Iterable[Any]) -> list[Any]:
    """Rows of `columns` whose `key` is one of `values`, read in chunks."""
    rows: list[Any] = []
    for chunk in _chunks(values):
        rows.extend(session.execute(select(*columns).where(key.in_(chunk))).all())
    return rows


def missing_references(session: Session, kind: str, items: list[Item]) -> list[RowError]:
    """The lines of `items` that name what is not there: an unknown merchant, channel, warehouse,
    SKU (of another merchant) or reason code; a number or tracking number another return has; a
    barcode of another product. Read in a few statements for the whole file (a preview of 10 000
    lines must not ask once per line). The use cases check all of this again when applying: this
    is to point at the line before anything is written."""
    if not items:
        return []
    errors: list[RowError] = []
    merchants = dict(_in(session, (Merchant.code, Merchant.id), Merchant.code,
                         {it.fields.get("merchant") for it in items if it.fields.get("merchant")}))
    for it in items:
        m = it.fields.get("merchant")
        if m and m not in merchants:
            errors.append(RowError(it.lines[0], "merchant", f"no merchant {m}"))
    if kind == "products":
        owners = {sku: mid for sku, mid in _in(session, (Product.sku, Product.merchant_id), Product.sku,
                                                  [it.key for it in items])}
        taken: dict[str, str] = {}
        for chunk in _chunks(c for it in items for c in it.fields["barcodes"]):
            taken.update(session.execute(select(ProductBarcode.code, Product.sku)
                                         .join(Product, Product.id == ProductBarcode.product_id)
                                         .where(ProductBarcode.code.in_(chunk))).all())
        for it in items:
            m = merchants.get(it.fields["merchant"]) if it.fields["merchant"] else None
            if it.key in owners and owners[it.key] is not None and owners[it.key] != m:
                errors.append(RowError(it.lines[0], "merchant", f"{it.key} belongs to another merchant"))
            for code in it.fields["barcodes"]:
                if taken.get(code, it.key) != it.key:
                    errors.append(RowError(it.lines[0], "barcodes", f"{code} is the barcode of {taken[code]}"))
        return errors
    channels = {c.upper() for c in session.scalars(select(SalesChannel.code))}
    skus = {ln[col] for it in items for ln in it.rows for col in ("sku", "exchange_sku") if ln.get(col)}
    products = dict(_in(session, (Product.sku, Product.merchant_id), Product.sku, skus))
    for it in items:
        if it.fields["channel"] and it.fields["channel"] not in channels:
            errors.append(RowError(it.lines[0], "channel", f"no sales channel {it.fields['channel']}"))
        mid = merchants.get(it.fields["merchant"])
        for ln in it.rows:
            for col in ("sku", "exchange_sku"):
                sku = ln.get(col)
                if sku and (sku not in products or (mid is not None and products[sku] not in (None, mid))):
                    errors.append(RowError(ln["line"], col, f"unknown SKU {sku} for merchant {it.fields['merchant']}: "
                                                            "put the product in the catalog first"))
    if kind == "orders":
        return errors
    warehouses = {code for (code,) in _in(session, (Warehouse.code,), Warehouse.code, {it.fields["warehouse"] for it in items})}
    reasons = set(session.scalars(select(ReasonCode.code).where(ReasonCode.active.is_(True))))
    numbers = {n for (n,) in _in(session, (Rma.number,), Rma.number, [it.key for it in items])}
    trackings = dict(_in(session, (CarrierTracking.tracking_number, CarrierTracking.rma_id), CarrierTracking.tracking_number,
                         [t for it in items for t in it.fields["tracking_numbers"]]))
    orders = dict(_in(session, (Order.number, Order.merchant_id), Order.number,
                      {it.fields["order_number"] for it in items if it.fields["order_number"]}))
    for it in items:
        first = it.lines[0]
        if it.fields["warehouse"] and it.fields["warehouse"] not in warehouses:
            errors.append(RowError(first, "warehouse", f"no warehouse {it.fields['warehouse']}"))
        if it.key in numbers:
            errors.append(RowError(first, "number", f"a return numbered {it.key} exists already"))
        for t in it.fields["tracking_numbers"]:
            if t in trackings:
                errors.append(RowError(first, "tracking_numbers", f"tracking number {t} belongs to another return"))
        order = it.fields["order_number"]
        if order and (order not in orders or orders[order] != merchants.get(it.fields["merchant"], orders.get(order))):
            errors.append(RowError(first, "order_number", f"no order {order} of merchant {it.fields['merchant']}"))
        for ln in it.rows:
            if ln["reason_code"] and ln["reason_code"] not in reasons:
                errors.append(RowError(ln["line"], "reason_code", f"unknown reason code {ln['reason_code']}; known: "
                                                                  f"{', '.join(sorted(reasons))}"))
    return errors


def import_run(session: Session, import_id: int) -> CsvImport | None:
    """One import, without its file's bytes (the screen does not need them)."""
    from sqlalchemy.orm import defer

    return session.scalars(select(CsvImport).options(defer(CsvImport.content)).where(CsvImport.id == import_id)).first()


def recent_imports(session: Session, limit: int = 20) -> list[Any]:
    """The latest imports, newest first, with who uploaded each."""
    return list(session.execute(
        select(CsvImport.id, CsvImport.kind, CsvImport.filename, CsvImport.status, CsvImport.created_at, CsvImport.preview,
               CsvImport.result, User.name.label("uploaded_by"))
        .outerjoin(User, User.id == CsvImport.created_by).order_by(CsvImport.id.desc()).limit(limit)).all())


def applied_before(session: Session, sha256: str, kind: str, but: int | None = None) -> Any:
    """An earlier import of the same file (same bytes, same kind) that was applied, or None."""
    query = (select(CsvImport.id, CsvImport.applied_at, User.name.label("applied_by"))
             .outerjoin(User, User.id == CsvImport.applied_by)
             .where(CsvImport.sha256 == sha256, CsvImport.kind == kind, CsvImport.status == "applied"))
    if but is not None:
        query = query.where(CsvImport.id != but)
    return session.execute(query.order_by(CsvImport.id).limit(1)).first()


def keys_used(session: Session, prefix: str) -> set[str]:
    """The idempotency keys that begin with `prefix` (the items of a file applied before)."""
    return set(session.scalars(select(IdempotencyRecord.key).where(IdempotencyRecord.key.startswith(prefix, autoescape=True))))


@dataclass(frozen=True)
class RmaReferences:
    """What a batch of new returns names, as the database has it (see rma_references)."""

    merchants: dict[str, int]
    channels: dict[str, tuple[int, str]]  # a code as given or in lower case -> the first such channel's id and code
    warehouses: dict[str, tuple[int, int | None]]  # code -> id, the partner organisation running it
    numbers: set[str]  # RMA numbers taken
    trackings: set[str]  # tracking numbers taken
    orders: dict[str, tuple[int, int, int, str | None]]  # number -> id, merchant, customer, customer's reference
    customers: dict[str, int]
    products: dict[str, tuple[int, int | None, str]]  # SKU in capitals -> id, merchant (None: any), SKU as kept
    reasons: set[str]  # the active reason codes
    order_lines: dict[int, dict[int, int]]  # order id -> product id -> the order line that sold it


def rma_references(session: Session, *, merchants: set[str], channels: set[str], warehouses: set[str], numbers: set[str],
                   trackings: set[str], orders: set[str], customers: set[str], skus: set[str]) -> RmaReferences:
    """Everything that `create_rmas` checks a batch of returns against, in one statement (a UNION
    ALL of one small indexed read per kind): a single return over the API costs one read, a file's
    hundred returns one too."""
    none_int, none_text = cast(null(), Integer), cast(null(), String)

    def part(kind: str, code: Any, id_: Any, a: Any = None, b: Any = None, text: Any = None) -> Any:
        return select(literal(kind).label("kind"), code.label("code"), id_.label("id"),
                      (none_int if a is None else a).label("a"), (none_int if b is None else b).label("b"),
                      (none_text if text is None else text).label("text"))

    order_refs = select(Order.number, Order.id, Order.merchant_id, Order.customer_id, Customer.external_ref).join(
        Customer, Customer.id == Order.customer_id).where(Order.number.in_(orders)).subquery()
    rows = session.execute(union_all(
        part("merchant", Merchant.code, Merchant.id).where(Merchant.code.in_(merchants)),
        part("channel", SalesChannel.code, SalesChannel.id).where(
            SalesChannel.code.in_(channels | {c.lower() for c in channels})),
        part("warehouse", Warehouse.code, Warehouse.id, Warehouse.partner_org_id).where(Warehouse.code.in_(warehouses)),
        part("rma", Rma.number, Rma.id).where(Rma.number.in_(numbers)),
        part("tracking", CarrierTracking.tracking_number, CarrierTracking.id).where(
            CarrierTracking.tracking_number.in_(trackings)),
        part("order", order_refs.c.number, order_refs.c.id, order_refs.c.merchant_id, order_refs.c.customer_id,
             order_refs.c.external_ref),
        part("customer", Customer.external_ref, Customer.id).where(Customer.external_ref.in_(customers)),
        part("product", Product.sku, Product.id, Product.merchant_id).where(Product.sku.in_(skus)),
        part("reason", ReasonCode.code, literal(0)).where(ReasonCode.active.is_(True)),
        part("order_line", Order.number, OrderLine.id, OrderLine.product_id, Order.id).select_from(OrderLine).join(
            Order, Order.id == OrderLine.order_id).where(Order.number.in_(orders)))).all()
    refs = RmaReferences({}, {}, {}, set(), set(), {}, {}, {}, set(), {})
    for r in sorted(rows, key=lambda r: (r.kind, r.id)):  # by id: the first channel of a code, the last order line of a product
        if r.kind == "merchant":
            refs.merchants[r.code] = r.id
        elif r.kind == "channel":
            refs.channels.setdefault(r.code, (r.id, r.code))
        elif r.kind == "warehouse":
            refs.warehouses[r.code] = (r.id, r.a)
        elif r.kind == "rma":
            refs.numbers.add(r.code)
        elif r.kind == "tracking":
            refs.trackings.add(r.code)
        elif r.kind == "order":
            refs.orders[r.code] = (r.id, r.a, r.b, r.text)
        elif r.kind == "customer":
            refs.customers[r.code] = r.id
        elif r.kind == "product":
            refs.products[r.code.upper()] = (r.id, r.a, r.code)
        elif r.kind == "reason":
            refs.reasons.add(r.code)
        else:
            refs.order_lines.setdefault(r.b, {})[r.a] = r.id
    return refs


def key_records(session: Session, keys: Iterable[str]) -> dict[str, Any]:
    """The idempotency records of these keys (operation, fingerprint, actor_id, result), by key."""
    return {r.key: r for r in _in(session, (IdempotencyRecord.key, IdempotencyRecord.operation, IdempotencyRecord.fingerprint,
                                             IdempotencyRecord.actor_id, IdempotencyRecord.result),
                                  IdempotencyRecord.key, keys)}
