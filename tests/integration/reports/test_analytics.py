"""Reason analytics, recovery, flow and the inbound forecast on small hand-worked data sets
(SQLite and PostgreSQL)."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db import utcnow
from app.orders.models import RmaLine
from app.reports import domain
from app.reports import queries as q
from tests.integration.reports.test_kpis import RATES
from tests.report_data import WEEK, at, exception, order, reason_codes, refund, rma, unit


def test_pareto_return_rate_and_avoidable_share(session: Session, world) -> None:  # type: ignore[no-untyped-def]
    reason_codes(session)
    rma(session, world, at(2), lines=(("shirt", 3, "wrong_size"), ("phone", 1, "defective")), carrier=("UPS", "delivered", at(2)))
    rma(session, world, at(6), lines=(("shirt", 1, "no_longer_needed"),))
    rma(session, world, at(20, month=10), lines=(("cream", 5, "defective"),))  # before the period: not counted
    order(session, world, at(1), (("shirt", 2), ("phone", 1), ("cream", 1)))
    order(session, world, at(3), (("shirt", 6),))
    session.commit()
    by_sku = q.reasons(session, world.actor("super"), WEEK, "sku")
    rows = {r.key: r for r in by_sku.rows}
    assert [r.key for r in by_sku.rows] == ["TEE-BLU-M", "PHN-X1-128"] and by_sku.total == 5
    shirt, phone = rows["TEE-BLU-M"], rows["PHN-X1-128"]
    # shirt: 4 of 5 units = 80 %; shipped 2 + 6 = 8 → return rate 4/8 = 50 %; avoidable 3 of 4 = 75 %
    assert (shirt.units, shirt.share, shirt.cumulative, shirt.shipped, shirt.return_rate, shirt.avoidable_share) == (
        4, Decimal("80.0"), Decimal("80.0"), 8, Decimal("50.0"), Decimal("75.0"))
    assert (phone.share, phone.cumulative, phone.return_rate, phone.avoidable_share) == (
        Decimal("20.0"), Decimal("100.0"), Decimal("100.0"), Decimal("100.0"))
    assert by_sku.top_reason["TEE-BLU-M"] == ("wrong_size", 3)
    by_reason = q.reasons(session, world.actor("super"), WEEK, "reason")
    assert [(r.key, r.units, r.shipped) for r in by_reason.rows] == [("wrong_size", 3, None), ("defective", 1, None),
                                                                      ("no_longer_needed", 1, None)]
    by_carrier = q.reasons(session, world.actor("super"), WEEK, "carrier")
    assert {r.key: r.units for r in by_carrier.rows} == {"UPS": 4, "(none)": 1}
    by_channel = q.reasons(session, world.actor("super"), WEEK, "channel")
    assert [(r.key, r.units, r.shipped) for r in by_channel.rows] == [("web", 5, 10)]  # 5 of 10 shipped


def test_a_spike_is_this_week_against_the_eight_before(session: Session, world) -> None:  # type: ignore[no-untyped-def]
    reason_codes(session)
    rma(session, world, at(2), lines=(("shirt", 3, "wrong_size"),))  # this week (1-7 Nov): 3
    rma(session, world, at(10, month=10), lines=(("shirt", 1, "wrong_size"),))  # 4 weeks before: baseline 1/8
    rma(session, world, at(3), lines=(("phone", 2, "defective"),))  # 2: under the minimum of 3
    for day in (4, 11, 18, 25):  # defective on the cream: 3 this week, but 3 a week for four weeks before
        rma(session, world, at(day, month=10), lines=(("cream", 3, "defective"),))
    rma(session, world, at(5), lines=(("cream", 3, "defective"),))
    session.commit()
    spikes = q.reasons(session, world.actor("super"), WEEK, "sku").spikes
    # cream: baseline (3×4)/8 = 1.5 a week, 3 is exactly twice that: flagged too
    assert [(s.key, s.reason, s.this_week, s.baseline) for s in spikes] == [
        ("HB-CREAM-50", "defective", 3, Decimal("1.5")), ("TEE-BLU-M", "wrong_size", 3, Decimal("0.1"))]


def test_stated_reason_against_what_inspection_found(session: Session, world) -> None:  # type: ignore[no-untyped-def]
    reason_codes(session)
    r = rma(session, world, at(1), lines=(("phone", 3, "defective"), ("shirt", 2, "wrong_size")))
    phone_line, shirt_line = session.scalars(select(RmaLine.id).where(RmaLine.rma_id == r.id).order_by(RmaLine.id)).all()
    for grade, serial in (("A", "match"), ("D", "match"), ("A", "mismatch")):
        unit(session, world, state="available", received=at(2), inspected=at(3), product="phone", rma_id=r.id,
             rma_line_id=phone_line, grade=grade, packaging="opened", serial_status=serial)
    unit(session, world, state="available", received=at(2), inspected=at(3), rma_id=r.id, rma_line_id=shirt_line,
         grade="C", packaging="opened")
    unit(session, world, state="available", received=at(2), inspected=at(3), rma_id=r.id, rma_line_id=shirt_line,
         grade="B", packaging="damaged")
    session.commit()
    data = q.reasons(session, world.actor("super"), WEEK, "sku")
    assert data.stated_found == {"defective": {"No fault found": 1, "Damaged or faulty": 1, "Wrong item or serial": 1},
                                 "wrong_size": {"Worn or used": 1, "Damaged or faulty": 1}}
    assert data.no_fault == [("PHN-X1-128", "web", "defective", 1)]
    assert domain.finding("A", "opened", "match") == domain.NO_FAULT  # the rule the SQL is written from


def test_recovery_by_disposition_leakage_and_value_waiting(session: Session, world) -> None:  # type: ignore[no-untyped-def]
    unit(session, world, state="refurbish", received=at(2), inspected=at(3), paid="50.00")
    unit(session, world, state="refurbish", received=at(2), inspected=at(3), paid="30.00")
    bad = unit(session, world, state="disposed", received=at(2), inspected=at(3), paid="25.00", grade="D")
    wrong = unit(session, world, state="available", received=at(2), inspected=at(3), paid="15.00", grade="A")
    fine = unit(session, world, state="available", received=at(2), inspected=at(3), paid="20.00", grade="A")
    refund(session, world, bad, released=at(4), amount="25.00")
    refund(session, world, wrong, released=at(4), amount="15.00")
    refund(session, world, fine, released=at(4), amount="20.00")
    exception(session, world, at(5), type_="wrong_item", unit_id=wrong)
    unit(session, world, state="received", received=utcnow(), paid="70.00")
    unit(session, world, state="quarantine", received=utcnow(), paid="5.00")
    unit(session, world, state="quarantine", received=utcnow(), paid=None, product="phone")  # list value 699
    session.commit()
    data = q.recovery(session, world.actor("super"), WEEK, RATES)
    rows = {r.state: (r.units, r.paid, r.recovered) for r in data.rows}
    assert rows["refurbish"] == (2, Decimal("80.00"), Decimal("48.00"))  # 80 × 0.6
    assert rows["available"] == (2, Decimal("35.00"), Decimal("35.00"))
    assert rows["disposed"] == (1, Decimal("25.00"), Decimal("0.00"))
    assert rows["liquidation"] == (0, Decimal("0.00"), Decimal("0.00"))
    assert (data.leakage_count, data.leakage_amount) == (2, Decimal("40.00"))  # graded D (25) and a wrong item (15)
    assert data.waiting == {"received": (1, Decimal("70.00")), "quarantine": (2, Decimal("704.00"))}


def test_backlog_by_stage_and_age(session: Session, world) -> None:  # type: ignore[no-untyped-def]
    now = utcnow()
    unit(session, world, state="received", received=now - timedelta(hours=30))  # 1-2 d
    unit(session, world, state="received", received=now - timedelta(hours=2))  # < 24 h
    unit(session, world, state="received", received=now - timedelta(hours=2), inspected=now)  # inspected: not waiting
    unit(session, world, state="quarantine", received=now - timedelta(days=12), changed=now - timedelta(days=10))  # > 7 d
    exception(session, world, now - timedelta(hours=1))  # < 24 h
    exception(session, world, now - timedelta(days=3), status="resolved")
    rma(session, world, now - timedelta(days=6), status="in_transit", carrier=("UPS", "delivered", now - timedelta(days=3)))
    session.commit()
    b = q.backlog(session, world.actor("super"), WEEK)
    assert b["received"] == {"< 24 h": 1, "1–2 d": 1, "2–7 d": 0, "> 7 d": 0}
    assert b["quarantine"] == {"< 24 h": 0, "1–2 d": 0, "2–7 d": 0, "> 7 d": 1}
    assert b["exceptions"]["< 24 h"] == 1 and sum(b["exceptions"].values()) == 1
    assert b["in_transit"]["2–7 d"] == 1 and sum(b["in_transit"].values()) == 1


def test_throughput_by_hour_of_day(session: Session, world) -> None:  # type: ignore[no-untyped-def]
    for moment in (at(2, 9, 5), at(3, 9, 59), at(3, 14)):
        unit(session, world, state="received", received=moment)
    session.commit()
    hours = q.throughput_by_hour(session, world.actor("super"), WEEK)
    assert (hours[9], hours[14], sum(hours)) == (2, 1, 3)


def test_inbound_forecast_by_expected_arrival(session: Session, world) -> None:  # type: ignore[no-untyped-def]
    now = utcnow()
    today = now.date()
    # the world's return: in transit, 3 units (phone 1, shirt 2); its carrier said in transit yesterday → tomorrow
    world.tracking.last_event_at = now - timedelta(days=1)
    rma(session, world, now, status="authorized", lines=(("cream", 4, "defective"),))  # no tracking: a label's 4 days
    rma(session, world, now - timedelta(days=9), status="authorized", lines=(("cream", 2, "defective"),))  # overdue: today
    rma(session, world, now, status="closed", lines=(("cream", 7, "defective"),))  # closed: not inbound
    session.commit()
    arrivals = q.inbound(session, world.actor("super"), WEEK)
    days = domain.forecast(arrivals, today, Decimal("2"))
    assert [(d.day - today).days for d in days] == list(range(7))
    got = {(d.day - today).days: (d.units, d.hours) for d in days if d.units}
    assert got == {0: (2, Decimal("1.0")), 1: (3, Decimal("1.5")), 4: (4, Decimal("2.0"))}
