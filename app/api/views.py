"""/api/v1: thin views over the use cases and queries, described by the OpenAPI document."""
from __future__ import annotations

from typing import Any

from dataclasses import asdict, replace
from decimal import Decimal

from flask import Blueprint, Response, current_app, jsonify, render_template
from spectree import Response as Responses

from app.api.http import api_actor, authenticated, check_body, idempotency_key, openapi_document, spec
from app.api import queries
from app.api.schemas import (SnapshotComparedOut, SnapshotIn, BalanceOut, BalancesPage, BalancesQuery, BulkOut, CarrierEventsIn, Event, LedgerEntryOut, LedgerOut, Money, ReceiptLineOut, RefundRowOut,
                             RefundsPage, RefundsQuery, ResendOut, RmaReceiptOut, TrackingOut, UnitOut, UnitsPage, UnitsQuery,
                             WebhookCreated, WebhookIn, WebhookList, WebhookOut, EventPage, FeedQuery,                              ItemOut, OrdersIn, Problem, ProductsIn, RefundAckIn, RefundOut, RmaChangedOut, RmaIn, RmaLineOut, RmaLinesIn, RmaOut)
from app.db import as_utc, db
from app.errors import NotFound, ValidationFailed
from app.web import MAX_ID
from app.extensions import csrf
from app.ledger.domain import FeedCursor
from app.ledger.queries import feed_page
from app.intake import services as intake
from app.reconciliation import services as reconciliation
from app.refunds import services as refunds
from app.webhooks import queries as webhook_queries
from app.webhooks import services as webhooks

bp = Blueprint("api", __name__, url_prefix="/api/v1")
csrf.exempt(bp)  # a key in the Authorization header, not a browser's cookie: no cross-site forgery
bp.before_request(check_body)

REFUSALS = {"HTTP_401": Problem, "HTTP_403": Problem, "HTTP_422": Problem}


@bp.get("/openapi.json")
def openapi() -> Response:
    """The OpenAPI 3.1 document of /api/v1."""
    return jsonify(openapi_document())


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
    return render_template("api/docs.html", spec=openapi_document(), scopes=scopes)


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
        lines=[intake.LineIn(ln.sku, ln.quantity, ln.reason_code, ln.resolution, ln.exchange_sku) for ln in json.lines],
        idempotency_key=idempotency_key())
    return _created(made, RmaOut)


def _created(done: Any, model: Any) -> Any:
    """A use case's answer as 201 with `model`, marked when it is a replay."""
    body = asdict(done)
    del body["replayed"]
    return model(**body), 201, {"Idempotent-Replayed": "true"} if done.replayed else {}


@bp.post("/rmas/<number>/cancel")
@authenticated("rmas:write")
@spec.validate(resp=Responses(HTTP_200=RmaChangedOut, HTTP_404=Problem, HTTP_409=Problem, **REFUSALS), tags=["rmas"])
def cancel_rma(number: str) -> Any:
    """Cancel a return before the dock has received any of it (409 once a parcel of it is open)."""
    return _rma_changed(intake.cancel_rma(db.session, api_actor(), number=number, idempotency_key=idempotency_key()))


@bp.put("/rmas/<number>/lines")
@authenticated("rmas:write")
@spec.validate(json=RmaLinesIn, resp=Responses(HTTP_200=RmaChangedOut, HTTP_404=Problem, HTTP_409=Problem, **REFUSALS),
               tags=["rmas"])
def change_rma_lines(number: str, json: RmaLinesIn) -> Any:
    """Replace the items a return expects, before the dock has received any of it."""
    return _rma_changed(intake.change_rma_lines(
        db.session, api_actor(), number=number, idempotency_key=idempotency_key(),
        lines=[intake.LineIn(ln.sku, ln.quantity, ln.reason_code, ln.resolution, ln.exchange_sku) for ln in json.lines]))


@bp.post("/reconciliation/snapshots")
@authenticated("inventory:write")
@spec.validate(json=SnapshotIn, resp=Responses(HTTP_201=SnapshotComparedOut, HTTP_404=Problem, HTTP_409=Problem,
                                               **REFUSALS), tags=["reconciliation"])
def put_snapshot(json: SnapshotIn) -> Any:
    """Send a stock snapshot: kept, and compared with the ledger at its time T.

    Every row is checked first (unknown warehouse, merchant or SKU; a bucket the source does not
    map; a repeated row; a warehouse not the source's organisation's; a merchant the key does not
    serve): any bad row refuses the whole snapshot (422, each named), and nothing is kept. A
    partner's key sends only its organisation's sources. Send an `Idempotency-Key`: the same key
    and body again answer the first answer."""
    done = reconciliation.put_snapshot(
        db.session, api_actor(), source=json.source, as_of=json.as_of, confirm_zero_out=json.confirm_zero_out,
        rows=[reconciliation.RowIn(r.warehouse, r.merchant, r.sku, r.bucket, r.quantity) for r in json.rows],
        idempotency_key=idempotency_key())
    if api_actor().is_partner:  # a 3PL sees its units, never money
        done = replace(done, value_over=None, value_short=None)
    return _created(done, SnapshotComparedOut)


