"""Every handheld page, walked as a worker on a Pixel 5 and at 360 px: every tappable thing is at
least 44x44 px (a gloved finger; issue 18) and nothing overflows sideways. The pages: sign-in, the
scan screen (no warehouse yet, a parcel open, an item received, the parcel closed), the unit screen
(inspection form, guided by grading rules, decision, done), the inspection queue, the start page, and the labels: the unit's
print options, the printer picker, the print page, the history."""
from __future__ import annotations

import pytest

from tests.e2e.conftest import _refusing_csp_violations, receive_one, shoot, sign_in, too_small

pytestmark = pytest.mark.e2e


@pytest.fixture(params=["pixel5", "360"])
def phone(request, browser, playwright_instance):  # type: ignore[no-untyped-def]
    device = dict(playwright_instance.devices["Pixel 5"])
    if request.param == "360":
        device["viewport"] = {"width": 360, "height": 640}
    yield from _refusing_csp_violations(browser.new_context(**device))


def _check(page, name: str, seen: dict[str, list[dict]]) -> None:  # type: ignore[no-untyped-def]
    page.wait_for_load_state("networkidle")
    shoot(page, name)
    small = too_small(page)
    if small:
        seen[name] = small


def _guided_apparel(url: str, world) -> None:  # type: ignore[no-untyped-def]
    """The apparel checklist with a grading rule: original tags attached -> grade A, the rest skipped."""
    from sqlalchemy.orm import Session

    from app.admin.services import save_checklist
    from app.db import make_engine
    from tests.helpers import new_key

    engine = make_engine(url)
    with Session(engine) as s:
        save_checklist(s, world.actor("admin"), category="apparel", note="guided", idempotency_key=new_key(),
                       text="tags_attached | Original tags attached\nunworn | Unworn, unwashed, no odour",
                       grading_text="tags_attached = yes -> grade A, skip the rest")
    engine.dispose()


def test_every_tappable_target_on_every_handheld_page_is_44_px(live_server, e2e_world, e2e_db_url, phone, request):
    size = request.node.callspec.params["phone"]
    _guided_apparel(e2e_db_url, e2e_world)
    page = phone.new_page()
    page.on("dialog", lambda d: d.accept())
    seen: dict[str, list[dict]] = {}
    page.goto(f"{live_server}/login")
    _check(page, f"targets-{size}-signin", seen)
    sign_in(page, live_server, "worker")
    _check(page, f"targets-{size}-scan-pick-warehouse", seen)
    page.click("text=WH1 · Main DC")
    page.wait_for_selector("text=Scan a parcel label")
    _check(page, f"targets-{size}-scan", seen)
    receive_one(page, e2e_world.tracking.tracking_number, "036000291452")
    _check(page, f"targets-{size}-scan-received", seen)
    unit_url = page.get_attribute(".result-ok a:has-text('Inspect now')", "href")
    page.click("text=Close parcel")
    page.wait_for_selector("text=Parcel closed.")
    _check(page, f"targets-{size}-scan-closed", seen)
    page.goto(f"{live_server}{unit_url}")
    page.wait_for_selector("#inspect-form")
    _check(page, f"targets-{size}-unit-inspect", seen)
    # guided: the answer that sets the grade hides the rest and says so; answered otherwise, all is back
    page.click("fieldset[data-key=tags_attached] label:has-text('Yes')")
    page.wait_for_selector("#guide:has-text('Grade A set by')")
    _check(page, f"targets-{size}-unit-guided", seen)
    page.click("fieldset[data-key=tags_attached] label:has-text('No')")
    page.wait_for_selector("fieldset.grades", state="visible")
    page.check("input[name=grade][value=A]")
    page.check("input[name=packaging][value=sealed]")
    page.click("text=Save inspection")
    page.wait_for_selector("#decision")
    _check(page, f"targets-{size}-unit-decision", seen)
    page.click("#confirm-btn")
    page.wait_for_selector("#done")
    _check(page, f"targets-{size}-unit-done", seen)
    unit_id = unit_url.rstrip("/").split("/")[-1]
    for path, name in ((f"/labels/unit/{unit_id}", "labels-unit"), ("/labels/printer", "labels-picker"),
                       (f"/labels/unit/{unit_id}/print", "labels-print"), (f"/labels/unit/{unit_id}/history", "labels-history"),
                       ("/labels/", "labels-find"), ("/receive/queue", "queue"), ("/", "home")):
        page.goto(f"{live_server}{path}")
        _check(page, f"targets-{size}-{name}", seen)
    assert seen == {}, "\n".join(f"{page}: {small}" for page, small in seen.items())
