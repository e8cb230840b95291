"""Scanning on every device, in Chromium at Pixel 5 size (issue 18): the camera button only where a
decoder exists, the vendored ZXing polyfill standing in for a missing `BarcodeDetector` and decoding
a real barcode image, the soft keyboard kept shut for a wedge scanner until asked for."""
from __future__ import annotations

import base64
import io

import pytest
from barcode import EAN13
from barcode.writer import ImageWriter

from tests.e2e.conftest import shoot, sign_in

pytestmark = pytest.mark.e2e

# Chromium has BarcodeDetector on Android and macOS only; deleting it before any script runs makes
# this page what Firefox, iOS Safari or desktop Chrome on Linux and Windows see.
NO_NATIVE_DETECTOR = "delete window.BarcodeDetector;"


def _scan_screen(page, base: str) -> None:  # type: ignore[no-untyped-def]
    sign_in(page, base, "worker")
    page.goto(f"{base}/receive")
    page.wait_for_selector("#scan")


def _ean13_png_data_url(digits: str) -> str:
    """A real EAN-13 barcode image drawn by python-barcode, as a data: URL."""
    out = io.BytesIO()
    EAN13(digits, writer=ImageWriter()).write(out, options={"module_width": 0.4, "module_height": 20, "dpi": 200})
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()


_DECODE = """async (src) => {
  const img = new Image(); img.src = src; await img.decode();
  const codes = await new BarcodeDetector({formats: ['ean_13', 'code_128']}).detect(img);
  return codes.map(c => [c.format, c.rawValue]);
}"""


def test_without_a_native_detector_the_polyfill_loads_shows_the_camera_and_decodes(live_server, e2e_world, handheld):
    page = handheld.new_page()
    page.add_init_script(NO_NATIVE_DETECTOR)
    wasm = []
    page.on("response", lambda r: wasm.append((r.status, r.headers.get("content-type"))) if r.url.endswith(".wasm") else None)
    _scan_screen(page, live_server)
    page.wait_for_selector("#camera-btn", state="visible")
    assert page.evaluate("typeof window.BarcodeDetector") == "function"
    assert page.evaluate("typeof window.BarcodeDetectionAPI.prepareZXingModule") == "function"  # ours, not native
    box = page.locator("#camera-btn").bounding_box()
    assert box and box["width"] >= 44 and box["height"] >= 44, box
    assert page.evaluate(_DECODE, _ean13_png_data_url("5901234123457")) == [["ean_13", "5901234123457"]]
    # the decoder's WebAssembly came from Dockhand's static files (no CDN), as WebAssembly
    assert wasm and wasm[0][0] == 200 and wasm[0][1] == "application/wasm", wasm
    shoot(page, "scan-camera-polyfill")


def test_without_any_decoder_the_camera_button_stays_hidden(live_server, e2e_world, handheld):
    """No native detector and the polyfill unreachable: the button is not shown at all (before the
    fix `.btn{display:inline-flex}` overrode `hidden` and a dead button sat beside the scan box)."""
    page = handheld.new_page()
    page.add_init_script(NO_NATIVE_DETECTOR)
    page.route("**/vendor/barcode-detector/**", lambda route: route.abort())
    _scan_screen(page, live_server)
    page.wait_for_load_state("networkidle")
    assert page.evaluate("typeof window.BarcodeDetector") == "undefined"
    assert page.evaluate("getComputedStyle(document.getElementById('camera-btn')).display") == "none"
    assert not page.locator("#camera-btn").is_visible()


def _keyboard(page) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    return (page.get_attribute("#scan", "inputmode") or "", page.get_attribute("#keyboard-btn", "aria-pressed") or "")


def test_the_soft_keyboard_stays_shut_for_a_wedge_scanner_until_asked_for(live_server, e2e_world, handheld):
    page = handheld.new_page()
    _scan_screen(page, live_server)
    assert _keyboard(page) == ("none", "false")  # a wedge scanner's keystrokes open no keyboard
    box = page.locator("#keyboard-btn").bounding_box()
    assert box and box["width"] >= 44 and box["height"] >= 44, box
    page.tap("#keyboard-btn")
    assert _keyboard(page) == ("text", "true")
    assert page.evaluate("document.activeElement.id") == "scan"  # typing goes straight into the box
    shoot(page, "scan-keyboard-on")
    page.reload()
    page.wait_for_selector("#scan")
    assert _keyboard(page) == ("text", "true")  # remembered on the device
    page.tap("#keyboard-btn")
    page.reload()
    page.wait_for_selector("#scan")
    assert _keyboard(page) == ("none", "false")
