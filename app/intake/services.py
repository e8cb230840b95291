"""The intake use cases: products with their barcodes, and returns (RMAs) that a storefront, a
marketplace or a returns portal authorises (the dock then finds one by its number, tracking
number or order number). The API calls them, and so does the CSV import (`upload_import`,
`apply_import`, at the end). Each is one transaction, idempotent, audited, and publishes its event."""
from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.auth.roles import Actor
from app.catalog.domain import normalize_gtin
from app.catalog.models import Category, Merchant, Product, ProductBarcode, SalesChannel, Warehouse
from app.catalog.queries import category_codes
from app.disposition.models import ReasonCode
from app.errors import Conflict, DomainError, IdempotencyKeyReused, InvalidItems, NotFound, NotPermitted, ValidationFailed
from app.db import as_utc, end_transaction, unit_of_work, utcnow
from app.ledger.idempotency import LateClaim, Result, check_key, fingerprint, rebuilt, run_idempotent, stored
from app.ledger.writer import audit_row, event_row
from app.orders.models import CarrierTracking, Customer, Order, OrderLine, Rma, RmaLine, ShippedSerial
from app.intake.domain import (CARRIER_STATUSES, KINDS, MAX_ERRORS_KEPT, Item, Parsed, RowError, check_upload, parse,
                                upload_name)
from app.intake.models import CsvImport
from app.intake.queries import RmaReferences, key_records, keys_used, missing_references, rma_references
from app.receiving.models import Parcel
from app.refunds.domain import RESOLUTIONS
from app.rows import Insert, allocate_ids, insert_row, write, write_many

MAX_LINES = 200
_CODE = re.compile(r"^[A-Z0-9][A-Z0-9._/-]{0,63}$")


@dataclass(frozen=True)
class LineIn:
    sku: str
    quantity: int
    reason_code: str
    resolution: str = "refund"  # app.refunds.domain.RESOLUTIONS
    exchange_sku: str | None = None


@dataclass(frozen=True)
class RmaLineOut:
    id: int
    sku: str
    quantity: int
    reason_code: str
    order_line_id: int | None
    resolution: str = "refund"
    exchange_sku: str | None = None


def _line_params(lines: list[LineIn]) -> list[list[Any]]:
    """The lines as the use cases compare and keep them: SKUs in capitals; an exchange's SKU with it."""
    out = []
    for n, ln in enumerate(lines):
        if ln.resolution not in RESOLUTIONS:
            raise ValidationFailed(f"Line {n + 1}: the resolution must be one of {', '.join(RESOLUTIONS)}.")
        swap = (ln.exchange_sku or "").strip().upper() or None
        if (ln.resolution == "exchange") != (swap is not None):
            raise ValidationFailed(f"Line {n + 1}: an exchange names the SKU to ship instead (exchange_sku), "
                                   "and only an exchange does.")
        out.append([ln.sku.strip().upper(), ln.quantity, ln.reason_code.strip(), ln.resolution, swap])
    return out


@dataclass(frozen=True)
class RmaRequest:
    """One return to authorise (see create_rma), with the idempotency key it is asked under."""

    idempotency_key: str | None
    number: str
    merchant: str
    channel: str
    warehouse: str
    lines: list[LineIn]
    order_number: str | None = None
    customer_ref: str | None = None
    customer_name: str | None = None
    tracking_numbers: list[str] | None = None
    carrier: str = "unknown"


@dataclass(frozen=True)
class RmaCreated(Result):
    id: int
    number: str
    status: str
    merchant: str
    channel: str
    warehouse: str
    order_number: str | None
    customer_ref: str | None
    lines: tuple[RmaLineOut, ...]
    tracking_numbers: tuple[str, ...]
    created_at: str


def _code(value: str, what: str) -> str:
    code = (value or "").strip().upper()
    if not _CODE.match(code):
        raise ValidationFailed(f"The {what} must be 1-64 letters, digits, '.', '_', '/' or '-' (got {value!r}).")
    return code


def _rma_params(r: RmaRequest) -> dict[str, Any]:
    """What a return asks, checked and normalised as it is kept (and fingerprinted)."""
    trackings = sorted({_code(t, "tracking number") for t in r.tracking_numbers or []})
    if not r.lines or len(r.lines) > MAX_LINES:
        raise ValidationFailed(f"A return has 1 to {MAX_LINES} lines.")
    for n, line in enumerate(r.lines):
        if not 1 <= line.quantity <= 10_000:
            raise ValidationFailed(f"Line {n + 1}: the quantity must be 1 to 10000.")
    return {"number": _code(r.number, "RMA number"), "merchant": _code(r.merchant, "merchant"),
            "channel": _code(r.channel, "channel"), "warehouse": _code(r.warehouse, "warehouse"),
            "order_number": _code(r.order_number, "order number") if r.order_number else None,
            "customer_ref": (r.customer_ref or "").strip() or None, "customer_name": r.customer_name,
            "trackings": trackings, "carrier": r.carrier, "lines": _line_params(r.lines)}


def create_rma(session: Session, actor: Actor, *, number: str, merchant: str, channel: str, warehouse: str,
               lines: list[LineIn], order_number: str | None = None, customer_ref: str | None = None,
               customer_name: str | None = None, tracking_numbers: list[str] | None = None, carrier: str = "unknown",
               idempotency_key: str | None) -> RmaCreated:
    """Authorise a return: its lines (SKU, quantity, the customer's reason), the warehouse it is
    expected at, its tracking numbers. Numbers are kept in capitals, as the dock scans them. The
    same request again (same key) answers the first answer; a number already used is refused."""
    (made,) = create_rmas(session, actor, [RmaRequest(
        idempotency_key, number, merchant, channel, warehouse, lines, order_number, customer_ref, customer_name,
        tracking_numbers, carrier)])
    if isinstance(made, DomainError):
        raise made
    return made


CREATE_RMA = "create_rma"  # the operation of a return's key: one return asked alone or in a batch is the same request