def _rma_changed(done: intake.RmaChanged) -> Any:
    headers = {"Idempotent-Replayed": "true"} if done.replayed else {}
    return RmaChangedOut(id=done.id, number=done.number, status=done.status,
                         lines=[RmaLineOut(**asdict(ln)) for ln in done.lines]), 200, headers


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


@bp.post("/carrier-events")
@authenticated("carrier:write")
@spec.validate(json=CarrierEventsIn, resp=Responses(HTTP_200=BulkOut, **REFUSALS), tags=["carrier"])
def carrier_events(json: CarrierEventsIn) -> Any:
    """Report what carriers say about return parcels, up to 500 events per call.

    Each tracking number keeps its newest status and time; an older event changes nothing
    (`unchanged`), so events may be sent out of order or twice. A parcel `delivered` and not yet
    received shows on the dock as delivered, with its age."""
    done = intake.record_carrier_events(db.session, api_actor(), idempotency_key=idempotency_key(), events=[
        intake.CarrierEventIn(e.tracking_number, e.status, e.at) for e in json.events])
    return _bulk(done)


@bp.post("/refunds/<int:refund_id>/acknowledge")
@authenticated("refunds:ack")
@spec.validate(json=RefundAckIn, resp=Responses(HTTP_200=RefundOut, HTTP_404=Problem, HTTP_409=Problem, **REFUSALS),
               tags=["refunds"])
def acknowledge_refund(refund_id: int, json: RefundAckIn) -> Any:
    """Finance says it paid a released refund (`released` -> `acknowledged`), with the payment's
    reference. A refund not released yet, or acknowledged already, is 409."""
    done = refunds.acknowledge_refund(db.session, api_actor(), refund_id=refund_id, payment_reference=json.payment_reference,
                                      idempotency_key=idempotency_key())
    headers = {"Idempotent-Replayed": "true"} if done.replayed else {}
    return RefundOut(id=done.refund_id, status=done.status), 200, headers


def _bulk(done: intake.BulkDone) -> Any:
    """A bulk call's answer: a result per item (and, for a replay, the header that says so)."""
    headers = {"Idempotent-Replayed": "true"} if done.replayed else {}
    return BulkOut(items=[ItemOut(**asdict(item)) for item in done.items]), 200, headers


@bp.get("/units")
@authenticated("units:read")
@spec.validate(query=UnitsQuery, resp=Responses(HTTP_200=UnitsPage, **REFUSALS), tags=["units"])
def units(query: UnitsQuery) -> Any:
    """Units (one per returned item, by LPN), in id order, by state, warehouse, merchant and last
    state change. Follow `next` as `after` while `has_more`."""
    rows = queries.units_page(db.session, api_actor(), state=query.state, warehouse=query.warehouse, merchant=query.merchant,
                              updated_since=query.updated_since, after=query.after, limit=query.limit)
    return UnitsPage(units=[UnitOut(**{**row._asdict(), "received_at": as_utc(row.received_at),
                                       "inspected_at": as_utc(row.inspected_at), "state_changed_at": as_utc(row.state_changed_at)})
                            for row in rows],
                     next=rows[-1].id if rows else query.after, has_more=len(rows) == query.limit)


@bp.get("/units/<lpn>/ledger")
@authenticated("units:read")
@spec.validate(resp=Responses(HTTP_200=LedgerOut, HTTP_404=Problem, **REFUSALS), tags=["units"])
def unit_ledger(lpn: str) -> Any:
    """A unit's ledger: every state change, oldest first, with its reason and the role that made it."""
    entries = queries.unit_ledger(db.session, api_actor(), lpn)
    if entries is None:
        raise NotFound(f"No unit {lpn}.")
    return LedgerOut(lpn=lpn.upper(), entries=[LedgerEntryOut(**{**e._asdict(), "at": as_utc(e.at)}) for e in entries])


@bp.get("/rmas/<number>")
@authenticated("units:read")
@spec.validate(resp=Responses(HTTP_200=RmaReceiptOut, HTTP_404=Problem, **REFUSALS), tags=["rmas"])
def rma(number: str) -> Any:
    """A return with its receipt: each line's expected and received count, and what the carrier
    said last about each tracking number (a parcel `delivered` and not yet received waits at the dock)."""
    found = queries.rma_with_receipt(db.session, api_actor(), number)
    if found is None:
        raise NotFound(f"No return {number}.")
    head, lines, trackings = found
    return RmaReceiptOut(
        id=head.id, number=head.number, status=head.status, merchant=head.merchant, warehouse=head.warehouse,
        created_at=as_utc(head.created_at), closed_at=as_utc(head.closed_at),
        lines=[ReceiptLineOut(id=ln.id, sku=ln.sku, expected=ln.quantity, received=ln.received, reason_code=ln.reason_code)
               for ln in lines],
        trackings=[TrackingOut(tracking_number=t.tracking_number, carrier=t.carrier, status=t.status,
                               last_event_at=as_utc(t.last_event_at)) for t in trackings])


