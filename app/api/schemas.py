"""The API's request and response bodies (pydantic): they validate each call and are the OpenAPI
document's schemas. Fields are only ever added, never changed or removed, within /api/v1."""
from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.api.events import ReconciliationCompleted
from app.intake.domain import CARRIER_STATUSES
from app.ledger.domain import STATES
from app.refunds.domain import REFUND_STATUSES, RESOLUTIONS
from app.web import MAX_ID


class Problem(BaseModel):
    """An error (RFC 9457, application/problem+json)."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    instance: str | None = None
    request_id: str | None = None
    errors: list[FieldError] | None = None


class FieldError(BaseModel):
    field: str = Field(description="Where in the body or query, dotted: lines.0.quantity")
    message: str


class FeedQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    after: str | None = Field(None, max_length=40, description="The `next` of the previous page; none to start at the beginning.")
    limit: int = Field(100, ge=1, le=500)


class Event(BaseModel):
    id: str = Field(description="Stable for the event: the webhook-id of its deliveries too.")
    cursor: str = Field(description="Pass as `after` to read on from this event.")
    type: str = Field(description="unit.state_changed, refund.released, rma.receiving, rma.closed, exception.opened, ...")
    at: datetime
    aggregate_type: str
    aggregate_id: int
    data: dict[str, Any]


class EventPage(BaseModel):
    events: list[Event]
    next: str = Field(description="Where to read on from: the last event's cursor, or `after` again when there was none.")
    has_more: bool = Field(description="True when the page is full: read on at once; otherwise poll again later.")


Problem.model_rebuild()


_CODE = r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,63}$"


class RmaLineIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sku: str = Field(min_length=1, max_length=64)
    quantity: int = Field(ge=1, le=10_000)
    reason_code: str = Field(min_length=1, max_length=32, description="A customer reason code, e.g. defective, no_longer_needed.")
    resolution: Literal[RESOLUTIONS] = Field("refund", description=(  # type: ignore[valid-type]
        "What the customer asked for: a refund to the original payment, store credit, or an exchange. "
        "All three follow the refund governance; an exchange, once released, publishes "
        "exchange.ship_replacement for the order system."))
    exchange_sku: str | None = Field(None, min_length=1, max_length=64, description="The SKU to ship instead (exchange only).")


class RmaIn(BaseModel):
    """A return authorised by a storefront, marketplace or returns portal."""

    model_config = ConfigDict(extra="forbid")
    number: str = Field(pattern=_CODE, description="The RMA number, unique; kept in capitals, as the dock scans it.")
    merchant: str = Field(pattern=_CODE, description="Merchant code.")
    channel: str = Field(pattern=_CODE, description="Sales channel code.")
    warehouse: str = Field(pattern=_CODE, description="Code of the warehouse the parcel is expected at.")
    order_number: str | None = Field(None, pattern=_CODE)
    customer_ref: str | None = Field(None, min_length=1, max_length=64)
    customer_name: str | None = Field(None, max_length=120)
    carrier: str = Field("unknown", min_length=1, max_length=32)
    tracking_numbers: list[str] = Field(default_factory=list, max_length=20)
    lines: list[RmaLineIn] = Field(min_length=1, max_length=200)


class RmaLineOut(BaseModel):
    id: int
    sku: str
    quantity: int
    reason_code: str
    order_line_id: int | None
    resolution: str
    exchange_sku: str | None


class RmaOut(BaseModel):
    id: int
    number: str
    status: str
    merchant: str
    channel: str
    warehouse: str
    order_number: str | None
    customer_ref: str | None
    lines: list[RmaLineOut]
    tracking_numbers: list[str]
    created_at: datetime


_MONEY = r"^[0-9]{1,8}(\.[0-9]{1,2})?$"


class ProductIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sku: str = Field(min_length=1, max_length=64, description="Kept in capitals.")
    name: str = Field(min_length=1, max_length=200)
    category: str = Field(min_length=1, max_length=32, description="An active category code (the admin console lists them: electronics, apparel, health_beauty, ...).")
    unit_value: str = Field(pattern=_MONEY, description="Decimal string, in the merchant's currency: 25.00")
    merchant: str | None = Field(None, pattern=_CODE, description="Merchant code; required for a key limited to merchants.")
    serial_tracked: bool = False
    lot_tracked: bool = False
    barcodes: list[str] = Field(default_factory=list, max_length=20, description="GTIN-8/12/13/14 (UPC, EAN), check digit included.")


class ProductsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    products: list[ProductIn] = Field(min_length=1, max_length=500)


class ItemOut(BaseModel):
    index: int = Field(description="The item's place in the call, from 0.")
    key: str = Field(description="The item's SKU or number.")
    id: int
    outcome: str = Field(description="created, updated or unchanged")


class BulkOut(BaseModel):
    items: list[ItemOut]


class OrderLineIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sku: str = Field(min_length=1, max_length=64)
    quantity: int = Field(ge=1, le=10_000)
    unit_price: str = Field(pattern=_MONEY, description="Decimal string in the order's currency: 25.00")
    serials: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        default_factory=list, max_length=10_000, description="Serials shipped on this line, when it ships.")


class OrderIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    number: str = Field(pattern=_CODE, description="The order number, unique; kept in capitals, as the dock scans it.")
    merchant: str = Field(pattern=_CODE)
    channel: str = Field(pattern=_CODE)
    customer_ref: str = Field(min_length=1, max_length=64, description="The customer's reference in the storefront (no contact data).")
    customer_name: str | None = Field(None, max_length=120)
    currency: str = Field("USD", pattern=r"^[A-Z]{3}$", description="ISO 4217")
    placed_at: datetime | None = Field(None, description="ISO 8601 with its offset (UTC: ...Z); now when left out.")
    lines: list[OrderLineIn] = Field(min_length=1, max_length=200)


class OrdersIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    orders: list[OrderIn] = Field(min_length=1, max_length=500)


class CarrierEventIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tracking_number: str = Field(min_length=1, max_length=64)
    status: Literal[CARRIER_STATUSES]  # type: ignore[valid-type]
    at: datetime = Field(description="When the carrier saw it: ISO 8601 with its offset.")


class CarrierEventsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    events: list[CarrierEventIn] = Field(min_length=1, max_length=500)


class RefundAckIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    payment_reference: str = Field(min_length=1, max_length=64, description="Finance's reference of the payment made.")


class RefundOut(BaseModel):
    id: int
    status: str


class PageQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    after: int = Field(0, ge=0, le=MAX_ID, description="The `next` of the previous page; 0 to start.")
    limit: int = Field(100, ge=1, le=500)


class UnitsQuery(PageQuery):
    state: Literal[STATES] | None = None  # type: ignore[valid-type]
    warehouse: str | None = Field(None, pattern=_CODE)
    merchant: str | None = Field(None, pattern=_CODE)
    updated_since: datetime | None = Field(None, description="Units whose state changed at or after this time (UTC ISO 8601).")


class UnitOut(BaseModel):
    id: int
    lpn: str
    sku: str
    state: str
    warehouse: str
    location: str | None
    merchant: str | None
    rma: str | None
    serial: str | None
    lot: str | None
    grade: str | None
    disposition: str | None
    received_at: datetime
    inspected_at: datetime | None
    state_changed_at: datetime


class UnitsPage(BaseModel):
    units: list[UnitOut]
    next: int = Field(description="Pass as `after` for the next page.")
    has_more: bool


class LedgerEntryOut(BaseModel):
    id: int
    from_state: str | None
    to_state: str
    reason: str
    actor_role: str
    at: datetime


class LedgerOut(BaseModel):
    lpn: str
    entries: list[LedgerEntryOut]


class ReceiptLineOut(BaseModel):
    id: int
    sku: str
    expected: int
    received: int
    reason_code: str


class TrackingOut(BaseModel):
    tracking_number: str
    carrier: str
    status: str
    last_event_at: datetime | None


class RmaReceiptOut(BaseModel):
    id: int
    number: str
    status: str
    merchant: str
    warehouse: str
    created_at: datetime
    closed_at: datetime | None
    lines: list[ReceiptLineOut]
    trackings: list[TrackingOut]


class RefundsQuery(PageQuery):
    status: Literal[REFUND_STATUSES] | None = None  # type: ignore[valid-type]


class Money(BaseModel):
    amount: str = Field(description="Decimal string: 49.90")
    currency: str


class RefundRowOut(BaseModel):
    id: int
    lpn: str
    rma: str | None
    status: str
    amount: Money | None = Field(description="Left out for a partner's key: partners never see money.")
    paid: Money | None
    refund_action: str | None
    resolution: str = Field(description="refund, store_credit or exchange")
    exchange_sku: str | None
    released_at: datetime | None
    acknowledged_at: datetime | None
    payment_reference: str | None
    created_at: datetime


class RefundsPage(BaseModel):
    refunds: list[RefundRowOut]
    next: int
    has_more: bool


class WebhookIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(min_length=8, max_length=500, description="http(s) URL that receives POSTs.")
    event_types: list[str] = Field(default_factory=list, max_length=50,
                                   description="Event types or prefixes (refund.*); none: every type.")
    description: str = Field("", max_length=200)


class WebhookOut(BaseModel):
    id: int
    url: str
    event_types: list[str]
    description: str
    disabled_at: datetime | None
    disabled_reason: str | None
    failing_since: datetime | None
    pending: int
    delivered: int
    dead: int


class WebhookCreated(BaseModel):
    id: int
    url: str
    secret: str | None = Field(description="The signing secret (whsec_...), on this answer only: verify each delivery's "
                                            "webhook-signature with it (Standard Webhooks).")


class WebhookList(BaseModel):
    webhooks: list[WebhookOut]


class ResendOut(BaseModel):
    endpoint_id: int
    deliveries: int


class RmaLinesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    lines: list[RmaLineIn] = Field(min_length=1, max_length=200)


class RmaChangedOut(BaseModel):
    id: int
    number: str
    status: str
    lines: list[RmaLineOut]


class BalancesQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    warehouse: str | None = Field(None, pattern=_CODE)
    after: str | None = Field(None, pattern=r"^[0-9]{1,10}\.[0-9]{1,10}$", description="The `next` of the previous page.")
    limit: int = Field(200, ge=1, le=1000, description="(warehouse, SKU) pairs per page")


class BalanceOut(BaseModel):
    warehouse: str
    sku: str
    merchant: str | None
    quantities: dict[str, int] = Field(description="Units per state (received, available, quarantine, ...); zero left out")


class BalancesPage(BaseModel):
    balances: list[BalanceOut]
    next: str
    has_more: bool


class SnapshotRowIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    warehouse: str = Field(pattern=_CODE, description="Warehouse code.")
    merchant: str | None = Field(None, pattern=_CODE, description="Merchant code; none: the SKU's merchant.")
    sku: str = Field(pattern=_CODE)
    bucket: str = Field(pattern=_CODE, description="The source's bucket name, mapped to a state by the source's mapping.")
    quantity: int = Field(ge=0, le=1_000_000, description="Units counted; 0 says the source holds none.")


class SnapshotIn(BaseModel):
    """A 3PL's or WMS's stock as of a time T, compared with the ledger at T when it is taken."""

    model_config = ConfigDict(extra="forbid")
    source: str = Field(pattern=_CODE, description="The source's code (set up on the reconciliation screen).")
    as_of: datetime = Field(description="T: when the source counted (ISO 8601; no zone is UTC). Not in the future.")
    confirm_zero_out: bool = Field(False, description=(
        "A snapshot that counts none of many items the ledger holds at T (5 or more, and a fifth of them) is "
        "refused (409) unless this is true."))
    rows: list[SnapshotRowIn] = Field(min_length=1, max_length=20_000, description=(
        "One per warehouse, merchant, SKU and bucket; a repeated one is refused. Refusals name a row as "
        "`line N`, N counting from 1."))


class SnapshotComparedOut(ReconciliationCompleted):  # type: ignore[misc, valid-type]
    """The comparison's summary: the reconciliation.completed event's payload."""