def create_rmas(session: Session, actor: Actor, requests: list[RmaRequest]) -> list[RmaCreated | DomainError]:
    """Authorise returns, each on its own terms: the answer of each, in order, is the return created
    (or, for a key used before with the same request, the first answer, `replayed`) or why it was
    refused. The good ones are written in one transaction, in a few statements for the whole batch
    (one read of what they name, one of their keys' records, one INSERT a table), so that a file's
    thousands of returns take seconds; `create_rma` is a batch of one.

    Exactly one effect per key: each return's key record is written with it. A batch that meets a
    concurrent writer of one of its numbers, tracking numbers or keys (a unique constraint) is
    rolled back and its returns asked one by one, where the loser of a key replays the winner's."""
    if "rmas:write" not in actor.scopes and not actor.can("admin"):
        raise NotPermitted("Creating returns needs the rmas:write scope.")
    asked: list[tuple[LateClaim[RmaCreated], dict[str, Any]] | DomainError] = []
    for r in requests:
        try:
            params = _rma_params(r)
            asked.append((LateClaim(check_key(r.idempotency_key), CREATE_RMA, fingerprint(CREATE_RMA, params), actor,
                                    RmaCreated), params))
        except DomainError as exc:
            asked.append(exc)
    try:
        with unit_of_work(session):
            return _create_rmas(session, actor, asked)
    except IntegrityError:
        if len(requests) > 1:
            return [made for r in requests for made in create_rmas(session, actor, [r])]
        claim = asked[0]
        assert not isinstance(claim, DomainError)  # nothing was written for a refused request
        try:
            winner = claim[0].replayed_alone(session)
            end_transaction(session)
        except IdempotencyKeyReused as exc:
            end_transaction(session)
            return [exc]
        return [winner or Conflict("Somebody else created this return, or one with its number or tracking number, "
                                   "at the same moment. Nothing was changed: look again.")]


def _create_rmas(session: Session, actor: Actor,
                 asked: list[tuple[LateClaim[RmaCreated], dict[str, Any]] | DomainError]) -> list[RmaCreated | DomainError]:
    """create_rmas's transaction: replays, checks, and the rows of the good returns."""
    fresh = [a for a in asked if not isinstance(a, DomainError)]
    refs = rma_references(
        session, merchants={p["merchant"] for _, p in fresh}, channels={p["channel"] for _, p in fresh},
        warehouses={p["warehouse"] for _, p in fresh}, numbers={p["number"] for _, p in fresh},
        trackings={t for _, p in fresh for t in p["trackings"]},
        orders={p["order_number"] for _, p in fresh if p["order_number"]},
        customers={p["customer_ref"] for _, p in fresh if p["customer_ref"]},
        skus={sku for _, p in fresh for sku in _line_skus(p["lines"])})
    # The keys' records after: a return that a concurrent request with its key committed since the
    # first read is found here as that request's, not refused as a number taken.
    records = key_records(session, [claim.key for claim, _ in fresh])
    answers: list[RmaCreated | DomainError | None] = []
    accepted: list[tuple[int, LateClaim[RmaCreated], dict[str, Any], dict[str, Any]]] = []
    new_customers: dict[str, str] = {}  # reference -> name
    for a in asked:
        if isinstance(a, DomainError):
            answers.append(a)
            continue
        claim, params = a
        try:
            if (rec := records.get(claim.key)) is not None:
                answers.append(claim.replay(rec.operation, rec.fingerprint, rec.actor_id, rec.result))
                continue
            found = _check_rma(actor, params, refs)
        except DomainError as exc:
            answers.append(exc)
            continue
        refs.numbers.add(params["number"])  # a later return of the batch may not take them again
        refs.trackings.update(params["trackings"])
        ref = params["customer_ref"]
        if ref and ref not in refs.customers:
            new_customers.setdefault(ref, (params["customer_name"] or ref).strip()[:120])
        accepted.append((len(answers), claim, params, found))
        answers.append(None)
    customer_ids = dict(zip(new_customers, allocate_ids(session, Customer, len(new_customers))))
    rma_ids = allocate_ids(session, Rma, len(accepted))
    line_ids = iter(allocate_ids(session, RmaLine, sum(len(p["lines"]) for _, _, p, _ in accepted)))
    rows: dict[str, list[Insert]] = {"customers": [insert_row(Customer, {"id": cid, "external_ref": ref, "name": new_customers[ref]})
                                                   for ref, cid in customer_ids.items()],
                                     "rmas": [], "lines": [], "trackings": [], "audit": [], "events": [], "keys": []}
    for (at, claim, params, found), rma_id in zip(accepted, rma_ids):
        made, made_rows = _rma_rows(actor, rma_id, line_ids, params, found,
                                    customer_ids.get(params["customer_ref"] or "") or found["customer_id"])
        for table, row in made_rows:
            rows[table].append(row)
        rows["keys"].append(claim.record(made))
        answers[at] = made
    write_many(session, [row for table in rows.values() for row in table])
    return [a for a in answers if a is not None]


def _check_rma(actor: Actor, params: dict[str, Any], refs: RmaReferences) -> dict[str, Any]:
    """What one return names, checked against the database's `refs`: its merchant, channel,
    warehouse, order and customer, as ids; refused (a DomainError) when any is wrong or taken."""
    merchant, channel, warehouse, number = params["merchant"], params["channel"], params["warehouse"], params["number"]
    merchant_id = refs.merchants.get(merchant)
    if merchant_id is None or not actor.serves(merchant_id):
        raise ValidationFailed(f"No merchant {merchant}." if merchant_id is None
                               else f"This key may not write for merchant {merchant}.")
    channels = [c for c in (refs.channels.get(channel), refs.channels.get(channel.lower())) if c]
    if not channels:
        raise ValidationFailed(f"No sales channel {channel}.")
    place = refs.warehouses.get(warehouse)
    if place is None or (actor.is_partner and place[1] != actor.partner_org_id):
        raise ValidationFailed(f"No warehouse {warehouse}.")
    if number in refs.numbers:
        raise Conflict(f"A return numbered {number} exists already.")
    taken = sorted(t for t in params["trackings"] if t in refs.trackings)
    if taken:
        raise Conflict(f"Tracking number {', '.join(taken)} belongs to another return.")
    products = _line_products(params["lines"], merchant_id, refs)
    order = refs.orders.get(params["order_number"] or "")
    if params["order_number"] and (order is None or order[1] != merchant_id):
        raise ValidationFailed(f"No order {params['order_number']} of merchant {merchant}.")
    ref = params["customer_ref"]
    return {"merchant_id": merchant_id, "channel": min(channels), "warehouse_id": place[0], "order": order,
            "customer_id": refs.customers.get(ref) if ref else order[2] if order else None,
            "order_lines": refs.order_lines.get(order[0], {}) if order else {},
            "products": products}


