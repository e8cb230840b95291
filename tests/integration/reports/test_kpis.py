"""Each KPI on a small data set whose figure is worked out by hand here (SQLite and PostgreSQL).

The period is 1-7 November 2026 (tests/report_data.WEEK); the period before, 25-31 October."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from sqlalchemy.orm import Session

from app.db import utcnow
from app.reports import domain
from app.reports import queries as q
from tests.report_data import WEEK, at, exception, refund, rma, unit

RATES = domain.recovery_rates({"recovery_rate_refurbish": Decimal("0.60"), "recovery_rate_liquidation": Decimal("0.20"),
                               "recovery_rate_vendor_return": Decimal("0.80")})


def _figures(session: Session, world, who: str = "super") -> dict[str, domain.Figure]:  # type: ignore[no-untyped-def]
    session.commit()
    return {x.metric.key: x for x in q.kpis(session, world.actor(who), WEEK, RATES)}


def test_cycle_time_is_the_mean_days_from_authorisation_to_inspection(session: Session, world) -> None:  # type: ignore[no-untyped-def]
    now_r = rma(session, world, at(1))
    before_r = rma(session, world, at(26, month=10))
    unit(session, world, state="available", received=at(2), inspected=at(3), rma_id=now_r.id)  # 2 days
    unit(session, world, state="available", received=at(2), inspected=at(5), rma_id=now_r.id)  # 4 days
    unit(session, world, state="available", received=at(27, month=10), inspected=at(30, month=10), rma_id=before_r.id)  # 4 days
    unit(session, world, state="available", received=at(2), inspected=at(9), rma_id=now_r.id)  # after the period
    x = _figures(session, world)["cycle_time"]
    # (2 + 4) / 2 = 3.0 days; before: 4.0; lower is better
    assert (x.value, x.previous, x.count, x.change, x.trend) == (Decimal("3.0"), Decimal("4.0"), 2, Decimal("-1.0"), "better")


def test_refund_latency_is_the_mean_hours_from_receipt_to_release(session: Session, world) -> None:  # type: ignore[no-untyped-def]
    a = unit(session, world, state="available", received=at(2), inspected=at(2, 1))
    b = unit(session, world, state="available", received=at(3), inspected=at(3, 1))
    c = unit(session, world, state="available", received=at(27, month=10), inspected=at(27, 1, month=10))
    d = unit(session, world, state="received", received=at(3))
    refund(session, world, a, released=at(2, 6))  # 6 h
    refund(session, world, b, released=at(4))  # 24 h
    refund(session, world, c, released=at(28, 12, month=10))  # 36 h, the period before
    refund(session, world, d, released=None, status="awaiting_inspection")  # not released: not counted
    x = _figures(session, world)["refund_latency"]
    # (6 + 24) / 2 = 15.0 h; before: 36.0 h
    assert (x.value, x.previous, x.count, x.trend) == (Decimal("15.0"), Decimal("36.0"), 2, "better")


def test_restock_latency_counts_units_now_available(session: Session, world) -> None:  # type: ignore[no-untyped-def]
    unit(session, world, state="available", received=at(2), changed=at(2, 10))  # 10 h
    unit(session, world, state="available", received=at(4), changed=at(4, 20))  # 20 h
    unit(session, world, state="refurbish", received=at(4), changed=at(4, 1))  # not restocked
    unit(session, world, state="available", received=at(29, month=10), changed=at(30, 2, month=10))  # 26 h, before
    x = _figures(session, world)["restock_latency"]
    # (10 + 20) / 2 = 15.0 h; before: 26.0 h
    assert (x.value, x.previous, x.count) == (Decimal("15.0"), Decimal("26.0"), 2)


def test_recovery_rate_and_value_weigh_each_disposition(session: Session, world) -> None:  # type: ignore[no-untyped-def]
    for state, paid in (("available", "100.00"), ("refurbish", "50.00"), ("liquidation", "20.00"),
                        ("vendor_return", "10.00"), ("disposed", "40.00")):
        unit(session, world, state=state, received=at(2), inspected=at(3), paid=paid)
    unit(session, world, state="quarantine", received=at(2), inspected=at(3), paid="500.00")  # undecided: left out
    unit(session, world, state="available", received=at(2), inspected=at(3), paid=None, product="cream")  # list value 40
    unit(session, world, state="liquidation", received=at(26, month=10), inspected=at(27, month=10), paid="100.00")
    x = _figures(session, world)
    # recovered: 100 + 50×0.6 + 20×0.2 + 10×0.8 + 40×0 + 40 (cream at list value) = 182; paid: 100+50+20+10+40+40 = 260
    assert x["recovery_value"].value == Decimal("182.00")
    assert x["recovery_rate"].value == Decimal("70.0")  # 182 / 260 = 70.0 %
    assert x["recovery_rate"].count == 6
    # before: 100 × 0.2 = 20 of 100 = 20.0 %
    assert (x["recovery_value"].previous, x["recovery_rate"].previous) == (Decimal("20.00"), Decimal("20.0"))
    assert x["recovery_rate"].trend == "better"


def test_quarantine_ageing_is_the_mean_age_now(session: Session, world) -> None:  # type: ignore[no-untyped-def]
    now = utcnow()
    unit(session, world, state="quarantine", received=now - timedelta(days=5), changed=now - timedelta(days=3))
    unit(session, world, state="quarantine", received=now - timedelta(days=5), changed=now - timedelta(days=1))
    unit(session, world, state="available", received=now - timedelta(days=9), changed=now - timedelta(days=8))
    x = _figures(session, world)["quarantine_age"]
    assert (x.value, x.count, x.trend) == (Decimal("2.0"), 2, "none")  # (3 + 1) / 2 days, a snapshot


def test_exception_volume_counts_openings(session: Session, world) -> None:  # type: ignore[no-untyped-def]
    for day in (1, 4, 7):
        exception(session, world, at(day, 23, 59))
    exception(session, world, at(31, month=10), status="resolved")
    exception(session, world, at(8))  # after the period
    x = _figures(session, world)["exceptions"]
    assert (x.value, x.previous, x.change, x.change_pct, x.trend) == (3, 1, 2, Decimal("200"), "worse")


def test_units_per_worker_hour_count_clock_hours_with_a_unit(session: Session, world) -> None:  # type: ignore[no-untyped-def]
    for minute_at in (at(2, 9, 5), at(2, 9, 40), at(2, 10, 10)):
        unit(session, world, state="received", received=minute_at, by="worker")  # hours 09 and 10: 2 worker-hours
    unit(session, world, state="received", received=at(2, 9, 30), by="worker2")  # 1 worker-hour
    for minute_at in (at(28, 8, 0, month=10), at(28, 8, 30, month=10)):
        unit(session, world, state="received", received=minute_at, by="worker")  # before: 2 units in 1 hour
    x = _figures(session, world)["units_per_hour"]
    assert (x.value, x.previous, x.count) == (Decimal("1.3"), Decimal("2.0"), 4)  # 4 units / 3 worker-hours
    people = {w.name: (w.units, w.hours) for w in q.workers(session, world.actor("super"), WEEK)}
    assert people == {"Worker": (3, 2), "Worker2": (1, 1)}
    assert [(w.name, w.units) for w in q.workers(session, world.actor("worker2"), WEEK)] == [("Worker2", 1)]


def test_a_partner_sees_only_their_warehouse_and_no_money(session: Session, world) -> None:  # type: ignore[no-untyped-def]
    unit(session, world, state="available", received=at(2), inspected=at(3), warehouse=world.wh3pl, paid="10.00")
    unit(session, world, state="available", received=at(2), inspected=at(3), paid="90.00")
    unit(session, world, state="received", received=at(2, 9), warehouse=world.wh3pl)
    unit(session, world, state="received", received=at(2, 9), warehouse=world.wh)
    exception(session, world, at(3), warehouse=world.wh)
    partner = _figures(session, world, "partner")
    assert "recovery_value" not in partner and "recovery_rate" not in partner
    assert partner["units_per_hour"].count == 2  # the 3PL's two units, not the main DC's
    assert partner["exceptions"].value == 0
    staff = _figures(session, world, "super")
    assert staff["units_per_hour"].count == 4 and staff["recovery_value"].value == Decimal("100.00")
    rows = q.drill(session, world.actor("partner"), WEEK, domain.METRIC_KEYS["units_per_hour"], False, RATES).rows
    assert len(rows) == 2 and all(r.value is None for r in rows)
    outsider = _figures(session, world, "outsider")
    assert outsider["units_per_hour"].count == 0


def test_filters_narrow_every_figure(session: Session, world) -> None:  # type: ignore[no-untyped-def]
    from dataclasses import replace

    unit(session, world, state="received", received=at(2, 9), product="shirt")
    unit(session, world, state="received", received=at(2, 9), product="phone", paid="600.00")
    session.commit()
    actor = world.actor("super")
    by_cat = {x.metric.key: x for x in q.kpis(session, actor, replace(WEEK, category="electronics"), RATES)}
    assert by_cat["units_per_hour"].count == 1
    by_wh = {x.metric.key: x for x in q.kpis(session, actor, replace(WEEK, warehouse="3PL1"), RATES)}
    assert by_wh["units_per_hour"].count == 0


def test_drill_down_lists_the_rows_behind_a_figure(session: Session, world) -> None:  # type: ignore[no-untyped-def]
    r = rma(session, world, at(1))
    a = unit(session, world, state="available", received=at(2), inspected=at(3), rma_id=r.id)
    unit(session, world, state="available", received=at(2), inspected=at(5), rma_id=r.id)
    session.commit()
    d = q.drill(session, world.actor("super"), WEEK, domain.METRIC_KEYS["cycle_time"], False, RATES)
    assert d.total == 2 and [x.figure for x in d.rows] == [Decimal("4.00"), Decimal("2.00")]
    assert d.rows[1].unit_id == a and d.rows[1].rma_number == r.number
    before = q.drill(session, world.actor("super"), WEEK, domain.METRIC_KEYS["cycle_time"], True, RATES)
    assert before.total == 0
