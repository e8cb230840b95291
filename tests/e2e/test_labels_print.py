"""Label print pages in Chromium: one page per label at the stock's size, barcodes that decode,
hostile names that stay text, and the handheld's one-tap print to a (fake) network printer.

PDFs are made by Chromium's own print pipeline (`page.pdf(prefer_css_page_size=True)`), read
with pypdfium2 (page boxes in points) and rasterised at 300 dpi for zxing-cpp.
"""
from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pypdfium2 as pdfium
import pytest
import zxingcpp
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.catalog.models import Product, ProductBarcode
from app.db import make_engine, unit_of_work
from app.ledger.models import ReturnUnit
from app.ledger.writer import move_unit
from app.rows import write
from tests.helpers import arriving_unit
from tests.e2e.conftest import SHOTS, shoot, sign_in
from tests.fakes import FakePrinter

pytestmark = pytest.mark.e2e

# Page sizes in PDF points (1/72 in): 4x6 in, 2x1 in, A4 (210 x 297 mm).
PAGE_POINTS = {"4x6": (288.0, 432.0), "2x1": (144.0, 72.0), "a4": (595.0, 842.0)}
LPNS = ("LP00000001", "LP1234567890")
HOSTILE_NAME = ("^XA~JR <script>alert('x')</script> Ünïcødé 日本語 " + "very long name " * 20)[:200]
OPEN_BOX_UPC = "012345678905"  # stored as GTIN-14 00012345678905, printed as UPC-A


@pytest.fixture
def label_units(e2e_db_url: str, e2e_world) -> Iterator[dict[str, ReturnUnit]]:  # type: ignore[no-untyped-def]
    """Units on the dock: LP00000001 (sequence), a 10-digit LPN, a hostile-named one, an open-box regrade."""
    world = e2e_world
    worker = world.actor("worker")
    engine = make_engine(e2e_db_url)
    units: dict[str, ReturnUnit] = {}
    with Session(engine, expire_on_commit=False) as s:
        with unit_of_work(s):
            hostile = Product(sku="EVIL^XA~JR", name=HOSTILE_NAME, category="apparel", unit_value=Decimal("10.00"),
                              merchant_id=world.merchant.id)
            open_box = Product(sku="TEE-BLU-M-OB", name="Tee blue M (open box)", category="apparel",
                               unit_value=Decimal("18.00"), merchant_id=world.merchant.id)
            s.add_all([hostile, open_box])
            s.flush()
            s.add(ProductBarcode(code="00" + OPEN_BOX_UPC, kind="upc", product_id=open_box.id))
            shirt = s.get(Product, world.products["shirt"].id)
            shirt.open_box_product_id = open_box.id
            specs = [("LP00000001", world.products["shirt"].id, None), ("LP1234567890", world.products["phone"].id, None),
                     ("hostile", hostile.id, None), ("openbox", world.products["shirt"].id, "B")]
            dock = world.loc(world.wh, "dock")
            for key, product_id, grade in specs:
                # LP00000001 and the unnamed ones from the counter; LP1234567890 as given.
                unit = arriving_unit(s, product_id, world.wh.id, key if key.startswith("LP") and key != "LP00000001" else None)
                write(s, move_unit(worker, unit, "received", reason="received", to_location_id=dock.id,
                                   to_location_warehouse_id=dock.warehouse_id, action="unit.received",
                                   values={"merchant_id": world.merchant.id, "grade": grade,
                                           "packaging": "opened" if grade else None,
                                           "disposition": "restock" if grade else None}))
                units[key] = s.get(ReturnUnit, unit.id)
    engine.dispose()
    assert units["LP00000001"].lpn == "LP00000001"
    yield units


def pdf_of(page, url: str) -> bytes:  # type: ignore[no-untyped-def]
    """Open ``url`` and print it to PDF the way the print dialog would (CSS page size, no margins)."""
    page.goto(url)
    page.wait_for_load_state("networkidle")
    return page.pdf(prefer_css_page_size=True, print_background=True)