def _line_skus(lines: list[list[Any]]) -> set[str]:
    return {sku for sku, *_ in lines} | {swap for *_, swap in lines if swap}


def _line_products(lines: list[list[Any]], merchant_id: int, refs: RmaReferences) -> dict[str, tuple[int, int | None, str]]:
    """The products of the lines (and of the exchanges), all the merchant's; the reason codes known."""
    skus = _line_skus(lines)
    unknown = sorted(s for s in skus if s not in refs.products or refs.products[s][1] not in (None, merchant_id))
    if unknown:
        raise ValidationFailed(f"Unknown SKU {', '.join(unknown)} for this return's merchant: put the product in the catalog first.")
    bad = sorted({r for _, _, r, _, _ in lines} - refs.reasons)
    if bad:
        raise ValidationFailed(f"Unknown reason code {', '.join(bad)}. Known: {', '.join(sorted(refs.reasons))}.")
    return {sku: refs.products[sku] for sku in skus}


def _rma_rows(actor: Actor, rma_id: int, line_ids: Iterator[int], params: dict[str, Any], found: dict[str, Any],
              customer_id: int | None) -> tuple[RmaCreated, list[tuple[str, Insert]]]:
    """One checked return's rows (the return, its lines and tracking numbers, its audit entry and
    `rma.created` event) and the answer it gives."""
    now, order, products = utcnow(), found["order"], found["products"]
    rows = [("rmas", insert_row(Rma, {
        "id": rma_id, "number": params["number"], "merchant_id": found["merchant_id"], "channel_id": found["channel"][0],
        "warehouse_id": found["warehouse_id"], "order_id": order[0] if order else None, "customer_id": customer_id,
        "status": "authorized", "created_at": now}))]
    out = []
    for sku, qty, reason, resolution, swap in params["lines"]:
        line_id, product_id = next(line_ids), products[sku][0]
        order_line = found["order_lines"].get(product_id)
        rows.append(("lines", insert_row(RmaLine, {
            "id": line_id, "rma_id": rma_id, "product_id": product_id, "order_line_id": order_line, "quantity": qty,
            "reason_code": reason, "resolution": resolution, "exchange_sku": swap})))
        out.append(RmaLineOut(line_id, products[sku][2], qty, reason, order_line, resolution, swap))
    rows += [("trackings", insert_row(CarrierTracking, {"tracking_number": t, "carrier": params["carrier"][:32],
                                                        "rma_id": rma_id, "status": "label_created"}))
             for t in params["trackings"]]
    rows.append(("audit", audit_row(actor, "rma.created", "rma", rma_id, warehouse_id=found["warehouse_id"],
                                    details={"before": None, "after": params})))
    rows.append(("events", event_row("rma.created", "rma", rma_id, {
        "rma_id": rma_id, "number": params["number"], "merchant": params["merchant"], "warehouse": params["warehouse"],
        "status": "authorized", "lines": params["lines"], "tracking_numbers": params["trackings"]})))
    made = RmaCreated(
        id=rma_id, number=params["number"], status="authorized", merchant=params["merchant"], channel=found["channel"][1],
        warehouse=params["warehouse"], order_number=params["order_number"],
        customer_ref=params["customer_ref"] or (order[3] if order else None), lines=tuple(out),
        tracking_numbers=tuple(params["trackings"]), created_at=now.isoformat())
    return made, rows


MAX_ITEMS = 500  # per bulk call
RMA_BATCH = 100  # returns a transaction when a file of them is applied


@dataclass(frozen=True)
class ProductIn:
    sku: str
    name: str
    category: str
    unit_value: Decimal
    merchant: str | None = None
    serial_tracked: bool = False
    lot_tracked: bool = False
    barcodes: tuple[str, ...] = ()


@dataclass(frozen=True)
class ItemOutcome:
    """What a bulk call did with one item: `created`, `updated` or `unchanged`."""

    index: int
    key: str
    id: int
    outcome: str


@dataclass(frozen=True)
class BulkDone(Result):
    items: tuple[ItemOutcome, ...]


def _refused(errors: list[dict[str, str]], total: int, what: str, why: str) -> InvalidItems:
    """A bulk call refused whole: how many of its items are bad, each named in `errors`."""
    bad = len({e["field"].split(".")[1] for e in errors})
    return InvalidItems(f"{bad} of {total} {what} {why}: see errors. Nothing was written.", errors)


def _bad_time(at: datetime) -> str | None:
    """Why a time another system sends is not taken: it must carry its offset and fall in 2000-2100
    (a year-10000 time stored by PostgreSQL could not be read back)."""
    if at.tzinfo is None:
        return "a time with its offset (UTC: ...Z)"
    if not datetime(2000, 1, 1, tzinfo=timezone.utc) <= at <= datetime(2100, 1, 1, tzinfo=timezone.utc):
        return "a time between 2000 and 2100"
    return None


def _bulk_size(items: list[Any], what: str) -> None:
    if not items or len(items) > MAX_ITEMS:
        raise ValidationFailed(f"Send 1 to {MAX_ITEMS} {what} per call.")


