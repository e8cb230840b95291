"""/api/v1: thin views over the use cases and queries, described by the OpenAPI document."""
from __future__ import annotations

from typing import Any

from dataclasses import asdict
from decimal import Decimal

from flask import Blueprint, Response, current_app, jsonify, render_template
from spectree import Response as Responses

from app.api.http import api_actor, authenticated, check_body, idempotency_key, spec
from app.api.schemas import BulkOut, Event, EventPage, FeedQuery, ItemOut, OrdersIn, Problem, ProductsIn, RmaIn, RmaOut
from app.db import as_utc, db
from app.errors import ValidationFailed
from app.extensions import csrf
from app.ledger.domain import FeedCursor
from app.ledger.queries import feed_page
from app.intake import services as intake

bp = Blueprint("api", __name__, url_prefix="/api/v1")
csrf.exempt(bp)  # a key in the Authorization header, not a browser's cookie: no cross-site forgery
bp.before_request(check_body)

REFUSALS = {"HTTP_401": Problem, "HTTP_403": Problem, "HTTP_422": Problem}


@bp.get("/openapi.json")
def openapi() -> Response:
    """The OpenAPI 3.1 document of /api/v1."""
    return jsonify(spec.spec)


@bp.get("/docs")
def docs() -> str:
    """The API's reference, readable in a browser, from the same document."""
    scopes = {}
    for rule in current_app.url_map.iter_rules():
        scope = getattr(current_app.view_functions[rule.endpoint], "scope", None)
        if scope and rule.endpoint.startswith("api."):
            path = str(rule).replace("<int:", "{").replace("<", "{").replace(">", "}")
            for method in rule.methods or ():
                scopes[(path, method.lower())] = scope
    return render_template("api/docs.html", spec=spec.spec, scopes=scopes)


@bp.get("/events")
@authenticated("events:read")
@spec.validate(query=FeedQuery, resp=Responses(HTTP_200=EventPage, **REFUSALS), tags=["events"])
def events(query: FeedQuery) -> Any:
    """The event feed: every event, in order, at least once.

    Read with the `next` of each page as `after`. An event that commits late is never skipped: the
    feed waits for writes still in progress instead. An event can come twice (at least once): its
    `id` tells."""
    try:
        after = FeedCursor.parse(query.after)
    except ValueError as exc:
        raise ValidationFailed(str(exc)) from exc
    page = feed_page(db.session, after, query.limit)
    return EventPage(
        events=[Event(id=f"evt_{e.id}", cursor=str(cursor), type=e.type, at=as_utc(e.at), aggregate_type=e.aggregate_type,
                      aggregate_id=e.aggregate_id, data=e.payload) for cursor, e in page],
        next=str(page[-1][0]) if page else str(after), has_more=len(page) == query.limit)


@bp.post("/rmas")
@authenticated("rmas:write")
@spec.validate(json=RmaIn, resp=Responses(HTTP_201=RmaOut, HTTP_409=Problem, **REFUSALS), tags=["rmas"])
def create_rma(json: RmaIn) -> Any:
    """Authorise a return (RMA).

    Its lines name SKUs of the catalog and customer reason codes; its tracking numbers, RMA number
    and order number are what the dock scans to find it. Send an `Idempotency-Key`: the same key and
    body again answer the first answer (201, `Idempotent-Replayed: true`), with another body 422.
    A number or tracking number already used is 409."""
    made = intake.create_rma(
        db.session, api_actor(), number=json.number, merchant=json.merchant, channel=json.channel,
        warehouse=json.warehouse, order_number=json.order_number, customer_ref=json.customer_ref,
        customer_name=json.customer_name, carrier=json.carrier, tracking_numbers=json.tracking_numbers,
        lines=[intake.LineIn(ln.sku, ln.quantity, ln.reason_code) for ln in json.lines],
        idempotency_key=idempotency_key())
    body = asdict(made)
    del body["replayed"]
    headers = {"Idempotent-Replayed": "true"} if made.replayed else {}
    return RmaOut(**body), 201, headers


@bp.post("/products")
@authenticated("catalog:write")
@spec.validate(json=ProductsIn, resp=Responses(HTTP_200=BulkOut, **REFUSALS), tags=["catalog"])
def put_products(json: ProductsIn) -> Any:
    """Create or update products by SKU, up to 500 per call, with their barcodes.

    A barcode listed is added to the product (none is taken away); every spelling of one GTIN
    (UPC-A, EAN-13, GTIN-14) scans as the same product. Every item is checked first: if any is
    bad, nothing is written and `errors` names each bad item (`products.3.barcodes`). The answer
    has one result per item: created, updated or unchanged."""
    done = intake.put_products(db.session, api_actor(), idempotency_key=idempotency_key(), products=[
        intake.ProductIn(p.sku, p.name, p.category, Decimal(p.unit_value), p.merchant, p.serial_tracked, p.lot_tracked,
                         tuple(p.barcodes)) for p in json.products])
    return _bulk(done)


@bp.post("/orders")
@authenticated("orders:write")
@spec.validate(json=OrdersIn, resp=Responses(HTTP_200=BulkOut, **REFUSALS), tags=["orders"])
def put_orders(json: OrdersIn) -> Any:
    """Create orders with their lines and shipped serials, up to 500 per call.

    Send an order when it is placed or when it ships; send it again with the serials of what
    shipped: they are added (`updated`). An order's lines are not changed afterwards. Every item
    is checked first: if any is bad, nothing is written and `errors` names each bad item."""
    done = intake.put_orders(db.session, api_actor(), idempotency_key=idempotency_key(), orders=[
        intake.OrderIn(o.number, o.merchant, o.channel, o.customer_ref, o.customer_name or o.customer_ref, o.currency,
                       tuple(intake.OrderLineIn(ln.sku, ln.quantity, Decimal(ln.unit_price), tuple(ln.serials)) for ln in o.lines),
                       o.placed_at) for o in json.orders])
    return _bulk(done)


def _bulk(done: intake.BulkDone) -> Any:
    """A bulk call's answer: a result per item (and, for a replay, the header that says so)."""
    headers = {"Idempotent-Replayed": "true"} if done.replayed else {}
    return BulkOut(items=[ItemOut(**asdict(item)) for item in done.items]), 200, headers