def pages_of(pdf_bytes: bytes, save_as: str | None = None) -> list[tuple[tuple[float, float], list[tuple[str, zxingcpp.BarcodeFormat]]]]:
    """Each page's (width, height) in points and the barcodes decoded from it at 300 dpi.

    With ``save_as`` the first page is also kept as a PNG next to the screenshots, to look at.
    """
    doc = pdfium.PdfDocument(pdf_bytes)
    out = []
    try:
        for index in range(len(doc)):
            page = doc[index]
            left, bottom, right, top = page.get_mediabox()
            image = page.render(scale=300 / 72).to_pil().convert("L")
            found = [(r.text, r.format) for r in zxingcpp.read_barcodes(image)]
            if save_as and index == 0:
                SHOTS.mkdir(parents=True, exist_ok=True)
                image.save(SHOTS / f"{save_as}.png")
            out.append(((right - left, top - bottom), found))
            page.close()
    finally:
        doc.close()
    return out


def assert_one_page(pdf_bytes: bytes, stock: str, value: str, save_as: str | None = None) -> None:
    """Exactly one page, of the stock's size (within a point), whose barcode decodes to ``value``."""
    pages = pages_of(pdf_bytes, save_as)
    assert len(pages) == 1, f"{stock}: {len(pages)} pages"
    (width, height), found = pages[0]
    want_w, want_h = PAGE_POINTS[stock]
    assert abs(width - want_w) <= 1 and abs(height - want_h) <= 1, f"{stock}: page is {width:.1f} x {height:.1f} pt"
    assert (value, zxingcpp.BarcodeFormat.Code128) in found, f"{stock}: decoded {found}"


@pytest.mark.parametrize("stock", ["4x6", "2x1", "a4"])
def test_print_page_pdf_has_stock_size_and_decodes(live_server, label_units, desktop, stock):  # type: ignore[no-untyped-def]
    """For each stock and each LPN length, Chromium's PDF is one stock-sized page and the LPN decodes."""
    page = desktop.new_page()
    sign_in(page, live_server, "worker")
    for key in LPNS:
        unit = label_units[key]
        pdf = pdf_of(page, f"{live_server}/labels/unit/{unit.id}/print?stock={stock}")
        assert_one_page(pdf, stock, unit.lpn, save_as=f"labels-pdf-{stock}-{unit.lpn}")


def test_a4_sheet_position(live_server, label_units, desktop):  # type: ignore[no-untyped-def]
    """A label placed at position 24 of the A4 sheet still prints on one A4 page and decodes."""
    page = desktop.new_page()
    sign_in(page, live_server, "worker")
    unit = label_units["LP00000001"]
    assert_one_page(pdf_of(page, f"{live_server}/labels/unit/{unit.id}/print?stock=a4&start=24"), "a4", unit.lpn)


@pytest.mark.parametrize("stock", ["4x6", "2x1", "a4"])
def test_sku_relabel_carries_product_barcode(live_server, label_units, desktop, stock):  # type: ignore[no-untyped-def]
    """A unit regraded to its open-box SKU gets a label whose barcode is that SKU's UPC."""
    page = desktop.new_page()
    sign_in(page, live_server, "worker")
    unit = label_units["openbox"]
    pdf = pdf_of(page, f"{live_server}/labels/unit/{unit.id}/print?stock={stock}&kind=sku")
    assert_one_page(pdf, stock, OPEN_BOX_UPC, save_as=f"labels-pdf-{stock}-sku")
    assert "TEE-BLU-M-OB" in page.inner_text(".label")


@pytest.mark.parametrize("stock", ["4x6", "2x1", "a4"])
def test_hostile_name_stays_text(live_server, label_units, desktop, stock):  # type: ignore[no-untyped-def]
    """Markup and ZPL control characters in a product name are shown as text; no script runs."""
    page = desktop.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    sign_in(page, live_server, "worker")
    unit = label_units["hostile"]
    pdf = pdf_of(page, f"{live_server}/labels/unit/{unit.id}/print?stock={stock}")
    assert dialogs == []
    assert page.locator(".label script").count() == 0
    text = page.inner_text(".label")
    assert "EVIL^XA~JR" in text
    if stock != "2x1":  # the 2x1 label has no room for the name
        assert "^XA~JR <script>" in text
    assert_one_page(pdf, stock, unit.lpn)