def put_products(session: Session, actor: Actor, *, products: list[ProductIn], idempotency_key: str | None) -> BulkDone:
    """Create or update products by SKU, with their barcodes (GTIN-8/12/13/14, kept as GTIN-14 so
    every spelling of one scans as the same product; a barcode listed is added, none is taken away).
    A category is one of the categories table's (read once per call); a retired one takes no new
    product, but a product already in it may be put again unchanged in category.
    Every item is checked first: one bad item refuses the whole call, each bad item named."""
    if "catalog:write" not in actor.scopes and not actor.can("admin"):
        raise NotPermitted("Writing the catalog needs the catalog:write scope.")
    _bulk_size(products, "products")
    errors: list[dict[str, str]] = []
    clean: list[ProductIn] = []
    seen: dict[str, int] = {}
    owner_of_code: dict[str, str] = {}
    for i, p in enumerate(products):
        sku = (p.sku or "").strip().upper()
        fail = lambda field, message: errors.append({"field": f"products.{i}.{field}", "message": message})  # noqa: E731
        if not _CODE.match(sku):
            fail("sku", "1-64 letters, digits, '.', '_', '/' or '-'")
        elif sku in seen:
            fail("sku", f"{sku} is also item {seen[sku]} of this call")
        seen.setdefault(sku, i)
        value = p.unit_value
        if not value.is_finite() or value < 0 or value >= Decimal("1e8") or value != value.quantize(Decimal("0.01")):
            fail("unit_value", "a decimal of at least 0.00, with at most 2 decimals")
        name = " ".join((p.name or "").split())
        if not name or len(name) > 200:
            fail("name", "1-200 characters")
        codes = []
        for code in p.barcodes:
            gtin = normalize_gtin(code)
            if gtin is None:
                fail("barcodes", f"{code!r} is not a GTIN, UPC or EAN with a valid check digit")
            elif owner_of_code.setdefault(gtin, sku) != sku:
                fail("barcodes", f"{code} is also listed for {owner_of_code[gtin]}")
            else:
                codes.append(gtin)
        clean.append(ProductIn(sku, name, p.category, value, (p.merchant or "").strip().upper() or None,
                               bool(p.serial_tracked), bool(p.lot_tracked), tuple(sorted(set(codes)))))
    if errors:
        raise _refused(errors, len(products), "products", "are not valid")
    params = {"products": [[p.sku, p.name, p.category, str(p.unit_value), p.merchant, p.serial_tracked, p.lot_tracked,
                            list(p.barcodes)] for p in clean]}

    def work() -> BulkDone:
        merchants = {m.code: m for m in session.scalars(select(Merchant).where(Merchant.code.in_({p.merchant for p in clean if p.merchant})))}
        existing = {p.sku: p for p in session.scalars(select(Product).where(Product.sku.in_([p.sku for p in clean]))
                                                      .with_for_update())}
        taken = {b.code: b.product.sku for b in session.scalars(select(ProductBarcode).where(
            ProductBarcode.code.in_([c for p in clean for c in p.barcodes])))}
        active: dict[str, bool] = dict(session.execute(select(Category.code, Category.active)).all())  # once per call
        problems: list[dict[str, str]] = []
        for i, p in enumerate(clean):
            if p.category not in active:
                offered = ", ".join(sorted(c for c, on in active.items() if on))
                problems.append({"field": f"products.{i}.category", "message": f"no category {p.category[:40]!r}: one of {offered}"})
            elif not active[p.category] and (p.sku not in existing or existing[p.sku].category != p.category):
                problems.append({"field": f"products.{i}.category",
                                 "message": f"category {p.category} is retired: it takes no new products"})
            m = merchants.get(p.merchant) if p.merchant else None
            if p.merchant and (m is None or not actor.serves(m.id)):
                problems.append({"field": f"products.{i}.merchant", "message": f"no merchant {p.merchant} this key may write for"})
            elif p.merchant is None and actor.merchant_ids is not None:
                problems.append({"field": f"products.{i}.merchant", "message": "this key is limited to merchants: name one"})
            old = existing.get(p.sku)
            if old is not None and old.merchant_id is not None and (m is None or old.merchant_id != m.id):
                problems.append({"field": f"products.{i}.merchant", "message": f"{p.sku} belongs to another merchant"})
            elif old is not None and old.merchant_id is None and actor.merchant_ids is not None:
                problems.append({"field": f"products.{i}.merchant",
                                 "message": f"{p.sku} is shared by every merchant: only a key for every merchant changes it"})
            for code in p.barcodes:
                if taken.get(code, p.sku) != p.sku:
                    problems.append({"field": f"products.{i}.barcodes", "message": f"{code} is the barcode of {taken[code]}"})
        if problems:
            raise _refused(problems, len(clean), "products", "cannot be written")
        outcomes, audits = [], []
        for i, p in enumerate(clean):
            m = merchants.get(p.merchant) if p.merchant else None
            values = {"name": p.name, "category": p.category, "unit_value": p.unit_value, "serial_tracked": p.serial_tracked,
                      "lot_tracked": p.lot_tracked, "merchant_id": m.id if m else None}
            row = existing.get(p.sku)
            if row is None:
                row = Product(sku=p.sku, **values)
                session.add(row)
                outcome, before = "created", None
            else:
                before = {k: str(getattr(row, k)) for k in values}
                changed = {k: v for k, v in values.items() if getattr(row, k) != v}
                for k, v in changed.items():
                    setattr(row, k, v)
                outcome = "updated" if changed else "unchanged"
            new_codes = [c for c in p.barcodes if c not in taken]
            for code in new_codes:
                row.barcodes.append(ProductBarcode(code=code, kind=_barcode_kind(code)))
            if new_codes and outcome == "unchanged":
                outcome = "updated"
            session.flush()
            if outcome != "unchanged":
                audits.append(audit_row(actor, f"product.{outcome}", "product", row.id, details={
                    "before": before, "after": {k: str(v) for k, v in values.items()} | {"barcodes_added": new_codes}}))
            outcomes.append(ItemOutcome(i, p.sku, row.id, outcome))
        write(session, audits)
        return BulkDone(tuple(outcomes))

    return run_idempotent(session, actor, idempotency_key, "put_products", params, work, result_type=BulkDone)


def _barcode_kind(gtin14: str) -> str:
    """How the barcode is printed, from its GTIN-14: a UPC (12 digits), an EAN (13 or 8) or a GTIN-14."""
    if gtin14.startswith("00") and not gtin14.startswith("000000"):
        return "upc"
    return "ean" if gtin14.startswith("0") else "gtin"


@dataclass(frozen=True)
class OrderLineIn:
    sku: str
    quantity: int
    unit_price: Decimal
    serials: tuple[str, ...] = ()


@dataclass(frozen=True)
class OrderIn:
    number: str
    merchant: str
    channel: str
    customer_ref: str
    customer_name: str
    currency: str
    lines: tuple[OrderLineIn, ...]
    placed_at: datetime | None = None


