"""The handheld flow's unhappy paths, double taps, reloads and the back button, at 360x640."""
from __future__ import annotations

from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from app.exceptions.models import ReturnException
from app.ledger.models import LedgerEntry, ReturnUnit
from app.receiving.models import Parcel
from app.refunds.models import RefundTrigger
from tests.e2e.conftest import shoot
from tests.e2e.test_handheld_flow import _scan, _settled, _start


def _db(url):
    return Session(create_engine(url))


def _inspect(page, grade="A", packaging="sealed") -> None:
    page.wait_for_selector("#inspect-form")
    page.check(f"input[name=grade][value={grade}]")
    page.check(f"input[name=packaging][value={packaging}]")
    page.click("text=Save inspection")
    page.wait_for_selector("#decision")


def test_wrong_item_and_missing_item_at_close(live_server, e2e_world, handheld, e2e_db_url):
    page = handheld.new_page()
    page.set_viewport_size({"width": 360, "height": 640})
    page.on("dialog", lambda d: d.accept())
    _start(page, live_server)
    _scan(page, "RMA-5001")
    page.wait_for_selector("#parcel")
    _scan(page, "(01)04006381333931(10)L24A")  # face cream: on the order, not on the RMA -> extra item
    _scan(page, "036000291452")
    _settled(page)
    page.wait_for_selector(".tag-warn")
    shoot(page, "unhappy-01-extra-item-360")
    page.click("text=Close parcel")
    page.wait_for_selector("text=Parcel closed")
    shoot(page, "unhappy-02-closed-missing-360")
    assert "missing 1 × PHN-X1-128" in page.inner_text("#work")
    assert "missing 1 × TEE-BLU-M" in page.inner_text("#work")
    with _db(e2e_db_url) as s:
        kinds = sorted(s.scalars(select(ReturnException.type)).all())
        assert kinds == ["extra_item", "missing_item", "missing_item"]
        assert s.scalars(select(Parcel.status)).all() == ["closed"]


def test_serial_mismatch_ends_in_quarantine_with_refund_held(live_server, e2e_world, handheld, e2e_db_url):
    page = handheld.new_page()
    page.set_viewport_size({"width": 360, "height": 640})
    _start(page, live_server)
    _scan(page, "SO-1001")  # the order number finds its RMA
    page.wait_for_selector("#parcel")
    _scan(page, "(01)00614141999996(21)SN-FAKE-9999")  # GS1: GTIN + a serial never shipped
    _settled(page)
    page.wait_for_selector("text=serial mismatch")
    page.click("text=Inspect now")
    _inspect(page, "A", "opened")
    assert "serial mismatch" in page.inner_text("#decision")
    shoot(page, "unhappy-03-serial-mismatch-decision-360")
    page.click("#confirm-btn")
    page.wait_for_selector("#done")
    shoot(page, "unhappy-04-quarantined-360")
    with _db(e2e_db_url) as s:
        unit = s.scalars(select(ReturnUnit)).one()
        assert unit.state == "quarantine" and unit.serial_status == "mismatch"
        refund = s.scalars(select(RefundTrigger)).one()
        assert refund.status == "pending_approval" and "serial mismatch" in refund.hold_reasons


def test_unknown_parcel_starts_a_blind_parcel(live_server, e2e_world, handheld, e2e_db_url):
    page = handheld.new_page()
    page.set_viewport_size({"width": 360, "height": 640})
    _start(page, live_server)
    _scan(page, "MYSTERY-BOX-42")
    page.wait_for_selector("text=Start blind parcel")
    shoot(page, "unhappy-05-unknown-parcel-360")
    page.click("text=Start blind parcel")
    page.wait_for_selector("#parcel h2:has-text('Blind parcel')")
    _scan(page, "036000291452")
    _settled(page)
    page.wait_for_selector(".result .lpn")
    shoot(page, "unhappy-06-blind-item-360")
    with _db(e2e_db_url) as s:
        assert s.scalars(select(ReturnException.type)).all() == ["unidentified_parcel"]
        assert s.scalar(select(func.count()).select_from(ReturnUnit)) == 1


def test_double_tap_on_confirm_has_one_effect_and_reload_keeps_the_parcel(live_server, e2e_world, handheld, e2e_db_url):
    page = handheld.new_page()
    page.set_viewport_size({"width": 360, "height": 640})
    _start(page, live_server)
    _scan(page, "RMA-5001")
    page.wait_for_selector("#parcel")
    page.reload()
    page.wait_for_selector("#parcel")  # the parcel in hand survives a reload
    _scan(page, "036000291452")
    _settled(page)
    page.click("text=Inspect now")
    _inspect(page)
    unit_url = page.url
    # Two submissions of the very same confirm form, as a double tap on a laggy network sends them.
    statuses = page.evaluate("""async () => {
        const form = document.querySelector('#decision form');
        const send = () => fetch(form.action, {method: 'POST', body: new FormData(form),
                                              headers: {'HX-Request': 'true'}}).then(r => r.status);
        return Promise.all([send(), send()]);
    }""")
    assert statuses == [200, 200]
    with _db(e2e_db_url) as s:
        unit = s.scalars(select(ReturnUnit)).one()
        assert unit.state == "available"
        assert s.scalar(select(func.count()).select_from(LedgerEntry).where(LedgerEntry.unit_id == unit.id)) == 2
    # The back button returns to the receiving screen, the forward one to the unit.
    page.go_back()
    page.wait_for_selector("#parcel")
    assert page.url.endswith("/receive")
    page.go_forward()
    page.wait_for_selector("#unit")
    assert page.url == unit_url
