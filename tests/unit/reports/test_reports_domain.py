"""The dashboard's pure rules: filters, trends, buckets, Pareto, spikes, forecast, charts, findings."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from app.reports import charts, domain
from app.reports.domain import BadFilter, Figure, Filters
from app.web.exports import cell

TODAY = date(2026, 12, 3)
CHOICES = {"warehouse": ["WH1"], "merchant": ["ACME"], "channel": ["web"], "category": ["apparel"], "carrier": ["UPS"]}


def test_filters_default_to_the_last_28_days_and_the_period_before() -> None:
    f = domain.parse_filters({}, TODAY, CHOICES)
    assert (f.start, f.end, f.days) == (date(2026, 11, 6), TODAY, 28)
    assert (f.previous().start, f.previous().end) == (date(2026, 10, 9), date(2026, 11, 5))
    assert f.since == datetime(2026, 11, 6, tzinfo=timezone.utc) and f.until == datetime(2026, 12, 4, tzinfo=timezone.utc)
    assert domain.parse_filters({"warehouse": " WH1 ", "to": "2026-11-30"}, TODAY, CHOICES).args() == {
        "from": "2026-11-03", "to": "2026-11-30", "warehouse": "WH1"}


@pytest.mark.parametrize(("args", "says"), [
    ({"from": "30/11/2026"}, "YYYY-MM-DD"), ({"from": "2026-12-02", "to": "2026-12-01"}, "after it ends"),
    ({"from": "2025-01-01"}, "at most 366"), ({"category": "shoes"}, "no category 'shoes'"),
    ({"carrier": "UPS\u202e"}, "no carrier"), ({"to": "2099-01-01", "from": "2098-12-01"}, "between 2000-01-01"),
])
def test_bad_filters_say_what_is_allowed(args, says) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(BadFilter, match=says) as refused:
        domain.parse_filters(args, TODAY, CHOICES)
    assert refused.value.status_code == 400


def test_a_trend_is_better_or_worse_by_the_metric_s_direction() -> None:
    cycle, rate = domain.METRIC_KEYS["cycle_time"], domain.METRIC_KEYS["recovery_rate"]
    assert Figure(cycle, Decimal("3.0"), Decimal("4.0")).trend == "better"
    assert Figure(rate, Decimal("3.0"), Decimal("4.0")).trend == "worse"
    assert Figure(rate, Decimal("3.0"), Decimal("3.0")).trend == "same"
    assert Figure(rate, None, Decimal("3.0")).trend == "none"
    assert Figure(cycle, Decimal("6"), Decimal("4")).change_pct == Decimal("50")
    assert Figure(cycle, Decimal("6"), Decimal("0")).change_pct is None
    assert [m.key for m in domain.metrics_for(partner=True)] == [
        "cycle_time", "refund_latency", "restock_latency", "quarantine_age", "exceptions", "units_per_hour"]


def test_age_buckets_edges() -> None:
    assert [domain.age_bucket(h) for h in (0, 23.99, 24, 47.9, 48, 167.9, 168, 1000)] == [
        "< 24 h", "< 24 h", "1–2 d", "1–2 d", "2–7 d", "2–7 d", "> 7 d", "> 7 d"]


def test_pareto_shares_and_spikes() -> None:
    rows = domain.pareto([("b", "B", 1, 4, 0), ("a", "A", 3, None, 3)])
    assert [(r.key, r.share, r.cumulative, r.return_rate, r.avoidable_share) for r in rows] == [
        ("a", Decimal("75.0"), Decimal("75.0"), None, Decimal("100.0")), ("b", Decimal("25.0"), Decimal("100.0"), Decimal("25.0"), Decimal("0.0"))]
    assert domain.is_spike(3, [0] * 8) and not domain.is_spike(2, [0] * 8)
    assert domain.is_spike(4, [2] * 8) and not domain.is_spike(3, [2] * 8)
    assert domain.spikes({("x", "wrong_size"): {0: 5, 3: 2}}) == [domain.Spike("x", "wrong_size", 5, Decimal("0.2"))]


def test_forecast_counts_overdue_today_and_drops_beyond_a_week() -> None:
    days = domain.forecast([(TODAY - timedelta(days=2), 2), (TODAY + timedelta(days=1), 3), (TODAY + timedelta(days=9), 9)],
                           TODAY, Decimal("4"))
    assert [(d.units, d.hours) for d in days[:2]] == [(2, Decimal("0.5")), (3, Decimal("0.8"))]
    assert len(days) == 7 and sum(d.units for d in days) == 5
    moment = datetime(2026, 12, 1, 10, tzinfo=timezone.utc)
    assert domain.expected_arrival("in_transit", moment, moment, TODAY) == TODAY  # 1 Dec + 2 days = 3 Dec
    assert domain.expected_arrival(None, None, moment, TODAY) == date(2026, 12, 5)


def test_findings_and_recovery_rates() -> None:
    assert domain.finding("A", "opened", "mismatch") == "Wrong item or serial"
    assert domain.finding("B", "damaged", "match") == "Damaged or faulty"
    assert domain.finding("C", "opened", "not_tracked") == "Worn or used"
    assert domain.finding("B", "sealed", "match") == domain.NO_FAULT
    rates = domain.recovery_rates({"recovery_rate_refurbish": "0.5", "recovery_rate_liquidation": "0.1",
                                   "recovery_rate_vendor_return": "0.7"})
    assert rates == {"available": 1, "disposed": 0, "refurbish": Decimal("0.5"), "liquidation": Decimal("0.1"),
                     "vendor_return": Decimal("0.7")}


def test_a_chart_scales_to_a_round_top_and_draws_the_running_share() -> None:
    c = charts.bar_chart("t", "T", "D", [("a", 3), ("b", 1)], [75, 100])
    assert [t for _, t in c.ticks] == ["0", "1", "2", "3", "4"]
    assert c.bars[0].h == pytest.approx(170 * 3 / 4, abs=0.1) and c.share_ticks is not None and c.line
    assert charts.bar_chart("t", "T", "D", []).bars == []


def test_a_csv_cell_keeps_a_negative_number_and_neutralises_text() -> None:
    assert [cell(v) for v in (Decimal("-1.5"), -3, "-3", "=1+1")] == ["-1.5", "-3", "'-3", "'=1+1"]