def put_orders(session: Session, actor: Actor, *, orders: list[OrderIn], idempotency_key: str | None) -> BulkDone:
    """Create orders with their lines and, as they ship, the serials shipped per line. An order
    sent again with more serials gets them added (`updated`); the same order again is `unchanged`;
    other lines than it has is refused. A serial shipped is what the dock matches a returned
    item's serial against. One bad item refuses the whole call, each bad item named."""
    if "orders:write" not in actor.scopes and not actor.can("admin"):
        raise NotPermitted("Writing orders needs the orders:write scope.")
    _bulk_size(orders, "orders")
    errors: list[dict[str, str]] = []
    clean: list[OrderIn] = []
    seen: dict[str, int] = {}
    for i, o in enumerate(orders):
        fail = lambda field, message: errors.append({"field": f"orders.{i}.{field}", "message": message})  # noqa: E731
        number = (o.number or "").strip().upper()
        if not _CODE.match(number):
            fail("number", "1-64 letters, digits, '.', '_', '/' or '-'")
        elif number in seen:
            fail("number", f"{number} is also item {seen[number]} of this call")
        seen.setdefault(number, i)
        lines = []
        skus: set[str] = set()
        for n, ln in enumerate(o.lines):
            sku = (ln.sku or "").strip().upper()
            if sku in skus:
                fail(f"lines.{n}.sku", f"{sku} is on another line of this order: one line per SKU")
            skus.add(sku)
            if not 1 <= ln.quantity <= 10_000:
                fail(f"lines.{n}.quantity", "1 to 10000")
            if ln.unit_price < 0 or ln.unit_price != ln.unit_price.quantize(Decimal("0.01")):
                fail(f"lines.{n}.unit_price", "a decimal of at least 0.00, with at most 2 decimals")
            serials = tuple(sorted({s.strip() for s in ln.serials if s.strip()}))
            if any(len(s) > 64 for s in serials):
                fail(f"lines.{n}.serials", "a serial has at most 64 characters")
            if len(serials) > ln.quantity:
                fail(f"lines.{n}.serials", f"{len(serials)} serials for a quantity of {ln.quantity}")
            lines.append(OrderLineIn(sku, ln.quantity, ln.unit_price, serials))
        if not lines:
            fail("lines", "an order has at least one line")
        bad_time = _bad_time(o.placed_at) if o.placed_at is not None else None
        if bad_time:
            fail("placed_at", bad_time)
        clean.append(OrderIn(number, (o.merchant or "").strip().upper(), (o.channel or "").strip(), (o.customer_ref or "").strip(),
                             " ".join((o.customer_name or "").split())[:120] or (o.customer_ref or "").strip(),
                             (o.currency or "USD").strip().upper(), tuple(lines),
                             o.placed_at.astimezone(timezone.utc) if o.placed_at and not bad_time else None))
    if errors:
        raise _refused(errors, len(orders), "orders", "are not valid")
    params = {"orders": [[o.number, o.merchant, o.channel, o.customer_ref, o.customer_name, o.currency,
                          o.placed_at.isoformat() if o.placed_at else None,
                          [[ln.sku, ln.quantity, str(ln.unit_price), list(ln.serials)] for ln in o.lines]] for o in clean]}

    def work() -> BulkDone:
        merchants = {m.code: m for m in session.scalars(select(Merchant).where(Merchant.code.in_({o.merchant for o in clean})))}
        channels = {c.code.upper(): c for c in session.scalars(select(SalesChannel))}
        products = {p.sku: p for p in session.scalars(select(Product).where(
            Product.sku.in_({ln.sku for o in clean for ln in o.lines})))}
        existing = {o.number: o for o in session.scalars(select(Order).where(Order.number.in_([o.number for o in clean]))
                                                         .with_for_update())}
        customers = {c.external_ref: c for c in session.scalars(select(Customer).where(
            Customer.external_ref.in_({o.customer_ref for o in clean})))}
        problems: list[dict[str, str]] = []
        for i, o in enumerate(clean):
            fail = lambda field, message: problems.append({"field": f"orders.{i}.{field}", "message": message})  # noqa: E731
            m = merchants.get(o.merchant)
            if m is None or not actor.serves(m.id):
                fail("merchant", f"no merchant {o.merchant} this key may write for")
            if o.channel.upper() not in channels:
                fail("channel", f"no sales channel {o.channel}")
            for n, ln in enumerate(o.lines):
                p = products.get(ln.sku)
                if p is None or (m is not None and p.merchant_id not in (None, m.id)):
                    fail(f"lines.{n}.sku", f"unknown SKU {ln.sku} for merchant {o.merchant}: put it in the catalog first")
            old = existing.get(o.number)
            if old is not None:
                has = sorted((ol.product.sku, ol.quantity, Decimal(ol.unit_price)) for ol in old.lines)
                if has != sorted((ln.sku, ln.quantity, ln.unit_price) for ln in o.lines) or (m and old.merchant_id != m.id):
                    fail("lines", f"order {o.number} exists with other lines or another merchant: an order is not changed, "
                                  "only its shipped serials are added")
                by_sku = {ol.product.sku: ol for ol in old.lines}
                for n, ln in enumerate(o.lines):
                    ol = by_sku.get(ln.sku)
                    if ol is not None and len({s.serial for s in ol.serials} | set(ln.serials)) > ol.quantity:
                        fail(f"lines.{n}.serials", f"more serials than the {ol.quantity} shipped")
        if problems:
            raise _refused(problems, len(clean), "orders", "cannot be written")
        outcomes, audits = [], []
        for i, o in enumerate(clean):
            old = existing.get(o.number)
            if old is None:
                customer = customers.get(o.customer_ref)
                if customer is None:
                    customer = customers[o.customer_ref] = Customer(external_ref=o.customer_ref, name=o.customer_name)
                    session.add(customer)
                order = Order(number=o.number, merchant_id=merchants[o.merchant].id, channel_id=channels[o.channel.upper()].id,
                              customer=customer, currency=o.currency, placed_at=o.placed_at or utcnow(),
                              lines=[OrderLine(product_id=products[ln.sku].id, quantity=ln.quantity, unit_price=ln.unit_price,
                                               serials=[ShippedSerial(serial=s) for s in ln.serials]) for ln in o.lines])
                session.add(order)
                outcome, added = "created", [s for ln in o.lines for s in ln.serials]
            else:
                order, added = old, []
                by_sku = {ol.product.sku: ol for ol in old.lines}
                for ln in o.lines:
                    have = {s.serial for s in by_sku[ln.sku].serials}
                    for s in ln.serials:
                        if s not in have:
                            by_sku[ln.sku].serials.append(ShippedSerial(serial=s))
                            added.append(s)
                outcome = "updated" if added else "unchanged"
            session.flush()
            if outcome != "unchanged":
                audits.append(audit_row(actor, f"order.{outcome}", "order", order.id,
                                        details={"number": o.number, "serials_added": added}))
            outcomes.append(ItemOutcome(i, o.number, order.id, outcome))
        write(session, audits)
        return BulkDone(tuple(outcomes))

    return run_idempotent(session, actor, idempotency_key, "put_orders", params, work, result_type=BulkDone)


