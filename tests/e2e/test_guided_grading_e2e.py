"""Guided grading on a handheld, in Chromium on a Pixel 5 (issue 18, item 4): a worker opens a unit of a
category with grading rules; answering "seal intact: yes" hides the rest of the checklist and says grade
A is set, before saving; once saved the decision and its Confirm are in view; confirmed. A second unit
answered "all parts: no" is refunded less 10% (200.00 -> 180.00), said before confirming and after. The
same guided screen in Spanish at 360 px, with no catalogue English left."""
from __future__ import annotations


import pytest
from PIL import Image
from sqlalchemy.orm import Session

from app.admin.services import save_checklist
from app.db import make_engine
from tests.e2e.conftest import _refusing_csp_violations, shoot, sign_in, too_small
from tests.e2e.test_spanish_handheld import _english_phrases
from tests.helpers import new_key, receive_unit

pytestmark = pytest.mark.e2e

ITEMS = "seal_intact | Seal intact\nall_parts | All parts present\npowers_on | Powers on"
RULES = "seal_intact = yes -> grade A, skip the rest\nall_parts = no -> deduct 10%"


def _units(url: str, world, n: int) -> list[int]:  # type: ignore[no-untyped-def]
    """The electronics checklist with grading rules, and `n` phones bought for 200.00 received at WH1."""
    engine = make_engine(url)
    with Session(engine, expire_on_commit=False) as s:
        save_checklist(s, world.actor("admin"), category="electronics", text=ITEMS, note="guided",
                       idempotency_key=new_key(), grading_text=RULES)
        units = [receive_unit(s, world, "phone", world.actor("worker"), paid_price="200.00").id for _ in range(n)]
    engine.dispose()
    return units


def _shoot(page, name: str) -> None:  # type: ignore[no-untyped-def]
    """The whole page (shoot: no sideways overflow) and what the screen shows now, kept to look at."""
    path = shoot(page, name)
    page.screenshot(path=str(path.with_name(f"{name}-screen.png")))


def _in_view(page, selector: str) -> bool:  # type: ignore[no-untyped-def]
    return bool(page.evaluate("""sel => { const b = document.querySelector(sel).getBoundingClientRect();
        return b.top >= 0 && b.bottom <= window.innerHeight && b.left >= 0 && b.right <= window.innerWidth; }""", selector))


def _open(page, base: str, unit_id: int) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{base}/receive/units/{unit_id}")
    page.wait_for_selector("#inspect-form")


