"""The returns dashboard in Chromium on PostgreSQL, at 1366x900 (desktop) and 768x1024 (tablet):
tiles with trend, formula and date basis, a tile drilled down to its units and on to the desk's
unit page, the reasons, recovery and flow pages with their SVG charts, a CSV download, and a bad
filter answered with its message. Screenshots in test-artifacts/screenshots/reports-*.png."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db import make_engine, utcnow
from app.orders.models import RmaLine
from tests.e2e.conftest import _refusing_csp_violations, shoot, sign_in
from tests.report_data import exception, order, reason_codes, refund, rma, unit

pytestmark = pytest.mark.e2e


@pytest.fixture
def tablet(browser):  # type: ignore[no-untyped-def]
    yield from _refusing_csp_violations(browser.new_context(viewport={"width": 768, "height": 1024}))


@pytest.fixture
def history(e2e_db_url, e2e_world):  # type: ignore[no-untyped-def]
    """Eight weeks of returns at both warehouses, a sizing spike this week, a few things waiting."""
    engine = make_engine(e2e_db_url)
    now = utcnow()
    with Session(engine) as s:
        w = e2e_world
        reason_codes(s)
        for days_ago in range(1, 56, 3):
            moment = now - timedelta(days=days_ago, hours=days_ago % 7)
            lines = (("shirt", 2 if days_ago < 7 else 1, "wrong_size"), ("phone", 1, "defective"))
            r = rma(s, w, moment - timedelta(days=3), lines=lines, carrier=("UPS" if days_ago % 2 else "FedEx", "delivered", moment),
                    warehouse=w.wh3pl if days_ago % 4 == 0 else None)
            order(s, w, moment - timedelta(days=10), (("shirt", 4), ("phone", 2)))
            shirt_line, phone_line = s.scalars(select(RmaLine.id).where(RmaLine.rma_id == r.id).order_by(RmaLine.id)).all()
            state = ("available", "refurbish", "liquidation", "available", "disposed")[days_ago % 5]
            a = unit(s, w, state=state, received=moment, inspected=moment + timedelta(hours=5), rma_id=r.id, rma_line_id=shirt_line,
                     grade="ABCDA"[days_ago % 5], packaging="opened", paid="25.00",
                     warehouse=w.wh3pl if days_ago % 4 == 0 else None, by="worker" if days_ago % 2 else "worker2")
            unit(s, w, state="available", received=moment + timedelta(minutes=20), inspected=moment + timedelta(hours=9),
                 rma_id=r.id, rma_line_id=phone_line, product="phone", paid="649.00", grade="A", packaging="sealed")
            refund(s, w, a, released=moment + timedelta(hours=6), amount="25.00")
            if days_ago % 2:
                exception(s, w, moment + timedelta(minutes=5), type_="wrong_item" if days_ago % 3 else "damaged_in_transit",
                          status="resolved" if days_ago > 14 else "open")
        unit(s, w, state="quarantine", received=now - timedelta(days=12), changed=now - timedelta(days=10), paid="80.00")
        unit(s, w, state="received", received=now - timedelta(hours=30))
        rma(s, w, now - timedelta(days=1), status="in_transit", lines=(("shirt", 3, "wrong_size"),),
            carrier=("UPS", "in_transit", now - timedelta(hours=12)))
        s.commit()
    engine.dispose()
    return e2e_world


@pytest.mark.parametrize("size", ["desktop", "tablet"])
def test_the_dashboard_in_chromium(live_server, history, request, size) -> None:  # type: ignore[no-untyped-def]
    ctx = request.getfixturevalue(size)
    page = ctx.new_page()
    sign_in(page, live_server, "super")
    page.click("main >> text=Open the returns dashboard")
    page.wait_for_selector(".kpi-grid")
    for key in ("cycle_time", "refund_latency", "restock_latency", "recovery_rate", "recovery_value", "quarantine_age",
                "exceptions", "units_per_hour"):
        tile = page.inner_text(f"#kpi-{key}")
        assert "Date basis:" in tile and "Formula" in tile, key
    assert "vs" in page.inner_text("#kpi-cycle_time")  # a trend against the period before
    assert page.locator("svg[role=img] > title").first.text_content() == "Units received per day"
    shoot(page, f"reports-overview-{size}")

    page.click("#kpi-units_per_hour .kpi-value a")
    page.wait_for_selector(".drill-table")
    assert page.locator(".drill-table tbody tr").count() >= 10
    shoot(page, f"reports-drill-{size}")
    page.click(".drill-table tbody tr:first-child a.case-link")
    page.wait_for_url("**/desk/units/*")

    page.goto(f"{live_server}/reports/reasons?by=sku")
    page.wait_for_selector("#pareto-h")
    assert "TEE-BLU-M" in page.inner_text(".spikes")  # the sizing spike this week
    assert "PHN-X1-128" in page.inner_text("#no-fault")  # defective, no fault found
    shoot(page, f"reports-reasons-{size}")
    with page.expect_download() as got:
        page.click("a.export >> nth=0")
    assert got.value.suggested_filename.startswith("dockhand-reasons-pareto-")

    page.goto(f"{live_server}/reports/recovery")
    page.wait_for_selector("#leakage")
    shoot(page, f"reports-recovery-{size}")
    page.goto(f"{live_server}/reports/flow")
    page.wait_for_selector("#forecast-h")
    shoot(page, f"reports-flow-{size}")

    page.goto(f"{live_server}/reports?from=2026-02-30")
    assert "'from' must be a date" in page.inner_text("main")
    shoot(page, f"reports-bad-filter-{size}")


def test_a_partner_sees_their_figures_without_money(live_server, history, tablet) -> None:  # type: ignore[no-untyped-def]
    page = tablet.new_page()
    sign_in(page, live_server, "partner")
    page.goto(f"{live_server}/")
    page.click("#my-figures")
    page.wait_for_selector(".kpi-grid")
    text = page.inner_text("main")
    assert "$" not in text and "Recovered value" not in text and "Recovery" not in page.inner_text(".reports-tabs")
    shoot(page, "reports-overview-partner-tablet")