@dataclass(frozen=True)
class CarrierEventIn:
    tracking_number: str
    status: str
    at: datetime


def record_carrier_events(session: Session, actor: Actor, *, events: list[CarrierEventIn],
                          idempotency_key: str | None) -> BulkDone:
    """What the carriers say about return parcels: each tracking number's newest status and time
    (an event older than the one kept changes nothing: carriers send out of order). A return on
    its way is `in_transit`; a parcel delivered to the dock and not yet received shows as delivered,
    with its age, until it is scanned. One bad item refuses the call, each bad item named."""
    if "carrier:write" not in actor.scopes and not actor.can("admin"):
        raise NotPermitted("Reporting carrier events needs the carrier:write scope.")
    _bulk_size(events, "carrier events")
    errors: list[dict[str, str]] = []
    clean = []
    for i, e in enumerate(events):
        number = (e.tracking_number or "").strip().upper()
        if not _CODE.match(number):
            errors.append({"field": f"events.{i}.tracking_number", "message": "1-64 letters, digits, '.', '_', '/' or '-'"})
        if e.status not in CARRIER_STATUSES:
            errors.append({"field": f"events.{i}.status", "message": f"one of {', '.join(CARRIER_STATUSES)}"})
        if (why := _bad_time(e.at)):
            errors.append({"field": f"events.{i}.at", "message": why})
        clean.append(CarrierEventIn(number, e.status, e.at if why else e.at.astimezone(timezone.utc)))
    if errors:
        raise _refused(errors, len(events), "events", "are not valid")
    params = {"events": [[e.tracking_number, e.status, e.at.isoformat()] for e in clean]}

    def work() -> BulkDone:
        trackings = {t.tracking_number: t for t in session.scalars(
            select(CarrierTracking).where(CarrierTracking.tracking_number.in_({e.tracking_number for e in clean}))
            .order_by(CarrierTracking.id).with_for_update())}
        problems = []
        for i, e in enumerate(clean):
            t = trackings.get(e.tracking_number)
            if t is None or t.rma is None or not actor.serves(t.rma.merchant_id):
                problems.append({"field": f"events.{i}.tracking_number",
                                 "message": f"no return has tracking number {e.tracking_number}"})
        if problems:
            raise _refused(problems, len(clean), "events", "name no return")
        outcomes, rows = [], []
        for i, e in sorted(enumerate(clean), key=lambda ie: ie[1].at):
            t = trackings[e.tracking_number]
            last = as_utc(t.last_event_at)
            if last is not None and e.at <= last:
                outcomes.append(ItemOutcome(i, e.tracking_number, t.id, "unchanged"))
                continue
            t.status, t.last_event_at = e.status, e.at
            rma = t.rma
            assert rma is not None
            if e.status != "label_created":
                # Conditional, so that a return cancelled meanwhile stays cancelled (the row's lock
                # re-reads its status before this applies).
                session.execute(update(Rma).where(Rma.id == rma.id, Rma.status == "authorized").values(status="in_transit"))
            rows.append(event_row(f"rma.carrier_{e.status}", "rma", rma.id, {
                "rma_id": rma.id, "number": rma.number, "tracking_number": t.tracking_number, "carrier": t.carrier,
                "status": e.status, "at": e.at.isoformat()}))
            outcomes.append(ItemOutcome(i, e.tracking_number, t.id, "updated"))
        session.flush()
        write(session, rows)
        return BulkDone(tuple(sorted(outcomes, key=lambda o: o.index)))

    return run_idempotent(session, actor, idempotency_key, "record_carrier_events", params, work, result_type=BulkDone)


@dataclass(frozen=True)
class RmaChanged(Result):
    id: int
    number: str
    status: str
    lines: tuple[RmaLineOut, ...]


def _rma_before_receipt(session: Session, actor: Actor, number: str, doing: str) -> Rma:
    """The return, locked, while nothing of it has been received yet (NotFound / Conflict otherwise)."""
    rma = session.scalars(select(Rma).where(Rma.number == _code(number, "RMA number")).with_for_update()).first()
    if rma is None or not actor.serves(rma.merchant_id) or (actor.is_partner and rma.warehouse.partner_org_id != actor.partner_org_id):
        raise NotFound(f"No return {number}.")
    if rma.status not in ("authorized", "in_transit"):
        raise Conflict(f"Return {rma.number} is {rma.status}: it can no longer be {doing}.")
    if session.scalars(select(Parcel.id).where(Parcel.rma_id == rma.id).limit(1)).first() is not None:
        raise Conflict(f"Return {rma.number} is being received at the dock: it can no longer be {doing}.")
    return rma


def cancel_rma(session: Session, actor: Actor, *, number: str, idempotency_key: str | None) -> RmaChanged:
    """Cancel a return before the dock has received any of it; a parcel that still comes is
    received blind and goes to a supervisor."""
    if "rmas:write" not in actor.scopes and not actor.can("admin"):
        raise NotPermitted("Cancelling returns needs the rmas:write scope.")

    def work() -> RmaChanged:
        rma = _rma_before_receipt(session, actor, number, "cancelled")
        rma.status, rma.closed_at = "cancelled", utcnow()
        session.flush()
        write(session, [audit_row(actor, "rma.cancelled", "rma", rma.id, warehouse_id=rma.warehouse_id),
                        event_row("rma.cancelled", "rma", rma.id, {"rma_id": rma.id, "number": rma.number})])
        return RmaChanged(rma.id, rma.number, rma.status, _lines_out(rma))

    return run_idempotent(session, actor, idempotency_key, "cancel_rma", {"number": number.strip().upper()}, work,
                          result_type=RmaChanged)