@bp.get("/refunds")
@authenticated("refunds:read")
@spec.validate(query=RefundsQuery, resp=Responses(HTTP_200=RefundsPage, **REFUSALS), tags=["refunds"])
def refunds_list(query: RefundsQuery) -> Any:
    """Refund triggers in id order, by status (finance reads `released` ones to pay them). A
    partner's key never sees amounts."""
    actor = api_actor()
    rows = queries.refunds_page(db.session, actor, status=query.status, after=query.after, limit=query.limit)
    money = actor.can("see_refund_amounts") or actor.role == "integration"

    def out(r: Any) -> RefundRowOut:
        return RefundRowOut(id=r.id, lpn=r.lpn, rma=r.rma, status=r.status,
                            amount=Money(amount=f"{r.amount:.2f}", currency=r.currency) if money else None,
                            paid=Money(amount=f"{r.paid_amount:.2f}", currency=r.currency) if money else None,
                            refund_action=r.refund_action, resolution=r.resolution, exchange_sku=r.exchange_sku,
                            released_at=as_utc(r.released_at),
                            acknowledged_at=as_utc(r.acknowledged_at), payment_reference=r.payment_reference,
                            created_at=as_utc(r.created_at))

    return RefundsPage(refunds=[out(r) for r in rows], next=rows[-1].id if rows else query.after,
                       has_more=len(rows) == query.limit)


@bp.post("/webhooks")
@authenticated("webhooks:manage")
@spec.validate(json=WebhookIn, resp=Responses(HTTP_201=WebhookCreated, **REFUSALS), tags=["webhooks"])
def register_webhook(json: WebhookIn) -> Any:
    """Register an endpoint for events (Standard Webhooks: webhook-id, webhook-timestamp,
    webhook-signature v1). It receives the events written from now on, each until it answers 2xx,
    retried with backoff for about three days; 410 Gone switches it off. The signing secret is
    on this answer only."""
    made = webhooks.register_endpoint(db.session, api_actor(), url=json.url, event_types=json.event_types,
                                      description=json.description, idempotency_key=idempotency_key())
    headers = {"Idempotent-Replayed": "true"} if made.replayed else {}
    return WebhookCreated(id=made.id, url=made.url, secret=made.secret), 201, headers


@bp.get("/webhooks")
@authenticated("webhooks:manage")
@spec.validate(resp=Responses(HTTP_200=WebhookList, **REFUSALS), tags=["webhooks"])
def list_webhooks() -> Any:
    """Every endpoint with its deliveries pending, delivered and given up (never a secret)."""
    return WebhookList(webhooks=[
        WebhookOut(id=ep.id, url=ep.url, event_types=ep.event_types, description=ep.description,
                   disabled_at=as_utc(ep.disabled_at), disabled_reason=ep.disabled_reason,
                   failing_since=as_utc(ep.failing_since), pending=pending, delivered=delivered, dead=dead)
        for ep, pending, delivered, dead in webhook_queries.endpoints(db.session)])


@bp.post("/webhooks/<int:endpoint_id>/resend")
@authenticated("webhooks:manage")
@spec.validate(resp=Responses(HTTP_200=ResendOut, HTTP_404=Problem, **REFUSALS), tags=["webhooks"])
def resend_webhooks(endpoint_id: int) -> Any:
    """Send again every delivery given up, from now, and switch the endpoint on again."""
    done = webhooks.resend(db.session, api_actor(), endpoint_id=endpoint_id, idempotency_key=idempotency_key())
    return ResendOut(endpoint_id=done.endpoint_id, deliveries=done.deliveries)


@bp.get("/balances")
@authenticated("units:read")
@spec.validate(query=BalancesQuery, resp=Responses(HTTP_200=BalancesPage, **REFUSALS), tags=["units"])
def balances(query: BalancesQuery) -> Any:
    """Units per state of each SKU at each warehouse, as the ledger sums them: what a WMS or ERP
    compares its stock with. Pages of (warehouse, SKU) pairs; follow `next` as `after`."""
    after = tuple(int(p) for p in query.after.split(".")) if query.after else (0, 0)
    if max(after) > MAX_ID:
        raise ValidationFailed("The cursor is not one this list gave out: use the 'next' of a page, or none to start.")
    rows = queries.balances_page(db.session, api_actor(), warehouse=query.warehouse, after=after, limit=query.limit)  # type: ignore[arg-type]
    out: dict[tuple[int, int], BalanceOut] = {}
    for r in rows:
        out.setdefault((r.warehouse_id, r.product_id), BalanceOut(warehouse=r.warehouse, sku=r.sku, merchant=r.merchant,
                                                                 quantities={})).quantities[r.state] = r.quantity
    last = list(out)[-1] if out else after
    return BalancesPage(balances=list(out.values()), next=f"{last[0]}.{last[1]}", has_more=len(out) == query.limit)
