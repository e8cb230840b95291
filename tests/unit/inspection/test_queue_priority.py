"""The inspection queue's priority, worked by hand (app/inspection/domain.py).

value: 1 point per $5 up to $500; sell rate: 5 points per unit shipped a day over 28 days, up to
20 a day; age: 1 point an hour up to 120. A part of 20 points or more is a reason of its own."""
from __future__ import annotations

from decimal import Decimal

import pytest

from app.inspection.domain import age_words, per_day, priority


def test_a_fast_seller_outranks_a_dear_unit_that_sells_slowly():
    # tee: $25 -> 5; 1064 shipped in 28 days = 38 a day -> capped at 20 a day -> 100; 5 h -> 5: 110
    tee = priority(Decimal("25.00"), 1064, 5.0)
    assert (tee.value_points, tee.speed_points, tee.age_points, tee.score) == (5, 100, 5, 110)
    assert tee.reason == "fast seller: 38 shipped a day"
    # phone: $699 -> capped at $500 -> 100; 14 shipped in 28 days = 0.5 a day -> 2.5; 2 h -> 2: 104.5
    phone = priority(Decimal("699.00"), 14, 2.0)
    assert (phone.value_points, phone.speed_points, phone.age_points, phone.score) == (100, 2.5, 2, 104.5)
    assert phone.reason == "high value: $699"
    assert tee.score > phone.score


def test_every_notable_part_is_named_largest_first():
    # $150 -> 30; 140 in 28 days = 5 a day -> 25; 30 h -> 30: 85, value and age tie at 30 (value named first)
    p = priority(Decimal("150"), 140, 30.0)
    assert p.score == 85
    assert p.reason == "high value: $150 · waiting 30 h · fast seller: 5 shipped a day"


def test_a_unit_with_no_notable_part_gives_its_largest_part():
    # $40 -> 8; 7 in 28 days = 0.25 a day -> 1.25; 3 h -> 3: the value is the largest part
    p = priority(Decimal("40"), 7, 3.0)
    assert p.score == pytest.approx(12.25)
    assert p.reason == "value $40"
    # nothing sold, cheap, new: 1 + 0 + 0.5
    q = priority(Decimal("5"), 0, 0.5)
    assert q.score == 1.5 and q.reason == "value $5"
    # a slow seller with nothing else: 2 + 2.5 + 0
    r = priority(Decimal("10"), 14, 0)
    assert r.reason == "14 shipped in 28 days"


def test_age_catches_up_and_is_capped():
    # a $10 unit of a SKU that never sells, 4 days old: 2 + 0 + 96 = 98
    old = priority(Decimal("10"), 0, 96.0)
    assert old.score == 98 and old.reason == "waiting 4 days"
    # ten days count as five
    assert priority(Decimal("10"), 0, 240.0).age_points == 120


def test_a_partner_sees_no_amount():
    assert priority(Decimal("699"), 0, 1, show_value=False).reason == "high value"
    assert priority(Decimal("12"), 0, 0, show_value=False).reason == "low value"


def test_missing_or_odd_figures_do_not_break_the_rule():
    p = priority(None, -3, -2.0)
    assert p.score == 0 and p.reason == "no sales in 28 days"  # a tie: the sell rate is named first
    assert per_day(56) == 2.0 and per_day(56, 7) == 8.0


@pytest.mark.parametrize(("hours", "words"), [(0, "0 min"), (0.5, "30 min"), (3.9, "3 h"), (47.5, "47 h"),
                                              (48, "2 days"), (24 * 9 + 5, "9 days")])
def test_age_in_words(hours, words):
    assert age_words(hours) == words