def change_rma_lines(session: Session, actor: Actor, *, number: str, lines: list[LineIn], idempotency_key: str | None) -> RmaChanged:
    """Replace the items a return expects, before the dock has received any of it."""
    if "rmas:write" not in actor.scopes and not actor.can("admin"):
        raise NotPermitted("Changing returns needs the rmas:write scope.")
    if not lines or len(lines) > MAX_LINES:
        raise ValidationFailed(f"A return has 1 to {MAX_LINES} lines.")
    wanted = _line_params(lines)

    def work() -> RmaChanged:
        rma = _rma_before_receipt(session, actor, number, "changed")
        products = _line_products(wanted, rma.merchant_id, rma_references(
            session, merchants=set(), channels=set(), warehouses=set(), numbers=set(), trackings=set(), orders=set(),
            customers=set(), skus=_line_skus(wanted)))
        before = [[ln.product.sku, ln.quantity, ln.reason_code, ln.resolution, ln.exchange_sku] for ln in rma.lines]
        order_lines = {ol.product_id: ol.id for ol in rma.order.lines} if rma.order is not None else {}
        for old in list(rma.lines):  # no unit, exception or parcel refers to a line before receipt
            session.delete(old)
        session.flush()
        session.add_all(RmaLine(rma_id=rma.id, product_id=products[s][0], order_line_id=order_lines.get(products[s][0]),
                                quantity=q, reason_code=r, resolution=res, exchange_sku=swap) for s, q, r, res, swap in wanted)
        session.flush()
        session.expire(rma, ["lines"])
        write(session, [audit_row(actor, "rma.lines_changed", "rma", rma.id, warehouse_id=rma.warehouse_id,
                                  details={"before": before, "after": wanted}),
                        event_row("rma.lines_changed", "rma", rma.id, {"rma_id": rma.id, "number": rma.number,
                                                                        "lines": wanted})])
        return RmaChanged(rma.id, rma.number, rma.status, _lines_out(rma))

    return run_idempotent(session, actor, idempotency_key, "change_rma_lines",
                          {"number": number.strip().upper(), "lines": wanted}, work, result_type=RmaChanged)


def _lines_out(rma: Rma) -> tuple[RmaLineOut, ...]:
    return tuple(RmaLineOut(ln.id, ln.product.sku, ln.quantity, ln.reason_code, ln.order_line_id, ln.resolution,
                            ln.exchange_sku) for ln in rma.lines)


# --------------------------------------------------------------------------- the CSV import

IMPORT_MAX_BYTES = 10 * 1024 * 1024  # the default of DOCKHAND_IMPORT_MAX_BYTES
STALE_CLAIM = timedelta(minutes=10)  # an apply that died this long ago may be taken over


def _may_import(actor: Actor) -> None:
    if not actor.can("admin"):
        raise NotPermitted("Only an admin can import files.")


def _prefix(digest: str, kind: str) -> str:
    """The start of the idempotency keys of a file's items: its hash and kind (the item's place follows)."""
    return f"csv:{digest[:40]}:{kind[0]}"


def _checked(session: Session, kind: str, content: bytes, digest: str) -> Parsed:
    """The file read (app.intake.domain.parse) and what it names looked up: every bad row, sorted.
    A return this same file created before is not "taken": applying it again answers it as done."""
    parsed = parse(kind, content, categories=tuple(category_codes(session)))
    if not parsed.fatal:
        found = missing_references(session, kind, parsed.items)
        if kind == "rmas" and found:
            done = keys_used(session, _prefix(digest, kind))
            mine = {line for n, it in enumerate(parsed.items) if f"{_prefix(digest, kind)}{n}" in done for line in it.lines}
            found = [e for e in found if e.line not in mine]
        parsed.errors.extend(found)
        parsed.errors.sort(key=lambda e: e.line)
    return parsed


def _summary(parsed: Parsed) -> dict[str, Any]:
    """What the preview shows, kept with the file: counts and the bad rows (the first 1000)."""
    good = parsed.good_items()
    return {"rows": parsed.rows, "items": len(parsed.items), "good_items": len(good),
            "bad_rows": len(parsed.bad_lines()), "errors_total": len(parsed.errors), "fatal": parsed.fatal,
            "torn": parsed.torn, "refused_whole": parsed.refused_whole,
            "errors": [[e.line, e.column, e.message] for e in parsed.errors[:MAX_ERRORS_KEPT]]}


@dataclass(frozen=True)
class ImportUploaded(Result):
    id: int


def upload_import(session: Session, actor: Actor, *, kind: str, filename: str | None, content: bytes,
                  max_bytes: int = IMPORT_MAX_BYTES, idempotency_key: str | None) -> ImportUploaded:
    """Keep an uploaded CSV file (in the database: any app server may show its preview or apply it)
    with its preview: every bad row by line number and reason. Nothing else is written."""
    _may_import(actor)
    if kind not in KINDS:
        raise ValidationFailed(f"Choose what the file holds: {', '.join(KINDS)}.")
    check_upload(content, max_bytes, limit="the import takes files", split="Split it and upload the parts one by one.")
    filename = upload_name(filename)
    digest = hashlib.sha256(content).hexdigest()
    params = {"kind": kind, "sha256": digest, "filename": filename}

    def work() -> ImportUploaded:
        summary = _summary(_checked(session, kind, content, digest))
        row = CsvImport(kind=kind, filename=filename, sha256=digest, size=len(content), content=content,
                        status="previewed", preview=summary, created_by=actor.id)
        session.add(row)
        session.flush()
        return ImportUploaded(row.id)

    return run_idempotent(session, actor, idempotency_key, "csv_upload", params, work, result_type=ImportUploaded)


@dataclass(frozen=True)
class ImportApplied(Result):
    """What applying a file did, item by item (products, orders or returns): `left_out` were bad in
    the preview; `refused` the use case refused while applying."""

    id: int
    kind: str
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    left_out: int = 0
    refused: int = 0


def _claim(session: Session, actor: Actor, import_id: int) -> CsvImport | ImportApplied:
    """Take the import for this apply (its status to `applying`), or the answer of the apply that
    took it: its result when it is done; a Conflict while it runs."""
    with unit_of_work(session):
        row = session.scalars(select(CsvImport).where(CsvImport.id == import_id).with_for_update()).first()
        if row is None:
            raise NotFound("No such import.")
        if row.status == "applied":
            return rebuilt(ImportApplied, (row.result or {}).get("counts"))
        started = as_utc(row.apply_started_at)
        if row.status == "applying" and started is not None and utcnow() - started < STALE_CLAIM:
            raise Conflict("This file is being applied just now (the same Apply sent twice, or by another admin). "
                           "Nothing was done twice: reload this page in a moment to see what it did.")
        row.status, row.apply_started_at, row.applied_by = "applying", utcnow(), actor.id
        session.flush()
        return row


