"""The anomaly flags' pure rules (app.anomalies.domain): which facts flag, in which words, and
which flags hold the refund."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

from app.anomalies.domain import (CustomerFigures, PriorReturn, Shipment, customer_norm, empty_box,
                                  returned_before, swap)

T0 = datetime(2026, 10, 1, 9, 30, tzinfo=timezone.utc)
NORM = {"factor": Decimal(3), "min_returns": 3}  # the console's defaults
PRIOR = PriorReturn("LP00000042", "available", "RMA-3001", T0)


def test_a_serial_never_returned_is_not_flagged():
    assert returned_before("SN1", None, shipped_on_order=True, order_placed_at=T0) is None
    assert returned_before(None, PRIOR, shipped_on_order=False, order_placed_at=None) is None


def test_a_serial_returned_before_is_flagged_and_holds_unless_resold_on_this_order():
    held = returned_before("SN1", PRIOR, shipped_on_order=False, order_placed_at=None)
    assert held is not None and held.kind == "returned_before" and held.holds
    assert held.explanation.startswith("serial SN1 was returned before, on RMA-3001, on 2026-10-01 (unit LP00000042, now available)")
    resold = returned_before("SN1", PRIOR, shipped_on_order=True, order_placed_at=T0 + timedelta(days=3))
    assert resold is not None and not resold.holds and resold.details["resold"] is True
    # shipped on this order, but the order predates the earlier return: not a resale, held
    stale = returned_before("SN1", PRIOR, shipped_on_order=True, order_placed_at=T0 - timedelta(days=3))
    assert stale is not None and stale.holds


def test_a_serial_returned_in_a_blind_parcel_says_so():
    flag = returned_before("SN1", PriorReturn("LP1", "disposed", None, T0), shipped_on_order=False, order_placed_at=None)
    assert flag is not None and "in a parcel of no return" in flag.explanation and "now disposed" in flag.explanation


def test_a_swap_is_a_serial_shipped_elsewhere_and_not_on_the_returns_order():
    assert swap("SN1", None, shipped_on_order=False) is None  # never shipped: a plain mismatch
    assert swap("SN1", Shipment("SO-9", False), shipped_on_order=True) is None  # it matches this order
    other = swap("SN1", Shipment("SO-9", False), shipped_on_order=False)
    assert other is not None and other.holds and "shipped on order SO-9, to another customer" in other.explanation
    mine = swap("SN1", Shipment("SO-8", True), shipped_on_order=False)
    assert mine is not None and "to this same customer" in mine.explanation


def figures(returns: int, orders: int, value: str, rate: str = "0.10", per_customer: str = "50") -> CustomerFigures:
    return CustomerFigures(returns, orders, Decimal(value), Decimal(rate), Decimal(per_customer))


def test_a_customer_far_above_the_merchants_return_rate_is_flagged():
    flag = customer_norm(figures(4, 5, "100"), **NORM)  # 80 % against 10 %
    assert flag is not None and flag.holds and flag.kind == "customer_norm"
    assert "4 returns on 5 orders (80%), 8.0x the merchant's 10%" in flag.explanation
    assert "more than 3x" in flag.explanation


def test_a_customer_asking_back_far_more_than_the_norm_is_flagged():
    flag = customer_norm(figures(3, 30, "900"), **NORM)  # rate 10 %: normal; value 18x
    assert flag is not None and "900.00 asked back, 18.0x the merchant's 50.00 per returning customer" in flag.explanation
    assert "orders (" not in flag.explanation


def test_a_customer_within_the_norm_or_with_few_returns_is_not_flagged():
    assert customer_norm(figures(3, 20, "120"), **NORM) is None  # 15 % and 120: under 3x
    assert customer_norm(figures(2, 2, "5000"), **NORM) is None  # far above, but two returns are not a pattern
    assert customer_norm(figures(5, 5, "5000"), factor=Decimal(3), min_returns=6) is None
    assert customer_norm(figures(4, 5, "100"), factor=Decimal("10"), min_returns=3) is None
    assert customer_norm(figures(4, 5, "100", rate="0", per_customer="0"), **NORM) is None  # no norm to compare


def test_an_empty_box_holds_every_refund_of_its_return():
    flag = empty_box("1Z999", "tape cut")
    assert flag.holds and flag.kind == "empty_box"
    assert flag.explanation == "parcel 1Z999 was reported empty (\u201ctape cut\u201d): every refund of this return waits for a supervisor"
    assert "(" not in empty_box("1Z999", None).explanation
