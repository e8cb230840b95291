"""The anomaly flags' rules, pure Python: which facts raise which flag, its explanation in words and
whether it holds the unit's refund for a supervisor (the refund's "fraud flag").

Five kinds:
- `returned_before`: the serial came back once already (an earlier unit with it left the building:
  made available, sold on, sent to the vendor, liquidated, disposed of, or lost). Received and
  flagged, not refused. It holds the refund unless the item was shipped on this return's own order
  after the earlier return (it was resold to this customer: a second life, shown for information).
- `swap`: the serial was shipped on another order (to this customer or to another one) and not on
  the return's: the customer may have sent back someone else's item, or a different one. Holds.
- `customer_norm`: the customer's returns, or the value they ask back, are far above the merchant's
  norm (a multiple of the merchant's mean per customer, and at least a minimum count). Holds.
- `empty_box`: a worker reported the return's parcel empty. Holds every refund of the return.
- `missing_component`: a kit's inspection found components missing (app.inspection.grading). Does
  not hold: each missing one already deducts its share of the refund. A re-inspection replaces it.

A serial whose unit is still in the building and not sellable (on the dock, in quarantine, in
refurbishment: IN_BUILDING) is refused instead: the same item cannot be in hand twice, and that is
nearly always the same item scanned twice."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from app.ledger.domain import SERIAL_HELD
from app.words import N_, pct_words

RETURNED_BEFORE = "returned_before"
SWAP = "swap"
CUSTOMER_NORM = "customer_norm"
EMPTY_BOX = "empty_box"
MISSING_COMPONENT = "missing_component"
KINDS = (RETURNED_BEFORE, SWAP, CUSTOMER_NORM, EMPTY_BOX, MISSING_COMPONENT)
# Each kind's name, English marked for the catalogue (a screen reads it through app.web.i18n.FLAG_NAMES).
KIND_LABELS = {RETURNED_BEFORE: N_("Returned before"), SWAP: N_("Possible swap"),
               CUSTOMER_NORM: N_("Customer above the norm"), EMPTY_BOX: N_("Empty box"),
               MISSING_COMPONENT: N_("Component missing")}
# The states of a unit still in the building and not sellable: a second unit with its serial is refused.
IN_BUILDING = SERIAL_HELD


@dataclass(frozen=True)
class Flag:
    """One anomaly: its kind, what the desk reads, whether it holds the refund, and the facts behind it."""

    kind: str
    explanation: str
    holds: bool
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PriorReturn:
    """The latest earlier unit with the same product and serial: its LPN, state, return and when it came."""

    lpn: str
    state: str
    rma_number: str | None
    received_at: datetime


def _day(at: datetime) -> str:
    return at.strftime("%Y-%m-%d")


def returned_before(serial: str | None, prior: PriorReturn | None, *, shipped_on_order: bool,
                    order_placed_at: datetime | None) -> Flag | None:
    """The `returned_before` flag of a serial received now, given the latest earlier unit with it
    (None: never returned before). `shipped_on_order`: the serial was shipped on this return's
    order, placed at `order_placed_at`; after the earlier return, the item was resold to this
    customer, and the flag is shown without holding the refund."""
    if not serial or prior is None:
        return None
    where = f"on {prior.rma_number}" if prior.rma_number else "in a parcel of no return"
    resold = shipped_on_order and order_placed_at is not None and order_placed_at >= prior.received_at
    words = (f"serial {serial} was returned before, {where}, on {_day(prior.received_at)} "
             f"(unit {prior.lpn}, now {prior.state.replace('_', ' ')})")
    words += (": it was resold on this return's order since, so the refund is not held for it" if resold
              else ": a second refund for the same item, check it")
    return Flag(RETURNED_BEFORE, words, not resold,
                {"serial": serial, "prior_lpn": prior.lpn, "prior_state": prior.state, "prior_rma": prior.rma_number,
                 "prior_received_at": prior.received_at.isoformat(), "resold": resold})


@dataclass(frozen=True)
class Shipment:
    """Where else a serial was shipped: the order's number and whether it went to the return's customer."""

    order_number: str
    same_customer: bool


def swap(serial: str | None, shipment: Shipment | None, *, shipped_on_order: bool) -> Flag | None:
    """The `swap` flag: the serial was shipped on another order (`shipment`, the latest) and not on
    the return's own order (`shipped_on_order`). None when it matches, or was never shipped (a plain
    serial mismatch, which has its own exception)."""
    if not serial or shipment is None or shipped_on_order:
        return None
    whom = "to this same customer" if shipment.same_customer else "to another customer"
    words = (f"serial {serial} was shipped on order {shipment.order_number}, {whom}, not on this return's order: "
             "the item sent back may not be the one bought")
    return Flag(SWAP, words, True, {"serial": serial, "order": shipment.order_number,
                                    "same_customer": shipment.same_customer})


@dataclass(frozen=True)
class CustomerFigures:
    """A customer's returns and orders with the merchant, and the value their returns ask back; and
    the merchant's norm: its mean per customer of the same figures (its returns over its orders, the
    value asked back over the customers who returned)."""

    returns: int
    orders: int
    value: Decimal
    merchant_rate: Decimal  # the merchant's returns / orders
    merchant_value: Decimal  # the value asked back per returning customer


def customer_norm(figures: CustomerFigures, *, factor: Decimal, min_returns: int) -> Flag | None:
    """The `customer_norm` flag: a customer with at least `min_returns` returns (this one counted)
    whose return rate (returns over orders) is more than `factor` times the merchant's, or whose
    returns ask back more than `factor` times the merchant's mean per returning customer. A few
    returns never flag anyone: one unlucky order is not a pattern. Both are console settings
    (app/settings/domain.py: 3 and 3 unless changed)."""
    if figures.returns < min_returns:
        return None
    rate = Decimal(figures.returns) / Decimal(figures.orders) if figures.orders else Decimal(1)
    reasons = []
    if figures.merchant_rate > 0 and rate > factor * figures.merchant_rate:
        reasons.append(f"{figures.returns} returns on {figures.orders} orders ({rate:.0%}), "
                       f"{rate / figures.merchant_rate:.1f}x the merchant's {figures.merchant_rate:.0%}")
    if figures.merchant_value > 0 and figures.value > factor * figures.merchant_value:
        reasons.append(f"{figures.value:.2f} asked back, {figures.value / figures.merchant_value:.1f}x the merchant's "
                       f"{figures.merchant_value:.2f} per returning customer")
    if not reasons:
        return None
    times = f"{factor.normalize():f}"
    words = f"this customer is far above the merchant's norm (more than {times}x): " + "; ".join(reasons)
    return Flag(CUSTOMER_NORM, words, True,
                {"returns": figures.returns, "orders": figures.orders, "value": str(figures.value),
                 "merchant_rate": str(figures.merchant_rate), "merchant_value": str(figures.merchant_value),
                 "factor": times, "min_returns": min_returns})


def empty_box(label: str, note: str | None) -> Flag:
    """The `empty_box` flag of a return whose parcel (`label`, as scanned) a worker reported empty."""
    words = f"parcel {label} was reported empty" + (f" (\u201c{note}\u201d)" if note else "") + \
        ": every refund of this return waits for a supervisor"
    return Flag(EMPTY_BOX, words, True, {"label": label, "note": note})


def missing_component(kit_sku: str, missing: list[tuple[str, Decimal]]) -> Flag | None:
    """The `missing_component` flag of a kit (`kit_sku`) inspected with components missing, each
    (its label, the share of the refund it deducts): "Charger missing from kit KIT-1 (10% off the
    refund)". None when nothing is missing. It holds nothing: the deductions already cover it."""
    if not missing:
        return None
    names = [label for label, _ in missing]
    said = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    total = sum((pct for _, pct in missing), Decimal(0))
    words = f"{said} missing from kit {kit_sku} ({pct_words(total)} off the refund)"
    return Flag(MISSING_COMPONENT, words, False,
                {"kit": kit_sku, "missing": [{"component": label, "pct": str(pct)} for label, pct in missing],
                 "pct": str(total)})