def _release(session: Session, import_id: int) -> None:
    """Give the import back (an apply that stopped): another apply may run; the items' keys make
    what was applied already answer as before."""
    with unit_of_work(session):
        session.execute(update(CsvImport).where(CsvImport.id == import_id, CsvImport.status == "applying")
                        .values(status="previewed", apply_started_at=None))


def apply_import(session: Session, actor: Actor, *, import_id: int) -> ImportApplied:
    """Apply an uploaded file through the API's use cases: products (put_products) and orders
    (put_orders) in calls of up to 500, returns (create_rmas) RMA_BATCH a transaction. A file of products or
    orders with a bad row is refused whole; in a file of returns the bad returns are left out.

    Exactly one effect: the import is claimed first (a second Apply, sent twice or by another
    admin, is told that the file is being applied, and once it is, answered the first result;
    it repeats nothing), and each call has a key made of the
    file's hash and the item's place in it, so a file applied again (uploaded twice, or an apply
    that stopped half way and runs again) answers what was applied already instead of applying it
    twice. The run is audited: who, which file (its SHA-256), what kind, the counts."""
    _may_import(actor)
    claimed = _claim(session, actor, import_id)
    if isinstance(claimed, ImportApplied):
        return claimed
    kind, digest, filename, content = claimed.kind, claimed.sha256, claimed.filename, claimed.content
    try:
        parsed = _checked(session, kind, content, digest)
        end_transaction(session)
        if parsed.refused_whole:
            raise ValidationFailed(f"This file has {len(parsed.bad_lines())} bad rows and is refused whole: nothing of it "
                                   "was applied. Fix the rows listed and upload it again.")
        counts, refused = _apply_items(session, actor, kind, digest, parsed.good_items())
    except BaseException:
        _release(session, import_id)
        raise
    counts["left_out"] = len(parsed.items) - len(parsed.good_items())
    result = ImportApplied(import_id, kind, **counts)
    summary = {"counts": stored(result),
               "errors": [[e.line, e.column, e.message] for e in refused[:MAX_ERRORS_KEPT]], "errors_total": len(refused)}

    def work() -> ImportApplied:
        session.execute(update(CsvImport).where(CsvImport.id == import_id)
                        .values(status="applied", applied_at=utcnow(), result=summary))
        write(session, [audit_row(actor, "csv_import.applied", "csv_import", import_id, details={
            "before": None, "after": {"name": filename, "kind": kind, "sha256": digest, "rows": parsed.rows,
                                      **{k: v for k, v in stored(result).items() if k not in ("id", "kind")}}})])
        return result

    return run_idempotent(session, actor, f"csv-applied:{import_id}", "csv_import_applied", {"import": import_id}, work,
                          result_type=ImportApplied)


def _create_returns(session: Session, actor: Actor, prefix: str, good: list[tuple[int, Item]],
                    counts: dict[str, int], refused: list[RowError]) -> None:
    """The returns through create_rmas, RMA_BATCH a transaction, each keyed by its place in the file."""
    for start in range(0, len(good), RMA_BATCH):
        batch = good[start:start + RMA_BATCH]
        answers = create_rmas(session, actor, [RmaRequest(
            f"{prefix}{n}", it.key, it.fields["merchant"], it.fields["channel"], it.fields["warehouse"],
            [LineIn(ln["sku"], ln["quantity"], ln["reason_code"], ln["resolution"], ln["exchange_sku"]) for ln in it.rows],
            it.fields["order_number"] or None, it.fields["customer_ref"] or None, it.fields["customer_name"] or None,
            list(it.fields["tracking_numbers"]), it.fields["carrier"] or "unknown") for n, it in batch])
        for (_, it), made in zip(batch, answers):
            if isinstance(made, IdempotencyKeyReused):  # this file applied before by another admin: done already
                counts["unchanged"] += 1
            elif isinstance(made, DomainError):
                counts["refused"] += 1
                refused.append(RowError(it.lines[0], "", f"return {it.key} not created: {made.message}"))
            else:
                counts["unchanged" if made.replayed else "created"] += 1


def _apply_items(session: Session, actor: Actor, kind: str, digest: str,
                 good: list[tuple[int, Item]]) -> tuple[dict[str, int], list[RowError]]:
    """Each item through its use case, with a key of the file's hash and the item's place in the
    file; what each did, and the lines of those it refused."""
    counts = {"created": 0, "updated": 0, "unchanged": 0, "refused": 0}
    refused: list[RowError] = []
    prefix = _prefix(digest, kind)
    if kind == "rmas":
        _create_returns(session, actor, prefix, good, counts, refused)
        return counts, refused
    items = [it for _, it in good]  # every item of the file (refused whole otherwise): places are stable
    for n in range(0, len(items), MAX_ITEMS):
        chunk = items[n:n + MAX_ITEMS]
        try:
            if kind == "products":
                done = put_products(session, actor, idempotency_key=f"{prefix}{n}", products=[
                    ProductIn(it.key, it.fields["name"], it.fields["category"], it.fields["unit_value"], it.fields["merchant"],
                              it.fields["serial_tracked"], it.fields["lot_tracked"], it.fields["barcodes"]) for it in chunk])
            else:
                done = put_orders(session, actor, idempotency_key=f"{prefix}{n}", orders=[
                    OrderIn(it.key, it.fields["merchant"], it.fields["channel"], it.fields["customer_ref"],
                            it.fields["customer_name"] or it.fields["customer_ref"], it.fields["currency"],
                            tuple(OrderLineIn(ln["sku"], ln["quantity"], ln["unit_price"], ln["serials"]) for ln in it.rows),
                            it.fields["placed_at"]) for it in chunk])
        except InvalidItems as exc:
            counts["refused"] += len(chunk)
            for e in exc.errors:
                _, index, *rest = e["field"].split(".")
                it = chunk[int(index)]
                refused.append(RowError(it.lines[0], ".".join(rest), f"{it.key}: {e['message']}"))
        except IdempotencyKeyReused:
            counts["unchanged"] += len(chunk)
        except DomainError as exc:
            counts["refused"] += len(chunk)
            refused.append(RowError(chunk[0].lines[0], "", exc.message))
        else:
            for o in done.items:
                counts["unchanged" if done.replayed else o.outcome] += 1
    return counts, refused
