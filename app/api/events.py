"""The event catalogue (v1): every event type Dockhand publishes on the feed and to webhooks, with
its payload's fields. Payloads change only by adding fields: a reader ignores fields it does not
know. The OpenAPI document lists each type under `webhooks` (app/api/http.py: openapi_document);
a test checks that every type the code writes is here, and that its payloads carry no field that
is not."""
from __future__ import annotations

from typing import get_type_hints

from pydantic import BaseModel, ConfigDict, Field, create_model

from app.intake.domain import CARRIER_STATUSES
from app.reconciliation.services import Compared
from app.refunds.domain import REFUND_STATUSES


class Payload(BaseModel):
    model_config = ConfigDict(extra="allow")  # v1 payloads only ever gain fields


class UnitStateChanged(Payload):
    """A unit moved between states (the ledger's row): received, dispositioned, released, ..."""

    unit_id: int
    lpn: str
    product_id: int
    warehouse_id: int
    from_state: str | None = Field(description="None when the unit was just received")
    to_state: str
    location_id: int | None
    reason: str


class RefundChanged(Payload):
    """A refund trigger reached a status. `resolution` says what the customer asked for."""

    refund_id: int
    unit_id: int
    rma_id: int | None
    status: str
    amount: str = Field(description="Decimal string")
    currency: str
    resolution: str = Field(description="refund, store_credit or exchange")
    exchange_sku: str | None = Field(None, description="The SKU to ship, for an exchange")


class RmaCreated(Payload):
    rma_id: int
    number: str
    merchant: str
    warehouse: str
    status: str
    lines: list[list[str | int | None]] = Field(description="[sku, quantity, reason code, resolution, exchange sku]")
    tracking_numbers: list[str]


class RmaChanged(Payload):
    """A return's lines replaced, or the return cancelled, before receipt."""

    rma_id: int
    number: str
    lines: list[list[str | int | None]] | None = None


class RmaReceiving(Payload):
    """A parcel of the return was opened at the dock."""

    rma_id: int
    number: str
    receipt_id: int = Field(description="The parcel's id (named receipt_id since v1's first events)")


class RmaClosed(Payload):
    rma_id: int
    number: str
    missing: list[dict[str, str | int]] = Field(description="What was expected and did not come")


class RmaCarrier(Payload):
    """The carrier's newest status for one of the return's tracking numbers."""

    rma_id: int
    number: str
    tracking_number: str
    carrier: str
    status: str
    at: str = Field(description="When the carrier saw it, ISO 8601")


class ExceptionOpened(Payload):
    exception_id: int
    type: str
    rma_id: int | None
    unit_id: int | None
    warehouse_id: int


class ExceptionResolved(ExceptionOpened):
    resolution: str


class EndpointDisabled(Payload):
    """An endpoint was switched off (410, or failing for three days); its URL is not published."""

    endpoint_id: int
    reason: str


_SUMMARY_NOTES = {"as_of": "T, ISO 8601", "over": "Lines where the source counts more than the ledger at T",
                  "short": "Lines where the source counts fewer than the ledger at T",
                  "opening": "Units on hand at the source's previous snapshot (0 for its first)",
                  "closing": "Units on hand at T, from the ledger",
                  "roll_forward_holds": "opening + received - moved out = closing, units on hand"}
# The comparison's summary, field for field the use case's answer (app.reconciliation.services.Compared).
ReconciliationCompleted = create_model(
    "ReconciliationCompleted", __base__=Payload,
    __doc__="A stock snapshot was compared with the ledger at its time T (on accepting it, or the timer's "
            "`flask reconcile`): its lines by kind, units and value each way, and the roll-forward check.",
    **{name: (hint, Field(description=_SUMMARY_NOTES.get(name))) for name, hint in get_type_hints(Compared).items()
       if name != "replayed"})


class VarianceResolved(Payload):
    """A supervisor gave a variance line its owner, resolution and notes."""

    variance_id: int
    snapshot_id: int
    warehouse_id: int
    product_id: int
    state: str
    kind: str
    difference: int = Field(description="The source's count minus the ledger's")
    owner_id: int | None
    resolution: str | None = Field(description="timing, count_error, lost_unit, found_unit or data_error")
    notes: str | None


class UnitCorrected(Payload):
    """A lost or found unit's correction: applied (the unit moved to or from `missing` in the
    ledger), pending a second supervisor, or rejected."""

    correction_id: int
    variance_id: int
    unit_id: int
    lpn: str
    to_state: str
    status: str
    reason: str


EVENT_TYPES: dict[str, type[Payload]] = {
    "unit.state_changed": UnitStateChanged,
    **{f"refund.{status}": RefundChanged for status in REFUND_STATUSES},
    "exchange.ship_replacement": RefundChanged,
    "rma.created": RmaCreated,
    "rma.lines_changed": RmaChanged,
    "rma.cancelled": RmaChanged,
    "rma.receiving": RmaReceiving,
    "rma.closed": RmaClosed,
    **{f"rma.carrier_{status}": RmaCarrier for status in CARRIER_STATUSES},
    "exception.opened": ExceptionOpened,
    "exception.resolved": ExceptionResolved,
    "webhook_endpoint.disabled": EndpointDisabled,
    "reconciliation.completed": ReconciliationCompleted,
    "reconciliation.variance_resolved": VarianceResolved,
    "reconciliation.unit_corrected": UnitCorrected,
}