def test_a_seal_intact_sets_grade_a_and_a_missing_part_comes_off_the_refund(live_server, e2e_world, handheld, e2e_db_url,
                                                                           tmp_path):
    sealed, missing = _units(e2e_db_url, e2e_world, 2)
    page = handheld.new_page()
    sign_in(page, live_server, "worker")
    page.goto(f"{live_server}/receive")
    page.click("text=WH1 · Main DC")
    page.wait_for_selector("text=Scan a parcel label")

    # seal intact: yes -> the rest of the checklist and the grade picker go, grade A is said to be set
    _open(page, live_server, sealed)
    assert page.is_visible("fieldset[data-key=all_parts]") and not page.is_visible("#guide")
    page.click("fieldset[data-key=seal_intact] label:has-text('Yes')")
    page.wait_for_selector("fieldset[data-key=all_parts]", state="hidden")
    assert not page.is_visible("fieldset[data-key=powers_on]") and not page.is_visible("fieldset.grades")
    assert page.inner_text("#guide") == "Grade A set by: Seal intact = yes\nThe rest of the checklist is skipped."
    # changing the answer brings them back; answering yes again hides them again
    page.click("fieldset[data-key=seal_intact] label:has-text('No')")
    page.wait_for_selector("fieldset[data-key=all_parts]", state="visible")
    assert page.is_visible("fieldset.grades") and not page.is_visible("#guide")
    page.click("fieldset[data-key=seal_intact] label:has-text('Yes')")
    page.wait_for_selector("fieldset[data-key=all_parts]", state="hidden")
    _shoot(page, "guided-01-seal-intact-pixel5")
    assert too_small(page) == []
    page.click("fieldset.q:has(legend:text('Packaging')) label:has-text('sealed')")
    page.click("text=Save inspection")
    page.wait_for_selector("#saved")
    # saved: what the answers set, then the decision with its Confirm, in view without scrolling
    assert "Grade A set by: Seal intact = yes" in page.inner_text("#graded")
    assert _in_view(page, "#confirm-btn") and _in_view(page, "#graded")
    _shoot(page, "guided-02-saved-decision-pixel5")
    assert too_small(page) == []
    page.click("#confirm-btn")
    page.wait_for_selector("#done")
    assert "200.00" in page.inner_text("#done-refund")

    # all parts: no -> 10% off, said as it is answered, taken off when confirmed: 200.00 -> 180.00
    _open(page, live_server, missing)
    page.click("fieldset[data-key=seal_intact] label:has-text('No')")
    page.click("fieldset[data-key=all_parts] label:has-text('No')")
    page.click("fieldset[data-key=powers_on] label:has-text('Yes')")
    assert page.inner_text("#guide") == "All parts present = no: 10% off the refund"
    page.click("fieldset.grades label:has-text('A · like new')")
    page.click("fieldset.q:has(legend:text('Packaging')) label:has-text('sealed')")
    page.fill("#notes", "charger missing")
    # a photo of what is missing: the answers typed so far come back with it, nothing lost
    picture = tmp_path / "missing.jpg"
    Image.new("RGB", (640, 480), (200, 90, 40)).save(picture, "JPEG")
    page.set_input_files("#photo-input", str(picture))
    page.wait_for_selector("#photos img")
    assert page.is_checked("input[name=q_all_parts][value=no]") and page.is_checked("input[name=q_powers_on][value=yes]")
    assert page.is_checked("input[name=grade][value=A]") and page.is_checked("input[name=packaging][value=sealed]")
    assert page.input_value("#notes") == "charger missing"
    assert page.inner_text("#guide") == "All parts present = no: 10% off the refund"
    page.click("text=Save inspection")
    page.wait_for_selector("#saved")
    assert "All parts present = no: 10% off the refund" in page.inner_text("#graded")
    # the rule that decided on its own line, in the worker's words (the answers' effects are said above it)
    assert page.inner_text("#decision .why").startswith("rule ") and _in_view(page, "#confirm-btn")
    _shoot(page, "guided-03-missing-part-pixel5")
    page.click("#confirm-btn")
    page.wait_for_selector("#done")
    assert "180.00" in page.inner_text("#done-refund")
    _shoot(page, "guided-04-refund-less-10pct-pixel5")


def test_the_guided_screen_in_spanish_at_360_px(live_server, e2e_world, browser, playwright_instance, e2e_db_url):
    (unit,) = _units(e2e_db_url, e2e_world, 1)
    device = dict(playwright_instance.devices["Pixel 5"])
    device["viewport"] = {"width": 360, "height": 640}
    for ctx in _refusing_csp_violations(browser.new_context(**device, locale="es-ES")):
        page = ctx.new_page()
        sign_in(page, live_server, "worker")
        page.goto(f"{live_server}/receive")
        page.click("text=WH1 · Main DC")
        _open(page, live_server, unit)
        page.click("fieldset[data-key=seal_intact] label:has-text('Sí')")
        page.wait_for_selector("fieldset[data-key=all_parts]", state="hidden")
        assert page.inner_text("#guide") == "Grado A fijado por: Seal intact = sí\nEl resto de la lista se omite."
        _shoot(page, "guided-05-spanish-360")
        assert too_small(page) == []
        text = page.inner_text("main")
        assert [p for p in _english_phrases() if p in text] == []
        page.click("fieldset.q:has(legend:text('Embalaje')) label:has-text('precintado')")
        page.click("text=Guardar inspección")
        page.wait_for_selector("#saved")
        assert _in_view(page, "#confirm-btn") and "Confirmar: reabastecer" in page.inner_text("#confirm-btn")
        _shoot(page, "guided-06-spanish-saved-360")
        assert too_small(page) == []
