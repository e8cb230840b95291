"""The supervisor desk in Chromium at desktop (1366x900) and tablet (768x1024) sizes, on PostgreSQL:
open quarantine, open a case, release one unit, approve one refund, link an unidentified parcel."""
from __future__ import annotations

import io
from datetime import timedelta

import pytest
from PIL import Image
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.db import make_engine, unit_of_work, utcnow
from app.disposition.models import ReasonCode
from app.exceptions.models import ReturnException
from app.inspection.services import add_photo
from app.ledger.models import ReturnUnit
from app.refunds.models import RefundTrigger
from tests.e2e.conftest import shoot, sign_in
from tests.integration.desk.test_desk_services import key, make_units, serial_mismatch_case, unidentified_parcel

pytestmark = pytest.mark.e2e

SIZES = {"desktop": {"width": 1366, "height": 900}, "tablet": {"width": 768, "height": 1024}}


def _photo(color: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (640, 480), color).save(buf, "JPEG")
    return buf.getvalue()


@pytest.fixture
def desk_scene(e2e_db_url, e2e_world, live_app):  # type: ignore[no-untyped-def]
    """Quarantined units (some aged), held refunds, a serial-mismatch case with photos, an unidentified parcel."""
    engine = make_engine(e2e_db_url)
    world = e2e_world
    with Session(engine, expire_on_commit=False) as s:
        with unit_of_work(s):
            s.add_all([ReasonCode(code="defective", label="Defective"), ReasonCode(code="wrong_size", label="Wrong size"),
                       ReasonCode(code="damaged_in_transit", label="Damaged in transit")])
        case = serial_mismatch_case(s, world)
        for color in ((200, 40, 40), (40, 160, 60)):
            add_photo(s, world.actor("worker"), unit_id=case["unit_id"], data=_photo(color),
                      store=live_app.extensions["dockhand.photos"], max_bytes=10**7, idempotency_key=key())
        aged = make_units(s, world, 3, paid="25.00", aged_hours=80)
        fresh = make_units(s, world, 2, product="cream", paid="35.00")
        held = make_units(s, world, 2, pending_refund=True, paid="320.00")
        with unit_of_work(s):  # one refund has waited three days
            s.execute(update(RefundTrigger).where(RefundTrigger.unit_id == held[0])
                      .values(pending_since=utcnow() - timedelta(hours=72)))
        parcel = unidentified_parcel(s, world, items=("shirt",))
        refunds = list(s.scalars(select(RefundTrigger.id).where(RefundTrigger.unit_id.in_(held)).order_by(RefundTrigger.id)))
    engine.dispose()
    return {"world": world, "case": case, "aged": aged, "fresh": fresh, "held": held, "refunds": refunds, "parcel": parcel,
            "url": e2e_db_url}


def _lpn(url: str, unit_id: int) -> str:
    engine = make_engine(url)
    with Session(engine) as s:
        lpn = s.get(ReturnUnit, unit_id).lpn
    engine.dispose()
    return lpn


