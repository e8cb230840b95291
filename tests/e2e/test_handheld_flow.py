"""The main job in Chromium at handheld size (Pixel 5): parcel -> items -> photo -> grade -> disposition."""
from __future__ import annotations


from PIL import Image
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from app.exceptions.models import ReturnException
from app.ledger.models import LedgerEntry, ReturnUnit
from app.refunds.models import RefundTrigger
from tests.e2e.conftest import shoot, sign_in


def _scan(page, code: str) -> None:
    page.fill("#scan", code)
    page.press("#scan", "Enter")


def _settled(page) -> None:
    page.wait_for_function("() => !Object.keys(localStorage).some(k => k.startsWith('dockhand.scanQueue.v2.'))")
    page.wait_for_load_state("networkidle")


def _start(page, base: str) -> None:
    sign_in(page, base, "worker")
    page.goto(f"{base}/receive")
    page.click("text=WH1 · Main DC")
    page.wait_for_selector("text=Scan a parcel label")


def _phone_jpeg(tmp_path) -> str:
    path = tmp_path / "photo.jpg"
    img = Image.new("RGB", (1200, 900), (30, 120, 200))
    exif = Image.Exif()
    exif[0x0112] = 6
    img.save(path, "JPEG", exif=exif.tobytes())
    return str(path)


def test_happy_path(live_server, e2e_world, handheld, e2e_db_url, tmp_path):
    page = handheld.new_page()
    page.on("dialog", lambda d: d.accept())
    _start(page, live_server)
    shoot(page, "handheld-01-start")
    _scan(page, e2e_world.tracking.tracking_number)
    page.wait_for_selector("#parcel")
    assert page.evaluate("document.activeElement.id") == "scan"
    shoot(page, "handheld-02-parcel")
    _scan(page, "036000291452")
    _scan(page, "036000291452")
    _scan(page, "00614141999996")
    _settled(page)
    page.wait_for_selector("text=serial-tracked")
    shoot(page, "handheld-03-serial-prompt")
    _scan(page, "SN-PHONE-0001")
    _settled(page)
    page.wait_for_selector(".result-ok .lpn")
    shoot(page, "handheld-04-received")
    lpn = page.inner_text(".result .lpn")
    page.click("text=Inspect now")
    page.wait_for_selector("#inspect-form")
    assert page.url.endswith("/receive/units/3") or "/receive/units/" in page.url
    for q in ("powers_on", "screen_ok", "accessories", "factory_reset", "no_liquid"):
        page.check(f"input[name=q_{q}][value=yes]")
    page.check("input[name=grade][value=A]")
    page.check("input[name=packaging][value=opened]")
    page.click("text=Save inspection")
    page.wait_for_selector("#decision")
    page.set_input_files("#photo-input", _phone_jpeg(tmp_path))
    page.wait_for_selector(".thumbs img")
    shoot(page, "handheld-05-decision")
    page.click("#confirm-btn")
    page.wait_for_selector("#done")
    shoot(page, "handheld-06-done")
    engine = create_engine(e2e_db_url)
    with Session(engine) as s:
        unit = s.scalars(select(ReturnUnit).where(ReturnUnit.lpn == lpn)).one()
        assert unit.serial == "SN-PHONE-0001" and unit.serial_status == "match"
        # The RMA line says "defective": rule 5, defective electronics -> return to vendor, full refund,
        # and 649.00 is over the 250.00 approval threshold, so the refund waits for a supervisor.
        assert unit.state == "vendor_return" and unit.grade == "A" and unit.disposition == "return_to_vendor"
        refund = s.scalars(select(RefundTrigger).where(RefundTrigger.unit_id == unit.id)).one()
        assert refund.status == "pending_approval" and str(refund.amount) == "649.00"
        assert refund.inspected_at is not None
        moves = s.scalars(select(LedgerEntry.to_state).where(LedgerEntry.unit_id == unit.id).order_by(LedgerEntry.id)).all()
        assert moves == ["received", "vendor_return"]
        assert len(s.scalars(select(ReturnUnit)).all()) == 3
    engine.dispose()


def test_burst_of_wedge_scans_recorded_once_in_order(live_server, e2e_world, handheld, e2e_db_url):
    page = handheld.new_page()
    trouble: list[str] = []  # what explains a resend: a request the browser lost, a script error
    page.on("requestfailed", lambda r: trouble.append(f"{r.method} {r.url}: {r.failure}"))
    page.on("pageerror", lambda e: trouble.append(f"script error: {e}"))
    page.on("response", lambda r: r.status >= 500 and trouble.append(f"{r.request.method} {r.url}: {r.status}"))
    _start(page, live_server)
    _scan(page, "RMA-5001")
    page.wait_for_selector("#parcel")
    codes = ["036000291452", "(01)04006381333931(10)L24A"] * 5
    # A wedge scanner types characters then Enter, ten scans inside one second.
    page.type("#scan", "\n".join(codes) + "\n", delay=3)
    _settled(page)
    page.set_viewport_size({"width": 360, "height": 640})
    shoot(page, "handheld-07-after-burst-360")  # the parcel card shows the newest units and a count
    engine = create_engine(e2e_db_url)
    with Session(engine) as s:
        units = s.scalars(select(ReturnUnit).order_by(ReturnUnit.id)).all()
        assert [u.product.sku for u in units] == ["TEE-BLU-M", "HB-CREAM-50"] * 5
        assert [u.lpn for u in units] == sorted(u.lpn for u in units)
        kinds = sorted(e.type for e in s.scalars(select(ReturnException)))
        assert kinds.count("extra_item") == 1 and kinds.count("over_return") == 4 + 3
    engine.dispose()
    # Each answer updated the card out of band: the newest five units on top, the line and the parcel counted.
    newest_first = [u.lpn for u in reversed(units)]
    assert page.locator("#units li:visible a").all_inner_texts() == newest_first[:5]
    # The list holds the newest units with no gap and no repeat. Most answers add their row on top;
    # an answer that redraws the whole card (a replay after a lost answer, or a scan sent while the
    # card was being swapped, seen twice in CI under load) shows the newest five at that moment and
    # the later answers add theirs on top: 5 to 10 rows, the newest first, whichever happened.
    shown = page.locator("#units li a").all_inner_texts()
    assert shown == newest_first[: len(shown)] and len(shown) >= 5, (shown, trouble)
    assert page.locator("#parcel-progress").inner_text() == "2 of 3 expected units received"
    assert page.locator(".line-count-done").all_inner_texts() == ["2/2"]
