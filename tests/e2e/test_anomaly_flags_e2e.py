"""An anomaly flag from the dock to its release (issue 18): on a Pixel 5, a supervisor working the dock
receives a phone whose serial was returned before, sees the notice, inspects it and confirms its
disposition; the refund is held. At the desk (1366x900) the same person, who inspected it, is refused
in words; the queue tags the row; a second supervisor reads the flag on the case page and releases
the refund, and the flag shows cleared. Screenshots to look at."""
from __future__ import annotations


import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.anomalies.models import AnomalyFlag
from app.db import make_engine
from app.ledger.models import ReturnUnit
from app.refunds.models import RefundTrigger
from tests.e2e.conftest import shoot, sign_in, too_small
from tests.helpers import move_direct
from tests.integration.anomalies.test_fraud_hold import same_order_again
from tests.integration.anomalies.test_serial_flags import SERIAL, receive_phone

pytestmark = pytest.mark.e2e


def _shot(page, name: str) -> None:  # type: ignore[no-untyped-def]
    shoot(page, name)


def _returned_once(url: str, world) -> str:  # type: ignore[no-untyped-def]
    """The phone of SO-1001 received on RMA-5001 through the use cases and made available (sold on);
    the customer then opens a second return of the same order, RMA-5009: its number."""
    engine = make_engine(url)
    with Session(engine, expire_on_commit=False) as s:
        first = receive_phone(s, world, "RMA-5001")
        move_direct(s, world.actor("worker"), first.unit_id, "available")
        number = same_order_again(s, world).number
    engine.dispose()
    return number


def _scan(page, code: str) -> None:  # type: ignore[no-untyped-def]
    page.fill("#scan", code)
    page.press("#scan", "Enter")


def _refund(url: str, lpn: str) -> tuple[int, RefundTrigger, list[AnomalyFlag]]:
    engine = make_engine(url)
    with Session(engine, expire_on_commit=False) as s:
        unit = s.scalars(select(ReturnUnit).where(ReturnUnit.lpn == lpn)).one()
        refund = s.scalars(select(RefundTrigger).where(RefundTrigger.unit_id == unit.id)).one()
        flags = list(s.scalars(select(AnomalyFlag).where(AnomalyFlag.unit_id == unit.id)))
    engine.dispose()
    return unit.id, refund, flags