@pytest.mark.parametrize("size", list(SIZES))
def test_supervisor_desk_flow(live_server, desk_scene, browser, size):
    ctx = browser.new_context(viewport=SIZES[size], has_touch=size == "tablet")
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if "Content Security Policy" in msg.text else None)
    try:
        sign_in(page, live_server, "super")
        assert page.url.endswith("/desk")
        page.wait_for_selector("#desk-live .count")  # the live counts loaded themselves
        shoot(page, f"desk-landing-{size}")

        # Open quarantine from the landing page.
        page.click("a.queue-card[data-queue=quarantine]")
        page.wait_for_selector("#queue .queue-table")
        assert page.locator("tr.aged").count() == 3
        shoot(page, f"desk-quarantine-{size}")
        page.check("#queue input[data-select-all]")  # dockhand.js: no inline script under the CSP
        assert page.locator("#queue input[data-select]:checked").count() == page.locator("#queue input[data-select]").count() > 0
        page.uncheck("#queue input[data-select-all]")
        assert page.locator("#queue input[data-select]:checked").count() == 0

        # Open a case: the serial mismatch, with its photos.
        lpn = _lpn(desk_scene["url"], desk_scene["case"]["unit_id"])
        page.click(f"a.case-link:has-text('{lpn}')")
        page.wait_for_selector("#case")
        assert page.url.endswith(f"/desk/units/{desk_scene['case']['unit_id']}")
        page.wait_for_function("() => Array.from(document.querySelectorAll('.desk-thumbs img')).every(i => i.complete && i.naturalWidth > 0)")
        assert page.locator(".desk-thumbs img").count() == 2
        assert "SN-PHONE-0001" in page.content()
        shoot(page, f"desk-case-{size}")

        # Release one unit from the case page.
        page.go_back()
        page.wait_for_selector("#queue .queue-table")
        target = desk_scene["aged"][0]
        lpn = _lpn(desk_scene["url"], target)
        page.click(f"a.case-link:has-text('{lpn}')")
        page.wait_for_selector("#case")
        page.check("input[name=to_state][value=available]")
        page.fill("#decide-reason", "Checked in the cage: complete and clean")
        page.click("#case form[action$='/decide'] button[type=submit]")
        page.wait_for_selector("#messages .msg-success")
        assert "available" in page.inner_text("#messages")
        page.wait_for_function("() => document.querySelector('#desk-live [data-queue=quarantine]').textContent.trim() === '7'")
        shoot(page, f"desk-released-{size}")

        # Approve one refund from its queue: the row disappears at once.
        page.click("#desk-live a[href$='/desk/refunds']")
        page.wait_for_selector("#queue .queue-table")
        refund_id = desk_scene["refunds"][1]
        row = page.locator(f"#row-refund-{refund_id}")
        row.locator("input[name=reason]").fill("Invoice checked: amount right")
        shoot(page, f"desk-refunds-{size}")
        row.locator("button[value=approve]").click()
        page.wait_for_selector(f"#row-refund-{refund_id}", state="detached")
        page.wait_for_selector("#messages .msg-success")
        assert "released" in page.inner_text("#messages")
        page.wait_for_function("() => document.querySelector('#desk-live [data-queue=refunds]').textContent.trim() === '2'")
        assert page.inner_text("#queue-meta [data-total]") == "2"
        shoot(page, f"desk-refund-approved-{size}")

        # Link an unidentified parcel to its RMA.
        page.goto(f"{live_server}/desk")
        page.click("a.queue-card[data-queue='exceptions/unidentified_parcel']")
        page.wait_for_selector("#queue .queue-table")
        page.click("a.case-link")
        page.wait_for_selector("#xcase")
        page.fill("input[name=rma]", "RMA-5001")
        page.fill("#xcase .resolve-link textarea[name=reason]", "Packing slip in the box names RMA-5001")
        shoot(page, f"desk-parcel-{size}")
        page.click("#xcase .resolve-link button[type=submit]")
        page.wait_for_selector("#messages .msg-success")
        assert "Parcel linked to RMA-5001" in page.inner_text("#messages")
        assert "Linked to its return" in page.inner_text("#xcase")
        shoot(page, f"desk-parcel-linked-{size}")

        # The rules editor renders at this size too.
        page.goto(f"{live_server}/desk/rules")
        page.click("li.rule:nth-child(3) summary")  # open one rule to show its editor
        page.fill("li.rule:nth-child(3) input[name$=value_gt]", "250")
        page.click("button[formaction$='/rules/preview']")
        page.wait_for_selector("#rules-preview section")
        shoot(page, f"desk-rules-{size}")
        assert not errors, errors
    finally:
        ctx.close()

    engine = make_engine(desk_scene["url"])
    with Session(engine) as s:
        assert s.get(ReturnUnit, target).state == "available"
        assert s.get(RefundTrigger, refund_id).status == "released"
        exc = s.get(ReturnException, desk_scene["parcel"]["exception_id"])
        assert exc.status == "resolved" and exc.resolution == "linked_to_rma"
    engine.dispose()