def test_handheld_one_tap_print_to_network_printer(live_server, label_units, e2e_db_url, e2e_world, handheld):  # type: ignore[no-untyped-def]
    """Admin adds a printer; a worker picks it on the handheld; one tap prints; a second needs a reason."""
    printer = FakePrinter()
    try:
        admin = handheld.browser.new_context(viewport={"width": 1366, "height": 900})
        page = admin.new_page()
        sign_in(page, live_server, "admin")
        page.goto(f"{live_server}/labels/printers")
        page.fill("#name", "Dock 1 Zebra")
        page.select_option("#warehouse_id", label=f"{e2e_world.wh.code} · {e2e_world.wh.name}")
        page.fill("#host", printer.host)
        page.fill("#port", str(printer.port))
        page.select_option("#stock", "4x6")
        page.click("button[type=submit]:has-text('Add printer')")
        page.wait_for_load_state("networkidle")
        assert "Dock 1 Zebra" in page.inner_text(".printer-list")
        shoot(page, "labels-printers-admin")
        admin.close()

        unit = label_units["LP00000001"]
        hh = handheld.new_page()
        sign_in(hh, live_server, "worker")
        hh.goto(f"{live_server}/labels/unit/{unit.id}")
        shoot(hh, "labels-unit-no-printer-handheld")
        hh.click("text=Change printer")
        hh.wait_for_load_state("networkidle")
        shoot(hh, "labels-picker-handheld")
        hh.click("button.label-choice:has-text('Dock 1 Zebra')")
        hh.wait_for_load_state("networkidle")
        assert f"/labels/unit/{unit.id}" in hh.url
        assert "Dock 1 Zebra" in hh.inner_text(".label-target")
        hh.click("button.label-print")
        hh.wait_for_selector(".label-result.msg-success")
        shoot(hh, "labels-unit-printed-handheld")
        assert len(printer.jobs) == 1
        zpl = printer.jobs[0].decode()
        assert zpl.startswith("^XA") and zpl.endswith("^XZ") and f"^FD{unit.lpn}^FS" in zpl

        # A second print is a reprint: refused without a reason, sent with one.
        hh.click("button.label-print")
        hh.wait_for_selector(".label-result.msg-error")
        assert "reason" in hh.inner_text(".label-result")
        assert len(printer.jobs) == 1
        hh.select_option("select[name=reason]", "Label damaged or unreadable")
        hh.click("button.label-print")
        hh.wait_for_selector(".label-result.msg-success")
        assert len(printer.jobs) == 2
        hh.goto(f"{live_server}/labels/unit/{unit.id}/history")
        shoot(hh, "labels-history-handheld")
        assert "Label damaged or unreadable" in hh.inner_text(".label-history")
    finally:
        printer.close()


@pytest.mark.parametrize("stock", ["4x6", "2x1", "a4"])
def test_print_page_at_handheld_size(live_server, label_units, handheld, stock):  # type: ignore[no-untyped-def]
    """The print page fits a 360 px handheld (screenshots for a person to look at)."""
    page = handheld.new_page()
    page.set_viewport_size({"width": 360, "height": 740})
    sign_in(page, live_server, "worker")
    unit = label_units["LP00000001"]
    page.goto(f"{live_server}/labels/unit/{unit.id}/print?stock={stock}")
    shoot(page, f"labels-print-{stock}-360")
    assert page.locator(".label svg.barcode").count() == 1
    page.goto(f"{live_server}/labels/unit/{label_units['hostile'].id}/print?stock={stock}")
    shoot(page, f"labels-print-{stock}-hostile-360")


def test_browser_print_button_records_and_opens_dialog(live_server, label_units, e2e_db_url, handheld):  # type: ignore[no-untyped-def]
    """Without a network printer the one tap records a browser print and the page calls window.print()."""
    from app.labels.models import PrintJob

    unit = label_units["LP1234567890"]
    page = handheld.new_page()
    page.add_init_script("window.print = function () { document.documentElement.dataset.printed = 'yes'; };")
    sign_in(page, live_server, "worker")
    page.goto(f"{live_server}/labels/unit/{unit.id}")
    page.click("button.label-print")
    page.wait_for_load_state("networkidle")
    assert "autoprint=1" in page.url
    page.wait_for_function("() => document.documentElement.dataset.printed === 'yes'")
    shoot(page, "labels-browser-printed-handheld")
    engine = make_engine(e2e_db_url)
    with Session(engine) as s:
        jobs = s.scalars(select(PrintJob).where(PrintJob.unit_id == unit.id)).all()
        assert [(j.channel, j.stock, j.reprint) for j in jobs] == [("browser", "4x6", False)]
    engine.dispose()
