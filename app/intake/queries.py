"""Reads for the CSV import: what a file names that the database does not have (so that the
preview can name the line), the imports for the console's screens."""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.models import User
from app.catalog.models import Merchant, Product, ProductBarcode, SalesChannel, Warehouse
from app.disposition.models import ReasonCode
from app.intake.domain import Item, RowError
from app.intake.models import CsvImport
from app.ledger.models import IdempotencyRecord
from app.orders.models import CarrierTracking, Order, Rma

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