def test_a_serial_returned_before_is_flagged_held_and_released_by_another_supervisor(
        live_server, e2e_world, e2e_db_url, handheld, desktop):
    rma = _returned_once(e2e_db_url, e2e_world)

    # ---- the dock, on a Pixel 5: received and flagged, not refused
    page = handheld.new_page()
    sign_in(page, live_server, "super")
    page.goto(f"{live_server}/receive")
    page.click("text=WH1 · Main DC")
    page.wait_for_selector("text=Scan a parcel label")
    _scan(page, rma)
    page.wait_for_selector("#parcel")
    _scan(page, "00614141999996")
    page.wait_for_selector("text=serial-tracked")
    _scan(page, SERIAL)
    notice = page.locator(".flag-notice")
    notice.wait_for()
    words = " ".join(notice.inner_text().split())
    assert words.startswith(f"Received and flagged: serial {SERIAL} was returned before, on RMA-5001 (")
    assert words.endswith("A supervisor will check the refund.")
    assert page.locator(".result-warn .lpn").is_visible()
    lpn = page.inner_text(".result .lpn")
    _shot(page, "anomaly-01-handheld-notice")
    assert too_small(page, ".result") == []

    page.click("text=Inspect now")
    page.wait_for_selector("#inspect-form")
    for q in ("powers_on", "screen_ok", "accessories", "factory_reset", "no_liquid"):
        page.check(f"input[name=q_{q}][value=yes]")
    page.check("input[name=grade][value=A]")
    page.check("input[name=packaging][value=opened]")
    page.click("text=Save inspection")
    page.wait_for_selector("#decision")
    page.click("#confirm-btn")
    page.wait_for_selector("#done")
    _shot(page, "anomaly-02-handheld-confirmed")
    unit_id, refund, flags = _refund(e2e_db_url, lpn)
    assert refund.status == "pending_approval" and "fraud flag" in refund.hold_reasons
    assert [(f.kind, f.holds, f.cleared_at) for f in flags] == [("returned_before", True, None)]

    # ---- the desk: the supervisor who inspected it cannot release it, and is told why
    desk = desktop.new_page()
    sign_in(desk, live_server, "super")
    desk.goto(f"{live_server}/desk/units/{unit_id}")
    desk.wait_for_selector("#case")
    refusal = desk.locator(".four-eyes")
    assert refusal.is_visible()
    assert "A fraud flag holds this refund and you inspected the unit: only a supervisor who did not inspect it " \
           "may release it." in refusal.inner_text()
    assert desk.locator("text=Approve refund").count() == 0
    _shot(desk, "anomaly-03-desk-inspector-refused")

    # ---- a second supervisor: the queue tags the row, the case explains the flag, they release it
    other = desktop.browser.new_context(viewport={"width": 1366, "height": 900}).new_page()
    sign_in(other, live_server, "super2")
    other.goto(f"{live_server}/desk/refunds")
    tag = other.locator(f"#row-refund-{refund.id} .flag-tag")
    assert tag.inner_text() == "Fraud flag: returned before"
    _shot(other, "anomaly-04-desk-queue-tag")
    other.click(f"#row-refund-{refund.id} .case-link")
    other.wait_for_selector("#flags")
    flag = other.locator("#flags .flag-returned_before")
    explained = " ".join(flag.inner_text().split())
    assert "Returned before" in explained and "holds the refund" in explained
    assert f"serial {SERIAL} was returned before, on RMA-5001" in explained
    assert "a second refund for the same item, check it" in explained
    assert "Held because:" in other.inner_text(".refund") and "fraud flag: returned before" in other.inner_text(".refund")
    _shot(other, "anomaly-05-desk-case-flag")
    other.fill("#refund-reason", "Resold item came back: checked the serial's history")
    other.click("text=Approve refund")
    other.wait_for_selector("#flags .flag-cleared")
    cleared = " ".join(other.inner_text("#flags").split())
    assert "cleared" in cleared and "Cleared " in cleared and "by Super2." in cleared
    _shot(other, "anomaly-06-desk-flag-cleared")
    _unit, refund, flags = _refund(e2e_db_url, lpn)
    assert refund.status == "released" and flags[0].cleared_at is not None
    other.context.close()


def test_the_notice_in_spanish_fits_360_px(live_server, e2e_world, e2e_db_url, browser, playwright_instance):
    """A worker whose browser asks for Spanish, on a 360 px phone: the notice in Spanish, nothing overflows."""
    rma = _returned_once(e2e_db_url, e2e_world)
    ctx = browser.new_context(**{**playwright_instance.devices["Pixel 5"], "viewport": {"width": 360, "height": 640}},
                              locale="es-ES")
    page = ctx.new_page()
    sign_in(page, live_server, "worker")
    page.goto(f"{live_server}/receive")
    page.click("text=WH1 · Main DC")
    page.wait_for_selector("#scan")
    for code in (rma, "00614141999996"):
        _scan(page, code)
        page.wait_for_load_state("networkidle")
    _scan(page, SERIAL)
    notice = page.locator(".flag-notice")
    notice.wait_for()
    words = " ".join(notice.inner_text().split())
    assert words.startswith(f"Recibido y marcado: el número de serie {SERIAL} ya se devolvió antes, en RMA-5001 (")
    assert words.endswith("Un supervisor revisará el reembolso.")
    _shot(page, "anomaly-07-handheld-notice-es-360")
    ctx.close()
